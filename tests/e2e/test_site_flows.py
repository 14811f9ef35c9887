"""The Site's promises in Chromium: sign-up to My data, consent switches reaching a processor,
the console's policy change with its notice and continued use, cookies, export and erasure."""

import json
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.receiver import ProcessorReceiver
from tests.e2e.conftest import acceptances, screenshot
from tests.e2e.site_steps import (
    DESKTOP_CHROME, PASSWORD, console, consent_row, mailed_link, publish_policy, sign_in, sign_up, switch,
    verify_address,
)


@pytest.fixture
def processor():
    receiver = ProcessorReceiver(secret="processor-secret-" + unique())
    yield receiver
    receiver.close()


async def user_id_of(system, email: str) -> str:
    async with system.client("identity") as identity:
        found = await identity.get("/v1/admin/users", params={"email": email}, headers=system.admin)
        assert found.status_code == 200, found.text
        return found.json()["id"]


async def user_token(system, email: str) -> dict[str, str]:
    async with system.client("identity") as identity:
        login = await identity.post("/v1/sessions", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_sign_up_my_data_and_a_switch_that_reaches_the_processor(system, browser, visitor, processor):
    admin = await console(await browser.new_context(base_url=system.urls["site"]))
    processor_id = unique("proc-")
    await admin.goto("/admin/processors")
    await admin.get_by_label("Id").fill(processor_id)
    await admin.get_by_label("Name").fill("Letter Co")
    await admin.get_by_label("Webhook URL").fill(processor.url)
    await admin.get_by_label("Purposes").fill("newsletter")
    await admin.get_by_label("Signing secret").fill(processor.secret)
    await admin.get_by_role("button", name="Register").click()
    await admin.wait_for_url(re.compile(r"done=registered"))
    async with system.client("consent") as consent:
        async def announced():
            return any(processor_id in p["recipients"] for p in (await consent.get("/v1/purposes")).json())

        await eventually(announced)
    await publish_policy(admin, f"Letter Co sends the newsletter {unique()}",
                         data_use=f"newsletter first_party email\nnewsletter {processor_id} email")

    email = f"{unique('site')}@example.com"
    page = await sign_up(visitor, email)
    assert "Your account is ready" in await page.locator(".done").inner_text()
    welcome = await eventually(lambda: [m for m in system.sink.messages() if "Welcome" in m["Subject"]
                                        and m["To"] == email])
    assert f"{system.urls['site']}/my-data" in welcome[0].get_body(("plain",)).get_content()
    assert "not verified yet" in await page.locator("main").inner_text()
    await verify_address(page, system, email)
    assert "(verified)" in await page.locator("main").inner_text()

    async def newsletter_on():
        await page.goto("/my-data")
        return await consent_row(page, "newsletter", "first_party").locator("td.state").inner_text() == "on"

    await eventually(newsletter_on)
    assert await consent_row(page, "newsletter", processor_id).locator("td.state").inner_text() == "off"
    await screenshot(page, "my-data")
    user_id = await user_id_of(system, email)

    assert await switch(page, "newsletter", processor_id) == "on"
    [shared] = await eventually(lambda: processor.accepted)
    assert shared["event"] == "subject.shared" and shared["subject_id"] == user_id and shared["_signature_valid"]
    assert await switch(page, "newsletter", processor_id) == "off"
    await eventually(lambda: len(processor.accepted) == 2)
    assert processor.accepted[1]["event"] == "subject.revoked" and processor.accepted[1]["subject_id"] == user_id

    assert await switch(page, "newsletter", "first_party") == "off"
    async with system.client("consent") as consent:
        history = (await consent.get(f"/v1/subjects/{user_id}/consents/history", headers=system.admin)).json()
    last = history[-1]["receipt"]
    assert (last["purpose"], last["recipient"], last["state"], last["method"]) == (
        "newsletter", "first_party", "withdrawn", "user")
    async with page.expect_download() as download_info:
        await consent_row(page, "newsletter", "first_party").get_by_role("link", name="receipt").click()
    receipt = json.loads((await (await download_info.value).path()).read_text())
    assert receipt["receipt"]["receipt_id"] == last["receipt_id"] and receipt["signature"]


async def test_a_version_published_in_the_console_is_noticed_and_accepted_once_by_continued_use(
        system, browser, visitor):
    email = f"{unique('cu')}@example.com"
    user_id, _ = await system.register(email)
    page = await sign_in(visitor, email)
    headers = await user_token(system, email)
    async with system.client("policy") as policy:
        before = await eventually(lambda: acceptances(policy, user_id, headers))
    assert [a["how"] for a in before] == ["signup"]

    summary = f"We explain cookies better {unique()}"
    await publish_policy(await console(await browser.new_context(base_url=system.urls["site"])), summary)
    async with system.client("policy") as policy:
        version = (await policy.get("/v1/policies/privacy/current")).json()["version"]

    anonymous = await (await browser.new_context(base_url=system.urls["site"])).new_page()
    await anonymous.goto("/")
    notice = anonymous.locator("section.notice")
    assert summary in await notice.inner_text()
    await screenshot(anonymous, "main-page-notice")

    await page.goto("/")
    assert summary in await page.locator("section.notice").inner_text()
    async with system.client("policy") as policy:
        async def continued():
            found = await acceptances(policy, user_id, headers) or []
            return [a for a in found if a["how"] == "continued_use"]

        [accepted] = await eventually(continued)
        assert accepted["version"] == version
        for path in ("/policy", "/my-data", "/"):
            await page.goto(path)
        assert len(await continued()) == 1, "continued use is recorded once"


async def test_a_version_scheduled_in_the_console_takes_effect_at_its_time(system, browser):
    admin = await console(await browser.new_context(base_url=system.urls["site"]))
    summary = f"Scheduled {unique()}"
    at = (datetime.now(UTC) + timedelta(seconds=6)).strftime("%Y-%m-%dT%H:%M:%S")
    await publish_policy(admin, summary, effective_at=at)
    assert "scheduled" in await admin.locator("tbody tr").first.inner_text()

    async def in_force():
        await admin.goto("/admin/policy")
        return "in force" in await admin.locator("tbody tr").first.inner_text()

    await eventually(in_force, timeout=30)


async def test_cookies_refused_set_nothing_the_site_works_and_telemetry_counts_the_visit(system, browser):
    context = await browser.new_context(base_url=system.urls["site"], user_agent=DESKTOP_CHROME)
    today = datetime.now(UTC).date().isoformat()

    async def policy_views() -> int:
        async with system.client("telemetry") as telemetry:
            stats = (await telemetry.get("/v1/stats", headers=system.admin, params={
                "site_id": "site", "from": today, "to": today, "breakdown": "page"})).json()
        return sum(g["hits"] for g in stats["breakdowns"].get("page", []) if g["value"] == "/policy")

    before = await policy_views()
    page = await context.new_page()
    await page.goto("/")
    banner = page.get_by_role("complementary", name="Cookies on this site")
    await banner.get_by_role("button", name="No cookies").click()
    await page.wait_for_url(re.compile(r"done=cookies_refused"))
    assert "nothing is stored" in await page.locator(".done").inner_text()
    await page.goto("/policy")
    assert await page.locator("article.policy h1").is_visible()
    await page.goto("/my-data")
    await page.wait_for_url(re.compile(r"/signin\?next=/my-data"))  # what needs an account says so
    await eventually(lambda: _more(policy_views, before), timeout=20)
    assert await context.cookies() == [], "no cookie of the Site or of telemetry"
    await context.close()

    private = await browser.new_context(base_url=system.urls["site"], extra_http_headers={"Sec-GPC": "1"})
    page = await private.new_page()
    await page.goto("/cookies")
    assert "Your browser sends GPC" in await page.locator("main").inner_text()
    await private.close()


async def _more(count, before: int) -> bool:
    return await count() > before


async def test_export_and_erase_from_the_page(system, visitor):
    email = f"{unique('ex')}@example.com"
    page = await sign_up(visitor, email, newsletter=False)
    user_id = await user_id_of(system, email)
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Download my data (JSON)").click()
    exported = json.loads((await (await download_info.value).path()).read_text())
    assert email in json.dumps(exported)

    await page.get_by_role("link", name="Erase my account…").click()
    await page.get_by_label("Your password").fill("not my password at all")
    await page.get_by_role("button", name="Erase my account").click()
    assert "not your password" in await page.locator(".error").inner_text()
    await page.get_by_label("Your password").fill(PASSWORD)
    await page.get_by_role("button", name="Erase my account").click()
    await page.wait_for_url(re.compile(r"done=erased"))
    assert await visitor.cookies() == []  # signed out: the session cookie is gone
    async with system.client("identity") as identity:
        async def complete():
            status = await identity.get(f"/v1/erasures/{user_id}", headers=system.admin)
            return status.status_code == 200 and status.json()["complete"]

        await eventually(complete, timeout=30)
        login = await identity.post("/v1/sessions", json={"email": email, "password": PASSWORD})
        assert login.status_code == 401


async def test_forms_from_elsewhere_or_without_their_token_are_refused(system):
    async with httpx.AsyncClient(base_url=system.urls["site"]) as site:
        page = await site.get("/signin")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        form = {"email": "a@example.com", "password": "x" * 12, "csrf": token}
        assert (await site.post("/signin", data={**form, "csrf": "1.forged"})).status_code == 403
        foreign = await site.post("/signin", data=form, headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403
        assert (await site.post("/signin", data=form)).status_code == 400  # a real try, wrong password


async def test_password_reset_by_mail_ends_every_session(system, browser, visitor):
    email = f"{unique('pw')}@example.com"
    first = await sign_up(visitor, email)
    other = await browser.new_context(base_url=system.urls["site"])
    page = await other.new_page()
    await page.goto("/signin")
    await page.get_by_role("link", name="Forgot your password?").click()
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Send me a link").click()
    await page.wait_for_url(re.compile(r"done=reset_requested"))
    assert "If an account uses that address" in await page.locator(".done").inner_text()

    link = await eventually(lambda: mailed_link(system, email, "reset"))
    await page.goto(link)
    new_password = "a brand new passphrase"
    await page.get_by_label("New password").fill(new_password)
    await page.get_by_role("button", name="Set the new password").click()
    await page.wait_for_url(re.compile(r"/signin\?done=password_reset"))
    await page.goto(link)  # single use
    await page.get_by_label("New password").fill("yet another passphrase")
    await page.get_by_role("button", name="Set the new password").click()
    assert await page.locator(".error").is_visible()

    await page.goto("/signin")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    assert "Wrong email or password" in await page.locator(".error").inner_text()
    await sign_in(other, email, new_password)

    async def signed_out():  # the session of the first browser ended with the reset
        await first.goto("/my-data")
        return "/signin" in first.url

    await eventually(signed_out, timeout=30)
    await other.close()


async def test_the_unsubscribe_link_of_the_mail_asks_then_unsubscribes(system, visitor):
    email = f"{unique('un')}@example.com"
    user_id, _ = await system.register(email)
    async with system.client("consent") as consent:
        async def subscribed():
            states = (await consent.get(f"/v1/subjects/{user_id}/consents", headers=system.admin)).json()
            return [s for s in states if s["purpose"] == "newsletter" and s["granted"]]

        await eventually(subscribed)
    mail = await system.newsletter_reaching(email)
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"  # RFC 8058 stays at the mailer
    link = mailed_link(system, email, "unsubscribe")
    assert link and link.startswith(system.urls["site"] + "/unsubscribe?token="), mail.get_body(("plain",)).get_content()

    page = await visitor.new_page()
    await page.goto(link)
    assert "Do you want to stop receiving the newsletter?" in await page.locator("main").inner_text()
    async with system.client("consent") as consent:
        history = (await consent.get(f"/v1/subjects/{user_id}/consents/history", headers=system.admin)).json()
    assert not [h for h in history if h["receipt"]["method"] == "unsubscribe_link"], "opening the link changes nothing"
    await page.get_by_role("button", name="Unsubscribe").click()
    assert "You are unsubscribed" in await page.locator("main").inner_text()
    async with system.client("consent") as consent:
        async def revoked():
            history = (await consent.get(f"/v1/subjects/{user_id}/consents/history", headers=system.admin)).json()
            return [h for h in history if h["receipt"]["method"] == "unsubscribe_link"]

        [receipt] = await eventually(revoked)
        assert receipt["receipt"]["state"] == "withdrawn" and receipt["receipt"]["purpose"] == "newsletter"


async def test_cookies_allowed_are_a_device_consent_and_telemetry_follows_it(system, browser):
    context = await browser.new_context(base_url=system.urls["site"], user_agent=DESKTOP_CHROME)
    page = await context.new_page()
    await page.goto("/policy")
    await page.get_by_role("complementary", name="Cookies on this site").get_by_role(
        "button", name="Allow the analytics cookie").click()
    await page.wait_for_url(re.compile(r"/policy\?done=cookies_allowed"))
    [device] = [c for c in await context.cookies() if c["name"] == "assent_device"]
    assert device["httpOnly"] and device["sameSite"] == "Lax" and len(device["value"]) >= 22
    assert await page.get_by_role("complementary", name="Cookies on this site").count() == 0
    async with system.client("consent") as consent:
        recorded = (await consent.get(f"/v1/devices/{device['value']}/consents")).json()
    assert [(c["purpose"], c["granted"]) for c in recorded["consents"]] == [("cookies", True)]
    telemetry_host = system.urls["telemetry"].split("//")[1].split(":")[0]

    async def visitor_cookie():
        await page.goto("/")
        return [c for c in await context.cookies() if c["name"] == "assent_vid" and c["domain"] == telemetry_host]

    await eventually(visitor_cookie, timeout=30)

    await page.goto("/cookies")
    await page.get_by_role("button", name="Withdraw: remove the cookie").click()
    await page.wait_for_url(re.compile(r"done=cookies_refused"))
    assert not [c for c in await context.cookies() if c["name"] == "assent_device"]
    async with system.client("consent") as consent:
        recorded = (await consent.get(f"/v1/devices/{device['value']}/consents")).json()
    assert [(c["purpose"], c["granted"]) for c in recorded["consents"]] == [("cookies", False)]
    await context.close()
