"""Global Privacy Control is honoured by writes only (a change under `Sec-GPC: 1`, or `POST /gpc`): no GET
of consent's changes anything, whatever headers it carries. Routes on the in-memory store."""

import copy
from datetime import UTC, datetime
from typing import get_args
from uuid import uuid4

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute

from assent_consent import api, deps, domain, handlers
from assent_consent.deps import Wiring
from assent_consent.fakes import memory_consents
from assent_consent.receipts import ReceiptSigner
from assent_consent.settings import ConsentSettings
from assent_shared.auth import Principal
from assent_shared.cloudevents import EventMeta
from assent_shared.events import ProcessorRegistered
from assent_shared.problems import install_problem_handlers

SETTINGS = ConsentSettings(environment="test")
DEVICE = "d" * 22
GET_ROUTES = [r.path for r in api.router.routes if isinstance(r, APIRoute) and "GET" in r.methods]


async def held_consents():
    """A user holding a third-party grant and a browser holding a third-party cookie consent."""
    consents, me = memory_consents(), uuid4()
    registered = ProcessorRegistered(processor_id="acme", name="Acme", purposes=("surveys",))
    async with consents.transaction() as store:
        await handlers.apply_processor_registered(store, registered, EventMeta(
            id=str(uuid4()), type="ProcessorRegistered", source="test", time=datetime.now(UTC)))
    grant = await handlers.change_consent(consents, domain.ChangeConsent(me, "surveys", "acme", True, "user"),
                                          settings=SETTINGS)
    await handlers.change_device_consent(consents, domain.ChangeDeviceConsent(DEVICE, "partner_cookies", True, False),
                                         settings=SETTINGS)
    return consents, me, grant.state.event_id


def app_on(consents, me) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(api.router)
    app.state.service = Wiring(consents=consents, settings=SETTINGS, signer=ReceiptSigner(SETTINGS.signing_secret))
    principal = get_args(deps.Who)[1].dependency
    app.dependency_overrides[principal] = lambda: Principal(user_id=me, is_admin=False)
    return app


def snapshot(consents) -> tuple[int, dict]:
    return consents.commits, copy.deepcopy(vars(consents.store))


async def test_no_get_changes_anything_under_gpc():
    consents, me, event_id = await held_consents()
    before = snapshot(consents)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app_on(consents, me)), base_url="http://c") as client:
        for path in GET_ROUTES:
            url = path.format(subject_id=me, event_id=event_id, device_id=DEVICE)
            response = await client.get(url, headers={"Sec-GPC": "1"})
            assert response.status_code < 500, (url, response.text)
            assert snapshot(consents) == before, f"GET {path} changed state"
    assert {"/v1/subjects/{subject_id}/consents", "/v1/devices/{device_id}/consents"} <= set(GET_ROUTES)


async def test_a_write_under_gpc_withdraws_the_third_party_grants():
    consents, me, _ = await held_consents()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app_on(consents, me)), base_url="http://c") as client:
        changed = await client.put(f"/v1/subjects/{me}/consents/newsletter/first_party", json={"granted": True},
                                   headers={"Sec-GPC": "1"})
        assert changed.status_code == 200 and changed.json()["gpc"] is True
        [surveys] = [s for s in (await client.get(f"/v1/subjects/{me}/consents")).json() if s["purpose"] == "surveys"]
        assert (surveys["granted"], surveys["seq"]) == (False, 2)
        assert (await client.post(f"/v1/subjects/{me}/gpc")).json() == []  # nothing left to withdraw
