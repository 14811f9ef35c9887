"""Telemetry's pure rules: user agents, visitor hashes and their rotation, time windows, k-suppression."""

from datetime import UTC, date, datetime, timedelta

import pytest

from assent_shared.events import PageViewed
from assent_telemetry import domain
from telemetry_testkit import (ANDROID_TABLET, CHROME_WINDOWS, GOOGLEBOT, HEADLESS, IPAD, IPHONE,
                               PLAYSTATION)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("user_agent", "expected"), [
    (CHROME_WINDOWS, domain.Agent("Chrome", "Windows", "desktop")),
    (IPHONE, domain.Agent("Mobile Safari", "iOS", "mobile")),
    (IPAD, domain.Agent("Mobile Safari", "iOS", "tablet")),
    (ANDROID_TABLET, domain.Agent("Chrome", "Android", "tablet")),
    (PLAYSTATION, domain.Agent("Safari", "Other", "other")),
])
def test_user_agents_classify_into_browser_os_and_device_type(user_agent, expected):
    assert domain.classify(user_agent) == expected


@pytest.mark.parametrize("user_agent", [GOOGLEBOT, HEADLESS, "curl/8.0.1", "python-requests/2.31", ""])
def test_crawlers_headless_browsers_and_bare_programs_are_bots(user_agent):
    assert domain.classify(user_agent).device_type == "bot"


def test_cookieless_hash_is_stable_within_a_day_and_unlinkable_across_days():
    monday, tuesday = b"m" * 32, b"t" * 32
    first = domain.cookieless_visitor(monday, "demo", "203.0.113.7", CHROME_WINDOWS)
    assert first == domain.cookieless_visitor(monday, "demo", "203.0.113.7", CHROME_WINDOWS)
    assert first != domain.cookieless_visitor(tuesday, "demo", "203.0.113.7", CHROME_WINDOWS)
    assert first != domain.cookieless_visitor(monday, "other", "203.0.113.7", CHROME_WINDOWS)
    assert first != domain.cookieless_visitor(monday, "demo", "203.0.113.8", CHROME_WINDOWS)
    assert "203.0.113.7" not in first
    assert domain.consented_visitor("demo", "a" * 22) != domain.consented_visitor("other", "a" * 22)


def test_a_days_salt_lives_until_its_last_late_hit_and_partners_wait_for_it():
    late = timedelta(hours=1)
    assert domain.oldest_live_salt_day(datetime(2026, 3, 10, 0, 30, tzinfo=UTC), late) == date(2026, 3, 9)
    assert domain.oldest_live_salt_day(datetime(2026, 3, 10, 1, 0, tzinfo=UTC), late) == date(2026, 3, 10)
    settle = timedelta(hours=1)
    assert domain.latest_final_day(datetime(2026, 3, 10, 1, 59, tzinfo=UTC), late, settle) == date(2026, 3, 8)
    assert domain.latest_final_day(datetime(2026, 3, 10, 2, 0, tzinfo=UTC), late, settle) == date(2026, 3, 9)


def test_cookie_only_with_consent_and_never_against_gpc_or_dnt():
    assert domain.may_use_cookie(True, gpc=False, dnt=False)
    assert not domain.may_use_cookie(False, gpc=False, dnt=False)
    assert not domain.may_use_cookie(True, gpc=True, dnt=False)
    assert not domain.may_use_cookie(True, gpc=False, dnt=True)
    assert domain.valid_cookie_id("abcdefghijklmnopqrstuv") and not domain.valid_cookie_id("x; Path=/")


def test_hit_time_is_ours_unless_the_senders_is_plausible():
    late, skew = timedelta(hours=1), timedelta(minutes=5)
    assert domain.occurred_at(None, NOW, late, skew) == NOW
    queued = NOW - timedelta(minutes=20)
    assert domain.occurred_at(queued.replace(tzinfo=None), NOW, late, skew) == queued
    for absurd in (datetime(1999, 1, 1, tzinfo=UTC), NOW + timedelta(days=1), NOW - timedelta(hours=2)):
        with pytest.raises(domain.InvalidHit):
            domain.occurred_at(absurd, NOW, late, skew)


def test_only_the_path_and_the_referring_host_are_kept():
    assert domain.page_path("https://shop.example/cart/reset?token=s3cret&email=a@b.c#x") == "/cart/reset"
    assert domain.page_path("https://shop.example") == "/"
    for bad in ("javascript:alert(1)", "/relative", "ftp://x/y"):
        with pytest.raises(domain.InvalidHit):
            domain.page_path(bad)
    assert domain.referrer_host("https://www.search.example/q?s=me", "https://shop.example/") == "search.example"
    assert domain.referrer_host("https://shop.example/other", "https://www.shop.example/") is None
    assert domain.referrer_host("android-app://x", "https://shop.example/") is None


def _view(path: str, visitor: str, device_type: str = "desktop", hour: int = 12) -> PageViewed:
    return PageViewed(site_id="demo", path=path, browser="Chrome", os="Windows", device_type=device_type, isp=None,
                      visitor_hash=visitor, occurred_at=NOW.replace(hour=hour))


def test_tally_counts_hits_per_hour_visitors_per_day_and_bots_apart():
    hits, visitors = domain.tally([
        _view("/a", "v1"), _view("/a", "v1", hour=13), _view("/b", "v2"), _view("/a", "bot1", device_type="bot"),
    ])
    day = NOW.date()
    assert hits[domain.RollupKey("demo", day, 12, "page", "/a")] == 1
    assert hits[domain.RollupKey("demo", day, 13, "page", "/a")] == 1
    assert hits[domain.RollupKey("demo", day, 12, domain.TOTAL, "")] == 2
    assert hits[domain.RollupKey("demo", day, 12, domain.BOT, "Chrome")] == 1
    assert hits[domain.RollupKey("demo", day, 12, "isp", "unknown")] == 2
    assert {v for s, d, dim, val, v in visitors if dim == domain.TOTAL} == {"v1", "v2"}
    assert not [v for v in visitors if v[4] == "bot1" and v[2] != domain.BOT]
