"""All of telemetry's SQL: the PostgreSQL side of `ports.TelemetryStore`."""

from collections import Counter
from datetime import date

import asyncpg

from assent_shared.uow import PgStore
from assent_telemetry.domain import Group, RollupKey
from assent_telemetry.partner import Cell, UnitHits


class PgTelemetryStore(PgStore):
    async def salt_for(self, day: date, fresh: bytes) -> bytes:
        """The day's salt; `fresh` becomes it when this replica is the first to need one."""
        await self.conn.execute("INSERT INTO daily_salts (day, salt) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                                day, fresh)
        return await self.conn.fetchval("SELECT salt FROM daily_salts WHERE day = $1", day)

    async def delete_salts_before(self, day: date) -> None:
        await self.conn.execute("DELETE FROM daily_salts WHERE day < $1", day)

    async def prune_inbox(self, topic: str, keep_days: int) -> None:
        await self.conn.execute(
            "DELETE FROM inbox WHERE topic = $1 AND applied_at < now() - make_interval(days => $2)", topic, keep_days
        )

    async def add_hits(self, hits: Counter[RollupKey]) -> None:
        # Sorted, so that two aggregators meeting on the same rows during a rebalance lock them in one order.
        keys = sorted(hits, key=lambda k: (k.site_id, k.day, k.dimension, k.value, k.hour))
        await self.conn.execute(
            """INSERT INTO hit_rollups (site_id, day, hour, dimension, value, hits)
               SELECT * FROM unnest($1::text[], $2::date[], $3::smallint[], $4::text[], $5::text[], $6::bigint[])
               ON CONFLICT (site_id, day, dimension, value, hour)
               DO UPDATE SET hits = hit_rollups.hits + EXCLUDED.hits""",
            [k.site_id for k in keys], [k.day for k in keys], [k.hour for k in keys],
            [k.dimension for k in keys], [k.value for k in keys], [hits[k] for k in keys],
        )

    async def add_visitors(self, visitors: set[tuple[str, date, str, str, str]]) -> None:
        rows = sorted(visitors)
        await self.conn.execute(
            """INSERT INTO visitor_days (site_id, day, dimension, value, visitor_hash)
               SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::text[])
               ON CONFLICT DO NOTHING""",
            *(list(column) for column in zip(*rows, strict=True)),
        )

    async def groups(self, site_id: str, first: date, last: date, dimension: str,
                     limit: int) -> list[Group]:
        """Hits and visitors per value over whole days; a visitor counts once per day they came."""
        rows = await self.conn.fetch(
            """WITH h AS (SELECT value, sum(hits) AS hits FROM hit_rollups
                          WHERE site_id = $1 AND day BETWEEN $2 AND $3 AND dimension = $4 GROUP BY value),
                    v AS (SELECT value, sum(n) AS visitors FROM (
                            SELECT value, count(*) AS n FROM visitor_days
                            WHERE site_id = $1 AND day BETWEEN $2 AND $3 AND dimension = $4 GROUP BY value
                            UNION ALL
                            SELECT value, visitors FROM visitor_counts
                            WHERE site_id = $1 AND day BETWEEN $2 AND $3 AND dimension = $4) AS open_and_final
                          GROUP BY value)
               SELECT h.value, h.hits, coalesce(v.visitors, 0) AS visitors
               FROM h LEFT JOIN v USING (value) ORDER BY h.hits DESC, h.value LIMIT $5""",
            site_id, first, last, dimension, limit,
        )
        return [Group(r["value"], r["hits"], r["visitors"]) for r in rows]

    async def hourly(self, site_id: str, first: date, last: date,
                     dimension: str) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            """SELECT day, hour, sum(hits) AS hits FROM hit_rollups
               WHERE site_id = $1 AND day BETWEEN $2 AND $3 AND dimension = $4
               GROUP BY day, hour ORDER BY day, hour""",
            site_id, first, last, dimension,
        )

    async def add_unit_hits(self, rows: list[UnitHits]) -> None:
        rows = sorted(rows, key=lambda r: (r.site_id, r.day, r.unit, r.value))
        await self.conn.execute(
            """INSERT INTO unit_days (site_id, day, unit, dimension, value, hits, first_at)
               SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::text[], $6::bigint[],
                                    $7::timestamptz[])
               ON CONFLICT (site_id, day, unit, value) DO UPDATE SET hits = unit_days.hits + EXCLUDED.hits,
                   first_at = least(unit_days.first_at, EXCLUDED.first_at)""",
            [r.site_id for r in rows], [r.day for r in rows], [r.unit for r in rows], [r.dimension for r in rows],
            [r.value for r in rows], [r.hits for r in rows], [r.first_at for r in rows],
        )

    async def open_days(self, latest_final: date) -> list[tuple[str, date]]:
        """(site, day) pairs that are final by the clock but still hold per-visitor rows."""
        rows = await self.conn.fetch(
            """SELECT site_id, day FROM visitor_days WHERE day <= $1
               UNION SELECT site_id, day FROM unit_days WHERE day <= $1 ORDER BY 2, 1""",
            latest_final,
        )
        return [(r["site_id"], r["day"]) for r in rows]

    async def claim_final_day(self, site_id: str, day: date) -> bool:
        """True for the one caller that finalizes the day; replicas and repeats get False."""
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 11))",
                                f"{site_id}/{day.isoformat()}")
        status = await self.conn.execute(
            "INSERT INTO final_days (site_id, day) VALUES ($1, $2) ON CONFLICT DO NOTHING", site_id, day)
        return status.endswith(" 1")

    async def unit_rows(self, site_id: str, day: date) -> list[UnitHits]:
        rows = await self.conn.fetch(
            "SELECT unit, dimension, value, hits, first_at FROM unit_days WHERE site_id = $1 AND day = $2",
            site_id, day)
        return [UnitHits(site_id, day, r["unit"], r["dimension"], r["value"], r["hits"], r["first_at"]) for r in rows]

    async def store_partner_cells(self, site_id: str, day: date, cells: list[Cell]) -> None:
        await self.conn.executemany(
            """INSERT INTO partner_cells (site_id, day, dimension, value, visitors, hits)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT DO NOTHING""",
            [(site_id, day, c.dimension, c.value, c.visitors, c.hits) for c in cells],
        )

    async def drop_visitor_rows(self, site_id: str, day: date, count_first: bool) -> None:
        """Per-visitor rows of a final day go; their distinct counts stay (when the day is finalized now)."""
        if count_first:
            await self.conn.execute(
                """INSERT INTO visitor_counts (site_id, day, dimension, value, visitors)
                   SELECT site_id, day, dimension, value, count(*) FROM visitor_days
                   WHERE site_id = $1 AND day = $2 GROUP BY site_id, day, dimension, value""",
                site_id, day,
            )
        await self.conn.execute("DELETE FROM visitor_days WHERE site_id = $1 AND day = $2", site_id, day)
        await self.conn.execute("DELETE FROM unit_days WHERE site_id = $1 AND day = $2", site_id, day)

    async def partner_cells(self, site_id: str, day: date, dimension: str) -> list[Cell]:
        rows = await self.conn.fetch(
            """SELECT value, visitors, hits FROM partner_cells WHERE site_id = $1 AND day = $2 AND dimension = $3
               ORDER BY visitors DESC, value""",
            site_id, day, dimension,
        )
        return [Cell(dimension, r["value"], r["visitors"], r["hits"]) for r in rows]

    async def prune_aggregates(self, before: date) -> None:
        """Aggregates (no visitor in them) are kept for a retention period too."""
        for table in ("hit_rollups", "visitor_counts", "partner_cells", "final_days"):
            await self.conn.execute(f"DELETE FROM {table} WHERE day < $1", before)  # noqa: S608 (fixed table names)

    async def apply_device_consent(self, device_hash: str, purpose: str, granted: bool,
                                   seq: int) -> None:
        """Keep the newest by seq, so a late or replayed older event changes nothing."""
        await self.conn.execute(
            """INSERT INTO device_consents (device_hash, purpose, granted, seq) VALUES ($1, $2, $3, $4)
               ON CONFLICT (device_hash, purpose) DO UPDATE
               SET granted = EXCLUDED.granted, seq = EXCLUDED.seq, updated_at = now()
               WHERE device_consents.seq < EXCLUDED.seq""",
            device_hash, purpose, granted, seq,
        )

    async def device_allows(self, device_hash: str, purpose: str) -> bool:
        return bool(await self.conn.fetchval(
            "SELECT granted FROM device_consents WHERE device_hash = $1 AND purpose = $2", device_hash, purpose
        ))
