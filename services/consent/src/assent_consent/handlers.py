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
    ConsentGranted, ConsentRevoked, ErasureConfirmed, PolicyUpdated, ProcessorRegistered, UnsubscribeRequested,
    UserErased, UserRegistered, UserRegisteredV2,
)


@dataclass(frozen=True)
class ChangeResult:
    state: domain.ConsentState
    changed: bool


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
            occurred_at=datetime.now(UTC),
        )
        event_id = await outbox.enqueue(conn, event)
        state = await storage.record_event(
            conn, event_id=event_id, subject_id=cmd.subject_id, seq=event.seq, purpose=cmd.purpose,
            recipient=cmd.recipient, granted=cmd.granted, policy_version=event.policy_version, source=cmd.source,
            occurred_at=event.occurred_at,
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

    async def apply_user_registered(self, conn: asyncpg.Connection, event: UserRegistered | UserRegisteredV2,
                                    _meta: EventMeta) -> None:
        await storage.lock_subject(conn, event.user_id)
        if event.newsletter_opt_in and not await storage.is_erased(conn, event.user_id):
            # The policy: signing up opts in to the newsletter.
            await self._change(conn, domain.ChangeConsent(event.user_id, "newsletter", domain.FIRST_PARTY, True, "signup"))

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
