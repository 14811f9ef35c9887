"""Every support use case on the in-memory store: what it records, what it publishes, what it refuses."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from assent_shared.cloudevents import EventMeta
from assent_shared.events import (
    ErasureConfirmed, InquiryAnswered, InquiryClosed, InquiryErased, InquiryFollowedUp, InquiryReceived, UserErased,
)
from assent_shared.personal import PersonalFields, SubjectErased
from assent_devtools.testing.clock import TickingClock
from assent_devtools.testing.keys import MemoryKeyOwner
from assent_support import domain, handlers
from assent_support.fakes import memory_supports
from assent_support.settings import SupportSettings

SETTINGS = SupportSettings(environment="test", rate_limit=3)


def anonymous(email: str | None = "ann@example.com", topic: str = "question") -> domain.NewInquiry:
    return domain.NewInquiry(topic, "Where is my order?", email, email is not None, "de", None)


def signed_in(user_id, want_reply: bool = True) -> domain.NewInquiry:
    return domain.NewInquiry("support_request", "Help", None, want_reply, "en", user_id)


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def supports(clock):
    return memory_supports(clock)


@pytest.fixture
def keys() -> MemoryKeyOwner:
    return MemoryKeyOwner()


async def submit(supports, new, client: str = "203.0.113.1"):
    return await handlers.submit_inquiry(supports, new, client, settings=SETTINGS)


async def test_an_inquiry_is_stored_counted_and_published_without_its_text_or_address(supports):
    created = await submit(supports, anonymous())
    assert (created.status, created.reply_by_mail, created.reference[:2]) == ("open", True, "Q-")
    [received] = supports.store.published
    assert isinstance(received, InquiryReceived) and received.inquiry_id == created.inquiry_id
    assert "ann@example.com" not in received.model_dump_json() and "order" not in received.model_dump_json()
    thread = await handlers.read_thread(supports, created.inquiry_id)
    assert [m.body for m in thread.messages] == ["Where is my order?"]
    [count] = await handlers.count_topics(supports, created.received_at.date(), created.received_at.date(), "day")
    assert (count.category, count.count) == ("question", 1)


@pytest.mark.parametrize("new", [
    domain.NewInquiry("question", "x", "ann@example.com", True, "en", uuid4()),  # signed in: no address
    domain.NewInquiry("question", "x", None, True, "en", None),  # a reply, but to where?
])
async def test_an_address_nobody_offered_is_refused(supports, new):
    with pytest.raises(domain.InvalidInquiry):
        await submit(supports, new)
    assert supports.store.published == [] and supports.store.inquiries == {}


async def test_a_client_is_limited_per_window_and_a_refusal_still_counts(supports, clock):
    for _ in range(SETTINGS.rate_limit):
        await submit(supports, anonymous())
    with pytest.raises(handlers.RateLimited):
        await submit(supports, anonymous())
    await submit(supports, anonymous(), client="198.51.100.2")
    assert all("203.0.113" not in key for key, _ in supports.store.windows)  # keyed hashes only
    clock.now += timedelta(seconds=SETTINGS.rate_window_seconds)
    await submit(supports, anonymous())


async def test_an_erased_user_cannot_send_an_inquiry(supports):
    user = uuid4()
    async with supports.transaction() as store:
        await handlers.apply_user_erased(store, UserErased(user_id=user, erased_at=datetime.now(UTC)),
                                         EventMeta(id="e", type="UserErased", source="t", time=datetime.now(UTC)))
    with pytest.raises(handlers.Forbidden):
        await submit(supports, signed_in(user))


async def test_a_reply_is_stored_sealed_for_the_mailer_and_opens_the_thread_to_its_link(supports, keys):
    created = await submit(supports, anonymous())
    personal = PersonalFields(keys)
    message = await handlers.reply_to_inquiry(supports, created.inquiry_id, "It ships today.", settings=SETTINGS,
                                              personal=personal)
    [answered] = supports.store.published_of(InquiryAnswered)
    assert answered.message_id == message.message_id and answered.earlier_replies == ()
    assert await personal.open(answered, "body") == "It ships today."
    assert await personal.open_optional(answered, "email") == "ann@example.com"
    link = await personal.open(answered, "reply_url")
    token = link.split("token=")[1]
    assert link.startswith(f"{SETTINGS.site_url}/contact/reply?inquiry={created.inquiry_id}")
    assert (await handlers.read_thread(supports, created.inquiry_id)).inquiry.status == "answered"
    thread = await handlers.read_own_thread(supports, created.inquiry_id, token, None)
    assert [m.author for m in thread.messages] == ["person", "staff"]
    with pytest.raises(handlers.Forbidden):
        await handlers.read_own_thread(supports, created.inquiry_id, "not-the-token", None)
    second = await handlers.reply_to_inquiry(supports, created.inquiry_id, "Tracking: 1", settings=SETTINGS,
                                             personal=personal)
    assert supports.store.published_of(InquiryAnswered)[1].earlier_replies == (message.message_id,)
    assert second.author == "staff"


async def test_a_follow_up_by_the_link_reopens_and_a_closed_inquiry_takes_nothing_more(supports, keys):
    created = await submit(supports, anonymous())
    personal = PersonalFields(keys)
    await handlers.reply_to_inquiry(supports, created.inquiry_id, "Answer", settings=SETTINGS, personal=personal)
    token = (await personal.open(supports.store.published_of(InquiryAnswered)[0], "reply_url")).split("token=")[1]
    await handlers.follow_up_inquiry(supports, created.inquiry_id, "Thanks, but", token, None, "c", settings=SETTINGS)
    [followed] = supports.store.published_of(InquiryFollowedUp)
    assert followed.via == "mail_link"
    assert (await handlers.read_thread(supports, created.inquiry_id)).inquiry.status == "open"
    closed = await handlers.close_inquiry(supports, created.inquiry_id)
    await handlers.close_inquiry(supports, created.inquiry_id)
    assert closed.status == "closed" and len(supports.store.published_of(InquiryClosed)) == 1
    with pytest.raises(handlers.Closed):
        await handlers.follow_up_inquiry(supports, created.inquiry_id, "More", token, None, "c", settings=SETTINGS)
    with pytest.raises(handlers.Closed):
        await handlers.reply_to_inquiry(supports, created.inquiry_id, "More", settings=SETTINGS, personal=personal)


async def test_an_expired_link_opens_nothing(supports, keys, clock):
    created = await submit(supports, anonymous())
    personal = PersonalFields(keys)
    await handlers.reply_to_inquiry(supports, created.inquiry_id, "Answer", settings=SETTINGS, personal=personal)
    token = (await personal.open(supports.store.published_of(InquiryAnswered)[0], "reply_url")).split("token=")[1]
    clock.now = datetime.now(UTC) + timedelta(days=SETTINGS.reply_link_days + 1)
    with pytest.raises(handlers.Forbidden):
        await handlers.read_own_thread(supports, created.inquiry_id, token, None)


async def test_a_signed_in_author_reads_and_answers_their_own_threads_only(supports):
    user = uuid4()
    mine = await submit(supports, signed_in(user))
    await submit(supports, signed_in(uuid4()))
    await handlers.follow_up_inquiry(supports, mine.inquiry_id, "More", None, user, "c", settings=SETTINGS)
    assert supports.store.published_of(InquiryFollowedUp)[0].via == "signed_in"
    [thread] = await handlers.list_user_threads(supports, user)
    assert thread.inquiry.inquiry_id == mine.inquiry_id and len(thread.messages) == 2
    with pytest.raises(handlers.Forbidden):
        await handlers.read_own_thread(supports, mine.inquiry_id, None, uuid4())
    with pytest.raises(handlers.NotFound):
        await handlers.read_own_thread(supports, uuid4(), None, user)


async def test_the_inbox_pages_newest_first_and_filters(supports, clock):
    made = []
    for topic in ("question", "feedback", "question"):
        clock.now += timedelta(seconds=1)
        made.append(await submit(supports, anonymous(topic=topic), client=str(uuid4())))
    page = await handlers.search_inquiries(supports, None, None, None, 2)
    assert [i.inquiry_id for i in page] == [made[2].inquiry_id, made[1].inquiry_id]
    rest = await handlers.search_inquiries(supports, None, None, (page[-1].received_at, page[-1].inquiry_id), 2)
    assert [i.inquiry_id for i in rest] == [made[0].inquiry_id]
    assert len(await handlers.search_inquiries(supports, "open", "question", None, 10)) == 2


async def test_a_users_erasure_removes_their_inquiries_and_is_confirmed(supports):
    user = uuid4()
    mine = await submit(supports, signed_in(user))
    other = await submit(supports, signed_in(uuid4()))
    async with supports.transaction() as store:
        await handlers.apply_user_erased(store, UserErased(user_id=user, erased_at=datetime.now(UTC)),
                                         EventMeta(id="e", type="UserErased", source="t", time=datetime.now(UTC)))
    assert await handlers.list_user_threads(supports, user) == []
    with pytest.raises(handlers.NotFound):
        await handlers.read_thread(supports, mine.inquiry_id)
    await handlers.read_thread(supports, other.inquiry_id)
    assert [e.inquiry_id for e in supports.store.published_of(InquiryErased)] == [mine.inquiry_id]
    assert supports.store.published_of(ErasureConfirmed)[0].service == "support"
    assert set(supports.store.forgotten) == {str(mine.inquiry_id), str(user)}


async def test_anonymous_inquiries_are_erased_by_address_and_their_keys_shredded(supports, keys):
    first = await submit(supports, anonymous("Ann@Example.com"))
    second = await submit(supports, anonymous("ann@example.com"))
    kept = await submit(supports, anonymous("bob@example.com"))
    assert await handlers.erase_by_address(supports, "ANN@example.com", owner=keys) == 2
    assert keys.erased == {first.inquiry_id, second.inquiry_id}
    with pytest.raises(SubjectErased):
        await keys.key_for(first.inquiry_id)
    await handlers.read_thread(supports, kept.inquiry_id)
    assert len(supports.store.published_of(InquiryErased)) == 2
