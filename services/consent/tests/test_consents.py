"""Consent on real PostgreSQL and Kafka."""

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import jwt
import pytest

from assent_consent.main import create_app
from assent_consent.settings import ConsentSettings
from assent_shared.events import (
    EmailVerified, ProcessorRegistered, SessionsRevoked, UnsubscribeRequested, UserRegistered,
)
from assent_devtools.testing.apps import base_settings, serve
from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.issuer import LocalIssuer
from assent_devtools.testing.topics import publish, read_topic


@pytest.fixture
async def consent(infra, new_database, issuer):
    prefix = unique("ct-") + "."
    database = await new_database("consent")
    settings = ConsentSettings(**base_settings(infra, database, prefix, jwks_url=issuer.jwks_url))
    async with serve(create_app(settings)) as client:
        client.prefix = prefix
        client.database = database
        client.admin = {"Authorization": f"Bearer {settings.admin_token}"}
        yield client


def registered(user_id, opt_in=True):
    return UserRegistered(user_id=user_id, email=f"{unique()}@example.com", registered_at=datetime.now(UTC),
                          policy_version=1, newsletter_opt_in=opt_in)


def verified(user_id, opt_in=True):
    return EmailVerified(user_id=user_id, verified_at=datetime.now(UTC), newsletter_opt_in=opt_in)


async def applied(client, *metas):
    """True once the service's inbox holds every one of these events."""
    conn = await asyncpg.connect(client.database)
    try:
        found = await conn.fetchval("SELECT count(*) FROM inbox WHERE event_id = ANY($1::text[])", [m.id for m in metas])
    finally:
        await conn.close()
    return found == len(metas)


async def consent_events(infra, client, subject_id):
    records = await read_topic(infra.kafka_bootstrap, client.prefix + "consent.consents.v1")
    return [(m, r) for m, r in records if m.subject == str(subject_id)]


async def test_signup_grants_newsletter_on_verification_once_even_when_redelivered(consent, infra, issuer):
    user_id = uuid4()
    topic = consent.prefix + "identity.users.v1"
    signup = await publish(infra.kafka_bootstrap, topic, registered(user_id))
    meta = await publish(infra.kafka_bootstrap, topic, verified(user_id))
    await publish(infra.kafka_bootstrap, topic, verified(user_id), meta=meta)

    async def granted():
        response = await consent.get(f"/v1/subjects/{user_id}/consents", headers=consent.admin)
        return response.json() if response.status_code == 200 and response.json() else None

    [state] = await eventually(granted)
    assert (state["purpose"], state["recipient"], state["granted"], state["seq"]) == ("newsletter", "first_party", True, 1)
    [(meta_out, record)] = await eventually(lambda: consent_events(infra, consent, user_id))
    assert meta_out.type == "ConsentGranted" and b'"source":"signup"' in record.value
    assert f'"evidence":"EmailVerified:{meta.id}"'.encode() in record.value
    assert str(meta_out.id) == state["event_id"]
    [receipt] = (await consent.get(f"/v1/subjects/{user_id}/consents/history", headers=consent.admin)).json()
    assert receipt["receipt"]["evidence"] == f"EmailVerified:{meta.id}" and receipt["receipt"]["method"] == "signup"
    assert signup.id not in receipt["receipt"]["evidence"]


async def test_registration_alone_grants_nothing_and_a_choice_made_before_verification_stands(consent, infra, issuer):
    waiting, decided = uuid4(), uuid4()
    topic = consent.prefix + "identity.users.v1"
    await publish(infra.kafka_bootstrap, topic, registered(waiting))
    await publish(infra.kafka_bootstrap, topic, registered(decided))
    mine = {"Authorization": f"Bearer {issuer.token(decided)}"}
    off = await consent.put(f"/v1/subjects/{decided}/consents/newsletter/first_party", json={"granted": False},
                            headers=mine)
    assert off.status_code == 200 and off.json()["seq"] == 0  # nothing granted, nothing to revoke
    on = await consent.put(f"/v1/subjects/{decided}/consents/newsletter/first_party", json={"granted": True},
                           headers=mine)
    off = await consent.put(f"/v1/subjects/{decided}/consents/newsletter/first_party", json={"granted": False},
                            headers=mine)
    assert (on.json()["seq"], off.json()["seq"]) == (1, 2)
    metas = [await publish(infra.kafka_bootstrap, topic, verified(decided)),
             await publish(infra.kafka_bootstrap, topic, verified(waiting, opt_in=False))]
    await eventually(lambda: applied(consent, *metas))
    assert (await consent.get(f"/v1/subjects/{waiting}/consents", headers=consent.admin)).json() == []
    [state] = (await consent.get(f"/v1/subjects/{decided}/consents", headers=consent.admin)).json()
    assert state["granted"] is False and state["seq"] == 2


async def test_opt_out_at_signup_grants_nothing(consent, infra):
    opted_out, control = uuid4(), uuid4()
    topic = consent.prefix + "identity.users.v1"
    await publish(infra.kafka_bootstrap, topic, verified(opted_out, opt_in=False))
    await publish(infra.kafka_bootstrap, topic, verified(control))
    await eventually(lambda: consent_events(infra, consent, control))
    assert (await consent.get(f"/v1/subjects/{opted_out}/consents", headers=consent.admin)).json() == []


async def test_user_changes_only_their_own_and_no_op_changes_publish_nothing(consent, infra, issuer):
    me, other = uuid4(), uuid4()
    mine = {"Authorization": f"Bearer {issuer.token(me)}"}
    url = f"/v1/subjects/{me}/consents/newsletter/first_party"
    first = await consent.put(url, json={"granted": True}, headers=mine)
    assert first.status_code == 200 and first.json()["seq"] == 1
    again = await consent.put(url, json={"granted": True}, headers=mine)
    assert again.status_code == 200 and again.json()["seq"] == 1
    revoked = await consent.put(url, json={"granted": False}, headers=mine)
    assert revoked.json()["seq"] == 2 and revoked.json()["granted"] is False
    await eventually(lambda: _count(infra, consent, me, 2))
    assert (await consent.put(f"/v1/subjects/{other}/consents/newsletter/first_party", json={"granted": True},
                              headers=mine)).status_code == 403
    assert (await consent.get(f"/v1/subjects/{other}/consents", headers=mine)).status_code == 403
    assert (await consent.get(f"/v1/subjects/{me}/consents")).status_code == 401
    assert (await consent.get(f"/v1/subjects/{me}/consents", headers={"Authorization": "Bearer forged"})).status_code == 401
    unknown = await consent.put(f"/v1/subjects/{me}/consents/astrology/first_party", json={"granted": True}, headers=mine)
    assert unknown.status_code == 422 and unknown.headers["content-type"] == "application/problem+json"
    stranger = await consent.put(f"/v1/subjects/{me}/consents/surveys/nobody", json={"granted": True}, headers=mine)
    assert stranger.status_code == 422
    malformed = await consent.put(url, json={"granted": "maybe"}, headers=mine)
    assert malformed.status_code == 422
    assert len(await consent_events(infra, consent, me)) == 2


async def _count(infra, client, subject, n):
    return len(await consent_events(infra, client, subject)) == n


async def test_processor_recipient_gpc_and_receipts(consent, infra, issuer):
    me = uuid4()
    mine = {"Authorization": f"Bearer {issuer.token(me)}"}
    processor = unique("survey-co-")
    await publish(infra.kafka_bootstrap, consent.prefix + "mailer.processors.v1",
                  ProcessorRegistered(processor_id=processor, name="Survey Co", purposes=("surveys",)))

    async def known():
        purposes = (await consent.get("/v1/purposes")).json()
        return processor in next(p for p in purposes if p["purpose"] == "surveys")["recipients"]

    await eventually(known)
    granted = await consent.put(f"/v1/subjects/{me}/consents/surveys/{processor}", json={"granted": True}, headers=mine)
    assert granted.status_code == 200 and granted.json()["granted"]
    # Reading with Global Privacy Control changes nothing; a change, or the explicit endpoint, withdraws.
    listed = await consent.get(f"/v1/subjects/{me}/consents", headers={**mine, "Sec-GPC": "1"})
    assert [s["granted"] for s in listed.json()] == [True]
    withdrawn = await consent.post(f"/v1/subjects/{me}/gpc", headers=mine)
    assert withdrawn.status_code == 200 and [s["seq"] for s in withdrawn.json()] == [2]
    assert (await consent.post(f"/v1/subjects/{me}/gpc", headers=mine)).json() == []
    refused = await consent.put(f"/v1/subjects/{me}/consents/surveys/{processor}", json={"granted": True},
                                headers={**mine, "Sec-GPC": "1"})
    assert refused.status_code == 200 and refused.json()["granted"] is False and refused.json()["gpc"] is True
    [state] = (await consent.get(f"/v1/subjects/{me}/consents", headers=mine)).json()
    assert state["granted"] is False and state["seq"] == 2
    history = (await consent.get(f"/v1/subjects/{me}/consents/history", headers=mine)).json()
    assert [h["receipt"]["method"] for h in history] == ["user", "gpc"]
    receipt = (await consent.get(f"/v1/receipts/{state['event_id']}", headers=mine)).json()
    keys = (await consent.get("/v1/receipts/.well-known/jwks.json")).json()["keys"]
    verified = jwt.decode(receipt["signature"], jwt.PyJWK(keys[0]).key, algorithms=["EdDSA"])
    assert verified == receipt["receipt"] and verified["state"] == "withdrawn"
    assert (await consent.get(f"/v1/receipts/{state['event_id']}",
                              headers={"Authorization": f"Bearer {issuer.token(uuid4())}"})).status_code == 404


async def test_unsubscribe_link_becomes_a_revocation(consent, infra):
    me = uuid4()
    await publish(infra.kafka_bootstrap, consent.prefix + "identity.users.v1", verified(me))
    await eventually(lambda: _count(infra, consent, me, 1))
    await publish(infra.kafka_bootstrap, consent.prefix + "mailer.deliveries.v1",
                  UnsubscribeRequested(subject_id=me, purpose="newsletter", requested_at=datetime.now(UTC)))
    await eventually(lambda: _count(infra, consent, me, 2))
    [(meta, record)] = (await consent_events(infra, consent, me))[1:]
    assert meta.type == "ConsentRevoked" and b'"source":"unsubscribe_link"' in record.value


async def test_a_key_withdrawn_from_the_jwks_stops_working_within_the_cache_bound(infra, new_database):
    issuer = LocalIssuer()
    try:
        settings = ConsentSettings(**base_settings(infra, await new_database("consent"), unique("ct-") + ".",
                                                   jwks_url=issuer.jwks_url, jwks_cache_seconds=1.0))
        async with serve(create_app(settings)) as client:
            user_id = uuid4()
            path = f"/v1/subjects/{user_id}/consents"
            old_kid = issuer.kid
            leaked = (old_kid, issuer._keys[old_kid])
            assert (await client.get(path, headers=issuer.auth(user_id))).status_code == 200
            issuer.rotate()
            issuer.withdraw(old_kid)
            started = asyncio.get_running_loop().time()

            async def refused():
                token = issuer.token(user_id, key=leaked)
                return (await client.get(path, headers={"Authorization": f"Bearer {token}"})).status_code == 401

            await eventually(refused, timeout=10)
            assert asyncio.get_running_loop().time() - started < 1.0 + 5  # the cache bound, plus a fetch
            assert (await client.get(path, headers=issuer.auth(user_id))).status_code == 200  # the new key works
    finally:
        issuer.close()


async def test_a_revoked_session_is_refused_once_its_event_arrives(consent, infra, issuer):
    user_id, sid, other = uuid4(), uuid4(), uuid4()
    path = f"/v1/subjects/{user_id}/consents"
    token, other_token = issuer.token(user_id, sid=sid), issuer.token(user_id, sid=other)
    assert (await consent.get(path, headers={"Authorization": f"Bearer {token}"})).status_code == 200
    now = datetime.now(UTC)
    await publish(infra.kafka_bootstrap, consent.prefix + "identity.sessions.v1", SessionsRevoked(
        user_id=user_id, session_ids=(sid,), revoked_at=now, expires_at=now + timedelta(minutes=16)))

    async def refused():
        response = await consent.get(path, headers={"Authorization": f"Bearer {token}"})
        return response.status_code == 401 and response.json()["title"] == "Session ended"

    await eventually(refused)
    assert (await consent.get(path, headers={"Authorization": f"Bearer {other_token}"})).status_code == 200


async def test_the_history_comes_a_page_at_a_time(consent, issuer):
    me = uuid4()
    mine = {"Authorization": f"Bearer {issuer.token(me)}"}
    for granted in (True, False, True):  # each a change: a no-op records nothing
        changed = await consent.put(f"/v1/subjects/{me}/consents/newsletter/first_party", json={"granted": granted},
                                    headers=mine)
        assert changed.status_code == 200, changed.text
    path = f"/v1/subjects/{me}/consents/history"
    first = await consent.get(path, headers=mine, params={"limit": 2})
    assert [h["receipt"]["seq"] for h in first.json()] == [1, 2] and 'rel="next"' in first.headers["link"]
    second = await consent.get(path, headers=mine, params={"limit": 2, "cursor": first.headers["x-next-cursor"]})
    assert [h["receipt"]["seq"] for h in second.json()] == [3] and "link" not in second.headers
    for bad in ({"limit": 0}, {"limit": 501}, {"cursor": "not-a-cursor"}, {"cursor": "W10"}):
        refused = await consent.get(path, headers=mine, params=bad)
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
