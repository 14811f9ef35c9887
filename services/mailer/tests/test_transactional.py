"""Transactional mail on real Kafka, PostgreSQL and SMTP: order updates and inquiry replies, templated,
in the user's language, threaded, idempotent, and never past suppression or erasure."""

import json
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from assent_mailer.main import create_app
from assent_mailer.settings import MailerSettings
from assent_shared.cloudevents import encode_headers, meta_for
from assent_devtools.devstack.smtp_sink import BOUNCING_DOMAIN
from assent_shared.events import InquiryAnswered, OrderStatusChanged, UserErased, UserRegisteredV2
from assent_shared.personal import PersonalFields
from assent_devtools.testing import relay
from assent_devtools.testing.apps import base_settings, serve
from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.keys import MemoryKeyOwner
from assent_devtools.testing.topics import publish, read_topic

SITE = "https://site.example"


@pytest.fixture
async def mailer(infra, new_database, sink):
    prefix = unique("tx-") + "."
    database = await new_database("mailer")
    keys = MemoryKeyOwner()
    settings = MailerSettings(**base_settings(infra, database, prefix, smtp_port=sink.port, site_url=SITE))
    async with serve(create_app(settings, keys)) as client:
        client.prefix, client.database, client.keys = prefix, database, keys
        client.personal = PersonalFields(keys)
        client.admin = {"Authorization": f"Bearer {settings.admin_token}"}
        yield client


def mail_to(sink, address):
    return [m for m in sink.messages() if m["To"] == address]


async def send(infra, mailer, event, meta=None):
    return await publish(infra.kafka_bootstrap, mailer.prefix + event.topic.name, event, meta)


async def register(infra, mailer, locale=None, domain="example.com"):
    user, email = uuid4(), f"{unique('tx')}@{domain}"
    await send(infra, mailer, UserRegisteredV2(
        user_id=user, email=await mailer.personal.seal(UserRegisteredV2, "email", user, email), locale=locale,
        registered_at=datetime.now(UTC), policy_version=1, newsletter_opt_in=False))
    return user, email


async def rows(mailer, query, *args):
    conn = await asyncpg.connect(mailer.database)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


def order(user, order_id=None, status="shipped"):
    return OrderStatusChanged(order_id=order_id or unique("A-"), user_id=user, status=status,
                              occurred_at=datetime(2026, 12, 24, 18, 5, tzinfo=UTC))


async def dead_letters(infra, mailer):
    return await read_topic(infra.kafka_bootstrap, mailer.prefix + "mailer.dead-letters.v1")


async def test_an_order_update_goes_to_the_user_in_their_language_without_any_consent(mailer, infra, sink):
    user, email = await register(infra, mailer, locale="de")
    await eventually(lambda: mail_to(sink, email))  # the welcome, in German too
    update = order(user)
    await send(infra, mailer, update)
    [mail] = await eventually(lambda: [m for m in mail_to(sink, email) if update.order_id in m["Subject"]])
    assert mail["Subject"] == f"Ihre Bestellung {update.order_id} wurde versandt"
    assert mail.get_content_type() == "multipart/alternative"
    text, html = mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()
    assert "Guten Tag" in text and "24.12.2026 18:05" in text and f"{SITE}/my-data" in text
    assert f"<strong>{update.order_id}</strong> wurde versandt" in html and '<html lang="de">' in html
    [welcome] = [m for m in mail_to(sink, email) if m is not mail and "Willkommen" in m["Subject"]]
    assert welcome.get_body(("html",)) is not None
    [row] = await eventually(lambda: rows(mailer, "SELECT * FROM deliveries WHERE subject_id = $1 "
                                                  "AND kind = 'order_update' AND status = 'sent'", user))
    assert (row["channel"], row["recipient"], row["purpose"]) == ("email", "first_party", None)


async def test_without_a_known_language_the_order_mail_is_english(mailer, infra, sink):
    user, email = await register(infra, mailer, locale="fr")
    update = order(user, status="refunded")
    await send(infra, mailer, update)
    [mail] = await eventually(lambda: [m for m in mail_to(sink, email) if update.order_id in m["Subject"]])
    assert mail["Subject"] == f"Your order {update.order_id} has been refunded"


async def test_bad_order_records_are_dead_lettered_and_the_next_one_still_goes_out(mailer, infra, sink):
    user, email = await register(infra, mailer)
    stranger = order(uuid4())
    await send(infra, mailer, stranger)
    malformed = order(user)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
    await producer.start()
    try:
        payload = json.loads(malformed.model_dump_json()) | {"status": "lost-in-space"}
        await producer.send_and_wait(mailer.prefix + "orders.orders.v1", json.dumps(payload).encode(),
                                     key=malformed.order_id.encode(), headers=encode_headers(meta_for(malformed)))
    finally:
        await producer.stop()
    good = order(user, status="delivered")
    await send(infra, mailer, good)
    [mail] = await eventually(lambda: [m for m in mail_to(sink, email) if good.order_id in m["Subject"]])
    assert "has been delivered" in mail["Subject"]

    async def both_dead():
        found = [r for _, r in await dead_letters(infra, mailer)]
        keys = {r.key for r in found}
        return found if {stranger.order_id.encode(), malformed.order_id.encode()} <= keys else None

    found = await eventually(both_dead, timeout=30)
    reasons = b" ".join(v for r in found for k, v in r.headers if k == "dlq_reason")
    assert b"UnknownCustomer" in reasons and b"status" in reasons
    assert not [m for m in mail_to(sink, email) if malformed.order_id in m["Subject"]]
    assert str(stranger.user_id).encode() not in reasons


async def test_order_mail_honours_suppression_and_erasure(mailer, infra, sink):
    bouncing, _ = await register(infra, mailer, domain=BOUNCING_DOMAIN)
    await eventually(lambda: rows(mailer, "SELECT 1 FROM deliveries WHERE subject_id = $1 AND status = 'bounced'",
                                  bouncing))
    await send(infra, mailer, order(bouncing))
    erased, email = await register(infra, mailer)
    await eventually(lambda: mail_to(sink, email))
    await send(infra, mailer, UserErased(user_id=erased, erased_at=datetime.now(UTC)))
    await eventually(lambda: rows(mailer, "SELECT 1 FROM contacts WHERE subject_id = $1 AND erased_at IS NOT NULL",
                                  erased))
    late = order(erased)
    meta = await send(infra, mailer, late)
    await eventually(lambda: rows(mailer, "SELECT 1 FROM inbox WHERE event_id = $1", meta.id))
    [suppressed] = await eventually(lambda: rows(
        mailer, "SELECT status FROM deliveries WHERE subject_id = $1 AND kind = 'order_update' "
                "AND status <> 'pending' LIMIT 1", bouncing))
    assert suppressed["status"] == "cancelled"
    assert await rows(mailer, "SELECT 1 FROM deliveries WHERE subject_id = $1 AND kind = 'order_update'", erased) == []
    assert not [m for m in mail_to(sink, email) if late.order_id in m["Subject"]]


async def answered(mailer, *, inquiry=None, user=None, email=None, earlier=(), locale="en", reply_by_mail=True,
                   body="Thank you.\n\nYour data stays <here>."):
    """An InquiryAnswered as support seals it: under the user's key, or the inquiry's when anonymous."""
    inquiry = inquiry or uuid4()
    subject = user or inquiry

    async def seal(field, value):
        return await mailer.personal.seal(InquiryAnswered, field, subject, value)

    reply_url = f"{SITE}/contact/reply?inquiry={inquiry}&token={unique('tok')}"
    return InquiryAnswered(
        inquiry_id=inquiry, reference=unique("Q-"), message_id=uuid4(), user_id=user, reply_by_mail=reply_by_mail,
        locale=locale, earlier_replies=tuple(earlier), email=await seal("email", email) if email else None,
        body=await seal("body", body), reply_url=await seal("reply_url", reply_url), answered_at=datetime.now(UTC),
    ), reply_url


async def test_an_anonymous_inquiry_gets_its_reply_threaded_once_with_the_answer_link(mailer, infra, sink):
    email, inquiry, first = f"{unique('anon')}@example.com", uuid4(), uuid4()
    event, reply_url = await answered(mailer, inquiry=inquiry, email=email, earlier=(first,), locale="de")
    meta = await send(infra, mailer, event)
    [mail] = await eventually(lambda: mail_to(sink, email))
    assert mail["Subject"] == f"Re: Ihre Anfrage {event.reference}"
    assert mail["Message-ID"] == f"<reply-{event.message_id}@assent.example>"
    assert mail["In-Reply-To"] == f"<reply-{first}@assent.example>"
    assert mail["References"].split() == [f"<inquiry-{inquiry}@assent.example>", f"<reply-{first}@assent.example>"]
    text, html = mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()
    assert "Your data stays <here>." in text and reply_url in text
    assert "Your data stays &lt;here&gt;." in html and reply_url.replace("&", "&amp;") in html
    await send(infra, mailer, event, meta)  # redelivered: applied once
    await send(infra, mailer, event)  # the same reply under a new event id: one mail per reply
    sent = await eventually(lambda: rows(mailer, "SELECT * FROM deliveries WHERE subject_id = $1 AND status = 'sent'",
                                         inquiry))
    await eventually(lambda: rows(mailer, "SELECT 1 FROM inbox WHERE event_id = $1", meta.id))
    assert len(mail_to(sink, email)) == 1
    [row] = sent
    assert (row["kind"], row["channel"], row["recipient"], row["content"]) == ("inquiry_reply", "email",
                                                                                "first_party", None)
    conn = await asyncpg.connect(mailer.database)
    try:  # the address and the reply were never stored readable
        for table in ("deliveries", "contacts"):
            dump = await conn.fetchval(f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {table} t")
            assert email not in dump and "stays" not in dump
    finally:
        await conn.close()


async def test_a_complaint_about_a_reply_suppresses_the_writers_address(mailer, infra, sink):
    email, inquiry = f"{unique('fbl')}@example.com", uuid4()
    first, _ = await answered(mailer, inquiry=inquiry, email=email)
    await send(infra, mailer, first)
    [mail] = await eventually(lambda: mail_to(sink, email))
    body = relay.notification("complaint", mail["Message-ID"], email)
    secret = MailerSettings.model_fields["bounce_secret"].default
    complained = await mailer.post("/v1/bounces", content=body, headers=relay.signed(secret, body, "application/json"))
    assert complained.status_code == 202 and complained.json()["outcome"] == "complained", complained.text

    second, _ = await answered(mailer, inquiry=inquiry, email=email, earlier=(first.message_id,))
    await send(infra, mailer, second)

    async def settled():
        found = await rows(mailer, "SELECT status FROM deliveries WHERE subject_id = $1 AND status <> 'pending' "
                                   "ORDER BY created_at", inquiry)
        return [r["status"] for r in found] if len(found) == 2 else None

    assert await eventually(settled) == ["complained", "cancelled"]
    assert len(mail_to(sink, email)) == 1
    records = await read_topic(infra.kafka_bootstrap, mailer.prefix + "mailer.deliveries.v1")
    types = [m.type for m, _ in records if m.subject == str(inquiry)]
    assert "EmailComplained" in types and "UnsubscribeRequested" not in types  # nobody to unsubscribe: no account


async def test_a_signed_in_authors_reply_goes_to_their_current_address(mailer, infra, sink):
    user, email = await register(infra, mailer, locale="de")
    await eventually(lambda: mail_to(sink, email))
    event, _ = await answered(mailer, user=user, locale="en")
    await send(infra, mailer, event)
    [mail] = await eventually(lambda: [m for m in mail_to(sink, email) if event.reference in m["Subject"]])
    assert mail["Subject"] == f"Re: your inquiry {event.reference}"  # the inquiry's language, as written
    assert mail["In-Reply-To"] == mail["References"] == f"<inquiry-{event.inquiry_id}@assent.example>"


async def test_no_reply_mail_without_an_address_or_after_erasure(mailer, infra, sink):
    kept, _ = await answered(mailer, email=None, reply_by_mail=False)
    erased_email = f"{unique('gone')}@example.com"
    shredded, _ = await answered(mailer, email=erased_email)
    await mailer.keys.erase(shredded.inquiry_id)  # support erased the anonymous inquiry: its key is gone
    user, email = await register(infra, mailer)
    await eventually(lambda: mail_to(sink, email))
    await send(infra, mailer, UserErased(user_id=user, erased_at=datetime.now(UTC)))
    await eventually(lambda: rows(mailer, "SELECT 1 FROM contacts WHERE subject_id = $1 AND erased_at IS NOT NULL",
                                  user))
    late, _ = await answered(mailer, user=user)
    metas = [await send(infra, mailer, e) for e in (kept, shredded, late)]
    for meta in metas:
        await eventually(lambda meta=meta: rows(mailer, "SELECT 1 FROM inbox WHERE event_id = $1", meta.id))
    [cancelled] = await eventually(lambda: rows(
        mailer, "SELECT status, content FROM deliveries WHERE subject_id = $1 AND status <> 'pending'",
        shredded.inquiry_id))
    assert (cancelled["status"], cancelled["content"]) == ("cancelled", None)
    assert not mail_to(sink, erased_email)
    assert not [m for m in mail_to(sink, email) if late.reference in m["Subject"]]
    assert await rows(mailer, "SELECT 1 FROM deliveries WHERE kind = 'inquiry_reply' AND subject_id = ANY($1::uuid[])",
                      [kept.inquiry_id, user]) == []


async def test_the_admin_previews_every_mail_in_every_language(mailer):
    listed = await mailer.get("/v1/admin/templates", headers=mailer.admin)
    assert listed.status_code == 200
    mails = {t["mail"]: t["locales"] for t in listed.json()}
    assert set(mails) == {"welcome", "verification", "reset", "newsletter", "policy_change", "order_update",
                          "inquiry_reply"}
    for mail, locales in mails.items():
        assert {"en", "de"} <= set(locales)
        for locale in locales:
            html = await mailer.get(f"/v1/admin/templates/{mail}/preview", params={"locale": locale},
                                    headers=mailer.admin)
            assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
            assert f'<html lang="{locale}">' in html.text and "default-src 'none'" in html.headers["content-security-policy"]
            text = await mailer.get(f"/v1/admin/templates/{mail}/preview",
                                    params={"locale": locale, "format": "text"}, headers=mailer.admin)
            assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
            assert "<html" not in text.text and "{{" not in text.text and text.headers["x-mail-subject"]
    for path, params, status in (("nonsense", {}, 404), ("welcome", {"locale": "fr"}, 404),
                                 ("welcome", {"format": "pdf"}, 422), ("welcome", {"locale": "x\r\n"}, 422),
                                 ("Welcome!", {}, 422)):
        refused = await mailer.get(f"/v1/admin/templates/{path}/preview", params=params, headers=mailer.admin)
        assert refused.status_code == status, (path, params, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
    assert (await mailer.get("/v1/admin/templates")).status_code == 401
    assert (await mailer.get("/v1/admin/templates/welcome/preview")).status_code == 401
