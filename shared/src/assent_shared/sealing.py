"""Values one service seals for another: AES-GCM under a key both derive from a shared secret.

A sealed value may travel on a topic that many can read (a single-use mail token, say); only a
holder of the secret opens it. `bound_to` (the AEAD's associated data) ties a sealed value to what
it belongs to, so a value copied into another event or another subject's record does not open.
"""

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE = 12


class Unsealable(ValueError):
    """Sealed under another secret or context, bound to something else, or altered."""


class Sealer:
    def __init__(self, secret: str, context: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=context.encode()).derive(secret.encode())
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, bound_to: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), bound_to.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, bound_to: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], bound_to.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise Unsealable("cannot open this value") from exc
