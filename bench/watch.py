"""Where deliveries land: the SMTP sink's folder (one .eml per mail, named by its arrival time in ns)
and a local processor (shared/testing's receiver) whose every accepted payload gets an arrival time."""

import time
from email.parser import BytesHeaderParser
from pathlib import Path

from assent_devtools.testing.receiver import ProcessorReceiver


class MailWatch:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen: dict[str, tuple[float, str, str]] = {}  # file -> (arrival, To, Subject)
        self._parser = BytesHeaderParser()

    def scan(self) -> dict[str, tuple[float, str, str]]:
        for path in self.folder.glob("*.eml"):
            if path.name not in self.seen:
                with path.open("rb") as f:
                    headers = self._parser.parse(f)
                arrived = int(path.name.split("-", 1)[0]) / 1e9
                self.seen[path.name] = (arrived, str(headers["To"] or ""), str(headers["Subject"] or ""))
        return self.seen

    def arrivals_to(self, addresses: set[str]) -> dict[str, float]:
        """First arrival per To address among `addresses`."""
        found: dict[str, float] = {}
        for arrived, to, _ in self.scan().values():
            if to in addresses and (to not in found or arrived < found[to]):
                found[to] = arrived
        return found


class _Stamped(list):
    def append(self, payload: dict) -> None:
        payload["_arrived"] = time.time()
        super().append(payload)


class Processor(ProcessorReceiver):
    """The test receiver, with the arrival time of each accepted payload."""

    def __init__(self, secret: str) -> None:
        super().__init__(secret)
        self.accepted = _Stamped()

    def arrivals(self) -> dict[str, float]:
        return {p["consent_event_id"]: p["_arrived"] for p in list(self.accepted)}
