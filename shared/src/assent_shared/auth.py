"""Admin-token and JWT checks for routes; identity issues the tokens, every service verifies them offline."""

import asyncio
import hmac
import time
from dataclasses import dataclass
from uuid import UUID

import jwt
from fastapi import Request

from assent_shared.problems import Problem

AUDIENCE = "assent"
_KEY_TTL = 300.0
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
    """Verifies identity's EdDSA access tokens against its published JWKS (cached, refetched on an unknown kid)."""

    def __init__(self, jwks_url: str, issuer: str) -> None:
        self._client = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=5)
        self._issuer = issuer
        self._keys: dict[str, tuple[jwt.PyJWK, float]] = {}

    async def _key(self, token: str) -> jwt.PyJWK:
        """A key seen in the last few minutes is used from memory; otherwise a (threaded) JWKS
        lookup, so a key withdrawn from the JWKS stops working here within `_KEY_TTL`."""
        kid = jwt.get_unverified_header(token).get("kid")
        cached = self._keys.get(kid) if isinstance(kid, str) else None
        if cached is not None and time.monotonic() - cached[1] < _KEY_TTL:
            return cached[0]
        key = await asyncio.to_thread(self._client.get_signing_key_from_jwt, token)
        if isinstance(kid, str):
            self._keys[kid] = (key, time.monotonic())
        return key

    async def verify(self, token: str) -> dict:
        try:
            key = await self._key(token)
            return jwt.decode(
                token, key.key, algorithms=["EdDSA"], audience=AUDIENCE, issuer=self._issuer,
                options={"require": ["exp", "sub", "iat"]},
            )
        except (jwt.PyJWTError, jwt.PyJWKClientError) as exc:
            raise Problem(401, "Invalid token", "The access token is not valid.", headers=_UNAUTHORIZED) from exc


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
