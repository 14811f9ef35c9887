"""Suppression hashes: keyed (HMAC, a key of their own), rotatable without un-suppressing anyone,
pruned when stale, and removed by the erasure of the address's owner."""

import hashlib
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import pytest

from assent_mailer.domain import SuppressionKeys
from assent_mailer.main import create_app
from assent_mailer.settings import MailerSettings
from assent_shared.events import UserErased, UserRegistered
from assent_devtools.testing.apps import base_settings, serve
from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.topics import publish

OLD, NEW = {"k1": "first suppression key 0001"}, {"k2": "second suppression key 0002"}


def test_a_hash_is_keyed_and_found_under_every_live_key_after_rotation():
    before = SuppressionKeys(OLD, "k1")
    after = SuppressionKeys(OLD | NEW, "k2")
    address = "Ada@Example.com "
    made = before.current(address)
    assert made.digest != hashlib.sha256(b"ada@example.com").digest()
    assert made in after.every("ada@example.com") and after.current(address).key_id == "k2"
    assert after.current(address).digest != made.digest
    with pytest.raises(ValueError):
        SuppressionKeys(OLD, "k2")


def test_the_suppression_key_must_differ_from_the_unsubscribe_key():
    with pytest.raises(ValueError):
        MailerSettings(environment="test", signing_secret="the very same secret", suppression_key_id="k1",
                       suppression_keys={"k1": "the very same secret"})


async def _deliveries(client, admin, user):
    return (await client.get(f"/v1/subjects/{user}/deliveries", headers=admin)).json()


async def _welcome(client, admin, user, status):
    return [d for d in await _deliveries(client, admin, user) if d["kind"] == "welcome" and d["status"] == status]


async def _register(infra, prefix, user, email):
    await publish(infra.kafka_bootstrap, prefix + "identity.users.v1", UserRegistered(
        user_id=user, email=email, registered_at=datetime.now(UTC), policy_version=1, newsletter_opt_in=False))


async def test_rotation_keeps_every_address_suppressed_and_erasure_removes_its_hashes(infra, new_database, sink):
    database, prefix = await new_database("mailer"), unique("ms-") + "."

    def settings(keys, current, **more):
        return MailerSettings(**base_settings(infra, database, prefix, smtp_port=sink.port, retry_base_seconds=0.05,
                                              retry_max_seconds=0.2, suppression_keys=keys,
                                              suppression_key_id=current, **more))

    address = f"{unique('gone')}@bounce.test"
    first, second = uuid4(), uuid4()
    async with serve(create_app(settings(OLD, "k1"))) as mailer:
        admin = {"Authorization": f"Bearer {settings(OLD, 'k1').admin_token}"}
        await _register(infra, prefix, first, address)
        await eventually(lambda: _welcome(mailer, admin, first, "bounced"))
    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch("SELECT key_id, email_hash FROM suppressions")
        assert [r["key_id"] for r in rows] == ["k1"]
        assert rows[0]["email_hash"] not in (hashlib.sha256(address.encode()).digest(), address.encode())

        # Dropping a key that hashes still use would un-suppress them: the mailer refuses to start.
        with pytest.raises(RuntimeError, match="k1"):
            async with serve(create_app(settings(NEW, "k2"))):
                pass

        # Rotated: the address stays suppressed, and its hash moves to the new key.
        async with serve(create_app(settings(OLD | NEW, "k2"))) as mailer:
            await _register(infra, prefix, second, address)
            await eventually(lambda: _welcome(mailer, admin, second, "cancelled"))
            assert [r["key_id"] for r in await conn.fetch("SELECT key_id FROM suppressions")] == ["k2"]

            # Erasure of a user with that address takes its hashes too.
            await publish(infra.kafka_bootstrap, prefix + "identity.users.v1",
                          UserErased(user_id=second, erased_at=datetime.now(UTC)))

            async def gone():
                return await conn.fetchval("SELECT count(*) FROM suppressions") == 0

            await eventually(gone)

        # Retention: a suppression not seen for the keep period is pruned.
        await conn.execute("INSERT INTO suppressions (key_id, email_hash, reason, seen_at) "
                           "VALUES ('k2', '\\x00', 'hard bounce', now() - interval '3 days')")
        async with serve(create_app(settings(NEW, "k2", suppression_keep_seconds=24 * 3600))):
            async def pruned():
                return await conn.fetchval("SELECT count(*) FROM suppressions") == 0

            await eventually(pruned)
    finally:
        await conn.close()
