"""What support's use cases need of storage: `storage.PgSupportStore` on PostgreSQL, `fakes.MemorySupportStore`
in memory. Every method runs in the caller's unit of work; "now" is the database's clock (the fake's own)."""

from datetime import date, datetime
from typing import Protocol
from uuid import UUID

from assent_shared.uow import Publishing, UnitOfWork
from assent_support.domain import Inquiry, Message, NewInquiry, Thread, TopicCount


class SupportStore(Publishing, Protocol):
    async def count_client(self, client_key: str, window_seconds: int) -> int:
        """Counts one more message of the client in the current window; returns the window's total."""

    async def is_erased(self, user_id: UUID) -> bool: ...

    async def insert_inquiry(self, inquiry_id: UUID, reference: str, new: NewInquiry,
                             message_id: UUID) -> Inquiry | None:
        """None when the reference is taken (try another)."""

    async def add_message(self, inquiry_id: UUID, message_id: UUID, author: str,
                          body: str) -> Message: ...

    async def set_status(self, inquiry_id: UUID, status: str) -> None: ...

    async def inquiry(self, inquiry_id: UUID, lock: bool = False) -> Inquiry | None: ...

    async def thread(self, inquiry_id: UUID, lock: bool = False) -> Thread | None: ...

    async def search(self, *, status: str | None, category: str | None,
                     after: tuple[datetime, UUID] | None, limit: int) -> list[Inquiry]:
        """Newest first, in (received_at, inquiry_id) descending order, from after `after`."""

    async def inquiries_of(self, user_id: UUID, after: tuple[datetime, UUID] | None = None,
                           limit: int | None = None) -> list[UUID]:
        """Oldest first, in (received_at, inquiry_id) order, from after `after`."""

    async def anonymous_inquiries_by_address(self, email: str) -> list[UUID]: ...

    async def delete_inquiries(self, inquiry_ids: list[UUID]) -> None:
        """Messages and answer links go with them (ON DELETE CASCADE); the topic counts stay."""

    async def record_erased_user(self, user_id: UUID, erased_at: datetime) -> None: ...

    async def insert_token(self, token_hash: bytes, inquiry_id: UUID, expires_at: datetime) -> None: ...

    async def token_opens(self, token_hash: bytes, inquiry_id: UUID) -> bool: ...

    async def topic_counts(self, since: date, until: date, bucket: str) -> list[TopicCount]: ...


Supports = UnitOfWork[SupportStore]
