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
        # Each hash holds memory_kib while it runs and the thread's malloc arena keeps it after: more hashes at
        # once than cores only queue inside the thread pool, but grow the RSS by one arena each.
        self._in_flight = asyncio.Semaphore(settings.argon2_in_flight)
        # Verifying against a throwaway hash keeps "no such user" as slow as "wrong password".
        self._decoy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        async with self._in_flight:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def matches(self, stored_hash: str | None, password: str) -> bool:
        """Whether `password` is the one `stored_hash` was made of; with no hash, False after as long a check."""
        try:
            async with self._in_flight:
                await asyncio.to_thread(self._hasher.verify, stored_hash or self._decoy_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)
