"""Support's HTTP surface: the contact form, the author's view of a thread, the admin inbox, feedback counts."""

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID, uuid4

from email_validator import EmailNotValidError, validate_email
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from assent_shared import pages
from assent_shared.auth import Principal, authenticate, bearer_token, require_admin
from assent_shared.bootstrap import Runtime
from assent_shared.problems import Problem
from assent_shared.wiring import runtime
from assent_support import domain, handlers
from assent_support.deps import Owner, Personal, Settings, Store
from assent_support.handlers import Closed, Forbidden, NotFound, RateLimited
from assent_support.settings import SupportSettings

router = APIRouter()
_bearer = HTTPBearer(auto_error=False, description="An access token from identity, or the admin token.")
_MAX_DAYS = 3660


def _storable(value: str) -> str:
    # PostgreSQL text takes neither NUL nor lone surrogates: a 422, not a 500.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode") from exc
    return value


def _address(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError("is not a valid email address") from exc


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200_000),
                 AfterValidator(_storable)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254), AfterValidator(_address)]
Token = Annotated[str, StringConstraints(min_length=20, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


class InquiryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    topic: domain.Category = Field(description="question, support_request, privacy_question or feedback.")
    message: Text = Field(description="What the person wants to tell us (ASSENT_MAX_MESSAGE_CHARS at most).")
    email: Email | None = Field(default=None, description="Only if the person wants a reply and is not signed in.")
    want_reply: bool = Field(default=False, description="Signed in: reply by mail to the account's address.")
    locale: str | None = Field(default=None, max_length=35, pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$",
                               description="Language of the replies' mails (BCP 47); en unless de.")
    website: str | None = Field(default=None, max_length=2000,
                                description="Spam trap: a form field hidden from people. Leave it out or empty.")


class InquiryAccepted(BaseModel):
    id: UUID
    reference: str = Field(description="Shown to the person; quote it when writing again.")


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: Text
    token: Token | None = Field(default=None, description="The token of a reply mail's link, when not signed in.")


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: Text


class MessageOut(BaseModel):
    id: UUID
    author: domain.Author
    body: str
    created_at: datetime


class InquiryOut(BaseModel):
    id: UUID
    reference: str
    topic: str
    status: str
    signed_in: bool
    reply_by_mail: bool
    email: str | None = Field(description="The address the person volunteered (admin views only).")
    locale: str
    received_at: datetime
    updated_at: datetime


class ThreadOut(InquiryOut):
    messages: list[MessageOut]


class TopicCountOut(BaseModel):
    period: date
    topic: str
    count: int


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email


def admin(request: Request, rt: Runtime = Depends(runtime),
          _credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    require_admin(request, rt.settings.admin_token)


async def maybe_user(request: Request, rt: Runtime = Depends(runtime),
                     _credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> UUID | None:
    """The signed-in user, or None for an anonymous visitor; a bad token is a 401, never anonymous."""
    if bearer_token(request) is None:
        return None
    who = await authenticate(request, rt.verifier, rt.settings.admin_token)
    if who.is_admin:
        raise Problem(403, "Not for admins", "Admins answer inquiries in the inbox; they do not send them.")
    return who.user_id


def _client(request: Request, settings: SupportSettings) -> str:
    forwarded = request.headers.get("x-forwarded-for") if settings.trust_forwarded_for else None
    if forwarded:
        return forwarded.split(",")[-1].strip()
    return request.client.host if request.client else "unknown"


def _bounded(text: str, limit: int, field: str) -> str:
    if len(text) > limit:
        raise Problem(422, "Message too long", f"At most {limit} characters.",
                      errors=[{"loc": ["body", field], "msg": f"at most {limit} characters"}])
    return text


def _inquiry_out(i: domain.Inquiry, with_email: bool) -> dict:
    return {"id": i.inquiry_id, "reference": i.reference, "topic": i.category, "status": i.status,
            "signed_in": i.user_id is not None, "reply_by_mail": i.reply_by_mail,
            "email": i.email if with_email else None, "locale": i.locale, "received_at": i.received_at,
            "updated_at": i.updated_at}


def _thread_out(t: domain.Thread, with_email: bool) -> ThreadOut:
    return ThreadOut(**_inquiry_out(t.inquiry, with_email), messages=[
        MessageOut(id=m.message_id, author=m.author, body=m.body, created_at=m.created_at) for m in t.messages
    ])


_PROBLEM = {"application/problem+json": {"schema": {"type": "object", "required": ["title", "status"]}}}


def _problems(**codes: str) -> dict[int | str, dict]:
    return {int(code[1:]): {"description": text, "content": _PROBLEM} for code, text in codes.items()}


def _rate_limited(exc: RateLimited) -> Problem:
    return Problem(429, "Too many messages", "Please try again later.", headers={"Retry-After": str(exc.retry_after)})


@router.post("/v1/inquiries", status_code=202, response_model=InquiryAccepted,
             responses=_problems(_401="Bad token", _403="Not allowed", _422="Invalid inquiry", _429="Rate limited"))
async def submit_inquiry(body: InquiryIn, request: Request, store: Store, settings: Settings,
                         user_id: UUID | None = Depends(maybe_user)) -> InquiryAccepted:
    """Contact us, anonymous or signed in. An address is used only if given (or, signed in, with want_reply)."""
    if body.website:
        # A bot filled the hidden field: answer as usual so it learns nothing, and keep nothing.
        return InquiryAccepted(id=uuid4(), reference=domain.new_reference())
    message = _bounded(body.message, settings.max_message_chars, "message")
    new = domain.NewInquiry(body.topic, message, body.email, body.want_reply, domain.pick_locale(body.locale), user_id)
    try:
        created = await handlers.submit_inquiry(store, new, _client(request, settings), settings=settings)
    except domain.InvalidInquiry as exc:
        raise Problem(422, "Invalid inquiry", str(exc), errors=[{"loc": ["body", exc.field], "msg": str(exc)}])
    except RateLimited as exc:
        raise _rate_limited(exc)
    except Forbidden:
        raise Problem(403, "Account erased")
    return InquiryAccepted(id=created.inquiry_id, reference=created.reference)


@router.get("/v1/inquiries/{inquiry_id}", response_model=ThreadOut,
            responses=_problems(_403="Not your inquiry", _404="No such inquiry", _422="Invalid request"))
async def read_own_thread(inquiry_id: UUID, store: Store, token: Annotated[Token | None, Query()] = None,
                          user_id: UUID | None = Depends(maybe_user)) -> ThreadOut:
    """The author's view: with a reply mail's token, or signed in as the author."""
    try:
        return _thread_out(await handlers.read_own_thread(store, inquiry_id, token, user_id), with_email=False)
    except (NotFound, Forbidden):
        # The same answer for both: a token guesser learns nothing about which inquiries exist.
        raise Problem(404, "No such inquiry", "The link is invalid or has expired.")


@router.post("/v1/inquiries/{inquiry_id}/messages", status_code=201, response_model=MessageOut,
             responses=_problems(_404="No such inquiry", _409="Closed", _422="Invalid message", _429="Rate limited"))
async def answer_reply(inquiry_id: UUID, body: MessageIn, request: Request, store: Store, settings: Settings,
                       user_id: UUID | None = Depends(maybe_user)) -> MessageOut:
    """The person answers a reply (by the mail's link, or signed in); the thread opens again."""
    text = _bounded(body.message, settings.max_message_chars, "message")
    try:
        m = await handlers.follow_up_inquiry(store, inquiry_id, text, body.token, user_id,
                                             _client(request, settings), settings=settings)
    except (NotFound, Forbidden):
        raise Problem(404, "No such inquiry", "The link is invalid or has expired.")
    except Closed:
        raise Problem(409, "Inquiry closed", "Please send a new inquiry.")
    except RateLimited as exc:
        raise _rate_limited(exc)
    return MessageOut(id=m.message_id, author=m.author, body=m.body, created_at=m.created_at)


@router.get("/v1/users/{user_id}/inquiries", response_model=list[ThreadOut],
            responses=_problems(_401="Not signed in", _403="Not yours"))
async def user_inquiries(user_id: UUID, request: Request, response: Response, store: Store,
                         rt: Runtime = Depends(runtime), requested: pages.Page = Depends(pages.page),
                         _credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> list[ThreadOut]:
    """A user's inquiries with their threads (identity's export asks with the user's token), oldest first,
    a page at a time (`limit`, `cursor`; the next page is in `Link`)."""
    who: Principal = await authenticate(request, rt.verifier, rt.settings.admin_token)
    if not who.may_act_for(user_id):
        raise Problem(403, "Not your inquiries")
    found = await handlers.list_user_threads(store, user_id, requested.position(datetime.fromisoformat, UUID),
                                             requested.fetch_limit())
    shown = pages.respond(request, response, found, requested, key=_thread_position)
    return [_thread_out(t, with_email=False) for t in shown]


def _thread_position(thread: domain.Thread) -> list[str]:
    return [thread.inquiry.received_at.isoformat(), str(thread.inquiry.inquiry_id)]


@router.get("/v1/admin/inquiries", response_model=list[InquiryOut], dependencies=[Depends(admin)],
            responses=_problems(_401="Not signed in", _403="Not an admin", _422="Invalid filter"))
async def list_inquiries(request: Request, response: Response, status: domain.Status | None = None,
                         topic: domain.Category | None = None, requested: pages.Page = Depends(pages.page),
                         *, store: Store) -> list[InquiryOut]:
    """Newest first, a page at a time (`limit`, `cursor`; the next page is in `Link`)."""
    found = await handlers.search_inquiries(store, status, topic, requested.position(datetime.fromisoformat, UUID),
                                            requested.fetch_limit())
    shown = pages.respond(request, response, found, requested,
                          key=lambda i: [i.received_at.isoformat(), str(i.inquiry_id)])
    return [InquiryOut(**_inquiry_out(i, True)) for i in shown]


@router.get("/v1/admin/inquiries/{inquiry_id}", response_model=ThreadOut, dependencies=[Depends(admin)],
            responses=_problems(_404="No such inquiry"))
async def read_thread(inquiry_id: UUID, store: Store) -> ThreadOut:
    try:
        return _thread_out(await handlers.read_thread(store, inquiry_id), with_email=True)
    except NotFound:
        raise Problem(404, "No such inquiry")


@router.post("/v1/admin/inquiries/{inquiry_id}/replies", status_code=201, response_model=MessageOut,
             dependencies=[Depends(admin)], responses=_problems(_404="No such inquiry", _409="Closed"))
async def reply(inquiry_id: UUID, body: ReplyIn, store: Store, settings: Settings, personal: Personal) -> MessageOut:
    """Stores the reply; the mailer sends it in the thread when the person gave a way to reach them."""
    text = _bounded(body.body, settings.max_reply_chars, "body")
    try:
        m = await handlers.reply_to_inquiry(store, inquiry_id, text, settings=settings, personal=personal)
    except NotFound:
        raise Problem(404, "No such inquiry")
    except Closed:
        raise Problem(409, "Inquiry closed")
    return MessageOut(id=m.message_id, author=m.author, body=m.body, created_at=m.created_at)


@router.post("/v1/admin/inquiries/{inquiry_id}/close", response_model=InquiryOut, dependencies=[Depends(admin)],
             responses=_problems(_404="No such inquiry"))
async def close(inquiry_id: UUID, store: Store) -> InquiryOut:
    try:
        return InquiryOut(**_inquiry_out(await handlers.close_inquiry(store, inquiry_id), True))
    except NotFound:
        raise Problem(404, "No such inquiry")


@router.get("/v1/admin/feedback", response_model=list[TopicCountOut], dependencies=[Depends(admin)],
            responses=_problems(_422="Invalid range"))
async def feedback(since: date | None = Query(default=None, alias="from"),
                   until: date | None = Query(default=None, alias="to"),
                   bucket: Literal["day", "week", "month"] = "day", *, store: Store) -> list[TopicCountOut]:
    """Counts of inquiries by topic over time, for the product team: no person, no text, only numbers."""
    until = until or datetime.now(UTC).date()
    since = since or until - timedelta(days=30)
    if since > until or (until - since).days > _MAX_DAYS:
        raise Problem(422, "Invalid range", f"`from` must not be after `to`, and at most {_MAX_DAYS} days before it.")
    return [TopicCountOut(period=c.period, topic=c.category, count=c.count)
            for c in await handlers.count_topics(store, since, until, bucket)]


@router.post("/v1/admin/erasures", dependencies=[Depends(admin)], responses=_problems(_422="Invalid address"))
async def erase_by_address(body: ErasureIn, store: Store, owner: Owner) -> dict:
    """Erases every anonymous inquiry sent from an address (the person asked us, e.g. by a privacy question)."""
    return {"erased": await handlers.erase_by_address(store, body.email, owner=owner)}
