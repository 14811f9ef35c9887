"""The key owner's internal API: services authenticate with their own token (`Assent-Service` + bearer)."""

from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response

from assent_identity.deps import Keys, Settings
from assent_identity.keyowner import NotKeyOwner
from assent_shared.auth import bearer_token, require_admin
from assent_shared.personal import FieldUnreadable, SubjectErased, key_body
from assent_shared.problems import Problem

router = APIRouter(prefix="/internal/v1/subject-keys", tags=["key owner (internal)"])
_ERASED = {410: {"description": "The subject was erased: its key is gone"}}


def calling_service(request: Request, keys: Keys) -> str:
    token = bearer_token(request)
    service = keys.client_named(request.headers.get("assent-service", ""), token or "")
    if service is None:
        raise Problem(401, "Service credentials required", "Present this service's key-owner token.",
                      headers={"WWW-Authenticate": "Bearer"})
    return service


@router.post("/{subject_id}", responses=_ERASED)
async def key_for(subject_id: UUID, keys: Keys, service: str = Depends(calling_service)) -> dict[str, str]:
    """The subject's data key, made on first use: for a service that seals personal fields."""
    try:
        return key_body(await keys.key_for(service, subject_id))
    except SubjectErased:
        raise Problem(410, "Subject erased", "Nothing more is sealed for an erased subject.")


@router.get("/{subject_id}/{key_id}", responses={**_ERASED, 404: {"description": "No such key"}})
async def key(subject_id: UUID, key_id: UUID, keys: Keys, service: str = Depends(calling_service)) -> dict[str, str]:
    try:
        return key_body(await keys.key(service, subject_id, key_id))
    except SubjectErased:
        raise Problem(410, "Subject erased", "The key was deleted at erasure; the field is unreadable for good.")
    except FieldUnreadable:
        raise Problem(404, "No such key")


@router.delete("/{subject_id}", status_code=204, responses={403: {"description": "Not the key's owner"}})
async def erase(subject_id: UUID, keys: Keys, service: str = Depends(calling_service)) -> Response:
    """Crypto-shred a subject that the calling service made the key of (identity erases users itself)."""
    try:
        await keys.erase(service, subject_id)
    except NotKeyOwner:
        raise Problem(403, "Not the key's owner", "Only the service that made a subject's key may delete it.")
    return Response(status_code=204)


admin_router = APIRouter(tags=["key owner (internal)"])


@admin_router.get("/v1/admin/subject-keys/{subject_id}/audit")
async def audit(subject_id: UUID, request: Request, keys: Keys, settings: Settings) -> list[dict]:
    """Who read or changed the subject's key, when, and the outcome (admin)."""
    require_admin(request, settings.admin_token)
    return await keys.audit(subject_id)
