"""The mailer's HTTP surface: the processor registry, delivery records, newsletters, unsubscribe, mail previews."""

import time
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import AnyHttpUrl, BaseModel, Field

from assent_mailer import handlers
from assent_mailer.deps import Settings, Store, Suppressions, TemplateSet, Work
from assent_mailer.handlers import BadSignature, RecordRelayReport, RegisterProcessor, SendNewsletter, UnknownMessage
from assent_mailer.messages import BadToken
from assent_mailer.relay_reports import BadReport, Notification, UnsupportedMediaType
from assent_mailer.templating import UnknownTemplate
from assent_shared import pages
from assent_shared.auth import authenticate, require_admin
from assent_shared.bootstrap import Runtime
from assent_shared.problems import Problem
from assent_shared.text import Line, Text
from assent_shared.wiring import runtime

router = APIRouter()
ProcessorId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


def admin(request: Request, rt: Runtime = Depends(runtime)) -> None:
    require_admin(request, rt.settings.admin_token)


class ProcessorIn(BaseModel):
    name: Line = Field(min_length=1, max_length=200)
    endpoint_url: AnyHttpUrl
    purposes: list[Annotated[str, Field(pattern=r"^[a-z0-9_]{1,64}$")]] = Field(min_length=1, max_length=20)
    signing_secret: str = Field(min_length=16, max_length=200)


class DeliveryOut(BaseModel):
    delivery_id: UUID
    kind: str
    recipient: str
    purpose: str | None
    status: str
    consent_event_id: str | None
    created_at: datetime
    attempts: int
    sent_at: datetime | None


class NewsletterIn(BaseModel):
    issue_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    title: Line = Field(min_length=1, max_length=200, description="The mail's subject: one line.")
    body: Text = Field(min_length=1, max_length=100_000)


@router.put("/v1/processors/{processor_id}", status_code=200, dependencies=[Depends(admin)])
async def put_processor(processor_id: ProcessorId, body: ProcessorIn, mailers: Store, settings: Settings,
                        work: Work) -> dict:
    if body.endpoint_url.scheme != "https" and not settings.http_webhooks:
        raise Problem(422, "Webhook must use https", "The processor's endpoint_url must be an https URL.",
                      errors=[{"loc": ["body", "endpoint_url"], "msg": "must use https"}])
    await handlers.register_processor(mailers, RegisterProcessor(
        processor_id, body.name, str(body.endpoint_url), body.purposes, body.signing_secret), work=work)
    return {"processor_id": processor_id, "name": body.name, "endpoint_url": str(body.endpoint_url),
            "purposes": body.purposes}


@router.get("/v1/subjects/{subject_id}/deliveries", response_model=list[DeliveryOut])
async def list_deliveries(subject_id: UUID, request: Request, response: Response,
                          mailers: Store, requested: pages.Page = Depends(pages.page),
                          rt: Runtime = Depends(runtime)) -> list[DeliveryOut]:
    """An admin sees anyone's deliveries; a signed-in user their own (for the export of their data).
    Oldest first, a page at a time (`limit`, `cursor`; the next page is in `Link`)."""
    who = await authenticate(request, rt.verifier, rt.settings.admin_token)
    if not who.may_act_for(subject_id):
        raise Problem(403, "Not your deliveries")
    rows = await handlers.list_deliveries_of(mailers, subject_id, requested.position(datetime.fromisoformat, UUID),
                                             requested.fetch_limit())
    shown = pages.respond(request, response, rows, requested,
                          key=lambda r: [r["created_at"].isoformat(), str(r["delivery_id"])])
    return [DeliveryOut(**{k: r[k] for k in DeliveryOut.model_fields}) for r in shown]


class ProcessorOut(BaseModel):
    processor_id: str
    name: str
    endpoint_url: str
    purposes: list[str]
    updated_at: datetime


@router.get("/v1/admin/processors", response_model=list[ProcessorOut], dependencies=[Depends(admin)])
async def list_processors(request: Request, response: Response, mailers: Store,
                          requested: pages.Page = Depends(pages.page)) -> list[ProcessorOut]:
    """Every registered processor by id, a page at a time; its signing secret never leaves the mailer."""
    after = requested.position(str)
    rows = await handlers.list_processors(mailers, after[0] if after else None, requested.fetch_limit())
    shown = pages.respond(request, response, rows, requested, key=lambda r: [r["processor_id"]])
    return [ProcessorOut(**dict(r)) for r in shown]


@router.get("/v1/admin/processors/{processor_id}/deliveries", response_model=list[DeliveryOut],
            dependencies=[Depends(admin)])
async def list_processor_deliveries(processor_id: ProcessorId, request: Request, response: Response,
                                    mailers: Store, requested: pages.Page = Depends(pages.page)
                                    ) -> list[DeliveryOut]:
    """The webhook deliveries to one processor, newest first, each with the consent event that allowed it."""
    rows = await handlers.list_deliveries_to(mailers, processor_id, requested.position(datetime.fromisoformat, UUID),
                                             requested.fetch_limit())
    shown = pages.respond(request, response, rows, requested,
                          key=lambda r: [r["created_at"].isoformat(), str(r["delivery_id"])])
    return [DeliveryOut(**{k: r[k] for k in DeliveryOut.model_fields}) for r in shown]


@router.post("/v1/newsletters", status_code=202, dependencies=[Depends(admin)])
async def send_newsletter(body: NewsletterIn, mailers: Store, work: Work) -> dict:
    queued = await handlers.send_newsletter(mailers, SendNewsletter(body.issue_id, body.title, body.body), work=work)
    return {"issue_id": body.issue_id, "queued": queued}


@router.post("/v1/unsubscribe", status_code=200, responses={400: {"description": "Bad token"}})
async def one_click_unsubscribe(token: Annotated[str, Query(min_length=10, max_length=400)],
                                mailers: Store, settings: Settings) -> Response:
    """RFC 8058 one-click: a POST with the signed token from the List-Unsubscribe URL, no login."""
    try:
        await handlers.unsubscribe(mailers, token, settings=settings)
    except BadToken:
        raise Problem(400, "Invalid unsubscribe link", "The link is damaged or was not issued by us.")
    return Response('{"unsubscribed":true}', media_type="application/json")


class ReportOut(BaseModel):
    delivery_id: UUID = Field(description="The delivery of the mail reported on.")
    outcome: Literal["bounced", "complained", "unchanged"] = Field(
        description="`unchanged`: a soft bounce, or a report already recorded.")


_REPORT_BODIES = {"application/json": {"schema": Notification.model_json_schema()},
                  "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
                  "multipart/report": {"schema": {"type": "string", "format": "binary"}}}


@router.post("/v1/bounces", status_code=202, response_model=ReportOut,
             openapi_extra={"requestBody": {"required": True, "content": _REPORT_BODIES}},
             responses={401: {"description": "Bad signature"}, 404: {"description": "Not a mail we sent"},
                        415: {"description": "Unsupported media type"}, 422: {"description": "Not a report"}})
async def report_bounce(request: Request, mailers: Store, settings: Settings, suppressions: Suppressions,
                        signature: Annotated[str, Header(alias="Assent-Signature", max_length=2000)] = ""
                        ) -> ReportOut:
    """The relay's bounce and complaint reports, signed like the processors' webhooks: a JSON notification,
    or the report mail itself (a DSN, RFC 3464, or a complaint, RFC 5965)."""
    command = RecordRelayReport(signature, request.headers.get("content-type", ""), await request.body(), time.time())
    try:
        return ReportOut(**await handlers.record_relay_report(mailers, command, settings=settings,
                                                              suppressions=suppressions))
    except BadSignature:
        raise Problem(401, "Invalid signature", "Assent-Signature is missing, stale (over 300 s) or does not match.")
    except UnsupportedMediaType:
        raise Problem(415, "Unsupported media type", "Send application/json, message/rfc822 or multipart/report.")
    except BadReport as exc:
        raise Problem(422, "Not a report", str(exc))
    except UnknownMessage:
        raise Problem(404, "Unknown message", "The report is about a mail the mailer did not send.")


class TemplateOut(BaseModel):
    mail: str = Field(description="The mail's id, e.g. `welcome`, `order_update`.")
    locales: list[str] = Field(description="The languages it is written in (BCP 47); others fall back to `en`.")


@router.get("/v1/admin/templates", response_model=list[TemplateOut], dependencies=[Depends(admin)])
async def list_templates(templates: TemplateSet) -> list[TemplateOut]:
    """Every mail the system sends and its languages, for the console's preview."""
    listed = handlers.list_templates(templates)
    return [TemplateOut(mail=mail, locales=list(locales)) for mail, locales in listed.items()]


@router.get("/v1/admin/templates/{mail}/preview", dependencies=[Depends(admin)],
            responses={200: {"content": {"text/html": {}, "text/plain": {}}}, 404: {"description": "No such mail"}},
            response_class=Response)
async def preview_template(
    mail: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z_]+$")],
    locale: Annotated[str, Query(min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")] = "en",
    format: Annotated[Literal["html", "text"], Query(description="The part to show.")] = "html",  # noqa: A002
    *, templates: TemplateSet, settings: Settings,
) -> Response:
    """The mail rendered with invented values; its subject in `X-Mail-Subject` (UTF-8, percent-encoded)."""
    try:
        rendered = handlers.preview_template(templates, mail, locale, settings=settings)
    except UnknownTemplate:
        raise Problem(404, "No such template", f"There is no mail {mail!r} in language {locale!r}; "
                                               "GET /v1/admin/templates lists them.")
    headers = {"X-Mail-Subject": quote(rendered.subject), "Cache-Control": "no-store"}
    if format == "text":
        return PlainTextResponse(rendered.text, headers=headers)
    # The preview is shown to an admin inside the console: nothing in it may run or load.
    headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return HTMLResponse(rendered.html, headers=headers)
