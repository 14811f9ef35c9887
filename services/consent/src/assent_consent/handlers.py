"""Consent's use cases."""

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from assent_consent import domain, storage
from assent_consent.receipts import ReceiptSigner
from assent_consent.settings import ConsentSettings
from assent_shared import outbox
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


class ConsentHandlers:
    def __init__(self, pool: asyncpg.Pool, settings: ConsentSettings) -> None:
        self._pool = pool
        self._settings = settings
        self.signer = ReceiptSigner(settings.signing_secret)

    async def change_consent(self, cmd: domain.ChangeConsent) -> ChangeResult:
        async with self._pool.acquire() as conn, conn.transaction():
            return await self._change(conn, cmd)

    async def _change(self, conn: asyncpg.Connection, cmd: domain.ChangeConsent) -> ChangeResult:
        domain.check_target(cmd.purpose, cmd.recipient, set(self._settings.purposes), await storage.processors(conn))
        last_seq = await storage.lock_subject(conn, cmd.subject_id)
        if await storage.is_erased(conn, cmd.subject_id):
            raise domain.SubjectErased(str(cmd.subject_id))
        current = await storage.state_of(conn, cmd.subject_id, cmd.purpose, cmd.recipient)
        if not domain.is_change(current, cmd.granted):
            if current is None:  # revoking what was never granted: nothing to record
                current = domain.ConsentState(cmd.subject_id, cmd.purpose, cmd.recipient, False, 0,
                                              UUID(int=0), datetime.now(UTC))
            return ChangeResult(current, changed=False)
        event_type = ConsentGranted if cmd.granted else ConsentRevoked
        event = event_type(
            subject_id=cmd.subject_id, purpose=cmd.purpose, recipient=cmd.recipient, seq=last_seq + 1,
            policy_version=await storage.policy_version(conn, self._settings.policy_id), source=cmd.source,
            occurred_at=datetime.now(UTC), evidence=cmd.evidence,
        )
        event_id = await outbox.enqueue(conn, event)
        state = await storage.record_event(
            conn, event_id=event_id, subject_id=cmd.subject_id, seq=event.seq, purpose=cmd.purpose,
            recipient=cmd.recipient, granted=cmd.granted, policy_version=event.policy_version, source=cmd.source,
            occurred_at=event.occurred_at, evidence=cmd.evidence,
        )
        return ChangeResult(state, changed=True)

    async def withdraw_third_party(self, subject_id: UUID) -> list[ChangeResult]:
        """Honour Global Privacy Control: revoke every third-party grant before anything is passed on."""
        async with self._pool.acquire() as conn, conn.transaction():
            await storage.lock_subject(conn, subject_id)
            grants = domain.third_party_grants(await storage.states_of(conn, subject_id))
            return [
                await self._change(conn, domain.ChangeConsent(subject_id, g.purpose, g.recipient, False, "gpc"))
                for g in grants
            ]

    async def consents_of(self, subject_id: UUID) -> list[domain.ConsentState]:
        async with self._pool.acquire() as conn:
            return await storage.states_of(conn, subject_id)

    async def history_of(self, subject_id: UUID, after_seq: int = 0, limit: int | None = None) -> list[dict]:
        async with self._pool.acquire() as conn:
            return [self.signer.receipt(r) for r in await storage.history_of(conn, subject_id, after_seq, limit)]

    async def receipt(self, event_id: UUID) -> tuple[UUID, dict] | None:
        async with self._pool.acquire() as conn:
            row = await storage.event_by_id(conn, event_id)
        return (row["subject_id"], self.signer.receipt(row)) if row else None

    async def purposes(self) -> list[dict]:
        async with self._pool.acquire() as conn:
            processors = await storage.processor_rows(conn)
        return [
            {"purpose": purpose, "description": description,
             "recipients": [domain.FIRST_PARTY] + [p["processor_id"] for p in processors if purpose in p["purposes"]]}
            for purpose, description in sorted(self._settings.purposes.items())
        ]

    async def apply_email_verified(self, conn: asyncpg.Connection, event: EmailVerified, meta: EventMeta) -> None:
        """The policy: signing up opts in to the newsletter. The grant takes effect on a verified address (anyone
        can type a stranger's), with the verification as its evidence, unless the user has decided since."""
        if not event.newsletter_opt_in:
            return
        await storage.lock_subject(conn, event.user_id)
        if await storage.is_erased(conn, event.user_id):
            return
        if await storage.state_of(conn, event.user_id, "newsletter", domain.FIRST_PARTY) is not None:
            return
        await self._change(conn, domain.ChangeConsent(event.user_id, "newsletter", domain.FIRST_PARTY, True, "signup",
                                                      evidence=f"EmailVerified:{meta.id}"))

    async def apply_user_erased(self, conn: asyncpg.Connection, event: UserErased, _meta: EventMeta) -> None:
        await storage.lock_subject(conn, event.user_id)
        await storage.erase_subject(conn, event.user_id, event.erased_at)
        await outbox.forget(conn, str(event.user_id))
        await outbox.enqueue(conn, ErasureConfirmed(user_id=event.user_id, service="consent",
                                                    confirmed_at=datetime.now(UTC)))

    async def apply_unsubscribe_requested(self, conn: asyncpg.Connection, event: UnsubscribeRequested,
                                          _meta: EventMeta) -> None:
        if await storage.is_erased(conn, event.subject_id):
            return
        await self._change(conn, domain.ChangeConsent(event.subject_id, event.purpose, event.recipient, False,
                                                      "unsubscribe_link"))

    async def apply_processor_registered(self, conn: asyncpg.Connection, event: ProcessorRegistered,
                                         _meta: EventMeta) -> None:
        await storage.upsert_processor(conn, event.processor_id, event.name, list(event.purposes))

    async def apply_policy_updated(self, conn: asyncpg.Connection, event: PolicyUpdated, _meta: EventMeta) -> None:
        await storage.record_policy(conn, event.policy_id, event.version)

    def device_purposes(self) -> list[dict]:
        third = set(self._settings.third_party_device_purposes)
        return [{"purpose": p, "description": d, "third_party": p in third}
                for p, d in sorted(self._settings.device_purposes.items())]

    async def change_device_consent(self, cmd: domain.ChangeDeviceConsent) -> domain.DeviceConsentState:
        """Record a visitor's choice for their browser; `Sec-GPC: 1` also withdraws every third-party grant."""
        if cmd.purpose not in self._settings.device_purposes:
            raise UnknownDevicePurpose(cmd.purpose)
        third = set(self._settings.third_party_device_purposes)
        granted, source = domain.device_decision(cmd, third)
        async with self._pool.acquire() as conn, conn.transaction():
            await storage.lock_device(conn, cmd.device_id)
            if cmd.gpc:
                for held in domain.gpc_withdrawals(await storage.device_states(conn, cmd.device_id), third):
                    await self._change_device(conn, cmd.device_id, held.purpose, False, "gpc", True)
            return await self._change_device(conn, cmd.device_id, cmd.purpose, granted, source, cmd.gpc)

    async def _change_device(self, conn: asyncpg.Connection, device_id: str, purpose: str, granted: bool,
                             source: domain.DeviceSource, gpc: bool) -> domain.DeviceConsentState:
        states = {s.purpose: s for s in await storage.device_states(conn, device_id)}
        current = states.get(purpose)
        # Unlike a subject's, a device's refusal is recorded the first time too: the banner's answer is the receipt.
        if current is not None and current.granted == granted:
            return current
        last_seq = await storage.lock_device(conn, device_id)
        event_type = DeviceConsentGranted if granted else DeviceConsentRevoked
        event = event_type(device_id=device_id, purpose=purpose, seq=last_seq + 1, source=source, gpc=gpc,
                           policy_version=await storage.policy_version(conn, self._settings.policy_id),
                           occurred_at=datetime.now(UTC))
        event_id = await outbox.enqueue(conn, event)
        return await storage.record_device_event(
            conn, event_id=event_id, device_id=device_id, seq=event.seq, purpose=purpose, granted=granted,
            policy_version=event.policy_version, source=source, gpc=gpc, occurred_at=event.occurred_at,
        )

    async def device_consents(self, device_id: str) -> list[domain.DeviceConsentState]:
        async with self._pool.acquire() as conn:
            return await storage.device_states(conn, device_id)

    async def device_history(self, device_id: str) -> list[dict]:
        async with self._pool.acquire() as conn:
            return [self.signer.device_receipt(r) for r in await storage.device_history(conn, device_id)]

    async def device_receipt(self, device_id: str, event_id: UUID) -> dict | None:
        async with self._pool.acquire() as conn:
            row = await storage.device_event(conn, device_id, event_id)
        return self.signer.device_receipt(row) if row else None
