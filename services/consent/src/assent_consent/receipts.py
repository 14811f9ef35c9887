"""Consent receipts (the fields of ISO/IEC 27560), signed as EdDSA JWS so anyone can verify them later."""

import hashlib

import asyncpg
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

CONTROLLER = "Assent demo site"


class ReceiptSigner:
    def __init__(self, secret: str) -> None:
        # The key is derived from a configured secret so that every replica signs with the same key.
        self._key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"assent-receipts:" + secret.encode()).digest())
        jwk = OKPAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        self.kid = hashlib.sha256(jwk["x"].encode()).hexdigest()[:16]
        self.jwks = {"keys": [{**jwk, "kid": self.kid, "alg": "EdDSA", "use": "sig"}]}

    def receipt(self, row: asyncpg.Record) -> dict:
        body = {
            "receipt_id": str(row["event_id"]),
            "schema": "ISO/IEC 27560 consent record",
            "controller": CONTROLLER,
            "subject_id": str(row["subject_id"]),
            "purpose": row["purpose"],
            "recipient": row["recipient"],
            "state": "granted" if row["granted"] else "withdrawn",
            "notice": {"policy_id": "privacy", "policy_version": row["policy_version"]},
            "method": row["source"],
            "timestamp": row["occurred_at"].isoformat(),
            "seq": row["seq"],
        }
        if row["evidence"]:
            body["evidence"] = row["evidence"]
        return self._signed(body)

    def device_receipt(self, row: asyncpg.Record) -> dict:
        """The receipt of a visitor's choice for their browser: the device id stands in for a subject."""
        body = {
            "receipt_id": str(row["event_id"]),
            "schema": "ISO/IEC 27560 consent record",
            "controller": CONTROLLER,
            "device_id": row["device_id"],
            "purpose": row["purpose"],
            "state": "granted" if row["granted"] else "withdrawn",
            "notice": {"policy_id": "privacy", "policy_version": row["policy_version"]},
            "method": row["source"],
            "gpc": row["gpc"],
            "timestamp": row["occurred_at"].isoformat(),
            "seq": row["seq"],
        }
        return self._signed(body)

    def _signed(self, body: dict) -> dict:
        signature = jwt.encode(body, self._key, algorithm="EdDSA", headers={"kid": self.kid})
        return {"receipt": body, "signature": signature}
