"""Idempotent consumption: an event's id and its effects commit in one transaction.

A batch of records commits in one transaction (its ids claimed in one statement), so a consumer
pays one round of commit per batch instead of one per record. If any record of the batch cannot be
applied, the batch is applied again record by record, so only the record at fault is set aside.
Redelivered events change nothing. A message that can never be applied (bad headers, a payload
that does not validate, a handler that keeps failing on it) goes to the service's dead-letter
topic with the reason and is acknowledged, so its partition moves on. Errors of the database or
network are not the message's fault: the message is retried, never dead-lettered, for them.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
import structlog
from opentelemetry import trace
from pydantic import ValidationError

from assent_shared import cloudevents
from assent_shared.events import Event
from assent_shared.logs import bind_correlation_id, new_correlation_id
from assent_shared.metrics import Metrics
from assent_shared.outages import TRANSIENT
from assent_shared.tracing import context_of

log = structlog.get_logger(__name__)
E = TypeVar("E", bound=Event)
_ATTEMPTS = 3


class Record(Protocol):
    """What the inbox needs of a Kafka record (aiokafka's ConsumerRecord has it)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any


@dataclass(frozen=True)
class Handler(Generic[E]):
    model: type[E]
    apply: Callable[[asyncpg.Connection, E, cloudevents.EventMeta], Awaitable[None]]


@dataclass(frozen=True)
class BatchHandler(Generic[E]):
    """For events whose effects add up (counts) or are planned together: the fresh events of a batch
    applied in one call, after the batch's other events, so the handler can total them before it
    writes. Handlers sharing one `apply_all` get their events in one call, in the batch's order.
    `traced`: each event still gets its span and its "event applied" log, as under a `Handler` (events
    one follows across services)."""

    model: type[E]
    apply_all: Callable[[asyncpg.Connection, Sequence[tuple[E, cloudevents.EventMeta]]], Awaitable[None]]
    traced: bool = False


AnyHandler = Handler[Any] | BatchHandler[Any]
DeadLetter = Callable[[Record, str], Awaitable[None]]


@dataclass(frozen=True)
class _Decoded:
    record: Record
    meta: cloudevents.EventMeta
    event: Event
    handler: AnyHandler


class Inbox:
    def __init__(self, pool: asyncpg.Pool, metrics: Metrics, dead_letter: DeadLetter, retry_pause: float = 0.5,
                 tracer: trace.Tracer | None = None):
        self._tracer = tracer or trace.get_tracer(__name__)
        self._pool = pool
        self._metrics = metrics
        self._dead_letter = dead_letter
        self._retry_pause = retry_pause

    async def consume(self, topic: str, record: Record, handlers: Mapping[str, AnyHandler]) -> bool:
        """Apply one record; True when it changed something."""
        decoded = await self._decode(topic, record, handlers)
        return decoded is not None and await self._consume_alone(topic, decoded)

    async def consume_batch(self, topic: str, records: Sequence[Record], handlers: Mapping[str, AnyHandler]) -> int:
        """Apply a batch in record order in one transaction; returns how many records changed something."""
        batch = [d for record in records if (d := await self._decode(topic, record, handlers)) is not None]
        if not batch:
            return 0
        try:
            return await self._apply_batch(topic, batch)
        except TRANSIENT:
            await asyncio.sleep(self._retry_pause)
            raise
        except Exception as exc:  # some record of it cannot be applied: find which, apply the rest
            log.warning("batch failed, applying it record by record", topic=topic, records=len(batch),
                        error=type(exc).__name__)
        applied = 0
        for decoded in batch:
            applied += await self._consume_alone(topic, decoded)
        return applied

    async def _decode(self, topic: str, record: Record, handlers: Mapping[str, AnyHandler]) -> _Decoded | None:
        try:
            meta = cloudevents.decode_headers(record.headers)
        except cloudevents.MalformedHeaders as exc:
            await self._reject(topic, record, f"malformed headers: {exc}")
            return None
        handler = handlers.get(meta.type)
        if handler is None:
            return None
        try:
            event = handler.model.model_validate_json(record.value or b"")
        except ValidationError as exc:
            fields = ",".join(".".join(str(p) for p in err["loc"]) for err in exc.errors())
            await self._reject(topic, record, f"invalid {meta.type} payload: {fields or 'not JSON'}")
            return None
        return _Decoded(record, meta, event, handler)

    async def _consume_alone(self, topic: str, decoded: _Decoded) -> bool:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return await self._apply_batch(topic, [decoded]) == 1
            except TRANSIENT:
                await asyncio.sleep(self._retry_pause)
                raise
            except Exception as exc:  # a handler bug or a rule the event breaks: retry, then give up on it
                log.warning("event handler failed", event_type=decoded.meta.type, attempt=attempt,
                            error=type(exc).__name__)
                if attempt == _ATTEMPTS:
                    await self._reject(topic, decoded.record, f"handler failed: {type(exc).__name__}")
                    return False
                await asyncio.sleep(self._retry_pause * attempt)
        return False

    async def _apply_batch(self, topic: str, batch: Sequence[_Decoded]) -> int:
        spans: list[tuple[_Decoded, trace.Span]] = []
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                fresh = await self._claim(conn, topic, batch)
                totals: dict[Callable[..., Awaitable[None]], list[tuple[Event, cloudevents.EventMeta]]] = {}
                for decoded in fresh:
                    if isinstance(decoded.handler, BatchHandler):
                        totals.setdefault(decoded.handler.apply_all, []).append((decoded.event, decoded.meta))
                        if decoded.handler.traced:
                            spans.append((decoded, self._span(topic, decoded)))
                        continue
                    bind_correlation_id(decoded.meta.correlation_id or new_correlation_id())
                    span = self._span(topic, decoded)
                    spans.append((decoded, span))
                    with trace.use_span(span, end_on_exit=False):
                        await decoded.handler.apply(conn, decoded.event, decoded.meta)
                for apply_all, events in totals.items():
                    await apply_all(conn, events)
        finally:
            for _, span in spans:
                span.end()
        self._metrics.inbox_duplicates.labels(topic=topic).inc(len(batch) - len(fresh))
        for decoded in fresh:
            self._metrics.events_applied.labels(topic=topic, type=decoded.meta.type).inc()
        for decoded, span in spans:  # after the commit, in each event's trace
            with trace.use_span(span, end_on_exit=False):
                log.info("event applied", topic=topic, event_type=decoded.meta.type, event_id=decoded.meta.id)
        return len(fresh)

    def _span(self, topic: str, decoded: _Decoded) -> trace.Span:
        return self._tracer.start_span(
            f"{topic} process", context=context_of(decoded.meta.traceparent), kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.message.id": decoded.meta.id, "event.type": decoded.meta.type})

    @staticmethod
    async def _claim(conn: asyncpg.Connection, topic: str, batch: Sequence[_Decoded]) -> list[_Decoded]:
        """Record the batch's ids; the records not seen before, in order (a copy later in the same
        batch, like one applied earlier, is a redelivery)."""
        claimed = {r["event_id"] for r in await conn.fetch(
            """INSERT INTO inbox (event_id, topic, event_type)
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
               ON CONFLICT DO NOTHING RETURNING event_id""",
            [d.meta.id for d in batch], [topic] * len(batch), [d.meta.type for d in batch],
        )}
        fresh = []
        for decoded in batch:
            if decoded.meta.id in claimed:
                claimed.discard(decoded.meta.id)
                fresh.append(decoded)
        return fresh

    async def _reject(self, topic: str, record: Record, reason: str) -> None:
        log.error("message dead-lettered", topic=topic, partition=record.partition, offset=record.offset, reason=reason)
        await self._dead_letter(record, reason)
        self._metrics.dead_letters.labels(topic=topic).inc()
