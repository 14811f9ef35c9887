"""Pure parts of the Site: sealed cookies, CSRF tokens, the consent table, Markdown, settings."""

import pytest

from assent_site.rendering import diff_lines, markdown
from assent_site.routes.admin import _parse_data_use
from assent_site.routes.mydata import consent_rows
from assent_site.sealing import CsrfTokens, Sealer
from assent_site.settings import SiteSettings
from assent_site.web import local_path

SECRET = "unit-test-secret-" + "s" * 32


def test_a_sealed_cookie_opens_only_with_its_secret_and_unaltered():
    # Values long enough that random base64 cannot contain them by chance.
    payload = {"uid": "user-visible-id-0001", "access": "bearer-access-token"}
    sealed = Sealer(SECRET).seal(payload)
    assert "user-visible-id-0001" not in sealed and "bearer-access-token" not in sealed
    assert Sealer(SECRET).open(sealed, 60) == payload
    assert Sealer("another-secret-" + "x" * 32).open(sealed, 60) is None
    assert Sealer(SECRET).open(sealed[:-4] + "AAAA", 60) is None
    assert Sealer(SECRET).open("", 60) is None


def test_a_csrf_token_belongs_to_one_session_and_expires():
    tokens = CsrfTokens(SECRET, max_age_seconds=100)
    token = tokens.issue("user:abc", now=1000)
    assert tokens.valid(token, "user:abc", now=1050)
    assert not tokens.valid(token, "user:other", now=1050)
    assert not tokens.valid(token, "user:abc", now=1101)
    assert not tokens.valid(token.replace(token[-3:], "xyz"), "user:abc", now=1050)
    assert not tokens.valid("", "anonymous") and not tokens.valid("abc.def", "anonymous")


def test_consent_rows_follow_the_data_use_map_then_add_what_else_the_person_holds():
    data_use = [{"purpose": "newsletter", "processor": "first_party", "data": ["email"]},
                {"purpose": "surveys", "processor": "acme", "data": ["email", "name"]}]
    states = [{"purpose": "newsletter", "recipient": "first_party", "granted": True, "event_id": "e1"},
              {"purpose": "analytics_cookies", "recipient": "first_party", "granted": False, "event_id": "e2"}]
    rows = consent_rows(data_use, states)
    assert [(r["purpose"], r["recipient"], r["declared"]) for r in rows] == [
        ("newsletter", "first_party", True), ("surveys", "acme", True), ("analytics_cookies", "first_party", False)]
    assert rows[0]["state"]["granted"] is True and rows[1]["state"] is None


def test_the_data_use_map_as_typed_in_the_console():
    assert _parse_data_use("newsletter first_party email\n\nsurveys acme email,name\nads acme") == [
        {"purpose": "newsletter", "processor": "first_party", "data": ["email"]},
        {"purpose": "surveys", "processor": "acme", "data": ["email", "name"]},
        {"purpose": "ads", "processor": "acme", "data": []}]
    with pytest.raises(ValueError, match="Line 1"):
        _parse_data_use("Newsletter!")


def test_policy_markdown_never_passes_raw_html():
    html = markdown("# Title\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1))")
    assert "<h1>Title</h1>" in html
    assert "<script>" not in html and 'href="javascript' not in html


def test_diff_lines_name_each_kind():
    assert diff_lines("--- a\n+++ b\n@@ -1 +1 @@\n-old\n+new\n same") == [
        ("hunk", "@@ -1 +1 @@"), ("remove", "-old"), ("add", "+new"), ("same", " same")]


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/\\evil", "", None, "relative"])
def test_next_never_leaves_the_site(target):
    assert local_path(target) == "/"


def test_production_refuses_the_development_secret_and_plain_http(monkeypatch):
    monkeypatch.setenv("ASSENT_ENV", "production")
    with pytest.raises(ValueError, match="SESSION_SECRET"):
        SiteSettings(site_url="https://www.example")
    with pytest.raises(ValueError, match="https"):
        SiteSettings(session_secret="p" * 40, site_url="http://www.example")
    ok = SiteSettings(session_secret="p" * 40, site_url="https://www.example/")
    assert ok.secure_cookies and ok.origin == "https://www.example"


def test_charts_are_svg_with_one_series_per_top_value():
    from datetime import date

    from assent_site import charts

    days = [charts.Day(date(2026, 12, 1), {"pageviews": 3, "visitors": 2, "bots": 1,
                                           "breakdowns": {"browser": [{"value": "Chrome", "hits": 3, "visitors": 2}]}}),
            charts.Day(date(2026, 12, 2), {})]
    visits = charts.render("visits", days)
    assert visits.startswith("<svg") and "Page views" in visits and "01 Dec" in visits
    browsers = charts.render("browser", days)
    assert "Chrome" in browsers and "<svg" in browsers


async def test_every_page_follows_the_next_cursor_to_the_end():
    import httpx

    from assent_site.clients.base import Upstream

    def answer(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        if cursor is None:
            return httpx.Response(200, json=[1, 2], headers={"X-Next-Cursor": "c1"})
        return httpx.Response(200, json=[3] if cursor == "c1" else [])

    async with httpx.AsyncClient(base_url="http://upstream", transport=httpx.MockTransport(answer)) as http:
        assert await Upstream(http, None).every_page("/v1/items") == [1, 2, 3]


def test_feedback_periods_are_days_weeks_from_monday_or_months():
    from datetime import date

    from assent_site.routes.inbox import periods

    assert periods(date(2026, 12, 2), 3, "day") == (date(2026, 11, 30), date(2026, 12, 2),
                                                    [date(2026, 11, 30), date(2026, 12, 1), date(2026, 12, 2)])
    first, _, weeks = periods(date(2026, 12, 2), 10, "week")
    assert first == date(2026, 11, 23) and weeks == [date(2026, 11, 23), date(2026, 11, 30)]
    first, _, months = periods(date(2026, 3, 1), 61, "month")
    assert months == [date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]


def test_the_site_takes_a_forwarded_address_only_when_told_and_refuses_an_open_proxy_in_production():
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        SiteSettings(environment="production", session_secret="s" * 40, site_url="https://site.example",
                     trust_forwarded_for=True)
    assert SiteSettings(environment="production", session_secret="s" * 40, site_url="https://site.example",
                        trust_forwarded_for=True, trusted_proxies=["10.0.0.0/8"]).trusted_proxies == ["10.0.0.0/8"]


def test_the_feedback_chart_counts_whole_messages_per_topic():
    from datetime import date

    from assent_site.charts import topic_counts

    svg = topic_counts([date(2026, 12, 1), date(2026, 12, 2)],
                       [{"period": "2026-12-02", "topic": "feedback", "count": 3},
                        {"period": "2026-12-02", "topic": "question", "count": 1}],
                       {"question": "A question", "feedback": "Feedback"})
    assert "Feedback" in svg and "A question" in svg and "02 Dec" in svg
    assert ">4<" in svg and ">0.5<" not in svg, "the axis reaches the stacked total in whole steps"
