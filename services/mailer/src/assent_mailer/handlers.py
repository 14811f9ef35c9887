"""The mailer's use cases, one function per command or event: storage (a unit of work, or the inbox's store)
first, then the command, then what else it needs, by keyword. They keep the consent view and contacts,
plan deliveries and run the registry; the dispatcher (`dispatcher.py`) sends what they queue."""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg
import structlog

from assent_mailer import domain, messages, relay_reports
from assent_mailer.mails import INQUIRY_REPLY
from assent_mailer.ports import MailerStore, Mailers, NewWebhook, Row
from assent_mailer.samples import SAMPLES
from assent_mailer.settings import MailerSettings
from assent_mailer.templating import Rendered, Templates
from assent_mailer.wakeup import WorkArrived
from assent_shared.cloudevents import EventMeta
from assent_shared.events import (
    ConsentGranted, ConsentRevoked, DeliveryCancelled, EmailBounced, EmailComplained, EmailVerificationRequested,
    ErasureConfirmed, PasswordResetRequested, PolicyUpdated, ProcessorRegistered, UnsubscribeRequested, UserEmailChanged,
    UserEmailChangedV2, UserErased, UserRegistered, UserRegisteredV2,
)
from assent_shared.personal import PersonalFields, SubjectErased
from assent_shared.tracing import current_traceparent

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


@dataclass(frozen=True)
class RegisterProcessor:
    processor_id: str
    name: str
    endpoint_url: str
    purposes: list[str]
    signing_secret: str


@dataclass(frozen=True)
class SendNewsletter:
    issue_id: str
    title: str
    body: str


def delivery_fields(row: Row) -> dict:
    """The fields every delivery event carries, from a `deliveries` row."""
    return {"subject_id": row["subject_id"], "delivery_id": row["delivery_id"], "kind": row["kind"],
            "consent_event_id": row["consent_event_id"], "recipient": row["recipient"],
            "occurred_at": datetime.now(UTC)}


async def announce_cancelled(store: MailerStore, rows: list[Row]) -> None:
    """Every delivery's outcome is published, a cancellation too."""
    await store.publish_all([DeliveryCancelled(**delivery_fields(row)) for row in rows])


async def apply_user_registered(store: MailerStore, event: UserRegistered | UserRegisteredV2, _meta: EventMeta, *,
                                personal: PersonalFields, work: WorkArrived) -> None:
    email = await _email_of(event, personal)
    if email is None:
        return
    await store.lock_subject(event.user_id)
    if not await store.upsert_contact(event.user_id, email, getattr(event, "locale", None)):
        return
    # Transactional mail: needs no consent.
    await store.insert_delivery(
        delivery_id=uuid4(), dedupe_key=f"welcome:{event.user_id}", subject_id=event.user_id,
        kind="welcome", channel="email", recipient=domain.FIRST_PARTY,
    )
    await _replan(store, event.user_id, work)


async def apply_link_requested(store: MailerStore, event: EmailVerificationRequested | PasswordResetRequested,
                               meta: EventMeta, *, work: WorkArrived) -> None:
    """Transactional mail with a single-use link; the token stays sealed until the mail is written."""
    await store.lock_subject(event.user_id)
    if await store.email_of(event.user_id) is None:
        return  # erased, or never known: nobody to write to
    kind = messages.LINK_KINDS[meta.type]
    await store.insert_delivery(
        delivery_id=uuid4(), dedupe_key=f"{kind}:{meta.id}", subject_id=event.user_id, kind=kind,
        channel="email", recipient=domain.FIRST_PARTY,
        content={"sealed_token": event.sealed_token, "event_type": meta.type,
                 "expires_at": event.expires_at.isoformat(), "locale": event.locale},
    )
    work.notify()


async def apply_email_changed(store: MailerStore, event: UserEmailChanged | UserEmailChangedV2, _meta: EventMeta, *,
                              personal: PersonalFields, work: WorkArrived) -> None:
    email = await _email_of(event, personal)
    if email is None:
        return
    await store.lock_subject(event.user_id)
    if await store.upsert_contact(event.user_id, email):
        await _replan(store, event.user_id, work)


async def _email_of(event: UserRegistered | UserRegisteredV2 | UserEmailChanged | UserEmailChangedV2,
                    personal: PersonalFields) -> str | None:
    """The address, opened through the key owner; None once the user is erased (the key is gone)."""
    if isinstance(event.email, str):  # an event of the first versions, from before fields were sealed
        return event.email
    try:
        return await personal.open(event, "email")
    except SubjectErased:
        return None


async def is_suppressed(store: MailerStore, email: str, *, suppressions: domain.SuppressionKeys) -> bool:
    """Looked up under every live key; a hash under an older key moves to the current one, so
    an old key can be retired once no hash is left under it."""
    found = await store.suppression_of(suppressions.every(email))
    if found is None:
        return False
    if found["key_id"] != suppressions.current_id:
        await store.suppress(suppressions.current(email), found["reason"])
        await store.forget_suppression([domain.AddressHash(found["key_id"], found["email_hash"])])
    return True


async def suppress_address(store: MailerStore, email: str, reason: str, *,
                           suppressions: domain.SuppressionKeys) -> None:
    await store.suppress(suppressions.current(email), reason)


async def prune_suppressions(mailers: Mailers, *, settings: MailerSettings) -> int:
    """Suppression hashes not seen for `suppression_keep_seconds` are deleted; returns how many."""
    async with mailers.transaction() as store:
        return await store.prune_suppressions(settings.suppression_keep_seconds)


async def keep_pruning_suppressions(mailers: Mailers, every_seconds: float, *, settings: MailerSettings) -> None:
    """`prune_suppressions` every `every_seconds` (runs until cancelled)."""
    while True:
        try:
            pruned = await prune_suppressions(mailers, settings=settings)
            if pruned:
                log.info("suppressions pruned", rows=pruned)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("suppression pruning failed", error=type(exc).__name__)
        await asyncio.sleep(every_seconds)


async def apply_user_erased(store: MailerStore, event: UserErased, _meta: EventMeta, *,
                            suppressions: domain.SuppressionKeys, work: WorkArrived) -> None:
    await store.lock_subject(event.user_id)
    email = await store.email_of(event.user_id)
    if email is not None:  # erasure takes the address's suppression hashes too
        await store.forget_suppression(suppressions.every(email))
    await store.erase_contact(event.user_id)
    await store.forget_contents(event.user_id)
    await announce_cancelled(store, await store.cancel_all_pending(event.user_id))
    # Withdrawing every consent lets the plan tell each processor that already has data to delete it.
    await store.withdraw_all(event.user_id)
    await _replan(store, event.user_id, work)
    await store.forget(str(event.user_id))
    await store.publish(ErasureConfirmed(user_id=event.user_id, service="mailer", confirmed_at=datetime.now(UTC)))


async def apply_consent(store: MailerStore, event: ConsentGranted | ConsentRevoked, meta: EventMeta, *,
                        work: WorkArrived) -> None:
    await apply_consents(store, [(event, meta)], work=work)


async def apply_consents(store: MailerStore, events: Sequence[tuple[ConsentGranted | ConsentRevoked, EventMeta]], *,
                         work: WorkArrived) -> None:
    """A batch of consent events in their order, each followed by its subject's plan as if applied alone
    (domain.replay: a revoke and a new grant within one batch still tell the processor of the revoke); what
    they read and write takes a few statements for the whole batch, not per event."""
    subjects = list({event.subject_id: None for event, _ in events})
    await store.lock_subjects(subjects)
    changes = [(event.subject_id, domain.ConsentView(event.purpose, event.recipient,
                                                     isinstance(event, ConsentGranted), event.seq, meta.id))
               for event, meta in events]
    replayed = domain.replay(changes, await store.consents_of(subjects), set(await store.emails_of(subjects)),
                             await store.processors(), await store.processor_deliveries(subjects))
    if not replayed.views:
        return
    await store.apply_consents([(subject, view) for (subject, _, _), view in replayed.views.items()])
    await store.insert_webhook_deliveries([
        NewWebhook(delivery_id, changes[i][0], new, events[i][1].traceparent or current_traceparent())
        for i, delivery_id, new in replayed.create])
    if replayed.cancel:  # after the inserts: a share planned and cancelled within the batch is cancelled too
        await announce_cancelled(store, await store.cancel(replayed.cancel))
    work.notify()


async def _replan(store: MailerStore, subject_id: UUID, work: WorkArrived) -> None:
    await _replan_all(store, {subject_id: current_traceparent()}, work)


async def _replan_all(store: MailerStore, subjects: dict[UUID, str | None], work: WorkArrived) -> None:
    """Plan each subject (by the trace its new deliveries join) in set-based statements."""
    ids = list(subjects)
    consents = await store.consents_of(ids)
    emails = await store.emails_of(ids)
    processors = await store.processors()
    deliveries = await store.processor_deliveries(ids)
    cancel: list[UUID] = []
    create: list[NewWebhook] = []
    for subject_id, traceparent in subjects.items():
        decided = domain.plan(consents.get(subject_id, []), subject_id in emails, processors,
                              deliveries.get(subject_id, []))
        cancel.extend(decided.cancel)
        create.extend(NewWebhook(uuid4(), subject_id, new, traceparent) for new in decided.create)
    if cancel:
        await announce_cancelled(store, await store.cancel(cancel))
    if create:
        await store.insert_webhook_deliveries(create)
    work.notify()


async def register_processor(mailers: Mailers, cmd: RegisterProcessor, *, work: WorkArrived) -> None:
    async with mailers.transaction() as store:
        await store.upsert_processor(cmd.processor_id, cmd.name, cmd.endpoint_url, cmd.purposes, cmd.signing_secret)
        await store.publish(ProcessorRegistered(processor_id=cmd.processor_id, name=cmd.name,
                                                purposes=tuple(cmd.purposes)))
        for subject_id in await store.subjects_granting(cmd.processor_id):
            await store.lock_subject(subject_id)
            await _replan(store, subject_id, work)


async def send_newsletter(mailers: Mailers, cmd: SendNewsletter, *, work: WorkArrived) -> int:
    async with mailers.transaction() as store:
        created = await _queue_newsletter(store, cmd.issue_id, {"title": cmd.title, "body": cmd.body})
    work.notify()
    return created


async def _queue_newsletter(store: MailerStore, issue_id: str, content: dict) -> int:
    """One delivery per subscriber; an issue queued twice reaches each subscriber once."""
    created = 0
    for subject_id in await store.newsletter_audience():
        created += await store.insert_delivery(
            delivery_id=uuid4(), dedupe_key=f"newsletter:{issue_id}:{subject_id}",
            subject_id=subject_id, kind="newsletter", channel="email", recipient=domain.FIRST_PARTY,
            purpose="newsletter", content=content,
        )
    return created


async def apply_policy_updated(store: MailerStore, event: PolicyUpdated, _meta: EventMeta, *,
                               work: WorkArrived) -> None:
    """A material change of the policy is told to newsletter subscribers (the notice tells everyone else)."""
    if not event.material or event.version == 1:
        return
    await _queue_newsletter(store, f"policy-{event.policy_id}-v{event.version}", {
        "mail": "policy_change", "title": event.title, "summary": event.summary, "version": event.version,
        "effective_at": event.effective_at.isoformat()})
    work.notify()


async def unsubscribe(mailers: Mailers, token: str, *, settings: MailerSettings) -> None:
    """BadToken for a token the mailer did not sign."""
    subject_id, purpose = messages.read_unsubscribe_token(settings.signing_secret, token)
    async with mailers.transaction() as store:
        await store.lock_subject(subject_id)
        await _withdraw(store, subject_id, purpose)


async def record_relay_report(mailers: Mailers, cmd: RecordRelayReport, *, settings: MailerSettings,
                              suppressions: domain.SuppressionKeys) -> dict:
    """A complaint unsubscribes the subject from the newsletter and suppresses the address; a hard bounce
    suppresses it; a soft bounce changes nothing. A report repeated by the relay changes nothing more."""
    if not relay_reports.signature_valid(settings.bounce_secret, cmd.signature, cmd.body, cmd.received_at):
        raise BadSignature("invalid signature")
    report = relay_reports.read(cmd.content_type, cmd.body)
    named = messages.sent_as(report.message_id)
    if named is None:
        raise UnknownMessage("not a Message-ID of ours")
    by, named_id = named
    key = {"delivery_id": named_id} if by == "delivery" else {"dedupe_key": f"{INQUIRY_REPLY}:{named_id}"}
    async with mailers.transaction() as store:
        row = await store.mail_delivery(**key, lock=False)
        if row is None:
            raise UnknownMessage("no such mail")
        await store.lock_subject(row["subject_id"])  # before the row, as every other writer
        row = await store.mail_delivery(**key, lock=True)
        status = {"bounce": "bounced", "complaint": "complained"}[report.kind]
        if not report.permanent or row["status"] == status:
            return {"delivery_id": row["delivery_id"], "outcome": "unchanged"}
        address = report.recipient or await store.email_of(row["subject_id"])
        if address is not None:
            await suppress_address(store, address, "complaint" if report.kind == "complaint" else "hard bounce",
                                   suppressions=suppressions)
        await store.mark_status(row["delivery_id"], status)
        if report.kind == "complaint":
            if await store.contact_status(row["subject_id"]) == "known":  # a user, not an inquiry
                await _withdraw(store, row["subject_id"], "newsletter")
            await store.publish(EmailComplained(**delivery_fields(row)))
        else:
            await store.publish(EmailBounced(**delivery_fields(row)))
    return {"delivery_id": row["delivery_id"], "outcome": status}


async def list_deliveries_of(mailers: Mailers, subject_id: UUID, after: tuple[datetime, UUID] | None = None,
                             limit: int | None = None) -> list[Row]:
    async with mailers.reading() as store:
        return await store.deliveries_of(subject_id, after, limit)


async def list_processors(mailers: Mailers, after: str | None, limit: int) -> list[Row]:
    async with mailers.reading() as store:
        return await store.processor_page(after, limit)


async def list_deliveries_to(mailers: Mailers, processor_id: str, before: tuple[datetime, UUID] | None,
                             limit: int) -> list[Row]:
    async with mailers.reading() as store:
        return await store.deliveries_to(processor_id, before, limit)


def list_templates(templates: Templates) -> dict[str, tuple[str, ...]]:
    """Every mail the system sends, with the languages it is written in."""
    return {mail: templates.locales(mail) for mail in SAMPLES}


def preview_template(templates: Templates, mail: str, locale: str, *, settings: MailerSettings) -> Rendered:
    """A mail as it would go out, with invented values (samples.SAMPLES): the admin console's preview.
    UnknownTemplate for a mail or language there is no template of."""
    templates.locales(mail)
    return templates.render(mail, locale, {**SAMPLES[mail], "sender_name": messages.sender_name(settings.mail_from)})


async def _withdraw(store: MailerStore, subject_id: UUID, purpose: str) -> None:
    """The recipient said stop (an unsubscribe link, a complaint): stop at once, and have consent record it."""
    await store.withdraw_locally(subject_id, purpose)
    await announce_cancelled(store, await store.cancel_pending_mail(subject_id, purpose))
    await store.publish(UnsubscribeRequested(subject_id=subject_id, purpose=purpose, requested_at=datetime.now(UTC)))
