"""`ports.PolicyStore` in memory, for the unit lane (development only: the wheel leaves this module out)."""

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID

from assent_policy.domain import Acceptance, AcceptanceHow, NewVersion, Version
from assent_shared.fakes import MemoryStore, MemoryUnitOfWork


class MemoryPolicyStore(MemoryStore):
    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__()
        self.clock = clock
        self.versions_: dict[tuple[str, int], Version] = {}
        self.acceptances: list[Acceptance] = []
        self.erased: dict[UUID, datetime] = {}

    async def lock_policy(self, policy_id: str) -> None:
        pass  # one event loop, no concurrent transaction to keep out

    async def insert_version(self, policy_id: str, number: int, new: NewVersion) -> Version | None:
        if (policy_id, number) in self.versions_:
            return None
        now = self.clock()
        created = Version(policy_id, number, new.title, new.summary, new.text, new.material, new.data_use,
                          new.effective_at or now, now, None)
        self.versions_[(policy_id, number)] = created
        return created

    def _of(self, policy_id: str) -> list[Version]:
        return sorted((v for (p, _), v in self.versions_.items() if p == policy_id), key=lambda v: v.version)

    async def latest_version(self, policy_id: str) -> Version | None:
        return (self._of(policy_id) or [None])[-1]

    async def current_version(self, policy_id: str) -> Version | None:
        return ([v for v in self._of(policy_id) if v.in_force_since is not None] or [None])[-1]

    async def version(self, policy_id: str, number: int) -> Version | None:
        return self.versions_.get((policy_id, number))

    async def versions(self, policy_id: str, after: int | None = None, limit: int | None = None) -> list[Version]:
        return [v for v in self._of(policy_id) if v.version > (after or 0)][:limit]

    async def put_due_in_force(self) -> list[Version]:
        now = self.clock()
        due = sorted((k for k, v in self.versions_.items() if v.in_force_since is None and v.effective_at <= now))
        for key in due:
            self.versions_[key] = replace(self.versions_[key], in_force_since=now)
        return [self.versions_[k] for k in due]

    async def insert_acceptance(self, user_id: UUID, policy_id: str, number: int, how: AcceptanceHow,
                                accepted_at: datetime | None = None) -> Acceptance | None:
        if await self.acceptance(user_id, policy_id, number, how) is not None:
            return None
        created = Acceptance(user_id, policy_id, number, how, accepted_at or self.clock())
        self.acceptances.append(created)
        return created

    async def acceptance(self, user_id: UUID, policy_id: str, number: int, how: AcceptanceHow) -> Acceptance | None:
        return next((a for a in self.acceptances if (a.user_id, a.policy_id, a.version, a.how) ==
                     (user_id, policy_id, number, how)), None)

    async def newest_accepted(self, user_id: UUID, policy_id: str) -> int | None:
        return max((a.version for a in self.acceptances if (a.user_id, a.policy_id) == (user_id, policy_id)),
                   default=None)

    async def acceptances_of(self, user_id: UUID, after: tuple[datetime, str, int] | None = None,
                             limit: int | None = None) -> list[Acceptance]:
        mine = sorted((a for a in self.acceptances if a.user_id == user_id),
                      key=lambda a: (a.accepted_at, a.policy_id, a.version))
        return [a for a in mine if after is None or (a.accepted_at, a.policy_id, a.version) > after][:limit]

    async def erase_acceptances(self, user_id: UUID, erased_at: datetime) -> None:
        self.acceptances = [a for a in self.acceptances if a.user_id != user_id]
        self.erased.setdefault(user_id, erased_at)

    async def is_erased(self, user_id: UUID) -> bool:
        return user_id in self.erased


def memory_policies(clock: Callable[[], datetime] = lambda: datetime.now(UTC)
                    ) -> MemoryUnitOfWork[MemoryPolicyStore]:
    return MemoryUnitOfWork(MemoryPolicyStore(clock))
