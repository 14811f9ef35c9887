"""Issue 4: a user sees all that is held about them, and erasure removes it everywhere for good."""

from assent_shared.events import ERASURE_CONFIRMERS, UserRegisteredV2
from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.receiver import ProcessorReceiver
from assent_devtools.testing.topics import publish, read_topic
from tests.e2e.conftest import acceptances, consumed, find_text


async def test_export_then_erase_leaves_nothing_personal_and_a_replay_does_not_restore(system):
    processor = ProcessorReceiver(secret="erasure-secret-" + unique())
    try:
        await _run(system, processor)
    finally:
        processor.close()


async def _run(system, processor):
    email = f"{unique('erase')}@example.com"
    user_id, headers = await system.register(email)
    processor_id = unique("proc-")
    async with system.client("mailer") as mailer, system.client("consent") as consent:
        assert (await mailer.put(f"/v1/processors/{processor_id}", headers=system.admin, json={
            "name": "Survey Co", "endpoint_url": processor.url, "purposes": ["surveys"],
            "signing_secret": processor.secret})).status_code == 200

        async def can_grant():
            response = await consent.put(f"/v1/subjects/{user_id}/consents/surveys/{processor_id}",
                                         json={"granted": True}, headers=headers)
            return response.status_code == 200

        await eventually(can_grant)
    await eventually(lambda: processor.accepted)
    async with system.client("policy") as policy:
        await eventually(lambda: acceptances(policy, user_id, headers))
    question = unique("what-do-you-hold-")
    async with system.client("support") as support:
        sent = await support.post("/v1/inquiries", headers=headers,
                                  json={"topic": "privacy_question", "message": question, "want_reply": True})
        assert sent.status_code == 202, sent.text
        inquiry_id = sent.json()["id"]

    async with system.client("identity") as identity:
        async def complete_export():
            body = (await identity.get("/v1/users/me/export", headers=headers)).json()
            return body if not body["incomplete"] and body["deliveries"] and len(body["consents"]) >= 2 else None

        export = await eventually(complete_export)
        assert export["identity"]["email"] == email
        assert {c["receipt"]["purpose"] for c in export["consents"]} == {"newsletter", "surveys"}
        assert {d["kind"] for d in export["deliveries"]} >= {"welcome", "subject.shared"}
        assert [a["how"] for a in export["policy_acceptances"]] == ["signup"]
        assert [i["messages"][0]["body"] for i in export["inquiries"]] == [question]

        erased = await identity.delete("/v1/users/me", headers=headers)
        assert erased.status_code == 202

        async def erased_everywhere():
            status = (await identity.get(erased.json()["status_url"])).json()
            return status if status["complete"] else None

        status = await eventually(erased_everywhere, timeout=30)
        assert set(status["confirmed"]) == set(ERASURE_CONFIRMERS) >= {"identity", "consent", "mailer", "policy", "support"}
        assert (await identity.get(f"/v1/admin/users/{user_id}", headers=system.admin)).status_code == 404

    # The processor that had the data was told to delete it.
    await eventually(lambda: any(p["event"] == "subject.revoked" for p in processor.accepted))
    await _nothing_personal_left(system, user_id, email)
    async with system.client("support") as support:
        assert (await support.get(f"/v1/admin/inquiries/{inquiry_id}", headers=system.admin)).status_code == 404
    assert await find_text(system.envs["support"]["DATABASE_URL"], question) == []

    # A replayed registration, the same event or a copy with a new id, brings nothing back.
    records = await read_topic(system.kafka, system.topic("identity.users.v1"))
    [(meta, record)] = [(m, r) for m, r in records if m.subject == user_id and m.type == "UserRegisteredV2"]
    replay = UserRegisteredV2.model_validate_json(record.value)
    await publish(system.kafka, system.topic("identity.users.v1"), replay, meta=meta)
    marker = await publish(system.kafka, system.topic("identity.users.v1"), replay)
    # The copy is keyed by the same user, so it follows the replay on its partition: once every reader of
    # the topic has committed past it, both replays were applied (or refused) there.
    for service in ("consent", "mailer", "policy", "support"):  # every reader of identity.users.v1
        await consumed(system, service, "identity.users.v1", lambda m: m.id == marker.id)
    await _nothing_personal_left(system, user_id, email)


async def _nothing_personal_left(system, user_id, email):
    async with system.client("consent") as consent, system.client("policy") as policy, \
            system.client("mailer") as mailer:
        assert await _consents(consent, user_id, system.admin) == []
        history = await consent.get(f"/v1/subjects/{user_id}/consents/history", headers=system.admin)
        assert history.json() == []
        assert await acceptances(policy, user_id, system.admin) == []
        deliveries = await mailer.get(f"/v1/subjects/{user_id}/deliveries", headers=system.admin)
        assert email not in deliveries.text
    for name, env in system.envs.items():
        if "DATABASE_URL" not in env:  # the Site keeps no database
            continue
        assert await find_text(env["DATABASE_URL"], email) == [], name
        if name != "identity":  # identity keeps the id of an erased account as its tombstone
            assert not [c for c in await find_text(env["DATABASE_URL"], user_id)
                        if not c.startswith(("inbox.", "outbox.", "deliveries.", "erased_users.", "subjects."))], name
    assert not [m for m in system.sink.messages() if m["To"] == email
                and m["Subject"] not in ("Welcome to the Assent demo site", "Confirm your email address")]


async def _consents(client, user_id, headers):
    response = await client.get(f"/v1/subjects/{user_id}/consents", headers=headers)
    return response.json()

