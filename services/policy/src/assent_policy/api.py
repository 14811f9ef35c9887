"""Policy's HTTP surface: thin routes that turn requests into use case calls."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from assent_policy import domain, handlers
from assent_policy.deps import Settings, Store
from assent_policy.handlers import NotFound, NotInForce, VersionConflict
from assent_shared import pages
from assent_shared.auth import Principal, authenticate, require_admin
from assent_shared.bootstrap import Runtime
from assent_shared.problems import Problem
from assent_shared.wiring import runtime
from assent_shared.text import MULTI_LINE, SINGLE_LINE

router = APIRouter()
_bearer = HTTPBearer(auto_error=False, description="An access token from identity, or the admin token.")
_INT4 = 2_147_483_647
_SLUG = r"^[a-z0-9][a-z0-9_.-]{0,63}$"

PolicyId = Annotated[str, Path(pattern=_SLUG, description="The policy document, e.g. `privacy`.")]
VersionNumber = Annotated[int, Path(ge=1, le=_INT4)]


def _text(max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


# A title goes into mail headers (the newsletter of a material change): one line only.
Title = Annotated[str, _text(200), SINGLE_LINE]
Summary = Annotated[str, _text(2000), MULTI_LINE]
Markdown = Annotated[str, _text(200_000), MULTI_LINE]
Slug = Annotated[str, StringConstraints(pattern=_SLUG)]


class DataUseModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: Slug = Field(description="What the data is used for, e.g. `newsletter`.")
    processor: Slug = Field(description="`first_party` or the id of a third-party processor.")
    data: list[Slug] = Field(default_factory=list, max_length=32, description="Categories of data, e.g. `email`.")


class VersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Title
    summary: Summary = Field(description="What changed, in a sentence or two.")
    text: Markdown = Field(description="The policy in Markdown.")
    material: bool = False
    effective_at: AwareDatetime | None = Field(default=None, description="When it takes effect; default now.")
    data_use: list[DataUseModel] = Field(
        default_factory=list, max_length=200,
        description="Which processor receives what for which purpose. Declaring a processor grants no consent.",
    )
    version: int | None = Field(
        default=None, ge=1, le=_INT4, description="The number this version must get; a published one is refused."
    )


class VersionSummaryOut(BaseModel):
    policy_id: str
    version: int
    title: str
    summary: str
    material: bool
    data_use: list[DataUseModel]
    effective_at: datetime
    published_at: datetime
    status: domain.Status


class VersionOut(VersionSummaryOut):
    text: str


class DiffOut(BaseModel):
    policy_id: str
    from_version: int
    to_version: int
    diff: str = Field(description="Unified diff of the Markdown texts.")
    data_use_added: list[DataUseModel]
    data_use_removed: list[DataUseModel]


class NoticeOut(BaseModel):
    policy_id: str
    version: int
    title: str
    summary: str
    material: bool
    effective_at: datetime
    url: str


class AcceptanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=_INT4, description="The version the user read and accepts.")


class AcceptanceOut(BaseModel):
    user_id: UUID
    policy_id: str
    version: int
    how: domain.AcceptanceHow
    accepted_at: datetime


class ActivityOut(BaseModel):
    policy_id: str
    version: int | None = Field(description="The version in force.")
    recorded: AcceptanceOut | None = Field(description="The continued-use acceptance this call recorded, if any.")


async def principal(request: Request, rt: Runtime = Depends(runtime),
                    _credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
    return await authenticate(request, rt.verifier, rt.settings.admin_token)


def signed_in_user(who: Principal = Depends(principal)) -> UUID:
    if who.user_id is None:
        raise Problem(403, "A signed-in user is required", "Only users accept the policy, for themselves.")
    return who.user_id


def _uses(entries: tuple[domain.DataUse, ...]) -> list[DataUseModel]:
    return [DataUseModel(purpose=u.purpose, processor=u.processor, data=list(u.data)) for u in entries]


def _summary_fields(v: domain.Version, current: int | None) -> dict:
    return {"policy_id": v.policy_id, "version": v.version, "title": v.title, "summary": v.summary,
            "material": v.material, "data_use": _uses(v.data_use), "effective_at": v.effective_at,
            "published_at": v.published_at, "status": domain.status(v, current)}


def _version_out(v: domain.Version, current: int | None) -> VersionOut:
    return VersionOut(**_summary_fields(v, current), text=v.text)


def _acceptance_out(a: domain.Acceptance) -> AcceptanceOut:
    return AcceptanceOut(user_id=a.user_id, policy_id=a.policy_id, version=a.version, how=a.how,
                         accepted_at=a.accepted_at)


_PROBLEM_SCHEMA = {"type": "object", "required": ["type", "title", "status"], "properties": {
    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
    "detail": {"type": "string"}}}
_MEANINGS = {400: "Body is not JSON", 401: "Not signed in", 403: "Not allowed", 404: "No such policy or version",
             409: "Conflicts with a published version", 422: "Invalid request"}


def _problems(*codes: int) -> dict[int | str, dict]:
    """Documents error answers as what they are: RFC 9457 problem+json."""
    return {code: {"description": _MEANINGS[code], "content": {"application/problem+json": {"schema": _PROBLEM_SCHEMA}}}
            for code in codes}


@router.post("/v1/policies/{policy_id}/versions", status_code=201, response_model=VersionOut,
             responses=_problems(400, 401, 403, 409, 422))
async def publish(policy_id: PolicyId, body: VersionIn, request: Request, store: Store, settings: Settings,
                  _credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> VersionOut:
    require_admin(request, settings.admin_token)
    uses = tuple(domain.DataUse(u.purpose, u.processor, tuple(u.data)) for u in body.data_use)
    new = domain.NewVersion(body.title, body.summary, body.text, body.material, uses, body.effective_at)
    try:
        created = await handlers.publish_version(store, policy_id, new, body.version)
    except domain.InvalidInput as exc:
        raise Problem(422, "Invalid version", str(exc), errors=[{"loc": ["body", exc.field], "msg": str(exc)}])
    except (VersionConflict, domain.ScheduleConflict) as exc:
        raise Problem(409, "Version not published", str(exc))
    return _version_out(created, created.version if created.in_force_since else None)


@router.get("/v1/policies/{policy_id}/versions", response_model=list[VersionSummaryOut], responses=_problems(422))
async def list_versions(policy_id: PolicyId, request: Request, response: Response,
                        store: Store, requested: pages.Page = Depends(pages.page)) -> list[VersionSummaryOut]:
    """Oldest first, a page at a time (`limit`, `cursor`; the next page is in `Link`)."""
    after = requested.position(int)
    found, current = await handlers.list_versions(store, policy_id, after[0] if after else None,
                                                  requested.fetch_limit())
    shown = pages.respond(request, response, found, requested, key=lambda v: [v.version])
    return [VersionSummaryOut(**_summary_fields(v, current)) for v in shown]


@router.get("/v1/policies/{policy_id}/current", response_model=VersionOut, responses=_problems(404, 422))
async def current(policy_id: PolicyId, store: Store) -> VersionOut:
    found = await handlers.current_version(store, policy_id)
    if found is None:
        raise Problem(404, "No version in force", f"Policy {policy_id} has no version in force.")
    return _version_out(found, found.version)


@router.get("/v1/policies/{policy_id}/versions/{version}", response_model=VersionOut,
            responses=_problems(404, 422))
async def get_version(policy_id: PolicyId, version: VersionNumber, store: Store) -> VersionOut:
    try:
        found, current_number = await handlers.get_version(store, policy_id, version)
    except NotFound as exc:
        raise Problem(404, "No such version", str(exc))
    return _version_out(found, current_number)


@router.api_route("/v1/policies/{policy_id}/versions/{version}", methods=["PUT", "PATCH", "DELETE"],
                  include_in_schema=False)
async def refuse_change(policy_id: str, version: str) -> None:
    raise Problem(405, "Published versions are immutable",
                  f"Version {version} of {policy_id} cannot be changed or deleted; publish a new version instead "
                  f"with POST /v1/policies/{policy_id}/versions.", headers={"Allow": "GET"})


@router.get("/v1/policies/{policy_id}/diff", response_model=DiffOut, responses=_problems(404, 422))
async def diff(policy_id: PolicyId, from_version: int = Query(alias="from", ge=1, le=_INT4),
               to_version: int = Query(alias="to", ge=1, le=_INT4), *, store: Store) -> DiffOut:
    try:
        found = await handlers.diff_versions(store, policy_id, from_version, to_version)
    except NotFound as exc:
        raise Problem(404, "No such version", str(exc))
    return DiffOut(policy_id=found.policy_id, from_version=found.from_version, to_version=found.to_version,
                   diff=found.text_diff, data_use_added=_uses(found.data_use_added),
                   data_use_removed=_uses(found.data_use_removed))


@router.get("/v1/notice", response_model=NoticeOut,
            responses={204: {"description": "No recent change"}, 304: {"description": "Not modified"},
                       **_problems(422)})
async def notice(store: Store, settings: Settings, if_none_match: str | None = Header(default=None)) -> Response:
    found = await handlers.show_notice(store, settings=settings)
    cache = {"Cache-Control": f"public, max-age={settings.notice_max_age_seconds}"}
    if found is None:
        return Response(status_code=204, headers=cache)
    headers = {**cache, "ETag": found.etag}
    if domain.etag_matches(if_none_match, found.etag):
        return Response(status_code=304, headers=headers)
    body = NoticeOut(policy_id=found.policy_id, version=found.version, title=found.title, summary=found.summary,
                     material=found.material, effective_at=found.effective_at, url=found.url)
    return Response(body.model_dump_json(), media_type="application/json", headers=headers)


@router.post("/v1/policies/{policy_id}/acceptances", response_model=AcceptanceOut, status_code=201,
             responses={200: {"description": "Accepted before"}, **_problems(400, 401, 403, 404, 409, 422)})
async def accept(policy_id: PolicyId, body: AcceptanceIn, response: Response, store: Store,
                 user_id: UUID = Depends(signed_in_user)) -> AcceptanceOut:
    try:
        found, created = await handlers.accept_version(store, user_id, policy_id, body.version)
    except NotFound as exc:
        raise Problem(404, "No such version", str(exc))
    except NotInForce as exc:
        raise Problem(409, "Version not in force", str(exc))
    if not created:
        response.status_code = 200
    return _acceptance_out(found)


@router.post("/v1/activity", response_model=ActivityOut, responses=_problems(401, 403))
async def activity(store: Store, settings: Settings, user_id: UUID = Depends(signed_in_user)) -> ActivityOut:
    number, recorded = await handlers.record_activity(store, user_id, settings=settings)
    return ActivityOut(policy_id=settings.policy_id, version=number,
                       recorded=_acceptance_out(recorded) if recorded else None)


@router.get("/v1/users/{user_id}/acceptances", response_model=list[AcceptanceOut],
            responses=_problems(401, 403, 422))
async def user_acceptances(user_id: UUID, request: Request, response: Response,
                           store: Store, who: Principal = Depends(principal),
                           requested: pages.Page = Depends(pages.page)) -> list[AcceptanceOut]:
    """Oldest first, a page at a time (`limit`, `cursor`; the next page is in `Link`)."""
    if not who.may_act_for(user_id):
        raise Problem(403, "Not your acceptances", "A user reads only their own acceptances.")
    found = await handlers.list_acceptances(store, user_id, requested.position(datetime.fromisoformat, str, int),
                                            requested.fetch_limit())
    shown = pages.respond(request, response, found, requested,
                          key=lambda a: [a.accepted_at.isoformat(), a.policy_id, a.version])
    return [_acceptance_out(a) for a in shown]
