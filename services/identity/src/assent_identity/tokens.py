"""Access tokens: EdDSA JWTs with the key id in the header; keys rotate and stay published while needed."""

import base64
import hashlib
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import jwt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from assent_identity.ports import IdentityStore
from assent_identity.settings import IdentitySettings
from assent_shared.auth import AUDIENCE
from assent_shared.events import SessionsRevoked


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey
    created_at: datetime


class KeyVault:
    """Seals private signing keys before they reach the database, so a copy of the database
    (a backup, a replica, a leaked dump) cannot sign tokens without the configured secret."""

    _CONTEXT = b"assent-identity-signing-key"

    def __init__(self, secret: str) -> None:
        self._aead = AESGCM(hashlib.sha256(self._CONTEXT + secret.encode()).digest())
        self._opened: dict[str, Ed25519PrivateKey] = {}

    def seal(self, kid: str, private: Ed25519PrivateKey) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, private.private_bytes_raw(), kid.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, kid: str, sealed: str) -> Ed25519PrivateKey:
        if kid not in self._opened:
            raw = base64.b64decode(sealed)
            try:
                plain = self._aead.decrypt(raw[:12], raw[12:], kid.encode())
            except InvalidTag as exc:
                raise RuntimeError("signing key sealed under another ASSENT_SIGNING_KEY_SECRET") from exc
            self._opened[kid] = Ed25519PrivateKey.from_private_bytes(plain)
        return self._opened[kid]


def new_key() -> tuple[str, Ed25519PrivateKey, dict]:
    private = Ed25519PrivateKey.generate()
    kid = uuid4().hex
    public_jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    public_jwk.update({"kid": kid, "alg": "EdDSA", "use": "sig"})
    return kid, private, public_jwk


async def current_key(store: IdentityStore, vault: KeyVault, rotate_after: timedelta) -> SigningKey:
    """The key that signs now, making (or rotating to) a new one under a lock so replicas agree.
    `store` is in a transaction: the lock holds until it ends."""
    row = await store.active_signing_key()
    if row is None or datetime.now(UTC) - row["created_at"] > rotate_after:
        await store.lock_keys()
        row = await store.active_signing_key()
        if row is None or datetime.now(UTC) - row["created_at"] > rotate_after:
            await rotate(store, vault)
            row = await store.active_signing_key()
    return SigningKey(row["kid"], vault.open(row["kid"], row["private_key_sealed"]), row["created_at"])


async def rotate(store: IdentityStore, vault: KeyVault) -> str:
    kid, private, jwk = new_key()
    await store.insert_signing_key(kid, vault.seal(kid, private), jwk)
    await store.retire_keys_except(kid)
    return kid


def issue_access_token(key: SigningKey, user_id: UUID, session_id: UUID, issuer: str, ttl: int) -> str:
    now = int(time.time())
    claims = {"sub": str(user_id), "sid": str(session_id), "iss": issuer, "aud": AUDIENCE, "iat": now,
              "exp": now + ttl}
    return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})


async def announce_ended(store: IdentityStore, user_id: UUID, session_ids: tuple[UUID, ...], *,
                         settings: IdentitySettings) -> None:
    """Every service refuses the ended sessions' access tokens once this event reaches it, instead
    of until they expire; no `session_ids` means every session of the user up to now."""
    now = datetime.now(UTC)
    await store.publish(SessionsRevoked(
        user_id=user_id, session_ids=session_ids, revoked_at=now,
        expires_at=now + timedelta(seconds=settings.access_token_seconds + 60)))
