"""The emails the mailer writes: headers (threading, RFC 8058 one-click unsubscribe) around rendered templates."""

import base64
import hashlib
import hmac
from email.message import EmailMessage
import re
from email.utils import parseaddr
from uuid import UUID

from assent_mailer.templating import Rendered

_MAC_BYTES = 16
MAIL_DOMAIN = "assent.example"
VERIFY_EMAIL = "verify_email"
PASSWORD_RESET = "password_reset"
# The identity event that asks for each mail with a link, and the delivery kind it becomes.
LINK_KINDS = {"EmailVerificationRequested": VERIFY_EMAIL, "PasswordResetRequested": PASSWORD_RESET}


class BadToken(ValueError):
    pass


def unsubscribe_token(secret: str, subject_id: UUID, purpose: str) -> str:
    payload = f"{subject_id}:{purpose}".encode()
    mac = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(payload + b"." + mac).rstrip(b"=").decode()


def read_unsubscribe_token(secret: str, token: str) -> tuple[UUID, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != token:
            raise BadToken("not canonical")  # one token per subject, not several spellings of it
        # The MAC has a fixed length and may itself contain a dot: split by position, not by dot.
        payload, separator, mac = raw[:-_MAC_BYTES - 1], raw[-_MAC_BYTES - 1:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if separator != b".":
            raise BadToken("malformed")
        expected = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:_MAC_BYTES]
        if not hmac.compare_digest(mac, expected):
            raise BadToken("signature")
        subject, purpose = payload.decode().split(":", 1)
        return UUID(subject), purpose
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadToken("malformed") from exc


def sender_name(mail_from: str) -> str:
    """The display name of the From address, as the mails sign with it."""
    return parseaddr(mail_from)[0] or mail_from


def thread_root(inquiry_id: UUID) -> str:
    """The stable Message-ID of an inquiry's thread: the inquiry itself was never a mail, its replies refer to it."""
    return f"<inquiry-{inquiry_id}@{MAIL_DOMAIN}>"


def reply_id(message_id: UUID) -> str:
    return f"<reply-{message_id}@{MAIL_DOMAIN}>"


def delivery_message_id(delivery_id: UUID) -> str:
    """A mail's Message-ID names its delivery, so a bounce or complaint about it finds the delivery, and a
    relay or reader spots a repeat after a crash (a resend has the same id)."""
    return f"<delivery-{delivery_id}@{MAIL_DOMAIN}>"


_OUR_MESSAGE_ID = re.compile(rf"<?(delivery|reply)-([0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}})"
                             rf"@{re.escape(MAIL_DOMAIN)}>?", re.IGNORECASE)


def sent_as(message_id: str) -> tuple[str, UUID] | None:
    """What a Message-ID of ours names: ("delivery", delivery id) or ("reply", the reply's id); None for
    any other id."""
    found = _OUR_MESSAGE_ID.fullmatch(message_id.strip())
    return (found.group(1).lower(), UUID(found.group(2))) if found else None


def thread_headers(inquiry_id: UUID, message_id: UUID, earlier_replies: tuple[UUID, ...]) -> dict[str, str]:
    """RFC 5322 threading: the reply answers the newest earlier reply (or the inquiry), and names them all."""
    chain = [thread_root(inquiry_id), *map(reply_id, earlier_replies)]
    return {"Message-ID": reply_id(message_id), "In-Reply-To": chain[-1], "References": " ".join(chain)}


def unsubscribe_headers(unsubscribe_url: str) -> dict[str, str]:
    """RFC 8058: mail clients POST `unsubscribe_url`; a person clicking the visible link gets the Site's
    page, which asks before it unsubscribes (a GET must change nothing)."""
    return {"List-Unsubscribe": f"<{unsubscribe_url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def compose(sender: str, to: str, delivery_id: UUID, rendered: Rendered,
            headers: dict[str, str] | None = None) -> EmailMessage:
    """The mail: a text and an HTML part (multipart/alternative, text first, as clients prefer the last)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = rendered.subject
    message["Message-ID"] = delivery_message_id(delivery_id)
    message["X-Assent-Delivery-Id"] = str(delivery_id)
    for name, value in (headers or {}).items():
        del message[name]
        message[name] = value
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message
