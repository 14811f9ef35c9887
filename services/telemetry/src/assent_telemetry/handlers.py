"""Telemetry's use cases: ingest hits, aggregate them into rollups, answer admins and partners."""

import asyncio
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import structlog

from assent_shared import cloudevents, topics
from assent_shared.bootstrap import Runtime
from assent_shared.cloudevents import EventMeta
from assent_shared.events import DeviceConsentGranted, DeviceConsentRevoked, PageViewed
from assent_shared.logs import current_correlation_id
from assent_telemetry import domain, partner, storage
from assent_telemetry.networks import NetworkLookup
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


class TelemetryHandlers:
    def __init__(self, runtime: Runtime, settings: TelemetrySettings, networks: NetworkLookup, clock: Clock) -> None:
        self._runtime = runtime
        self._pool = runtime.pool
        self._settings = settings
        self._networks = networks
        self._clock = clock
        self._salts = DailySalts(runtime.pool)
        self._late_hit = timedelta(seconds=settings.late_hit_seconds)
        self._settle = timedelta(seconds=settings.report_settle_seconds)
        self._limit = NetworkRateLimit(settings.network_hits_per_minute)

    async def apply_device_consent(self, conn: asyncpg.Connection,
                                   event: DeviceConsentGranted | DeviceConsentRevoked, _meta: EventMeta) -> None:
        await storage.apply_device_consent(conn, domain.device_hash(event.device_id), event.purpose,
                                           isinstance(event, DeviceConsentGranted), event.seq)

    async def device_allows_cookie(self, device_id: str | None) -> bool:
        if device_id is None:
            return False
        async with self._pool.acquire() as conn:
            return await storage.device_allows(conn, domain.device_hash(device_id), domain.COOKIE_PURPOSE)

    def origins(self, site_id: str) -> list[str] | None:
        return self._settings.sites.get(site_id)

    async def collect(self, hits: Sequence[Hit], client: Client) -> int:
        """Validate every hit, then publish them all; nothing is published from a batch with a bad hit."""
        for hit in hits:
            if hit.site_id not in self._settings.sites:
                raise UnknownSite(hit.site_id)
        now = self._clock()
        agent = domain.classify(client.user_agent)
        network = self._networks.network(client.ip)
        prefix = partner.network_prefix(client.ip)
        today_salt = await self._salts.get(domain.salt_day(now))
        wait = self._limit.admit(partner.network_unit(today_salt, "", prefix), len(hits), now.timestamp())
        if wait:
            raise RateLimited(wait)
        events = []
        for hit in hits:
            at = domain.occurred_at(hit.ts, now, self._late_hit, timedelta(seconds=self._settings.future_skew_seconds))
            salt = await self._salts.get(domain.salt_day(at))
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
        await self._publish(events)
        return len(events)

    async def _publish(self, events: list[PageViewed]) -> None:
        # No outbox here, on purpose: a hit changes nothing in telemetry's database before it is aggregated,
        # so there is no state for the event to agree with, and a transaction per hit would cap ingest.
        # The idempotent producer (acks=all) keeps retries from duplicating; failure answers 5xx, the
        # beacon may be lost, which analytics tolerates.
        topic = self._settings.topic(topics.HITS.name)
        correlation_id = current_correlation_id()
        sends = [
            await self._runtime.producer.send(
                topic, value=event.model_dump_json().encode(), key=event.key().encode(),
                headers=cloudevents.encode_headers(cloudevents.meta_for(event, correlation_id=correlation_id)),
            )
            for event in events
        ]
        await asyncio.gather(*sends)
        self._runtime.metrics.events_published.labels(topic=topics.HITS.name).inc(len(events))

    async def add_page_views(self, conn: asyncpg.Connection, views: Sequence[tuple[PageViewed, EventMeta]]) -> None:
        """The fresh hits of a batch, totalled in memory and added to the rollups in one upsert per group."""
        hits, visitors = domain.tally(event for event, _ in views)
        await storage.add_hits(conn, hits)
        # Per-visitor rows only for days still open: a final day's are gone for good.
        latest_final = self._latest_final_day()
        visitors = {v for v in visitors if v[1] > latest_final}
        if visitors:
            await storage.add_visitors(conn, visitors)
        units = [u for u in partner.unit_hits(event for event, _ in views) if u.day > latest_final]
        if units:
            await storage.add_unit_hits(conn, units)

    async def stats(self, site_id: str, first: date, last: date, breakdowns: Sequence[str], limit: int) -> Stats:
        async with self._pool.acquire() as conn:
            [total] = await storage.groups(conn, site_id, first, last, domain.TOTAL, 1) or [domain.Group("", 0, 0)]
            bots = sum(g.hits for g in await storage.groups(conn, site_id, first, last, domain.BOT, 2**31 - 1))
            hourly = await storage.hourly(conn, site_id, first, last, domain.TOTAL)
            detail = {d: await storage.groups(conn, site_id, first, last, d, limit) for d in breakdowns}
        return Stats(
            pageviews=total.hits, visitors=total.visitors, bots=bots,
            hourly=[(datetime.combine(r["day"], time(r["hour"]), UTC), r["hits"]) for r in hourly],
            breakdowns=detail,
        )

    def partner_for(self, token: str | None) -> str | None:
        """The partner holding `token`; every token is compared, in constant time, so timing reveals none."""
        found = None
        for partner, expected in self._settings.partners.items():
            if token is not None and hmac.compare_digest(token.encode(), expected.encode()):
                found = partner
        return found

    def _latest_final_day(self) -> date:
        return domain.latest_final_day(self._clock(), self._late_hit, self._settle)

    async def partner_report(self, partner_id: str, site_id: str, first: date, last: date,
                             dimension: str) -> list[DayReport]:
        if site_id not in self._settings.sites:
            raise UnknownSite(site_id)
        if site_id not in self._settings.partner_sites.get(partner_id, ()):
            raise NotYourSite(site_id)
        latest = self._latest_final_day()
        if last > latest:
            raise NotFinal(latest)
        reports = []
        day = first
        while day <= last:
            await self.finalize_day(site_id, day)
            async with self._pool.acquire() as conn:
                reports.append(DayReport(day, await storage.partner_cells(conn, site_id, day, dimension)))
            day += timedelta(days=1)
        return reports

    async def finalize_day(self, site_id: str, day: date) -> None:
        """Fix a final day's partner cells once, keep its distinct counts, drop its per-visitor rows.
        Rows a late hit left after that are dropped on the next run."""
        async with self._pool.acquire() as conn, conn.transaction():
            first_time = await storage.claim_final_day(conn, site_id, day)
            if first_time:
                cells = partner.cells(await storage.unit_rows(conn, site_id, day), self._settings.k_anonymity)
                await storage.store_partner_cells(conn, site_id, day, cells)
            await storage.drop_visitor_rows(conn, site_id, day, count_first=first_time)

    async def maintain_forever(self) -> None:
        while True:
            try:
                await self.maintain()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("telemetry maintenance failed", error=type(exc).__name__)
            await asyncio.sleep(self._settings.maintenance_seconds)

    async def maintain(self) -> None:
        await self._salts.forget_before(domain.oldest_live_salt_day(self._clock(), self._late_hit))
        async with self._pool.acquire() as conn:
            await storage.prune_inbox(conn, topics.HITS.name, self._settings.inbox_keep_days)
            await storage.prune_aggregates(conn, self._clock().date() - timedelta(days=self._settings.aggregate_keep_days))
            open_days = await storage.open_days(conn, self._latest_final_day())
        for site_id, day in open_days:
            await self.finalize_day(site_id, day)
