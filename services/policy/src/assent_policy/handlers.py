"""Policy's use cases, one function per command or event: storage (a unit of work, or the inbox's store) first,
then the command, then what else it needs, by keyword. Called by the routes, the subscribers and the scheduler."""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID

import structlog

from assent_policy import domain
from assent_policy.ports import Policies, PolicyStore
from assent_policy.settings import PolicySettings
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


async def seed_policy(policies: Policies, *, settings: PolicySettings) -> None:
    """Ensures the site's policy has version 1; replicas starting together insert it once."""
    async with policies.transaction() as store:
        await store.lock_policy(settings.policy_id)
        inserted = await store.insert_version(settings.policy_id, 1, domain.first_version())
        if inserted is not None:
            await _announce_due(store)
            log.info("policy seeded", policy_id=inserted.policy_id, version=1)


async def publish_version(policies: Policies, policy_id: str, new: domain.NewVersion,
                          expected: int | None) -> domain.Version:
    domain.check_data_use(new.data_use)
    async with policies.transaction() as store:
        await store.lock_policy(policy_id)
        latest = await store.latest_version(policy_id)
        number = latest.version + 1 if latest else 1
        if expected is not None and expected != number:
            raise VersionConflict(
                f"Version {expected} is already published and cannot change; the next version is {number}."
                if expected < number else f"The next version is {number}."
            )
        effective_at = domain.effective_time(new.effective_at, datetime.now(UTC), latest)
        created = await store.insert_version(policy_id, number, replace(new, effective_at=effective_at))
        assert created is not None  # the policy lock keeps the number ours
        announced = {v.version: v for v in await _announce_due(store) if v.policy_id == policy_id}
    return announced.get(number, created)


async def promote_due(policies: Policies) -> list[domain.Version]:
    async with policies.transaction() as store:
        return await _announce_due(store)


async def run_scheduler(policies: Policies, *, settings: PolicySettings) -> None:
    """Puts scheduled versions in force on time; any replica may, each version goes once."""
    while True:
        try:
            for version in await promote_due(policies):
                log.info("policy version in force", policy_id=version.policy_id, version=version.version)
        except Exception as exc:  # a loop that dies would leave every later version pending for good
            log.warning("scheduled versions not checked", error=type(exc).__name__)
        await asyncio.sleep(settings.schedule_poll_seconds)


async def _announce_due(store: PolicyStore) -> list[domain.Version]:
    due = await store.put_due_in_force()
    for v in due:
        await store.publish(PolicyUpdated(
            policy_id=v.policy_id, version=v.version, title=v.title, summary=v.summary, material=v.material,
            effective_at=v.effective_at, published_at=v.published_at,
        ))
    return due


async def current_version(policies: Policies, policy_id: str) -> domain.Version | None:
    async with policies.reading() as store:
        return await store.current_version(policy_id)


async def get_version(policies: Policies, policy_id: str, number: int) -> tuple[domain.Version, int | None]:
    """The version and the number of the version in force."""
    async with policies.reading() as store:
        found = await store.version(policy_id, number)
        current = await store.current_version(policy_id)
    if found is None:
        raise NotFound(f"Policy {policy_id} has no version {number}.")
    return found, current.version if current else None


async def list_versions(policies: Policies, policy_id: str, after: int | None = None,
                        limit: int | None = None) -> tuple[list[domain.Version], int | None]:
    """A page of versions and the number of the version in force."""
    async with policies.reading() as store:
        found = await store.versions(policy_id, after, limit)
        current = await store.current_version(policy_id)
    return found, current.version if current else None


async def diff_versions(policies: Policies, policy_id: str, old: int, new: int) -> domain.VersionDiff:
    async with policies.reading() as store:
        before = await store.version(policy_id, old)
        after = await store.version(policy_id, new)
    if before is None or after is None:
        raise NotFound(f"Policy {policy_id} has no version {old if before is None else new}.")
    return domain.diff(before, after)


async def show_notice(policies: Policies, *, settings: PolicySettings) -> domain.Notice | None:
    current = await current_version(policies, settings.policy_id)
    return domain.notice_for(current, datetime.now(UTC), settings.notice_days, settings.notice_link)


async def accept_version(policies: Policies, user_id: UUID, policy_id: str,
                         number: int) -> tuple[domain.Acceptance, bool]:
    """Explicit acceptance; True when it is new (accepting twice records it once)."""
    async with policies.transaction() as store:
        found = await store.version(policy_id, number)
        if found is None:
            raise NotFound(f"Policy {policy_id} has no version {number}.")
        if found.in_force_since is None:
            raise NotInForce(f"Version {number} is scheduled for {found.effective_at.isoformat()}.")
        created = await _record(store, user_id, policy_id, number, "explicit")
        if created is not None:
            return created, True
        existing = await store.acceptance(user_id, policy_id, number, "explicit")
        assert existing is not None  # rows are only deleted on erasure
        return existing, False


async def record_activity(policies: Policies, user_id: UUID, *,
                          settings: PolicySettings) -> tuple[int | None, domain.Acceptance | None]:
    """Continued use: the version in force and, the first time only, the acceptance it records."""
    policy_id = settings.policy_id
    async with policies.transaction() as store:
        current = await store.current_version(policy_id)
        number = current.version if current else None
        if not domain.continued_use_due(number, await store.newest_accepted(user_id, policy_id)):
            return number, None
        return number, await _record(store, user_id, policy_id, number, "continued_use")


async def list_acceptances(policies: Policies, user_id: UUID, after: tuple[datetime, str, int] | None = None,
                           limit: int | None = None) -> list[domain.Acceptance]:
    async with policies.reading() as store:
        return await store.acceptances_of(user_id, after, limit)


async def apply_user_registered(store: PolicyStore, event: UserRegistered | UserRegisteredV2, _meta: EventMeta, *,
                                settings: PolicySettings) -> None:
    # The version identity stamped at signup is what the user agreed to, even if newer ones exist now.
    await _record(store, event.user_id, settings.policy_id, event.policy_version, "signup", event.registered_at)


async def apply_user_erased(store: PolicyStore, event: UserErased, _meta: EventMeta) -> None:
    await store.erase_acceptances(event.user_id, event.erased_at)
    await store.forget(str(event.user_id))
    await store.publish(ErasureConfirmed(user_id=event.user_id, service="policy", confirmed_at=datetime.now(UTC)))


async def _record(store: PolicyStore, user_id: UUID, policy_id: str, number: int, how: domain.AcceptanceHow,
                  at: datetime | None = None) -> domain.Acceptance | None:
    if await store.is_erased(user_id):  # a late or redelivered event must not bring them back
        return None
    created = await store.insert_acceptance(user_id, policy_id, number, how, at)
    if created is not None:
        await store.publish(PolicyAccepted(
            user_id=user_id, policy_id=policy_id, version=number, accepted_at=created.accepted_at, how=how,
        ))
    return created
