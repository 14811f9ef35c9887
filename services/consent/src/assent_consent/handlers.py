"""Consent's use cases, one function per command or event: storage (a unit of work, or the inbox's store) first,
then the command, then what else it needs, by keyword."""

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from assent_consent import domain
from assent_consent.ports import Consents, ConsentStore
from assent_consent.receipts import ReceiptSigner
from assent_consent.settings import ConsentSettings
from assent_shared.cloudevents import EventMeta
from assent_shared.events import (
    ConsentGranted, ConsentRevoked, DeviceConsentGranted, DeviceConsentRevoked, EmailVerified, ErasureConfirmed,
    PolicyUpdated, ProcessorRegistered, UnsubscribeRequested, UserErased,
)


@dataclass(frozen=True)
class ChangeResult:
    state: domain.ConsentState
    changed: bool


class UnknownDevicePurpose(ValueError):
    pass


async def change_consent(consents: Consents, cmd: domain.ChangeConsent, *,
                         settings: ConsentSettings) -> ChangeResult:
    async with consents.transaction() as store:
        return await _change(store, cmd, settings)


async def _change(store: ConsentStore, cmd: domain.ChangeConsent, settings: ConsentSettings) -> ChangeResult:
    domain.check_target(cmd.purpose, cmd.recipient, set(settings.purposes), await store.processors())
    last_seq = await store.lock_subject(cmd.subject_id)
    if await store.is_erased(cmd.subject_id):
        raise domain.SubjectErased(str(cmd.subject_id))
    current = await store.state_of(cmd.subject_id, cmd.purpose, cmd.recipient)
    if not domain.is_change(current, cmd.granted):
        if current is None:  # revoking what was never granted: nothing to record
            current = domain.ConsentState(cmd.subject_id, cmd.purpose, cmd.recipient, False, 0,
                                          UUID(int=0), datetime.now(UTC))
        return ChangeResult(current, changed=False)
    event_type = ConsentGranted if cmd.granted else ConsentRevoked
    event = event_type(
        subject_id=cmd.subject_id, purpose=cmd.purpose, recipient=cmd.recipient, seq=last_seq + 1,
        policy_version=await store.policy_version(settings.policy_id), source=cmd.source,
        occurred_at=datetime.now(UTC), evidence=cmd.evidence,
    )
    event_id = await store.publish(event)
    state = await store.record_event(
        event_id=event_id, subject_id=cmd.subject_id, seq=event.seq, purpose=cmd.purpose,
        recipient=cmd.recipient, granted=cmd.granted, policy_version=event.policy_version, source=cmd.source,
        occurred_at=event.occurred_at, evidence=cmd.evidence,
    )
    return ChangeResult(state, changed=True)


async def withdraw_third_party(consents: Consents, subject_id: UUID, *,
                               settings: ConsentSettings) -> list[ChangeResult]:
    """Honour Global Privacy Control: revoke every third-party grant before anything is passed on."""
    async with consents.transaction() as store:
        await store.lock_subject(subject_id)
        grants = domain.third_party_grants(await store.states_of(subject_id))
        return [
            await _change(store, domain.ChangeConsent(subject_id, g.purpose, g.recipient, False, "gpc"), settings)
            for g in grants
        ]


async def list_consents(consents: Consents, subject_id: UUID) -> list[domain.ConsentState]:
    async with consents.reading() as store:
        return await store.states_of(subject_id)


async def list_receipts(consents: Consents, subject_id: UUID, after_seq: int = 0, limit: int | None = None, *,
                        signer: ReceiptSigner) -> list[dict]:
    async with consents.reading() as store:
        return [signer.receipt(r) for r in await store.history_of(subject_id, after_seq, limit)]


async def find_receipt(consents: Consents, event_id: UUID, *, signer: ReceiptSigner) -> tuple[UUID, dict] | None:
    """The receipt and whose it is."""
    async with consents.reading() as store:
        row = await store.event_by_id(event_id)
    return (row["subject_id"], signer.receipt(row)) if row else None


async def list_purposes(consents: Consents, *, settings: ConsentSettings) -> list[dict]:
    async with consents.reading() as store:
        processors = await store.processor_rows()
    return [
        {"purpose": purpose, "description": description,
         "recipients": [domain.FIRST_PARTY] + [p["processor_id"] for p in processors if purpose in p["purposes"]]}
        for purpose, description in sorted(settings.purposes.items())
    ]


async def apply_email_verified(store: ConsentStore, event: EmailVerified, meta: EventMeta, *,
                               settings: ConsentSettings) -> None:
    """The policy: signing up opts in to the newsletter. The grant takes effect on a verified address (anyone
    can type a stranger's), with the verification as its evidence, unless the user has decided since."""
    if not event.newsletter_opt_in:
        return
    await store.lock_subject(event.user_id)
    if await store.is_erased(event.user_id):
        return
    if await store.state_of(event.user_id, "newsletter", domain.FIRST_PARTY) is not None:
        return
    await _change(store, domain.ChangeConsent(event.user_id, "newsletter", domain.FIRST_PARTY, True, "signup",
                                              evidence=f"EmailVerified:{meta.id}"), settings)


async def apply_user_erased(store: ConsentStore, event: UserErased, _meta: EventMeta) -> None:
    await store.lock_subject(event.user_id)
    await store.erase_subject(event.user_id, event.erased_at)
    await store.forget(str(event.user_id))
    await store.publish(ErasureConfirmed(user_id=event.user_id, service="consent", confirmed_at=datetime.now(UTC)))


async def apply_unsubscribe_requested(store: ConsentStore, event: UnsubscribeRequested, _meta: EventMeta, *,
                                      settings: ConsentSettings) -> None:
    if await store.is_erased(event.subject_id):
        return
    await _change(store, domain.ChangeConsent(event.subject_id, event.purpose, event.recipient, False,
                                              "unsubscribe_link"), settings)


async def apply_processor_registered(store: ConsentStore, event: ProcessorRegistered, _meta: EventMeta) -> None:
    await store.upsert_processor(event.processor_id, event.name, list(event.purposes))


async def apply_policy_updated(store: ConsentStore, event: PolicyUpdated, _meta: EventMeta) -> None:
    await store.record_policy(event.policy_id, event.version)


def list_device_purposes(*, settings: ConsentSettings) -> list[dict]:
    third = set(settings.third_party_device_purposes)
    return [{"purpose": p, "description": d, "third_party": p in third}
            for p, d in sorted(settings.device_purposes.items())]


async def change_device_consent(consents: Consents, cmd: domain.ChangeDeviceConsent, *,
                                settings: ConsentSettings) -> domain.DeviceConsentState:
    """Record a visitor's choice for their browser; `Sec-GPC: 1` also withdraws every third-party grant."""
    if cmd.purpose not in settings.device_purposes:
        raise UnknownDevicePurpose(cmd.purpose)
    third = set(settings.third_party_device_purposes)
    granted, source = domain.device_decision(cmd, third)
    async with consents.transaction() as store:
        await store.lock_device(cmd.device_id)
        if cmd.gpc:
            for held in domain.gpc_withdrawals(await store.device_states(cmd.device_id), third):
                await _change_device(store, cmd.device_id, held.purpose, False, "gpc", True, settings)
        return await _change_device(store, cmd.device_id, cmd.purpose, granted, source, cmd.gpc, settings)


async def _change_device(store: ConsentStore, device_id: str, purpose: str, granted: bool,
                         source: domain.DeviceSource, gpc: bool,
                         settings: ConsentSettings) -> domain.DeviceConsentState:
    states = {s.purpose: s for s in await store.device_states(device_id)}
    current = states.get(purpose)
    # Unlike a subject's, a device's refusal is recorded the first time too: the banner's answer is the receipt.
    if current is not None and current.granted == granted:
        return current
    last_seq = await store.lock_device(device_id)
    event_type = DeviceConsentGranted if granted else DeviceConsentRevoked
    event = event_type(device_id=device_id, purpose=purpose, seq=last_seq + 1, source=source, gpc=gpc,
                       policy_version=await store.policy_version(settings.policy_id),
                       occurred_at=datetime.now(UTC))
    event_id = await store.publish(event)
    return await store.record_device_event(
        event_id=event_id, device_id=device_id, seq=event.seq, purpose=purpose, granted=granted,
        policy_version=event.policy_version, source=source, gpc=gpc, occurred_at=event.occurred_at,
    )


async def list_device_consents(consents: Consents, device_id: str) -> list[domain.DeviceConsentState]:
    async with consents.reading() as store:
        return await store.device_states(device_id)


async def list_device_receipts(consents: Consents, device_id: str, *, signer: ReceiptSigner) -> list[dict]:
    async with consents.reading() as store:
        return [signer.device_receipt(r) for r in await store.device_history(device_id)]


async def find_device_receipt(consents: Consents, device_id: str, event_id: UUID, *,
                              signer: ReceiptSigner) -> dict | None:
    async with consents.reading() as store:
        row = await store.device_event(device_id, event_id)
    return signer.device_receipt(row) if row else None
