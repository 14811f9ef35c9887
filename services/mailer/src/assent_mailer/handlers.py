"""The mailer's use cases: keep the consent view and contacts, plan deliveries, run the registry."""

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg
import structlog

from assent_mailer import domain, messages, relay_reports, storage
from assent_mailer.mails import INQUIRY_REPLY
from assent_mailer.samples import SAMPLES
from assent_mailer.settings import MailerSettings
from assent_mailer.templating import Rendered, Templates
from assent_shared import outbox
from assent_shared.cloudevents import EventMeta
from assent_shared.events import (
    ConsentGranted, ConsentRevoked, DeliveryCancelled, EmailBounced, EmailComplained, EmailVerificationRequested,
    ErasureConfirmed, PasswordResetRequested, PolicyUpdated, ProcessorRegistered, UnsubscribeRequested, UserEmailChanged,
    UserEmailChangedV2, UserErased, UserRegistered, UserRegisteredV2,
)
from assent_shared.personal import PersonalFields, SubjectErased

log = structlog.get_logger(__name__)


class BadSignature(ValueError):
    """A relay report without a valid, fresh `Assent-Signature`."""


class UnknownMessage(LookupError):
    """A relay report about a mail the mailer did not send."""


@dataclass(frozen=True)
class RecordRelayReport:
    """The relay reports a bounce or a complaint about a mail it took (`POST /v1/bounces`)."""

    signature: str
    content_type: str
    body: bytes
    received_at: float  # unix seconds, for the signature's freshness


def delivery_fields(row: asyncpg.Record) -> dict:
    """The fields every delivery event carries, from a `deliveries` row."""
    return {"subject_id": row["subject_id"], "delivery_id": row["delivery_id"], "kind": row["kind"],
            "consent_event_id": row["consent_event_id"], "recipient": row["recipient"],
            "occurred_at": datetime.now(UTC)}


async def announce_cancelled(conn: asyncpg.Connection, rows: list[asyncpg.Record]) -> None:
    """Every delivery's outcome is published, a cancellation too."""
    for row in rows:
        await outbox.enqueue(conn, DeliveryCancelled(**delivery_fields(row)))


class MailerHandlers:
    def __init__(self, pool: asyncpg.Pool, settings: MailerSettings, personal: PersonalFields,
                 suppressions: domain.SuppressionKeys, templates: Templates) -> None:
        self._templates = templates
        self._pool = pool
        self._personal = personal
        self._suppressions = suppressions
        self._settings = settings
        self.work_arrived = asyncio.Event()

    async def apply_user_registered(self, conn: asyncpg.Connection, event: UserRegistered | UserRegisteredV2,
                                    _meta: EventMeta) -> None:
        email = await self._email_of(event)
        if email is None:
            return
        await storage.lock_subject(conn, event.user_id)
        if not await storage.upsert_contact(conn, event.user_id, email, getattr(event, "locale", None)):
            return
        # Transactional mail: needs no consent.
        await storage.insert_delivery(
            conn, delivery_id=uuid4(), dedupe_key=f"welcome:{event.user_id}", subject_id=event.user_id,
            kind="welcome", channel="email", recipient=domain.FIRST_PARTY,
        )
        await self._replan(conn, event.user_id)

    async def apply_link_requested(self, conn: asyncpg.Connection,
                                   event: EmailVerificationRequested | PasswordResetRequested, meta: EventMeta) -> None:
        """Transactional mail with a single-use link; the token stays sealed until the mail is written."""
        await storage.lock_subject(conn, event.user_id)
        if await storage.email_of(conn, event.user_id) is None:
            return  # erased, or never known: nobody to write to
        kind = messages.LINK_KINDS[meta.type]
        await storage.insert_delivery(
            conn, delivery_id=uuid4(), dedupe_key=f"{kind}:{meta.id}", subject_id=event.user_id, kind=kind,
            channel="email", recipient=domain.FIRST_PARTY,
            content={"sealed_token": event.sealed_token, "event_type": meta.type,
                     "expires_at": event.expires_at.isoformat(), "locale": event.locale},
        )
        self.work_arrived.set()

    async def apply_email_changed(self, conn: asyncpg.Connection, event: UserEmailChanged | UserEmailChangedV2,
                                  _meta: EventMeta) -> None:
        email = await self._email_of(event)
        if email is None:
            return
        await storage.lock_subject(conn, event.user_id)
        if await storage.upsert_contact(conn, event.user_id, email):
            await self._replan(conn, event.user_id)

    async def _email_of(self, event: UserRegistered | UserRegisteredV2 | UserEmailChanged | UserEmailChangedV2
                        ) -> str | None:
        """The address, opened through the key owner; None once the user is erased (the key is gone)."""
        if isinstance(event.email, str):  # an event of the first versions, from before fields were sealed
            return event.email
        try:
            return await self._personal.open(event, "email")
        except SubjectErased:
            return None

    async def is_suppressed(self, conn: asyncpg.Connection, email: str) -> bool:
        """Looked up under every live key; a hash under an older key moves to the current one, so
        an old key can be retired once no hash is left under it."""
        found = await storage.suppression_of(conn, self._suppressions.every(email))
        if found is None:
            return False
        if found["key_id"] != self._suppressions.current_id:
            await storage.suppress(conn, self._suppressions.current(email), found["reason"])
            await storage.forget_suppression(conn, [domain.AddressHash(found["key_id"], found["email_hash"])])
        return True

    async def suppress_address(self, conn: asyncpg.Connection, email: str, reason: str) -> None:
        await storage.suppress(conn, self._suppressions.current(email), reason)

    async def prune_suppressions(self, every_seconds: float) -> None:
        """Suppression hashes not seen for `suppression_keep_seconds` are deleted (runs until cancelled)."""
        while True:
            try:
                async with self._pool.acquire() as conn:
                    pruned = await storage.prune_suppressions(conn, self._settings.suppression_keep_seconds)
                if pruned:
                    log.info("suppressions pruned", rows=pruned)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("suppression pruning failed", error=type(exc).__name__)
            await asyncio.sleep(every_seconds)

    async def apply_user_erased(self, conn: asyncpg.Connection, event: UserErased, _meta: EventMeta) -> None:
        await storage.lock_subject(conn, event.user_id)
        email = await storage.email_of(conn, event.user_id)
        if email is not None:  # erasure takes the address's suppression hashes too
            await storage.forget_suppression(conn, self._suppressions.every(email))
        await storage.erase_contact(conn, event.user_id)
        await storage.forget_contents(conn, event.user_id)
        await announce_cancelled(conn, await storage.cancel_all_pending(conn, event.user_id))
        # Withdrawing every consent lets the plan tell each processor that already has data to delete it.
        await storage.withdraw_all(conn, event.user_id)
        await self._replan(conn, event.user_id)
        await outbox.forget(conn, str(event.user_id))
        await outbox.enqueue(conn, ErasureConfirmed(user_id=event.user_id, service="mailer",
                                                    confirmed_at=datetime.now(UTC)))

    async def apply_consent(self, conn: asyncpg.Connection, event: ConsentGranted | ConsentRevoked,
                            meta: EventMeta) -> None:
        await storage.lock_subject(conn, event.subject_id)
        view = domain.ConsentView(event.purpose, event.recipient, isinstance(event, ConsentGranted), event.seq, meta.id)
        held = await storage.consent_of(conn, event.subject_id, event.purpose, event.recipient)
        if domain.applies(held, event.seq) and await storage.apply_consent(conn, event.subject_id, view):
            await self._replan(conn, event.subject_id)

    async def _replan(self, conn: asyncpg.Connection, subject_id: UUID) -> None:
        decided = domain.plan(
            await storage.consents_of(conn, subject_id),
            await storage.email_of(conn, subject_id) is not None,
            await storage.processors(conn),
            await storage.processor_deliveries(conn, subject_id),
        )
        if decided.cancel:
            await announce_cancelled(conn, await storage.cancel(conn, decided.cancel))
        for new in decided.create:
            await storage.insert_delivery(
                conn, delivery_id=uuid4(), dedupe_key=new.dedupe_key, subject_id=subject_id, kind=new.kind,
                channel="webhook", recipient=new.recipient, purpose=new.purpose,
                consent_event_id=new.consent_event_id,
            )
        self.work_arrived.set()

    async def register_processor(self, processor_id: str, name: str, endpoint_url: str, purposes: list[str],
                                 signing_secret: str) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await storage.upsert_processor(conn, processor_id, name, endpoint_url, purposes, signing_secret)
            await outbox.enqueue(conn, ProcessorRegistered(processor_id=processor_id, name=name,
                                                           purposes=tuple(purposes)))
            for subject_id in await storage.subjects_granting(conn, processor_id):
                await storage.lock_subject(conn, subject_id)
                await self._replan(conn, subject_id)

    async def send_newsletter(self, issue_id: str, title: str, body: str) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            created = await self._queue_newsletter(conn, issue_id, {"title": title, "body": body})
        self.work_arrived.set()
        return created

    async def _queue_newsletter(self, conn: asyncpg.Connection, issue_id: str, content: dict) -> int:
        """One delivery per subscriber; an issue queued twice reaches each subscriber once."""
        created = 0
        for subject_id in await storage.newsletter_audience(conn):
            created += await storage.insert_delivery(
                conn, delivery_id=uuid4(), dedupe_key=f"newsletter:{issue_id}:{subject_id}",
                subject_id=subject_id, kind="newsletter", channel="email", recipient=domain.FIRST_PARTY,
                purpose="newsletter", content=content,
            )
        return created

    async def apply_policy_updated(self, conn: asyncpg.Connection, event: PolicyUpdated, _meta: EventMeta) -> None:
        """A material change of the policy is told to newsletter subscribers (the notice tells everyone else)."""
        if not event.material or event.version == 1:
            return
        await self._queue_newsletter(conn, f"policy-{event.policy_id}-v{event.version}", {
            "mail": "policy_change", "title": event.title, "summary": event.summary, "version": event.version,
            "effective_at": event.effective_at.isoformat()})
        self.work_arrived.set()

    async def unsubscribe(self, token: str) -> None:
        subject_id, purpose = messages.read_unsubscribe_token(self._settings.signing_secret, token)
        async with self._pool.acquire() as conn, conn.transaction():
            await storage.lock_subject(conn, subject_id)
            await _withdraw(conn, subject_id, purpose)

    async def record_relay_report(self, command: RecordRelayReport) -> dict:
        """A complaint unsubscribes the subject from the newsletter and suppresses the address; a hard bounce
        suppresses it; a soft bounce changes nothing. A report repeated by the relay changes nothing more."""
        if not relay_reports.signature_valid(self._settings.bounce_secret, command.signature, command.body,
                                             command.received_at):
            raise BadSignature("invalid signature")
        report = relay_reports.read(command.content_type, command.body)
        named = messages.sent_as(report.message_id)
        if named is None:
            raise UnknownMessage("not a Message-ID of ours")
        by, named_id = named
        key = {"delivery_id": named_id} if by == "delivery" else {"dedupe_key": f"{INQUIRY_REPLY}:{named_id}"}
        async with self._pool.acquire() as conn, conn.transaction():
            row = await storage.mail_delivery(conn, **key, lock=False)
            if row is None:
                raise UnknownMessage("no such mail")
            await storage.lock_subject(conn, row["subject_id"])  # before the row, as every other writer
            row = await storage.mail_delivery(conn, **key, lock=True)
            status = {"bounce": "bounced", "complaint": "complained"}[report.kind]
            if not report.permanent or row["status"] == status:
                return {"delivery_id": row["delivery_id"], "outcome": "unchanged"}
            address = report.recipient or await storage.email_of(conn, row["subject_id"])
            if address is not None:
                await self.suppress_address(conn, address, "complaint" if report.kind == "complaint" else "hard bounce")
            await storage.mark_status(conn, row["delivery_id"], status)
            if report.kind == "complaint":
                if await storage.contact_status(conn, row["subject_id"]) == "known":  # a user, not an inquiry
                    await _withdraw(conn, row["subject_id"], "newsletter")
                await outbox.enqueue(conn, EmailComplained(**delivery_fields(row)))
            else:
                await outbox.enqueue(conn, EmailBounced(**delivery_fields(row)))
        return {"delivery_id": row["delivery_id"], "outcome": status}

    async def deliveries_of(self, subject_id: UUID, after: tuple[datetime, UUID] | None = None,
                            limit: int | None = None) -> list[asyncpg.Record]:
        async with self._pool.acquire() as conn:
            return await storage.deliveries_of(conn, subject_id, after, limit)

    async def processors_page(self, after: str | None, limit: int) -> list[asyncpg.Record]:
        async with self._pool.acquire() as conn:
            return await storage.processor_page(conn, after, limit)

    async def deliveries_to(self, processor_id: str, before: tuple[datetime, UUID] | None,
                            limit: int) -> list[asyncpg.Record]:
        async with self._pool.acquire() as conn:
            return await storage.deliveries_to(conn, processor_id, before, limit)

    def templates(self) -> dict[str, tuple[str, ...]]:
        """Every mail the system sends, with the languages it is written in."""
        return {mail: self._templates.locales(mail) for mail in SAMPLES}

    def preview(self, mail: str, locale: str) -> Rendered:
        """A mail as it would go out, with invented values (samples.SAMPLES): the admin console's preview.
        UnknownTemplate for a mail or language there is no template of."""
        self._templates.locales(mail)
        return self._templates.render(mail, locale, {**SAMPLES[mail], "sender_name": messages.sender_name(
            self._settings.mail_from)})


async def _withdraw(conn: asyncpg.Connection, subject_id: UUID, purpose: str) -> None:
    """The recipient said stop (an unsubscribe link, a complaint): stop at once, and have consent record it."""
    await storage.withdraw_locally(conn, subject_id, purpose)
    await announce_cancelled(conn, await storage.cancel_pending_mail(conn, subject_id, purpose))
    await outbox.enqueue(conn, UnsubscribeRequested(subject_id=subject_id, purpose=purpose,
                                                    requested_at=datetime.now(UTC)))
