"""Issue 13 end to end, every service a process on real Kafka and PostgreSQL, mail in the SMTP sink:
an anonymous inquiry answered by mail, threaded, answered back by the mail's link and answered again;
one without an address kept with no personal data; an erasure by address removing the inquiry and its
reply, confirmed by InquiryErased; an order update in the user's language; bad order records
dead-lettered while the next still goes out."""

import json
import re
import secrets
from datetime import UTC, datetime
from uuid import uuid4

from aiokafka import AIOKafkaProducer

from assent_shared.cloudevents import encode_headers, meta_for
from assent_shared.events import OrderStatusChanged
from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.topics import publish, read_topic
from tests.e2e.conftest import consumed, find_text

_REPLY_LINK = re.compile(r"(https?://\S+/contact/reply\?inquiry=([0-9a-f-]+)&token=([A-Za-z0-9_.-]+))")


def mails_to(system, email):
    return [m for m in system.sink.messages() if m["To"] == email]


async def test_an_anonymous_inquiry_is_answered_by_mail_in_its_thread(system):
    email = f"{unique('ask')}@example.com"
    async with system.client("support") as support:
        sent = await support.post("/v1/inquiries", json={"topic": "question", "message": "Do you sell my data?",
                                                         "email": email, "locale": "en"})
        assert sent.status_code == 202, sent.text
        inquiry = sent.json()
        first = await support.post(f"/v1/admin/inquiries/{inquiry['id']}/replies", headers=system.admin,
                                   json={"body": "No. Never.\n\nWe never sell, trade or rent it."})
        assert first.status_code == 201, first.text
        [mail] = await eventually(lambda: mails_to(system, email), timeout=30)
        root = f"<inquiry-{inquiry['id']}@assent.example>"
        assert mail["Message-ID"] == f"<reply-{first.json()['id']}@assent.example>"
        assert mail["In-Reply-To"] == root and mail["References"] == root
        assert inquiry["reference"] in mail["Subject"]
        text = mail.get_body(("plain",)).get_content()
        html = mail.get_body(("html",)).get_content()
        assert "We never sell, trade or rent it." in text and "We never sell, trade or rent it." in html
        [(link, linked_inquiry, token)] = _REPLY_LINK.findall(text)
        assert link.startswith(system.urls["site"]) and linked_inquiry == inquiry["id"]

        answer = await support.post(f"/v1/inquiries/{inquiry['id']}/messages",
                                    json={"message": "And my address?", "token": token})
        assert answer.status_code == 201, answer.text
        second = await support.post(f"/v1/admin/inquiries/{inquiry['id']}/replies", headers=system.admin,
                                    json={"body": "It is only used to answer you."})
        assert second.status_code == 201, second.text
    later = await eventually(lambda: [m for m in mails_to(system, email) if m["Message-ID"] != mail["Message-ID"]],
                             timeout=30)
    [again] = later
    first_id = f"<reply-{first.json()['id']}@assent.example>"
    assert again["Message-ID"] == f"<reply-{second.json()['id']}@assent.example>"
    assert again["In-Reply-To"] == first_id and again["References"].split() == [root, first_id]
    assert "It is only used to answer you." in again.get_body(("plain",)).get_content()


async def test_an_anonymous_inquiry_without_an_address_keeps_no_personal_data(system):
    client_ip = f"198.51.100.{secrets.randbelow(254) + 1}"  # the writer's address, as the proxy forwards it
    async with system.client("support") as support:
        sent = await support.post("/v1/inquiries", headers={"X-Forwarded-For": client_ip},
                                  json={"topic": "feedback", "message": f"Nice site {unique('fb-')}"})
        assert sent.status_code == 202, sent.text
        inquiry = sent.json()
        thread = (await support.get(f"/v1/admin/inquiries/{inquiry['id']}", headers=system.admin)).json()
        assert thread["email"] is None and not thread["signed_in"] and not thread["reply_by_mail"]
        reply = await support.post(f"/v1/admin/inquiries/{inquiry['id']}/replies", headers=system.admin,
                                   json={"body": "Thank you."})
        assert reply.status_code == 201, reply.text

    async def answered():
        records = await read_topic(system.kafka, system.topic("support.inquiries.v1"))
        return [json.loads(r.value) for m, r in records if m.type == "InquiryAnswered" and r.key == inquiry["id"].encode()]

    [event] = await eventually(answered, timeout=30)
    assert event["reply_by_mail"] is False and event["email"] is None and event["user_id"] is None
    # Once the mailer has read past the answer: it wrote nothing, as it had nobody to write to.
    await consumed(system, "mailer", "support.inquiries.v1", lambda m: m.type == "InquiryAnswered")
    async with system.client("mailer") as mailer:
        assert (await mailer.get(f"/v1/subjects/{inquiry['id']}/deliveries", headers=system.admin)).json() == []
    assert not [m for m in system.sink.messages() if inquiry["reference"] in m["Subject"]]
    assert await find_text(system.envs["support"]["DATABASE_URL"], client_ip) == []


async def test_an_erasure_by_address_removes_the_inquiry_and_its_reply_and_is_confirmed(system):
    email, question = f"{unique('gone')}@example.com", f"Please forget me {unique('q-')}"
    async with system.client("support") as support:
        sent = await support.post("/v1/inquiries", json={"topic": "privacy_question", "message": question,
                                                         "email": email})
        assert sent.status_code == 202, sent.text
        inquiry = sent.json()
        reply = await support.post(f"/v1/admin/inquiries/{inquiry['id']}/replies", headers=system.admin,
                                   json={"body": "We will."})
        assert reply.status_code == 201, reply.text
        await eventually(lambda: mails_to(system, email), timeout=30)
        erased = await support.post("/v1/admin/erasures", headers=system.admin, json={"email": email})
        assert erased.status_code == 200 and erased.json() == {"erased": 1}, erased.text
        assert (await support.get(f"/v1/admin/inquiries/{inquiry['id']}", headers=system.admin)).status_code == 404

    async def confirmed():
        records = await read_topic(system.kafka, system.topic("support.inquiries.v1"))
        return [m for m, r in records if m.type == "InquiryErased" and r.key == inquiry["id"].encode()]

    await eventually(confirmed, timeout=30)
    for needle in (email, question, "We will."):
        assert await find_text(system.envs["support"]["DATABASE_URL"], needle) == [], needle
    assert await find_text(system.envs["mailer"]["DATABASE_URL"], email) == []


async def _register(system, locale):
    email = f"{unique('shop')}@example.com"
    async with system.client("identity") as identity:
        created = await identity.post("/v1/users", json={"email": email, "password": "correct horse battery",
                                                         "locale": locale})
        assert created.status_code == 201, created.text
    # The mailer knows the user once it wrote the welcome: an order of a user it does not know is dead-lettered.
    await eventually(lambda: mails_to(system, email), timeout=30)
    return created.json()["id"], email


async def test_an_order_update_reaches_the_user_in_german_with_both_parts(system):
    user, email = await _register(system, "de")
    update = OrderStatusChanged(order_id=unique("A-"), user_id=user, status="shipped", occurred_at=datetime.now(UTC))
    await publish(system.kafka, system.topic("orders.orders.v1"), update)
    [mail] = await eventually(lambda: [m for m in mails_to(system, email) if update.order_id in m["Subject"]],
                              timeout=30)
    assert mail["Subject"] == f"Ihre Bestellung {update.order_id} wurde versandt"
    assert mail.get_content_type() == "multipart/alternative"
    assert "Guten Tag" in mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert '<html lang="de">' in html and f"<strong>{update.order_id}</strong> wurde versandt" in html
    assert "List-Unsubscribe" not in mail  # transactional: no newsletter consent behind it


async def test_bad_order_records_are_dead_lettered_and_the_next_one_still_goes_out(system):
    user, email = await _register(system, "en")
    topic = system.topic("orders.orders.v1")
    stranger = OrderStatusChanged(order_id=unique("X-"), user_id=uuid4(), status="paid", occurred_at=datetime.now(UTC))
    await publish(system.kafka, topic, stranger)
    malformed = OrderStatusChanged(order_id=unique("M-"), user_id=user, status="paid", occurred_at=datetime.now(UTC))
    producer = AIOKafkaProducer(bootstrap_servers=system.kafka)
    await producer.start()
    try:
        broken = {**json.loads(malformed.model_dump_json()), "user_id": "not-a-uuid"}
        await producer.send_and_wait(topic, json.dumps(broken).encode(), key=malformed.order_id.encode(),
                                     headers=encode_headers(meta_for(malformed)))
    finally:
        await producer.stop()
    good = OrderStatusChanged(order_id=unique("G-"), user_id=user, status="delivered", occurred_at=datetime.now(UTC))
    await publish(system.kafka, topic, good)
    [mail] = await eventually(lambda: [m for m in mails_to(system, email) if good.order_id in m["Subject"]],
                              timeout=30)
    assert mail["Subject"] == f"Your order {good.order_id} has been delivered"

    async def dead() -> set[bytes]:
        records = await read_topic(system.kafka, system.topic("mailer.dead-letters.v1"))
        keys = {r.key for _, r in records}
        return keys if {stranger.order_id.encode(), malformed.order_id.encode()} <= keys else set()

    await eventually(dead, timeout=30)
    assert not [m for m in system.sink.messages() if malformed.order_id in m["Subject"]
                or stranger.order_id in m["Subject"]]
