"""`ports.ConsentStore` in memory, for the unit lane (development only: the wheel leaves this module out)."""

from datetime import datetime
from uuid import UUID

from assent_consent.domain import ConsentState, DeviceConsentState
from assent_consent.ports import Row
from assent_shared.fakes import MemoryStore, MemoryUnitOfWork


class MemoryConsentStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.last_seq: dict[UUID, int] = {}
        self.erased: dict[UUID, datetime] = {}
        self.states: dict[tuple[UUID, str, str], ConsentState] = {}
        self.events: list[dict] = []
        self.recipients: dict[str, dict] = {}
        self.policies: dict[str, int] = {}
        self.device_seq: dict[str, int] = {}
        self.device_states_: dict[tuple[str, str], DeviceConsentState] = {}
        self.device_events: list[dict] = []

    async def lock_subject(self, subject_id: UUID) -> int:
        return self.last_seq.setdefault(subject_id, 0)

    async def is_erased(self, subject_id: UUID) -> bool:
        return subject_id in self.erased

    async def erase_subject(self, subject_id: UUID, erased_at: datetime) -> None:
        self.states = {k: v for k, v in self.states.items() if k[0] != subject_id}
        self.events = [e for e in self.events if e["subject_id"] != subject_id]
        self.erased[subject_id] = erased_at

    async def state_of(self, subject_id: UUID, purpose: str, recipient: str) -> ConsentState | None:
        return self.states.get((subject_id, purpose, recipient))

    async def states_of(self, subject_id: UUID) -> list[ConsentState]:
        return [v for k, v in sorted(self.states.items()) if k[0] == subject_id]

    async def record_event(self, *, event_id: str, subject_id: UUID, seq: int, purpose: str, recipient: str,
                           granted: bool, policy_version: int, source: str, occurred_at: datetime,
                           evidence: str | None = None) -> ConsentState:
        self.events.append({"event_id": UUID(event_id), "subject_id": subject_id, "seq": seq, "purpose": purpose,
                            "recipient": recipient, "granted": granted, "policy_version": policy_version,
                            "source": source, "occurred_at": occurred_at, "evidence": evidence})
        self.last_seq[subject_id] = seq
        state = ConsentState(subject_id, purpose, recipient, granted, seq, UUID(event_id), occurred_at)
        self.states[(subject_id, purpose, recipient)] = state
        return state

    async def history_of(self, subject_id: UUID, after_seq: int = 0, limit: int | None = None) -> list[Row]:
        rows = sorted((e for e in self.events if e["subject_id"] == subject_id and e["seq"] > after_seq),
                      key=lambda e: e["seq"])
        return rows[:limit]

    async def event_by_id(self, event_id: UUID) -> Row | None:
        return next((e for e in self.events if e["event_id"] == event_id), None)

    async def processors(self) -> dict[str, set[str]]:
        return {p: set(r["purposes"]) for p, r in self.recipients.items()}

    async def processor_rows(self) -> list[Row]:
        return [self.recipients[p] for p in sorted(self.recipients)]

    async def upsert_processor(self, processor_id: str, name: str, purposes: list[str]) -> None:
        self.recipients[processor_id] = {"processor_id": processor_id, "name": name, "purposes": list(purposes)}

    async def policy_version(self, policy_id: str) -> int:
        return self.policies.get(policy_id) or 1

    async def record_policy(self, policy_id: str, version: int) -> None:
        self.policies[policy_id] = max(version, self.policies.get(policy_id, version))

    async def lock_device(self, device_id: str) -> int:
        return self.device_seq.setdefault(device_id, 0)

    async def device_states(self, device_id: str) -> list[DeviceConsentState]:
        return [v for k, v in sorted(self.device_states_.items()) if k[0] == device_id]

    async def record_device_event(self, *, event_id: str, device_id: str, seq: int, purpose: str, granted: bool,
                                  policy_version: int, source: str, gpc: bool,
                                  occurred_at: datetime) -> DeviceConsentState:
        self.device_events.append({"event_id": UUID(event_id), "device_id": device_id, "seq": seq, "purpose": purpose,
                                   "granted": granted, "policy_version": policy_version, "source": source,
                                   "gpc": gpc, "occurred_at": occurred_at})
        self.device_seq[device_id] = seq
        state = DeviceConsentState(device_id, purpose, granted, seq, UUID(event_id), occurred_at)
        self.device_states_[(device_id, purpose)] = state
        return state

    async def device_history(self, device_id: str) -> list[Row]:
        return sorted((e for e in self.device_events if e["device_id"] == device_id), key=lambda e: e["seq"])

    async def device_event(self, device_id: str, event_id: UUID) -> Row | None:
        return next((e for e in self.device_events if e["device_id"] == device_id and e["event_id"] == event_id),
                    None)


def memory_consents() -> MemoryUnitOfWork[MemoryConsentStore]:
    return MemoryUnitOfWork(MemoryConsentStore())
