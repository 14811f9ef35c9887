"""Admin-token and JWT checks for routes; identity issues the tokens, every service verifies them offline."""

import asyncio
import hmac
import math
import time
from dataclasses import dataclass
from uuid import UUID

import httpx
import jwt
import structlog
from fastapi import Request

from assent_shared.problems import Problem
from assent_shared.revocations import Revocations

log = structlog.get_logger(__name__)
AUDIENCE = "assent"
_REFETCH_UNKNOWN = 10.0
_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Principal:
    """Who is calling: an admin, or a signed-in user."""

    user_id: UUID | None
    is_admin: bool

    def may_act_for(self, subject_id: UUID) -> bool:
        return self.is_admin or self.user_id == subject_id


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def is_admin_token(token: str | None, admin_token: str | None) -> bool:
    return bool(token and admin_token) and hmac.compare_digest(token.encode(), admin_token.encode())


class TokenVerifier:
    """Verifies identity's EdDSA access tokens offline against its published JWKS, and refuses the
    tokens of ended sessions.

    The whole key set is fetched again once it is `key_ttl` seconds old, so a key withdrawn from the
    JWKS stops working here within `key_ttl`. An unknown kid fetches the set early, at most every
    `_REFETCH_UNKNOWN` seconds, so tokens with made-up kids cannot flood identity.
    """

    def __init__(self, jwks_url: str, issuer: str, revocations: Revocations | None = None,
                 key_ttl: float = 300.0) -> None:
        self._jwks_url = jwks_url
        self._issuer = issuer
        self._revocations = revocations or Revocations()
        self._key_ttl = key_ttl
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = self._last_success = -math.inf
        self._lock = asyncio.Lock()

    async def _key(self, kid: object) -> jwt.PyJWK:
        age = time.monotonic() - self._fetched_at
        if age >= self._key_ttl or (kid not in self._keys and age >= _REFETCH_UNKNOWN):
            async with self._lock:
                age = time.monotonic() - self._fetched_at
                if age >= self._key_ttl or (kid not in self._keys and age >= _REFETCH_UNKNOWN):
                    await self._fetch()
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise jwt.InvalidKeyError("unknown key id")
        return key

    async def _fetch(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(self._jwks_url)
                response.raise_for_status()
            found = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            # Identity unreachable: tokens of known keys keep working for one more short while; the
            # expired set is tried again after a short pause, not on every request.
            log.warning("JWKS not fetched", error=type(exc).__name__)
            self._fetched_at = time.monotonic() - self._key_ttl + _REFETCH_UNKNOWN
            if time.monotonic() - self._last_success > 2 * self._key_ttl:
                self._keys = {}
            return
        self._keys = {k.key_id: k for k in found.keys if k.key_id}
        self._fetched_at = self._last_success = time.monotonic()

    async def verify(self, token: str) -> dict:
        try:
            key = await self._key(jwt.get_unverified_header(token).get("kid"))
            claims = jwt.decode(
                token, key.key, algorithms=["EdDSA"], audience=AUDIENCE, issuer=self._issuer,
                options={"require": ["exp", "sub", "iat"]},
            )
        except jwt.PyJWTError as exc:
            raise Problem(401, "Invalid token", "The access token is not valid.", headers=_UNAUTHORIZED) from exc
        if self._revocations.refuses(claims):
            raise Problem(401, "Session ended", "This session has ended; sign in again.", headers=_UNAUTHORIZED)
        return claims


async def authenticate(request: Request, verifier: TokenVerifier, admin_token: str | None) -> Principal:
    token = bearer_token(request)
    if token is None:
        raise Problem(401, "Authentication required", headers=_UNAUTHORIZED)
    if is_admin_token(token, admin_token):
        return Principal(user_id=None, is_admin=True)
    claims = await verifier.verify(token)
    try:
        return Principal(user_id=UUID(claims["sub"]), is_admin=False)
    except ValueError as exc:
        raise Problem(401, "Invalid token", headers=_UNAUTHORIZED) from exc


def require_admin(request: Request, admin_token: str | None) -> None:
    if not is_admin_token(bearer_token(request), admin_token):
        raise Problem(401 if bearer_token(request) is None else 403, "Admin credentials required",
                      headers=_UNAUTHORIZED)
