"""The account: its data, changes to it, admin actions, export and erasure."""

from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from assent_shared.events import ERASURE_CONFIRMERS, ERASURE_TOPICS, ErasureConfirmed

from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.topics import publish, read_topic


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


async def test_email_and_password_changes(identity, signup, infra):
    created, email, session = await signup()
    headers = bearer(session["access_token"])
    new_email = f"{unique('new')}@Example.com"
    wrong = await identity.put("/v1/users/me/email", json={"email": new_email, "password": "not mine at all"},
                               headers=headers)
    assert wrong.status_code == 403
    changed = await identity.put("/v1/users/me/email", json={"email": new_email, "password": "a fine long secret"},
                                 headers=headers)
    assert changed.status_code == 200 and changed.json()["email"] == new_email.lower()

    async def announced():
        records = await read_topic(infra.kafka_bootstrap, identity.prefix + "identity.users.v1")
        return [r for m, r in records if m.subject == created["id"] and m.type == "UserEmailChangedV2"]

    [record] = await eventually(announced)
    assert new_email.lower().encode() not in record.value.lower()  # sealed: test_registration opens one
    weak = await identity.put("/v1/users/me/password", headers=headers,
                              json={"current_password": "a fine long secret", "new_password": "short"})
    assert weak.status_code == 422
    ok = await identity.put("/v1/users/me/password", headers=headers,
                            json={"current_password": "a fine long secret", "new_password": "an even finer secret"})
    assert ok.status_code == 204
    assert (await identity.post("/v1/sessions", json={"email": new_email, "password": "a fine long secret"})
            ).status_code == 401
    assert (await identity.post("/v1/sessions", json={"email": new_email, "password": "an even finer secret"})
            ).status_code == 200


async def test_admin_looks_up_and_disables(identity, signup):
    created, email, session = await signup()
    found = await identity.get("/v1/admin/users", params={"email": email}, headers=identity.admin)
    assert found.status_code == 200 and found.json()["id"] == created["id"]
    assert (await identity.get("/v1/admin/users", params={"email": email})).status_code == 401
    assert (await identity.post(f"/v1/admin/users/{created['id']}/disable", headers=identity.admin)).status_code == 204
    assert (await identity.get("/v1/users/me", headers=bearer(session["access_token"]))).status_code == 401
    assert (await identity.post("/v1/sessions", json={"email": email, "password": "a fine long secret"})
            ).status_code == 401


async def test_export_holds_identity_data_and_names_what_it_could_not_reach(identity, signup):
    created, email, session = await signup()
    export = await identity.get("/v1/users/me/export", headers=bearer(session["access_token"]))
    assert export.status_code == 200
    body = export.json()
    assert body["identity"]["email"] == email and body["identity"]["id"] == created["id"]
    assert sorted(body["incomplete"]) == ["consents", "deliveries", "inquiries", "policy_acceptances"]


async def test_erasure_deletes_the_account_and_publishes_user_erased(identity, signup, infra):
    created, email, session = await signup()
    erased = await identity.delete("/v1/users/me", headers=bearer(session["access_token"]))
    assert erased.status_code == 202
    status = (await identity.get(erased.json()["status_url"])).json()
    assert status["complete"] is False and list(status["confirmed"]) == ["identity"]
    assert status["waiting_for"][:4] == ["consent", "mailer", "policy", "support"]

    async def published():
        records = await read_topic(infra.kafka_bootstrap, identity.prefix + "identity.users.v1")
        return [m for m, _ in records if m.subject == created["id"] and m.type == "UserErased"]

    await eventually(published)
    conn = await asyncpg.connect(identity.database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM users WHERE id = $1", created["id"]) == 0
        assert await conn.fetchval("SELECT count(*) FROM sessions WHERE user_id = $1", created["id"]) == 0
    finally:
        await conn.close()
    assert (await identity.post("/v1/sessions", json={"email": email, "password": "a fine long secret"})
            ).status_code == 401
    again = await identity.post("/v1/users", json={"email": email, "password": "a fine long secret"})
    assert again.status_code == 201 and again.json()["id"] != created["id"]


async def test_an_erasure_is_complete_only_once_every_store_confirmed_and_key_caches_expired(identity, signup, infra):
    created, _, session = await signup()
    erased = await identity.delete("/v1/users/me", headers=bearer(session["access_token"]))
    user_id = UUID(created["id"])

    async def status():
        return (await identity.get(erased.json()["status_url"])).json()

    for service in ERASURE_TOPICS:
        assert (await status())["complete"] is False
        await publish(infra.kafka_bootstrap, identity.prefix + ERASURE_TOPICS[service].name,
                      ErasureConfirmed(user_id=user_id, service=service, confirmed_at=datetime.now(UTC)))
        await eventually(lambda: _confirmed(status, service))
    done = await eventually(lambda: _complete(status))
    assert set(done["confirmed"]) == set(ERASURE_CONFIRMERS) and done["waiting_for"] == []


async def _confirmed(status, service):
    return service in (await status())["confirmed"]


async def _complete(status):
    body = await status()
    return body if body["complete"] else None


async def test_the_admin_lists_erasures_newest_first_with_their_confirmations(identity, signup, infra):
    users = []
    for _ in range(3):
        created, _, session = await signup()
        assert (await identity.delete("/v1/users/me", headers=bearer(session["access_token"]))).status_code == 202
        users.append(created["id"])
    await publish(infra.kafka_bootstrap, identity.prefix + ERASURE_TOPICS["consent"].name,
                  ErasureConfirmed(user_id=UUID(users[0]), service="consent", confirmed_at=datetime.now(UTC)))

    async def consent_confirmed():
        listed = (await identity.get("/v1/admin/erasures", headers=identity.admin)).json()
        oldest = [e for e in listed if e["user_id"] == users[0]]
        return listed if oldest and "consent" in oldest[0]["confirmed"] else None

    listed = await eventually(consent_confirmed)
    assert [e["user_id"] for e in listed] == users[::-1], "newest first"
    assert sorted(listed[-1]["confirmed"]) == ["consent", "identity"] and listed[-1]["complete"] is False
    assert "consent" in listed[0]["waiting_for"] and list(listed[0]["confirmed"]) == ["identity"]
    first = await identity.get("/v1/admin/erasures", headers=identity.admin, params={"limit": 2})
    assert [e["user_id"] for e in first.json()] == users[:0:-1]
    rest = await identity.get("/v1/admin/erasures", headers=identity.admin,
                              params={"limit": 2, "cursor": first.headers["x-next-cursor"]})
    assert [e["user_id"] for e in rest.json()] == users[:1] and "x-next-cursor" not in rest.headers
    assert (await identity.get("/v1/admin/erasures")).status_code == 401
