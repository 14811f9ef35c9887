"""Hits per network per minute, in memory: a flood from one network is refused before it costs anything."""

import math


class NetworkRateLimit:
    """A fixed one-minute window per network unit, per replica (N replicas admit up to N times the limit)."""

    def __init__(self, per_minute: int) -> None:
        self._limit = per_minute
        self._window = -1
        self._counts: dict[str, int] = {}

    def admit(self, unit: str, hits: int, now: float) -> float:
        """0 when `hits` more hits from `unit` are admitted now; otherwise seconds until they may come."""
        window = math.floor(now / 60)
        if window != self._window:
            self._window, self._counts = window, {}  # the old window's keys go with it: memory stays bounded
        used = self._counts.get(unit, 0)
        if used + hits > self._limit:
            return 60 - now % 60
        self._counts[unit] = used + hits
        return 0.0
