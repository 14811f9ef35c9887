"""My data: consents per purpose and recipient from the policy's data-use map, receipts, export, erasure."""

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from assent_site.clients.base import UpstreamError
from assent_site.deps import Consent, Identity, Policy, Settings
from assent_site.web import client_address, end_session, field, gpc, page, read_form, redirect, require_session

router = APIRouter(tags=["pages"])
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_UUID = re.compile(r"^[0-9a-fA-F-]{36}$")


def consent_rows(data_use: list[dict], states: list[dict]) -> list[dict]:
    """One switch per (purpose, recipient) the policy in force declares, then any other the person holds."""
    by_key = {(s["purpose"], s["recipient"]): s for s in states}
    rows = [{"purpose": u["purpose"], "recipient": u["processor"], "data": u.get("data", []), "declared": True,
             "state": by_key.pop((u["purpose"], u["processor"]), None)} for u in data_use]
    rows += [{"purpose": p, "recipient": r, "data": [], "declared": False, "state": s}
             for (p, r), s in sorted(by_key.items())]
    return rows


@router.get("/my-data", response_class=HTMLResponse)
async def my_data(request: Request, identity: Identity, consent: Consent, policy: Policy,
                  settings: Settings) -> HTMLResponse:
    session = await require_session(request)
    me = await identity.me(session["access"])
    current = await policy.current(settings.policy_id)
    states = await consent.consents(session["uid"], session["access"])
    history = await consent.history(session["uid"], session["access"])
    return await page(request, "my_data.html", me=me, policy=current,
                      rows=consent_rows(current.get("data_use", []), states), history=history[-20:][::-1])


@router.post("/my-data/consents")
async def change_consent(request: Request, identity: Identity, consent: Consent, policy: Policy,
                         settings: Settings) -> Response:
    form = await read_form(request)
    session = await require_session(request)
    purpose, recipient = field(form, "purpose", 64), field(form, "recipient", 64)
    if not (_SLUG.match(purpose) and _SLUG.match(recipient)):
        return redirect("/my-data")
    try:
        await consent.change(session["uid"], purpose, recipient, form.get("granted") == "true", session["access"],
                             gpc=gpc(request))
    except UpstreamError as refused:
        me = await identity.me(session["access"])
        current = await policy.current(settings.policy_id)
        states = await consent.consents(session["uid"], session["access"])
        return await page(request, "my_data.html", status=400, me=me, policy=current, history=[],
                          rows=consent_rows(current.get("data_use", []), states),
                          error=refused.detail or refused.title)
    return redirect("/my-data#consents", "consent_saved")


@router.get("/my-data/receipts/{event_id}")
async def receipt(request: Request, event_id: str, consent: Consent) -> Response:
    session = await require_session(request)
    if not _UUID.match(event_id):
        return redirect("/my-data")
    body = await consent.receipt(event_id, session["access"])
    return Response(body, media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="consent-receipt-{event_id}.json"'})


@router.get("/my-data/export")
async def export(request: Request, identity: Identity) -> Response:
    session = await require_session(request)
    body = await identity.export(session["access"])
    return Response(body, media_type="application/json",
                    headers={"Content-Disposition": 'attachment; filename="my-assent-data.json"'})


@router.get("/my-data/erase", response_class=HTMLResponse)
async def erase_page(request: Request) -> HTMLResponse:
    await require_session(request)
    return await page(request, "erase.html")


@router.post("/my-data/erase", response_class=HTMLResponse)
async def erase(request: Request, identity: Identity) -> Response:
    """Erasure asks for the password again: a browser left signed in must not be enough."""
    form = await read_form(request)
    session = await require_session(request)
    me = await identity.me(session["access"])
    try:
        fresh = await identity.sign_in(me["email"], str(form.get("password", ""))[:1024], client_address(request))
    except UpstreamError as refused:
        error = "That is not your password." if refused.status in (400, 401) else refused.detail or refused.title
        return await page(request, "erase.html", status=400, error=error)
    await identity.erase(fresh["access_token"])
    end_session(request)
    return redirect("/", "erased")
