"""The relay's bounce and complaint reports (POST /v1/bounces) on real PostgreSQL, Kafka and SMTP."""

import time
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from assent_mailer.main import create_app
from assent_mailer.settings import MailerSettings
from assent_shared.events import ConsentGranted, OrderStatusChanged, UserRegistered
from assent_devtools.testing import relay
from assent_devtools.testing.apps import base_settings, serve
from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.topics import publish, read_topic

SECRET = "test-bounce-secret-" + "b" * 16


@pytest.fixture
async def mailer(infra, new_database, sink):
    prefix = unique("bo-") + "."
    settings = MailerSettings(**base_settings(infra, await new_database("mailer"), prefix, smtp_port=sink.port,
                                              bounce_secret=SECRET))
    async with serve(create_app(settings)) as client:
        client.prefix = prefix
        client.admin = {"Authorization": f"Bearer {settings.admin_token}"}
        yield client


async def subscriber(infra, mailer, sink, email):
    """A registered user with the newsletter granted, once the welcome mail has gone out: its Message-ID."""
    user = uuid4()
    await publish(infra.kafka_bootstrap, mailer.prefix + "identity.users.v1", UserRegistered(
        user_id=user, email=email, registered_at=datetime.now(UTC), policy_version=1, newsletter_opt_in=True))
    await publish(infra.kafka_bootstrap, mailer.prefix + "consent.consents.v1", ConsentGranted(
        subject_id=user, purpose="newsletter", recipient="first_party", seq=1, policy_version=1, source="user",
        occurred_at=datetime.now(UTC)))
    [welcome] = await eventually(lambda: [m for m in sink.messages() if m["To"] == email])
    return user, welcome["Message-ID"]


async def report(mailer, body: bytes, content_type: str, secret: str = SECRET, at: float | None = None):
    return await mailer.post("/v1/bounces", content=body, headers=relay.signed(secret, body, content_type, at))


async def issue(mailer, issue_id=None):
    """Queue an issue of the newsletter; how many it reached (again: how many more)."""
    queued = await mailer.post("/v1/newsletters", headers=mailer.admin,
                               json={"issue_id": issue_id or unique("i-"), "title": "News", "body": "Hello"})
    assert queued.status_code == 202, queued.text
    return queued.json()["queued"]


async def events_of(infra, mailer, user, event_type):
    records = await read_topic(infra.kafka_bootstrap, mailer.prefix + "mailer.deliveries.v1")
    return [m for m, _ in records if m.subject == str(user) and m.type == event_type]


async def deliveries(mailer, user):
    return (await mailer.get(f"/v1/subjects/{user}/deliveries", headers=mailer.admin)).json()


async def test_a_complaint_unsubscribes_and_suppresses_the_address(mailer, infra, sink):
    email = f"{unique('c')}@example.com"
    user, message_id = await subscriber(infra, mailer, sink, email)
    await eventually(lambda: issue(mailer))  # once the grant is applied: one issue reaches them
    complaint = relay.notification("complaint", message_id, email)
    answered = await report(mailer, complaint, "application/json")
    assert answered.status_code == 202, answered.text
    assert answered.json()["outcome"] == "complained"
    assert await eventually(lambda: events_of(infra, mailer, user, "UnsubscribeRequested"))
    [complained] = await eventually(lambda: events_of(infra, mailer, user, "EmailComplained"))
    assert complained.subject == str(user)

    assert await issue(mailer) == 0  # unsubscribed at once
    order = OrderStatusChanged(order_id=unique("O-"), user_id=user, status="paid", occurred_at=datetime.now(UTC))
    await publish(infra.kafka_bootstrap, mailer.prefix + "orders.orders.v1", order)

    async def order_settled():
        return [d for d in await deliveries(mailer, user) if d["kind"] == "order_update" and d["status"] != "pending"]

    [order_mail] = await eventually(order_settled)
    assert order_mail["status"] == "cancelled"  # suppressed: not even transactional mail goes there
    assert not [m for m in sink.messages() if m["To"] == email and order.order_id in m["Subject"]]

    again = await report(mailer, complaint, "application/json")  # the relay repeats itself
    assert again.status_code == 202 and again.json()["outcome"] == "unchanged"
    assert len(await events_of(infra, mailer, user, "EmailComplained")) == 1


async def test_a_hard_bounce_dsn_suppresses_and_a_soft_one_changes_nothing(mailer, infra, sink):
    soft_email, hard_email = f"{unique('s')}@example.com", f"{unique('h')}@example.com"
    soft_user, soft_id = await subscriber(infra, mailer, sink, soft_email)
    hard_user, hard_id = await subscriber(infra, mailer, sink, hard_email)
    delayed = await report(mailer, relay.bounce_mail(soft_id, soft_email, "4.2.2", "delayed"), "message/rfc822")
    assert delayed.status_code == 202 and delayed.json()["outcome"] == "unchanged", delayed.text
    bounced = await report(mailer, relay.bounce_mail(hard_id, hard_email), "message/rfc822")
    assert bounced.status_code == 202 and bounced.json()["outcome"] == "bounced", bounced.text
    assert await eventually(lambda: events_of(infra, mailer, hard_user, "EmailBounced"))
    assert [d["status"] for d in await deliveries(mailer, hard_user) if d["kind"] == "welcome"] == ["bounced"]

    news = unique("i-")

    async def newsletters_settled():  # the same issue again until both grants are applied: once each
        await issue(mailer, news)
        rows = [d for u in (soft_user, hard_user) for d in await deliveries(mailer, u) if d["kind"] == "newsletter"]
        return rows if len(rows) == 2 and all(d["status"] != "pending" for d in rows) else None

    await eventually(newsletters_settled)
    assert [d["status"] for d in await deliveries(mailer, hard_user) if d["kind"] == "newsletter"] == ["cancelled"]
    assert [d["status"] for d in await deliveries(mailer, soft_user) if d["kind"] == "newsletter"] == ["sent"]
    assert not await events_of(infra, mailer, soft_user, "EmailBounced")


async def test_bad_reports_get_a_clear_4xx(mailer, infra, sink):
    email = f"{unique('x')}@example.com"
    user, message_id = await subscriber(infra, mailer, sink, email)
    body = relay.notification("complaint", message_id, email)
    unsigned = await mailer.post("/v1/bounces", content=body, headers={"content-type": "application/json"})
    assert unsigned.status_code == 401 and unsigned.headers["content-type"] == "application/problem+json"
    assert (await report(mailer, body, "application/json", secret="not-the-relay-secret")).status_code == 401
    assert (await report(mailer, body, "application/json", at=time.time() - 301)).status_code == 401
    assert (await report(mailer, relay.notification("bounce", f"<delivery-{uuid4()}@assent.example>"),
                         "application/json")).status_code == 404
    assert (await report(mailer, relay.notification("bounce", "<abc@elsewhere.example>"),
                         "application/json")).status_code == 404
    assert (await report(mailer, b"{not json", "application/json")).status_code == 422
    assert (await report(mailer, b"Subject: hi\r\n\r\nno report", "message/rfc822")).status_code == 422
    assert (await report(mailer, b"bounce", "text/plain")).status_code == 415
    assert not await events_of(infra, mailer, user, "EmailComplained")


def test_production_needs_its_own_bounce_secret():
    production = {"environment": "production", "admin_token": "a" * 40,
                  "database_url": "postgresql://x:y@db.internal/mailer", "signing_secret": "u" * 32,
                  "suppression_keys": {"k1": "s" * 32}, "suppression_key_id": "k1",
                  "mail_token_secret": "t" * 32, "site_url": "https://site.example"}
    with pytest.raises(ValueError, match="ASSENT_BOUNCE_SECRET"):
        MailerSettings(**production)
    with pytest.raises(ValueError, match="ASSENT_BOUNCE_SECRET"):
        MailerSettings(**production, bounce_secret="u" * 32)
    assert MailerSettings(**production, bounce_secret="r" * 32).bounce_secret == "r" * 32
