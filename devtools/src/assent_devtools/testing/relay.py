"""A mail relay's reports for tests: a signed POST body, a DSN (RFC 3464) and a complaint (RFC 5965) as mails."""

import hashlib
import hmac
import json
import time

_BOUNDARY = "report-boundary-3f9a"


def signed(secret: str, body: bytes, content_type: str, at: float | None = None) -> dict[str, str]:
    """Headers of the relay's POST: `Assent-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""
    timestamp = int(time.time() if at is None else at)
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"content-type": content_type, "Assent-Signature": f"t={timestamp},v1={digest}"}


def notification(kind: str, message_id: str, recipient: str | None = None, **extra: str) -> bytes:
    return json.dumps({"type": kind, "message_id": message_id, "recipient": recipient, **extra}).encode()


def _report(report_type: str, machine_part: str, original: str, human: str) -> bytes:
    lines = [
        "From: Mail Delivery System <MAILER-DAEMON@relay.example>",
        "To: hello@assent.example",
        "Subject: " + ("Undelivered Mail Returned to Sender" if report_type == "delivery-status" else "Abuse report"),
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type={report_type}; boundary="{_BOUNDARY}"',
        "",
        f"--{_BOUNDARY}",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        human,
        f"--{_BOUNDARY}",
        machine_part,
        f"--{_BOUNDARY}",
        original,
        f"--{_BOUNDARY}--",
        "",
    ]
    return "\r\n".join(lines).encode()


def bounce_mail(message_id: str, recipient: str, status: str = "5.1.1", action: str = "failed") -> bytes:
    """The relay's asynchronous bounce: a multipart/report with a delivery status and the original's headers."""
    machine = "\r\n".join([
        "Content-Type: message/delivery-status", "",
        "Reporting-MTA: dns; relay.example", "Arrival-Date: Wed, 2 Dec 2026 12:00:00 +0000", "",
        f"Final-Recipient: rfc822; {recipient}", f"Action: {action}", f"Status: {status}",
        f"Diagnostic-Code: smtp; {'550' if status.startswith('5') else '451'} {status} mailbox unavailable", "",
    ])
    original = "\r\n".join([
        "Content-Type: text/rfc822-headers", "",
        "From: hello@assent.example", f"To: {recipient}", f"Message-ID: {message_id}", "Subject: Welcome", "",
    ])
    return _report("delivery-status", machine, original, "Your message could not be delivered.")


def complaint_mail(message_id: str, recipient: str) -> bytes:
    """A feedback loop's complaint (ARF): the recipient marked the mail as spam; the original mail comes back."""
    machine = "\r\n".join([
        "Content-Type: message/feedback-report", "",
        "Feedback-Type: abuse", "User-Agent: relay-fbl/1.0", "Version: 1", f"Original-Rcpt-To: <{recipient}>", "",
    ])
    original = "\r\n".join([
        "Content-Type: message/rfc822", "",
        "From: hello@assent.example", f"To: {recipient}", f"Message-ID: {message_id}", "Subject: News",
        "Content-Type: text/plain", "", "Hello", "",
    ])
    return _report("feedback-report", machine, original, "This is an email abuse report.")
