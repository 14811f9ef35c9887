"""A clock for the in-memory stores of the unit lane."""

from datetime import UTC, datetime, timedelta


class TickingClock:
    """Moves on a millisecond each reading, as the database's clock does between statements; a test moves
    `now` forward to pass a window or an expiry."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now
