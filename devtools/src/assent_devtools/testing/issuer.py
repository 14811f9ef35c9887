"""A stand-in for identity's token issuing in a service's own tests: a real JWKS over local HTTP."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from uuid import UUID, uuid4

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from assent_shared.auth import AUDIENCE


class LocalIssuer:
    def __init__(self, issuer: str = "assent-identity") -> None:
        self.issuer = issuer
        self._keys: dict[str, Ed25519PrivateKey] = {}
        self.kid = self.rotate()
        issuer_self = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's hook name)
                body = issuer_self._jwks()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.jwks_url = f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _jwks(self) -> bytes:
        keys = [{**OKPAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "alg": "EdDSA", "use": "sig"}
                for kid, key in list(self._keys.items())]
        return json.dumps({"keys": keys}).encode()

    def rotate(self) -> str:
        """A new signing key, published beside the old ones; new tokens use it."""
        self.kid = uuid4().hex
        self._keys[self.kid] = Ed25519PrivateKey.generate()
        return self.kid

    def withdraw(self, kid: str) -> Ed25519PrivateKey:
        """Take a key out of the JWKS (as after a leak); returns it so a test can still sign with it."""
        return self._keys.pop(kid)

    def token(self, user_id: UUID, ttl: int = 300, *, key: tuple[str, Ed25519PrivateKey] | None = None,
              sid: UUID | None = None) -> str:
        kid, private = key or (self.kid, self._keys[self.kid])
        now = int(time.time())
        claims = {"sub": str(user_id), "sid": str(sid or uuid4()), "iss": self.issuer, "aud": AUDIENCE, "iat": now,
                  "exp": now + ttl}
        return jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": kid})

    def auth(self, user_id: UUID) -> dict[str, str]:
        """Headers of a request signed in as `user_id`."""
        return {"Authorization": f"Bearer {self.token(user_id)}"}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
