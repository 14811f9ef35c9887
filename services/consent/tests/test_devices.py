"""Device-scoped consent for visitors without an account, on real PostgreSQL and Kafka."""

import json
import secrets

import jwt
import pytest

from assent_consent.main import create_app
from assent_consent.settings import ConsentSettings
from assent_devtools.testing.apps import base_settings, serve
from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.topics import read_topic


@pytest.fixture
async def consent(infra, new_database):
    prefix = unique("cd-") + "."
    settings = ConsentSettings(**base_settings(infra, await new_database("consent"), prefix))
    async with serve(create_app(settings)) as client:
        client.prefix = prefix
        yield client


def new_device() -> str:
    return secrets.token_urlsafe(16)


async def device_events(infra, consent, device_id):
    records = await read_topic(infra.kafka_bootstrap, consent.prefix + "consent.consents.v1")
    return [(m, json.loads(r.value), r) for m, r in records if r.key == device_id.encode()]


async def test_a_visitors_choice_is_recorded_published_and_receipted(consent, infra):
    device = new_device()
    refused = await consent.put(f"/v1/devices/{device}/consents/cookies", json={"granted": False})
    assert refused.status_code == 200, refused.text
    assert (refused.json()["granted"], refused.json()["seq"], refused.json()["gpc"]) == (False, 1, False)
    allowed = await consent.put(f"/v1/devices/{device}/consents/cookies", json={"granted": True})
    again = await consent.put(f"/v1/devices/{device}/consents/cookies", json={"granted": True})
    assert (allowed.json()["seq"], again.json()["seq"]) == (2, 2)  # no change, nothing recorded

    events = await eventually(lambda: _n(device_events(infra, consent, device), 2))
    assert [m.type for m, _, _ in events] == ["DeviceConsentRevoked", "DeviceConsentGranted"]
    assert [e["seq"] for _, e, _ in events] == [1, 2] and {e["source"] for _, e, _ in events} == {"visitor"}
    assert str(events[1][0].id) == allowed.json()["event_id"] and events[1][0].subject is None

    listed = (await consent.get(f"/v1/devices/{device}/consents")).json()
    assert [(c["purpose"], c["granted"]) for c in listed["consents"]] == [("cookies", True)]
    history = (await consent.get(f"/v1/devices/{device}/consents/history")).json()
    assert [h["receipt"]["state"] for h in history] == ["withdrawn", "granted"]
    receipt = (await consent.get(f"/v1/devices/{device}/receipts/{allowed.json()['event_id']}")).json()
    keys = (await consent.get("/v1/receipts/.well-known/jwks.json")).json()["keys"]
    assert jwt.decode(receipt["signature"], jwt.PyJWK(keys[0]).key, algorithms=["EdDSA"]) == receipt["receipt"]
    assert receipt["receipt"]["device_id"] == device
    other = new_device()
    assert (await consent.get(f"/v1/devices/{other}/receipts/{allowed.json()['event_id']}")).status_code == 404


async def _n(pending, count):
    found = await pending
    return found if len(found) == count else None


async def test_gpc_refuses_and_withdraws_third_party_purposes_and_says_so(consent, infra):
    device = new_device()
    partner = await consent.put(f"/v1/devices/{device}/consents/partner_cookies", json={"granted": True})
    assert partner.json()["granted"] is True
    cookies = await consent.put(f"/v1/devices/{device}/consents/cookies", json={"granted": True},
                                headers={"Sec-GPC": "1"})
    assert cookies.json()["granted"] is True and cookies.json()["gpc"] is True  # first party: GPC leaves it
    refused = await consent.put(f"/v1/devices/{device}/consents/partner_cookies", json={"granted": True},
                                headers={"Sec-GPC": "1"})
    assert refused.status_code == 200 and refused.json()["granted"] is False and refused.json()["gpc"] is True
    listed = await consent.get(f"/v1/devices/{device}/consents", headers={"Sec-GPC": "1"})
    assert listed.json()["gpc"] is True
    assert {c["purpose"]: c["granted"] for c in listed.json()["consents"]} == {"cookies": True, "partner_cookies": False}
    # The first request with GPC withdrew the partner grant before recording its own choice.
    events = await eventually(lambda: _n(device_events(infra, consent, device), 3))
    assert [(m.type, e["purpose"], e["source"], e["gpc"]) for m, e, _ in events] == [
        ("DeviceConsentGranted", "partner_cookies", "visitor", False),
        ("DeviceConsentRevoked", "partner_cookies", "gpc", True),
        ("DeviceConsentGranted", "cookies", "visitor", True),
    ]
    purposes = {p["purpose"]: p["third_party"] for p in (await consent.get("/v1/device-purposes")).json()}
    assert purposes == {"cookies": False, "partner_cookies": True}


@pytest.mark.parametrize("device, purpose, body", [
    ("short", "cookies", {"granted": True}),
    ("x" * 65, "cookies", {"granted": True}),
    ("not/a/device-id-at-all-0000", "cookies", {"granted": True}),
    ("has spaces in the device id 00", "cookies", {"granted": True}),
    (None, "astrology", {"granted": True}),
    (None, "cookies", {"granted": "maybe"}),
    (None, "cookies", {}),
])
async def test_bad_device_requests_are_4xx_problems(consent, device, purpose, body):
    response = await consent.put(f"/v1/devices/{device or new_device()}/consents/{purpose}", json=body)
    assert response.status_code in (404, 422), response.text
    if response.status_code == 422:
        assert response.headers["content-type"] == "application/problem+json"
