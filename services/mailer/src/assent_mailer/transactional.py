"""Transactional mail for other services: order updates (shop) and inquiry replies (support).

Such mail needs no marketing consent, but goes only to the person it is about (channel email,
recipient first_party: never a processor), and the dispatcher still honours suppression and
erasure at send time.
"""

from uuid import uuid4

from assent_mailer import domain, mails
from assent_mailer.handlers import announce_cancelled
from assent_mailer.ports import MailerStore
from assent_mailer.wakeup import WorkArrived
from assent_shared.cloudevents import EventMeta
from assent_shared.events import InquiryAnswered, InquiryErased, OrderStatusChanged


class UnknownCustomer(LookupError):
    """An order of a user the mailer never heard of: the record is dead-lettered, never guessed at."""


async def apply_order_status_changed(store: MailerStore, event: OrderStatusChanged, meta: EventMeta, *,
                                     work: WorkArrived) -> None:
    await store.lock_subject(event.user_id)
    known = await store.contact_status(event.user_id)
    if known is None:
        raise UnknownCustomer("no such user")  # the id stays out of the message: it may be logged
    if known == "erased":
        return  # nobody to write to any more, and nothing to keep
    await store.insert_delivery(
        delivery_id=uuid4(), dedupe_key=f"{mails.ORDER_UPDATE}:{meta.id}", subject_id=event.user_id,
        kind=mails.ORDER_UPDATE, channel="email", recipient=domain.FIRST_PARTY,
        content={"order_id": event.order_id, "status": event.status, "occurred_at": event.occurred_at.isoformat()},
    )
    work.notify()


async def apply_inquiry_answered(store: MailerStore, event: InquiryAnswered, _meta: EventMeta, *,
                                 work: WorkArrived) -> None:
    """The reply is kept as it arrived, sealed; the dispatcher opens it when it writes the mail."""
    if not event.reply_by_mail:
        return
    subject = event.user_id or event.inquiry_id  # whose key sealed it: support's rule of sealing subjects
    await store.lock_subject(subject)
    if event.user_id is not None and await store.contact_status(event.user_id) == "erased":
        return
    await store.insert_delivery(
        delivery_id=uuid4(), dedupe_key=f"{mails.INQUIRY_REPLY}:{event.message_id}", subject_id=subject,
        kind=mails.INQUIRY_REPLY, channel="email", recipient=domain.FIRST_PARTY,
        content={"event": event.model_dump(mode="json")},
    )
    work.notify()


async def apply_inquiry_erased(store: MailerStore, event: InquiryErased, _meta: EventMeta) -> None:
    """An anonymous inquiry's data is gone at support: its waiting replies go, and the sealed address with them."""
    await store.lock_subject(event.inquiry_id)
    await announce_cancelled(store, await store.cancel_all_pending(event.inquiry_id))
    await store.forget_contents(event.inquiry_id)
