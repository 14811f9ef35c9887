"""Consent's HTTP surface: a user reads and changes only their own consents; an admin any."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Request, Response
from pydantic import BaseModel, Field

from assent_consent import domain, handlers
from assent_consent.deps import Settings, Signer, Store, Who
from assent_shared import pages
from assent_shared.auth import Principal
from assent_shared.problems import Problem

router = APIRouter()
PurposeId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
RecipientId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
# At least 128 bits of randomness, base64url: 22 characters or more.
DeviceId = Annotated[str, Path(min_length=22, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                               description="Opaque random id of the visitor's browser, made by the Site.")]
SecGpc = Annotated[str | None, Header()]


def _gpc(sec_gpc: str | None) -> bool:
    return sec_gpc == "1"


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
    gpc: bool = Field(default=False, description="Whether the request carried `Sec-GPC: 1` (third-party grants refused).")


class ConsentChangeIn(BaseModel):
    granted: bool


def _out(state: domain.ConsentState, gpc: bool = False) -> ConsentOut:
    return ConsentOut(purpose=state.purpose, recipient=state.recipient, granted=state.granted, seq=state.seq,
                      updated_at=state.updated_at, event_id=state.event_id if state.seq else None, gpc=gpc)


@router.get("/v1/purposes")
async def list_purposes(store: Store, settings: Settings) -> list[dict]:
    return await handlers.list_purposes(store, settings=settings)


@router.get("/v1/subjects/{subject_id}/consents", response_model=list[ConsentOut])
async def list_consents(subject_id: UUID, who: Who, store: Store) -> list[ConsentOut]:
    _own(who, subject_id)
    return [_out(s) for s in await handlers.list_consents(store, subject_id)]


@router.put("/v1/subjects/{subject_id}/consents/{purpose}/{recipient}", response_model=ConsentOut,
            responses={422: {"description": "Unknown purpose or recipient"}, 403: {"description": "Not yours"}})
async def change_consent(subject_id: UUID, purpose: PurposeId, recipient: RecipientId, body: ConsentChangeIn,
                         who: Who, store: Store, settings: Settings, sec_gpc: SecGpc = None) -> ConsentOut:
    _own(who, subject_id)
    cmd = domain.ChangeConsent(subject_id, purpose, recipient, body.granted, "admin" if who.is_admin else "user")
    gpc = _gpc(sec_gpc) and who.user_id is not None
    try:
        if gpc:
            # The user's browser sends Global Privacy Control with a change: their third-party grants end first.
            await handlers.withdraw_third_party(store, subject_id, settings=settings)
            cmd = domain.under_gpc(cmd)
        result = await handlers.change_consent(store, cmd, settings=settings)
    except domain.UnknownPurpose:
        raise Problem(422, "Unknown purpose", "See GET /v1/purposes for the purposes there are.")
    except domain.UnknownRecipient:
        raise Problem(422, "Unknown recipient", "The recipient is not a processor registered for this purpose.")
    except domain.SubjectErased:
        raise Problem(410, "Account erased", "Nothing is recorded for an erased account.")
    return _out(result.state, gpc)


@router.post("/v1/subjects/{subject_id}/gpc", response_model=list[ConsentOut],
             responses={403: {"description": "Not yours"}})
async def honour_gpc(subject_id: UUID, who: Who, store: Store, settings: Settings) -> list[ConsentOut]:
    """Global Privacy Control for a signed-in user (the Site calls it when a request carries `Sec-GPC: 1`):
    every third-party grant is revoked with source `gpc`; answers the revocations made."""
    _own(who, subject_id)
    return [_out(r.state) for r in await handlers.withdraw_third_party(store, subject_id, settings=settings)
            if r.changed]


@router.get("/v1/subjects/{subject_id}/consents/history")
async def consent_history(subject_id: UUID, request: Request, response: Response, who: Who, store: Store,
                          signer: Signer, requested: pages.Page = Depends(pages.page)) -> list[dict]:
    """Receipts in `seq` order, a page at a time (`limit`, `cursor`; the next page is in `Link`)."""
    _own(who, subject_id)
    [after] = requested.position(int) or (0,)
    receipts = await handlers.list_receipts(store, subject_id, after, requested.fetch_limit(), signer=signer)
    return pages.respond(request, response, receipts, requested, key=lambda r: [r["receipt"]["seq"]])


@router.get("/v1/receipts/{event_id}")
async def get_receipt(event_id: UUID, who: Who, store: Store, signer: Signer) -> dict:
    found = await handlers.find_receipt(store, event_id, signer=signer)
    if found is None or not who.may_act_for(found[0]):
        raise Problem(404, "No such receipt")
    return found[1]


@router.get("/v1/receipts/.well-known/jwks.json")
async def receipt_keys(signer: Signer) -> dict:
    return signer.jwks


class DeviceConsentIn(BaseModel):
    granted: bool


class DeviceConsentOut(BaseModel):
    device_id: str
    purpose: str
    granted: bool
    seq: int
    updated_at: datetime
    event_id: UUID = Field(description="The receipt's id: GET /v1/devices/{device_id}/receipts/{event_id}.")
    gpc: bool = Field(description="Whether this request carried `Sec-GPC: 1` (third-party grants refused).")


class DeviceConsentsOut(BaseModel):
    device_id: str
    gpc: bool = Field(description="Whether this request carried `Sec-GPC: 1`.")
    consents: list[DeviceConsentOut]


def _device_out(state: domain.DeviceConsentState, gpc: bool) -> DeviceConsentOut:
    return DeviceConsentOut(device_id=state.device_id, purpose=state.purpose, granted=state.granted, seq=state.seq,
                            updated_at=state.updated_at, event_id=state.event_id, gpc=gpc)


@router.get("/v1/device-purposes")
async def list_device_purposes(settings: Settings) -> list[dict]:
    return handlers.list_device_purposes(settings=settings)


@router.put("/v1/devices/{device_id}/consents/{purpose}", response_model=DeviceConsentOut,
            responses={422: {"description": "Unknown device purpose or bad device id"}})
async def change_device_consent(device_id: DeviceId, purpose: PurposeId, body: DeviceConsentIn, store: Store,
                                settings: Settings, sec_gpc: SecGpc = None) -> DeviceConsentOut:
    """A visitor without an account: no authentication, the device id is the Site's random id for the browser."""
    try:
        state = await handlers.change_device_consent(
            store, domain.ChangeDeviceConsent(device_id, purpose, body.granted, _gpc(sec_gpc)), settings=settings)
    except handlers.UnknownDevicePurpose:
        raise Problem(422, "Unknown device purpose", "See GET /v1/device-purposes for the purposes there are.")
    return _device_out(state, _gpc(sec_gpc))


@router.get("/v1/devices/{device_id}/consents", response_model=DeviceConsentsOut)
async def list_device_consents(device_id: DeviceId, store: Store, sec_gpc: SecGpc = None) -> DeviceConsentsOut:
    gpc = _gpc(sec_gpc)
    states = await handlers.list_device_consents(store, device_id)
    return DeviceConsentsOut(device_id=device_id, gpc=gpc, consents=[_device_out(s, gpc) for s in states])


@router.get("/v1/devices/{device_id}/consents/history")
async def device_consent_history(device_id: DeviceId, store: Store, signer: Signer) -> list[dict]:
    return await handlers.list_device_receipts(store, device_id, signer=signer)


@router.get("/v1/devices/{device_id}/receipts/{event_id}", responses={404: {"description": "No such receipt"}})
async def device_receipt(device_id: DeviceId, event_id: UUID, store: Store, signer: Signer) -> dict:
    found = await handlers.find_device_receipt(store, device_id, event_id, signer=signer)
    if found is None:
        raise Problem(404, "No such receipt")
    return found
