"""Signing keys are sealed at rest: a copy of the database alone cannot sign tokens."""

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from assent_identity.settings import IdentitySettings
from assent_identity.tokens import KeyVault


def test_a_sealed_key_opens_only_with_its_secret_and_kid():
    key = Ed25519PrivateKey.generate()
    sealed = KeyVault("the-right-secret-value").seal("kid-1", key)
    opened = KeyVault("the-right-secret-value").open("kid-1", sealed)
    assert opened.private_bytes_raw() == key.private_bytes_raw()
    with pytest.raises(RuntimeError, match="SIGNING_KEY_SECRET"):
        KeyVault("another-secret-value").open("kid-1", sealed)
    with pytest.raises(RuntimeError):
        KeyVault("the-right-secret-value").open("kid-2", sealed)


def test_production_refuses_the_development_key_secret():
    with pytest.raises(ValidationError, match="SIGNING_KEY_SECRET"):
        IdentitySettings(environment="production", admin_token="a" * 40,
                         database_url="postgresql://identity:pw@db.internal/identity")


async def test_the_database_holds_no_usable_private_key(identity, signup):
    await signup()
    conn = await asyncpg.connect(identity.database)
    try:
        rows = await conn.fetch("SELECT kid, private_key_sealed FROM signing_keys")
    finally:
        await conn.close()
    assert rows
    for row in rows:
        assert "PRIVATE KEY" not in row["private_key_sealed"]
        with pytest.raises(RuntimeError):
            KeyVault("a-guess-at-the-secret").open(row["kid"], row["private_key_sealed"])
