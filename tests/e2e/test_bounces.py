"""Issue 13's bounces, complaints and bounded attempts end to end: every service a process on real Kafka and
PostgreSQL, the relay's reports signed and posted to the mailer, mail in the SMTP sink."""

import json

from assent_devtools.testing import relay
from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.receiver import ProcessorReceiver
from assent_devtools.testing.topics import read_topic
from tests.e2e.conftest import BOUNCE_SECRET, MAX_DELIVERY_ATTEMPTS


def mails_to(system, email):
    return [m for m in system.sink.messages() if m["To"] == email]


async def deliveries(system, user_id):
    async with system.client("mailer") as mailer:
        return (await mailer.get(f"/v1/subjects/{user_id}/deliveries", headers=system.admin)).json()


async def report(system, body: bytes, content_type: str):
    async with system.client("mailer") as mailer:
        return await mailer.post("/v1/bounces", content=body, headers=relay.signed(BOUNCE_SECRET, body, content_type))


async def published(system, user_id, event_type):
    records = await read_topic(system.kafka, system.topic("mailer.deliveries.v1"))
    return [(m, json.loads(r.value)) for m, r in records if m.subject == user_id and m.type == event_type]


async def newsletter_to(system, email, issue):
    """Queue `issue` (again: it reaches each subscriber once) until it is in `email`'s inbox."""
    async with system.client("mailer") as mailer:
        await mailer.post("/v1/newsletters", headers=system.admin,
                          json={"issue_id": issue, "title": f"News {issue}", "body": "Hello"})
    return [m for m in mails_to(system, email) if issue in m["Subject"]]


async def test_a_complaint_unsubscribes_and_suppresses_the_address(system):
    email = f"{unique('fbl')}@example.com"
    user_id, headers = await system.register(email)  # verified: the signup's newsletter grant is in force
    first = unique("issue-")
    [newsletter] = await eventually(lambda: newsletter_to(system, email, first), timeout=60)

    answered = await report(system, relay.complaint_mail(newsletter["Message-ID"], email), "message/rfc822")
    assert answered.status_code == 202, answered.text
    assert answered.json()["outcome"] == "complained"
    await eventually(lambda: published(system, user_id, "EmailComplained"), timeout=30)

    async with system.client("consent") as consent:
        async def withdrawn():
            state = (await consent.get(f"/v1/subjects/{user_id}/consents", headers=headers)).json()
            return [c for c in state if c["purpose"] == "newsletter" and c["recipient"] == "first_party"
                    and not c["granted"]]

        await eventually(withdrawn, timeout=30)
        history = (await consent.get(f"/v1/subjects/{user_id}/consents/history", headers=headers)).json()
        assert [h["receipt"]["state"] for h in history if h["receipt"]["method"] == "unsubscribe_link"] == ["withdrawn"]
        # Even a new grant brings no newsletter to a suppressed address.
        regrant = await consent.put(f"/v1/subjects/{user_id}/consents/newsletter/first_party",
                                    json={"granted": True}, headers=headers)
        assert regrant.status_code == 200, regrant.text

    later = unique("issue-")

    async def later_issue_settled():
        async with system.client("mailer") as mailer:
            await mailer.post("/v1/newsletters", headers=system.admin,
                              json={"issue_id": later, "title": f"News {later}", "body": "Hello"})
        rows = [d for d in await deliveries(system, user_id) if d["kind"] == "newsletter"]
        return rows[1:] if len(rows) == 2 and rows[1]["status"] != "pending" else None

    [second] = await eventually(later_issue_settled, timeout=60)
    assert second["status"] == "cancelled"
    assert not [m for m in mails_to(system, email) if later in m["Subject"]]


async def test_a_hard_bounce_dsn_suppresses_the_address(system):
    email = f"{unique('dsn')}@example.com"
    user_id, headers = await system.register(email, verify=False)
    [welcome] = await eventually(lambda: [m for m in mails_to(system, email) if "/my-data" in
                                          m.get_body(("plain",)).get_content()], timeout=30)
    bounced = await report(system, relay.bounce_mail(welcome["Message-ID"], email), "message/rfc822")
    assert bounced.status_code == 202 and bounced.json()["outcome"] == "bounced", bounced.text
    [(_, event)] = await eventually(lambda: published(system, user_id, "EmailBounced"), timeout=30)
    assert event["kind"] == "welcome" and email not in json.dumps(event)

    received = len(mails_to(system, email))
    async with system.client("identity") as identity:
        again = await identity.post("/v1/users/me/email-verifications", headers=headers)
        assert again.status_code == 202, again.text

    async def second_link_settled():
        rows = [d for d in await deliveries(system, user_id) if d["kind"] == "verify_email"]
        return rows[1:] if len(rows) == 2 and rows[1]["status"] != "pending" else None

    [second] = await eventually(second_link_settled, timeout=30)
    assert second["status"] == "cancelled"  # transactional mail too: never to a suppressed address
    assert len(mails_to(system, email)) == received


async def test_a_processor_that_always_fails_is_given_up_after_the_bound(system):
    refusing = ProcessorReceiver(secret="refusing-secret-" + unique(), fail_first=10**6)
    try:
        processor_id = unique("refusing-")
        async with system.client("mailer") as mailer:
            added = await mailer.put(f"/v1/processors/{processor_id}", headers=system.admin, json={
                "name": "Refusing Co", "endpoint_url": refusing.url, "purposes": ["surveys"],
                "signing_secret": refusing.secret})
            assert added.status_code == 200, added.text
        async with system.client("consent") as consent:
            async def announced():
                return any(processor_id in p["recipients"] for p in (await consent.get("/v1/purposes")).json())

            await eventually(announced, timeout=30)
            user_id, headers = await system.register(f"{unique('gu')}@example.com")
            granted = await consent.put(f"/v1/subjects/{user_id}/consents/surveys/{processor_id}",
                                        json={"granted": True}, headers=headers)
            assert granted.status_code == 200, granted.text

        [(meta, event)] = await eventually(lambda: published(system, user_id, "DeliveryFailed"), timeout=60)
        assert event["kind"] == "subject.shared" and event["recipient"] == processor_id
        assert event["attempts"] == MAX_DELIVERY_ATTEMPTS and event["reason"] == "HTTP 503"
        [share] = [d for d in await deliveries(system, user_id) if d["kind"] == "subject.shared"]
        assert share["status"] == "failed" and share["attempts"] == MAX_DELIVERY_ATTEMPTS
        assert len(refusing.attempts) == MAX_DELIVERY_ATTEMPTS
        failures = await published(system, user_id, "DeliveryAttemptFailed")
        assert len([e for _, e in failures if e["delivery_id"] == share["delivery_id"]]) == MAX_DELIVERY_ATTEMPTS - 1
    finally:
        refusing.close()
