"""The admin console: its own sign-in; the services' admin token stays on the server."""

import asyncio
import re
import secrets
from datetime import UTC, date, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from assent_site import charts
from assent_site.clients.base import Unavailable, UpstreamError
from assent_site.deps import Consent, CookieSealer, Identity, Mailer, Policy, Settings, Support, Telemetry
from assent_site.rendering import diff_lines, unified_diff
from assent_site.web import (
    ADMIN_COOKIE, client_address, delete_cookie, field, local_path, page, read_form, redirect, require_admin,
    set_cookie,
)

router = APIRouter(prefix="/admin", tags=["console"])
_hasher = PasswordHasher()
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
# Failed console sign-ins are counted at identity, in its database, per this account and per client: a
# count every Site replica shares (a sealed cookie cannot count: the guesser simply drops it).
CONSOLE_ACCOUNT = "site-console"


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(request: Request, next: str = Query(default="/admin", max_length=500)) -> HTMLResponse:
    return await page(request, "admin/signin.html", next=local_path(next, "/admin"))


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request, identity: Identity, settings: Settings, sealer: CookieSealer) -> Response:
    form = await read_form(request)
    target = local_path(field(form, "next", 500), "/admin")
    if not target.startswith("/admin"):
        target = "/admin"
    client = client_address(request)
    try:
        await identity.reserve_console_attempt(CONSOLE_ACCOUNT, client)
    except UpstreamError as refused:
        if refused.status != 429:
            raise
        return await page(request, "admin/signin.html", status=429, next=target,
                          error=f"Too many failed sign-ins. Try again in {refused.retry_after or 'a few'} seconds.")
    try:
        # No hash configured: nobody signs in (verify raises on the empty hash).
        _hasher.verify(settings.admin_password_hash or "", str(form.get("password", ""))[:1024])
    except (VerificationError, InvalidHashError):
        return await page(request, "admin/signin.html", status=400, next=target, error="Wrong password.")
    await identity.release_console_attempt(CONSOLE_ACCOUNT, client)
    max_age = int(settings.admin_session_minutes * 60)
    set_cookie(request, ADMIN_COOKIE, sealer.seal({"admin": True, "nonce": secrets.token_urlsafe(16)}),
               max_age, "/admin")
    return redirect(target)


@router.post("/signout")
async def signout(request: Request) -> Response:
    await read_form(request)
    delete_cookie(request, ADMIN_COOKIE, "/admin")
    return redirect("/admin/signin")


@router.get("", response_class=HTMLResponse)
async def console(request: Request) -> HTMLResponse:
    require_admin(request)
    return await page(request, "admin/index.html")


# ------------------------------------------------------------------ policy versions


def _parse_data_use(text: str) -> list[dict]:
    """Lines `purpose processor data,data`: the map as an admin types it."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words:
            continue
        if len(words) not in (2, 3) or not all(_SLUG.match(w) for w in words[:2]):
            raise ValueError(f"Line {number} of the data-use map must read: purpose processor data,data")
        data = [d for d in words[2].split(",") if d] if len(words) == 3 else []
        entries.append({"purpose": words[0], "processor": words[1], "data": data})
    return entries


def _data_use_text(entries: list[dict]) -> str:
    return "\n".join(f"{e['purpose']} {e['processor']} {','.join(e.get('data', []))}".rstrip() for e in entries)


def _draft(form) -> dict:
    return {"title": field(form, "title", 200), "summary": field(form, "summary", 2000),
            "text": str(form.get("text", ""))[:200_000], "material": form.get("material") == "yes",
            "effective_at": field(form, "effective_at", 40), "data_use": str(form.get("data_use", ""))[:20_000]}


def _effective_at(value: str) -> str | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


async def _policy_page(request: Request, policy: Policy, settings: Settings, draft: dict, status: int = 200,
                       **context) -> HTMLResponse:
    versions = await policy.versions(settings.policy_id)
    return await page(request, "admin/policy.html", status=status, versions=versions, draft=draft, **context)


@router.get("/policy", response_class=HTMLResponse)
async def policy(request: Request, policy: Policy, settings: Settings) -> HTMLResponse:
    require_admin(request)
    current = await policy.current(settings.policy_id)
    draft = {"title": current["title"], "summary": "", "text": current["text"], "material": False,
             "effective_at": "", "data_use": _data_use_text(current.get("data_use", []))}
    return await _policy_page(request, policy, settings, draft)


@router.post("/policy/preview", response_class=HTMLResponse)
async def preview(request: Request, policy: Policy, settings: Settings) -> HTMLResponse:
    form = await read_form(request)
    require_admin(request)
    draft = _draft(form)
    current = await policy.current(settings.policy_id)
    try:
        data_use = _parse_data_use(draft["data_use"])
        _effective_at(draft["effective_at"])
    except ValueError as bad:
        return await _policy_page(request, policy, settings, draft, status=400, error=str(bad))
    diff = unified_diff(current["text"], draft["text"], f"version {current['version']}", "draft")
    old_uses = {(u["purpose"], u["processor"], tuple(u.get("data", []))) for u in current.get("data_use", [])}
    new_uses = {(u["purpose"], u["processor"], tuple(u["data"])) for u in data_use}
    return await _policy_page(request, policy, settings, draft, preview=True, lines=diff_lines(diff), current=current,
                              added=sorted(new_uses - old_uses), removed=sorted(old_uses - new_uses))


@router.post("/policy/publish", response_class=HTMLResponse)
async def publish(request: Request, policy: Policy, settings: Settings) -> Response:
    form = await read_form(request)
    require_admin(request)
    draft = _draft(form)
    try:
        version = {"title": draft["title"], "summary": draft["summary"], "text": draft["text"],
                   "material": draft["material"], "data_use": _parse_data_use(draft["data_use"])}
        effective_at = _effective_at(draft["effective_at"])
    except ValueError as bad:
        return await _policy_page(request, policy, settings, draft, status=400, error=str(bad))
    if effective_at:
        version["effective_at"] = effective_at
    try:
        await policy.publish(settings.policy_id, version)
    except UpstreamError as refused:
        return await _policy_page(request, policy, settings, draft, status=400, error=refused.detail or refused.title)
    return redirect("/admin/policy", "published")


# ------------------------------------------------------------------ processors and subjects


async def _processors_page(request: Request, mailer: Mailer, status: int = 200, **context) -> HTMLResponse:
    listed = await mailer.processors()
    return await page(request, "admin/processors.html", status=status, processors=listed, **context)


@router.get("/processors", response_class=HTMLResponse)
async def processors(request: Request, mailer: Mailer) -> HTMLResponse:
    require_admin(request)
    return await _processors_page(request, mailer, values={})


@router.get("/processors/{processor_id}", response_class=HTMLResponse)
async def processor_deliveries(request: Request, mailer: Mailer,
                               processor_id: str = Path(max_length=64, pattern=_SLUG.pattern),
                               cursor: str | None = Query(default=None, max_length=512, pattern=r"^[A-Za-z0-9_-]+$")
                               ) -> HTMLResponse:
    """A processor's webhook deliveries, newest first, each with the consent event that allowed it."""
    require_admin(request)
    deliveries, next_cursor = await mailer.processor_deliveries(processor_id, cursor)
    return await page(request, "admin/processor.html", processor_id=processor_id, deliveries=deliveries,
                      next_cursor=next_cursor)


@router.post("/processors", response_class=HTMLResponse)
async def register_processor(request: Request, mailer: Mailer) -> Response:
    form = await read_form(request)
    require_admin(request)
    values = {name: field(form, name, 500) for name in ("processor_id", "name", "endpoint_url", "purposes")}
    purposes = [p.strip() for p in values["purposes"].split(",") if p.strip()]
    if not _SLUG.match(values["processor_id"]):
        return await _processors_page(request, mailer, status=400, values=values,
                                      error="The id is lower-case letters, digits, '.', '_' or '-'.")
    try:
        await mailer.register_processor(
            values["processor_id"], values["name"], values["endpoint_url"], purposes,
            str(form.get("signing_secret", ""))[:500])
    except UpstreamError as refused:
        return await _processors_page(request, mailer, status=400, values=values, error=refused.detail or refused.title)
    return redirect("/admin/processors", "registered")


@router.get("/subjects", response_class=HTMLResponse)
async def subjects(request: Request, identity: Identity, consent: Consent, mailer: Mailer,
                   q: str = Query(default="", max_length=320)) -> HTMLResponse:
    """A subject's consent history and delivery evidence, by user id or email."""
    require_admin(request)
    q = q.strip()
    if not q:
        return await page(request, "admin/subjects.html", q="")
    subject_id = q
    if not _UUID.match(q):
        try:
            subject_id = (await identity.find_user(q))["id"]
        except UpstreamError:
            return await page(request, "admin/subjects.html", status=404, q=q, error="No account uses that address.")
    history, deliveries = await asyncio.gather(consent.history(subject_id), mailer.deliveries(subject_id))
    return await page(request, "admin/subjects.html", q=q, subject_id=subject_id, history=history,
                      deliveries=deliveries)


@router.get("/erasures", response_class=HTMLResponse)
async def erasures(request: Request, identity: Identity, user_id: str = Query(default="", max_length=64),
                   cursor: str | None = Query(default=None, max_length=512, pattern=r"^[A-Za-z0-9_-]+$")
                   ) -> HTMLResponse:
    """Every erasure request, newest first, with its completion; or one, by user id."""
    require_admin(request)
    user_id = user_id.strip()
    if not user_id:
        return await _erasures_page(request, identity, cursor)
    if not _UUID.match(user_id):
        return await page(request, "admin/erasures.html", status=400, user_id=user_id, error="That is not a user id.")
    try:
        erasure = await identity.erasure(user_id)
    except UpstreamError:
        return await page(request, "admin/erasures.html", status=404, user_id=user_id,
                          error="No erasure was requested for that id.")
    return await page(request, "admin/erasures.html", user_id=user_id, erasure=erasure)


async def _erasures_page(request: Request, identity: Identity, cursor: str | None = None, status: int = 200,
                         **context) -> HTMLResponse:
    listed, next_cursor = await identity.erasures(cursor)
    return await page(request, "admin/erasures.html", status=status, user_id="", erasures=listed,
                      next_cursor=next_cursor, **context)


@router.post("/erasures/address", response_class=HTMLResponse)
async def erase_by_address(request: Request, identity: Identity, support: Support) -> HTMLResponse:
    """A person without an account asks us to erase what they sent us: support's inquiries from that address."""
    form = await read_form(request)
    require_admin(request)
    email = field(form, "email", 254)
    try:
        erased = await support.erase_by_address(email)
    except UpstreamError as refused:
        return await _erasures_page(request, identity, status=400, email=email, error=refused.detail or refused.title)
    return await _erasures_page(request, identity, address_erased=erased)


# ------------------------------------------------------------------ telemetry


@router.get("/telemetry", response_class=HTMLResponse)
async def telemetry(request: Request, days: int = Query(default=14, ge=1, le=90)) -> HTMLResponse:
    require_admin(request)
    return await page(request, "admin/telemetry.html", days=days, charts=charts.CHARTS)


@router.get("/telemetry/{name}.svg")
async def chart(request: Request, name: str, telemetry: Telemetry, settings: Settings,
                days: int = Query(default=14, ge=1, le=90)) -> Response:
    require_admin(request)
    if name not in charts.CHARTS:
        return Response(status_code=404)
    today = datetime.now(UTC).date()
    span = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]

    async def one(day: date) -> charts.Day:
        stats = await telemetry.stats(settings.telemetry_site_id, day, day, list(charts.DIMENSIONS))
        return charts.Day(day, stats)

    try:
        per_day = await asyncio.gather(*(one(d) for d in span))
    except (UpstreamError, Unavailable):
        per_day = [charts.Day(d, {}) for d in span]
    return Response(charts.render(name, per_day), media_type="image/svg+xml",
                    headers={"Content-Security-Policy": _SVG_POLICY, "Cache-Control": "private, max-age=60"})
