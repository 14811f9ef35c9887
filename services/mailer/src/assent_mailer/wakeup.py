"""The dispatcher's wake-up: a use case that queued a delivery says so, and the dispatcher stops waiting for its
next poll. One per process, built by the composition root."""

import asyncio


class WorkArrived:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> None:
        """Until notified (since the last wait returned) or `timeout` seconds have passed. A delivery
        queued while the dispatcher was sending a batch, after its claim, wakes the next wait at once
        instead of waiting out the poll."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass
        self._event.clear()
