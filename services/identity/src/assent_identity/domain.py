"""Identity's rules, free of I/O."""

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from email_validator import EmailNotValidError, validate_email

MIN_PASSWORD = 10
MAX_PASSWORD = 256
# The most used passwords of public breach lists that pass the length rule; a service should
# not accept what an attacker tries first.
COMMON_PASSWORDS = frozenset(
    {
        "1234567890", "12345678910", "123456789a", "qwertyuiop", "password12", "password123",
        "password1234", "iloveyou12", "qwerty1234", "1q2w3e4r5t", "1qaz2wsx3edc", "abcdefghij",
        "0987654321", "1111111111", "0000000000", "passw0rd123", "letmein123", "welcome123",
        "administrator", "qwertyuiop123", "zaq12wsxcde", "princess123", "football123", "monkey12345",
        "sunshine123", "baseball123", "dragon12345", "trustno1234", "superman123", "asdfghjkl1",
    }
)


class InvalidInput(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def normalize_email(raw: str) -> str:
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidInput("email", "Not a valid email address.") from exc


def check_password(password: str, email: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput("password", f"Use at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput("password", f"Use at most {MAX_PASSWORD} characters.")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or len(set(password)) < 4 or lowered == email.split("@")[0]:
        raise InvalidInput("password", "This password is too common or too easy to guess.")


_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$")


def normalize_locale(raw: str | None) -> str | None:
    """A BCP 47 tag in its usual case (`de`, `pt-BR`), or None when none was given."""
    if raw is None or raw == "":
        return None
    if not _LOCALE.match(raw):
        raise InvalidInput("locale", "Give a language tag such as `en` or `de`.")
    first, *rest = raw.split("-")
    return "-".join([first.lower(), *(p.upper() if len(p) == 2 else p.lower() for p in rest)])


@dataclass(frozen=True)
class RegisterUser:
    email: str
    password: str
    newsletter_opt_in: bool = True
    display_name: str | None = None
    locale: str | None = None


@dataclass(frozen=True)
class User:
    id: UUID
    email: str
    created_at: datetime
    display_name: str | None = None
    disabled: bool = False
    email_verified: bool = False
    locale: str | None = None


TokenPurpose = Literal["verify_email", "reset_password"]
VERIFY_EMAIL: TokenPurpose = "verify_email"
RESET_PASSWORD: TokenPurpose = "reset_password"


class InvalidToken(ValueError):
    """Unknown, altered, used or expired: the caller learns no more than that."""


def verifier_hash(verifier: str) -> bytes:
    return hashlib.sha256(verifier.encode()).digest()


def split_token(token: str) -> tuple[str, str]:
    """`<selector>.<verifier>`: the selector finds the row, the verifier is compared in constant time."""
    selector, dot, verifier = token.partition(".")
    if not dot or not 8 <= len(selector) <= 64 or not 16 <= len(verifier) <= 128:
        raise InvalidToken
    return selector, verifier


def check_token(stored_hash: bytes, verifier: str, used_at: datetime | None, expires_at: datetime,
                now: datetime) -> None:
    matches = hmac.compare_digest(stored_hash, verifier_hash(verifier))
    if not matches or used_at is not None or expires_at <= now:
        raise InvalidToken


@dataclass(frozen=True)
class ThrottleRule:
    """After `free` failures within `window` seconds, each further one locks for a doubling delay up to `cap`."""

    free: int
    window: int
    cap: int

    def lock_seconds(self, failures: int) -> int:
        if failures < self.free:
            return 0
        return min(self.cap, 2 ** (failures - self.free))


# An account is slowed briefly (an attacker must not lock its owner out for long); a client
# that fails across many accounts is slowed for longer.
ACCOUNT_THROTTLE = ThrottleRule(free=5, window=900, cap=60)
CLIENT_THROTTLE = ThrottleRule(free=20, window=900, cap=900)


@dataclass(frozen=True)
class LockoutRule:
    """`free` attempts within `window` seconds; the last of them locks the key for `lock` seconds
    (lifted again when that attempt succeeds)."""

    free: int
    window: int
    lock: int

    def lock_seconds(self, failures: int) -> int:
        return self.lock if failures >= self.free else 0


# The Site's console has one strong password: a client gets 5 tries per 15 minutes; the account,
# from every client together, 20 per 15 minutes and then a 5-minute lock-out.
CONSOLE_CLIENT_LOCKOUT = LockoutRule(free=5, window=900, lock=900)
CONSOLE_ACCOUNT_LOCKOUT = LockoutRule(free=20, window=900, lock=300)
