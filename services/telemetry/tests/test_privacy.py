"""What telemetry must never do: keep an address anywhere, or show a partner a group smaller than k."""

import hashlib
import logging

from assent_devtools.testing.helpers import eventually
from assent_devtools.testing.topics import read_topic
from assent_telemetry import partner
from telemetry_testkit import CHROME_WINDOWS, GOOGLEBOT, IPHONE

SENT_IPS = ("203.0.113.7", "2001:db8::7", "198.51.100.23")
TEXT_TYPES = ("text", "character varying", "jsonb", "json", "bytea")


async def test_no_ip_address_in_database_topics_or_logs(telemetry_app, infra, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    async with telemetry_app(log_level="DEBUG") as telemetry:
        hit = {"site_id": "demo", "url": "https://demo.example/", "consent": False}
        for ip in SENT_IPS:
            assert (await telemetry.hit(ip, CHROME_WINDOWS, hit)).status_code == 202
            assert (await telemetry.hit(ip, IPHONE, {**hit, "consent": True})).status_code == 202
            assert (await telemetry.hit(ip, GOOGLEBOT, hit)).status_code == 202
            assert (await telemetry.hit(ip, CHROME_WINDOWS, {**hit, "site_id": "nope"})).status_code == 422
            malformed = await telemetry.client.post("/v1/collect", content=b"{", headers={"X-Forwarded-For": ip})
            assert malformed.status_code == 400

        async def all_counted():
            stats = await telemetry.stats("isp")
            return stats if (stats["pageviews"], stats["bots"]) == (6, 3) else None

        stats = await eventually(all_counted)
        # The address did its job in memory: its network was looked up.
        assert {g["value"] for g in stats["breakdowns"]["isp"]} == {"Example Net", "Example Six", "unknown"}

        columns = await telemetry.fetch(
            """SELECT table_name, column_name FROM information_schema.columns
               WHERE table_schema = 'public' AND data_type = ANY($1::text[])""", list(TEXT_TYPES))
        assert {c["table_name"] for c in columns} >= {"hit_rollups", "visitor_days", "inbox", "daily_salts"}
        holding = await _columns_holding(telemetry, columns, "Example Six")
        assert {"hit_rollups.value", "visitor_days.value"} <= set(holding) <= {
            "hit_rollups.value", "visitor_days.value", "unit_days.value"}
        for needle in _derived(SENT_IPS):
            assert await _columns_holding(telemetry, columns, needle) == [], needle

        records = await read_topic(infra.kafka_bootstrap, telemetry.prefix + "telemetry.hits.v1")
        assert len(records) == 9
        for _, record in records:
            published = record.value + (record.key or b"") + b"".join(k.encode() + v for k, v in record.headers)
            assert not [n for n in _derived(SENT_IPS) if n.encode() in published]

    logs = capsys.readouterr().out + caplog.text
    assert "service started" in logs and "service stopped" in logs  # the capture did see the service's logs
    assert not [n for n in _derived(SENT_IPS) if n in logs]


def _derived(ips) -> list[str]:
    """An address, its network, and unkeyed hashes of either: anyone could reverse those by trying them all."""
    found = []
    for ip in ips:
        for text in (ip, partner.network_prefix(ip)):
            found += [text] + [getattr(hashlib, name)(text.encode()).hexdigest() for name in ("md5", "sha1", "sha256")]
    return found


async def _columns_holding(telemetry, columns, needle: str) -> list[str]:
    """Columns where `needle` occurs as text, or as its UTF-8 bytes in a binary column."""
    found = []
    for column in columns:
        table, name = column["table_name"], column["column_name"]
        hit = await telemetry.fetch(
            f"""SELECT 1 FROM "{table}" WHERE "{name}"::text LIKE '%' || $1 || '%'
                   OR "{name}"::text LIKE '%' || encode(convert_to($1, 'UTF8'), 'hex') || '%' LIMIT 1""", needle)
        if hit:
            found.append(f"{table}.{name}")
    return sorted(found)

