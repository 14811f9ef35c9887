"""A local SMTP sink: every message is kept as an .eml file a person or a test can read."""

import logging
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from uuid import uuid4

from aiosmtpd.controller import Controller


# Mail to this domain is refused with 550, so a person or a test can see a hard bounce handled.
BOUNCING_DOMAIN = "bounce.test"


class _SaveToFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_RCPT(self, _server, _session, envelope, address: str, _options) -> str:  # noqa: N802
        if address.lower().endswith("@" + BOUNCING_DOMAIN):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server, _session, envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        name = f"{time.time_ns()}-{uuid4().hex[:8]}.eml"
        partial = self.folder / f".{name}.part"
        partial.write_bytes(envelope.original_content or envelope.content)
        partial.rename(self.folder / name)  # readers never see half a message
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(self, folder: Path, port: int, host: str = "127.0.0.1") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        # aiosmtpd logs every envelope address (personal data) at DEBUG; the sink keeps mail, not logs of it.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.folder = folder
        self.host = host
        self.port = port
        self._controller = Controller(_SaveToFolder(folder), hostname=host, port=port)

    def start(self) -> "SmtpSink":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def messages(self) -> list[EmailMessage]:
        return [
            message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[misc]
            for path in sorted(self.folder.glob("*.eml"))
        ]
