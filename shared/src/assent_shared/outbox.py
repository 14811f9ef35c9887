"""Transactional outbox: `enqueue` inside the caller's transaction, `OutboxRelay` publishes in order.

Only one relay per database publishes at a time (a session advisory lock), so N replicas keep
the per-key order of the outbox. A relay woken by NOTIFY, or by a short poll when a
notification is lost, publishes with acks=all and an idempotent producer, then marks the rows sent.
A crash between publish and mark re-publishes the same `ce_id`s, which consumers drop.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from assent_shared import cloudevents
from assent_shared.events import Event
from assent_shared.logs import current_correlation_id
from assent_shared.metrics import Metrics
from assent_shared.tracing import current_traceparent

log = structlog.get_logger(__name__)
CHANNEL = "assent_outbox"
_RELAY_LOCK = 0x6F7574626F78  # "outbox"
_BATCH = 500
_PRUNE_EVERY = 300.0


async def enqueue(conn: asyncpg.Connection, event: Event) -> str:
    """Add `event` to the outbox in the caller's open transaction; returns its `ce_id`.

    The event carries the correlation id and trace context of the request or event causing it.
    """
    meta = cloudevents.meta_for(event, correlation_id=current_correlation_id(), traceparent=current_traceparent())
    headers = [[k, v.decode()] for k, v in cloudevents.encode_headers(meta)]
    await conn.execute(
        """INSERT INTO outbox (event_id, topic, event_key, event_type, headers, payload)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6)""",
        meta.id,
        event.topic_spec().name,
        event.key(),
        meta.type,
        json.dumps(headers),
        event.model_dump_json(),
    )
    await conn.execute("SELECT pg_notify($1, '')", CHANNEL)
    return meta.id


async def enqueue_many(conn: asyncpg.Connection, events: Sequence[Event]) -> list[str]:
    """`enqueue` for a batch: one statement and one notification, in the order given (their positions)."""
    if not events:
        return []
    metas = [cloudevents.meta_for(e, correlation_id=current_correlation_id(), traceparent=current_traceparent())
             for e in events]
    await conn.execute(
        """INSERT INTO outbox (event_id, topic, event_key, event_type, headers, payload)
           SELECT event_id, topic, event_key, event_type, headers::jsonb, payload
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                WITH ORDINALITY AS e(event_id, topic, event_key, event_type, headers, payload, n)
           ORDER BY n""",
        [m.id for m in metas], [e.topic_spec().name for e in events], [e.key() for e in events],
        [m.type for m in metas],
        [json.dumps([[k, v.decode()] for k, v in cloudevents.encode_headers(m)]) for m in metas],
        [e.model_dump_json() for e in events],
    )
    await conn.execute("SELECT pg_notify($1, '')", CHANNEL)
    return [m.id for m in metas]


async def forget(conn: asyncpg.Connection, key: str) -> None:
    """Drop the published events of one aggregate: on erasure, no copy of its data stays here.

    Unpublished ones stay: they must still go out, in order, before the erasure that follows them.
    """
    await conn.execute("DELETE FROM outbox WHERE event_key = $1 AND published_at IS NOT NULL", key)


class OutboxRelay:
    def __init__(
        self,
        dsn: str,
        producer: AIOKafkaProducer,
        resolve_topic: Callable[[str], str],
        metrics: Metrics,
        poll_seconds: float = 1.0,
        keep_published_seconds: float = 24 * 3600,
    ) -> None:
        self._keep_published = keep_published_seconds
        self._pruned_at = float("-inf")
        self._dsn = dsn
        self._producer = producer
        self._resolve_topic = resolve_topic
        self._metrics = metrics
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()

    @property
    def _stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Finish the batch in flight, then return from `run`: a batch cut off between send and
        mark would be sent again by the next relay."""
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        """Relay until stopped; reconnects after database and Kafka errors."""
        while not self._stopping:
            try:
                await self._run_while_connected()
            except asyncio.CancelledError:
                raise
            # aiokafka's errors are RuntimeErrors, not OSErrors: without them here a broker outage
            # would end this task for good and the service would stop publishing until restarted.
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, KafkaError) as exc:
                log.warning("outbox relay reconnecting", error=type(exc).__name__)
                await asyncio.sleep(self._poll_seconds)

    async def _run_while_connected(self) -> None:
        conn = await asyncpg.connect(self._dsn)
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _RELAY_LOCK):
                if self._stopping:
                    return
                await _wait(self._stop.wait(), self._poll_seconds)
            await conn.add_listener(CHANNEL, self._on_notify)
            while not self._stopping:
                self._wake.clear()
                while await self.publish_pending(conn) == _BATCH and not self._stopping:
                    pass
                await self._observe_backlog(conn)
                await self._prune(conn)
                await _wait(self._wake.wait(), self._poll_seconds)
        finally:
            await asyncio.shield(conn.close())

    def _on_notify(self, *_args: object) -> None:
        self._wake.set()

    async def publish_pending(self, conn: asyncpg.Connection) -> int:
        rows = await conn.fetch(
            """SELECT position, topic, event_key, headers, payload FROM outbox
               WHERE published_at IS NULL ORDER BY position LIMIT $1""",
            _BATCH,
        )
        if not rows:
            return 0
        sends = []
        for row in rows:
            headers = [(k, v.encode()) for k, v in json.loads(row["headers"])]
            sends.append(
                await self._producer.send(
                    self._resolve_topic(row["topic"]),
                    value=row["payload"].encode(),
                    key=row["event_key"].encode(),
                    headers=headers,
                )
            )
        await asyncio.gather(*sends)
        await conn.execute(
            "UPDATE outbox SET published_at = now() WHERE position = ANY($1::bigint[])", [r["position"] for r in rows]
        )
        for row in rows:
            self._metrics.events_published.labels(topic=row["topic"]).inc()
        return len(rows)

    async def _prune(self, conn: asyncpg.Connection) -> None:
        """Published rows are kept a while for operators, then deleted: Kafka is the record."""
        now = asyncio.get_running_loop().time()
        if now - self._pruned_at < _PRUNE_EVERY:
            return
        self._pruned_at = now
        await conn.execute(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)", self._keep_published
        )

    async def _observe_backlog(self, conn: asyncpg.Connection) -> None:
        row = await conn.fetchrow(
            """SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age
               FROM outbox WHERE published_at IS NULL"""
        )
        self._metrics.outbox_backlog.set(row["n"])
        self._metrics.outbox_oldest_age.set(float(row["age"]))


async def _wait(awaitable: Awaitable[object], timeout: float) -> None:
    try:
        await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        pass
