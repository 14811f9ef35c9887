"""What policy's use cases need of storage: `storage.PgPolicyStore` on PostgreSQL, `fakes.MemoryPolicyStore`
in memory. Every method runs in the caller's unit of work."""

from datetime import datetime
from typing import Protocol
from uuid import UUID

from assent_policy.domain import Acceptance, AcceptanceHow, NewVersion, Version
from assent_shared.uow import Publishing, UnitOfWork


class PolicyStore(Publishing, Protocol):
    async def lock_policy(self, policy_id: str) -> None:
        """Serialize publishing per policy until the transaction ends."""

    async def insert_version(self, policy_id: str, number: int, new: NewVersion) -> Version | None:
        """Published now, effective now unless scheduled; None when the number is taken."""

    async def latest_version(self, policy_id: str) -> Version | None:
        """The highest number, scheduled or not."""

    async def current_version(self, policy_id: str) -> Version | None:
        """The highest number in force."""

    async def version(self, policy_id: str, number: int) -> Version | None: ...

    async def versions(self, policy_id: str, after: int | None = None, limit: int | None = None) -> list[Version]:
        """In version order, after version `after`."""

    async def put_due_in_force(self) -> list[Version]:
        """Mark every version whose time has come in force, each once; in (policy, version) order."""

    async def insert_acceptance(self, user_id: UUID, policy_id: str, number: int, how: AcceptanceHow,
                                accepted_at: datetime | None = None) -> Acceptance | None:
        """None when this user already accepted this version this way."""

    async def acceptance(self, user_id: UUID, policy_id: str, number: int,
                         how: AcceptanceHow) -> Acceptance | None: ...

    async def newest_accepted(self, user_id: UUID, policy_id: str) -> int | None: ...

    async def acceptances_of(self, user_id: UUID, after: tuple[datetime, str, int] | None = None,
                             limit: int | None = None) -> list[Acceptance]:
        """In (accepted_at, policy_id, version) order, after `after`."""

    async def erase_acceptances(self, user_id: UUID, erased_at: datetime) -> None:
        """Drop the user's acceptances and remember the erasure."""

    async def is_erased(self, user_id: UUID) -> bool: ...


Policies = UnitOfWork[PolicyStore]
