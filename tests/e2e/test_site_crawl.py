"""Every link of the Site, followed as an anonymous visitor, a signed-in user and the console's admin: no 5xx."""

import re
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import httpx

from assent_devtools.testing.helpers import eventually, unique
from tests.e2e.conftest import CONSOLE_PASSWORD, screenshot
from tests.e2e.site_steps import DESKTOP_CHROME, console

_LINK = re.compile(r'(?:href|src)="([^"#]+)')
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_SKIP = ("/signout", "/admin/signout")
_LIMIT = 300


async def crawl(site: httpx.AsyncClient, start: list[str]) -> dict[str, int]:
    """Breadth-first over same-origin links; the status of each path seen."""
    seen: dict[str, int] = {}
    queue = list(start)
    origin = str(site.base_url).rstrip("/")
    while queue and len(seen) < _LIMIT:
        path = queue.pop(0)
        if path in seen:
            continue
        response = await site.get(path)
        seen[path] = response.status_code
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        for link in _LINK.findall(response.text):
            absolute = urljoin(origin + path, link.replace("&amp;", "&"))
            if not absolute.startswith(origin + "/"):
                continue
            parts = urlsplit(absolute)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if target not in seen and not target.startswith(_SKIP):
                queue.append(target)
    return seen


async def sign_in(site: httpx.AsyncClient, path: str, form: dict[str, str]) -> None:
    page = await site.get(path)
    response = await site.post(path, data={**form, "csrf": _CSRF.search(page.text).group(1)})
    assert response.status_code == 303, response.text


START = ["/", "/policy", "/policy/versions/1", "/policy/diff?from=1&to=1", "/signup", "/signin", "/reset",
         "/reset?token=not-a-token", "/verify?token=not-a-token", "/unsubscribe?token=x", "/cookies",
         "/my-data", "/my-data/erase", "/my-data/export", "/no-such-page", "/policy/versions/999999",
         "/policy/diff?from=a&to=2", "/admin", "/admin/policy", "/admin/telemetry", "/admin/subjects?q=nobody",
         "/admin/erasures?user_id=00000000-0000-0000-0000-000000000000", "/admin/telemetry/visits.svg",
         "/static/site.css", "/contact", "/contact/mine",
         "/contact/reply?inquiry=00000000-0000-0000-0000-000000000000&token=" + "x" * 24,
         "/admin/inquiries", "/admin/inquiries?status=open&topic=feedback", "/admin/feedback?bucket=week",
         "/admin/feedback?bucket=month&days=366", "/admin/templates", "/admin/templates/welcome?locale=xx",
         "/admin/processors", "/admin/processors/no-such-processor", "/admin/erasures"]


async def test_no_page_answers_5xx_to_anyone(system, browser):
    email = f"{unique('crawl')}@example.com"
    await system.register(email)
    async with httpx.AsyncClient(base_url=system.urls["site"], timeout=30) as anonymous:
        seen = await crawl(anonymous, START)
    async with httpx.AsyncClient(base_url=system.urls["site"], timeout=30) as user:
        await sign_in(user, "/signin", {"email": email, "password": "correct horse battery", "next": "/my-data"})
        seen_signed_in = await crawl(user, START)
    async with httpx.AsyncClient(base_url=system.urls["site"], timeout=30) as admin:
        await sign_in(admin, "/admin/signin", {"password": CONSOLE_PASSWORD, "next": "/admin"})
        seen_admin = await crawl(admin, START + [f"/admin/subjects?q={email}"])
    for who, statuses in (("anonymous", seen), ("signed in", seen_signed_in), ("admin", seen_admin)):
        errors = {path: status for path, status in statuses.items() if status >= 500}
        assert not errors, f"{who}: {errors}"
        assert len(statuses) >= len(START), who
    assert seen["/my-data"] == 303 and seen_signed_in["/my-data"] == 200
    assert seen["/admin"] == 303 and seen_admin["/admin"] == 200 and seen_admin["/admin/telemetry/browser.svg?days=14"] == 200
    assert seen["/no-such-page"] == 404 and seen["/policy/versions/999999"] == 404
    assert seen["/contact"] == 200 and seen_signed_in["/contact/mine"] == 200 and seen["/contact/mine"] == 303
    for path in ("/admin/inquiries", "/admin/feedback?bucket=week", "/admin/templates", "/admin/processors",
                 "/admin/erasures", "/admin/templates/welcome/preview.html?locale=en"):
        assert seen_admin[path] == 200, (path, seen_admin[path])
    assert seen_admin["/admin/templates/welcome?locale=xx"] == 404

    # A few visits in a desktop browser, so the charts show what people did, not only bots.
    reader = await browser.new_context(base_url=system.urls["site"], user_agent=DESKTOP_CHROME)
    before = await pageviews(system)
    for path in ("/", "/policy", "/cookies", "/signup", "/policy"):
        await (await reader.new_page()).goto(path)
    await eventually(lambda: _more(system, before + 5), timeout=30)
    await reader.close()
    page = await console(await browser.new_context(base_url=system.urls["site"]))
    await page.goto("/admin/telemetry?days=7")
    charts = page.locator(".charts img")
    assert await charts.count() == 6
    for index in range(6):
        await charts.nth(index).scroll_into_view_if_needed()
        assert await charts.nth(index).evaluate("img => img.complete && img.naturalWidth > 0")
    await screenshot(page, "console-telemetry")


async def pageviews(system) -> int:
    today = datetime.now(UTC).date().isoformat()
    async with system.client("telemetry") as telemetry:
        stats = await telemetry.get("/v1/stats", headers=system.admin,
                                    params={"site_id": "site", "from": today, "to": today})
    return stats.json()["pageviews"]


async def _more(system, at_least: int) -> bool:
    return await pageviews(system) >= at_least
