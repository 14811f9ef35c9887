"""The Site in Chromium: the main page, the policy, its versions and diffs, as a visitor sees them."""

import re

import httpx

from assent_devtools.testing.helpers import unique
from tests.e2e.conftest import screenshot
from tests.e2e.site_steps import PASSWORD, as_client


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


async def test_with_cookies_blocked_the_site_works_and_sign_in_says_it_needs_its_cookie(system, browser):
    email = f"{unique('nocookie')}@example.com"
    await system.register(email, verify=False)
    context = await browser.new_context(base_url=system.urls["site"], extra_http_headers=as_client())

    async def without_cookies(route):  # a browser that blocks every cookie
        response = await route.fetch(max_redirects=0)
        await context.clear_cookies()  # route.fetch keeps the answer's cookies in the context
        headers = {k: v for k, v in response.headers.items() if k.lower() != "set-cookie"}
        await route.fulfill(response=response, headers=headers)

    await context.route(f"{system.urls['site']}/**", without_cookies)
    page = await context.new_page()
    await page.goto("/policy")
    assert await page.locator("article.policy h1").is_visible()
    await page.goto("/contact")
    assert await page.get_by_label("Your message").is_visible()
    await page.goto("/signin")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/signin\?next=/my-data"))
    assert "did not keep the sign-in cookie" in await page.locator(".error").inner_text()
    assert await context.cookies() == []
    await context.close()
