"""Every telemetry use case on the in-memory store and a list for the hits topic: no Kafka, no database."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from assent_shared.cloudevents import EventMeta
from assent_shared.events import DeviceConsentGranted, DeviceConsentRevoked, PageViewed
from assent_telemetry import domain, handlers, partner
from assent_telemetry.fakes import memory_telemetries
from assent_telemetry.handlers import Client, Hit, Ingest
from assent_telemetry.networks import NetworkLookup
from assent_telemetry.ratelimit import NetworkRateLimit
from assent_telemetry.salts import DailySalts
from assent_telemetry.settings import TelemetrySettings

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/124.0.0.0 Safari/537.36")
TOKEN = "partner-token-" + "p" * 32
SETTINGS = TelemetrySettings(environment="test", partners={"acme": TOKEN}, partner_sites={"acme": ["demo"]},
                             k_anonymity=2, network_hits_per_minute=50)
DEVICE = "d" * 22


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class Kit:
    def __init__(self) -> None:
        self.telemetries = memory_telemetries()
        self.clock = Clock()
        self.sent: list[PageViewed] = []
        self.salts = DailySalts(self.telemetries)
        self.ingest = Ingest(NetworkLookup(None), self.salts, NetworkRateLimit(SETTINGS.network_hits_per_minute),
                             self.publish)

    async def publish(self, events: list[PageViewed]) -> None:
        self.sent.extend(events)

    @property
    def store(self):
        return self.telemetries.store

    async def collect(self, *urls: str, ip: str = "203.0.113.7", cookie_id: str | None = None,
                      site_id: str = "demo") -> int:
        return await handlers.collect_hits([Hit(site_id, url, None, None) for url in urls],
                                           Client(ip, CHROME, cookie_id), settings=SETTINGS, ingest=self.ingest,
                                           clock=self.clock)

    async def aggregate(self) -> None:
        """What the batch inbox does with the fresh events: one call, in one transaction."""
        async with self.telemetries.transaction() as store:
            await handlers.add_page_views(store, [(e, _meta(e)) for e in self.sent], settings=SETTINGS,
                                          clock=self.clock)
        self.sent = []

    async def stats(self, *breakdowns: str):
        today = self.clock().date()
        return await handlers.show_stats(self.telemetries, "demo", today, today, breakdowns, 20)


def _meta(event) -> EventMeta:
    return EventMeta(id=str(uuid4()), type=type(event).__name__, source="test", time=datetime.now(UTC))


@pytest.fixture
def kit() -> Kit:
    return Kit()


async def test_hits_become_events_without_the_address_and_count_once_aggregated(kit):
    assert await kit.collect("https://demo.example/a?x=1", "https://demo.example/b") == 2
    assert [e.path for e in kit.sent] == ["/a", "/b"]
    assert all("203.0.113" not in e.model_dump_json() for e in kit.sent)
    assert kit.sent[0].visitor_hash == kit.sent[1].visitor_hash  # one cookieless visitor today
    await kit.aggregate()
    stats = await kit.stats("page", "browser")
    assert (stats.pageviews, stats.visitors, stats.bots) == (2, 1, 0)
    assert {g.value: g.hits for g in stats.breakdowns["page"]} == {"/a": 1, "/b": 1}
    assert [g.value for g in stats.breakdowns["browser"]] == ["Chrome"]
    assert sum(hits for _, hits in stats.hourly) == 2


async def test_a_consented_cookie_names_the_visitor_and_no_cookie_means_a_daily_hash(kit):
    await kit.collect("https://demo.example/", cookie_id="c" * 22)
    await kit.collect("https://demo.example/", cookie_id="c" * 22, ip="198.51.100.9")
    await kit.collect("https://demo.example/", ip="198.51.100.9")
    first, second, cookieless = kit.sent
    assert first.visitor_hash == second.visitor_hash != cookieless.visitor_hash


async def test_a_batch_with_an_unknown_site_publishes_nothing(kit):
    with pytest.raises(handlers.UnknownSite):
        await handlers.collect_hits([Hit("demo", "https://demo.example/", None, None),
                                     Hit("elsewhere", "https://x.example/", None, None)],
                                    Client("203.0.113.7", CHROME, None), settings=SETTINGS, ingest=kit.ingest,
                                    clock=kit.clock)
    assert kit.sent == []


async def test_a_network_is_limited_per_minute(kit):
    await kit.collect(*["https://demo.example/"] * SETTINGS.network_hits_per_minute)
    with pytest.raises(handlers.RateLimited) as limited:
        await kit.collect("https://demo.example/", ip="203.0.113.99")  # the same /24
    assert 1 <= limited.value.retry_after <= 60
    await kit.collect("https://demo.example/", ip="198.51.100.1")


async def test_the_newest_device_consent_decides_the_cookie(kit):
    async def apply(event) -> None:
        async with kit.telemetries.transaction() as store:
            await handlers.apply_device_consent(store, event, _meta(event))

    now = datetime.now(UTC)
    common = {"device_id": DEVICE, "purpose": "cookies", "policy_version": 1, "source": "visitor", "gpc": False,
              "occurred_at": now}
    assert not await handlers.device_allows_cookie(kit.telemetries, DEVICE)
    await apply(DeviceConsentGranted(seq=2, **common))
    assert await handlers.device_allows_cookie(kit.telemetries, DEVICE)
    await apply(DeviceConsentRevoked(seq=1, **common))  # late and older: changes nothing
    assert await handlers.device_allows_cookie(kit.telemetries, DEVICE)
    await apply(DeviceConsentRevoked(seq=3, **common))
    assert not await handlers.device_allows_cookie(kit.telemetries, DEVICE)
    assert not await handlers.device_allows_cookie(kit.telemetries, None)


def test_a_partner_is_known_by_its_token_only():
    assert handlers.partner_of(TOKEN, settings=SETTINGS) == "acme"
    assert handlers.partner_of("partner-token-" + "q" * 32, settings=SETTINGS) is None
    assert handlers.partner_of(None, settings=SETTINGS) is None


async def test_partner_reports_cover_final_days_of_their_sites_only(kit):
    today = kit.clock().date()
    with pytest.raises(handlers.UnknownSite):
        await handlers.report_to_partner(kit.telemetries, "acme", "nowhere", today, today, "page",
                                         settings=SETTINGS, clock=kit.clock)
    with pytest.raises(handlers.NotYourSite):
        await handlers.report_to_partner(kit.telemetries, "other", "demo", today, today, "page",
                                         settings=SETTINGS, clock=kit.clock)
    with pytest.raises(handlers.NotFinal) as not_final:
        await handlers.report_to_partner(kit.telemetries, "acme", "demo", today, today, "page",
                                         settings=SETTINGS, clock=kit.clock)
    assert not_final.value.latest_final_day < today


async def test_a_final_day_keeps_its_partner_cells_and_counts_and_drops_per_visitor_rows(kit):
    for n in range(30):  # thirty networks, so that most dimensions have a cell of at least k
        await kit.collect("https://demo.example/popular", ip=f"203.0.{n}.1")
    await kit.collect("https://demo.example/rare", ip="203.0.1.1")
    await kit.aggregate()
    day = kit.clock().date()
    units = list(kit.store.unit_days.values())
    kit.clock.now += timedelta(days=3)  # the day is final now
    reports = {d: await handlers.report_to_partner(kit.telemetries, "acme", "demo", day, day, d,
                                                   settings=SETTINGS, clock=kit.clock) for d in partner.DIMENSIONS}
    for dimension, [report] in reports.items():
        expected = [c for c in partner.cells(units, SETTINGS.k_anonymity) if c.dimension == dimension]
        assert report.cells == sorted(expected, key=lambda c: (-c.visitors, c.value))
    assert sum(len(r.cells) for [r] in reports.values()) > 0
    assert kit.store.visitor_days == set() and kit.store.unit_days == {}
    stats = await handlers.show_stats(kit.telemetries, "demo", day, day, ("page",), 20)
    assert (stats.pageviews, stats.visitors) == (31, 30)  # the distinct count outlived the per-visitor rows
    again = await handlers.report_to_partner(kit.telemetries, "acme", "demo", day, day, "page",
                                             settings=SETTINGS, clock=kit.clock)
    assert again == reports["page"]


async def test_maintenance_finalizes_open_days_prunes_old_aggregates_and_forgets_salts(kit):
    await kit.collect("https://demo.example/")
    await kit.aggregate()
    day = kit.clock().date()
    assert day in kit.store.salts
    kit.clock.now += timedelta(days=3)
    await handlers.maintain(kit.telemetries, settings=SETTINGS, salts=kit.salts, clock=kit.clock)
    assert ("demo", day) in kit.store.final_days and kit.store.visitor_days == set()
    assert day not in kit.store.salts
    kit.clock.now += timedelta(days=SETTINGS.aggregate_keep_days)
    await handlers.maintain(kit.telemetries, settings=SETTINGS, salts=kit.salts, clock=kit.clock)
    assert not kit.store.rollups and not kit.store.final_days


async def test_hits_of_a_day_already_final_count_but_keep_no_visitor_rows(kit):
    await kit.collect("https://demo.example/")
    kit.clock.now += timedelta(days=3)  # aggregated after its day became final
    await kit.aggregate()
    assert kit.store.visitor_days == set() and kit.store.unit_days == {}
    assert sum(kit.store.rollups.values()) > 0
    assert domain.TOTAL in {k.dimension for k in kit.store.rollups}
