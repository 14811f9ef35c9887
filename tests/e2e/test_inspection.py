"""Issue 15: the privacy promises hold on inspection, read as an auditor would with plain clients.

After a user is erased, no topic (dead letters included) holds their email in readable form, and the
erasure status says complete only once every store has confirmed. After a run, no database, topic or
log holds an IP address a client came from, an unkeyed hash of one, or the email of an erased user.
"""

import hashlib
import ipaddress
import json
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from assent_shared.cloudevents import encode_headers, meta_for
from assent_shared.events import ERASURE_CONFIRMERS, UserRegisteredV2
from assent_shared.personal import development_key_token
from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.topics import read_topic
from tests.e2e.conftest import find_text

CLIENT_IPS = ("198.51.100.77", "2001:db8:77::77")
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
          "Safari/537.36")


async def every_record(system) -> dict[str, list[bytes]]:
    """Each topic of the run (dead letters too) -> every record's key, value and headers as bytes."""
    probe = AIOKafkaConsumer(bootstrap_servers=system.kafka)
    await probe.start()
    try:
        names = sorted(t for t in await probe.topics() if t.startswith(system.prefix))
    finally:
        await probe.stop()
    out = {}
    for name in names:
        out[name] = [(r.key or b"") + b"\0" + (r.value or b"") + b"\0" + b"".join(k.encode() + v for k, v in r.headers)
                     for _, r in await read_topic(system.kafka, name)]
    return out


async def binary_columns_holding(database_url: str, needle: bytes) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        columns = await conn.fetch("""SELECT table_name, column_name FROM information_schema.columns
                                      WHERE table_schema = 'public' AND data_type = 'bytea'""")
        return [f"{c['table_name']}.{c['column_name']}" for c in columns
                if await conn.fetchval(f'SELECT count(*) FROM "{c["table_name"]}" '
                                       f'WHERE position($1::bytea in "{c["column_name"]}") > 0', needle)]
    finally:
        await conn.close()


def derived(ip: str) -> tuple[list[str], list[bytes]]:
    """The address, its network, and unkeyed hashes of either (hex and raw), which anyone could reverse by trying."""
    bits = 24 if ipaddress.ip_address(ip).version == 4 else 48
    texts, raws = [], []
    for text in (ip, str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))):
        texts.append(text)
        for name in ("md5", "sha1", "sha256"):
            digest = hashlib.new(name, text.encode()).digest()
            texts.append(digest.hex())
            raws.append(digest)
    return texts, raws


async def test_after_erasure_no_topic_holds_the_email_readably_and_status_waits_for_every_store(system):
    email = f"{unique('shred')}@example.com"
    async with system.client("identity") as identity:
        created = await identity.post("/v1/users", json={"email": email, "password": "correct horse battery",
                                                         "display_name": "Ada Shredded", "locale": "de"})
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        login = await identity.post("/v1/sessions", json={"email": email, "password": "correct horse battery"})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        new_email = f"{unique('shred-new')}@example.com"
        assert (await identity.put("/v1/users/me/email", headers=headers,
                                   json={"email": new_email, "password": "correct horse battery"})).status_code == 200
    # The mailer opened the sealed address: its welcome mail went out, to the address current when it was
    # sent (the new one when the registration and the change were applied in one batch).
    await eventually(lambda: [m for m in system.sink.messages() if m["To"] in (email, new_email)])

    # A poison record of a new version carrying an address in the clear: every consumer dead-letters it.
    poison_email = f"{unique('poison')}@example.com"
    producer = AIOKafkaProducer(bootstrap_servers=system.kafka)
    await producer.start()
    try:
        meta = encode_headers(meta_for(UserRegisteredV2.model_construct(user_id=UUID(user_id))))
        await producer.send_and_wait(system.topic("identity.users.v1"), key=user_id.encode(), headers=meta,
                                     value=json.dumps({"user_id": user_id, "email": poison_email}).encode())
    finally:
        await producer.stop()

    async def dead_lettered():
        records = await every_record(system)
        return [t for t in records if t.endswith("dead-letters.v1") and any(user_id.encode() in r for r in records[t])]

    # mailer and policy each isolated it; consent reads no registration since its grant waits for EmailVerified
    assert len(await eventually(dead_lettered, timeout=30)) >= 2

    async with system.client("identity") as identity:
        erased = await identity.delete("/v1/users/me", headers=headers)
        assert erased.status_code == 202
        first = (await identity.get(erased.json()["status_url"])).json()
        assert first["complete"] is False and first["waiting_for"]  # the key caches alone take seconds

        async def complete():
            status = (await identity.get(erased.json()["status_url"])).json()
            assert status["complete"] is (not status["waiting_for"])
            assert not status["complete"] or set(status["confirmed"]) == set(ERASURE_CONFIRMERS)
            return status if status["complete"] else None

        final = await eventually(complete, timeout=30)
        assert final["waiting_for"] == []
        key_owner = {"Authorization": f"Bearer {development_key_token('mailer')}", "Assent-Service": "mailer"}
        sealed = [UserRegisteredV2.model_validate_json(r.value) for m, r in
                  await read_topic(system.kafka, system.topic("identity.users.v1"))
                  if m.subject == user_id and m.type == "UserRegisteredV2" and poison_email.encode() not in r.value]
        assert sealed
        gone = await identity.get(f"/internal/v1/subject-keys/{user_id}/{sealed[0].email.key_id}", headers=key_owner)
        assert gone.status_code == 410  # the events still there are ciphertext nobody can open

    records = await every_record(system)
    assert any(t.endswith("dead-letters.v1") for t in records)
    for topic, values in records.items():
        for needle in (email, new_email, "Ada Shredded"):
            assert not [v for v in values if needle.encode() in v], (topic, needle)
        if topic.endswith("dead-letters.v1"):
            assert not [v for v in values if poison_email.encode() in v], topic


async def test_no_database_topic_or_log_holds_a_client_address_its_hash_or_an_erased_email(system):
    email = f"{unique('audit')}@example.com"
    ip4, ip6 = CLIENT_IPS
    async with system.client("identity") as identity, system.client("telemetry") as telemetry, \
            system.client("support") as support:
        created = await identity.post("/v1/users", json={"email": email, "password": "correct horse battery"},
                                      headers={"X-Forwarded-For": ip4})
        user_id = created.json()["id"]
        for ip in CLIENT_IPS:
            wrong = await identity.post("/v1/sessions", json={"email": email, "password": "not the password"},
                                        headers={"X-Forwarded-For": ip})
            assert wrong.status_code == 401
        login = await identity.post("/v1/sessions", json={"email": email, "password": "correct horse battery"},
                                    headers={"X-Forwarded-For": ip6})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        sent = await support.post("/v1/inquiries", headers={**headers, "X-Forwarded-For": ip4},
                                  json={"topic": "privacy_question", "message": "What do you hold?", "want_reply": True})
        assert sent.status_code == 202, sent.text
        site = next(iter(json.loads(system.envs["telemetry"]["ASSENT_SITES"])))
        for ip in CLIENT_IPS:
            for consent in (False, True):
                hit = await telemetry.post("/v1/collect", headers={"X-Forwarded-For": ip, "User-Agent": CHROME},
                                           json={"site_id": site, "url": "https://site.example/", "consent": consent})
                assert hit.status_code == 202, hit.text

        path = "/" + unique("seen-from-two-networks-")
        for ip in CLIENT_IPS:
            hit = await telemetry.post("/v1/collect", headers={"X-Forwarded-For": ip, "User-Agent": CHROME},
                                       json={"site_id": site, "url": f"https://site.example{path}"})
            assert hit.status_code == 202

        async def counted():
            stats = await telemetry.get("/v1/stats", headers=system.admin,
                                        params={"site_id": site, "breakdown": "page", "limit": 1000})
            groups = stats.json()["breakdowns"]["page"] if stats.status_code == 200 else []
            # wait for both hits: the first one rolled up alone would otherwise end the wait
            return [g for g in groups if g["value"] == path and g["visitors"] >= len(CLIENT_IPS)]

        # Two visitors, not one: the addresses did reach telemetry, so the search below looks for what it saw.
        assert [g["visitors"] for g in await eventually(counted)] == [2]
        assert (await identity.delete("/v1/users/me", headers=headers)).status_code == 202

        async def complete():
            return (await identity.get(f"/v1/erasures/{user_id}")).json()["complete"]

        await eventually(complete, timeout=30)

    texts, raws = [email], []
    for ip in CLIENT_IPS:
        more_texts, more_raws = derived(ip)
        texts += more_texts
        raws += more_raws
    for name, env in system.envs.items():
        if "DATABASE_URL" not in env:
            continue
        for needle in texts:
            assert await find_text(env["DATABASE_URL"], needle) == [], (name, needle)
        for needle in raws:
            assert await binary_columns_holding(env["DATABASE_URL"], needle) == [], (name, needle.hex())
    for topic, values in (await every_record(system)).items():
        for needle in [t.encode() for t in texts] + raws:
            assert not [v for v in values if needle in v], (topic, needle)
    logs = sorted(system.logs.glob("*.log"))
    assert {p.stem for p in logs} >= {"identity", "telemetry", "support", "mailer"}
    for path in logs:
        content = path.read_bytes()
        for needle in [t.encode() for t in texts] + raws:
            assert needle not in content, (path.name, needle)
