"""Sealed cookies and CSRF tokens: the browser carries the state, the Site stores nothing about a person."""

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from cryptography.fernet import Fernet, InvalidToken


def _key(secret: str, purpose: bytes) -> bytes:
    return hmac.new(secret.encode(), purpose, hashlib.sha256).digest()


class Sealer:
    """Encrypts and authenticates (Fernet: AES-CBC + HMAC-SHA256) what the Site puts in a cookie."""

    def __init__(self, secret: str) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(_key(secret, b"assent-site-cookie")))

    def seal(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()

    def open(self, sealed: str | None, max_age_seconds: float) -> dict[str, Any] | None:
        if not sealed:
            return None
        try:
            value = json.loads(self._fernet.decrypt(sealed.encode(), ttl=int(max_age_seconds)))
        except (InvalidToken, ValueError):
            return None
        return value if isinstance(value, dict) else None


class CsrfTokens:
    """A form's token is an HMAC of the session it belongs to (or `anonymous`) and the time it was issued."""

    def __init__(self, secret: str, max_age_seconds: float = 4 * 3600) -> None:
        self._key = _key(secret, b"assent-site-csrf")
        self._max_age = max_age_seconds

    def issue(self, binding: str, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        return f"{issued}.{self._mac(binding, issued)}"

    def valid(self, token: str | None, binding: str, now: float | None = None) -> bool:
        if not token or "." not in token:
            return False
        issued_text, mac = token.split(".", 1)
        if not issued_text.isdigit():
            return False
        issued = int(issued_text)
        age = (now if now is not None else time.time()) - issued
        return 0 <= age <= self._max_age and hmac.compare_digest(mac, self._mac(binding, issued))

    def _mac(self, binding: str, issued: int) -> str:
        digest = hmac.new(self._key, f"{binding}:{issued}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
