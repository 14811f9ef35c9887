"""The mailer on real PostgreSQL and Kafka, with a real SMTP sink and a local processor."""

import asyncio
import threading
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import pytest

from assent_mailer.main import create_app
from assent_mailer.settings import MailerSettings
from assent_shared.events import ConsentGranted, ConsentRevoked, PolicyUpdated, UserRegistered
from assent_devtools.testing.apps import base_settings, serve
from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.receiver import ProcessorReceiver
from assent_devtools.testing.topics import publish, read_topic


@pytest.fixture
async def mailer(infra, new_database, sink):
    prefix = unique("mt-") + "."
    settings = MailerSettings(**base_settings(infra, await new_database("mailer"), prefix, smtp_port=sink.port,
                                              retry_base_seconds=0.05, retry_max_seconds=0.2))
    async with serve(create_app(settings)) as client:
        client.prefix = prefix
        client.admin = {"Authorization": f"Bearer {settings.admin_token}"}
        yield client


@pytest.fixture
def processor():
    receiver = ProcessorReceiver(secret="processor-secret-" + unique())
    yield receiver
    receiver.close()


async def queue_issue(mailer, issue):
    """Queue a newsletter issue; how many subscribers it will reach (an issue reaches each once)."""
    response = await mailer.post("/v1/newsletters", headers=mailer.admin,
                                 json={"issue_id": issue, "title": f"News {issue}", "body": "Hello"})
    assert response.status_code == 202, response.text
    return response.json()["queued"]


def mail_to(sink, address):
    return [m for m in sink.messages() if m["To"] == address]


async def register(infra, mailer, user_id, email):
    await publish(infra.kafka_bootstrap, mailer.prefix + "identity.users.v1", UserRegistered(
        user_id=user_id, email=email, registered_at=datetime.now(UTC), policy_version=1, newsletter_opt_in=True))


async def consent(infra, mailer, subject, purpose, recipient, granted, seq):
    kind = ConsentGranted if granted else ConsentRevoked
    return await publish(infra.kafka_bootstrap, mailer.prefix + "consent.consents.v1", kind(
        subject_id=subject, purpose=purpose, recipient=recipient, seq=seq, policy_version=1, source="user",
        occurred_at=datetime.now(UTC)))


async def add_processor(mailer, processor, pid, purposes=("surveys",)):
    response = await mailer.put(f"/v1/processors/{pid}", headers=mailer.admin, json={
        "name": "Survey Co", "endpoint_url": processor.url, "purposes": list(purposes),
        "signing_secret": processor.secret})
    assert response.status_code == 200, response.text


async def test_welcome_mail_needs_no_consent_and_is_recorded(mailer, infra, sink):
    user, email = uuid4(), f"{unique('w')}@example.com"
    await register(infra, mailer, user, email)
    [message] = await eventually(lambda: mail_to(sink, email))
    assert "Welcome" in message["Subject"] and "List-Unsubscribe" not in message

    async def recorded_as_sent():  # the mail can reach the sink just before its record commits
        deliveries = (await mailer.get(f"/v1/subjects/{user}/deliveries", headers=mailer.admin)).json()
        return [(d["kind"], d["status"]) for d in deliveries] == [("welcome", "sent")]

    await eventually(recorded_as_sent)

    async def recorded():
        records = await read_topic(infra.kafka_bootstrap, mailer.prefix + "mailer.deliveries.v1")
        return [m for m, _ in records if m.subject == str(user) and m.type == "EmailSent"]

    assert len(await eventually(recorded)) == 1


async def test_grant_before_registration_shares_once_signed_then_revoke_tells_processor(mailer, infra, processor):
    pid = unique("proc-")
    await add_processor(mailer, processor, pid)
    user, email = uuid4(), f"{unique('s')}@example.com"
    grant = await consent(infra, mailer, user, "surveys", pid, True, 1)
    await register(infra, mailer, user, email)
    [shared] = await eventually(lambda: processor.accepted)
    assert shared["event"] == "subject.shared" and shared["email"] == email and shared["_signature_valid"]
    assert shared["consent_event_id"] == grant.id and shared["subject_id"] == str(user)
    await consent(infra, mailer, user, "surveys", pid, True, 1)  # a replay changes nothing
    revoke = await consent(infra, mailer, user, "surveys", pid, False, 2)
    await eventually(lambda: len(processor.accepted) == 2)
    revoked = processor.accepted[1]
    assert revoked["event"] == "subject.revoked" and "email" not in revoked
    assert revoked["consent_event_id"] == revoke.id
    deliveries = (await mailer.get(f"/v1/subjects/{user}/deliveries", headers=mailer.admin)).json()
    assert sorted(d["kind"] for d in deliveries) == ["subject.revoked", "subject.shared", "welcome"]


async def test_never_granted_or_stale_grant_gets_nothing(mailer, infra, processor):
    pid = unique("proc-")
    await add_processor(mailer, processor, pid)
    never, stale, control = uuid4(), uuid4(), uuid4()
    for user in (never, stale, control):
        await register(infra, mailer, user, f"{unique()}@example.com")
    await consent(infra, mailer, stale, "surveys", pid, False, 2)
    await consent(infra, mailer, stale, "surveys", pid, True, 1)  # arrives late, older than the revoke
    await consent(infra, mailer, control, "surveys", pid, True, 1)
    await eventually(lambda: processor.accepted)
    assert {p["subject_id"] for p in processor.attempts} == {str(control)}


async def test_failing_processor_gets_exactly_one_successful_delivery(mailer, infra):
    flaky = ProcessorReceiver(secret="flaky-secret-" + unique(), fail_first=3)
    try:
        pid = unique("flaky-")
        await add_processor(mailer, flaky, pid)
        user = uuid4()
        await register(infra, mailer, user, f"{unique()}@example.com")
        await consent(infra, mailer, user, "surveys", pid, True, 1)
        await eventually(lambda: flaky.accepted)
        assert len(flaky.attempts) == 4 and len({a["delivery_id"] for a in flaky.attempts}) == 1

        async def sent_share():  # the processor can answer just before the record commits
            rows = (await mailer.get(f"/v1/subjects/{user}/deliveries", headers=mailer.admin)).json()
            return [d for d in rows if d["kind"] == "subject.shared" and d["status"] == "sent"]

        [delivery] = await eventually(sent_share)
        assert delivery["attempts"] == 4

        async def outcomes():
            records = await read_topic(infra.kafka_bootstrap, mailer.prefix + "mailer.deliveries.v1")
            return [m.type for m, r in records if m.subject == str(user) and delivery["delivery_id"].encode() in r.value]

        published = await eventually(lambda: _with(outcomes, "ProcessorDelivered"))
        assert published.count("DeliveryAttemptFailed") == 3 and published.count("ProcessorDelivered") == 1
    finally:
        flaky.close()


async def test_a_revoke_applied_while_its_share_is_being_sent_still_reaches_the_processor(infra, new_database, sink):
    """The chaos suite's lost revoke: the plan must see the share's outcome, not the row as it was
    before the dispatcher (holding it locked) sent it."""
    database = await new_database("mailer")
    prefix = unique("mt-") + "."
    settings = MailerSettings(**base_settings(infra, database, prefix, smtp_port=sink.port,
                                              webhook_timeout_seconds=60.0))
    release = threading.Event()
    held = ProcessorReceiver(secret="held-secret-" + unique(), release=release)
    try:
        async with serve(create_app(settings)) as client:
            client.prefix, client.admin = prefix, {"Authorization": f"Bearer {settings.admin_token}"}
            pid = unique("held-")
            await add_processor(client, held, pid)
            user = uuid4()
            await register(infra, client, user, f"{unique()}@example.com")
            await consent(infra, client, user, "surveys", pid, True, 1)
            await eventually(lambda: held.attempts)  # the share is out, its answer held: the row stays locked
            revoke = await consent(infra, client, user, "surveys", pid, False, 2)
            watcher = await asyncpg.connect(database)
            try:
                async def revoke_waits_for_the_share():
                    return await watcher.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'")

                await eventually(revoke_waits_for_the_share)
            finally:
                await watcher.close()
            release.set()
            told = await eventually(lambda: [p for p in held.accepted if p["event"] == "subject.revoked"])
            assert [p["consent_event_id"] for p in told] == [revoke.id]
    finally:
        release.set()
        held.close()


async def _with(fetch, wanted):
    found = await fetch()
    return found if wanted in found else None


async def test_newsletter_goes_only_to_granted_and_one_click_unsubscribe_stops_it(mailer, infra, sink):
    subscriber, other = uuid4(), uuid4()
    sub_email, other_email = f"{unique('n')}@example.com", f"{unique('o')}@example.com"
    await register(infra, mailer, subscriber, sub_email)
    await register(infra, mailer, other, other_email)
    await consent(infra, mailer, subscriber, "newsletter", "first_party", True, 1)
    await eventually(lambda: mail_to(sink, sub_email) and mail_to(sink, other_email))

    first_issue = unique("issue-")
    # The grant travels on another topic than the registration: send once the mailer holds it.
    await eventually(lambda: queue_issue(mailer, first_issue))
    newsletter = (await eventually(lambda: [m for m in mail_to(sink, sub_email) if "News" in m["Subject"]]))[0]
    assert not [m for m in mail_to(sink, other_email) if "News" in m["Subject"]]
    assert newsletter["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = newsletter["List-Unsubscribe"].strip("<>")
    assert url.startswith("https://")
    token = url.split("token=", 1)[1]
    assert (await mailer.post("/v1/unsubscribe", params={"token": token[:-2] + "xx"})).status_code == 400
    assert (await mailer.post("/v1/unsubscribe", params={"token": token})).status_code == 200

    async def requested():
        records = await read_topic(infra.kafka_bootstrap, mailer.prefix + "mailer.deliveries.v1")
        return [m for m, _ in records if m.subject == str(subscriber) and m.type == "UnsubscribeRequested"]

    await eventually(requested)
    assert await queue_issue(mailer, unique("issue-")) == 0
    deliveries = (await mailer.get(f"/v1/subjects/{subscriber}/deliveries", headers=mailer.admin)).json()
    assert [d["kind"] for d in deliveries].count("newsletter") == 1


async def test_bad_input_is_a_clear_4xx(mailer, processor):
    assert (await mailer.put("/v1/processors/p1", json={})).status_code == 401
    bad = await mailer.put("/v1/processors/p1", headers=mailer.admin,
                           json={"name": "x", "endpoint_url": "not a url", "purposes": [], "signing_secret": "short"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert (await mailer.put("/v1/processors/bad id!", headers=mailer.admin, json={})).status_code in (404, 422)
    assert (await mailer.get(f"/v1/subjects/{uuid4()}/deliveries")).status_code == 401
    assert (await mailer.get("/v1/subjects/not-a-uuid/deliveries", headers=mailer.admin)).status_code == 422
    assert (await mailer.post("/v1/unsubscribe", params={"token": "x" * 40})).status_code == 400


async def test_hard_bounce_suppresses_the_address_for_good(mailer, infra, sink):
    user = uuid4()
    await register(infra, mailer, user, f"{unique('gone')}@bounce.test")
    await consent(infra, mailer, user, "newsletter", "first_party", True, 1)

    async def bounced():
        rows = (await mailer.get(f"/v1/subjects/{user}/deliveries", headers=mailer.admin)).json()
        return [d for d in rows if d["kind"] == "welcome" and d["status"] == "bounced"]

    await eventually(bounced)

    async def published():
        records = await read_topic(infra.kafka_bootstrap, mailer.prefix + "mailer.deliveries.v1")
        return [m for m, _ in records if m.subject == str(user) and m.type == "EmailBounced"]

    await eventually(published)
    issue = unique("issue-")
    await eventually(lambda: queue_issue(mailer, issue))  # once the mailer holds the newsletter grant

    async def settled():
        rows = (await mailer.get(f"/v1/subjects/{user}/deliveries", headers=mailer.admin)).json()
        return [d for d in rows if d["kind"] == "newsletter" and d["status"] != "pending"]

    [newsletter] = await eventually(settled)
    assert newsletter["status"] == "cancelled"

    async def cancellation():
        records = await read_topic(infra.kafka_bootstrap, mailer.prefix + "mailer.deliveries.v1")
        return [m for m, r in records if m.type == "DeliveryCancelled" and newsletter["delivery_id"].encode() in r.value]

    await eventually(cancellation)


async def test_a_material_policy_change_is_told_to_newsletter_subscribers_only(mailer, infra, sink):
    subscriber, other = uuid4(), uuid4()
    sub_email, other_email = f"{unique('ps')}@example.com", f"{unique('po')}@example.com"
    await register(infra, mailer, subscriber, sub_email)
    await register(infra, mailer, other, other_email)
    await consent(infra, mailer, subscriber, "newsletter", "first_party", True, 1)

    async def subscribed():
        rows = (await mailer.get(f"/v1/subjects/{subscriber}/deliveries", headers=mailer.admin)).json()
        return rows and mail_to(sink, other_email)

    await eventually(subscribed)
    # The grant is applied once a throwaway issue reaches a subscriber.
    await eventually(lambda: queue_issue(mailer, unique("probe-")))
    policies = mailer.prefix + "policy.policies.v1"
    now = datetime.now(UTC)
    await publish(infra.kafka_bootstrap, policies, PolicyUpdated(
        policy_id="privacy", version=7, title="Minor wording", summary="Typos fixed.", material=False,
        effective_at=now, published_at=now))
    await publish(infra.kafka_bootstrap, policies, PolicyUpdated(
        policy_id="privacy", version=8, title="Survey partner", summary="We now name our survey provider.",
        material=True, effective_at=now, published_at=now))
    [told] = await eventually(lambda: [m for m in mail_to(sink, sub_email) if "privacy policy" in m["Subject"]])
    assert "Survey partner" in told["Subject"] and "survey provider" in told.get_body(("plain",)).get_content()
    assert told["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert not [m for m in mail_to(sink, sub_email) if "Minor wording" in m["Subject"]]
    assert not [m for m in mail_to(sink, other_email) if "privacy policy" in m["Subject"]]



async def test_a_title_no_mail_header_can_hold_fails_alone_and_later_mail_still_goes_out(mailer, infra, sink):
    subscriber, email = uuid4(), f"{unique('tl')}@example.com"
    await register(infra, mailer, subscriber, email)
    await consent(infra, mailer, subscriber, "newsletter", "first_party", True, 1)
    await eventually(lambda: mail_to(sink, email))
    await eventually(lambda: queue_issue(mailer, unique("probe-")))  # the grant is held
    now = datetime.now(UTC)
    # The policy service refuses such a title at its edge; an event on the topic is not checked there.
    await publish(infra.kafka_bootstrap, mailer.prefix + "policy.policies.v1", PolicyUpdated(
        policy_id="privacy", version=9, title="Line one\nBcc: everyone@example.com", summary="Two lines.",
        material=True, effective_at=now, published_at=now))

    async def failed():
        rows = (await mailer.get(f"/v1/subjects/{subscriber}/deliveries", headers=mailer.admin)).json()
        return [d for d in rows if d["kind"] == "newsletter" and d["status"] == "failed"]

    [bad] = await eventually(failed)

    async def announced():
        records = await read_topic(infra.kafka_bootstrap, mailer.prefix + "mailer.deliveries.v1")
        return [r for m, r in records if m.type == "DeliveryAttemptFailed" and bad["delivery_id"].encode() in r.value]

    [event] = await eventually(announced)
    assert b"cannot be sent: ValueError" in event.value
    later, later_email = uuid4(), f"{unique('tl2')}@example.com"
    await register(infra, mailer, later, later_email)
    [welcome] = await eventually(lambda: mail_to(sink, later_email))
    assert "Welcome" in welcome["Subject"]
    assert not [m for m in sink.messages() if "everyone@example.com" in str(m.get("Bcc", ""))]


async def test_a_newsletter_title_with_a_line_break_is_refused_at_the_edge(mailer):
    for title, body in (("Two\nlines", "Hello"), ("NUL\x00", "Hello"), ("Fine", "bell\x07")):
        response = await mailer.post("/v1/newsletters", headers=mailer.admin,
                                     json={"issue_id": unique("i-"), "title": title, "body": body})
        assert response.status_code == 422, (title, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    fine = await mailer.post("/v1/newsletters", headers=mailer.admin,
                             json={"issue_id": unique("i-"), "title": "Fine", "body": "Two\nlines\tare fine"})
    assert fine.status_code == 202


async def test_readiness_is_red_while_a_crashed_background_task_waits_to_restart(infra, new_database, sink):
    settings = MailerSettings(**base_settings(infra, await new_database("mailer"), unique("mt-") + ".",
                                              smtp_port=sink.port, task_restart_min_seconds=1.0))
    app = create_app(settings)
    async with serve(app) as client:
        assert (await client.get("/health/ready")).status_code == 200
        crashes = []

        async def crashes_once() -> None:
            crashes.append(1)
            if len(crashes) == 1:
                raise RuntimeError("a bug")
            await asyncio.Event().wait()

        app.state.runtime.spawn(crashes_once, "probe")
        async def not_ready():
            response = await client.get("/health/ready")
            return response if response.status_code == 503 else None

        down = await eventually(not_ready, interval=0.01)
        assert down.json()["checks"]["background_tasks"] is False and down.json()["tasks_down"] == ["probe"]
        metrics = (await client.get("/metrics")).text
        assert 'background_task_crashes_total{task="probe"} 1.0' in metrics
        assert 'background_task_up{task="dispatcher"} 1.0' in metrics
        back = await eventually(lambda: _ready(client))
        assert back and len(crashes) == 2


async def _ready(client) -> bool:
    return (await client.get("/health/ready")).status_code == 200


async def test_deliveries_come_a_page_at_a_time(mailer, infra, sink):
    user, email = uuid4(), f"{unique('pg')}@example.com"
    await register(infra, mailer, user, email)
    await consent(infra, mailer, user, "newsletter", "first_party", True, 1)
    await eventually(lambda: mail_to(sink, email))
    await eventually(lambda: queue_issue(mailer, unique("page-")))
    path = f"/v1/subjects/{user}/deliveries"

    async def both():
        rows = (await mailer.get(path, headers=mailer.admin)).json()
        return rows if len(rows) == 2 else None

    # A page is a set of deliveries; their status may move on (pending -> sent) between the calls.
    everything = [row["delivery_id"] for row in await eventually(both)]
    first = await mailer.get(path, headers=mailer.admin, params={"limit": 1})
    assert [r["delivery_id"] for r in first.json()] == everything[:1] and 'rel="next"' in first.headers["link"]
    second = await mailer.get(path, headers=mailer.admin, params={"limit": 1, "cursor": first.headers["x-next-cursor"]})
    assert [r["delivery_id"] for r in second.json()] == everything[1:] and "x-next-cursor" not in second.headers
    forged = await mailer.get(path, headers=mailer.admin, params={"cursor": "WyJub3QgYSBkYXRlIiwgIngiXQ"})
    assert forged.status_code == 422 and forged.json()["title"] == "Invalid cursor"


async def test_a_processors_deliveries_come_newest_first_a_page_at_a_time(mailer, infra, processor):
    pid, other = unique("proc-"), unique("proc-")
    await add_processor(mailer, processor, pid)
    await add_processor(mailer, processor, other)
    first, second, elsewhere = uuid4(), uuid4(), uuid4()
    for user in (first, second, elsewhere):
        await register(infra, mailer, user, f"{unique()}@example.com")
    await consent(infra, mailer, first, "surveys", pid, True, 1)
    await eventually(lambda: len(processor.accepted) == 1)
    await consent(infra, mailer, second, "surveys", pid, True, 1)
    await consent(infra, mailer, elsewhere, "surveys", other, True, 1)
    await eventually(lambda: len(processor.accepted) == 3)
    path = f"/v1/admin/processors/{pid}/deliveries"

    async def both():
        rows = (await mailer.get(path, headers=mailer.admin)).json()
        return rows if len(rows) == 2 else None

    everything = await eventually(both)
    assert {r["recipient"] for r in everything} == {pid} and {r["kind"] for r in everything} == {"subject.shared"}
    assert everything[0]["created_at"] >= everything[1]["created_at"], "newest first"
    page = await mailer.get(path, headers=mailer.admin, params={"limit": 1})
    assert [r["delivery_id"] for r in page.json()] == [everything[0]["delivery_id"]]
    rest = await mailer.get(path, headers=mailer.admin, params={"limit": 1, "cursor": page.headers["x-next-cursor"]})
    assert [r["delivery_id"] for r in rest.json()] == [everything[1]["delivery_id"]]
    assert "x-next-cursor" not in rest.headers
    assert (await mailer.get(path)).status_code == 401

    listed = await mailer.get("/v1/admin/processors", headers=mailer.admin, params={"limit": 500})
    mine = [p for p in listed.json() if p["processor_id"] in (pid, other)]
    assert [p["processor_id"] for p in mine] == sorted([pid, other])
    assert mine[0]["endpoint_url"] == processor.url and "signing_secret" not in mine[0]
    one = await mailer.get("/v1/admin/processors", headers=mailer.admin, params={"limit": 1})
    assert len(one.json()) == 1 and one.headers["x-next-cursor"]


async def test_webhooks_must_use_https_where_plain_http_is_not_allowed(infra, new_database, sink):
    settings = MailerSettings(**base_settings(infra, await new_database("mailer"), unique("mt-") + ".",
                                              smtp_port=sink.port, http_webhooks=False))
    body = {"name": "Survey Co", "purposes": ["surveys"], "signing_secret": "s" * 20}
    async with serve(create_app(settings)) as client:
        admin = {"Authorization": f"Bearer {settings.admin_token}"}
        plain = await client.put("/v1/processors/p-http", headers=admin,
                                 json={**body, "endpoint_url": "http://survey.example/hook"})
        assert plain.status_code == 422 and plain.json()["title"] == "Webhook must use https"
        tls = await client.put("/v1/processors/p-https", headers=admin,
                               json={**body, "endpoint_url": "https://survey.example/hook"})
        assert tls.status_code == 200, tls.text


def test_production_never_allows_plain_http_webhooks():
    production = {"environment": "production", "admin_token": "a" * 40,
                  "database_url": "postgresql://x:y@db.internal/mailer", "signing_secret": "u" * 32,
                  "suppression_keys": {"k1": "s" * 32}, "suppression_key_id": "k1",
                  "mail_token_secret": "t" * 32, "site_url": "https://site.example", "bounce_secret": "b" * 32}
    assert MailerSettings(**production).http_webhooks is False
    with pytest.raises(ValueError, match="ASSENT_HTTP_WEBHOOKS"):
        MailerSettings(**production, http_webhooks=True)
