"""The console in Chromium: a processor's deliveries, the erasure requests, the mail previews, and a
sign-in that locks a guessing client out; and GPC honoured on a signed-in person's account."""

import re

from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.receiver import ProcessorReceiver
from tests.e2e.conftest import CONSOLE_PASSWORD, screenshot
from tests.e2e.site_steps import PASSWORD, as_client, console, consent_row, sign_in


async def register_processor(system, receiver: ProcessorReceiver, purpose: str = "newsletter") -> str:
    processor_id = unique("proc-")
    async with system.client("mailer") as mailer:
        registered = await mailer.put(f"/v1/processors/{processor_id}", headers=system.admin, json={
            "name": "Letter Co", "endpoint_url": receiver.url, "purposes": [purpose],
            "signing_secret": receiver.secret})
        assert registered.status_code == 200, registered.text
    async with system.client("consent") as consent:
        async def announced():
            return any(processor_id in p["recipients"] for p in (await consent.get("/v1/purposes")).json())

        await eventually(announced)
    return processor_id


async def grant(system, user_id: str, headers: dict, purpose: str, recipient: str) -> None:
    async with system.client("consent") as consent:
        granted = await consent.put(f"/v1/subjects/{user_id}/consents/{purpose}/{recipient}", headers=headers,
                                    json={"granted": True})
        assert granted.status_code == 200 and granted.json()["granted"], granted.text


async def test_the_processors_page_lists_each_processors_deliveries(system, browser):
    receiver = ProcessorReceiver(secret="processor-secret-" + unique())
    try:
        processor_id = await register_processor(system, receiver)
        user_id, headers = await system.register(f"{unique('pd')}@example.com")
        await grant(system, user_id, headers, "newsletter", processor_id)
        await eventually(lambda: receiver.accepted, timeout=30)
    finally:
        receiver.close()
    admin = await console(await browser.new_context(base_url=system.urls["site"]))
    await admin.goto("/admin/processors")
    row = admin.locator(f'tr[data-processor="{processor_id}"]')
    assert receiver.url in await row.inner_text()
    await row.get_by_role("link", name=processor_id).click()
    await admin.wait_for_url(re.compile(rf"/admin/processors/{processor_id}$"))

    async def delivered():
        await admin.reload()
        return "sent" in await admin.locator("tbody").inner_text()

    await eventually(delivered, timeout=30)
    assert "subject.shared" in await admin.locator("tbody").inner_text()
    await screenshot(admin, "console-processor")


async def test_the_erasures_page_lists_every_request_and_its_completion(system, browser):
    user_id, headers = await system.register(f"{unique('er')}@example.com", verify=False)
    async with system.client("identity") as identity:
        assert (await identity.delete("/v1/users/me", headers=headers)).status_code == 202
    admin = await console(await browser.new_context(base_url=system.urls["site"]))

    async def complete():
        await admin.goto("/admin/erasures")
        return await admin.locator(f'tr[data-user="{user_id}"] td.status').inner_text() == "complete"

    await eventually(complete, timeout=60)
    assert await admin.locator("tbody tr").first.get_attribute("data-user") == user_id, "newest first"
    await screenshot(admin, "console-erasures")
    await admin.locator(f'tr[data-user="{user_id}"]').get_by_role("link").click()
    assert "every service confirmed" in await admin.locator("main").inner_text()


async def test_every_mail_is_previewed_in_each_language(system, browser):
    admin = await console(await browser.new_context(base_url=system.urls["site"]))
    await admin.goto("/admin/templates")
    mails = await admin.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.mail)")
    assert {"welcome", "verification", "reset", "newsletter", "policy_change", "order_update",
            "inquiry_reply"} <= set(mails)
    await admin.locator('tr[data-mail="order_update"]').get_by_role("link", name="de").click()
    await admin.wait_for_url(re.compile(r"/admin/templates/order_update\?locale=de"))
    assert await admin.locator("dd.subject").inner_text()
    assert await admin.locator("pre.mail-text").inner_text()
    frame = admin.frame_locator("iframe.preview-frame")
    assert await frame.locator("body").inner_text()
    await screenshot(admin, "console-mail-preview")


async def test_console_sign_in_locks_a_guessing_client_out(system, browser):
    guesser = await browser.new_context(base_url=system.urls["site"], extra_http_headers=as_client())
    page = await guesser.new_page()
    await page.goto("/admin/signin")
    for _ in range(5):
        await page.get_by_label("Console password").fill("not the password")
        await page.get_by_role("button", name="Sign in to the console").click()
        assert "Wrong password" in await page.locator(".error").inner_text()
    await page.get_by_label("Console password").fill(CONSOLE_PASSWORD)
    await page.get_by_role("button", name="Sign in to the console").click()
    assert "Too many failed sign-ins" in await page.locator(".error").inner_text()
    await page.goto("/admin")
    assert "/admin/signin" in page.url, "the right password did not get in while locked out"
    await guesser.close()
    # Another client is not locked out, and its success clears the account's failures.
    await console(await browser.new_context(base_url=system.urls["site"], extra_http_headers=as_client()))


async def test_a_signed_in_browser_sending_gpc_withdraws_third_party_grants_once(system, browser):
    receiver = ProcessorReceiver(secret="processor-secret-" + unique())
    try:
        processor_id = await register_processor(system, receiver)
        email = f"{unique('gpc')}@example.com"
        user_id, headers = await system.register(email)
        await grant(system, user_id, headers, "newsletter", processor_id)
        context = await browser.new_context(base_url=system.urls["site"],
                                            extra_http_headers={"Sec-GPC": "1", **as_client()})
        page = await sign_in(context, email, PASSWORD)
        applied = page.locator("#gpc-applied")
        assert processor_id in await applied.inner_text()
        assert await consent_row(page, "newsletter", processor_id).locator("td.state").inner_text() == "off"
        await page.goto("/my-data")
        assert await page.locator("#gpc-applied").count() == 0, "shown once"
        async with system.client("consent") as consent:
            history = (await consent.get(f"/v1/subjects/{user_id}/consents/history", headers=system.admin)).json()
        revoked = [h["receipt"] for h in history if h["receipt"]["recipient"] == processor_id
                   and h["receipt"]["state"] == "withdrawn"]
        assert len(revoked) == 1 and revoked[0]["method"] == "gpc", revoked
        [told] = await eventually(lambda: [a for a in receiver.accepted if a["event"] == "subject.revoked"],
                                  timeout=30)
        assert told["subject_id"] == user_id
        await context.close()
    finally:
        receiver.close()
