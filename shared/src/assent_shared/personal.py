"""Personal fields in events, sealed under a per-subject data key (crypto-shredding).

A producer seals each personal field (an email, a name, anything a person typed) with AES-256-GCM
under the data key of the person it is about; the associated data binds the ciphertext to its
event type, field name, subject and key, so it cannot be moved to another event or person. The
keys live only at the key owner (identity); consumers fetch them through `KeyOwnerClient`, which
keeps them in memory for at most `cache_seconds`. Erasure deletes the subject's key: from then on
every copy of every event about that subject (topics, dead letters, backups, replays) is
unreadable, everywhere, once caches have expired. docs/personal-data.md shows how to use it.
"""

import base64
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol
from uuid import UUID

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field

from assent_shared.settings import ServiceSettings, UnsafeSettings

KEY_BYTES = 32
_NONCE_BYTES = 12
_AAD_PREFIX = "assent-personal-field/v1"


class SealedField(BaseModel):
    """A personal value as it travels in an event: readable only with the subject's data key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alg: Literal["A256GCM"] = Field(default="A256GCM", description="AES-256-GCM.")
    key_id: UUID = Field(description="Id of the subject's data key at the key owner (identity).")
    subject_id: UUID = Field(description="The person the value is about; erasing them deletes the key.")
    nonce: str = Field(pattern=r"^[A-Za-z0-9_-]{16}$", description="96-bit GCM nonce, base64url.")
    ciphertext: str = Field(min_length=22, max_length=200_000, pattern=r"^[A-Za-z0-9_-]+$",
                            description="Ciphertext and 128-bit tag, base64url.")


@dataclass(frozen=True)
class DataKey:
    key_id: UUID
    subject_id: UUID
    secret: bytes

    def __repr__(self) -> str:  # a key must never reach a log line
        return f"DataKey(key_id={self.key_id}, subject_id={self.subject_id})"


class PersonalDataError(Exception):
    """A sealed field cannot be opened."""


class SubjectErased(PersonalDataError):
    """The subject's key was deleted at erasure: the value is gone for good. Skip it; never retry."""


class FieldUnreadable(PersonalDataError):
    """The field does not open: tampered, moved from another event or subject, or an unknown key."""


class KeyOwnerUnavailable(OSError):
    """The key owner did not answer (or refused this service): transient, the event is retried."""


def new_data_key(subject_id: UUID, key_id: UUID) -> DataKey:
    return DataKey(key_id, subject_id, AESGCM.generate_key(bit_length=KEY_BYTES * 8))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def associated_data(event_type: str, field: str, subject_id: UUID, key_id: UUID) -> bytes:
    return f"{_AAD_PREFIX}|{event_type}|{field}|{subject_id}|{key_id}".encode()


def seal(key: DataKey, value: str, event_type: str, field: str) -> SealedField:
    nonce = os.urandom(_NONCE_BYTES)
    aad = associated_data(event_type, field, key.subject_id, key.key_id)
    ciphertext = AESGCM(key.secret).encrypt(nonce, value.encode(), aad)
    return SealedField(key_id=key.key_id, subject_id=key.subject_id, nonce=_b64(nonce), ciphertext=_b64(ciphertext))


def unseal(key: DataKey, sealed: SealedField, event_type: str, field: str) -> str:
    if key.key_id != sealed.key_id or key.subject_id != sealed.subject_id:
        raise FieldUnreadable("the key does not belong to this field")
    aad = associated_data(event_type, field, sealed.subject_id, sealed.key_id)
    try:
        return AESGCM(key.secret).decrypt(_unb64(sealed.nonce), _unb64(sealed.ciphertext), aad).decode()
    except (InvalidTag, ValueError) as exc:
        raise FieldUnreadable("the field does not open under its key and event") from exc


class KeyOwner(Protocol):
    async def key_for(self, subject_id: UUID) -> DataKey:
        """The subject's current data key, made on first use (for producers)."""

    async def key(self, subject_id: UUID, key_id: UUID) -> DataKey:
        """The key a field was sealed with; SubjectErased once the subject is erased."""


class KeyCache:
    """At most `max_entries` keys, each for at most `ttl` seconds: the bound on how long a key
    deleted at erasure can still open fields in this process."""

    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[tuple[UUID, UUID], tuple[DataKey, float]] = OrderedDict()

    def get(self, subject_id: UUID, key_id: UUID) -> DataKey | None:
        found = self._entries.get((subject_id, key_id))
        if found is None:
            return None
        if time.monotonic() - found[1] >= self.ttl:
            del self._entries[(subject_id, key_id)]
            return None
        self._entries.move_to_end((subject_id, key_id))
        return found[0]

    def put(self, key: DataKey) -> None:
        self._entries[(key.subject_id, key.key_id)] = (key, time.monotonic())
        self._entries.move_to_end((key.subject_id, key.key_id))
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def drop_subject(self, subject_id: UUID) -> None:
        for entry in [e for e in self._entries if e[0] == subject_id]:
            del self._entries[entry]


def development_key_token(service: str) -> str:
    """The token a service presents to the key owner on a laptop or in tests; production sets its own."""
    return f"development-only-key-token-{service}"


class KeyOwnerClient:
    """The key owner's internal API, authenticated as this service, with a bounded cache."""

    def __init__(self, base_url: str, service: str, token: str, cache: KeyCache, timeout: float = 5) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout,
                                       headers={"Authorization": f"Bearer {token}", "Assent-Service": service})
        self._cache = cache

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> "KeyOwnerClient":
        token = settings.key_owner_token
        if token is None:
            if settings.environment == "production":
                raise UnsafeSettings("ASSENT_KEY_OWNER_TOKEN must be set in production")
            token = development_key_token(settings.service_name)
        return cls(settings.key_owner_url, settings.service_name, token,
                   KeyCache(settings.key_cache_seconds, settings.key_cache_entries))

    @classmethod
    def for_service(cls, settings: ServiceSettings, on_stop: Callable[[Callable[[], Awaitable[None]]], None]
                    ) -> "KeyOwnerClient":
        """The client a service's composition root uses: from its settings, closed when it stops (`Runtime.on_stop`)."""
        client = cls.from_settings(settings)
        on_stop(client.aclose)
        return client

    async def key_for(self, subject_id: UUID) -> DataKey:
        return self._parse(await self._call("POST", f"/internal/v1/subject-keys/{subject_id}"))

    async def key(self, subject_id: UUID, key_id: UUID) -> DataKey:
        cached = self._cache.get(subject_id, key_id)
        if cached is not None:
            return cached
        key = self._parse(await self._call("GET", f"/internal/v1/subject-keys/{subject_id}/{key_id}"))
        self._cache.put(key)
        return key

    async def erase(self, subject_id: UUID) -> None:
        """Delete a subject's key (only the service that made it may): every field sealed under it is gone."""
        self._cache.drop_subject(subject_id)
        await self._call("DELETE", f"/internal/v1/subject-keys/{subject_id}")

    async def _call(self, method: str, path: str) -> httpx.Response:
        try:
            response = await self._http.request(method, path)
        except httpx.HTTPError as exc:
            raise KeyOwnerUnavailable(f"key owner unreachable: {type(exc).__name__}") from exc
        if response.status_code == 410:
            raise SubjectErased("the subject was erased")
        if response.status_code == 404:
            raise FieldUnreadable("no such data key")
        if response.status_code >= 300:
            raise KeyOwnerUnavailable(f"key owner answered {response.status_code}")
        return response

    @staticmethod
    def _parse(response: httpx.Response) -> DataKey:
        body = response.json() if response.content else {}
        if not body:
            raise KeyOwnerUnavailable("key owner answered without a key")
        return DataKey(UUID(body["key_id"]), UUID(body["subject_id"]), _unb64(body["key"]))

    async def aclose(self) -> None:
        await self._http.aclose()


def key_body(key: DataKey) -> dict[str, str]:
    """How the key owner's API hands out a key."""
    return {"key_id": str(key.key_id), "subject_id": str(key.subject_id), "key": _b64(key.secret)}


class PersonalFields:
    """What a service uses: seal a value for an event, open a field of an event."""

    def __init__(self, owner: KeyOwner) -> None:
        self._owner = owner

    async def seal(self, event_type: type | str, field: str, subject_id: UUID, value: str) -> SealedField:
        key = await self._owner.key_for(subject_id)
        return seal(key, value, _type_name(event_type), field)

    async def open(self, event: BaseModel, field: str) -> str:
        """The plaintext of `event.<field>`; SubjectErased once its subject is erased."""
        sealed = getattr(event, field)
        if not isinstance(sealed, SealedField):
            raise TypeError(f"{type(event).__name__}.{field} is not a sealed field")
        subject = getattr(event, "subject", lambda: None)()
        if subject is not None and str(sealed.subject_id) != subject:
            raise FieldUnreadable("the field belongs to another subject than its event")
        key = await self._owner.key(sealed.subject_id, sealed.key_id)
        return unseal(key, sealed, type(event).__name__, field)

    async def open_optional(self, event: BaseModel, field: str) -> str | None:
        return None if getattr(event, field) is None else await self.open(event, field)


def _type_name(event_type: type | str) -> str:
    return event_type if isinstance(event_type, str) else event_type.__name__
