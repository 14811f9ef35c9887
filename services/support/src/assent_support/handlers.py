"""Support's use cases: one handler each, called by the HTTP routes and the subscribers."""

from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from uuid import UUID, uuid4

import asyncpg
import structlog

from assent_shared import outbox
from assent_shared.cloudevents import EventMeta
from assent_shared import personal
from assent_shared.personal import PersonalFields
from assent_shared.events import (
    ErasureConfirmed, InquiryAnswered, InquiryClosed, InquiryErased, InquiryFollowedUp, InquiryReceived, UserErased,
)
from assent_support import domain, storage
from assent_support.settings import SupportSettings

log = structlog.get_logger(__name__)
_REFERENCE_TRIES = 5


class NotFound(Exception):
    pass


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("rate limited")
        self.retry_after = retry_after


class Closed(Exception):
    """The inquiry is closed: nothing more is added to it."""


class Forbidden(Exception):
    """The caller may not read or answer this thread."""


class KeyOwner(personal.KeyOwner, Protocol):
    async def erase(self, subject_id: UUID) -> None:
        """Crypto-shreds what was sealed for an anonymous inquiry."""


def sealing_subject(inquiry: domain.Inquiry) -> UUID:
    """Whose data key seals a thread's personal fields: the user's (identity's erasure shreds it),
    or, for an anonymous person, the inquiry's own (support shreds it)."""
    return inquiry.user_id or inquiry.inquiry_id


class SupportHandlers:
    def __init__(self, pool: asyncpg.Pool, settings: SupportSettings, personal: PersonalFields,
                 owner: KeyOwner) -> None:
        self._pool = pool
        self._settings = settings
        self._personal = personal
        self._owner = owner

    async def _sealed_reply(self, inquiry: domain.Inquiry, body: str, reply_url: str) -> dict:
        """The personal fields of InquiryAnswered, sealed: the one place they are built."""
        subject = sealing_subject(inquiry)

        async def seal(field: str, value: str):
            return await self._personal.seal(InquiryAnswered, field, subject, value)

        return {"email": await seal("email", inquiry.email) if inquiry.email else None,
                "body": await seal("body", body), "reply_url": await seal("reply_url", reply_url)}

    async def _count_client(self, conn: asyncpg.Connection, client: str) -> None:
        s = self._settings
        count = await storage.count_client(conn, domain.client_key(s.signing_secret, client), s.rate_window_seconds)
        if not domain.within_limit(count, s.rate_limit):
            raise RateLimited(s.rate_window_seconds)

    async def submit(self, new: domain.NewInquiry, client: str) -> domain.Inquiry:
        domain.check(new)
        # The count commits even when the inquiry is refused: a flood keeps counting.
        async with self._pool.acquire() as conn:
            await self._count_client(conn, client)
        async with self._pool.acquire() as conn, conn.transaction():
            if new.user_id is not None and await storage.is_erased(conn, new.user_id):
                raise Forbidden("erased")
            inquiry_id = uuid4()
            for _ in range(_REFERENCE_TRIES):
                created = await storage.insert_inquiry(conn, inquiry_id, domain.new_reference(), new, uuid4())
                if created is not None:
                    break
            else:
                raise RuntimeError("no free reference")
            await outbox.enqueue(conn, InquiryReceived(
                inquiry_id=created.inquiry_id, reference=created.reference, category=created.category,
                user_id=created.user_id, reply_by_mail=created.reply_by_mail, received_at=created.received_at,
            ))
        log.info("inquiry received", inquiry_id=str(created.inquiry_id), category=created.category)
        return created

    async def search(self, status: str | None, category: str | None, after: tuple[datetime, UUID] | None,
                     limit: int) -> list[domain.Inquiry]:
        async with self._pool.acquire() as conn:
            return await storage.search(conn, status=status, category=category, after=after, limit=limit)

    async def thread(self, inquiry_id: UUID) -> domain.Thread:
        async with self._pool.acquire() as conn:
            found = await storage.thread(conn, inquiry_id)
        if found is None:
            raise NotFound(str(inquiry_id))
        return found

    async def reply(self, inquiry_id: UUID, body: str) -> domain.Message:
        """An admin's reply: stored, and told to the mailer, which sends it in the thread when it may."""
        inquiry = (await self.thread(inquiry_id)).inquiry
        token = domain.new_token()
        # Sealed before the transaction: the key owner is a network call, and an inquiry's
        # address and author never change.
        sealed = await self._sealed_reply(inquiry, body, domain.reply_link(self._settings.site_url, inquiry_id, token))
        async with self._pool.acquire() as conn, conn.transaction():
            found = await storage.thread(conn, inquiry_id, lock=True)
            if found is None:
                raise NotFound(str(inquiry_id))
            if found.inquiry.status == "closed":
                raise Closed(str(inquiry_id))
            earlier = found.staff_replies()
            message = await storage.add_message(conn, inquiry_id, uuid4(), "staff", body)
            await storage.set_status(conn, inquiry_id, "answered")
            await storage.insert_token(conn, domain.token_hash(token), inquiry_id,
                                       datetime.now(UTC) + timedelta(days=self._settings.reply_link_days))
            await outbox.enqueue(conn, InquiryAnswered(
                inquiry_id=inquiry_id, reference=inquiry.reference, message_id=message.message_id,
                user_id=inquiry.user_id, reply_by_mail=inquiry.reply_by_mail, locale=inquiry.locale,
                earlier_replies=earlier, answered_at=message.created_at, **sealed,
            ))
        return message

    async def close(self, inquiry_id: UUID) -> domain.Inquiry:
        async with self._pool.acquire() as conn, conn.transaction():
            found = await storage.inquiry(conn, inquiry_id, lock=True)
            if found is None:
                raise NotFound(str(inquiry_id))
            if found.status != "closed":
                await storage.set_status(conn, inquiry_id, "closed")
                await outbox.enqueue(conn, InquiryClosed(inquiry_id=inquiry_id, closed_at=datetime.now(UTC)))
            return await storage.inquiry(conn, inquiry_id)

    async def _authorized(self, conn: asyncpg.Connection, inquiry_id: UUID, token: str | None,
                          user_id: UUID | None) -> domain.Thread:
        found = await storage.thread(conn, inquiry_id)
        if found is None:
            raise NotFound(str(inquiry_id))
        if user_id is not None and found.inquiry.user_id == user_id:
            return found
        if token is not None and await storage.token_opens(conn, domain.token_hash(token), inquiry_id):
            return found
        raise Forbidden(str(inquiry_id))

    async def person_thread(self, inquiry_id: UUID, token: str | None, user_id: UUID | None) -> domain.Thread:
        """The thread as its author sees it: by a reply mail's link, or signed in as its author."""
        async with self._pool.acquire() as conn:
            return await self._authorized(conn, inquiry_id, token, user_id)

    async def follow_up(self, inquiry_id: UUID, body: str, token: str | None, user_id: UUID | None,
                        client: str) -> domain.Message:
        async with self._pool.acquire() as conn:
            await self._count_client(conn, client)
        async with self._pool.acquire() as conn, conn.transaction():
            found = await self._authorized(conn, inquiry_id, token, user_id)
            if found.inquiry.status == "closed":
                raise Closed(str(inquiry_id))
            message = await storage.add_message(conn, inquiry_id, uuid4(), "person", body)
            await storage.set_status(conn, inquiry_id, "open")
            await outbox.enqueue(conn, InquiryFollowedUp(
                inquiry_id=inquiry_id, message_id=message.message_id,
                via="signed_in" if user_id is not None and found.inquiry.user_id == user_id else "mail_link",
                added_at=message.created_at,
            ))
        return message

    async def threads_of(self, user_id: UUID, after: tuple[datetime, UUID] | None = None,
                         limit: int | None = None) -> list[domain.Thread]:
        async with self._pool.acquire() as conn:
            ids = await storage.inquiries_of(conn, user_id, after, limit)
            return [t for t in [await storage.thread(conn, i) for i in ids] if t is not None]

    async def topic_counts(self, since: date, until: date, bucket: str) -> list[domain.TopicCount]:
        async with self._pool.acquire() as conn:
            return await storage.topic_counts(conn, since, until, bucket)

    async def erase_by_address(self, email: str) -> int:
        """An anonymous person's right to erasure: every inquiry they sent from that address goes."""
        async with self._pool.acquire() as conn, conn.transaction():
            found = await storage.anonymous_inquiries_by_address(conn, email)
            # Shred first: should it fail, the transaction rolls back and the admin tries again.
            for inquiry_id in found:
                await self._owner.erase(inquiry_id)
            await self._erase(conn, found)
        log.info("anonymous inquiries erased", count=len(found))
        return len(found)

    async def _erase(self, conn: asyncpg.Connection, inquiry_ids: list[UUID]) -> None:
        await storage.delete_inquiries(conn, inquiry_ids)
        for inquiry_id in inquiry_ids:
            await outbox.forget(conn, str(inquiry_id))
            await outbox.enqueue(conn, InquiryErased(inquiry_id=inquiry_id, erased_at=datetime.now(UTC)))

    async def apply_user_erased(self, conn: asyncpg.Connection, event: UserErased, _meta: EventMeta) -> None:
        await storage.record_erased_user(conn, event.user_id, event.erased_at)
        await self._erase(conn, await storage.inquiries_of(conn, event.user_id))
        await outbox.forget(conn, str(event.user_id))
        await outbox.enqueue(conn, ErasureConfirmed(user_id=event.user_id, service="support",
                                                    confirmed_at=datetime.now(UTC)))
