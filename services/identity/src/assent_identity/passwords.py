"""Password hashing (argon2id with the configured cost), as one collaborator the use cases share."""

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from assent_identity.settings import IdentitySettings


class Passwords:
    def __init__(self, settings: IdentitySettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        # Verifying against a throwaway hash keeps "no such user" as slow as "wrong password".
        self._decoy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def matches(self, stored_hash: str | None, password: str) -> bool:
        """Whether `password` is the one `stored_hash` was made of; with no hash, False after as long a check."""
        try:
            await asyncio.to_thread(self._hasher.verify, stored_hash or self._decoy_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)
