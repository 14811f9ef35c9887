"""Telemetry's use cases, one function per command or event: ingest hits, aggregate them into rollups, answer
admins and partners. Storage (a unit of work, or the inbox's store) first, then the command, then what else it
needs, by keyword."""

import asyncio
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import structlog

from assent_shared import topics
from assent_shared.cloudevents import EventMeta
from assent_shared.events import DeviceConsentGranted, DeviceConsentRevoked, PageViewed
from assent_telemetry import domain, partner
from assent_telemetry.hits import PublishHits
from assent_telemetry.networks import NetworkLookup
from assent_telemetry.ports import Telemetries, TelemetryStore
from assent_telemetry.ratelimit import NetworkRateLimit
from assent_telemetry.salts import DailySalts
from assent_telemetry.settings import TelemetrySettings

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]


class UnknownSite(ValueError):
    pass


class NotYourSite(ValueError):
    """A partner asked about a site it is not scoped to."""


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__("rate limited")
        self.retry_after = max(1, int(retry_after + 0.999))


class NotFinal(ValueError):
    def __init__(self, latest_final_day: date) -> None:
        super().__init__("day not final")
        self.latest_final_day = latest_final_day


@dataclass(frozen=True)
class Hit:
    site_id: str
    url: str
    referrer: str | None
    ts: datetime | None


@dataclass(frozen=True)
class Client:
    """What the request says about the sender; `ip` serves the lookups below and is then dropped."""

    ip: str | None
    user_agent: str
    cookie_id: str | None


@dataclass(frozen=True)
class Stats:
    pageviews: int
    visitors: int
    bots: int
    hourly: list[tuple[datetime, int]]
    breakdowns: dict[str, list[domain.Group]]


@dataclass(frozen=True)
class DayReport:
    day: date
    cells: list[partner.Cell]


@dataclass(frozen=True)
class Ingest:
    """What turns a request's hits into events: the network lookup, the day's salts, the per-network limit
    and where the events go."""

    networks: NetworkLookup
    salts: DailySalts
    limit: NetworkRateLimit
    publish: PublishHits


async def apply_device_consent(store: TelemetryStore, event: DeviceConsentGranted | DeviceConsentRevoked,
                               _meta: EventMeta) -> None:
    await store.apply_device_consent(domain.device_hash(event.device_id), event.purpose,
                                     isinstance(event, DeviceConsentGranted), event.seq)


async def device_allows_cookie(telemetries: Telemetries, device_id: str | None) -> bool:
    if device_id is None:
        return False
    async with telemetries.reading() as store:
        return await store.device_allows(domain.device_hash(device_id), domain.COOKIE_PURPOSE)


async def collect_hits(hits: Sequence[Hit], client: Client, *, settings: TelemetrySettings, ingest: Ingest,
                       clock: Clock) -> int:
    """Validate every hit, then publish them all; nothing is published from a batch with a bad hit."""
    for hit in hits:
        if hit.site_id not in settings.sites:
            raise UnknownSite(hit.site_id)
    now = clock()
    late_hit = timedelta(seconds=settings.late_hit_seconds)
    agent = domain.classify(client.user_agent)
    network = ingest.networks.network(client.ip)
    prefix = partner.network_prefix(client.ip)
    today_salt = await ingest.salts.get(domain.salt_day(now))
    wait = ingest.limit.admit(partner.network_unit(today_salt, "", prefix), len(hits), now.timestamp())
    if wait:
        raise RateLimited(wait)
    events = []
    for hit in hits:
        at = domain.occurred_at(hit.ts, now, late_hit, timedelta(seconds=settings.future_skew_seconds))
        salt = await ingest.salts.get(domain.salt_day(at))
        if client.cookie_id is not None:
            visitor = domain.consented_visitor(hit.site_id, client.cookie_id)
        else:
            visitor = domain.cookieless_visitor(salt, hit.site_id, client.ip or "", client.user_agent)
        events.append(PageViewed(
            site_id=hit.site_id, path=domain.page_path(hit.url),
            referrer=domain.referrer_host(hit.referrer, hit.url),
            browser=agent.browser, os=agent.os, device_type=agent.device_type, isp=network,
            visitor_hash=visitor, occurred_at=at, network_unit=partner.network_unit(salt, hit.site_id, prefix),
        ))
    await ingest.publish(events)
    return len(events)


async def add_page_views(store: TelemetryStore, views: Sequence[tuple[PageViewed, EventMeta]], *,
                         settings: TelemetrySettings, clock: Clock) -> None:
    """The fresh hits of a batch, totalled in memory and added to the rollups in one upsert per group."""
    hits, visitors = domain.tally(event for event, _ in views)
    await store.add_hits(hits)
    # Per-visitor rows only for days still open: a final day's are gone for good.
    latest_final = _latest_final_day(settings, clock)
    visitors = {v for v in visitors if v[1] > latest_final}
    if visitors:
        await store.add_visitors(visitors)
    units = [u for u in partner.unit_hits(event for event, _ in views) if u.day > latest_final]
    if units:
        await store.add_unit_hits(units)


async def show_stats(telemetries: Telemetries, site_id: str, first: date, last: date, breakdowns: Sequence[str],
                     limit: int) -> Stats:
    async with telemetries.reading() as store:
        [total] = await store.groups(site_id, first, last, domain.TOTAL, 1) or [domain.Group("", 0, 0)]
        bots = sum(g.hits for g in await store.groups(site_id, first, last, domain.BOT, 2**31 - 1))
        hourly = await store.hourly(site_id, first, last, domain.TOTAL)
        detail = {d: await store.groups(site_id, first, last, d, limit) for d in breakdowns}
    return Stats(
        pageviews=total.hits, visitors=total.visitors, bots=bots,
        hourly=[(datetime.combine(r["day"], time(r["hour"]), UTC), r["hits"]) for r in hourly],
        breakdowns=detail,
    )


def partner_of(token: str | None, *, settings: TelemetrySettings) -> str | None:
    """The partner holding `token`; every token is compared, in constant time, so timing reveals none."""
    found = None
    for partner_id, expected in settings.partners.items():
        if token is not None and hmac.compare_digest(token.encode(), expected.encode()):
            found = partner_id
    return found


def _latest_final_day(settings: TelemetrySettings, clock: Clock) -> date:
    return domain.latest_final_day(clock(), timedelta(seconds=settings.late_hit_seconds),
                                   timedelta(seconds=settings.report_settle_seconds))


async def report_to_partner(telemetries: Telemetries, partner_id: str, site_id: str, first: date, last: date,
                            dimension: str, *, settings: TelemetrySettings, clock: Clock) -> list[DayReport]:
    if site_id not in settings.sites:
        raise UnknownSite(site_id)
    if site_id not in settings.partner_sites.get(partner_id, ()):
        raise NotYourSite(site_id)
    latest = _latest_final_day(settings, clock)
    if last > latest:
        raise NotFinal(latest)
    reports = []
    day = first
    while day <= last:
        await finalize_day(telemetries, site_id, day, settings=settings)
        async with telemetries.reading() as store:
            reports.append(DayReport(day, await store.partner_cells(site_id, day, dimension)))
        day += timedelta(days=1)
    return reports


async def finalize_day(telemetries: Telemetries, site_id: str, day: date, *, settings: TelemetrySettings) -> None:
    """Fix a final day's partner cells once, keep its distinct counts, drop its per-visitor rows.
    Rows a late hit left after that are dropped on the next run."""
    async with telemetries.transaction() as store:
        first_time = await store.claim_final_day(site_id, day)
        if first_time:
            cells = partner.cells(await store.unit_rows(site_id, day), settings.k_anonymity)
            await store.store_partner_cells(site_id, day, cells)
        await store.drop_visitor_rows(site_id, day, count_first=first_time)


async def maintain_forever(telemetries: Telemetries, *, settings: TelemetrySettings, salts: DailySalts,
                           clock: Clock) -> None:
    while True:
        try:
            await maintain(telemetries, settings=settings, salts=salts, clock=clock)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("telemetry maintenance failed", error=type(exc).__name__)
        await asyncio.sleep(settings.maintenance_seconds)


async def maintain(telemetries: Telemetries, *, settings: TelemetrySettings, salts: DailySalts,
                   clock: Clock) -> None:
    """Forget closed days' salts, prune what is past retention, finalize every day that is final by now."""
    await salts.forget_before(domain.oldest_live_salt_day(clock(), timedelta(seconds=settings.late_hit_seconds)))
    async with telemetries.reading() as store:
        await store.prune_inbox(topics.HITS.name, settings.inbox_keep_days)
        await store.prune_aggregates(clock().date() - timedelta(days=settings.aggregate_keep_days))
        open_days = await store.open_days(_latest_final_day(settings, clock))
    for site_id, day in open_days:
        await finalize_day(telemetries, site_id, day, settings=settings)
