"""Sends due deliveries. Replicas share the work: each claims rows with FOR UPDATE SKIP LOCKED.

A claimed row stays locked until its outcome commits, so a revoke that arrives mid-send waits,
then sees the share as sent and plans the revocation. A crash after sending and before the
commit sends the same delivery id again; processors drop the repeat by that id.
"""

import asyncio
from dataclasses import dataclass, field
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import structlog
from opentelemetry import trace

from assent_mailer import domain, handlers
from assent_mailer.channels import DeliveryFailed, HardBounce, Smtp, Webhooks
from assent_mailer.handlers import delivery_fields
from assent_mailer.mails import FORGET_AFTER_SEND, MailWriter
from assent_mailer.metrics import MailerMetrics
from assent_mailer.ports import MailerStore, Mailers, Row
from assent_mailer.settings import MailerSettings
from assent_mailer.wakeup import WorkArrived
from assent_shared.outages import TRANSIENT
from assent_shared.events import (
    DeliveryAttemptFailed, DeliveryCancelled, EmailBounced, EmailSent, Event, ProcessorDelivered,
    ProcessorRevocationSent,
)
from assent_shared.events import DeliveryFailed as DeliveryGaveUp
from assent_shared.tracing import context_of, current_traceparent

log = structlog.get_logger(__name__)
Send = Callable[[], Awaitable[None]]


class Unsendable(Exception):
    """A delivery that no retry can send; it is marked failed for good."""


class Bounced(Exception):
    def __init__(self, email: str) -> None:
        super().__init__("hard bounce")  # the address stays out of the message: it may be logged
        self.email = email


class Dispatcher:
    def __init__(self, mailers: Mailers, settings: MailerSettings, *, work: WorkArrived,
                 suppressions: domain.SuppressionKeys, smtp: Smtp, webhooks: Webhooks, tracer: trace.Tracer,
                 metrics: MailerMetrics, mails: MailWriter) -> None:
        self._tracer = tracer
        self._metrics = metrics
        self._mailers = mailers
        self._settings = settings
        self._work = work
        self._suppressions = suppressions
        self._smtp = smtp
        self._webhooks = webhooks
        self._mails = mails

    async def run(self) -> None:
        while True:
            try:
                sent = await self._dispatch_to_the_end()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("dispatch failed; retrying", error=type(exc).__name__)
                sent = 0
            if sent < self._settings.dispatch_batch:
                await self._work.wait(self._settings.dispatch_poll_seconds)

    async def _dispatch_to_the_end(self) -> int:
        """A stop (SIGTERM, a replica removed) lets the batch in hand finish: cancelled between its sends
        and their records, the batch would roll back and another replica would send those mails again."""
        batch = asyncio.ensure_future(self.dispatch_once())
        try:
            return await asyncio.shield(batch)
        except asyncio.CancelledError:
            await asyncio.wait([batch], timeout=self._settings.stop_grace_seconds)
            batch.cancel()  # still sending after the grace: give up on it (at-least-once: it goes again)
            raise

    async def dispatch_once(self) -> int:
        """Claim a batch, read what the gate needs of its webhooks in three statements, send side by
        side, then record the batch: the sent rows in one statement, every outcome's event in one."""
        async with self._mailers.transaction() as store:
            rows = await store.claim_due(self._settings.dispatch_batch)
            gate = await _Gate.read(store, [r for r in rows if r["channel"] == "webhook"])
            # One connection runs one query at a time: prepare in turn, then send side by side.
            prepared = [await self._prepare_isolated(store, row, gate) for row in rows]
            outcomes = await asyncio.gather(*(self._attempt(send, row) for send, row in zip(prepared, rows, strict=True)))
            recorded = _Recorded()
            for row, outcome in zip(rows, outcomes, strict=True):
                await self._record(store, row, outcome, recorded)
            if recorded.sent:
                await store.mark_all_sent(recorded.sent, recorded.forget)
            await store.publish_all(recorded.events)
        return len(rows)

    async def _prepare_isolated(self, store: MailerStore, row: Row, gate: "_Gate") -> Send | Unsendable | None:
        """One row that cannot be turned into a send (a title no mail header can hold, say) fails alone:
        it must not stop the dispatcher, and being among the oldest rows, every later delivery with it."""
        try:
            if row["channel"] == "webhook":
                return self._prepare_webhook(row, gate)  # no query of its own: nothing to undo
            async with store.savepoint():  # a failed query of this row leaves the others' intact
                return await self._prepare_email(store, row)
        except TRANSIENT:
            raise
        except Exception as exc:
            log.error("delivery cannot be sent", delivery_id=str(row["delivery_id"]), kind=row["kind"],
                      error=type(exc).__name__)
            return Unsendable(f"cannot be sent: {type(exc).__name__}")

    async def _prepare_email(self, store: MailerStore, row: Row) -> Send | None:
        written = await self._mails.write(store, row)
        if written is None:
            return None
        email, message = written

        async def send() -> None:
            traceparent = current_traceparent()
            if traceparent:
                message["Traceparent"] = traceparent
            try:
                await self._smtp.send(message)
            except HardBounce:
                raise Bounced(email) from None

        return send

    def _prepare_webhook(self, row: Row, gate: "_Gate") -> Send | None:
        """The gate re-checked at send time: on the consent view as this transaction reads it after the claim."""
        delivery = domain.ProcessorDelivery(row["delivery_id"], row["kind"], row["recipient"], row["purpose"],
                                            row["consent_event_id"], row["status"])
        current = gate.consents.get((row["subject_id"], row["purpose"], row["recipient"]))
        if not domain.may_send(delivery, current, gate.purposes):
            return None
        target = gate.processors.get(row["recipient"])
        if target is None:
            return None
        payload = {
            "event": row["kind"], "delivery_id": str(row["delivery_id"]), "subject_id": str(row["subject_id"]),
            "purpose": row["purpose"], "consent_event_id": row["consent_event_id"],
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        if row["kind"] == domain.SHARED:
            email = gate.emails.get(row["subject_id"])
            if email is None:
                return None
            payload["email"] = email
        return lambda: self._webhooks.post(target["endpoint_url"], target["signing_secret"], payload)

    async def _attempt(self, send: Send | Unsendable | None, row: Row) -> str | Exception:
        if send is None:
            return "cancelled"
        if isinstance(send, Unsendable):
            self._metrics.failures.labels(channel=row["channel"]).inc()
            return send
        with self._tracer.start_as_current_span(f"deliver {row['kind']}", context=context_of(row["traceparent"]),
                                                kind=trace.SpanKind.CLIENT,
                                                attributes={"assent.delivery_id": str(row["delivery_id"])}):
            try:
                await send()
            except (DeliveryFailed, Bounced) as exc:
                self._metrics.failures.labels(channel=row["channel"]).inc()
                return exc
            except Exception as exc:  # the channels turn every network fault into DeliveryFailed: this is a bug
                log.error("delivery cannot be sent", delivery_id=str(row["delivery_id"]), error=type(exc).__name__)
                self._metrics.failures.labels(channel=row["channel"]).inc()
                return Unsendable(f"cannot be sent: {type(exc).__name__}")
        self._metrics.sent.labels(channel=row["channel"], kind=row["kind"]).inc()
        return "sent"

    async def _record(self, store: MailerStore, row: Row, outcome: str | Exception, recorded: "_Recorded") -> None:
        attempt = row["attempts"] + 1
        if isinstance(outcome, Unsendable):
            recorded.events.append(DeliveryAttemptFailed(**delivery_fields(row), attempt=attempt, reason=str(outcome)))
            await self._give_up(store, row, attempt, str(outcome), recorded)
            return
        if isinstance(outcome, Bounced):
            await handlers.suppress_address(store, outcome.email, "hard bounce", suppressions=self._suppressions)
            await store.mark_status(row["delivery_id"], "bounced")
            recorded.events.append(EmailBounced(**delivery_fields(row)))
            return
        if isinstance(outcome, Exception):
            if domain.gives_up(attempt, self._settings.max_delivery_attempts):
                await self._give_up(store, row, attempt, str(outcome), recorded)
                return
            delay = domain.retry_delay(attempt, self._settings.retry_base_seconds, self._settings.retry_max_seconds)
            await store.schedule_retry(row["delivery_id"], datetime.now(UTC) + timedelta(seconds=delay),
                                         str(outcome))
            recorded.events.append(DeliveryAttemptFailed(**delivery_fields(row), attempt=attempt, reason=str(outcome)))
            log.info("delivery failed; will retry", delivery_id=str(row["delivery_id"]), kind=row["kind"],
                     attempt=attempt, error=str(outcome))
            return
        if outcome == "cancelled":
            if row["kind"] in FORGET_AFTER_SEND:
                await store.forget_content(row["delivery_id"])  # a sealed token or reply has done its job
            await store.mark_status(row["delivery_id"], "cancelled")
            recorded.events.append(DeliveryCancelled(**delivery_fields(row)))
            return
        recorded.sent.append(row["delivery_id"])
        if row["kind"] in FORGET_AFTER_SEND:
            recorded.forget.append(row["delivery_id"])  # a sealed token or reply has done its job
        event_type = {domain.SHARED: ProcessorDelivered, domain.REVOKED: ProcessorRevocationSent}.get(row["kind"], EmailSent)
        recorded.events.append(event_type(**delivery_fields(row)))

    async def _give_up(self, store: MailerStore, row: Row, attempts: int, reason: str, recorded: "_Recorded") -> None:
        await store.mark_failed(row["delivery_id"], reason)
        if row["kind"] in FORGET_AFTER_SEND:
            await store.forget_content(row["delivery_id"])  # nothing will open the sealed content again
        recorded.events.append(DeliveryGaveUp(**delivery_fields(row), attempts=attempts, reason=reason))
        log.warning("delivery failed for good", delivery_id=str(row["delivery_id"]), kind=row["kind"],
                    attempts=attempts, error=reason)


@dataclass(frozen=True)
class _Gate:
    """What the gate and the payloads of a batch's webhooks need, read once for the batch."""

    consents: dict[tuple[UUID, str, str], domain.ConsentView]
    purposes: dict[str, set[str]]
    processors: dict[str, Row]
    emails: dict[UUID, str]

    @classmethod
    async def read(cls, store: MailerStore, webhooks: list[Row]) -> "_Gate":
        if not webhooks:
            return cls({}, {}, {}, {})
        registry = await store.processor_registry()
        consents = await store.consents_at(list({(r["subject_id"], r["purpose"], r["recipient"]) for r in webhooks}))
        emails = await store.emails_of(list({r["subject_id"] for r in webhooks if r["kind"] == domain.SHARED}))
        return cls(consents, {p: set(r["purposes"]) for p, r in registry.items()}, registry, emails)


@dataclass
class _Recorded:
    """A batch's outcomes, written after its sends: the sent rows together, every event in row order."""

    sent: list[UUID] = field(default_factory=list)
    forget: list[UUID] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
