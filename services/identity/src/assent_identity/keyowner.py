"""The key owner: per-subject data keys of personal fields in events, in identity's own tables.

Keys are wrapped under ASSENT_DATA_KEY_SECRET (a secret of its own, apart from the signing-key
secret), so a copy of the database alone opens nothing. Every access is audited with the calling
service, the subject, the key id, the action and its outcome: never a key or a personal value.
"""

import asyncio
import hashlib
import hmac
import os
from uuid import UUID, uuid4

import asyncpg
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from assent_identity.ports import Identities, IdentityStore
from assent_shared.personal import DataKey, FieldUnreadable, SubjectErased, new_data_key

log = structlog.get_logger(__name__)
SELF = "identity"
_NONCE = 12


class NotKeyOwner(Exception):
    """Only the service that made a subject's key may delete it (and identity, which erases accounts)."""


class KeyWrap:
    _CONTEXT = b"assent-identity-data-key"

    def __init__(self, secret: str) -> None:
        self._aead = AESGCM(hashlib.sha256(self._CONTEXT + secret.encode()).digest())

    @staticmethod
    def _aad(subject_id: UUID, key_id: UUID) -> bytes:
        return f"{subject_id}|{key_id}".encode()

    def wrap(self, key: DataKey) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, key.secret, self._aad(key.subject_id, key.key_id))

    def unwrap(self, subject_id: UUID, key_id: UUID, wrapped: bytes) -> DataKey:
        try:
            secret = self._aead.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], self._aad(subject_id, key_id))
        except InvalidTag as exc:
            raise RuntimeError("data key wrapped under another ASSENT_DATA_KEY_SECRET") from exc
        return DataKey(key_id, subject_id, secret)


class DataKeys:
    """Create, read and delete subjects' data keys; each call in its own transaction unless given one."""

    def __init__(self, identities: Identities, data_key_secret: str, clients: dict[str, str]) -> None:
        self._identities = identities
        self._wrap = KeyWrap(data_key_secret)
        self._clients = {name: hashlib.sha256(token.encode()).digest() for name, token in clients.items()}

    def client_named(self, service: str, token: str) -> str | None:
        """The calling service when its token matches the one configured for it."""
        expected = self._clients.get(service)
        given = hashlib.sha256(token.encode()).digest()
        return service if expected is not None and hmac.compare_digest(expected, given) else None

    async def key_for(self, service: str, subject_id: UUID, store: IdentityStore | None = None) -> DataKey:
        if store is None:
            async with self._identities.transaction() as own:
                return await self.key_for(service, subject_id, own)
        if await store.data_key_erased(subject_id):
            await self._audit_refusal(service, subject_id, None, "create", "erased")
            raise SubjectErased("the subject was erased")
        row = await store.data_key(subject_id)
        if row is None:
            made = new_data_key(subject_id, uuid4())
            row = await store.insert_data_key(subject_id, made.key_id, self._wrap.wrap(made), service)
        await store.audit_key_access(service, subject_id, row["key_id"], "create", "ok")
        return self._wrap.unwrap(subject_id, row["key_id"], row["wrapped_key"])

    async def key(self, service: str, subject_id: UUID, key_id: UUID) -> DataKey:
        async with self._identities.transaction() as store:
            row = await store.data_key(subject_id)
            if row is not None and row["key_id"] == key_id:
                await store.audit_key_access(service, subject_id, key_id, "read", "ok")
                return self._wrap.unwrap(subject_id, key_id, row["wrapped_key"])
            erased = await store.data_key_erased(subject_id)
            await store.audit_key_access(service, subject_id, key_id, "read", "erased" if erased else "unknown")
        if erased:
            raise SubjectErased("the subject was erased")
        raise FieldUnreadable("no such data key")

    async def erase(self, service: str, subject_id: UUID, store: IdentityStore | None = None) -> None:
        if store is None:
            async with self._identities.transaction() as own:
                return await self.erase(service, subject_id, own)
        row = await store.data_key(subject_id)
        if row is not None and service not in (row["owner_service"], SELF):
            await self._audit_refusal(service, subject_id, row["key_id"], "erase", "refused")
            raise NotKeyOwner(service)
        await store.delete_data_key(subject_id, service)
        await store.audit_key_access(service, subject_id, row["key_id"] if row else None, "erase", "ok")

    async def _audit_refusal(self, service: str, subject_id: UUID, key_id: UUID | None, action: str,
                             outcome: str) -> None:
        """A refusal is recorded in a transaction of its own: the caller's rolls back."""
        async with self._identities.reading() as store:
            await store.audit_key_access(service, subject_id, key_id, action, outcome)

    async def audit(self, subject_id: UUID) -> list[dict]:
        async with self._identities.reading() as store:
            return await store.key_audit(subject_id)

    async def prune_audit(self, keep_seconds: float, every_seconds: float) -> None:
        """Audit rows are kept for `keep_seconds`, then deleted (runs until cancelled)."""
        while True:
            try:
                async with self._identities.reading() as store:
                    pruned = await store.prune_key_audit(keep_seconds)
                if pruned:
                    log.info("key audit pruned", rows=pruned)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("key audit pruning failed", error=type(exc).__name__)
            await asyncio.sleep(every_seconds)


class LocalKeyOwner:
    """Identity's own view of the key owner (the `KeyOwner` protocol), inside its transaction."""

    def __init__(self, keys: DataKeys, store: IdentityStore) -> None:
        self._keys = keys
        self._store = store

    async def key_for(self, subject_id: UUID) -> DataKey:
        return await self._keys.key_for(SELF, subject_id, self._store)

    async def key(self, subject_id: UUID, key_id: UUID) -> DataKey:
        return await self._keys.key(SELF, subject_id, key_id)
