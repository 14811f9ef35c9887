"""`ports.SupportStore` in memory, for the unit lane (development only: the wheel leaves this module out)."""

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from assent_shared.fakes import MemoryStore, MemoryUnitOfWork
from assent_support.domain import Inquiry, Message, NewInquiry, Thread, TopicCount


class MemorySupportStore(MemoryStore):
    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__()
        self.clock = clock
        self.windows: dict[tuple[str, float], int] = {}
        self.erased: dict[UUID, datetime] = {}
        self.inquiries: dict[UUID, Inquiry] = {}
        self.messages: dict[UUID, list[Message]] = {}
        self.counts: dict[tuple[date, str], int] = {}
        self.tokens: dict[bytes, tuple[UUID, datetime]] = {}

    async def count_client(self, client_key: str, window_seconds: int) -> int:
        now = self.clock().timestamp()
        self.windows = {k: c for k, c in self.windows.items() if k[1] >= now - window_seconds * 2}
        key = (client_key, math.floor(now / window_seconds) * window_seconds)
        self.windows[key] = self.windows.get(key, 0) + 1
        return self.windows[key]

    async def is_erased(self, user_id: UUID) -> bool:
        return user_id in self.erased

    async def insert_inquiry(self, inquiry_id: UUID, reference: str, new: NewInquiry,
                             message_id: UUID) -> Inquiry | None:
        if any(i.reference == reference for i in self.inquiries.values()):
            return None
        now = self.clock()
        created = Inquiry(inquiry_id, reference, new.category, new.user_id, new.email, new.want_reply, new.locale,
                          "open", now, now)
        self.inquiries[inquiry_id] = created
        await self.add_message(inquiry_id, message_id, "person", new.message)
        day = now.astimezone(UTC).date()
        self.counts[(day, new.category)] = self.counts.get((day, new.category), 0) + 1
        return created

    async def add_message(self, inquiry_id: UUID, message_id: UUID, author: str, body: str) -> Message:
        message = Message(message_id, author, body, self.clock())
        self.messages.setdefault(inquiry_id, []).append(message)
        return message

    async def set_status(self, inquiry_id: UUID, status: str) -> None:
        self.inquiries[inquiry_id] = replace(self.inquiries[inquiry_id], status=status, updated_at=self.clock())

    async def inquiry(self, inquiry_id: UUID, lock: bool = False) -> Inquiry | None:
        return self.inquiries.get(inquiry_id)

    async def thread(self, inquiry_id: UUID, lock: bool = False) -> Thread | None:
        found = self.inquiries.get(inquiry_id)
        if found is None:
            return None
        return Thread(found, tuple(sorted(self.messages.get(inquiry_id, []),
                                          key=lambda m: (m.created_at, m.message_id))))

    async def search(self, *, status: str | None, category: str | None, after: tuple[datetime, UUID] | None,
                     limit: int) -> list[Inquiry]:
        found = [i for i in self.inquiries.values() if (status is None or i.status == status)
                 and (category is None or i.category == category)
                 and (after is None or (i.received_at, i.inquiry_id) < after)]
        return sorted(found, key=lambda i: (i.received_at, i.inquiry_id), reverse=True)[:limit]

    async def inquiries_of(self, user_id: UUID, after: tuple[datetime, UUID] | None = None,
                           limit: int | None = None) -> list[UUID]:
        found = sorted((i for i in self.inquiries.values() if i.user_id == user_id
                        and (after is None or (i.received_at, i.inquiry_id) > after)),
                       key=lambda i: (i.received_at, i.inquiry_id))
        return [i.inquiry_id for i in found][:limit]

    async def anonymous_inquiries_by_address(self, email: str) -> list[UUID]:
        return [i.inquiry_id for i in self.inquiries.values()
                if i.user_id is None and i.email is not None and i.email.lower() == email.lower()]

    async def delete_inquiries(self, inquiry_ids: list[UUID]) -> None:
        for inquiry_id in inquiry_ids:
            self.inquiries.pop(inquiry_id, None)
            self.messages.pop(inquiry_id, None)
        self.tokens = {h: t for h, t in self.tokens.items() if t[0] not in inquiry_ids}

    async def record_erased_user(self, user_id: UUID, erased_at: datetime) -> None:
        self.erased.setdefault(user_id, erased_at)

    async def insert_token(self, token_hash: bytes, inquiry_id: UUID, expires_at: datetime) -> None:
        self.tokens[token_hash] = (inquiry_id, expires_at)

    async def token_opens(self, token_hash: bytes, inquiry_id: UUID) -> bool:
        found = self.tokens.get(token_hash)
        return found is not None and found[0] == inquiry_id and found[1] > self.clock()

    async def topic_counts(self, since: date, until: date, bucket: str) -> list[TopicCount]:
        totals: dict[tuple[date, str], int] = {}
        for (day, category), count in self.counts.items():
            if since <= day <= until:
                period = _truncate(day, bucket)
                totals[(period, category)] = totals.get((period, category), 0) + count
        return [TopicCount(p, c, n) for (p, c), n in sorted(totals.items())]


def _truncate(day: date, bucket: str) -> date:
    """PostgreSQL's date_trunc for the buckets support reports by."""
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day


def memory_supports(clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> MemoryUnitOfWork[MemorySupportStore]:
    return MemoryUnitOfWork(MemorySupportStore(clock))
