"""Email verification and password reset on real PostgreSQL and Kafka: single-use, expiring, hashed, sealed tokens."""

import json
from uuid import UUID

import asyncpg
import pytest

from assent_identity.links import MAIL_TOKEN_CONTEXT, sealed_binding
from assent_shared.sealing import Sealer
from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.topics import read_topic


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


async def events_of(identity, infra, user_id, event_type):
    records = await read_topic(infra.kafka_bootstrap, identity.prefix + "identity.users.v1")
    return [(m, json.loads(r.value)) for m, r in records if m.subject == user_id and m.type == event_type]


async def mailed_token(identity, infra, user_id, event_type, count=1):
    """Open the newest token identity sealed for the mailer, as the mailer does."""
    found = await eventually(lambda: _at_least(events_of(identity, infra, user_id, event_type), count))
    sealed = found[-1][1]["sealed_token"]
    sealer = Sealer(identity.settings.mail_token_secret, MAIL_TOKEN_CONTEXT)
    return sealer.open(sealed, sealed_binding(event_type, user_id)), sealed


async def _at_least(pending, count):
    found = await pending
    return found if len(found) >= count else None


async def fetch(identity, sql, *args):
    conn = await asyncpg.connect(identity.database)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def test_signup_mails_a_sealed_link_and_verifying_releases_the_newsletter_opt_in(identity, signup, infra):
    user, email, session = await signup()
    me = await identity.get("/v1/users/me", headers=bearer(session["access_token"]))
    assert me.json()["email_verified"] is False
    token, sealed = await mailed_token(identity, infra, user["id"], "EmailVerificationRequested")
    assert token not in sealed and token.split(".")[1] not in sealed
    # Identity keeps the selector and a hash of the verifier, never the token.
    [row] = await fetch(identity, "SELECT selector, verifier_hash::text AS h FROM mail_tokens WHERE user_id = $1",
                        UUID(user["id"]))
    assert row["selector"] == token.split(".")[0] and token.split(".")[1] not in row["h"]
    assert not await events_of(identity, infra, user["id"], "EmailVerified")

    assert (await identity.post("/v1/email-verifications/confirm", json={"token": token})).status_code == 204
    me = await identity.get("/v1/users/me", headers=bearer(session["access_token"]))
    assert me.json()["email_verified"] is True
    [(meta, verified)] = await eventually(lambda: events_of(identity, infra, user["id"], "EmailVerified"))
    assert verified["newsletter_opt_in"] is True and meta.source == "/assent/identity"

    again = await identity.post("/v1/email-verifications/confirm", json={"token": token})
    assert again.status_code == 400 and again.headers["content-type"] == "application/problem+json"
    resend = await identity.post("/v1/users/me/email-verifications", headers=bearer(session["access_token"]))
    assert resend.status_code == 202 and resend.json()["sent"] is False


async def test_opting_out_at_signup_verifies_without_releasing_a_grant(identity, infra):
    email = f"{unique('o')}@example.com"
    created = await identity.post("/v1/users", json={"email": email, "password": "a fine long secret",
                                                     "newsletter_opt_in": False, "locale": "de"})
    assert created.status_code == 201 and created.json()["locale"] == "de"
    user_id = created.json()["id"]
    token, _ = await mailed_token(identity, infra, user_id, "EmailVerificationRequested")
    [(_, requested)] = await events_of(identity, infra, user_id, "EmailVerificationRequested")
    assert requested["locale"] == "de"
    assert (await identity.post("/v1/email-verifications/confirm", json={"token": token})).status_code == 204
    [(_, verified)] = await eventually(lambda: events_of(identity, infra, user_id, "EmailVerified"))
    assert verified["newsletter_opt_in"] is False


@pytest.mark.parametrize("body", [{"token": "garbage"}, {"token": "a.b"}, {"token": ""}, {}, {"token": 5},
                                  {"token": "selector-long-enough.verifier-long-enough-but-unknown"}])
async def test_unknown_or_malformed_tokens_are_a_clear_4xx(identity, body):
    for url in ("/v1/email-verifications/confirm", "/v1/password-resets/confirm"):
        response = await identity.post(url, json={**body, "password": "a new long secret"})
        assert response.status_code in (400, 422), (url, body, response.text)
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_tampered_verifier_is_refused_and_the_real_token_still_works(identity, signup, infra):
    user, _, _ = await signup()
    token, _ = await mailed_token(identity, infra, user["id"], "EmailVerificationRequested")
    selector, verifier = token.split(".")
    forged = f"{selector}.{verifier[:-2]}{'AA' if verifier[-2:] != 'AA' else 'BB'}"
    assert (await identity.post("/v1/email-verifications/confirm", json={"token": forged})).status_code == 400
    assert (await identity.post("/v1/email-verifications/confirm", json={"token": token})).status_code == 204


async def test_reset_answers_the_same_for_unknown_addresses_and_ends_every_session(identity, signup, infra):
    user, email, session = await signup()
    _, _, second = await identity_login(identity, email, "a fine long secret")
    known = await identity.post("/v1/password-resets", json={"email": email.upper()})
    unknown = await identity.post("/v1/password-resets", json={"email": f"{unique()}@example.com"})
    assert known.status_code == unknown.status_code == 202 and known.json() == unknown.json()
    token, _ = await mailed_token(identity, infra, user["id"], "PasswordResetRequested")

    weak = await identity.post("/v1/password-resets/confirm", json={"token": token, "password": "short"})
    assert weak.status_code == 422  # and the link still works
    done = await identity.post("/v1/password-resets/confirm", json={"token": token, "password": "a brand new secret"})
    assert done.status_code == 204
    for old in (session, second):
        assert (await identity.get("/v1/users/me", headers=bearer(old["access_token"]))).status_code == 401
        refreshed = await identity.post("/v1/sessions/refresh", json={"refresh_token": old["refresh_token"]})
        assert refreshed.status_code == 401
    assert (await identity.post("/v1/sessions", json={"email": email, "password": "a fine long secret"})).status_code == 401
    assert (await identity.post("/v1/sessions", json={"email": email, "password": "a brand new secret"})).status_code == 200
    reused = await identity.post("/v1/password-resets/confirm", json={"token": token, "password": "yet another secret"})
    assert reused.status_code == 400

    async def announced():  # every other service learns that the sessions ended
        records = await read_topic(infra.kafka_bootstrap, identity.prefix + "identity.sessions.v1")
        return [json.loads(r.value) for m, r in records if m.type == "SessionsRevoked" and m.subject == user["id"]]

    [revoked] = await eventually(announced)
    assert revoked["session_ids"] == []


async def identity_login(identity, email, password):
    login = await identity.post("/v1/sessions", json={"email": email, "password": password})
    assert login.status_code == 200
    return None, email, login.json()


async def test_an_expired_reset_link_is_refused(identity, signup, infra):
    user, email, _ = await signup()
    assert (await identity.post("/v1/password-resets", json={"email": email})).status_code == 202
    token, _ = await mailed_token(identity, infra, user["id"], "PasswordResetRequested")
    await fetch(identity, "UPDATE mail_tokens SET expires_at = now() - interval '1 second' WHERE selector = $1",
                token.split(".")[0])
    expired = await identity.post("/v1/password-resets/confirm", json={"token": token, "password": "a brand new secret"})
    assert expired.status_code == 400
    assert (await identity.post("/v1/sessions", json={"email": email, "password": "a fine long secret"})).status_code == 200


async def test_reset_requests_are_throttled_per_account_silently_and_per_client_with_429(identity, signup, infra):
    user, email, _ = await signup()
    limit = identity.settings.mails_per_account_hour
    for _ in range(limit + 2):
        assert (await identity.post("/v1/password-resets", json={"email": email})).status_code == 202
    await eventually(lambda: _at_least(events_of(identity, infra, user["id"], "PasswordResetRequested"), limit))
    assert len(await events_of(identity, infra, user["id"], "PasswordResetRequested")) == limit
    remaining = identity.settings.resets_per_client_hour - (limit + 2)
    for _ in range(remaining):
        assert (await identity.post("/v1/password-resets", json={"email": f"{unique()}@example.com"})).status_code == 202
    throttled = await identity.post("/v1/password-resets", json={"email": f"{unique()}@example.com"})
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    [row] = await fetch(identity, "SELECT count(*) AS n, min(client_key) AS k FROM reset_requests")
    assert row["n"] == identity.settings.resets_per_client_hour and "127.0.0.1" not in row["k"]
    assert (await identity.post("/v1/password-resets", json={"email": "not an email"})).status_code in (422, 429)


async def test_resend_and_email_change_send_new_links_and_old_ones_stop_working(identity, signup, infra):
    user, email, session = await signup()
    first, _ = await mailed_token(identity, infra, user["id"], "EmailVerificationRequested")
    resent = await identity.post("/v1/users/me/email-verifications", headers=bearer(session["access_token"]))
    assert resent.status_code == 202 and resent.json()["sent"] is True
    await mailed_token(identity, infra, user["id"], "EmailVerificationRequested", count=2)
    changed = await identity.put("/v1/users/me/email", headers=bearer(session["access_token"]),
                                 json={"email": f"{unique('new')}@example.com", "password": "a fine long secret"})
    assert changed.status_code == 200 and changed.json()["email_verified"] is False
    assert (await identity.post("/v1/email-verifications/confirm", json={"token": first})).status_code == 400
    newest, _ = await mailed_token(identity, infra, user["id"], "EmailVerificationRequested", count=3)
    assert (await identity.post("/v1/email-verifications/confirm", json={"token": newest})).status_code == 204
    me = await identity.get("/v1/users/me", headers=bearer(session["access_token"]))
    assert me.json()["email_verified"] is True
