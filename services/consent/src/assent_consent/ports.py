"""What consent's use cases need of storage: `storage.PgConsentStore` on PostgreSQL, `fakes.MemoryConsentStore`
in memory. Every method runs in the caller's unit of work."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from assent_consent.domain import ConsentState, DeviceConsentState
from assent_shared.uow import Publishing, UnitOfWork

Row = Mapping[str, Any]
"""An event as recorded: the fields a receipt is made of."""


class ConsentStore(Publishing, Protocol):
    async def lock_subject(self, subject_id: UUID) -> int:
        """Lock the subject (creating it) until the transaction ends; the last seq handed out."""

    async def is_erased(self, subject_id: UUID) -> bool: ...

    async def erase_subject(self, subject_id: UUID, erased_at: datetime) -> None:
        """Drop the subject's state and events; the subject stays, marked erased."""

    async def state_of(self, subject_id: UUID, purpose: str, recipient: str) -> ConsentState | None: ...

    async def states_of(self, subject_id: UUID) -> list[ConsentState]:
        """Ordered by purpose, then recipient."""

    async def record_event(self, *, event_id: str, subject_id: UUID, seq: int, purpose: str, recipient: str,
                           granted: bool, policy_version: int, source: str, occurred_at: datetime,
                           evidence: str | None = None) -> ConsentState:
        """Record the event, move the subject's last seq to it and set the state it leads to."""

    async def history_of(self, subject_id: UUID, after_seq: int = 0, limit: int | None = None) -> list[Row]:
        """The subject's events after `after_seq`, in seq order."""

    async def event_by_id(self, event_id: UUID) -> Row | None: ...

    async def processors(self) -> dict[str, set[str]]:
        """Processor id -> the purposes it was announced for."""

    async def processor_rows(self) -> list[Row]:
        """processor_id, name, purposes; ordered by processor id."""

    async def upsert_processor(self, processor_id: str, name: str, purposes: list[str]) -> None: ...

    async def policy_version(self, policy_id: str) -> int:
        """The version in force, 1 before any was announced."""

    async def record_policy(self, policy_id: str, version: int) -> None:
        """A version only ever moves forward."""

    async def lock_device(self, device_id: str) -> int:
        """Lock the device (creating it) until the transaction ends; the last seq handed out."""

    async def device_states(self, device_id: str) -> list[DeviceConsentState]:
        """Ordered by purpose."""

    async def record_device_event(self, *, event_id: str, device_id: str, seq: int, purpose: str, granted: bool,
                                  policy_version: int, source: str, gpc: bool,
                                  occurred_at: datetime) -> DeviceConsentState: ...

    async def device_history(self, device_id: str) -> list[Row]:
        """In seq order."""

    async def device_event(self, device_id: str, event_id: UUID) -> Row | None: ...


Consents = UnitOfWork[ConsentStore]
