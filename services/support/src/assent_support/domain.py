"""Support's rules, free of I/O: who gets a reply by mail, references, tokens, rate windows, threads."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from uuid import UUID

from assent_shared.events import InquiryCategory as Category

Status = Literal["open", "answered", "closed"]
Author = Literal["person", "staff"]
LOCALES = ("en", "de")
DEFAULT_LOCALE = "en"
# Crockford's base32 without look-alikes: a reference a person can read out on the phone.
_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_REFERENCE_LENGTH = 8


class InvalidInquiry(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class NewInquiry:
    category: Category
    message: str
    email: str | None
    want_reply: bool
    locale: str
    user_id: UUID | None


@dataclass(frozen=True)
class Message:
    message_id: UUID
    author: Author
    body: str
    created_at: datetime


@dataclass(frozen=True)
class Inquiry:
    inquiry_id: UUID
    reference: str
    category: Category
    user_id: UUID | None
    email: str | None
    want_reply: bool
    locale: str
    status: Status
    received_at: datetime
    updated_at: datetime

    @property
    def reply_by_mail(self) -> bool:
        return reply_by_mail(self.email, self.user_id, self.want_reply)


@dataclass(frozen=True)
class Thread:
    inquiry: Inquiry
    messages: tuple[Message, ...]

    def staff_replies(self) -> tuple[UUID, ...]:
        return tuple(m.message_id for m in self.messages if m.author == "staff")


@dataclass(frozen=True)
class TopicCount:
    period: date
    category: Category
    count: int


def reply_by_mail(email: str | None, user_id: UUID | None, want_reply: bool) -> bool:
    """The policy: an address is used only if volunteered, a signed-in user's only if they ask for a reply."""
    return email is not None if user_id is None else want_reply


def check(new: NewInquiry) -> None:
    """Refuses the combinations that would use an address nobody offered."""
    if new.user_id is not None and new.email is not None:
        raise InvalidInquiry("email", "Signed in, replies go to your account's address: set want_reply instead.")
    if new.user_id is None and new.want_reply and new.email is None:
        raise InvalidInquiry("email", "Give an address to get a reply by mail.")


def pick_locale(requested: str | None) -> str:
    """The first supported language of a BCP 47 tag (`de-CH` -> `de`), else English."""
    primary = (requested or "").split("-")[0].lower()
    return primary if primary in LOCALES else DEFAULT_LOCALE


def new_reference(prefix: str = "Q") -> str:
    return prefix + "-" + "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(_REFERENCE_LENGTH))


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def client_key(secret: str, address: str) -> str:
    """A keyed hash: rate limits never store an address, and nobody without the key can test one."""
    return hmac.new(secret.encode(), address.encode(), hashlib.sha256).hexdigest()[:32]


def within_limit(count: int, limit: int) -> bool:
    return count <= limit


def reply_link(site_url: str, inquiry_id: UUID, token: str) -> str:
    return f"{site_url.rstrip('/')}/contact/reply?inquiry={inquiry_id}&token={token}"
