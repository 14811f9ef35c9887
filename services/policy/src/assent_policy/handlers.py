"""Policy's use cases: one handler each, called by the HTTP routes, the subscribers and the scheduler."""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import structlog

from assent_policy import domain, storage
from assent_policy.settings import PolicySettings
from assent_shared import outbox
from assent_shared.cloudevents import EventMeta
from assent_shared.events import (
    ErasureConfirmed, PolicyAccepted, PolicyUpdated, UserErased, UserRegistered, UserRegisteredV2,
)

log = structlog.get_logger(__name__)


class NotFound(Exception):
    pass


class NotInForce(Exception):
    """The version exists but is still scheduled."""


class VersionConflict(Exception):
    """The caller expected another version number: published versions never change."""


class PolicyHandlers:
    def __init__(self, pool: asyncpg.Pool, settings: PolicySettings) -> None:
        self._pool = pool
        self._settings = settings

    async def seed(self) -> None:
        """Ensures the site's policy has version 1; replicas starting together insert it once."""
        async with self._pool.acquire() as conn, conn.transaction():
            await storage.lock_policy(conn, self._settings.policy_id)
            inserted = await storage.insert_version(conn, self._settings.policy_id, 1, domain.first_version())
            if inserted is not None:
                await self._announce_due(conn)
                log.info("policy seeded", policy_id=inserted.policy_id, version=1)

    async def publish(self, policy_id: str, new: domain.NewVersion, expected: int | None) -> domain.Version:
        domain.check_data_use(new.data_use)
        async with self._pool.acquire() as conn, conn.transaction():
            await storage.lock_policy(conn, policy_id)
            latest = await storage.latest_version(conn, policy_id)
            number = latest.version + 1 if latest else 1
            if expected is not None and expected != number:
                raise VersionConflict(
                    f"Version {expected} is already published and cannot change; the next version is {number}."
                    if expected < number else f"The next version is {number}."
                )
            effective_at = domain.effective_time(new.effective_at, datetime.now(UTC), latest)
            created = await storage.insert_version(conn, policy_id, number, replace(new, effective_at=effective_at))
            assert created is not None  # the policy lock keeps the number ours
            announced = {v.version: v for v in await self._announce_due(conn) if v.policy_id == policy_id}
        return announced.get(number, created)

    async def promote_due(self) -> list[domain.Version]:
        async with self._pool.acquire() as conn, conn.transaction():
            return await self._announce_due(conn)

    async def run_scheduler(self) -> None:
        """Puts scheduled versions in force on time; any replica may, each version goes once."""
        while True:
            try:
                for version in await self.promote_due():
                    log.info("policy version in force", policy_id=version.policy_id, version=version.version)
            except Exception as exc:  # a loop that dies would leave every later version pending for good
                log.warning("scheduled versions not checked", error=type(exc).__name__)
            await asyncio.sleep(self._settings.schedule_poll_seconds)

    async def _announce_due(self, conn: asyncpg.Connection) -> list[domain.Version]:
        due = await storage.put_due_in_force(conn)
        for v in due:
            await outbox.enqueue(conn, PolicyUpdated(
                policy_id=v.policy_id, version=v.version, title=v.title, summary=v.summary, material=v.material,
                effective_at=v.effective_at, published_at=v.published_at,
            ))
        return due

    async def current(self, policy_id: str) -> domain.Version | None:
        async with self._pool.acquire() as conn:
            return await storage.current_version(conn, policy_id)

    async def version(self, policy_id: str, number: int) -> tuple[domain.Version, int | None]:
        """The version and the number of the version in force."""
        async with self._pool.acquire() as conn:
            found = await storage.version(conn, policy_id, number)
            current = await storage.current_version(conn, policy_id)
        if found is None:
            raise NotFound(f"Policy {policy_id} has no version {number}.")
        return found, current.version if current else None

    async def versions(self, policy_id: str, after: int | None = None,
                       limit: int | None = None) -> tuple[list[domain.Version], int | None]:
        """A page of versions and the number of the version in force."""
        async with self._pool.acquire() as conn:
            found = await storage.versions(conn, policy_id, after, limit)
            current = await storage.current_version(conn, policy_id)
        return found, current.version if current else None

    async def diff(self, policy_id: str, old: int, new: int) -> domain.VersionDiff:
        async with self._pool.acquire() as conn:
            before = await storage.version(conn, policy_id, old)
            after = await storage.version(conn, policy_id, new)
        if before is None or after is None:
            raise NotFound(f"Policy {policy_id} has no version {old if before is None else new}.")
        return domain.diff(before, after)

    async def notice(self) -> domain.Notice | None:
        current = await self.current(self._settings.policy_id)
        return domain.notice_for(current, datetime.now(UTC), self._settings.notice_days, self._settings.notice_link)

    async def accept(self, user_id: UUID, policy_id: str, number: int) -> tuple[domain.Acceptance, bool]:
        """Explicit acceptance; True when it is new (accepting twice records it once)."""
        async with self._pool.acquire() as conn, conn.transaction():
            found = await storage.version(conn, policy_id, number)
            if found is None:
                raise NotFound(f"Policy {policy_id} has no version {number}.")
            if found.in_force_since is None:
                raise NotInForce(f"Version {number} is scheduled for {found.effective_at.isoformat()}.")
            created = await self._record(conn, user_id, policy_id, number, "explicit")
            if created is not None:
                return created, True
            existing = await storage.acceptance(conn, user_id, policy_id, number, "explicit")
            assert existing is not None  # rows are only deleted on erasure
            return existing, False

    async def record_activity(self, user_id: UUID) -> tuple[int | None, domain.Acceptance | None]:
        """Continued use: the version in force and, the first time only, the acceptance it records."""
        policy_id = self._settings.policy_id
        async with self._pool.acquire() as conn, conn.transaction():
            current = await storage.current_version(conn, policy_id)
            number = current.version if current else None
            if not domain.continued_use_due(number, await storage.newest_accepted(conn, user_id, policy_id)):
                return number, None
            return number, await self._record(conn, user_id, policy_id, number, "continued_use")

    async def acceptances(self, user_id: UUID, after: tuple[datetime, str, int] | None = None,
                          limit: int | None = None) -> list[domain.Acceptance]:
        async with self._pool.acquire() as conn:
            return await storage.acceptances_of(conn, user_id, after, limit)

    async def apply_user_registered(self, conn: asyncpg.Connection, event: UserRegistered | UserRegisteredV2,
                                    _meta: EventMeta) -> None:
        # The version identity stamped at signup is what the user agreed to, even if newer ones exist now.
        await self._record(conn, event.user_id, self._settings.policy_id, event.policy_version, "signup",
                           event.registered_at)

    async def apply_user_erased(self, conn: asyncpg.Connection, event: UserErased, _meta: EventMeta) -> None:
        await storage.erase_acceptances(conn, event.user_id, event.erased_at)
        await outbox.forget(conn, str(event.user_id))
        await outbox.enqueue(conn, ErasureConfirmed(user_id=event.user_id, service="policy",
                                                    confirmed_at=datetime.now(UTC)))

    async def _record(self, conn: asyncpg.Connection, user_id: UUID, policy_id: str, number: int,
                      how: domain.AcceptanceHow, at: datetime | None = None) -> domain.Acceptance | None:
        if await storage.is_erased(conn, user_id):  # a late or redelivered event must not bring them back
            return None
        created = await storage.insert_acceptance(conn, user_id, policy_id, number, how, at)
        if created is not None:
            await outbox.enqueue(conn, PolicyAccepted(
                user_id=user_id, policy_id=policy_id, version=number, accepted_at=created.accepted_at, how=how,
            ))
        return created
