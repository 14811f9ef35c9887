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
        self._key = Ed25519PrivateKey.generate()
        self.kid = uuid4().hex
        jwk = OKPAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        body = json.dumps({"keys": [{**jwk, "kid": self.kid, "alg": "EdDSA", "use": "sig"}]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's hook name)
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.jwks_url = f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def token(self, user_id: UUID, ttl: int = 300) -> str:
        now = int(time.time())
        claims = {"sub": str(user_id), "sid": str(uuid4()), "iss": self.issuer, "aud": AUDIENCE, "iat": now,
                  "exp": now + ttl}
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self.kid})

    def auth(self, user_id: UUID) -> dict[str, str]:
        """Headers of a request signed in as `user_id`."""
        return {"Authorization": f"Bearer {self.token(user_id)}"}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
