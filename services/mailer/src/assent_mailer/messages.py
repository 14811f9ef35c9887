"""The emails the mailer writes, including RFC 8058 one-click unsubscribe for the newsletter."""

import base64
import hashlib
import hmac
from email.message import EmailMessage
from email.utils import make_msgid
from uuid import UUID


_MAC_BYTES = 16
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


def _base(sender: str, to: str, subject: str, delivery_id: UUID) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    # The delivery id in Message-ID lets a relay or a reader spot a repeat after a crash.
    message["Message-ID"] = make_msgid(idstring=str(delivery_id), domain="assent.example")
    message["X-Assent-Delivery-Id"] = str(delivery_id)
    return message


def welcome(sender: str, to: str, delivery_id: UUID, my_data_url: str) -> EmailMessage:
    message = _base(sender, to, "Welcome to the Assent demo site", delivery_id)
    message.set_content(
        "Welcome!\n\nYour account is ready. On your \"My data\" page you can read and change every consent "
        "you gave us, download all we hold about you, or erase your account at any time:\n\n"
        f"{my_data_url}\n"
    )
    return message


def verify_email(sender: str, to: str, delivery_id: UUID, link: str) -> EmailMessage:
    message = _base(sender, to, "Confirm your email address", delivery_id)
    message.set_content(
        "Please confirm that this is your email address by opening this link:\n\n"
        f"{link}\n\nIt works once, for a few days. If you did not sign up, ignore this mail: "
        "without confirmation we send you no newsletter.\n"
    )
    return message


def password_reset(sender: str, to: str, delivery_id: UUID, link: str) -> EmailMessage:
    message = _base(sender, to, "Reset your password", delivery_id)
    message.set_content(
        "Someone asked to reset the password of your account. To choose a new one, open this link:\n\n"
        f"{link}\n\nIt works once, within an hour, and signs you out everywhere. If you did not ask, "
        "ignore this mail: your password stays as it is.\n"
    )
    return message


def newsletter(sender: str, to: str, delivery_id: UUID, title: str, body: str, unsubscribe_url: str,
               landing_url: str) -> EmailMessage:
    """`unsubscribe_url` takes the RFC 8058 one-click POST of mail clients; a person clicking the visible
    link gets `landing_url`, the Site's page that asks before it unsubscribes (a GET must change nothing)."""
    message = _base(sender, to, title, delivery_id)
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(f"{body}\n\nUnsubscribe: {landing_url}\n")
    return message
