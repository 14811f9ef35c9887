"""Issue 3's first flow on the running system: register -> welcome mail -> verify the address -> newsletter grant."""

import json

from assent_devtools.devstack import services
from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.topics import read_topic
from tests.e2e.conftest import applied, consumed


async def test_registration_grants_newsletter_once_the_address_is_verified(system):
    email = f"{unique('ada')}@example.com"
    async with system.client("identity") as identity, system.client("consent") as consent:
        created = await identity.post("/v1/users", json={"email": email, "password": "correct horse battery"})
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]

        [welcome] = await eventually(lambda: [m for m in system.sink.messages()
                                              if m["To"] == email and "Welcome" in m["Subject"]])
        assert "/my-data" in welcome.get_body(("plain",)).get_content()
        token = await system.mailed_token(email, "verify")

        login = await identity.post("/v1/sessions", json={"email": email, "password": "correct horse battery"})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert (await identity.get("/v1/users/me", headers=headers)).json()["email_verified"] is False
        # Until the address is proven, the signup's opt-in grants nothing: anyone can type a stranger's address.
        await consumed(system, "consent", "identity.users.v1",
                       lambda m: m.subject == user_id and m.type == "UserRegisteredV2")
        assert (await consent.get(f"/v1/subjects/{user_id}/consents", headers=headers)).json() == []

        assert (await identity.post("/v1/email-verifications/confirm", json={"token": token})).status_code == 204
        assert (await identity.get("/v1/users/me", headers=headers)).json()["email_verified"] is True

        async def newsletter_granted():
            response = await consent.get(f"/v1/subjects/{user_id}/consents", headers=headers)
            assert response.status_code == 200, response.text
            return [c for c in response.json() if (c["purpose"], c["recipient"], c["granted"]) ==
                    ("newsletter", "first_party", True)]

        [grant] = await eventually(newsletter_granted)
        assert grant["seq"] == 1
        [receipt] = (await consent.get(f"/v1/subjects/{user_id}/consents/history", headers=headers)).json()
        assert receipt["receipt"]["method"] == "signup" and receipt["receipt"]["evidence"].startswith("EmailVerified:")
        records = await read_topic(system.kafka, system.topic("identity.users.v1"))
        [verified] = [m for m, _ in records if m.subject == user_id and m.type == "EmailVerified"]
        assert receipt["receipt"]["evidence"] == f"EmailVerified:{verified.id}"


async def test_opting_out_at_signup_sends_welcome_but_grants_nothing(system):
    email = f"{unique('bo')}@example.com"
    async with system.client("identity") as identity, system.client("consent") as consent:
        created = await identity.post("/v1/users", json={"email": email, "password": "correct horse battery",
                                                         "newsletter_opt_in": False})
        user_id = created.json()["id"]
        await eventually(lambda: [m for m in system.sink.messages() if m["To"] == email and "Welcome" in m["Subject"]])
        await system.verify(email)
        [(meta, verified)] = await eventually(lambda: _verified(system, user_id))
        assert verified["newsletter_opt_in"] is False
        await eventually(lambda: applied(system, "consent", meta.id))
        assert (await consent.get(f"/v1/subjects/{user_id}/consents", headers=system.admin)).json() == []


async def test_every_service_answers_health_metrics_and_openapi(system):
    for name in (spec.name for spec in services.SERVICES):
        async with system.client(name) as client:
            assert (await client.get("/health/live")).status_code == 200
            assert (await client.get("/health/ready")).json()["status"] == "ready"
            metrics = await client.get("/metrics")
            assert "http_requests_total" in metrics.text and "outbox_backlog" in metrics.text
            assert (await client.get("/openapi.json")).json()["info"]["title"].lower().endswith(name)


async def test_events_carry_cloudevents_headers(system):
    email = f"{unique('cy')}@example.com"
    async with system.client("identity") as identity:
        user_id = (await identity.post("/v1/users", json={"email": email, "password": "correct horse battery"})).json()["id"]

    async def registered():
        records = await read_topic(system.kafka, system.topic("identity.users.v1"))
        return [(m, r) for m, r in records if m.subject == user_id and m.type == "UserRegisteredV2"]

    [(meta, record)] = await eventually(registered)
    headers = dict(record.headers)
    assert headers["ce_specversion"] == b"1.0" and headers["ce_type"] == b"UserRegisteredV2"
    assert headers["ce_source"] == b"/assent/identity" and headers["content-type"] == b"application/json"
    assert meta.correlation_id  # the request's correlation id followed it into the event


async def _verified(system, user_id):
    records = await read_topic(system.kafka, system.topic("identity.users.v1"))
    return [(m, json.loads(r.value)) for m, r in records if m.subject == user_id and m.type == "EmailVerified"]
