"""Identity on real PostgreSQL and Kafka: registration, sessions, keys."""

import base64
from uuid import UUID

import jwt
from assent_shared.events import UserRegisteredV2
from assent_shared.personal import DataKey, PersonalFields, development_key_token
from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.topics import read_topic


async def test_register_publishes_user_registered_with_cloudevents_headers(identity, infra):
    email = f"{unique('ada')}@Example.COM"
    response = await identity.post("/v1/users", json={"email": email, "password": "correct horse battery",
                                                      "display_name": "Ada L.", "locale": "de"})
    assert response.status_code == 201, response.text
    user = response.json()
    assert user["email"] == email.lower()

    async def published():
        records = await read_topic(infra.kafka_bootstrap, identity.prefix + "identity.users.v1")
        return [(m, r) for m, r in records if m.subject == user["id"] and m.type == "UserRegisteredV2"]

    [(meta, record)] = await eventually(published)
    assert meta.type == "UserRegisteredV2" and meta.source == "/assent/identity"
    assert record.key == user["id"].encode()
    assert b'"newsletter_opt_in":true' in record.value and b'"locale":"de"' in record.value
    assert dict(record.headers)["content-type"] == b"application/json"
    # The personal fields travel sealed, and open only with the user's data key from the key owner.
    assert email.lower().encode() not in record.value.lower() and b"Ada L." not in record.value
    event = UserRegisteredV2.model_validate_json(record.value)
    fields = PersonalFields(_KeyOwnerOver(identity, "mailer"))
    assert await fields.open(event, "email") == email.lower()
    assert await fields.open(event, "display_name") == "Ada L."


class _KeyOwnerOver:
    """The key owner's API through the test's client, as a service sees it."""

    def __init__(self, client, service: str) -> None:
        self._client = client
        self._headers = {"Authorization": f"Bearer {development_key_token(service)}", "Assent-Service": service}

    async def key_for(self, subject_id):
        raise AssertionError("a consumer never makes keys")

    async def key(self, subject_id, key_id):
        response = await self._client.get(f"/internal/v1/subject-keys/{subject_id}/{key_id}", headers=self._headers)
        assert response.status_code == 200, response.text
        body = response.json()
        return DataKey(UUID(body["key_id"]), UUID(body["subject_id"]), base64.urlsafe_b64decode(body["key"] + "=="))


async def test_a_locale_that_is_not_bcp47_is_422(identity):
    response = await identity.post("/v1/users", json={"email": f"{unique()}@example.com",
                                                      "password": "correct horse battery", "locale": "de_DE; drop"})
    assert response.status_code == 422


async def test_taken_email_is_409_and_bad_input_is_422_without_echoing_it(identity):
    email = f"{unique('bob')}@example.com"
    assert (await identity.post("/v1/users", json={"email": email, "password": "a fine long secret"})).status_code == 201
    taken = await identity.post("/v1/users", json={"email": email.upper(), "password": "another long secret"})
    assert taken.status_code == 409
    assert taken.headers["content-type"] == "application/problem+json"
    for body in (
        {"email": "not-an-email", "password": "a fine long secret"},
        {"email": f"{unique()}@example.com", "password": "short"},
        {"email": f"{unique()}@example.com", "password": "password123"},
        {"email": f"{unique()}@example.com"},
        {"email": 5, "password": ["x"]},
    ):
        response = await identity.post("/v1/users", json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
        assert "password123" not in response.text and "short" not in response.text.replace("too short", "")
    two_lines = {"email": f"{unique()}@example.com", "password": "a fine long secret", "display_name": "Ada\nBcc: x"}
    assert (await identity.post("/v1/users", json=two_lines)).status_code == 422
    # A lone surrogate (sent as a JSON escape) cannot be hashed: 422, not 500, at sign-up and at login.
    surrogate = '{"email": "%s", "password": "a fine long secret \\ud800"}' % email
    for path in ("/v1/users", "/v1/sessions"):
        response = await identity.post(path, content=surrogate, headers={"content-type": "application/json"})
        assert response.status_code == 422, (path, response.text)


async def test_login_returns_eddsa_token_with_kid_verifiable_by_jwks(identity):
    email = f"{unique('cy')}@example.com"
    created = (await identity.post("/v1/users", json={"email": email, "password": "a fine long secret"})).json()
    login = await identity.post("/v1/sessions", json={"email": email, "password": "a fine long secret"})
    assert login.status_code == 200
    token = login.json()["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA" and header["kid"]
    keys = (await identity.get("/.well-known/jwks.json")).json()["keys"]
    key = next(k for k in keys if k["kid"] == header["kid"])
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["EdDSA"], audience="assent")
    assert UUID(claims["sub"]) == UUID(created["id"])
    me = await identity.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["email"] == email
    wrong = await identity.post("/v1/sessions", json={"email": email, "password": "not the password"})
    assert wrong.status_code == 401
    unknown = await identity.post("/v1/sessions", json={"email": f"{unique()}@example.com", "password": "whatever123"})
    assert unknown.status_code == 401 and unknown.json()["title"] == wrong.json()["title"]
