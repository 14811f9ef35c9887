"""The main page, the policy (current, earlier versions, diffs) and the unsubscribe landing page."""

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from assent_site.clients.base import UpstreamError
from assent_site.deps import Mailer, Policy, Settings
from assent_site.rendering import diff_lines
from assent_site.web import field, page, read_form

router = APIRouter(tags=["pages"])


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, policy: Policy, settings: Settings) -> HTMLResponse:
    current = await policy.current(settings.policy_id)
    return await page(request, "index.html", current=current)


@router.get("/policy", response_class=HTMLResponse)
async def policy(request: Request, policy: Policy, settings: Settings) -> HTMLResponse:
    current = await policy.current(settings.policy_id)
    versions = await policy.versions(settings.policy_id)
    return await page(request, "policy.html", version=current, versions=versions, current=True)


@router.get("/policy/versions/{number}", response_class=HTMLResponse)
async def policy_version(request: Request, number: int, policy: Policy, settings: Settings) -> HTMLResponse:
    version = await policy.version(settings.policy_id, number)
    versions = await policy.versions(settings.policy_id)
    return await page(request, "policy.html", version=version, versions=versions, current=False)


@router.get("/policy/diff", response_class=HTMLResponse)
async def policy_diff(request: Request, first: int = Query(alias="from", ge=1, le=2**31 - 1),
                      last: int = Query(alias="to", ge=1, le=2**31 - 1), *, policy: Policy,
                      settings: Settings) -> HTMLResponse:
    versions = await policy.versions(settings.policy_id)
    diff = await policy.diff(settings.policy_id, first, last)
    return await page(request, "policy_diff.html", diff=diff, lines=diff_lines(diff["diff"]), versions=versions)


@router.get("/unsubscribe", response_class=HTMLResponse)
async def unsubscribe_page(request: Request, token: str = Query(default="", max_length=400)) -> HTMLResponse:
    """The mail's visible link: a GET only asks, so a mail scanner following links unsubscribes no one."""
    return await page(request, "unsubscribe.html", token=token, done_unsubscribe=False)


@router.post("/unsubscribe", response_class=HTMLResponse)
async def unsubscribe(request: Request, mailer: Mailer) -> HTMLResponse:
    form = await read_form(request)
    token = field(form, "token", 400)
    try:
        await mailer.unsubscribe(token)
    except UpstreamError as refused:
        return await page(request, "unsubscribe.html", status=400, token=token, done_unsubscribe=False,
                          error=refused.detail or refused.title)
    return await page(request, "unsubscribe.html", token="", done_unsubscribe=True)


@router.get("/health/live", include_in_schema=True)
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready", include_in_schema=True)
async def ready() -> dict[str, str]:
    # The Site holds no state of its own: it is ready when it runs; pages say when a service is down.
    return {"status": "ready"}
