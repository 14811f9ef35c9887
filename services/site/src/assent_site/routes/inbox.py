"""The console's inbox of support: inquiries to list, filter, read, answer and close; feedback counts."""

from datetime import UTC, date, datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from assent_site import charts
from assent_site.clients.base import UpstreamError
from assent_site.deps import Support
from assent_site.routes.contact import TOPICS
from assent_site.web import page, read_form, redirect, require_admin

router = APIRouter(prefix="/admin", tags=["console"])
STATUSES = ("open", "answered", "closed")
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_CURSOR = r"^[A-Za-z0-9_-]+$"
_SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
MAX_REPLY = 20_000


@router.get("/inquiries", response_class=HTMLResponse)
async def inbox(request: Request, support: Support, status: Literal["", "open", "answered", "closed"] = "",
                topic: Literal["", "question", "support_request", "privacy_question", "feedback"] = "",
                cursor: str | None = Query(default=None, max_length=512, pattern=_CURSOR)) -> HTMLResponse:
    """Newest first, filtered by status and topic, a page at a time."""
    require_admin(request)
    found, next_cursor = await support.inbox(status or None, topic or None, cursor)
    return await page(request, "admin/inquiries.html", inquiries=found, next_cursor=next_cursor,
                      status_filter=status, topic=topic, statuses=STATUSES, topics=TOPICS)


@router.get("/inquiries/{inquiry_id}", response_class=HTMLResponse)
async def thread(request: Request, support: Support, inquiry_id: str = Path(pattern=_UUID)) -> HTMLResponse:
    require_admin(request)
    return await _thread_page(request, support, inquiry_id)


async def _thread_page(request: Request, support: Support, inquiry_id: str, status: int = 200,
                       **context) -> HTMLResponse:
    found = await support.admin_thread(inquiry_id)
    return await page(request, "admin/inquiry.html", status=status, thread=found, topics=TOPICS, **context)


@router.post("/inquiries/{inquiry_id}/reply", response_class=HTMLResponse)
async def reply(request: Request, support: Support, inquiry_id: str = Path(pattern=_UUID)) -> Response:
    form = await read_form(request)
    require_admin(request)
    body = str(form.get("body", "")).strip()
    if not body or len(body) > MAX_REPLY:
        return await _thread_page(request, support, inquiry_id, status=400, body=body[:MAX_REPLY],
                                  error=f"Write a reply of at most {MAX_REPLY} characters.")
    try:
        await support.reply(inquiry_id, body)
    except UpstreamError as refused:
        if refused.status == 404:
            raise
        return await _thread_page(request, support, inquiry_id, status=400, body=body,
                                  error=refused.detail or refused.title)
    return redirect(f"/admin/inquiries/{inquiry_id}", "replied")


@router.post("/inquiries/{inquiry_id}/close", response_class=HTMLResponse)
async def close(request: Request, support: Support, inquiry_id: str = Path(pattern=_UUID)) -> Response:
    await read_form(request)
    require_admin(request)
    await support.close(inquiry_id)
    return redirect(f"/admin/inquiries/{inquiry_id}", "closed")


def periods(last: date, days: int, bucket: str) -> tuple[date, date, list[date]]:
    """The `days` up to `last` and the periods support counts them in (days, weeks from Monday, months)."""
    first = last - timedelta(days=days - 1)
    if bucket == "week":
        first -= timedelta(days=first.weekday())
        step = [first + timedelta(weeks=n) for n in range((last - first).days // 7 + 1)]
    elif bucket == "month":
        first = first.replace(day=1)
        step, month = [], first
        while month <= last:
            step.append(month)
            month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    else:
        step = [first + timedelta(days=n) for n in range(days)]
    return first, last, step


@router.get("/feedback", response_class=HTMLResponse)
async def feedback(request: Request, support: Support, days: int = Query(default=30, ge=1, le=366),
                   bucket: Literal["day", "week", "month"] = "day") -> HTMLResponse:
    """What people write to us about, counted by topic over time: no person and no text."""
    require_admin(request)
    first, last, _ = periods(datetime.now(UTC).date(), days, bucket)
    counts = await support.feedback(first, last, bucket)
    totals = {t: sum(c["count"] for c in counts if c["topic"] == t) for t in TOPICS}
    return await page(request, "admin/feedback.html", days=days, bucket=bucket, totals=totals, topics=TOPICS,
                      counts=sorted(counts, key=lambda c: (c["period"], c["topic"]), reverse=True))


@router.get("/feedback.svg")
async def feedback_chart(request: Request, support: Support, days: int = Query(default=30, ge=1, le=366),
                         bucket: Literal["day", "week", "month"] = "day") -> Response:
    require_admin(request)
    first, last, steps = periods(datetime.now(UTC).date(), days, bucket)
    counts = await support.feedback(first, last, bucket)
    # Not cached: the page's totals and its chart must show the same messages.
    return Response(charts.topic_counts(steps, counts, TOPICS), media_type="image/svg+xml",
                    headers={"Content-Security-Policy": _SVG_POLICY})
