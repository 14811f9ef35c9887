"""Sends due deliveries. Replicas share the work: each claims rows with FOR UPDATE SKIP LOCKED.

A claimed row stays locked until its outcome commits, so a revoke that arrives mid-send waits,
then sees the share as sent and plans the revocation. A crash after sending and before the
commit sends the same delivery id again; processors drop the repeat by that id.
"""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog
from opentelemetry import trace

from assent_mailer import domain, handlers
from assent_mailer.channels import DeliveryFailed, HardBounce, Smtp, Webhooks
from assent_mailer.handlers import announce_cancelled, delivery_fields
from assent_mailer.mails import FORGET_AFTER_SEND, MailWriter
from assent_mailer.metrics import MailerMetrics
from assent_mailer.ports import MailerStore, Mailers, Row
from assent_mailer.settings import MailerSettings
from assent_mailer.wakeup import WorkArrived
from assent_shared.outages import TRANSIENT
from assent_shared.events import (
    DeliveryAttemptFailed, EmailBounced, EmailSent, ProcessorDelivered, ProcessorRevocationSent,
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
        async with self._mailers.transaction() as store:
            rows = await store.claim_due(self._settings.dispatch_batch)
            # One connection runs one query at a time: prepare in turn, then send side by side.
            prepared = [await self._prepare_isolated(store, row) for row in rows]
            outcomes = await asyncio.gather(*(self._attempt(send, row) for send, row in zip(prepared, rows, strict=True)))
            for row, outcome in zip(rows, outcomes, strict=True):
                await self._record(store, row, outcome)
        return len(rows)

    async def _prepare_isolated(self, store: MailerStore, row: Row) -> Send | Unsendable | None:
        """One row that cannot be turned into a send (a title no mail header can hold, say) fails alone:
        it must not stop the dispatcher, and being among the oldest rows, every later delivery with it."""
        try:
            async with store.savepoint():  # a failed query of this row leaves the others' intact
                return await self._prepare(store, row)
        except TRANSIENT:
            raise
        except Exception as exc:
            log.error("delivery cannot be sent", delivery_id=str(row["delivery_id"]), kind=row["kind"],
                      error=type(exc).__name__)
            return Unsendable(f"cannot be sent: {type(exc).__name__}")

    async def _prepare(self, store: MailerStore, row: Row) -> Send | None:
        """The send to make, or None when the gate or an erasure says it must not go out any more."""
        if row["channel"] == "email":
            return await self._prepare_email(store, row)
        return await self._prepare_webhook(store, row)

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

    async def _prepare_webhook(self, store: MailerStore, row: Row) -> Send | None:
        delivery = domain.ProcessorDelivery(row["delivery_id"], row["kind"], row["recipient"], row["purpose"],
                                            row["consent_event_id"], row["status"])
        current = await store.consent_of(row["subject_id"], row["purpose"], row["recipient"])
        if not domain.may_send(delivery, current, await store.processors()):
            return None
        target = await store.processor(row["recipient"])
        if target is None:
            return None
        payload = {
            "event": row["kind"], "delivery_id": str(row["delivery_id"]), "subject_id": str(row["subject_id"]),
            "purpose": row["purpose"], "consent_event_id": row["consent_event_id"],
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        if row["kind"] == domain.SHARED:
            email = await store.email_of(row["subject_id"])
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

    async def _record(self, store: MailerStore, row: Row, outcome: str | Exception) -> None:
        attempt = row["attempts"] + 1
        if isinstance(outcome, Unsendable):
            await store.publish(DeliveryAttemptFailed(**delivery_fields(row), attempt=attempt,
                                                             reason=str(outcome)))
            await self._give_up(store, row, attempt, str(outcome))
            return
        if isinstance(outcome, Bounced):
            await handlers.suppress_address(store, outcome.email, "hard bounce", suppressions=self._suppressions)
            await store.mark_status(row["delivery_id"], "bounced")
            await store.publish(EmailBounced(**delivery_fields(row)))
            return
        if isinstance(outcome, Exception):
            if domain.gives_up(attempt, self._settings.max_delivery_attempts):
                await self._give_up(store, row, attempt, str(outcome))
                return
            delay = domain.retry_delay(attempt, self._settings.retry_base_seconds, self._settings.retry_max_seconds)
            await store.schedule_retry(row["delivery_id"], datetime.now(UTC) + timedelta(seconds=delay),
                                         str(outcome))
            await store.publish(DeliveryAttemptFailed(**delivery_fields(row), attempt=attempt,
                                                             reason=str(outcome)))
            log.info("delivery failed; will retry", delivery_id=str(row["delivery_id"]), kind=row["kind"],
                     attempt=attempt, error=str(outcome))
            return
        if row["kind"] in FORGET_AFTER_SEND:
            await store.forget_content(row["delivery_id"])  # a sealed token or reply has done its job
        if outcome == "cancelled":
            await store.mark_status(row["delivery_id"], "cancelled")
            await announce_cancelled(store, [row])
            return
        await store.mark_sent(row["delivery_id"])
        event_type = {domain.SHARED: ProcessorDelivered, domain.REVOKED: ProcessorRevocationSent}.get(row["kind"], EmailSent)
        await store.publish(event_type(**delivery_fields(row)))

    async def _give_up(self, store: MailerStore, row: Row, attempts: int, reason: str) -> None:
        await store.mark_failed(row["delivery_id"], reason)
        if row["kind"] in FORGET_AFTER_SEND:
            await store.forget_content(row["delivery_id"])  # nothing will open the sealed content again
        await store.publish(DeliveryGaveUp(**delivery_fields(row), attempts=attempts, reason=reason))
        log.warning("delivery failed for good", delivery_id=str(row["delivery_id"]), kind=row["kind"],
                    attempts=attempts, error=reason)
