"""All of telemetry's SQL."""

from collections import Counter
from datetime import date

import asyncpg

from assent_telemetry.domain import Group, RollupKey


async def salt_for(conn: asyncpg.Connection, day: date, fresh: bytes) -> bytes:
    """The day's salt; `fresh` becomes it when this replica is the first to need one."""
    await conn.execute("INSERT INTO daily_salts (day, salt) VALUES ($1, $2) ON CONFLICT DO NOTHING", day, fresh)
    return await conn.fetchval("SELECT salt FROM daily_salts WHERE day = $1", day)


async def delete_salts_before(conn: asyncpg.Connection, day: date) -> None:
    await conn.execute("DELETE FROM daily_salts WHERE day < $1", day)


async def prune_inbox(conn: asyncpg.Connection, topic: str, keep_days: int) -> None:
    await conn.execute(
        "DELETE FROM inbox WHERE topic = $1 AND applied_at < now() - make_interval(days => $2)", topic, keep_days
    )


async def claim_events(conn: asyncpg.Connection, topic: str, event_ids: list[str]) -> set[str]:
    """Record the ids in the inbox; returns those not seen before (the rest are redeliveries)."""
    rows = await conn.fetch(
        """INSERT INTO inbox (event_id, topic, event_type)
           SELECT id, $2, 'PageViewed' FROM unnest($1::text[]) AS id
           ON CONFLICT DO NOTHING RETURNING event_id""",
        event_ids, topic,
    )
    return {r["event_id"] for r in rows}


async def add_hits(conn: asyncpg.Connection, hits: Counter[RollupKey]) -> None:
    # Sorted, so that two aggregators meeting on the same rows during a rebalance lock them in one order.
    keys = sorted(hits, key=lambda k: (k.site_id, k.day, k.dimension, k.value, k.hour))
    await conn.execute(
        """INSERT INTO hit_rollups (site_id, day, hour, dimension, value, hits)
           SELECT * FROM unnest($1::text[], $2::date[], $3::smallint[], $4::text[], $5::text[], $6::bigint[])
           ON CONFLICT (site_id, day, dimension, value, hour) DO UPDATE SET hits = hit_rollups.hits + EXCLUDED.hits""",
        [k.site_id for k in keys], [k.day for k in keys], [k.hour for k in keys],
        [k.dimension for k in keys], [k.value for k in keys], [hits[k] for k in keys],
    )


async def add_visitors(conn: asyncpg.Connection, visitors: set[tuple[str, date, str, str, str]]) -> None:
    rows = sorted(visitors)
    await conn.execute(
        """INSERT INTO visitor_days (site_id, day, dimension, value, visitor_hash)
           SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::text[])
           ON CONFLICT DO NOTHING""",
        *(list(column) for column in zip(*rows, strict=True)),
    )


async def groups(conn: asyncpg.Connection, site_id: str, first: date, last: date, dimension: str,
                 limit: int) -> list[Group]:
    """Hits and visitors per value over whole days; a visitor counts once per day they came."""
    rows = await conn.fetch(
        """WITH h AS (SELECT value, sum(hits) AS hits FROM hit_rollups
                      WHERE site_id = $1 AND day BETWEEN $2 AND $3 AND dimension = $4 GROUP BY value),
                v AS (SELECT value, count(*) AS visitors FROM visitor_days
                      WHERE site_id = $1 AND day BETWEEN $2 AND $3 AND dimension = $4 GROUP BY value)
           SELECT h.value, h.hits, coalesce(v.visitors, 0) AS visitors
           FROM h LEFT JOIN v USING (value) ORDER BY h.hits DESC, h.value LIMIT $5""",
        site_id, first, last, dimension, limit,
    )
    return [Group(r["value"], r["hits"], r["visitors"]) for r in rows]


async def hourly(conn: asyncpg.Connection, site_id: str, first: date, last: date,
                 dimension: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT day, hour, sum(hits) AS hits FROM hit_rollups
           WHERE site_id = $1 AND day BETWEEN $2 AND $3 AND dimension = $4
           GROUP BY day, hour ORDER BY day, hour""",
        site_id, first, last, dimension,
    )


async def daily_groups(conn: asyncpg.Connection, site_id: str, day: date, dimension: str) -> list[Group]:
    return await groups(conn, site_id, day, day, dimension, limit=2**31 - 1)


async def distinct_visitors_of(conn: asyncpg.Connection, site_id: str, day: date, dimension: str,
                               values: list[str]) -> int:
    """Distinct visitors of the given groups only, so a total never includes a suppressed group."""
    return await conn.fetchval(
        """SELECT count(DISTINCT visitor_hash) FROM visitor_days
           WHERE site_id = $1 AND day = $2 AND dimension = $3 AND value = ANY($4::text[])""",
        site_id, day, dimension, values,
    )
