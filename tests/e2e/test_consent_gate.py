"""Issue 5 on the running system: nothing reaches a third party before a matching consent event."""

import pytest

from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.receiver import ProcessorReceiver
from tests.e2e.conftest import consumed


@pytest.fixture
def processor():
    receiver = ProcessorReceiver(secret="processor-secret-" + unique())
    yield receiver
    receiver.close()


async def register_processor(system, receiver, purposes=("surveys",)) -> str:
    processor_id = unique("proc-")
    async with system.client("mailer") as mailer, system.client("consent") as consent:
        response = await mailer.put(f"/v1/processors/{processor_id}", headers=system.admin, json={
            "name": "Survey Co", "endpoint_url": receiver.url, "purposes": list(purposes),
            "signing_secret": receiver.secret})
        assert response.status_code == 200, response.text

        async def announced():
            listed = (await consent.get("/v1/purposes")).json()
            return any(processor_id in p["recipients"] for p in listed)

        await eventually(announced)
    return processor_id


async def set_consent(system, user_id, headers, purpose, recipient, granted):
    async with system.client("consent") as consent:
        response = await consent.put(f"/v1/subjects/{user_id}/consents/{purpose}/{recipient}",
                                     json={"granted": granted}, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()


async def deliveries(system, user_id):
    async with system.client("mailer") as mailer:
        return (await mailer.get(f"/v1/subjects/{user_id}/deliveries", headers=system.admin)).json()


async def test_grant_shares_signed_revoke_tells_and_the_ungranted_get_nothing(system, processor):
    processor_id = await register_processor(system, processor)
    granter, headers = await system.register(f"{unique('g')}@example.com")
    bystander, _ = await system.register(f"{unique('b')}@example.com")
    grant = await set_consent(system, granter, headers, "surveys", processor_id, True)

    [shared] = await eventually(lambda: processor.accepted)
    assert shared["event"] == "subject.shared" and shared["_signature_valid"]
    assert shared["subject_id"] == granter and shared["consent_event_id"] == grant["event_id"]
    revoke = await set_consent(system, granter, headers, "surveys", processor_id, False)
    await eventually(lambda: len(processor.accepted) == 2)
    assert processor.accepted[1]["event"] == "subject.revoked"
    assert processor.accepted[1]["consent_event_id"] == revoke["event_id"]
    # The bystander's own records are the markers: once the mailer has read past them, a share would be out.
    await consumed(system, "mailer", "identity.users.v1", lambda m: m.subject == bystander and m.type == "EmailVerified")
    await consumed(system, "mailer", "consent.consents.v1", lambda m: m.subject == bystander)
    assert {a["subject_id"] for a in processor.attempts} == {granter}
    assert not [d for d in await deliveries(system, bystander) if d["recipient"] == processor_id]

    async def both_recorded():  # a processor can answer just before the mailer's record commits
        recorded = [d for d in await deliveries(system, granter) if d["recipient"] == processor_id]
        return {(d["kind"], d["status"]) for d in recorded} == {("subject.shared", "sent"), ("subject.revoked", "sent")}

    await eventually(both_recorded)


async def test_processor_failing_three_times_gets_exactly_one_delivery(system):
    flaky = ProcessorReceiver(secret="flaky-secret-" + unique(), fail_first=3)
    try:
        processor_id = await register_processor(system, flaky)
        user_id, headers = await system.register(f"{unique('f')}@example.com")
        await set_consent(system, user_id, headers, "surveys", processor_id, True)
        await eventually(lambda: flaky.accepted, timeout=20)
        assert len(flaky.attempts) == 4 and len(flaky.unique_deliveries("subject.shared")) == 1
    finally:
        flaky.close()


async def test_mailer_killed_mid_delivery_loses_and_duplicates_nothing(system):
    slow = ProcessorReceiver(secret="slow-secret-" + unique(), hold_first=4.0)
    try:
        processor_id = await register_processor(system, slow)
        user_id, headers = await system.register(f"{unique('k')}@example.com")
        await set_consent(system, user_id, headers, "surveys", processor_id, True)
        await eventually(lambda: slow.attempts)
        system.kill("mailer")  # the processor has the data; the mailer never heard back
        system.start("mailer")
        await eventually(lambda: len(slow.attempts) >= 2, timeout=30)
        assert len(slow.unique_deliveries("subject.shared")) == 1

        async def one_share_sent():
            shares = [d for d in await deliveries(system, user_id) if d["kind"] == "subject.shared"]
            return [(s["status"], str(s["delivery_id"])) for s in shares] == [("sent", slow.attempts[0]["delivery_id"])]

        await eventually(one_share_sent)
    finally:
        slow.close()


async def test_one_click_unsubscribe_without_login_revokes_and_stops_the_newsletter(system):
    email = f"{unique('n')}@example.com"
    user_id, headers = await system.register(email)

    async def granted_in_mailer():
        return any(d["kind"] == "welcome" for d in await deliveries(system, user_id))

    await eventually(granted_in_mailer)
    newsletter = await system.newsletter_reaching(email)
    async with system.client("mailer") as mailer:
        assert newsletter["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        link = newsletter["List-Unsubscribe"].strip("<>").replace("https://", "http://")
        assert (await mailer.post(link)).status_code == 200

    async with system.client("consent") as consent:
        async def revoked():
            history = (await consent.get(f"/v1/subjects/{user_id}/consents/history", headers=headers)).json()
            return [h for h in history if h["receipt"]["method"] == "unsubscribe_link"]

        [receipt] = await eventually(revoked)
        assert receipt["receipt"]["state"] == "withdrawn" and receipt["receipt"]["purpose"] == "newsletter"
    async with system.client("mailer") as mailer:
        later = unique("issue-")
        response = await mailer.post("/v1/newsletters", headers=system.admin,
                                     json={"issue_id": later, "title": f"News {later}", "body": "Again"})
        assert response.status_code == 202
    assert not [d for d in await deliveries(system, user_id) if d["kind"] == "newsletter" and d["status"] != "sent"]
    assert len([d for d in await deliveries(system, user_id) if d["kind"] == "newsletter"]) == 1
