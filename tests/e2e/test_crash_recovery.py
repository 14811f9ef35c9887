"""A service killed between its database commit and its publish loses and duplicates nothing."""

from collections import Counter

from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.topics import read_topic


async def test_identity_killed_after_commit_before_publish(system):
    system.kill("identity")
    # With its relay off, identity commits users and their events but publishes nothing: the
    # state in which a crash between commit and publish leaves it.
    system.start("identity", ASSENT_RELAY_ENABLED="false")
    emails = [f"{unique('crash')}@example.com" for _ in range(3)]
    async with system.client("identity") as identity:
        ids = []
        for email in emails:
            response = await identity.post("/v1/users", json={"email": email, "password": "correct horse battery"})
            assert response.status_code == 201
            ids.append(response.json()["id"])
    records = await read_topic(system.kafka, system.topic("identity.users.v1"))
    assert not [m for m, _ in records if m.subject in ids]
    system.kill("identity")
    system.start("identity")

    async def published():
        records = await read_topic(system.kafka, system.topic("identity.users.v1"))
        return [m for m, _ in records if m.subject in ids]

    metas = await eventually(lambda: _all(published, ids), timeout=30)
    assert Counter((m.subject, m.type) for m in metas) == {
        (i, t): 1 for i in ids for t in ("UserRegisteredV2", "EmailVerificationRequested")}

    for email in emails:
        await system.verify(email)
    async with system.client("consent") as consent:
        for user_id in ids:
            states = await eventually(lambda u=user_id: _consents(consent, system, u))
            assert [(s["purpose"], s["seq"]) for s in states] == [("newsletter", 1)]
    consent_events = await read_topic(system.kafka, system.topic("consent.consents.v1"))
    assert Counter(m.subject for m, _ in consent_events if m.subject in ids) == {i: 1 for i in ids}
    for email in emails:  # one welcome and one verification mail each, none twice
        subjects = sorted(m["Subject"] for m in system.sink.messages() if m["To"] == email)
        assert subjects == ["Confirm your email address", "Welcome to the Assent demo site"], subjects


async def _all(fetch, ids):
    metas = await fetch()
    return metas if len(metas) >= 2 * len(ids) else None


async def _consents(client, system, user_id):
    response = await client.get(f"/v1/subjects/{user_id}/consents", headers=system.admin)
    return response.json() or None
