"""Identity's HTTP surface: thin routes that turn requests into handler calls."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from assent_identity import domain
from assent_identity.export import Exporter
from assent_identity.handlers import IdentityHandlers, InvalidCredentials, SessionEnded, Throttled
from assent_identity.storage import EmailTaken
from assent_shared.auth import bearer_token, require_admin
from assent_shared.bootstrap import Runtime
from assent_shared.problems import Problem
from assent_shared.text import Line, Secret

router = APIRouter()
_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def handlers(request: Request) -> IdentityHandlers:
    return request.app.state.service


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


class RegistrationIn(BaseModel):
    email: str = Field(max_length=320)
    password: Secret = Field(max_length=1024)
    newsletter_opt_in: bool = Field(default=True, description="Signing up opts in to the newsletter unless false.")
    display_name: Line | None = Field(default=None, max_length=100, description="One line: it may head a mail.")
    locale: str | None = Field(default=None, max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$",
                               description="Preferred language of mail, BCP 47 (e.g. `en`, `de`).")


class UserOut(BaseModel):
    id: UUID
    email: str
    created_at: datetime
    display_name: str | None = None


class CredentialsIn(BaseModel):
    email: str = Field(max_length=320)
    password: Secret = Field(max_length=1024)


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class SessionOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str


def _user_out(user: domain.User) -> UserOut:
    return UserOut(id=user.id, email=user.email, created_at=user.created_at, display_name=user.display_name)


@router.post("/v1/users", status_code=201, response_model=UserOut,
             responses={409: {"description": "Email taken"}, 422: {"description": "Invalid email or password"}})
async def register(body: RegistrationIn, service: IdentityHandlers = Depends(handlers)) -> UserOut:
    try:
        user = await service.register_user(domain.RegisterUser(
            email=body.email, password=body.password, newsletter_opt_in=body.newsletter_opt_in,
            display_name=body.display_name, locale=body.locale,
        ))
    except domain.InvalidInput as exc:
        raise Problem(422, "Invalid registration", str(exc), errors=[{"loc": ["body", exc.field], "msg": str(exc)}])
    except EmailTaken:
        raise Problem(409, "Email already registered", "Sign in instead, or reset the password.")
    return _user_out(user)


@router.post("/v1/sessions", response_model=SessionOut,
             responses={401: {"description": "Invalid credentials"}, 429: {"description": "Too many failures"}})
async def login(body: CredentialsIn, request: Request, service: IdentityHandlers = Depends(handlers),
                rt: Runtime = Depends(runtime)) -> SessionOut:
    try:
        issued = await service.start_session(body.email, body.password, rt.forwarding.client_address(request))
    except InvalidCredentials:
        raise Problem(401, "Invalid credentials", "The email or password is wrong.", headers=_UNAUTHORIZED)
    except Throttled as exc:
        raise Problem(429, "Too many failed logins", "Wait before trying again.",
                      headers={"Retry-After": str(exc.retry_after)})
    return SessionOut(access_token=issued.access_token, expires_in=issued.expires_in,
                      refresh_token=issued.refresh_token)


@router.post("/v1/sessions/refresh", response_model=SessionOut, responses={401: {"description": "Invalid token"}})
async def refresh(body: RefreshIn, service: IdentityHandlers = Depends(handlers)) -> SessionOut:
    try:
        issued = await service.refresh_session(body.refresh_token)
    except InvalidCredentials:
        raise Problem(401, "Invalid refresh token", headers=_UNAUTHORIZED)
    return SessionOut(access_token=issued.access_token, expires_in=issued.expires_in,
                      refresh_token=issued.refresh_token)


async def _claims(request: Request, service: IdentityHandlers = Depends(handlers)) -> dict:
    token = bearer_token(request)
    if token is None:
        raise Problem(401, "Authentication required", headers=_UNAUTHORIZED)
    try:
        return await service.verify_access_token(token)
    except SessionEnded:
        raise Problem(401, "Session ended", headers=_UNAUTHORIZED)
    except InvalidCredentials:
        raise Problem(401, "Invalid token", headers=_UNAUTHORIZED)


@router.delete("/v1/sessions/current", status_code=204)
async def logout(claims: dict = Depends(_claims), service: IdentityHandlers = Depends(handlers)) -> Response:
    await service.end_session(UUID(claims["sid"]))
    return Response(status_code=204)


@router.get("/v1/users/me", response_model=UserOut)
async def me(claims: dict = Depends(_claims), service: IdentityHandlers = Depends(handlers)) -> UserOut:
    user = await service.get_user(UUID(claims["sub"]))
    if user is None:
        raise Problem(404, "No such user")
    return _user_out(user)


class EmailChangeIn(BaseModel):
    email: str = Field(max_length=320)
    password: Secret = Field(max_length=1024)


class PasswordChangeIn(BaseModel):
    current_password: Secret = Field(max_length=1024)
    new_password: Secret = Field(max_length=1024)


@router.put("/v1/users/me/email", response_model=UserOut,
            responses={403: {"description": "Wrong password"}, 409: {"description": "Email taken"}})
async def change_email(body: EmailChangeIn, claims: dict = Depends(_claims),
                       service: IdentityHandlers = Depends(handlers)) -> UserOut:
    try:
        user = await service.change_email(UUID(claims["sub"]), body.email, body.password)
    except domain.InvalidInput as exc:
        raise Problem(422, "Invalid email", str(exc))
    except InvalidCredentials:
        raise Problem(403, "Wrong password", "Confirm the change with your current password.")
    except EmailTaken:
        raise Problem(409, "Email already registered")
    return _user_out(user)


@router.put("/v1/users/me/password", status_code=204,
            responses={403: {"description": "Wrong password"}, 422: {"description": "Weak password"}})
async def change_password(body: PasswordChangeIn, claims: dict = Depends(_claims),
                          service: IdentityHandlers = Depends(handlers)) -> Response:
    try:
        await service.change_password(UUID(claims["sub"]), UUID(claims["sid"]), body.current_password,
                                      body.new_password)
    except domain.InvalidInput as exc:
        raise Problem(422, "Invalid password", str(exc))
    except InvalidCredentials:
        raise Problem(403, "Wrong password", "Confirm the change with your current password.")
    return Response(status_code=204)


@router.get("/v1/users/me/export")
async def export_my_data(request: Request, claims: dict = Depends(_claims),
                         service: IdentityHandlers = Depends(handlers)) -> dict:
    user = await service.get_user(UUID(claims["sub"]))
    if user is None:
        raise Problem(404, "No such user")
    exporter: Exporter = request.app.state.exporter
    return await exporter.export(user, bearer_token(request) or "")


@router.delete("/v1/users/me", status_code=202)
async def erase_me(claims: dict = Depends(_claims), service: IdentityHandlers = Depends(handlers)) -> dict:
    user_id = UUID(claims["sub"])
    await service.erase_user(user_id)
    return {"user_id": str(user_id), "status_url": f"/v1/erasures/{user_id}"}


@router.get("/v1/erasures/{user_id}", responses={404: {"description": "No erasure of that id"}})
async def erasure_status(user_id: UUID, service: IdentityHandlers = Depends(handlers)) -> dict:
    status = await service.erasure_status(user_id)
    if status is None:
        raise Problem(404, "No such erasure")
    return status


@router.get("/.well-known/jwks.json")
async def jwks(response: Response, service: IdentityHandlers = Depends(handlers)) -> dict:
    response.headers["Cache-Control"] = "public, max-age=60"
    return await service.jwks()


@router.post("/v1/admin/signing-keys/rotate", status_code=201)
async def rotate_keys(request: Request, rt: Runtime = Depends(runtime),
                      service: IdentityHandlers = Depends(handlers)) -> dict:
    require_admin(request, rt.settings.admin_token)
    return {"kid": await service.rotate_keys()}


@router.get("/v1/admin/users", response_model=UserOut)
async def admin_find_user(email: Annotated[str, Query(max_length=320)], request: Request,
                          rt: Runtime = Depends(runtime), service: IdentityHandlers = Depends(handlers)) -> UserOut:
    require_admin(request, rt.settings.admin_token)
    user = await service.find_user(email)
    if user is None:
        raise Problem(404, "No such user")
    return _user_out(user)


@router.post("/v1/admin/users/{user_id}/disable", status_code=204)
async def admin_disable_user(user_id: UUID, request: Request, rt: Runtime = Depends(runtime),
                             service: IdentityHandlers = Depends(handlers)) -> Response:
    require_admin(request, rt.settings.admin_token)
    if not await service.disable_user(user_id) and await service.get_user(user_id) is None:
        raise Problem(404, "No such user")
    return Response(status_code=204)


@router.get("/v1/admin/users/{user_id}", response_model=UserOut)
async def admin_get_user(user_id: UUID, request: Request, rt: Runtime = Depends(runtime),
                         service: IdentityHandlers = Depends(handlers)) -> UserOut:
    require_admin(request, rt.settings.admin_token)
    user = await service.get_user(user_id)
    if user is None:
        raise Problem(404, "No such user")
    return _user_out(user)
