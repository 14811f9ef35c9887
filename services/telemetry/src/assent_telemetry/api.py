"""Telemetry's HTTP surface: thin routes that turn requests into use case calls."""

import json
import secrets
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources
from typing import Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from assent_shared.auth import bearer_token, require_admin
from assent_shared.problems import Problem
from assent_shared.text import Line
from assent_telemetry import domain, handlers
from assent_telemetry.deps import ClockDep, ForwardingDep, IngestDep, Settings, Store
from assent_telemetry.handlers import Client, Hit, NotFinal, NotYourSite, RateLimited, UnknownSite

router = APIRouter()
_MAX_DAYS = 366
_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}
AdminDimension = Literal["page", "browser", "os", "device_type", "isp", "referrer", "bot"]
PartnerDimension = Literal["page", "browser", "os", "device_type", "isp", "referrer"]


class HitIn(BaseModel):
    model_config = ConfigDict(extra="ignore")  # newer scripts may send more

    site_id: Line = Field(min_length=1, max_length=64)
    url: Line = Field(max_length=domain.MAX_URL, description="Absolute URL of the page; only its path is kept.")
    referrer: Line | None = Field(default=None, max_length=domain.MAX_URL, description="Only its host is kept.")
    ts: datetime | None = Field(default=None, description="When a queued hit happened; default: on arrival.")
    device_id: str | None = Field(
        default=None, min_length=22, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
        description="The Site's device id (from the tag's `data-device`): the visitor cookie is set only when the "
                    "consent service says this device allowed `cookies`.")


_HITS = TypeAdapter(list[HitIn])
_HIT_SCHEMA = HitIn.model_json_schema()
_COLLECT_BODY = {"requestBody": {"required": True, "content": {
    media: {"schema": {"oneOf": [_HIT_SCHEMA, {"type": "array", "items": _HIT_SCHEMA, "maxItems": 100}]}}
    for media in ("application/json", "text/plain")
}}}


def _parse_hits(raw: bytes, max_batch: int) -> list[HitIn]:
    try:
        decoded = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep, a number of too many digits
        raise Problem(400, "Malformed JSON", "The body must be a JSON object or an array of them.")
    batch = decoded if isinstance(decoded, list) else [decoded]
    if not 1 <= len(batch) <= max_batch:
        raise Problem(422, "Bad batch size", f"Send between 1 and {max_batch} hits.")
    try:
        return _HITS.validate_python(batch)
    except ValidationError as exc:
        errors = [{"loc": ["body", *map(str, e["loc"])], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise Problem(422, "Invalid hit", "The body does not match the schema.", errors=errors)


def _cors(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true", "Vary": "Origin"}


@router.options("/v1/collect", status_code=204, include_in_schema=False)
async def collect_preflight(request: Request, cfg: Settings) -> Response:
    origin = request.headers.get("origin", "")
    if not any(origin in origins for origins in cfg.sites.values()):
        raise Problem(403, "Origin not allowed")
    return Response(status_code=204, headers={
        **_cors(origin), "Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "86400",
    })


@router.post("/v1/collect", status_code=202, openapi_extra=_COLLECT_BODY,
             responses={400: {"description": "Malformed JSON"}, 403: {"description": "Origin not allowed"},
                        413: {"description": "Body too large"}, 422: {"description": "Invalid hit or unknown site"},
                        429: {"description": "Too many hits from this network"}})
async def collect(request: Request, store: Store, cfg: Settings, ingest: IngestDep, clock: ClockDep,
                  forwarding: ForwardingDep) -> Response:
    # The shared BodyLimit middleware has refused a body over `max_body_bytes` already (413).
    hits = _parse_hits(await request.body(), cfg.max_batch)
    origin = request.headers.get("origin")
    if origin is not None and any(origin not in cfg.sites.get(h.site_id, ()) for h in hits):
        raise Problem(403, "Origin not allowed", "This origin may not send hits for this site.")
    devices = {h.device_id for h in hits}
    allowed = len(devices) == 1 and await handlers.device_allows_cookie(store, devices.pop())
    with_cookie = domain.may_use_cookie(allowed, gpc=request.headers.get("sec-gpc") == "1",
                                        dnt=request.headers.get("dnt") == "1")
    cookie_id = request.cookies.get(cfg.visitor_cookie) if with_cookie else None
    if with_cookie and not domain.valid_cookie_id(cookie_id):
        cookie_id = secrets.token_urlsafe(16)
    client = Client(ip=forwarding.client_address(request),
                    user_agent=request.headers.get("user-agent", ""), cookie_id=cookie_id)
    try:
        accepted = await handlers.collect_hits([Hit(h.site_id, h.url, h.referrer, h.ts) for h in hits], client,
                                               settings=cfg, ingest=ingest, clock=clock)
    except UnknownSite:
        raise Problem(422, "Unknown site", "No site with this id is configured.")
    except domain.InvalidHit as exc:
        raise Problem(422, "Invalid hit", str(exc), errors=[{"loc": ["body", exc.field], "msg": str(exc)}])
    except RateLimited as exc:
        raise Problem(429, "Too many hits from this network", "Slow down.",
                      headers={"Retry-After": str(exc.retry_after)})
    response = Response(json.dumps({"accepted": accepted}), status_code=202, media_type="application/json",
                        headers=_cors(origin) if origin else None)
    secure = forwarding.scheme(request) == "https"  # TLS ends at the proxy: its X-Forwarded-Proto says so
    if cookie_id is not None:
        response.set_cookie(cfg.visitor_cookie, cookie_id, max_age=cfg.visitor_cookie_days * 86400,
                            path="/v1/collect", httponly=True, secure=secure, samesite="lax")
    elif cfg.visitor_cookie in request.cookies:
        # Consent withdrawn, or an opt-out signal: the id goes away with it.
        response.delete_cookie(cfg.visitor_cookie, path="/v1/collect", httponly=True, secure=secure, samesite="lax")
    return response


@cache
def _script() -> str:
    return resources.files("assent_telemetry").joinpath("script.js").read_text()


@router.get("/v1/script.js", response_class=Response, responses={200: {"content": {"text/javascript": {}}}})
async def script() -> Response:
    return Response(_script(), media_type="text/javascript",
                    headers={"Cache-Control": "public, max-age=3600"})


def _range(first: date | None, last: date | None) -> tuple[date, date]:
    first = first or last or datetime.now(UTC).date()
    last = last or first
    if last < first or (last - first).days >= _MAX_DAYS:
        raise Problem(422, "Bad date range", f"`from` must not be after `to`, and span at most {_MAX_DAYS} days.")
    return first, last


class GroupOut(BaseModel):
    value: str
    hits: int
    visitors: int


class HourOut(BaseModel):
    at: datetime
    hits: int


class StatsOut(BaseModel):
    site_id: str
    from_: date = Field(serialization_alias="from")
    to: date
    pageviews: int
    visitors: int = Field(description="Distinct visitors per day, summed over the days of the range.")
    bots: int = Field(description="Hits by crawlers and programs, counted apart from page views.")
    hourly: list[HourOut]
    breakdowns: dict[str, list[GroupOut]]


@router.get("/v1/stats", response_model=StatsOut, response_model_by_alias=True,
            responses={401: {"description": "Admin credentials required"}})
async def stats(request: Request, site_id: str = Query(max_length=64), first: date | None = Query(None, alias="from"),
                last: date | None = Query(None, alias="to"), breakdown: list[AdminDimension] = Query(default=[]),
                limit: int = Query(20, ge=1, le=1000), *, store: Store, cfg: Settings) -> StatsOut:
    require_admin(request, cfg.admin_token)
    first, last = _range(first, last)
    result = await handlers.show_stats(store, site_id, first, last, breakdown, limit)
    return StatsOut(
        site_id=site_id, from_=first, to=last, pageviews=result.pageviews, visitors=result.visitors, bots=result.bots,
        hourly=[HourOut(at=at, hits=hits) for at, hits in result.hourly],
        breakdowns={d: [GroupOut(value=g.value, hits=g.hits, visitors=g.visitors) for g in groups]
                    for d, groups in result.breakdowns.items()},
    )


class DayOut(BaseModel):
    day: date
    groups: list[GroupOut] = Field(description="Only groups of at least k counted networks (README: partner reports).")
    hits: int = Field(description="Sum over the groups shown, never over suppressed ones.")
    visitors: int = Field(description="Counted networks of the groups shown (each counts in one group only).")


class ReportOut(BaseModel):
    site_id: str
    dimension: str
    k: int
    days: list[DayOut]


@router.get("/v1/reports/aggregate", response_model=ReportOut,
            responses={401: {"description": "Partner credentials required"},
                       403: {"description": "A site the partner is not scoped to"},
                       422: {"description": "Unknown site, bad range, or a day that is not final yet"}})
async def aggregate_report(request: Request, site_id: str = Query(max_length=64), dimension: PartnerDimension = Query(),
                           first: date = Query(alias="from"), last: date | None = Query(None, alias="to"),
                           *, store: Store, cfg: Settings, clock: ClockDep) -> ReportOut:
    partner_id = handlers.partner_of(bearer_token(request), settings=cfg)
    if partner_id is None:
        raise Problem(401, "Partner credentials required", headers=_UNAUTHORIZED)
    first, last = _range(first, last)
    try:
        days = await handlers.report_to_partner(store, partner_id, site_id, first, last, dimension, settings=cfg,
                                                clock=clock)
    except UnknownSite:
        raise Problem(422, "Unknown site", "No site with this id is configured.")
    except NotYourSite:
        raise Problem(403, "Not your site", "This partner may not see reports of this site.")
    except NotFinal as exc:
        raise Problem(422, "Day not final", "Reports cover whole days that can no longer change.",
                      latest_final_day=exc.latest_final_day.isoformat())
    return ReportOut(site_id=site_id, dimension=dimension, k=cfg.k_anonymity, days=[
        DayOut(day=d.day, hits=sum(c.hits for c in d.cells), visitors=sum(c.visitors for c in d.cells),
               groups=[GroupOut(value=c.value, hits=c.hits, visitors=c.visitors) for c in d.cells])
        for d in days
    ])
