"""Contact us: the form (anonymous or signed in), the thread a person reads and answers, their inquiries."""

import re

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from assent_site.clients.base import UpstreamError
from assent_site.deps import Support
from assent_site.routes.account import locale_of
from assent_site.web import (
    client_address, current_session, field, page, read_form, redirect, require_session,
)

router = APIRouter(tags=["pages"])
TOPICS = {"question": "A question", "support_request": "A support request",
          "privacy_question": "A question about privacy or my data", "feedback": "Feedback"}
MAX_MESSAGE = 5000
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TOKEN = r"^[A-Za-z0-9_-]{20,100}$"


def _why(refused: UpstreamError) -> str:
    if refused.status == 429:
        return "You sent us several messages just now. Please try again in an hour."
    return refused.detail or refused.title


@router.get("/contact", response_class=HTMLResponse)
async def contact_page(request: Request) -> HTMLResponse:
    return await page(request, "contact.html", topics=TOPICS, values={"topic": "question"})


@router.post("/contact", response_class=HTMLResponse)
async def send_inquiry(request: Request, support: Support) -> Response:
    """An address goes to support only if the person typed one, or (signed in) ticked that they want a reply."""
    form = await read_form(request)
    session = await current_session(request)
    values = {"topic": field(form, "topic", 40), "message": str(form.get("message", "")).strip()[:MAX_MESSAGE + 1],
              "email": "" if session else field(form, "email", 254), "want_reply": form.get("want_reply") == "yes"}
    if values["topic"] not in TOPICS:
        return await page(request, "contact.html", status=400, topics=TOPICS, values=values,
                          error="Choose what your message is about.")
    if not values["message"] or len(values["message"]) > MAX_MESSAGE:
        return await page(request, "contact.html", status=400, topics=TOPICS, values=values,
                          error=f"Write a message of at most {MAX_MESSAGE} characters.")
    inquiry = {"topic": values["topic"], "message": values["message"], "locale": locale_of(request),
               "website": field(form, "website", 2000) or None}
    if session:
        inquiry["want_reply"] = values["want_reply"]
    elif values["email"]:
        inquiry["email"] = values["email"]
    try:
        accepted = await support.submit(
            {k: v for k, v in inquiry.items() if v is not None}, session["access"] if session else None,
            client_address(request))
    except UpstreamError as refused:
        return await page(request, "contact.html", status=429 if refused.status == 429 else 400, topics=TOPICS,
                          values=values, error=_why(refused))
    return await page(request, "contact_sent.html", accepted=accepted, topic=TOPICS[values["topic"]],
                      reply=bool(values["email"]) or (session is not None and values["want_reply"]))


@router.get("/contact/reply", response_class=HTMLResponse)
async def thread_page(request: Request, support: Support, inquiry: str = Query(max_length=36, pattern=_UUID.pattern),
                      token: str | None = Query(default=None, pattern=_TOKEN)) -> HTMLResponse:
    """A reply mail's link (no account needed), or a signed-in author's own inquiry."""
    session = await current_session(request)
    if token is None and session is None:
        await require_session(request)
    thread = await support.thread(inquiry, token, None if token else session["access"])
    return await page(request, "contact_thread.html", thread=thread, token=token, topics=TOPICS)


@router.post("/contact/reply", response_class=HTMLResponse)
async def answer(request: Request, support: Support) -> Response:
    form = await read_form(request)
    session = await current_session(request)
    inquiry, token = field(form, "inquiry", 36), field(form, "token", 100) or None
    if not _UUID.match(inquiry) or (token is not None and not re.match(_TOKEN, token)):
        return redirect("/contact")
    if token is None:
        session = await require_session(request)
    message = str(form.get("message", "")).strip()
    access = None if token else session["access"]
    error = None
    if not message or len(message) > MAX_MESSAGE:
        error = f"Write a message of at most {MAX_MESSAGE} characters."
    else:
        try:
            await support.answer(inquiry, message, token, access, client_address(request))
        except UpstreamError as refused:
            if refused.status == 404:
                raise
            error = "This conversation is closed: please send a new message." if refused.status == 409 \
                else _why(refused)
    if error:
        thread = await support.thread(inquiry, token, access)
        return await page(request, "contact_thread.html", status=400, thread=thread, token=token, topics=TOPICS,
                          message=message[:MAX_MESSAGE], error=error)
    target = f"/contact/reply?inquiry={inquiry}" + (f"&token={token}" if token else "")
    return redirect(target, "answer_sent")


@router.get("/contact/mine", response_class=HTMLResponse)
async def my_inquiries(request: Request, support: Support) -> HTMLResponse:
    session = await require_session(request)
    threads = await support.threads_of(session["uid"], session["access"])
    return await page(request, "contact_mine.html", threads=threads[::-1], topics=TOPICS)
