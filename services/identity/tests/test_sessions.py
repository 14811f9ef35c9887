"""Sessions on real PostgreSQL: refresh, logout, key rotation, throttling."""

import time
from uuid import uuid4

import asyncpg
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from assent_identity import domain


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


async def test_refresh_rotates_the_refresh_token_and_logout_revokes(identity, signup):
    _, _, session = await signup()
    refreshed = await identity.post("/v1/sessions/refresh", json={"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 200
    assert refreshed.json()["refresh_token"] != session["refresh_token"]
    reused = await identity.post("/v1/sessions/refresh", json={"refresh_token": session["refresh_token"]})
    assert reused.status_code == 401
    token = refreshed.json()["access_token"]
    assert (await identity.get("/v1/users/me", headers=bearer(token))).status_code == 200
    assert (await identity.delete("/v1/sessions/current", headers=bearer(token))).status_code == 204
    assert (await identity.get("/v1/users/me", headers=bearer(token))).status_code == 401
    again = await identity.post("/v1/sessions/refresh", json={"refresh_token": refreshed.json()["refresh_token"]})
    assert again.status_code == 401


async def test_token_of_the_previous_key_verifies_until_it_could_have_expired(identity, signup):
    _, _, session = await signup()
    old_kid = jwt.get_unverified_header(session["access_token"])["kid"]
    rotated = await identity.post("/v1/admin/signing-keys/rotate", headers=identity.admin)
    assert rotated.status_code == 201 and rotated.json()["kid"] != old_kid
    kids = [k["kid"] for k in (await identity.get("/.well-known/jwks.json")).json()["keys"]]
    assert kids[0] == rotated.json()["kid"] and old_kid in kids
    assert (await identity.get("/v1/users/me", headers=bearer(session["access_token"]))).status_code == 200
    conn = await asyncpg.connect(identity.database)
    try:  # the old key retired long enough ago that no token it signed can still be valid
        await conn.execute("UPDATE signing_keys SET retired_at = now() - interval '1 hour' WHERE kid = $1", old_kid)
    finally:
        await conn.close()
    kids = [k["kid"] for k in (await identity.get("/.well-known/jwks.json")).json()["keys"]]
    assert old_kid not in kids
    assert (await identity.get("/v1/users/me", headers=bearer(session["access_token"]))).status_code == 401


async def test_token_from_an_unknown_key_is_refused(identity, signup):
    created, _, session = await signup()
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    forged = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": uuid4().hex})
    assert (await identity.get("/v1/users/me", headers=bearer(forged))).status_code == 401
    same_kid = jwt.encode({**claims, "exp": int(time.time()) + 600}, Ed25519PrivateKey.generate(), algorithm="EdDSA",
                          headers={"kid": jwt.get_unverified_header(session["access_token"])["kid"]})
    assert (await identity.get("/v1/users/me", headers=bearer(same_kid))).status_code == 401


async def test_repeated_failures_are_slowed_with_retry_after(identity, signup):
    _, email, _ = await signup()
    statuses = [(await identity.post("/v1/sessions", json={"email": email, "password": "wrong password"})).status_code
                for _ in range(domain.ACCOUNT_THROTTLE.free)]
    assert statuses == [401] * domain.ACCOUNT_THROTTLE.free
    blocked = await identity.post("/v1/sessions", json={"email": email, "password": "a fine long secret"})
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
    assert blocked.headers["content-type"] == "application/problem+json"
    _, other_email, _ = await signup()  # another account from the same client is not locked out
    assert (await identity.post("/v1/sessions", json={"email": other_email, "password": "a fine long secret"})
            ).status_code == 200


def test_an_attacker_cannot_lock_an_account_for_long():
    waits = [domain.ACCOUNT_THROTTLE.lock_seconds(n) for n in range(0, 1000)]
    assert waits[: domain.ACCOUNT_THROTTLE.free] == [0] * domain.ACCOUNT_THROTTLE.free
    assert max(waits) == domain.ACCOUNT_THROTTLE.cap <= 60
    assert waits == sorted(waits)
