"""Support's use cases, one function per command or event: storage (a unit of work, or the inbox's store) first,
then the command, then what else it needs, by keyword."""

from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from uuid import UUID, uuid4

import structlog

from assent_shared import personal
from assent_shared.cloudevents import EventMeta
from assent_shared.personal import PersonalFields
from assent_shared.events import (
    ErasureConfirmed, InquiryAnswered, InquiryClosed, InquiryErased, InquiryFollowedUp, InquiryReceived, UserErased,
)
from assent_support import domain
from assent_support.ports import SupportStore, Supports
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


async def _sealed_reply(inquiry: domain.Inquiry, body: str, reply_url: str, personal: PersonalFields) -> dict:
    """The personal fields of InquiryAnswered, sealed: the one place they are built."""
    subject = sealing_subject(inquiry)

    async def seal(field: str, value: str):
        return await personal.seal(InquiryAnswered, field, subject, value)

    return {"email": await seal("email", inquiry.email) if inquiry.email else None,
            "body": await seal("body", body), "reply_url": await seal("reply_url", reply_url)}


async def _count_client(supports: Supports, client: str, settings: SupportSettings) -> None:
    # Outside any transaction: the count commits even when the message is refused, so a flood keeps counting.
    async with supports.reading() as store:
        count = await store.count_client(domain.client_key(settings.signing_secret, client),
                                         settings.rate_window_seconds)
    if not domain.within_limit(count, settings.rate_limit):
        raise RateLimited(settings.rate_window_seconds)


async def submit_inquiry(supports: Supports, new: domain.NewInquiry, client: str, *,
                         settings: SupportSettings) -> domain.Inquiry:
    domain.check(new)
    await _count_client(supports, client, settings)
    async with supports.transaction() as store:
        if new.user_id is not None and await store.is_erased(new.user_id):
            raise Forbidden("erased")
        inquiry_id = uuid4()
        for _ in range(_REFERENCE_TRIES):
            created = await store.insert_inquiry(inquiry_id, domain.new_reference(), new, uuid4())
            if created is not None:
                break
        else:
            raise RuntimeError("no free reference")
        await store.publish(InquiryReceived(
            inquiry_id=created.inquiry_id, reference=created.reference, category=created.category,
            user_id=created.user_id, reply_by_mail=created.reply_by_mail, received_at=created.received_at,
        ))
    log.info("inquiry received", inquiry_id=str(created.inquiry_id), category=created.category)
    return created


async def search_inquiries(supports: Supports, status: str | None, category: str | None,
                           after: tuple[datetime, UUID] | None, limit: int) -> list[domain.Inquiry]:
    async with supports.reading() as store:
        return await store.search(status=status, category=category, after=after, limit=limit)


async def read_thread(supports: Supports, inquiry_id: UUID) -> domain.Thread:
    async with supports.reading() as store:
        found = await store.thread(inquiry_id)
    if found is None:
        raise NotFound(str(inquiry_id))
    return found


async def reply_to_inquiry(supports: Supports, inquiry_id: UUID, body: str, *, settings: SupportSettings,
                           personal: PersonalFields) -> domain.Message:
    """An admin's reply: stored, and told to the mailer, which sends it in the thread when it may."""
    inquiry = (await read_thread(supports, inquiry_id)).inquiry
    token = domain.new_token()
    # Sealed before the transaction: the key owner is a network call, and an inquiry's
    # address and author never change.
    sealed = await _sealed_reply(inquiry, body, domain.reply_link(settings.site_url, inquiry_id, token), personal)
    async with supports.transaction() as store:
        found = await store.thread(inquiry_id, lock=True)
        if found is None:
            raise NotFound(str(inquiry_id))
        if found.inquiry.status == "closed":
            raise Closed(str(inquiry_id))
        earlier = found.staff_replies()
        message = await store.add_message(inquiry_id, uuid4(), "staff", body)
        await store.set_status(inquiry_id, "answered")
        await store.insert_token(domain.token_hash(token), inquiry_id,
                                 datetime.now(UTC) + timedelta(days=settings.reply_link_days))
        await store.publish(InquiryAnswered(
            inquiry_id=inquiry_id, reference=inquiry.reference, message_id=message.message_id,
            user_id=inquiry.user_id, reply_by_mail=inquiry.reply_by_mail, locale=inquiry.locale,
            earlier_replies=earlier, answered_at=message.created_at, **sealed,
        ))
    return message


async def close_inquiry(supports: Supports, inquiry_id: UUID) -> domain.Inquiry:
    async with supports.transaction() as store:
        found = await store.inquiry(inquiry_id, lock=True)
        if found is None:
            raise NotFound(str(inquiry_id))
        if found.status != "closed":
            await store.set_status(inquiry_id, "closed")
            await store.publish(InquiryClosed(inquiry_id=inquiry_id, closed_at=datetime.now(UTC)))
        return await store.inquiry(inquiry_id)


async def _authorized(store: SupportStore, inquiry_id: UUID, token: str | None,
                      user_id: UUID | None) -> domain.Thread:
    found = await store.thread(inquiry_id)
    if found is None:
        raise NotFound(str(inquiry_id))
    if user_id is not None and found.inquiry.user_id == user_id:
        return found
    if token is not None and await store.token_opens(domain.token_hash(token), inquiry_id):
        return found
    raise Forbidden(str(inquiry_id))


async def read_own_thread(supports: Supports, inquiry_id: UUID, token: str | None,
                          user_id: UUID | None) -> domain.Thread:
    """The thread as its author sees it: by a reply mail's link, or signed in as its author."""
    async with supports.reading() as store:
        return await _authorized(store, inquiry_id, token, user_id)


async def follow_up_inquiry(supports: Supports, inquiry_id: UUID, body: str, token: str | None,
                            user_id: UUID | None, client: str, *, settings: SupportSettings) -> domain.Message:
    await _count_client(supports, client, settings)
    async with supports.transaction() as store:
        found = await _authorized(store, inquiry_id, token, user_id)
        if found.inquiry.status == "closed":
            raise Closed(str(inquiry_id))
        message = await store.add_message(inquiry_id, uuid4(), "person", body)
        await store.set_status(inquiry_id, "open")
        await store.publish(InquiryFollowedUp(
            inquiry_id=inquiry_id, message_id=message.message_id,
            via="signed_in" if user_id is not None and found.inquiry.user_id == user_id else "mail_link",
            added_at=message.created_at,
        ))
    return message


async def list_user_threads(supports: Supports, user_id: UUID, after: tuple[datetime, UUID] | None = None,
                            limit: int | None = None) -> list[domain.Thread]:
    async with supports.reading() as store:
        ids = await store.inquiries_of(user_id, after, limit)
        return [t for t in [await store.thread(i) for i in ids] if t is not None]


async def count_topics(supports: Supports, since: date, until: date, bucket: str) -> list[domain.TopicCount]:
    async with supports.reading() as store:
        return await store.topic_counts(since, until, bucket)


async def erase_by_address(supports: Supports, email: str, *, owner: KeyOwner) -> int:
    """An anonymous person's right to erasure: every inquiry they sent from that address goes."""
    async with supports.transaction() as store:
        found = await store.anonymous_inquiries_by_address(email)
        # Shred first: should it fail, the transaction rolls back and the admin tries again.
        for inquiry_id in found:
            await owner.erase(inquiry_id)
        await _erase(store, found)
    log.info("anonymous inquiries erased", count=len(found))
    return len(found)


async def _erase(store: SupportStore, inquiry_ids: list[UUID]) -> None:
    await store.delete_inquiries(inquiry_ids)
    for inquiry_id in inquiry_ids:
        await store.forget(str(inquiry_id))
        await store.publish(InquiryErased(inquiry_id=inquiry_id, erased_at=datetime.now(UTC)))


async def apply_user_erased(store: SupportStore, event: UserErased, _meta: EventMeta) -> None:
    await store.record_erased_user(event.user_id, event.erased_at)
    await _erase(store, await store.inquiries_of(event.user_id))
    await store.forget(str(event.user_id))
    await store.publish(ErasureConfirmed(user_id=event.user_id, service="support", confirmed_at=datetime.now(UTC)))
