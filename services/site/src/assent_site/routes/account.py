"""Sign-up, sign-in, sign-out, password reset and address verification: forms in front of identity."""

import re

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from assent_site.clients.base import UpstreamError
from assent_site.deps import Identity
from assent_site.web import (
    client_address, current_session, end_session, field, local_path, page, read_form, redirect, require_session,
    start_session, user_id_of,
)

router = APIRouter(tags=["pages"])
_LOCALE = re.compile(r"^[a-z]{2,3}$")


def locale_of(request: Request) -> str | None:
    first = request.headers.get("accept-language", "").split(",")[0].split(";")[0].split("-")[0].strip().lower()
    return first if _LOCALE.match(first) else None


def _why(refused: UpstreamError) -> str:
    if refused.status == 429:
        return f"Too many attempts. Try again in {refused.retry_after or 'a few'} seconds."
    return refused.detail or refused.title


@router.get("/signup", response_class=HTMLResponse)
async def signup_page(request: Request) -> HTMLResponse:
    return await page(request, "signup.html", values={"newsletter": True})


@router.post("/signup", response_class=HTMLResponse)
async def signup(request: Request, identity: Identity) -> Response:
    form = await read_form(request)
    email, password = field(form, "email", 320), str(form.get("password", ""))[:1024]
    name, newsletter = field(form, "display_name", 200), form.get("newsletter") == "yes"
    values = {"email": email, "display_name": name, "newsletter": newsletter}
    try:
        created = await identity.register(email, password, name or None, newsletter, locale_of(request))
        tokens = await identity.sign_in(email, password, client_address(request))
    except UpstreamError as refused:
        return await page(request, "signup.html", status=400 if refused.status != 429 else 429,
                          values=values, error=_why(refused))
    start_session(request, tokens, created["id"])
    return redirect("/my-data", "signed_up")


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(request: Request, next: str = Query(default="/my-data", max_length=500)) -> HTMLResponse:
    target = local_path(next, "/my-data")
    # Sent back here from the page a sign-in just went to: the browser did not keep the sign-in cookie.
    blocked = target.endswith(("?done=signed_in", "&done=signed_in"))
    target = target.removesuffix("?done=signed_in").removesuffix("&done=signed_in")
    return await page(request, "signin.html", next=target, email="", cookies_blocked=blocked,
                      error="Your browser did not keep the sign-in cookie. Signing in needs that one cookie; "
                            "everything that needs no account works without it." if blocked else None)


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request, identity: Identity) -> Response:
    form = await read_form(request)
    email, target = field(form, "email", 320), local_path(field(form, "next", 500), "/my-data")
    try:
        tokens = await identity.sign_in(email, str(form.get("password", ""))[:1024], client_address(request))
    except UpstreamError as refused:
        error = "Wrong email or password." if refused.status in (400, 401, 422) else _why(refused)
        return await page(request, "signin.html", status=429 if refused.status == 429 else 400, next=target,
                          email=email, error=error)
    start_session(request, tokens, user_id_of(tokens))
    return redirect(target, "signed_in")


@router.post("/signout")
async def signout(request: Request, identity: Identity) -> Response:
    await read_form(request)
    session = await current_session(request)
    if session is not None:
        try:
            await identity.sign_out(session["access"])
        except UpstreamError:
            pass  # the session had ended already; the cookie goes all the same
    end_session(request)
    return redirect("/", "signed_out")


@router.get("/reset", response_class=HTMLResponse)
async def reset_page(request: Request, token: str = Query(default="", max_length=400)) -> HTMLResponse:
    return await page(request, "reset.html", token=token)


@router.post("/reset", response_class=HTMLResponse)
async def reset_request(request: Request, identity: Identity) -> Response:
    form = await read_form(request)
    try:
        await identity.request_password_reset(field(form, "email", 320))
    except UpstreamError as refused:
        return await page(request, "reset.html", status=400, token="", error=_why(refused))
    return redirect("/reset", "reset_requested")


@router.post("/reset/confirm", response_class=HTMLResponse)
async def reset_confirm(request: Request, identity: Identity) -> Response:
    form = await read_form(request)
    token, password = field(form, "token", 400), str(form.get("password", ""))[:1024]
    try:
        await identity.reset_password(token, password)
    except UpstreamError as refused:
        return await page(request, "reset.html", status=400, token=token, error=_why(refused))
    end_session(request)  # identity ended every session of the account; this browser's too
    return redirect("/signin", "password_reset")


@router.get("/verify", response_class=HTMLResponse)
async def verify_page(request: Request, token: str = Query(default="", max_length=400)) -> HTMLResponse:
    """The mail's link only asks: a link scanner must not verify an address on its own."""
    return await page(request, "verify.html", token=token)


@router.post("/verify", response_class=HTMLResponse)
async def verify(request: Request, identity: Identity) -> Response:
    form = await read_form(request)
    token = field(form, "token", 400)
    try:
        await identity.verify_email(token)
    except UpstreamError as refused:
        return await page(request, "verify.html", status=400, token=token, error=_why(refused))
    session = await current_session(request)
    return redirect("/my-data" if session else "/", "verified")


@router.post("/verify/resend")
async def resend_verification(request: Request, identity: Identity) -> Response:
    await read_form(request)
    session = await require_session(request)
    await identity.resend_verification(session["access"])
    return redirect("/my-data", "verification_sent")
