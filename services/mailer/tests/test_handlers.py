"""Every mailer use case, and the dispatcher, on the in-memory store: what they record, queue, publish, refuse."""

import asyncio
import time
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from opentelemetry import trace
from prometheus_client import CollectorRegistry

from assent_devtools.testing import relay
from assent_devtools.testing.clock import TickingClock
from assent_devtools.testing.keys import MemoryKeyOwner
from assent_mailer import handlers, messages, transactional
from assent_mailer.channels import DeliveryFailed
from assent_mailer.dispatcher import Dispatcher
from assent_mailer.domain import REVOKED, SHARED, SuppressionKeys
from assent_mailer.fakes import memory_mailers
from assent_mailer.mails import MailWriter
from assent_mailer.metrics import MailerMetrics
from assent_mailer.relay_reports import BadReport
from assent_mailer.settings import MailerSettings
from assent_mailer.templating import Templates, UnknownTemplate
from assent_mailer.wakeup import WorkArrived
from assent_shared.cloudevents import EventMeta
from assent_shared.events import (
    ConsentGranted, ConsentRevoked, DeliveryAttemptFailed, DeliveryCancelled, DeliveryFailed as DeliveryGaveUp,
    EmailBounced, EmailComplained, EmailSent, EmailVerificationRequested, ErasureConfirmed, InquiryAnswered,
    InquiryErased, OrderStatusChanged, PolicyUpdated, ProcessorDelivered, ProcessorRegistered,
    ProcessorRevocationSent, UnsubscribeRequested, UserEmailChangedV2, UserErased, UserRegistered, UserRegisteredV2,
)
from assent_shared.personal import PersonalFields

SETTINGS = MailerSettings(environment="test", max_delivery_attempts=2)
NOW = datetime.now(UTC)


class Work(WorkArrived):
    def __init__(self) -> None:
        super().__init__()
        self.notified = 0

    def notify(self) -> None:
        self.notified += 1
        super().notify()


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def mailers(clock):
    return memory_mailers(clock)


@pytest.fixture
def keys() -> MemoryKeyOwner:
    return MemoryKeyOwner()


@pytest.fixture
def personal(keys) -> PersonalFields:
    return PersonalFields(keys)


@pytest.fixture
def work() -> Work:
    return Work()


SUPPRESSIONS = SuppressionKeys({"k1": "suppression-key-one", "k2": "suppression-key-two"}, "k2")


def meta(kind: str = "test") -> EventMeta:
    return EventMeta(id=str(uuid4()), type=kind, source="test", time=datetime.now(UTC))


def deliveries(mailers, subject=None) -> list[tuple[str, str]]:
    return [(d["kind"], d["status"]) for d in mailers.store.deliveries.values()
            if subject is None or d["subject_id"] == subject]


async def registered(mailers, personal, work, email="ann@example.com", locale="de"):
    user = uuid4()
    event = UserRegisteredV2(user_id=user, email=await personal.seal(UserRegisteredV2, "email", user, email),
                             locale=locale, registered_at=NOW, policy_version=1, newsletter_opt_in=False)
    async with mailers.transaction() as store:
        await handlers.apply_user_registered(store, event, meta(), personal=personal, work=work)
    return user


async def consent(mailers, work, subject, purpose, recipient, granted, seq):
    kind = ConsentGranted if granted else ConsentRevoked
    event = kind(subject_id=subject, purpose=purpose, recipient=recipient, seq=seq, policy_version=1, source="user",
                 occurred_at=NOW)
    async with mailers.transaction() as store:
        await handlers.apply_consent(store, event, meta(kind.__name__), work=work)


async def add_processor(mailers, work, pid="surveys-co", purposes=("surveys",)):
    await handlers.register_processor(mailers, handlers.RegisterProcessor(
        pid, "Survey Co", "https://surveys.example/hook", list(purposes), "processor-secret-0123"), work=work)


async def test_a_registration_keeps_the_opened_address_and_queues_the_welcome_once(mailers, personal, work):
    user = await registered(mailers, personal, work)
    assert mailers.store.contacts[user]["email"] == "ann@example.com"
    assert mailers.store.contacts[user]["locale"] == "de"
    assert deliveries(mailers, user) == [("welcome", "pending")] and work.notified == 1
    again = UserRegistered(user_id=user, email="ann@example.com", registered_at=NOW, policy_version=1,
                           newsletter_opt_in=False)
    async with mailers.transaction() as store:
        await handlers.apply_user_registered(store, again, meta(), personal=personal, work=work)
    assert deliveries(mailers, user) == [("welcome", "pending")]


async def test_a_registration_after_the_erasure_brings_nobody_back(mailers, personal, keys, work):
    user = await registered(mailers, personal, work)
    async with mailers.transaction() as store:
        await handlers.apply_user_erased(store, UserErased(user_id=user, erased_at=NOW), meta(),
                                         suppressions=SUPPRESSIONS, work=work)
    await keys.erase(user)
    late = UserRegistered(user_id=user, email="ann@example.com", registered_at=NOW, policy_version=1,
                          newsletter_opt_in=False)
    async with mailers.transaction() as store:
        await handlers.apply_user_registered(store, late, meta(), personal=personal, work=work)
    assert mailers.store.contacts[user]["email"] is None
    assert deliveries(mailers, user) == [("welcome", "cancelled")]


async def test_a_changed_address_replaces_the_old_one_and_keeps_the_language(mailers, personal, work):
    user = await registered(mailers, personal, work)
    event = UserEmailChangedV2(user_id=user, email=await personal.seal(UserEmailChangedV2, "email", user, "b@x.org"),
                               changed_at=NOW)
    async with mailers.transaction() as store:
        await handlers.apply_email_changed(store, event, meta(), personal=personal, work=work)
    assert mailers.store.contacts[user] == {"email": "b@x.org", "locale": "de", "erased_at": None}


async def test_a_link_mail_is_queued_sealed_only_for_a_known_address(mailers, personal, work):
    user = await registered(mailers, personal, work)
    event = EmailVerificationRequested(user_id=user, sealed_token="sealed", expires_at=NOW + timedelta(hours=1),
                                       requested_at=NOW, locale="fr")
    for subject in (user, uuid4()):
        async with mailers.transaction() as store:
            await handlers.apply_link_requested(store, event.model_copy(update={"user_id": subject}),
                                                meta("EmailVerificationRequested"), work=work)
    [link] = [d for d in mailers.store.deliveries.values() if d["kind"] == messages.VERIFY_EMAIL]
    assert link["subject_id"] == user and link["content"]["sealed_token"] == "sealed"
    assert link["content"]["locale"] == "fr"


async def test_a_grant_shares_with_a_registered_processor_and_a_revoke_tells_it_after_the_share(mailers, personal,
                                                                                                 work):
    user = await registered(mailers, personal, work)
    await add_processor(mailers, work)
    await consent(mailers, work, user, "surveys", "surveys-co", True, 1)
    await consent(mailers, work, user, "surveys", "unknown-co", True, 2)  # no such processor: nothing goes
    [share] = [d for d in mailers.store.deliveries.values() if d["kind"] == SHARED]
    assert (share["recipient"], share["status"]) == ("surveys-co", "pending")
    await consent(mailers, work, user, "surveys", "surveys-co", True, 1)  # a repeat changes nothing
    assert len([d for d in mailers.store.deliveries.values() if d["kind"] == SHARED]) == 1
    mailers.store.deliveries[share["delivery_id"]]["status"] = "sent"
    await consent(mailers, work, user, "surveys", "surveys-co", False, 3)
    [revoked] = [d for d in mailers.store.deliveries.values() if d["kind"] == REVOKED]
    assert revoked["recipient"] == "surveys-co"


async def test_a_revoke_before_the_share_went_cancels_it_and_says_so(mailers, personal, work):
    user = await registered(mailers, personal, work)
    await add_processor(mailers, work)
    await consent(mailers, work, user, "surveys", "surveys-co", True, 1)
    await consent(mailers, work, user, "surveys", "surveys-co", False, 2)
    assert sorted(deliveries(mailers, user)) == [(SHARED, "cancelled"), ("welcome", "pending")]
    [cancelled] = mailers.store.published_of(DeliveryCancelled)
    assert cancelled.kind == SHARED and cancelled.recipient == "surveys-co"


async def test_registering_a_processor_publishes_it_and_shares_with_those_who_granted_before(mailers, personal,
                                                                                              work):
    user = await registered(mailers, personal, work)
    await consent(mailers, work, user, "surveys", "late-co", True, 1)
    assert deliveries(mailers, user) == [("welcome", "pending")]
    await add_processor(mailers, work, "late-co")
    [registered_event] = mailers.store.published_of(ProcessorRegistered)
    assert registered_event.purposes == ("surveys",)
    assert (SHARED, "pending") in deliveries(mailers, user)


async def test_an_erasure_forgets_the_address_its_hashes_and_contents_withdraws_and_confirms(mailers, personal,
                                                                                              work):
    user = await registered(mailers, personal, work)
    await add_processor(mailers, work)
    await consent(mailers, work, user, "surveys", "surveys-co", True, 1)
    [share] = [d for d in mailers.store.deliveries.values() if d["kind"] == SHARED]
    mailers.store.deliveries[share["delivery_id"]]["status"] = "sent"
    async with mailers.transaction() as store:
        await handlers.suppress_address(store, "ann@example.com", "hard bounce", suppressions=SUPPRESSIONS)
        await handlers.apply_user_erased(store, UserErased(user_id=user, erased_at=NOW), meta(),
                                         suppressions=SUPPRESSIONS, work=work)
    assert mailers.store.contacts[user]["email"] is None and mailers.store.suppressions == {}
    assert ("welcome", "cancelled") in deliveries(mailers, user)
    assert (REVOKED, "pending") in deliveries(mailers, user)  # the processor that has the data is told
    assert all(not v.granted for v in mailers.store.consents.values())
    assert mailers.store.forgotten == [str(user)]
    [confirmed] = mailers.store.published_of(ErasureConfirmed)
    assert (confirmed.user_id, confirmed.service) == (user, "mailer")


async def test_a_newsletter_reaches_each_subscriber_once(mailers, personal, work):
    subscriber = await registered(mailers, personal, work, "s@example.com")
    await registered(mailers, personal, work, "n@example.com")
    await consent(mailers, work, subscriber, "newsletter", "first_party", True, 1)
    issue = handlers.SendNewsletter("2026-12", "News", "Hello")
    assert await handlers.send_newsletter(mailers, issue, work=work) == 1
    assert await handlers.send_newsletter(mailers, issue, work=work) == 0
    assert ("newsletter", "pending") in deliveries(mailers, subscriber)


async def test_only_a_material_later_policy_version_is_told_to_subscribers(mailers, personal, work):
    subscriber = await registered(mailers, personal, work)
    await consent(mailers, work, subscriber, "newsletter", "first_party", True, 1)
    for version, material in ((1, True), (2, False), (3, True), (3, True)):
        event = PolicyUpdated(policy_id="privacy", version=version, title="T", summary="S", material=material,
                              effective_at=NOW, published_at=NOW)
        async with mailers.transaction() as store:
            await handlers.apply_policy_updated(store, event, meta(), work=work)
    [mail] = [d for d in mailers.store.deliveries.values() if d["kind"] == "newsletter"]
    assert mail["content"]["mail"] == "policy_change" and mail["content"]["version"] == 3


async def test_unsubscribing_stops_the_waiting_newsletter_and_asks_consent_to_record_it(mailers, personal, work):
    user = await registered(mailers, personal, work)
    await consent(mailers, work, user, "newsletter", "first_party", True, 1)
    await handlers.send_newsletter(mailers, handlers.SendNewsletter("i1", "News", "Hello"), work=work)
    token = messages.unsubscribe_token(SETTINGS.signing_secret, user, "newsletter")
    await handlers.unsubscribe(mailers, token, settings=SETTINGS)
    assert not mailers.store.consents[(user, "newsletter", "first_party")].granted
    assert ("newsletter", "cancelled") in deliveries(mailers, user)
    [asked] = mailers.store.published_of(UnsubscribeRequested)
    assert (asked.subject_id, asked.purpose) == (user, "newsletter")
    with pytest.raises(messages.BadToken):
        await handlers.unsubscribe(mailers, token[:-2] + "xx", settings=SETTINGS)


async def report(mailers, body: bytes, content_type="application/json", secret=SETTINGS.bounce_secret):
    headers = relay.signed(secret, body, content_type)
    return await handlers.record_relay_report(mailers, handlers.RecordRelayReport(
        headers["Assent-Signature"], content_type, body, time.time()), settings=SETTINGS, suppressions=SUPPRESSIONS)


async def test_a_hard_bounce_suppresses_the_address_once_and_a_soft_one_changes_nothing(mailers, personal, work):
    user = await registered(mailers, personal, work)
    [welcome] = mailers.store.deliveries.values()
    message_id = messages.delivery_message_id(welcome["delivery_id"])
    soft = relay.notification("bounce", message_id, "ann@example.com", bounce_type="soft")
    assert (await report(mailers, soft))["outcome"] == "unchanged"
    hard = relay.notification("bounce", message_id, "ann@example.com")
    assert await report(mailers, hard) == {"delivery_id": welcome["delivery_id"], "outcome": "bounced"}
    assert (await report(mailers, hard))["outcome"] == "unchanged"
    assert len(mailers.store.published_of(EmailBounced)) == 1
    async with mailers.reading() as store:
        assert await handlers.is_suppressed(store, "ANN@example.com ", suppressions=SUPPRESSIONS)
    assert deliveries(mailers, user) == [("welcome", "bounced")]


async def test_a_complaint_suppresses_and_unsubscribes_the_user(mailers, personal, work):
    user = await registered(mailers, personal, work)
    await consent(mailers, work, user, "newsletter", "first_party", True, 1)
    [welcome] = mailers.store.deliveries.values()
    body = relay.complaint_mail(messages.delivery_message_id(welcome["delivery_id"]), "ann@example.com")
    assert (await report(mailers, body, "message/rfc822"))["outcome"] == "complained"
    assert mailers.store.published_of(EmailComplained) and mailers.store.published_of(UnsubscribeRequested)
    assert not mailers.store.consents[(user, "newsletter", "first_party")].granted


async def test_a_report_unsigned_unreadable_or_about_another_mail_is_refused_and_changes_nothing(mailers):
    body = relay.notification("bounce", messages.delivery_message_id(uuid4()), "ann@example.com")
    with pytest.raises(handlers.BadSignature):
        await report(mailers, body, secret="not-the-bounce-secret")
    with pytest.raises(handlers.UnknownMessage):
        await report(mailers, body)
    with pytest.raises(handlers.UnknownMessage):
        await report(mailers, relay.notification("bounce", "<other@elsewhere.example>"))
    with pytest.raises(BadReport):
        await report(mailers, b'{"type": "bounce"}')
    assert mailers.store.published == [] and mailers.store.suppressions == {}


async def test_a_hash_under_an_older_key_moves_to_the_current_one_and_old_hashes_are_pruned(mailers, clock):
    old = SuppressionKeys({"k1": "suppression-key-one"}, "k1")
    async with mailers.transaction() as store:
        await handlers.suppress_address(store, "a@example.com", "complaint", suppressions=old)
        assert await handlers.is_suppressed(store, "a@example.com", suppressions=SUPPRESSIONS)
        assert not await handlers.is_suppressed(store, "b@example.com", suppressions=SUPPRESSIONS)
    assert [(k, s["reason"]) for (k, _), s in mailers.store.suppressions.items()] == [("k2", "complaint")]
    clock.now += timedelta(seconds=SETTINGS.suppression_keep_seconds + 1)
    assert await handlers.prune_suppressions(mailers, settings=SETTINGS) == 1
    assert mailers.store.suppressions == {}


async def test_the_admin_lists_page_deliveries_processors_and_a_processors_shares(mailers, personal, work):
    user = await registered(mailers, personal, work)
    await add_processor(mailers, work, "a-co")
    await add_processor(mailers, work, "b-co")
    await consent(mailers, work, user, "surveys", "a-co", True, 1)
    await consent(mailers, work, user, "surveys", "b-co", True, 2)
    first = await handlers.list_deliveries_of(mailers, user, None, 2)
    rest = await handlers.list_deliveries_of(mailers, user, (first[-1]["created_at"], first[-1]["delivery_id"]))
    assert [d["kind"] for d in first + rest] == ["welcome", SHARED, SHARED]
    processors = await handlers.list_processors(mailers, None, 10)
    assert [p["processor_id"] for p in processors] == ["a-co", "b-co"]
    assert all("signing_secret" not in p for p in processors)
    assert [p["processor_id"] for p in await handlers.list_processors(mailers, "a-co", 10)] == ["b-co"]
    [to_b] = await handlers.list_deliveries_to(mailers, "b-co", None, 10)
    assert to_b["consent_event_id"] == mailers.store.consents[(user, "surveys", "b-co")].event_id


def test_the_templates_list_every_mail_and_preview_with_invented_values():
    templates = Templates()
    listed = handlers.list_templates(templates)
    assert "en" in listed["welcome"] and "inquiry_reply" in listed
    rendered = handlers.preview_template(templates, "inquiry_reply", "en", settings=SETTINGS)
    assert "Q-7K3M9P" in rendered.subject + rendered.text
    with pytest.raises(UnknownTemplate):
        handlers.preview_template(templates, "no_such_mail", "en", settings=SETTINGS)


async def test_an_order_update_goes_to_a_known_customer_and_never_to_an_erased_or_unknown_one(mailers, personal,
                                                                                              work):
    user = await registered(mailers, personal, work)
    event = OrderStatusChanged(order_id="A-1", user_id=user, status="shipped", occurred_at=NOW)
    async with mailers.transaction() as store:
        await transactional.apply_order_status_changed(store, event, meta(), work=work)
    assert ("order_update", "pending") in deliveries(mailers, user)
    with pytest.raises(transactional.UnknownCustomer):
        async with mailers.transaction() as store:
            await transactional.apply_order_status_changed(store, event.model_copy(update={"user_id": uuid4()}),
                                                           meta(), work=work)
    async with mailers.transaction() as store:
        await handlers.apply_user_erased(store, UserErased(user_id=user, erased_at=NOW), meta(),
                                         suppressions=SUPPRESSIONS, work=work)
        await transactional.apply_order_status_changed(store, event, meta(), work=work)
    assert [k for k, _ in deliveries(mailers, user)].count("order_update") == 1


async def answered(personal, inquiry, email="anon@example.com", by_mail=True) -> InquiryAnswered:
    async def seal(field, value):
        return await personal.seal(InquiryAnswered, field, inquiry, value)

    return InquiryAnswered(inquiry_id=inquiry, reference="Q-1", message_id=uuid4(), reply_by_mail=by_mail,
                           email=await seal("email", email), body=await seal("body", "It ships."),
                           reply_url=await seal("reply_url", "https://site.example/r"), answered_at=NOW)


async def test_an_inquiry_reply_is_kept_sealed_and_goes_with_the_inquirys_erasure(mailers, personal, work):
    inquiry = uuid4()
    async with mailers.transaction() as store:
        await transactional.apply_inquiry_answered(store, await answered(personal, inquiry), meta(), work=work)
        await transactional.apply_inquiry_answered(store, await answered(personal, inquiry, by_mail=False), meta(),
                                                   work=work)
    [reply] = mailers.store.deliveries.values()
    assert reply["kind"] == "inquiry_reply" and "anon@example.com" not in str(reply["content"])
    async with mailers.transaction() as store:
        await transactional.apply_inquiry_erased(store, InquiryErased(inquiry_id=inquiry, erased_at=NOW), meta())
    assert deliveries(mailers) == [("inquiry_reply", "cancelled")]
    assert mailers.store.deliveries[reply["delivery_id"]]["content"] is None


class Smtp:
    def __init__(self) -> None:
        self.sent = []

    async def send(self, message) -> None:
        self.sent.append(message)


class Webhooks:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.posted = []

    async def post(self, url: str, secret: str, payload: dict) -> None:
        if self.fail:
            raise DeliveryFailed("HTTP 503")
        self.posted.append(payload)


def dispatcher(mailers, work, smtp, webhooks, personal) -> Dispatcher:
    templates = Templates()
    mails = MailWriter(SETTINGS, templates, personal,
                       lambda store, email: handlers.is_suppressed(store, email, suppressions=SUPPRESSIONS))
    return Dispatcher(mailers, SETTINGS, work=work, suppressions=SUPPRESSIONS, smtp=smtp, webhooks=webhooks,
                      tracer=trace.get_tracer("test"), metrics=MailerMetrics(CollectorRegistry()), mails=mails)


async def test_the_dispatcher_sends_what_is_due_and_records_each_outcome(mailers, personal, work):
    user = await registered(mailers, personal, work)
    await add_processor(mailers, work)
    await consent(mailers, work, user, "surveys", "surveys-co", True, 1)
    smtp, webhooks = Smtp(), Webhooks()
    assert await dispatcher(mailers, work, smtp, webhooks, personal).dispatch_once() == 2
    [mail] = smtp.sent
    assert mail["To"] == "ann@example.com" and mail.get_body(("plain",)) is not None
    [payload] = webhooks.posted
    assert payload["email"] == "ann@example.com" and payload["event"] == SHARED
    assert sorted(deliveries(mailers, user)) == [(SHARED, "sent"), ("welcome", "sent")]
    assert mailers.store.published_of(EmailSent) and mailers.store.published_of(ProcessorDelivered)
    assert not mailers.store.published_of(ProcessorRevocationSent)


async def test_the_dispatcher_retries_then_gives_up_and_cancels_what_the_gate_no_longer_allows(mailers, personal,
                                                                                               work, clock):
    user = await registered(mailers, personal, work)
    await add_processor(mailers, work)
    await consent(mailers, work, user, "surveys", "surveys-co", True, 1)
    failing = dispatcher(mailers, work, Smtp(), Webhooks(fail=True), personal)
    await failing.dispatch_once()
    [retry] = mailers.store.published_of(DeliveryAttemptFailed)
    assert (retry.attempt, retry.reason) == (1, "HTTP 503")
    clock.now += timedelta(seconds=SETTINGS.retry_max_seconds)
    await failing.dispatch_once()
    [gave_up] = mailers.store.published_of(DeliveryGaveUp)
    assert (gave_up.kind, gave_up.attempts) == (SHARED, 2)
    async with mailers.transaction() as store:
        await handlers.suppress_address(store, "ann@example.com", "hard bounce", suppressions=SUPPRESSIONS)
    await handlers.send_newsletter(mailers, handlers.SendNewsletter("i1", "N", "B"), work=work)
    await consent(mailers, work, user, "newsletter", "first_party", True, 2)
    await handlers.send_newsletter(mailers, handlers.SendNewsletter("i2", "N", "B"), work=work)
    smtp = Smtp()
    await dispatcher(mailers, work, smtp, Webhooks(), personal).dispatch_once()
    assert smtp.sent == []  # the address is suppressed: the newsletter is cancelled at send time
    assert ("newsletter", "cancelled") in deliveries(mailers, user)


async def test_a_delivery_that_cannot_be_written_fails_alone(mailers, personal, work):
    user = await registered(mailers, personal, work)
    await consent(mailers, work, user, "newsletter", "first_party", True, 1)
    await handlers.send_newsletter(mailers, handlers.SendNewsletter("bad", "Two\nlines", "B"), work=work)
    smtp = Smtp()
    await dispatcher(mailers, work, smtp, Webhooks(), personal).dispatch_once()
    assert len(smtp.sent) == 1  # the welcome, in the same batch
    assert sorted(deliveries(mailers, user)) == [("newsletter", "failed"), ("welcome", "sent")]
    [failed] = mailers.store.published_of(DeliveryGaveUp)
    assert failed.reason == "cannot be sent: ValueError"


async def test_work_arrived_wakes_a_waiting_dispatcher_before_its_poll():
    work = WorkArrived()
    waiting = asyncio.create_task(work.wait(timeout=30))
    await asyncio.sleep(0)  # a turn of the loop: the dispatcher is waiting now
    work.notify()
    await asyncio.wait_for(waiting, 1)


class HeldSmtp(Smtp):
    """An SMTP server that takes the mail and answers only when released."""

    def __init__(self) -> None:
        super().__init__()
        self.taken, self.release = asyncio.Event(), asyncio.Event()

    async def send(self, message) -> None:
        self.sent.append(message)
        self.taken.set()
        await self.release.wait()


async def test_a_stop_mid_send_lets_the_batch_finish_so_no_sent_mail_is_left_to_send_again(mailers, personal, work):
    user = await registered(mailers, personal, work)
    smtp = HeldSmtp()
    running = asyncio.create_task(dispatcher(mailers, work, smtp, Webhooks(), personal).run())
    await asyncio.wait_for(smtp.taken.wait(), 5)  # the welcome went out; its outcome is not recorded yet
    running.cancel()  # the service stops
    await asyncio.sleep(0)
    smtp.release.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(running, 5)
    assert deliveries(mailers, user) == [("welcome", "sent")]
    assert len(mailers.store.published_of(EmailSent)) == 1
