"""What the relay reports about mail it took: its signature, and the report read from a JSON notification
or a mail (a DSN, RFC 3464; a complaint, RFC 5965). Pure: no I/O, the clock is a parameter."""

import hashlib
import hmac
import json
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

TOLERANCE_SECONDS = 300


class BadReport(ValueError):
    """The body is not a report the mailer understands; the message says why, without personal data."""


class UnsupportedMediaType(BadReport):
    pass


@dataclass(frozen=True)
class Report:
    kind: Literal["bounce", "complaint"]
    message_id: str  # of the mail the report is about
    recipient: str | None  # the address the relay names, where it names one
    permanent: bool  # a hard bounce; a complaint always is


class Notification(BaseModel):
    """The relay's JSON notification (docs/contract.md, `POST /v1/bounces`)."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["bounce", "complaint"]
    message_id: str = Field(min_length=3, max_length=998, description="Message-ID of the mail reported on.")
    recipient: str | None = Field(default=None, max_length=320, description="The address that bounced or complained.")
    bounce_type: Literal["hard", "soft"] = Field(default="hard", description="A soft bounce changes nothing.")


def signature_valid(secret: str, header: str, body: bytes, now: float, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """`Assent-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, the processors' scheme; any of
    several v1 values may match (the relay signs with old and new secret while it rotates)."""
    timestamp, candidates = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or abs(now - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    # Every candidate is compared in constant time, and all of them, so timing tells nothing.
    return sum(hmac.compare_digest(expected, c) for c in candidates) > 0


def read(content_type: str, body: bytes) -> Report:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/json":
        return _from_json(body)
    if media_type == "message/rfc822":
        return _from_mail(message_from_bytes(body, policy=policy.default))
    if media_type == "multipart/report":  # the report itself as the body: its boundary is in the header
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        return _from_mail(message_from_bytes(head + body, policy=policy.default))
    raise UnsupportedMediaType("unsupported media type")


def _from_json(body: bytes) -> Report:
    try:
        note = Notification.model_validate(json.loads(body))
    except (ValueError, ValidationError, RecursionError) as exc:
        raise BadReport("not a notification: " + _first_error(exc)) from None
    permanent = note.type == "complaint" or note.bounce_type == "hard"
    return Report(note.type, note.message_id, note.recipient, permanent)


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        return f"{'.'.join(map(str, error['loc'])) or 'body'}: {error['msg']}"
    return "invalid JSON"


def _from_mail(mail: Message) -> Report:
    """A bounce (report-type delivery-status) or a complaint (feedback-report), as RFC 6522 wraps both."""
    report = mail if mail.get_content_type() == "multipart/report" else _part(mail, "multipart/report")
    if report is None:
        raise BadReport("no multipart/report in the mail")
    report_type = report.get_param("report-type", "", header="content-type")
    original = _part(report, "message/rfc822") or _part(report, "text/rfc822-headers")
    message_id = _message_id_of(original)
    if report_type == "feedback-report":
        feedback = _fields(_part(report, "message/feedback-report"))
        return Report("complaint", message_id, _address(feedback.get("original-rcpt-to")), True)
    if report_type != "delivery-status":
        raise BadReport("report-type is neither delivery-status nor feedback-report")
    status = _part(report, "message/delivery-status")
    recipients = [block for block in (status.get_payload() if status is not None else []) if block.get("action")]
    if not recipients:
        raise BadReport("no recipient in the delivery status")
    failed = next((r for r in recipients if str(r["action"]).strip().lower() == "failed"), recipients[0])
    permanent = str(failed["action"]).strip().lower() == "failed" and str(failed.get("status", "")).strip().startswith("5")
    return Report("bounce", message_id, _address(failed.get("final-recipient")), permanent)


def _part(mail: Message, content_type: str) -> Message | None:
    return next((p for p in mail.walk() if p.get_content_type() == content_type), None)


def _message_id_of(original: Message | None) -> str:
    """The reported mail's Message-ID, from the copy (or the headers) the report returns."""
    if original is None:
        raise BadReport("the report does not return the original mail or its headers")
    payload = original.get_payload()
    if isinstance(payload, list) and payload:  # message/rfc822: the mail itself
        headers = payload[0]
    else:  # text/rfc822-headers: the headers as text
        headers = message_from_bytes(original.get_payload(decode=True) or b"", policy=policy.default)
    message_id = headers.get("message-id")
    if not message_id:
        raise BadReport("the original mail has no Message-ID")
    return str(message_id).strip()


def _fields(part: Message | None) -> Message:
    """The fields of a machine-readable part (feedback-report), parsed like headers."""
    if part is None:
        raise BadReport("no message/feedback-report part")
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        return payload[0]
    return message_from_bytes(part.get_payload(decode=True) or b"", policy=policy.default)


def _address(field: object) -> str | None:
    """`rfc822; someone@example.com` -> the address (an address type other than rfc822 is not mail)."""
    if field is None:
        return None
    kind, _, address = str(field).partition(";")
    if not address:
        kind, address = "rfc822", kind
    address = address.strip().strip("<>")
    return address if kind.strip().lower() == "rfc822" and "@" in address else None

