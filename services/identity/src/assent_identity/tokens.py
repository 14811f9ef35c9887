"""Access tokens: EdDSA JWTs with the key id in the header; keys rotate and stay published while needed."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from assent_identity import storage
from assent_shared.auth import AUDIENCE


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey
    created_at: datetime


def new_key() -> tuple[str, str, dict]:
    private = Ed25519PrivateKey.generate()
    kid = uuid4().hex
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    public_jwk.update({"kid": kid, "alg": "EdDSA", "use": "sig"})
    return kid, pem, public_jwk


async def current_key(conn: asyncpg.Connection, rotate_after: timedelta) -> SigningKey:
    """The key that signs now, making (or rotating to) a new one under a lock so replicas agree."""
    row = await storage.active_signing_key(conn)
    if row is None or datetime.now(UTC) - row["created_at"] > rotate_after:
        async with conn.transaction():
            await storage.lock_keys(conn)
            row = await storage.active_signing_key(conn)
            if row is None or datetime.now(UTC) - row["created_at"] > rotate_after:
                await rotate(conn)
                row = await storage.active_signing_key(conn)
    private = serialization.load_pem_private_key(row["private_pem"].encode(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    return SigningKey(row["kid"], private, row["created_at"])


async def rotate(conn: asyncpg.Connection) -> str:
    kid, pem, jwk = new_key()
    await storage.insert_signing_key(conn, kid, pem, jwk)
    await storage.retire_keys_except(conn, kid)
    return kid


def issue_access_token(key: SigningKey, user_id: UUID, session_id: UUID, issuer: str, ttl: int) -> str:
    now = int(time.time())
    claims = {"sub": str(user_id), "sid": str(session_id), "iss": issuer, "aud": AUDIENCE, "iat": now,
              "exp": now + ttl}
    return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})
