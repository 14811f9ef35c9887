"""The two ways out: SMTP for email, signed HTTPS webhooks for processors."""

import asyncio
import hashlib
import hmac
import json
import time
from email.message import EmailMessage

import aiosmtplib
import httpx

from assent_mailer.settings import MailerSettings
from assent_shared.tracing import current_traceparent


class DeliveryFailed(Exception):
    """The far side did not take it; retried later."""


class HardBounce(Exception):
    """The relay refused the address for good (a 5xx answer): the address is suppressed."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class Webhooks:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def post(self, url: str, secret: str, payload: dict) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"content-type": "application/json", "Assent-Signature": sign(secret, body, int(time.time()))}
        traceparent = current_traceparent()
        if traceparent:
            headers["traceparent"] = traceparent
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(type(exc).__name__) from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"HTTP {response.status_code}")


class Smtp:
    """Kept-open SMTP connections, each carrying one message at a time.

    A new connection per mail cost a third of the sink's throughput (docs/performance.md), and a
    TLS handshake per mail with a real relay. A connection is dropped after any error, and one
    that the relay closed while idle is replaced once before the send counts as failed.
    """

    def __init__(self, settings: MailerSettings) -> None:
        self._settings = settings
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(settings.smtp_connections)

    async def send(self, message: EmailMessage) -> None:
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            try:
                client = await self._deliver(client, message)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                _drop(client)
                if all(500 <= r.code < 600 for r in exc.recipients):
                    raise HardBounce(type(exc).__name__) from exc
                raise DeliveryFailed(type(exc).__name__) from exc
            except aiosmtplib.SMTPResponseException as exc:
                _drop(client)
                if 500 <= exc.code < 600 and exc.code != 530:
                    raise HardBounce(f"SMTP {exc.code}") from exc
                raise DeliveryFailed(f"SMTP {exc.code}") from exc
            except (aiosmtplib.SMTPException, OSError) as exc:
                _drop(client)
                raise DeliveryFailed(type(exc).__name__) from exc
            self._idle.append(client)

    async def _deliver(self, client: aiosmtplib.SMTP | None, message: EmailMessage) -> aiosmtplib.SMTP:
        if client is not None and client.is_connected:
            try:
                await client.send_message(message)
                return client
            except aiosmtplib.SMTPServerDisconnected:
                pass  # closed by the relay while idle: a fresh connection gets one try
        client = await self._connect()
        await client.send_message(message)
        return client

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self._settings
        client = aiosmtplib.SMTP(hostname=s.smtp_host, port=s.smtp_port, username=s.smtp_username,
                                 password=s.smtp_password, start_tls=s.smtp_starttls, timeout=10)
        await client.connect()
        return client

    async def close(self) -> None:
        while self._idle:
            client = self._idle.pop()
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


def _drop(client: aiosmtplib.SMTP | None) -> None:
    if client is not None and client.is_connected:
        client.close()
