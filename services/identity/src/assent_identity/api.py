"""Identity's HTTP surface: thin routes that turn requests into use case calls."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from assent_identity import domain, handlers
from assent_identity import links as link_cases
from assent_identity.deps import ExporterDep, ForwardingDep, Keys, Links, PasswordsDep, Settings, Store, Vault
from assent_identity.handlers import InvalidCredentials, SessionEnded, Throttled
from assent_identity.links import TooManyMails
from assent_identity.ports import EmailTaken
from assent_shared import pages
from assent_shared.auth import bearer_token, require_admin
from assent_shared.problems import Problem
from assent_shared.text import Line, Secret

router = APIRouter()
_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


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
    email_verified: bool = Field(default=False, description="Whether a verification link sent to `email` was used.")
    locale: str | None = None


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
    return UserOut(id=user.id, email=user.email, created_at=user.created_at, display_name=user.display_name,
                   email_verified=user.email_verified, locale=user.locale)


@router.post("/v1/users", status_code=201, response_model=UserOut,
             responses={409: {"description": "Email taken"}, 422: {"description": "Invalid email or password"}})
async def register(body: RegistrationIn, store: Store, settings: Settings, passwords: PasswordsDep, keys: Keys,
                   links: Links) -> UserOut:
    try:
        user = await handlers.register_user(store, domain.RegisterUser(
            email=body.email, password=body.password, newsletter_opt_in=body.newsletter_opt_in,
            display_name=body.display_name, locale=body.locale,
        ), settings=settings, passwords=passwords, keys=keys, links=links)
    except domain.InvalidInput as exc:
        raise Problem(422, "Invalid registration", str(exc), errors=[{"loc": ["body", exc.field], "msg": str(exc)}])
    except EmailTaken:
        raise Problem(409, "Email already registered", "Sign in instead, or reset the password.")
    return _user_out(user)


@router.post("/v1/sessions", response_model=SessionOut,
             responses={401: {"description": "Invalid credentials"}, 429: {"description": "Too many failures"}})
async def login(body: CredentialsIn, request: Request, store: Store, settings: Settings, passwords: PasswordsDep,
                vault: Vault, forwarding: ForwardingDep) -> SessionOut:
    try:
        issued = await handlers.start_session(store, body.email, body.password, forwarding.client_address(request),
                                              settings=settings, passwords=passwords, vault=vault)
    except InvalidCredentials:
        raise Problem(401, "Invalid credentials", "The email or password is wrong.", headers=_UNAUTHORIZED)
    except Throttled as exc:
        raise Problem(429, "Too many failed logins", "Wait before trying again.",
                      headers={"Retry-After": str(exc.retry_after)})
    return SessionOut(access_token=issued.access_token, expires_in=issued.expires_in,
                      refresh_token=issued.refresh_token)


@router.post("/v1/sessions/refresh", response_model=SessionOut, responses={401: {"description": "Invalid token"}})
async def refresh(body: RefreshIn, store: Store, settings: Settings, vault: Vault) -> SessionOut:
    try:
        issued = await handlers.refresh_session(store, body.refresh_token, settings=settings, vault=vault)
    except InvalidCredentials:
        raise Problem(401, "Invalid refresh token", headers=_UNAUTHORIZED)
    return SessionOut(access_token=issued.access_token, expires_in=issued.expires_in,
                      refresh_token=issued.refresh_token)


async def _claims(request: Request, store: Store, settings: Settings) -> dict:
    token = bearer_token(request)
    if token is None:
        raise Problem(401, "Authentication required", headers=_UNAUTHORIZED)
    try:
        return await handlers.verify_access_token(store, token, settings=settings)
    except SessionEnded:
        raise Problem(401, "Session ended", headers=_UNAUTHORIZED)
    except InvalidCredentials:
        raise Problem(401, "Invalid token", headers=_UNAUTHORIZED)


@router.delete("/v1/sessions/current", status_code=204)
async def logout(store: Store, settings: Settings, claims: dict = Depends(_claims)) -> Response:
    await handlers.end_session(store, UUID(claims["sid"]), settings=settings)
    return Response(status_code=204)


@router.get("/v1/users/me", response_model=UserOut)
async def me(store: Store, claims: dict = Depends(_claims)) -> UserOut:
    user = await handlers.get_user(store, UUID(claims["sub"]))
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
async def change_email(body: EmailChangeIn, store: Store, passwords: PasswordsDep, keys: Keys, links: Links,
                       claims: dict = Depends(_claims)) -> UserOut:
    try:
        user = await handlers.change_email(store, UUID(claims["sub"]), body.email, body.password,
                                           passwords=passwords, keys=keys, links=links)
    except domain.InvalidInput as exc:
        raise Problem(422, "Invalid email", str(exc))
    except InvalidCredentials:
        raise Problem(403, "Wrong password", "Confirm the change with your current password.")
    except EmailTaken:
        raise Problem(409, "Email already registered")
    return _user_out(user)


@router.put("/v1/users/me/password", status_code=204,
            responses={403: {"description": "Wrong password"}, 422: {"description": "Weak password"}})
async def change_password(body: PasswordChangeIn, store: Store, settings: Settings, passwords: PasswordsDep,
                          claims: dict = Depends(_claims)) -> Response:
    try:
        await handlers.change_password(store, UUID(claims["sub"]), UUID(claims["sid"]), body.current_password,
                                       body.new_password, settings=settings, passwords=passwords)
    except domain.InvalidInput as exc:
        raise Problem(422, "Invalid password", str(exc))
    except InvalidCredentials:
        raise Problem(403, "Wrong password", "Confirm the change with your current password.")
    return Response(status_code=204)


@router.get("/v1/users/me/export")
async def export_my_data(request: Request, store: Store, exporter: ExporterDep,
                         claims: dict = Depends(_claims)) -> dict:
    user = await handlers.get_user(store, UUID(claims["sub"]))
    if user is None:
        raise Problem(404, "No such user")
    return await exporter.export(user, bearer_token(request) or "")


@router.delete("/v1/users/me", status_code=202)
async def erase_me(store: Store, settings: Settings, keys: Keys, claims: dict = Depends(_claims)) -> dict:
    user_id = UUID(claims["sub"])
    await handlers.erase_user(store, user_id, settings=settings, keys=keys)
    return {"user_id": str(user_id), "status_url": f"/v1/erasures/{user_id}"}


@router.get("/v1/erasures/{user_id}", responses={404: {"description": "No erasure of that id"}})
async def erasure_status(user_id: UUID, store: Store, settings: Settings) -> dict:
    status = await handlers.erasure_status(store, user_id, settings=settings)
    if status is None:
        raise Problem(404, "No such erasure")
    return status


@router.get("/.well-known/jwks.json")
async def jwks(response: Response, store: Store, settings: Settings, vault: Vault) -> dict:
    response.headers["Cache-Control"] = "public, max-age=60"
    return await handlers.publish_jwks(store, settings=settings, vault=vault)


@router.post("/v1/admin/signing-keys/rotate", status_code=201)
async def rotate_keys(request: Request, store: Store, settings: Settings, vault: Vault) -> dict:
    require_admin(request, settings.admin_token)
    return {"kid": await handlers.rotate_keys(store, vault=vault)}


@router.get("/v1/admin/users", response_model=UserOut)
async def admin_find_user(email: Annotated[str, Query(max_length=320)], request: Request,
                          store: Store, settings: Settings) -> UserOut:
    require_admin(request, settings.admin_token)
    user = await handlers.find_user(store, email)
    if user is None:
        raise Problem(404, "No such user")
    return _user_out(user)


class ErasureOut(BaseModel):
    user_id: UUID
    requested_at: datetime
    confirmed: dict[str, datetime] = Field(description="Each service that confirmed, and when.")
    key_caches_expire_at: datetime
    waiting_for: list[str]
    complete: bool


@router.get("/v1/admin/erasures", response_model=list[ErasureOut])
async def admin_list_erasures(request: Request, response: Response, store: Store, settings: Settings,
                              requested: pages.Page = Depends(pages.page)) -> list[ErasureOut]:
    """Every erasure request, newest first, with what each service confirmed."""
    require_admin(request, settings.admin_token)
    rows = await handlers.list_erasures(store, requested.position(datetime.fromisoformat, UUID),
                                        requested.fetch_limit(), settings=settings)
    shown = pages.respond(request, response, rows, requested,
                          key=lambda r: [r["requested_at"].isoformat(), r["user_id"]])
    return [ErasureOut(**r) for r in shown]


class ConsoleAttemptIn(BaseModel):
    account: Line = Field(min_length=1, max_length=200, description="The console account's name.")
    client: str | None = Field(default=None, max_length=64, description="The client's address as the caller saw it.")


@router.post("/v1/admin/console-attempts", status_code=204,
             responses={429: {"description": "Locked out; Retry-After says for how long"}})
async def reserve_console_attempt(body: ConsoleAttemptIn, request: Request, store: Store,
                                  settings: Settings) -> Response:
    """The Site asks before it checks the console's password: the attempt is counted (a failure until
    `.../succeeded` says otherwise), per account and per client, in identity's database, so every Site
    replica shares the count."""
    require_admin(request, settings.admin_token)
    try:
        await handlers.reserve_console_attempt(store, body.account, body.client, settings=settings)
    except Throttled as exc:
        raise Problem(429, "Too many failed sign-ins", "Wait before trying again.",
                      headers={"Retry-After": str(exc.retry_after)})
    return Response(status_code=204)


@router.post("/v1/admin/console-attempts/succeeded", status_code=204)
async def release_console_attempt(body: ConsoleAttemptIn, request: Request, store: Store,
                                  settings: Settings) -> Response:
    require_admin(request, settings.admin_token)
    await handlers.release_console_attempt(store, body.account, body.client, settings=settings)
    return Response(status_code=204)


@router.post("/v1/admin/users/{user_id}/disable", status_code=204)
async def admin_disable_user(user_id: UUID, request: Request, store: Store, settings: Settings) -> Response:
    require_admin(request, settings.admin_token)
    if (not await handlers.disable_user(store, user_id, settings=settings)
            and await handlers.get_user(store, user_id) is None):
        raise Problem(404, "No such user")
    return Response(status_code=204)


@router.get("/v1/admin/users/{user_id}", response_model=UserOut)
async def admin_get_user(user_id: UUID, request: Request, store: Store, settings: Settings) -> UserOut:
    require_admin(request, settings.admin_token)
    user = await handlers.get_user(store, user_id)
    if user is None:
        raise Problem(404, "No such user")
    return _user_out(user)


class ResetRequestIn(BaseModel):
    email: str = Field(max_length=320)


class ResetConfirmIn(BaseModel):
    token: str = Field(min_length=1, max_length=300)
    password: str = Field(max_length=1024)


class VerificationConfirmIn(BaseModel):
    token: str = Field(min_length=1, max_length=300)


_BAD_LINK = ("Invalid or expired link", "The link is unknown, was used already or has expired. Ask for a new one.")


def _too_many(exc: TooManyMails) -> Problem:
    return Problem(429, "Too many requests", "Wait before asking for another mail.",
                   headers={"Retry-After": str(exc.retry_after)})


@router.post("/v1/password-resets", status_code=202,
             responses={422: {"description": "Not an email address"}, 429: {"description": "Too many from this client"}})
async def request_password_reset(body: ResetRequestIn, request: Request, store: Store, settings: Settings,
                                 links: Links, forwarding: ForwardingDep) -> dict:
    try:
        await link_cases.request_password_reset(store, body.email, forwarding.client_address(request),
                                                settings=settings, links=links)
    except domain.InvalidInput as exc:
        raise Problem(422, "Invalid email", str(exc), errors=[{"loc": ["body", "email"], "msg": str(exc)}])
    except TooManyMails as exc:
        raise _too_many(exc)
    return {"detail": "If an account has this address, a reset link is on its way."}


@router.post("/v1/password-resets/confirm", status_code=204,
             responses={400: {"description": "Invalid or expired link"}, 422: {"description": "Weak password"}})
async def confirm_password_reset(body: ResetConfirmIn, store: Store, settings: Settings,
                                 passwords: PasswordsDep) -> Response:
    try:
        await link_cases.reset_password(store, body.token, body.password, settings=settings, passwords=passwords)
    except domain.InvalidToken:
        raise Problem(400, *_BAD_LINK)
    except domain.InvalidInput as exc:
        raise Problem(422, "Invalid password", str(exc), errors=[{"loc": ["body", "password"], "msg": str(exc)}])
    return Response(status_code=204)


@router.post("/v1/email-verifications/confirm", status_code=204, responses={400: {"description": "Invalid or expired link"}})
async def confirm_email_verification(body: VerificationConfirmIn, store: Store) -> Response:
    try:
        await link_cases.verify_email(store, body.token)
    except domain.InvalidToken:
        raise Problem(400, *_BAD_LINK)
    return Response(status_code=204)


@router.post("/v1/users/me/email-verifications", status_code=202, responses={429: {"description": "Too many mails"}})
async def resend_email_verification(store: Store, links: Links, claims: dict = Depends(_claims)) -> dict:
    try:
        sent = await link_cases.resend_verification(store, UUID(claims["sub"]), links=links)
    except TooManyMails as exc:
        raise _too_many(exc)
    return {"sent": sent, "detail": "A new link is on its way." if sent else "The address is verified already."}
