"""Consent's HTTP surface: a user reads and changes only their own consents; an admin any."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Request, Response
from pydantic import BaseModel

from assent_consent import domain
from assent_consent.handlers import ConsentHandlers
from assent_shared import pages
from assent_shared.auth import Principal, authenticate
from assent_shared.bootstrap import Runtime
from assent_shared.problems import Problem

router = APIRouter()
PurposeId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
RecipientId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


def handlers(request: Request) -> ConsentHandlers:
    return request.app.state.service


async def principal(request: Request, sec_gpc: Annotated[str | None, Header()] = None) -> Principal:
    runtime: Runtime = request.app.state.runtime
    who = await authenticate(request, runtime.verifier, runtime.settings.admin_token)
    if sec_gpc == "1" and who.user_id is not None:
        await handlers(request).withdraw_third_party(who.user_id)
    return who


def _own(who: Principal, subject_id: UUID) -> None:
    if not who.may_act_for(subject_id):
        raise Problem(403, "Not your consents", "A user reads and changes only their own consents.")


class ConsentOut(BaseModel):
    purpose: str
    recipient: str
    granted: bool
    seq: int
    updated_at: datetime
    event_id: UUID | None = None


class ConsentChangeIn(BaseModel):
    granted: bool


def _out(state: domain.ConsentState) -> ConsentOut:
    return ConsentOut(purpose=state.purpose, recipient=state.recipient, granted=state.granted, seq=state.seq,
                      updated_at=state.updated_at, event_id=state.event_id if state.seq else None)


@router.get("/v1/purposes")
async def list_purposes(service: ConsentHandlers = Depends(handlers)) -> list[dict]:
    return await service.purposes()


@router.get("/v1/subjects/{subject_id}/consents", response_model=list[ConsentOut])
async def list_consents(subject_id: UUID, who: Principal = Depends(principal),
                        service: ConsentHandlers = Depends(handlers)) -> list[ConsentOut]:
    _own(who, subject_id)
    return [_out(s) for s in await service.consents_of(subject_id)]


@router.put("/v1/subjects/{subject_id}/consents/{purpose}/{recipient}", response_model=ConsentOut,
            responses={422: {"description": "Unknown purpose or recipient"}, 403: {"description": "Not yours"}})
async def change_consent(subject_id: UUID, purpose: PurposeId, recipient: RecipientId, body: ConsentChangeIn,
                         who: Principal = Depends(principal),
                         service: ConsentHandlers = Depends(handlers)) -> ConsentOut:
    _own(who, subject_id)
    cmd = domain.ChangeConsent(subject_id, purpose, recipient, body.granted, "admin" if who.is_admin else "user")
    try:
        result = await service.change_consent(cmd)
    except domain.UnknownPurpose:
        raise Problem(422, "Unknown purpose", "See GET /v1/purposes for the purposes there are.")
    except domain.UnknownRecipient:
        raise Problem(422, "Unknown recipient", "The recipient is not a processor registered for this purpose.")
    except domain.SubjectErased:
        raise Problem(410, "Account erased", "Nothing is recorded for an erased account.")
    return _out(result.state)


@router.get("/v1/subjects/{subject_id}/consents/history")
async def consent_history(subject_id: UUID, request: Request, response: Response,
                          who: Principal = Depends(principal), requested: pages.Page = Depends(pages.page),
                          service: ConsentHandlers = Depends(handlers)) -> list[dict]:
    """Receipts in `seq` order, a page at a time (`limit`, `cursor`; the next page is in `Link`)."""
    _own(who, subject_id)
    [after] = requested.position(int) or (0,)
    receipts = await service.history_of(subject_id, after, requested.fetch_limit())
    return pages.respond(request, response, receipts, requested, key=lambda r: [r["receipt"]["seq"]])


@router.get("/v1/receipts/{event_id}")
async def get_receipt(event_id: UUID, who: Principal = Depends(principal),
                      service: ConsentHandlers = Depends(handlers)) -> dict:
    found = await service.receipt(event_id)
    if found is None or not who.may_act_for(found[0]):
        raise Problem(404, "No such receipt")
    return found[1]


@router.get("/v1/receipts/.well-known/jwks.json")
async def receipt_keys(service: ConsentHandlers = Depends(handlers)) -> dict:
    return service.signer.jwks


