"""Idempotent consumption: an event's id and its effects commit in one transaction.

Redelivered events change nothing. A message that can never be applied (bad headers, a payload
that does not validate, a handler that keeps failing on it) goes to the service's dead-letter
topic with the reason and is acknowledged, so its partition moves on. Errors of the database or
network are not the message's fault: the message is retried, never dead-lettered, for them.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
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
from assent_shared.tracing import context_of

log = structlog.get_logger(__name__)
E = TypeVar("E", bound=Event)
_ATTEMPTS = 3
TRANSIENT = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError)


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


DeadLetter = Callable[[Record, str], Awaitable[None]]


class Inbox:
    def __init__(self, pool: asyncpg.Pool, metrics: Metrics, dead_letter: DeadLetter, retry_pause: float = 0.5,
                 tracer: trace.Tracer | None = None):
        self._tracer = tracer or trace.get_tracer(__name__)
        self._pool = pool
        self._metrics = metrics
        self._dead_letter = dead_letter
        self._retry_pause = retry_pause

    async def consume(self, topic: str, record: Record, handlers: Mapping[str, Handler[Any]]) -> bool:
        """Apply one record; True when it changed something."""
        try:
            meta = cloudevents.decode_headers(record.headers)
        except cloudevents.MalformedHeaders as exc:
            await self._reject(topic, record, f"malformed headers: {exc}")
            return False
        bind_correlation_id(meta.correlation_id or new_correlation_id())
        handler = handlers.get(meta.type)
        if handler is None:
            return False
        with self._tracer.start_as_current_span(f"{topic} process", context=context_of(meta.traceparent),
                                                kind=trace.SpanKind.CONSUMER,
                                                attributes={"messaging.message.id": meta.id, "event.type": meta.type}):
            return await self._consume(topic, record, handler, meta)

    async def _consume(self, topic: str, record: Record, handler: Handler[Any], meta: cloudevents.EventMeta) -> bool:
        try:
            event = handler.model.model_validate_json(record.value or b"")
        except ValidationError as exc:
            fields = ",".join(".".join(str(p) for p in err["loc"]) for err in exc.errors())
            await self._reject(topic, record, f"invalid {meta.type} payload: {fields or 'not JSON'}")
            return False
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return await self._apply_once(topic, handler, event, meta)
            except TRANSIENT:
                await asyncio.sleep(self._retry_pause)
                raise
            except Exception as exc:  # a handler bug or a rule the event breaks: retry, then give up on it
                log.warning("event handler failed", event_type=meta.type, attempt=attempt, error=type(exc).__name__)
                if attempt == _ATTEMPTS:
                    await self._reject(topic, record, f"handler failed: {type(exc).__name__}")
                    return False
                await asyncio.sleep(self._retry_pause * attempt)
        return False

    async def _apply_once(self, topic: str, handler: Handler[Any], event: Event, meta: cloudevents.EventMeta) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                "INSERT INTO inbox (event_id, topic, event_type) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                meta.id,
                topic,
                meta.type,
            )
            if status.endswith(" 0"):
                self._metrics.inbox_duplicates.labels(topic=topic).inc()
                return False
            await handler.apply(conn, event, meta)
        self._metrics.events_applied.labels(topic=topic, type=meta.type).inc()
        log.info("event applied", topic=topic, event_type=meta.type, event_id=meta.id)
        return True

    async def _reject(self, topic: str, record: Record, reason: str) -> None:
        log.error("message dead-lettered", topic=topic, partition=record.partition, offset=record.offset, reason=reason)
        await self._dead_letter(record, reason)
        self._metrics.dead_letters.labels(topic=topic).inc()
