"""What a person does on the Site, as Playwright steps shared by the browser tests."""

import re

from playwright.async_api import BrowserContext, Page

from tests.e2e.conftest import CONSOLE_PASSWORD

PASSWORD = "correct horse battery"
# Headless Chromium names itself HeadlessChrome, which telemetry rightly counts as a bot.
DESKTOP_CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/156.0.0.0 Safari/537.36")


async def sign_up(context: BrowserContext, email: str, newsletter: bool = True) -> Page:
    page = await context.new_page()
    await page.goto("/signup")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    box = page.get_by_label("Send me the newsletter")
    assert await box.is_checked(), "signing up subscribes, as the policy says"
    if not newsletter:
        await box.uncheck()
    await page.get_by_role("button", name="Sign up").click()
    await page.wait_for_url(re.compile(r"/my-data"))
    return page


async def sign_in(context: BrowserContext, email: str, password: str = PASSWORD) -> Page:
    page = await context.new_page()
    await page.goto("/signin")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/my-data"))
    return page


async def console(context: BrowserContext) -> Page:
    page = await context.new_page()
    await page.goto("/admin")
    await page.wait_for_url(re.compile(r"/admin/signin"))
    await page.get_by_label("Console password").fill(CONSOLE_PASSWORD)
    await page.get_by_role("button", name="Sign in to the console").click()
    await page.wait_for_url(re.compile(r"/admin$"))
    return page


async def publish_policy(page: Page, summary: str, data_use: str | None = None, effective_at: str = "") -> None:
    """Write a new version in the console, check its preview and diff, publish it."""
    await page.goto("/admin/policy")
    await page.get_by_label("What changed").fill(summary)
    text = page.get_by_label("Text (Markdown)")
    await text.fill(await text.input_value() + f"\n\n## {summary}\n\nA new paragraph.\n")
    if data_use is not None:
        await page.get_by_label("Data-use map").fill(data_use)
    if effective_at:
        await page.get_by_label("Takes effect at").fill(effective_at)
    await page.get_by_role("button", name="Preview and diff").click()
    preview = page.locator("section.preview")
    assert summary in await preview.locator("article.policy h2").last.inner_text()
    added = await preview.locator("pre.diff .add").all_inner_texts()
    assert any(f"## {summary}" in line for line in added), added
    await page.get_by_role("button", name="Publish this version").click()
    await page.wait_for_url(re.compile(r"/admin/policy\?done=published"))


def consent_row(page: Page, purpose: str, recipient: str):
    return page.locator(f'tr[data-purpose="{purpose}"][data-recipient="{recipient}"]')


async def switch(page: Page, purpose: str, recipient: str) -> str:
    """Press the row's switch; the state the page shows after."""
    row = consent_row(page, purpose, recipient)
    await row.get_by_role("button").click()
    await page.wait_for_url(re.compile(r"done=consent_saved"))
    return await consent_row(page, purpose, recipient).locator("td.state").inner_text()


def mailed_link(system, email: str, page: str) -> str | None:
    """The newest link to the Site's `/<page>?token=` in the mail sink for `email`, as the mail shows it."""
    pattern = re.compile(rf"(https?://\S+/{page}\?token=[A-Za-z0-9_.-]+)")
    links = [link for m in system.sink.messages() if m["To"] == email for link in pattern.findall(m.get_body(("plain",)).get_content())]
    return links[-1] if links else None


async def verify_address(page: Page, system, email: str) -> None:
    """Open the verification mail's link and confirm, as the person would."""
    from assent_devtools.testing.helpers import eventually

    link = await eventually(lambda: mailed_link(system, email, "verify"))
    assert link.startswith(system.urls["site"] + "/verify?token="), link
    await page.goto(link)
    await page.get_by_role("button", name="Verify my address").click()
    await page.wait_for_url(re.compile(r"done=verified"))


def as_client(number: int | None = None) -> dict[str, str]:
    """Headers of a browser that comes from an address of its own (documentation range, RFC 5737):
    the Site passes it on, so the services' per-client limits count this test alone."""
    import random

    return {"X-Forwarded-For": f"198.51.{random.randint(0, 255)}.{number or random.randint(1, 254)}"}
