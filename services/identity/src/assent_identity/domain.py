"""Identity's rules, free of I/O."""

from dataclasses import dataclass
from datetime import datetime
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
