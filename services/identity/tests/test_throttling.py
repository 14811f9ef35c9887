"""Login throttling that holds behind proxies and under parallel guesses, with keys nobody can read."""

import asyncio
import hashlib
import hmac

import asyncpg
import pytest

from assent_identity import domain
from assent_identity.main import create_app
from assent_identity.settings import IdentitySettings
from assent_devtools.testing.apps import base_settings, serve
from assent_devtools.testing.helpers import eventually, unique

SECRET = "test-throttle-secret-" + "t" * 16
PASSWORD = "a fine long secret"


@pytest.fixture
def identity_behind(infra, new_database):
    """An identity app whose test client's peer (127.0.0.1) is, or is not, a trusted proxy."""

    def start(trusted_proxies: list[str], **overrides: object):
        async def open_app():
            database = await new_database("identity")
            settings = IdentitySettings(**base_settings(
                infra, database, unique("it-") + ".", argon2_memory_kib=1024, argon2_time_cost=1,
                trust_forwarded_for=True, trusted_proxies=trusted_proxies, throttle_key_secret=SECRET,
                consent_url="http://127.0.0.1:9", mailer_url="http://127.0.0.1:9", policy_url="http://127.0.0.1:9",
                **overrides))
            return database, serve(create_app(settings))
        return open_app

    return start


async def _signup(client, email: str | None = None) -> str:
    email = email or f"{unique('u')}@example.com"
    created = await client.post("/v1/users", json={"email": email, "password": PASSWORD})
    assert created.status_code == 201, created.text
    return email


async def _login(client, email: str, password: str, forwarded_for: str):
    return await client.post("/v1/sessions", json={"email": email, "password": password},
                             headers={"X-Forwarded-For": forwarded_for})


async def test_one_clients_wrong_passwords_do_not_lock_out_another_client_behind_the_same_proxies(identity_behind):
    database, app = await identity_behind(["127.0.0.1/32", "10.0.0.0/8"])()
    async with app as client:
        victim = await _signup(client)
        # Two proxies: the outer appended the client, the inner (10.0.0.5) appended the outer.
        attacker = "203.0.113.5, 10.0.0.5"
        statuses = [(await _login(client, f"{unique('x')}@example.com", "wrong password", attacker)).status_code
                    for _ in range(domain.CLIENT_THROTTLE.free + 1)]
        assert statuses[-1] == 429 and set(statuses[:-1]) <= {401, 429}
        assert (await _login(client, victim, PASSWORD, "198.51.100.7, 10.0.0.5")).status_code == 200
        # The attacker stays locked whatever it writes in front of the proxies' entries.
        assert (await _login(client, victim, PASSWORD, "192.0.2.1, 203.0.113.5, 10.0.0.5")).status_code == 429


async def test_forwarded_addresses_from_a_peer_that_is_not_a_proxy_are_ignored(identity_behind):
    database, app = await identity_behind(["10.0.0.0/8"])()
    async with app as client:
        for n in range(domain.CLIENT_THROTTLE.free + 1):  # a new made-up address each time
            await _login(client, f"{unique('x')}@example.com", "wrong password", f"198.51.100.{n}")
        assert (await _login(client, await _signup(client), PASSWORD, "192.0.2.77")).status_code == 429


async def test_successful_logins_do_not_lock_a_client_that_has_failed_a_few_times(identity_behind):
    database, app = await identity_behind(["127.0.0.1/32"])()
    async with app as client:
        for _ in range(domain.CLIENT_THROTTLE.free - 1):
            await _login(client, f"{unique('x')}@example.com", "wrong password", "203.0.113.40")
        emails = [await _signup(client) for _ in range(3)]
        statuses = [(await _login(client, email, PASSWORD, "203.0.113.40")).status_code for email in emails]
        assert statuses == [200, 200, 200]


async def test_an_ipv6_client_is_one_client_across_its_64(identity_behind):
    database, app = await identity_behind(["127.0.0.1/32"])()
    async with app as client:
        for n in range(domain.CLIENT_THROTTLE.free + 1):
            await _login(client, f"{unique('x')}@example.com", "wrong password", f"2001:db8:0:7::{n + 1:x}")
        email = await _signup(client)
        assert (await _login(client, email, PASSWORD, "2001:db8:0:7:ffff::1")).status_code == 429
        assert (await _login(client, email, PASSWORD, "2001:db8:0:8::1")).status_code == 200


async def test_parallel_guesses_cannot_all_pass_the_lock_check(identity_behind):
    database, app = await identity_behind(["127.0.0.1/32"])()
    async with app as client:
        email = await _signup(client)
        guesses = await asyncio.gather(*(
            _login(client, email, f"wrong password {n}", f"198.51.100.{n}") for n in range(20)))
        statuses = sorted(r.status_code for r in guesses)
        # Each attempt is counted before its password is checked: only the free ones reach the check.
        assert statuses.count(401) <= domain.ACCOUNT_THROTTLE.free, statuses
        assert statuses.count(429) >= 20 - domain.ACCOUNT_THROTTLE.free
        assert all(r.headers["content-type"] == "application/problem+json" for r in guesses)


async def test_throttle_keys_are_keyed_hashes_pruned_when_spent_and_erased_with_the_account(identity_behind):
    database, app = await identity_behind(["127.0.0.1/32"], throttle_prune_seconds=0.2)()
    async with app as client:
        email = await _signup(client)
        assert (await _login(client, email, "wrong password", "203.0.113.9")).status_code == 401
        conn = await asyncpg.connect(database)
        try:
            keys = {r["throttle_key"] for r in await conn.fetch("SELECT throttle_key FROM login_failures")}
            keyed = hmac.new(SECRET.encode(), email.encode(), hashlib.sha256).hexdigest()[:32]
            assert f"account:{keyed}" in keys
            assert f"account:{hashlib.sha256(email.encode()).hexdigest()[:32]}" not in keys  # not recomputable
            assert not any(email in k or "203.0.113" in k for k in keys)
            # A spent row (window over, no lock) is pruned.
            await conn.execute("UPDATE login_failures SET first_at = now() - interval '1 hour' "
                               "WHERE throttle_key LIKE 'client:%'")
            await eventually(lambda: _count(conn, "client:%", 0))
            # Erasure takes the account's row with it.
            login = await _login(client, email, PASSWORD, "203.0.113.10")
            await _login(client, email, "wrong password", "203.0.113.10")
            assert await _count(conn, f"account:{keyed}", 1)
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            assert (await client.request("DELETE", "/v1/users/me", headers=headers,
                                         json={"password": PASSWORD})).status_code in (202, 204)
            assert await _count(conn, f"account:{keyed}", 0)
        finally:
            await conn.close()


async def _count(conn, pattern: str, expected: int) -> bool:
    return await conn.fetchval("SELECT count(*) FROM login_failures WHERE throttle_key LIKE $1", pattern) == expected


def test_production_refuses_a_declared_proxy_without_its_networks():
    production = {"environment": "production", "admin_token": "a" * 40,
                  "database_url": "postgresql://x:y@db.internal/identity", "signing_key_secret": "s" * 32,
                  "data_key_secret": "d" * 32, "key_clients": {"mailer": "m" * 32}, "throttle_key_secret": SECRET,
                  "mail_token_secret": "t" * 32}
    with pytest.raises(ValueError, match="ASSENT_TRUSTED_PROXIES"):
        IdentitySettings(**production, trust_forwarded_for=True)
    assert IdentitySettings(**production, trust_forwarded_for=True, trusted_proxies=["10.0.0.0/8"]).trusted_proxies
    with pytest.raises(ValueError, match="ASSENT_THROTTLE_KEY_SECRET"):
        IdentitySettings(**{**production, "throttle_key_secret": IdentitySettings.model_fields[
            "throttle_key_secret"].default})


async def test_console_sign_ins_lock_a_client_out_after_five_and_a_success_lifts_it(identity_behind):
    _, app = await identity_behind([])()
    admin = {"Authorization": "Bearer test-admin-token-" + "x" * 32}
    account = unique("console-")
    guesser = {"account": account, "client": "203.0.113.7"}
    async with app as client:
        assert (await client.post("/v1/admin/console-attempts", json=guesser)).status_code == 401
        for _ in range(domain.CONSOLE_CLIENT_LOCKOUT.free):
            assert (await client.post("/v1/admin/console-attempts", json=guesser, headers=admin)).status_code == 204
        locked = await client.post("/v1/admin/console-attempts", json=guesser, headers=admin)
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 800
        # Parallel Site replicas share the count: the client stays locked whichever replica asks.
        assert (await client.post("/v1/admin/console-attempts", json=guesser, headers=admin)).status_code == 429

        owner = {"account": account, "client": "198.51.100.9"}
        assert (await client.post("/v1/admin/console-attempts", json=owner, headers=admin)).status_code == 204
        assert (await client.post("/v1/admin/console-attempts/succeeded", json=owner, headers=admin)).status_code == 204
        for _ in range(domain.CONSOLE_CLIENT_LOCKOUT.free * 2):  # the account's failures went with the success
            assert (await client.post("/v1/admin/console-attempts", json=owner, headers=admin)).status_code == 204
            assert (await client.post("/v1/admin/console-attempts/succeeded", json=owner,
                                      headers=admin)).status_code == 204


async def test_a_console_account_locks_after_its_bound_from_every_client_together(identity_behind):
    _, app = await identity_behind([])()
    admin = {"Authorization": "Bearer test-admin-token-" + "x" * 32}
    account = unique("console-")
    async with app as client:
        for n in range(domain.CONSOLE_ACCOUNT_LOCKOUT.free):
            attempt = {"account": account, "client": f"192.0.2.{n + 1}"}
            assert (await client.post("/v1/admin/console-attempts", json=attempt, headers=admin)).status_code == 204
        fresh = {"account": account, "client": "198.51.100.200"}
        locked = await client.post("/v1/admin/console-attempts", json=fresh, headers=admin)
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) <= domain.CONSOLE_ACCOUNT_LOCKOUT.lock
        other = {"account": unique("console-"), "client": "198.51.100.200"}
        assert (await client.post("/v1/admin/console-attempts", json=other, headers=admin)).status_code == 204
