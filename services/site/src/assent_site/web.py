"""What every page shares: the visitor's sealed cookies, CSRF-checked forms, rendering, notices."""

import secrets
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
import structlog
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import FormData

from assent_site.clients.base import Unavailable, UpstreamError
from assent_site.deps import Wiring

log = structlog.get_logger(__name__)

SESSION_COOKIE = "assent_session"
ADMIN_COOKIE = "assent_admin"
DEVICE_COOKIE = "assent_device"
DEVICE_COOKIE_DAYS = 390
_REFRESH_MARGIN_SECONDS = 60

# Outcomes a redirect names in `?done=`: fixed texts, so no message is ever taken from the URL.
DONE = {
    "signed_up": "Your account is ready. We sent you a mail: open its link to verify your address.",
    "signed_in": "You are signed in.",
    "signed_out": "You are signed out.",
    "consent_saved": "Your choice is saved.",
    "verification_sent": "We sent you a new verification mail.",
    "reset_requested": "If an account uses that address, we sent it a mail with a link to choose a new password.",
    "password_reset": "Your password is changed and every session ended. Sign in with the new password.",
    "verified": "Your address is verified. Thank you.",
    "cookies_allowed": "Thank you: analytics cookies are allowed on this device.",
    "cookies_refused": "No cookies: nothing is stored in your browser.",
    "erased": "Your account is erased. Every service is removing what it held about you.",
    "published": "The policy version is published.",
    "registered": "The processor is registered.",
    "answer_sent": "Your answer is sent. We will reply here, and by mail if we have your address.",
    "replied": "Your reply is sent.",
    "closed": "The inquiry is closed.",
}


class CsrfRefused(Exception):
    """A form without a valid token, or sent from another site."""


class SignInRequired(Exception):
    """The page needs an account; the visitor is sent to sign in and back."""


class AdminRequired(Exception):
    """The page is part of the console; the visitor is sent to the console's sign-in."""


def site_of(request: Request) -> Wiring:
    """For the helpers every page shares (sessions, forms, rendering); routes take theirs as dependencies."""
    return request.app.state.service


# ------------------------------------------------------------------ cookies


def set_cookie(request: Request, name: str, value: str, max_age: int, path: str = "/") -> None:
    """Queued on the request; the security middleware writes it, with the flags every cookie gets."""
    request.state.cookies = [*getattr(request.state, "cookies", []), (name, value, max_age, path)]


def delete_cookie(request: Request, name: str, path: str = "/") -> None:
    set_cookie(request, name, "", 0, path)


def gpc(request: Request) -> bool:
    return request.headers.get("sec-gpc", "").strip() == "1"


def client_address(request: Request) -> str | None:
    """The visitor's address, for the services' per-client limits (X-Forwarded-For only from our proxies)."""
    return site_of(request).forwarding.client_address(request)


def device_id(request: Request) -> str | None:
    value = request.cookies.get(DEVICE_COOKIE, "")
    return value if 22 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum() else None


# ------------------------------------------------------------------ the signed-in user


def start_session(request: Request, tokens: dict, user_id: str) -> dict:
    session = {"uid": user_id, "access": tokens["access_token"], "refresh": tokens["refresh_token"],
               "exp": time.time() + float(tokens.get("expires_in", 900)), "started": time.time(),
               "nonce": secrets.token_urlsafe(16), "activity": None}
    _store_session(request, session)
    request.state.session = session
    return session


def _store_session(request: Request, session: dict) -> None:
    site = site_of(request)
    max_age = int(site.settings.session_hours * 3600 - (time.time() - session["started"]))
    set_cookie(request, SESSION_COOKIE, site.sealer.seal(session), max(max_age, 0))


def end_session(request: Request) -> None:
    request.state.session = None
    delete_cookie(request, SESSION_COOKIE)


async def current_session(request: Request) -> dict | None:
    """The signed-in user's session, its access token refreshed when it is about to expire."""
    if hasattr(request.state, "session"):
        return request.state.session
    site = site_of(request)
    session = site.sealer.open(request.cookies.get(SESSION_COOKIE), site.settings.session_hours * 3600)
    if session is not None and session.get("exp", 0) - _REFRESH_MARGIN_SECONDS < time.time():
        try:
            tokens = await site.identity.refresh(session["refresh"])
        except UpstreamError:
            session = None
        except Unavailable:
            pass  # keep the session: the pages that need identity will say it is not answering
        else:
            session.update(access=tokens["access_token"], refresh=tokens["refresh_token"],
                           exp=time.time() + float(tokens.get("expires_in", 900)))
            _store_session(request, session)
    if session is None and SESSION_COOKIE in request.cookies:
        delete_cookie(request, SESSION_COOKIE)
    request.state.session = session
    if session is not None and gpc(request) and not session.get("gpc"):
        request.state.gpc_withdrawn = await _honour_gpc(request, session)
    return session


async def require_session(request: Request) -> dict:
    session = await current_session(request)
    if session is None:
        raise SignInRequired()
    return session


def user_id_of(tokens: dict) -> str:
    # Only to name the user in our own cookie; every service verifies the token itself.
    return jwt.decode(tokens["access_token"], options={"verify_signature": False})["sub"]


# ------------------------------------------------------------------ the console's admin


def admin_session(request: Request) -> dict | None:
    site = site_of(request)
    return site.sealer.open(request.cookies.get(ADMIN_COOKIE), site.settings.admin_session_minutes * 60)


def require_admin(request: Request) -> dict:
    admin = admin_session(request)
    if admin is None:
        raise AdminRequired()
    return admin


# ------------------------------------------------------------------ forms


def _binding(request: Request) -> str:
    if request.url.path.startswith("/admin"):
        admin = admin_session(request)
        return f"admin:{admin['nonce']}" if admin else "anonymous"
    session = getattr(request.state, "session", None)
    return f"user:{session['nonce']}" if session else "anonymous"


async def read_form(request: Request) -> FormData:
    """Every POST goes through here: same origin, and a token bound to the visitor's session."""
    site = site_of(request)
    if not request.url.path.startswith("/admin"):
        await current_session(request)
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is not None and _origin(source) != site.settings.origin:
        raise CsrfRefused()
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise CsrfRefused()
    form = await request.form()
    if not site.csrf.valid(str(form.get("csrf", "")), _binding(request)):
        raise CsrfRefused()
    return form


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def field(form: FormData, name: str, max_length: int = 1000) -> str:
    value = form.get(name, "")
    return value.strip()[:max_length] if isinstance(value, str) else ""


def local_path(target: str | None, default: str = "/") -> str:
    """Only a path on this site: a `next` parameter must never send anyone elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


# ------------------------------------------------------------------ pages


def redirect(url: str, done: str | None = None) -> RedirectResponse:
    if done:
        url += ("&" if "?" in url else "?") + urlencode({"done": done})
    return RedirectResponse(url, status_code=303)


async def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    site = site_of(request)
    admin_page = request.url.path.startswith("/admin")
    session = None if admin_page else await current_session(request)
    notice = None if admin_page else await _notice_for(request, session)
    done = DONE.get(request.query_params.get("done", ""))
    html = site.templates.get_template(template).render(
        request=request, settings=site.settings, session=session, admin=admin_session(request) if admin_page else None,
        csrf=site.csrf.issue(_binding(request)), notice=notice, done=done, gpc=gpc(request),
        gpc_withdrawn=getattr(request.state, "gpc_withdrawn", None),
        device=device_id(request), cookie_choice_pending=not admin_page and device_id(request) is None,
        **context,
    )
    return HTMLResponse(html, status_code=status)


async def _honour_gpc(request: Request, session: dict) -> list[dict] | None:
    """A signed-in person whose browser sends GPC: their third-party grants are withdrawn at consent, once
    per sign-in (the session remembers it), before the page reads anything; the page shows what went."""
    try:
        withdrawn = await site_of(request).consent.honour_gpc(session["uid"], session["access"])
    except (Unavailable, UpstreamError):
        log.warning("gpc not applied; tried again on the next page")
        return None
    session["gpc"] = True
    _store_session(request, session)
    return withdrawn


async def _notice_for(request: Request, session: dict | None) -> dict | None:
    """The main-page notice; for a signed-in user, this page view is also their continued use of the site."""
    site = site_of(request)
    try:
        notice = await site.policy.notice()
    except (Unavailable, UpstreamError):
        log.warning("notice unavailable")
        notice = None
    if session is None:
        return notice
    newest = notice["version"] if notice else None
    if session.get("activity") is None or (newest is not None and session["activity"] < newest):
        try:
            activity = await site.policy.record_activity(session["access"])
        except (Unavailable, UpstreamError):
            log.warning("continued use not recorded; tried again on the next page")
            return notice
        session["activity"] = activity.get("version") or 0
        _store_session(request, session)
        if activity.get("recorded") and notice is None:
            # Accepted by continued use after the notice's window: show what was accepted, once.
            version = await site.policy.version(site.settings.policy_id, activity["version"])
            notice = {**version, "url": f"/policy/versions/{version['version']}"}
    return notice
