"""The Site in Chromium: the main page, the policy, its versions and diffs, as a visitor sees them."""

import httpx

from tests.e2e.conftest import screenshot


async def test_main_page_links_the_policy_in_force(system, visitor):
    page = await visitor.new_page()
    response = await page.goto("/")
    assert response.status == 200
    assert await page.locator("h1").inner_text() == "Welcome to the Assent demo site"
    await page.get_by_role("link", name="Privacy policy").first.click()
    await page.wait_for_url("**/policy")
    assert "Privacy policy" in await page.locator("article.policy h1").inner_text()
    assert "last updated" in await page.locator("p.meta").inner_text()
    await page.goto("/")
    await screenshot(page, "main-page")


async def test_every_answer_carries_a_content_security_policy_and_no_cookie(system):
    async with httpx.AsyncClient(base_url=system.urls["site"]) as site:
        response = await site.get("/")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert system.urls["telemetry"] in csp  # the one-tag script's origin, and nothing else foreign
    assert "set-cookie" not in response.headers
    assert f'src="{system.urls["telemetry"]}/v1/script.js"' in response.text


async def test_the_site_answers_health_and_metrics(system):
    async with httpx.AsyncClient(base_url=system.urls["site"]) as site:
        assert (await site.get("/health/live")).json() == {"status": "ok"}
        assert (await site.get("/health/ready")).json() == {"status": "ready"}
        assert "http_requests_total" in (await site.get("/metrics")).text
