"""What telemetry must never do: keep an address anywhere, or show a partner a group smaller than k."""

import logging
from datetime import timedelta

from assent_shared.testing.helpers import eventually
from assent_shared.testing.topics import read_topic
from telemetry_testkit import CHROME_WINDOWS, GOOGLEBOT, IPHONE, PARTNER_TOKEN

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
        assert await _columns_holding(telemetry, columns, "Example Six") == ["hit_rollups.value", "visitor_days.value"]
        for ip in SENT_IPS:
            assert await _columns_holding(telemetry, columns, ip) == []

        records = await read_topic(infra.kafka_bootstrap, telemetry.prefix + "telemetry.hits.v1")
        assert len(records) == 9
        for _, record in records:
            published = record.value + (record.key or b"") + b"".join(k.encode() + v for k, v in record.headers)
            assert not [ip for ip in SENT_IPS if ip.encode() in published]

    logs = capsys.readouterr().out + caplog.text
    assert "service started" in logs and "service stopped" in logs  # the capture did see the service's logs
    assert not [ip for ip in SENT_IPS if ip in logs]


async def test_partner_report_never_shows_a_group_below_k(telemetry):
    """k = 3 here: Chrome has 3 visitors, Firefox 1 visitor with many hits, Mobile Safari 2 visitors."""
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
    visits = [(f"203.0.113.{n}", CHROME_WINDOWS, "/a") for n in (1, 2, 3)]
    visits += [("203.0.113.9", firefox, "/a")] * 4 + [("203.0.113.9", firefox, "/rare")]
    visits += [("198.51.100.1", IPHONE, "/a"), ("198.51.100.2", IPHONE, "/a")]
    for ip, agent, path in visits:
        await telemetry.hit(ip, agent, {"site_id": "demo", "url": f"https://demo.example{path}"})
    await eventually(lambda: _counted(telemetry, len(visits)))
    today = telemetry.clock().date().isoformat()

    async def report(dimension: str, token: str = PARTNER_TOKEN, day: str = today):
        return await telemetry.client.get("/v1/reports/aggregate", headers={"Authorization": f"Bearer {token}"},
                                          params={"site_id": "demo", "dimension": dimension, "from": day})

    assert (await report("browser", token="wrong" * 10)).status_code == 401
    anonymous = await telemetry.client.get("/v1/reports/aggregate",
                                           params={"site_id": "demo", "dimension": "page", "from": today})
    assert anonymous.status_code == 401
    open_day = await report("browser")
    assert open_day.status_code == 422 and open_day.json()["title"] == "Day not final"

    telemetry.clock.offset = timedelta(days=2, hours=3)
    by_dimension = {}
    for dimension in ("page", "browser", "os", "device_type", "isp", "referrer"):
        response = await report(dimension)
        assert response.status_code == 200, response.text
        [day] = response.json()["days"]
        assert all(g["visitors"] >= 3 for g in day["groups"])
        assert day["hits"] == sum(g["hits"] for g in day["groups"])
        by_dimension[dimension] = day
    assert by_dimension["browser"]["groups"] == [{"value": "Chrome", "hits": 3, "visitors": 3}]
    assert (by_dimension["browser"]["hits"], by_dimension["browser"]["visitors"]) == (3, 3)
    assert by_dimension["page"]["groups"] == [{"value": "/a", "hits": 9, "visitors": 6}]  # /rare is gone, unsummed
    assert by_dimension["device_type"]["groups"] == [{"value": "desktop", "hits": 8, "visitors": 4}]
    assert by_dimension["isp"]["groups"] == [{"value": "Example Net", "hits": 8, "visitors": 4}]


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


async def _counted(telemetry, expected: int) -> bool:
    return (await telemetry.stats())["pageviews"] == expected
