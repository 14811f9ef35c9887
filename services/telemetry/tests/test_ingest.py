"""Telemetry on real Kafka and PostgreSQL: hits in, exact rollups out, once each, whatever is replayed."""

import json
import secrets
import time
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from assent_shared import topics
from assent_shared.cloudevents import encode_headers, meta_for
from assent_shared.events import DeviceConsentGranted, DeviceConsentRevoked, PageViewed
from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.topics import publish, read_topic
from telemetry_testkit import CHROME_WINDOWS, GOOGLEBOT, IPHONE, ORIGIN


def _by_value(groups: list[dict]) -> dict[str, tuple[int, int]]:
    return {g["value"]: (g["hits"], g["visitors"]) for g in groups}


async def test_hits_in_rollups_out_with_exact_counts(telemetry, infra):
    a, b, bot = "203.0.113.7", "198.51.100.9", "203.0.113.200"
    assert (await telemetry.hit(a, CHROME_WINDOWS, {"site_id": "demo", "url": "https://demo.example/a",
                                                   "referrer": "https://search.example/?q=me"})).status_code == 202
    assert (await telemetry.hit(a, CHROME_WINDOWS, {"site_id": "demo",
                                                   "url": "https://demo.example/b?token=s3cret"})).status_code == 202
    beacon = await telemetry.client.post(  # what navigator.sendBeacon sends
        "/v1/collect", content=json.dumps({"site_id": "demo", "url": "https://demo.example/a"}),
        headers={"Content-Type": "text/plain;charset=UTF-8", "X-Forwarded-For": a, "User-Agent": CHROME_WINDOWS})
    assert beacon.status_code == 202
    batch = await telemetry.hit(b, IPHONE, [{"site_id": "demo", "url": "https://demo.example/a"}] * 2)
    assert batch.status_code == 202 and batch.json() == {"accepted": 2}
    crawled = await telemetry.hit(bot, GOOGLEBOT, {"site_id": "demo", "url": "https://demo.example/a"})
    assert crawled.status_code == 202

    async def counted():
        stats = await telemetry.stats("page", "browser", "os", "device_type", "isp", "referrer", "bot")
        return stats if (stats["pageviews"], stats["bots"]) == (5, 1) else None

    stats = await eventually(counted)
    assert stats["visitors"] == 2
    assert sum(h["hits"] for h in stats["hourly"]) == 5
    by = {d: _by_value(groups) for d, groups in stats["breakdowns"].items()}
    assert by["page"] == {"/a": (4, 2), "/b": (1, 1)}
    assert by["browser"] == {"Chrome": (3, 1), "Mobile Safari": (2, 1)}
    assert by["os"] == {"Windows": (3, 1), "iOS": (2, 1)}
    assert by["device_type"] == {"desktop": (3, 1), "mobile": (2, 1)}
    assert by["isp"] == {"Example Net": (3, 1), "unknown": (2, 1)}
    assert by["referrer"] == {"search.example": (1, 1), "(direct)": (4, 2)}
    assert by["bot"] == {"Googlebot": (1, 1)}

    records = await read_topic(infra.kafka_bootstrap, telemetry.prefix + "telemetry.hits.v1")
    assert len(records) == 6
    assert {r.key for _, r in records} == {b"demo"} and {m.type for m, _ in records} == {"PageViewed"}
    assert all(b"s3cret" not in r.value and b"search.example/?q" not in r.value for _, r in records)


async def test_replaying_the_topic_does_not_double_count(telemetry, infra):
    for ip in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        await telemetry.hit(ip, CHROME_WINDOWS, {"site_id": "demo", "url": "https://demo.example/x"})
    await eventually(lambda: _pageviews(telemetry, 3))
    topic = telemetry.prefix + "telemetry.hits.v1"
    records = await read_topic(infra.kafka_bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
    await producer.start()
    try:
        for _, record in records * 2:
            await producer.send_and_wait(topic, value=record.value, key=record.key, headers=list(record.headers))
        fresh_id = [(k, unique().encode() if k == "ce_id" else v) for k, v in records[0][1].headers]
        await producer.send_and_wait(topic, value=b"not an event", key=b"demo", headers=fresh_id)
    finally:
        await producer.stop()
    # Same key, so the same partition: once the marker counts, every replay before it was seen.
    await telemetry.hit("203.0.113.4", CHROME_WINDOWS, {"site_id": "demo", "url": "https://demo.example/marker"})
    stats = await eventually(lambda: _pageviews(telemetry, 4, "page"))
    assert _by_value(stats["breakdowns"]["page"]) == {"/x": (3, 3), "/marker": (1, 1)}
    dead = await read_topic(infra.kafka_bootstrap, telemetry.prefix + "telemetry.dead-letters.v1")
    # Only the reason and where the original lies: a payload that is not a valid event is not copied.
    assert [(r.value, dict(r.headers)["dlq_value"]) for _, r in dead] == [(None, b"omitted")]


async def _pageviews(telemetry, expected: int, *breakdowns: str, site_id: str = "demo") -> dict | None:
    stats = await telemetry.stats(*breakdowns, site_id=site_id)
    assert stats["pageviews"] <= expected, "counted more hits than were sent"
    return stats if stats["pageviews"] == expected else None


async def test_replicas_share_the_consumer_group_and_count_each_hit_once(telemetry_app, new_database):
    database_url, prefix = await new_database("telemetry"), unique("tm-") + "."
    async with telemetry_app(database_url, prefix) as first, telemetry_app(database_url, prefix) as second:
        for n in range(12):
            replica = (first, second)[n % 2]
            site = ("demo", "shop", "blog")[n % 3]
            response = await replica.hit(f"203.0.113.{n}", CHROME_WINDOWS, {"site_id": site, "url": "https://x.example/"})
            assert response.status_code == 202
        for site in ("demo", "shop", "blog"):
            await eventually(lambda site=site: _pageviews(first, 4, site_id=site))
            assert (await second.stats(site_id=site))["visitors"] == 4


async def test_bad_input_gets_a_clear_4xx_and_publishes_nothing(telemetry, infra):
    hit = {"site_id": "demo", "url": "https://demo.example/"}

    async def chunks():
        yield b"["
        for _ in range(100):
            yield b" " * 1024

    cases = [
        (413, {"content": b"[" + b" " * 70_000 + b"]"}),
        (413, {"content": chunks()}),  # no Content-Length: cut off while reading
        (400, {"content": b"{not json"}),
        (400, {"content": b"\xff\xfe"}),
        (422, {"json": {**hit, "site_id": "nope"}}),
        (422, {"json": {**hit, "ts": "1999-01-01T00:00:00Z"}}),
        (422, {"json": {**hit, "ts": "2999-01-01T00:00:00Z"}}),
        (422, {"json": [hit] * 101}),
        (422, {"json": []}),
        (422, {"json": [hit, {**hit, "url": "javascript:alert(1)"}]}),
        (422, {"json": {"site_id": "demo"}}),
        (422, {"json": 5}),
        (422, {"json": {**hit, "url": "https://demo.example/a\u0000b"}}),  # PostgreSQL text holds no NUL
        (422, {"json": {**hit, "referrer": "https://r.example/\u0007"}}),
        (422, {"json": {**hit, "site_id": "demo\n"}}),
        (400, {"content": b"[" * 5000}),  # nested too deep for the parser
        (400, {"content": b"1" * 5000}),  # more digits than Python turns into an int
        (403, {"json": hit, "headers": {"Origin": "https://evil.example"}}),
    ]
    for status, request in cases:
        response = await telemetry.client.post("/v1/collect", **request)
        assert response.status_code == status, (request, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["title"]
    await telemetry.hit("203.0.113.9", CHROME_WINDOWS, {**hit, "url": "https://demo.example/marker"})
    await eventually(lambda: _pageviews(telemetry, 1))
    records = await read_topic(infra.kafka_bootstrap, telemetry.prefix + "telemetry.hits.v1")
    assert len(records) == 1


async def test_a_hit_the_rollups_cannot_take_is_dead_lettered_and_the_partition_goes_on(telemetry, infra):
    def hit(path: str) -> tuple[bytes, list]:
        event = PageViewed(site_id="demo", path=path, browser="Chrome", os="Windows", device_type="desktop",
                           visitor_hash="d" + unique(), occurred_at=telemetry.clock())
        return event.model_dump_json().encode(), encode_headers(meta_for(event))

    topic = telemetry.prefix + "telemetry.hits.v1"
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, linger_ms=50)
    await producer.start()
    try:  # sent together, so that the bad one shares a batch with good ones
        sends = [await producer.send(topic, value=v, key=b"demo", headers=h)
                 for v, h in (hit("/before"), hit("/nul\x00path"), hit("/after"))]
        for sent in sends:
            await sent
    finally:
        await producer.stop()
    stats = await eventually(lambda: _pageviews(telemetry, 2, "page"))
    assert _by_value(stats["breakdowns"]["page"]) == {"/before": (1, 1), "/after": (1, 1)}
    dead = await eventually(lambda: read_topic(infra.kafka_bootstrap, telemetry.prefix + "telemetry.dead-letters.v1"))
    assert [b"/nul\\u0000path" in r.value for _, r in dead] == [True]
    assert dict(dead[0][1].headers)["dlq_reason"].startswith(b"handler failed: ")
    # Later hits of the partition still count.
    await telemetry.hit("203.0.113.9", CHROME_WINDOWS, {"site_id": "demo", "url": "https://demo.example/later"})
    await eventually(lambda: _pageviews(telemetry, 3))


async def test_while_the_aggregator_fails_readiness_is_red_and_retries_back_off_until_it_recovers(telemetry_app):
    async with telemetry_app(task_restart_min_seconds=0.3, task_restart_max_seconds=5) as telemetry:
        inbox = telemetry.app.state.runtime.inbox
        consume_batch, failed_at = inbox.consume_batch, []

        async def outage(topic, records, handlers) -> int:  # the database unreachable for three batches of hits
            if topic == topics.HITS.name and len(failed_at) < 3:
                failed_at.append(time.monotonic())
                raise OSError("connection refused")
            return await consume_batch(topic, records, handlers)

        inbox.consume_batch = outage
        await telemetry.hit("203.0.113.4", CHROME_WINDOWS, {"site_id": "demo", "url": "https://demo.example/o"})

        async def red() -> dict | None:
            answer = await telemetry.client.get("/health/ready")
            return answer.json() if answer.status_code == 503 else None

        assert (await eventually(red))["tasks_down"] == ["telemetry-aggregator"]
        await eventually(lambda: _pageviews(telemetry, 1))  # the rewound batch, applied once
        assert (await telemetry.client.get("/health/ready")).status_code == 200
        pauses = [b - a for a, b in zip(failed_at, failed_at[1:])]
        assert len(failed_at) == 3 and pauses[0] >= 0.3 and pauses[1] >= 0.6  # doubling
        metrics = (await telemetry.client.get("/metrics")).text
        assert 'background_task_crashes_total{task="telemetry-aggregator"} 3.0' in metrics


async def grant_device(infra, telemetry, device_id, granted, seq):
    kind = DeviceConsentGranted if granted else DeviceConsentRevoked
    return await publish(infra.kafka_bootstrap, telemetry.prefix + "consent.consents.v1", kind(
        device_id=device_id, purpose="cookies", seq=seq, policy_version=1, source="visitor", gpc=False,
        occurred_at=datetime.now(UTC)))


async def _applied(telemetry, meta):
    return await telemetry.fetch("SELECT 1 FROM inbox WHERE event_id = $1", meta.id)


async def test_visitor_cookie_only_for_a_device_the_consent_service_says_allowed_it(telemetry, infra):
    allowed, unknown = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    granted = await grant_device(infra, telemetry, allowed, True, 1)
    await eventually(lambda: _applied(telemetry, granted))
    # What the browser claims decides nothing: no consent on record, no cookie.
    claimed = await telemetry.hit("203.0.113.3", CHROME_WINDOWS,
                                  {"site_id": "demo", "url": "https://demo.example/", "consent": True,
                                   "device_id": unknown})
    assert claimed.status_code == 202 and "set-cookie" not in claimed.headers
    bare = await telemetry.hit("203.0.113.3", CHROME_WINDOWS, {"site_id": "demo", "url": "https://demo.example/"})
    assert "set-cookie" not in bare.headers

    hit = {"site_id": "demo", "url": "https://demo.example/", "device_id": allowed}
    first = await telemetry.hit("203.0.113.1", CHROME_WINDOWS, hit)
    cookie = first.cookies.get("assent_vid")
    assert cookie and "httponly" in first.headers["set-cookie"].lower()
    # The same consenting visitor from another network is still one visitor.
    again = await telemetry.hit("203.0.113.2", CHROME_WINDOWS, hit)
    assert again.status_code == 202 and telemetry.client.cookies.get("assent_vid") == cookie
    gpc = await telemetry.hit("203.0.113.3", CHROME_WINDOWS, hit, **{"Sec-GPC": "1"})
    assert "assent_vid=\"\"" in gpc.headers["set-cookie"] or "Max-Age=0" in gpc.headers["set-cookie"]
    assert not telemetry.client.cookies.get("assent_vid")
    stats = await eventually(lambda: _pageviews(telemetry, 5))
    assert stats["visitors"] == 2  # the cookie visitor, and one cookieless visitor behind 203.0.113.3

    # Withdrawn at the consent service: the cookie goes; a replayed older grant does not bring it back.
    granted_again = await telemetry.hit("203.0.113.1", CHROME_WINDOWS, hit)
    assert granted_again.cookies.get("assent_vid")
    revoked = await grant_device(infra, telemetry, allowed, False, 2)
    await eventually(lambda: _applied(telemetry, revoked))
    replayed = await grant_device(infra, telemetry, allowed, True, 1)
    await eventually(lambda: _applied(telemetry, replayed))
    gone = await telemetry.hit("203.0.113.1", CHROME_WINDOWS, hit)
    assert "Max-Age=0" in gone.headers["set-cookie"] or "assent_vid=\"\"" in gone.headers["set-cookie"]
    rows = await telemetry.fetch("SELECT device_hash FROM device_consents")
    assert rows and all(allowed not in r["device_hash"] for r in rows)


async def test_tracking_script_and_cors_for_the_configured_origins(telemetry):
    script = await telemetry.client.get("/v1/script.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "sendBeacon" in script.text and "globalPrivacyControl" in script.text
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    allowed = await telemetry.client.options("/v1/collect", headers=preflight)
    assert allowed.status_code == 204 and allowed.headers["access-control-allow-origin"] == ORIGIN
    refused = await telemetry.client.options("/v1/collect", headers={**preflight, "Origin": "https://evil.example"})
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    posted = await telemetry.hit("203.0.113.1", CHROME_WINDOWS, {"site_id": "demo", "url": f"{ORIGIN}/"},
                                 Origin=ORIGIN)
    assert posted.status_code == 202 and posted.headers["access-control-allow-origin"] == ORIGIN


async def test_the_visitor_cookie_is_secure_behind_a_tls_proxy_and_only_then(telemetry_app, infra):
    device = secrets.token_urlsafe(16)
    hit = {"site_id": "demo", "url": "https://demo.example/", "device_id": device}
    async with telemetry_app(trusted_proxies=["127.0.0.1/32"]) as behind:
        granted = await grant_device(infra, behind, device, True, 1)
        await eventually(lambda: _applied(behind, granted))
        over_tls = await behind.hit("203.0.113.1", CHROME_WINDOWS, hit, **{"X-Forwarded-Proto": "https"})
        assert "secure" in over_tls.headers["set-cookie"].lower()
    async with telemetry_app(trusted_proxies=["10.0.0.0/8"]) as not_a_proxy:  # the peer may not say so
        granted = await grant_device(infra, not_a_proxy, device, True, 1)
        await eventually(lambda: _applied(not_a_proxy, granted))
        forged = await not_a_proxy.hit("203.0.113.1", CHROME_WINDOWS, hit, **{"X-Forwarded-Proto": "https"})
        assert "secure" not in forged.headers["set-cookie"].lower()
