"""Telemetry's rules, free of I/O: what a hit says, who its visitor is, what is counted and what is shown."""

import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import ua_parser

from assent_shared.events import PageViewed

# Dimensions a hit is broken down by; "total" and "bot" are the admin's headline counts.
DIMENSIONS = ("page", "browser", "os", "device_type", "isp", "referrer")
TOTAL = "total"
BOT = "bot"
ADMIN_DIMENSIONS = (*DIMENSIONS, BOT)
MAX_URL = 2048
_MAX_PATH = 512
_MAX_USER_AGENT = 512  # the parser's cost grows with length; real agents are far shorter
_DESKTOP_OS = frozenset({"Windows", "Mac OS X", "Linux", "Ubuntu", "Fedora", "Debian", "Chrome OS", "FreeBSD",
                         "OpenBSD", "NetBSD", "Solaris"})
_MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Firefox OS", "Symbian OS",
                        "Tizen", "HarmonyOS"})
_COOKIE_ID = re.compile(r"[A-Za-z0-9_-]{22}")


class InvalidHit(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Agent:
    browser: str
    os: str
    device_type: str  # desktop, mobile, tablet, bot or other


def classify(user_agent: str) -> Agent:
    """Browser, OS and device type from ua-parser's maintained rules; crawlers and bare programs are bots."""
    parsed = ua_parser.parse(user_agent[:_MAX_USER_AGENT])
    browser = parsed.user_agent.family if parsed.user_agent else "Other"
    os = parsed.os.family if parsed.os else "Other"
    device = parsed.device
    # A client that names neither an OS nor a device is a program (curl, an HTTP library), not a person's browser.
    crawler = device is not None and device.family == "Spider"
    if crawler or "Headless" in browser or (parsed.os is None and device is None):
        return Agent(browser, os, "bot")
    if device is not None and (device.family in ("iPad", "Kindle") or device.brand == "Generic_Android_Tablet"):
        return Agent(browser, os, "tablet")
    if os == "Android" and "Mobile" not in user_agent:
        # Android tablets omit "Mobile" from their user agent, by Google's own guidance.
        return Agent(browser, os, "tablet")
    if os in _MOBILE_OS:
        return Agent(browser, os, "mobile")
    if os in _DESKTOP_OS:
        return Agent(browser, os, "desktop")
    return Agent(browser, os, "other")


def page_path(url: str) -> str:
    """The page's path only: query strings and fragments often carry tokens, emails or search terms."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidHit("url", "Expected an absolute http(s) URL.")
    return (parts.path or "/")[:_MAX_PATH]


def referrer_host(referrer: str | None, page_url: str) -> str | None:
    """The referring site's host; none for internal navigation or anything that is not a web URL."""
    if not referrer:
        return None
    parts = urlsplit(referrer)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.removeprefix("www.")
    return None if host == (urlsplit(page_url).hostname or "").removeprefix("www.") else host


def occurred_at(ts: datetime | None, now: datetime, late_hit: timedelta, future_skew: timedelta) -> datetime:
    """When the hit happened: our clock, or the sender's `ts` when it is plausible (a queued beacon)."""
    if ts is None:
        return now
    ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    if ts < now - late_hit or ts > now + future_skew:
        raise InvalidHit("ts", "Timestamp is too far from now.")
    return ts.astimezone(UTC)


COOKIE_PURPOSE = "cookies"


def may_use_cookie(consent: bool, gpc: bool, dnt: bool) -> bool:
    """A visitor-id cookie only when the consent service says the device allowed cookies (what the browser
    claims counts for nothing), and never against an opt-out signal."""
    return consent and not gpc and not dnt


def device_hash(device_id: str) -> str:
    """Device ids are >= 128 random bits: a plain hash is as good as a key and lets no one list them."""
    return hashlib.sha256(device_id.encode()).hexdigest()


def valid_cookie_id(value: str | None) -> bool:
    return value is not None and _COOKIE_ID.fullmatch(value) is not None


def consented_visitor(site_id: str, cookie_id: str) -> str:
    return "c" + hashlib.sha256(f"{site_id}\x00{cookie_id}".encode()).hexdigest()[:32]


def cookieless_visitor(salt: bytes, site_id: str, ip: str, user_agent: str) -> str:
    """Stable for one day: once the day's salt is deleted nobody can recompute or link it."""
    message = f"{site_id}\x00{ip}\x00{user_agent}".encode()
    return "d" + hmac.new(salt, message, hashlib.sha256).hexdigest()[:32]


def salt_day(at: datetime) -> date:
    return at.astimezone(UTC).date()


def oldest_live_salt_day(now: datetime, late_hit: timedelta) -> date:
    """A day's salt is needed until its last late hit can arrive; older salts are deleted."""
    return salt_day(now - late_hit)


def latest_final_day(now: datetime, late_hit: timedelta, settle: timedelta) -> date:
    """Partners see only days that can no longer change: a day's buckets are then fixed for good."""
    return salt_day(now - late_hit - settle) - timedelta(days=1)


@dataclass(frozen=True)
class RollupKey:
    site_id: str
    day: date
    hour: int
    dimension: str
    value: str


def counted_values(event: PageViewed) -> list[tuple[str, str]]:
    """(dimension, value) pairs a hit counts under; bots are counted apart, never as visitors or page views."""
    if event.device_type == "bot":
        return [(BOT, event.browser)]
    return [
        (TOTAL, ""),
        ("page", event.path),
        ("browser", event.browser),
        ("os", event.os),
        ("device_type", event.device_type),
        ("isp", event.isp or "unknown"),
        ("referrer", event.referrer or "(direct)"),
    ]


def tally(events: Iterable[PageViewed]) -> tuple[Counter[RollupKey], set[tuple[str, date, str, str, str]]]:
    """Hits per (site, day, hour, dimension, value), and the distinct visitors of each daily group."""
    hits: Counter[RollupKey] = Counter()
    visitors: set[tuple[str, date, str, str, str]] = set()
    for event in events:
        at = event.occurred_at.astimezone(UTC)
        for dimension, value in counted_values(event):
            hits[RollupKey(event.site_id, at.date(), at.hour, dimension, value)] += 1
            visitors.add((event.site_id, at.date(), dimension, value, event.visitor_hash))
    return hits, visitors


@dataclass(frozen=True)
class Group:
    value: str
    hits: int
    visitors: int
