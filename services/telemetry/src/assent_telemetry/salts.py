"""Daily salts for cookieless visitor hashes: random per UTC day, shared by replicas, deleted when the day closes."""

import asyncio
import secrets
from datetime import date

from assent_telemetry.ports import Telemetries


class DailySalts:
    def __init__(self, telemetries: Telemetries) -> None:
        self._telemetries = telemetries
        self._known: dict[date, bytes] = {}
        self._lock = asyncio.Lock()

    async def get(self, day: date) -> bytes:
        # Held in memory so ingest touches the database once per day per replica, not per hit.
        salt = self._known.get(day)
        if salt is None:
            async with self._lock:
                salt = self._known.get(day)
                if salt is None:
                    async with self._telemetries.reading() as store:
                        salt = await store.salt_for(day, secrets.token_bytes(32))
                    self._known[day] = salt
        return salt

    async def forget_before(self, day: date) -> None:
        for old in [d for d in self._known if d < day]:
            del self._known[old]
        async with self._telemetries.reading() as store:
            await store.delete_salts_before(day)
