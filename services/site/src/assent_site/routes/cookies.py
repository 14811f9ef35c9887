"""The cookie choice of a visitor, recorded as a device-scoped consent at the consent service.

The device id cookie exists only after the visitor allowed cookies; a refusal is recorded under a
fresh id that no cookie keeps, so nothing in the browser remembers it.
"""

import secrets

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from assent_site.clients.base import Unavailable, UpstreamError
from assent_site.deps import Consent
from assent_site.web import (
    DEVICE_COOKIE, DEVICE_COOKIE_DAYS, delete_cookie, device_id, field, gpc, local_path, page, read_form, redirect,
    set_cookie,
)

router = APIRouter(tags=["pages"])
log = structlog.get_logger(__name__)
COOKIES_PURPOSE = "cookies"


@router.get("/cookies", response_class=HTMLResponse)
async def cookies_page(request: Request) -> HTMLResponse:
    return await page(request, "cookies.html")


@router.post("/cookies", response_class=HTMLResponse)
async def choose(request: Request, consent: Consent) -> Response:
    form = await read_form(request)
    allow = field(form, "choice", 10) == "allow"
    target = local_path(field(form, "next", 500))
    existing = device_id(request)
    device = existing or secrets.token_urlsafe(24)  # 192 random bits
    try:
        record = await consent.set_device_consent(device, COOKIES_PURPOSE, allow, gpc(request))
    except (UpstreamError, Unavailable):
        if allow:
            return await page(request, "cookies.html", status=503, error=(
                "Your choice could not be recorded just now, so no cookie was set. Try again later."))
        # A refusal needs no record to be honoured: nothing is set either way.
        log.warning("cookie refusal not recorded")
        record = None
    if allow and record is not None and record.get("granted", True):
        set_cookie(request, DEVICE_COOKIE, device, DEVICE_COOKIE_DAYS * 86400)
        return redirect(target, "cookies_allowed")
    if existing:
        delete_cookie(request, DEVICE_COOKIE)
    return redirect(target, "cookies_refused")
