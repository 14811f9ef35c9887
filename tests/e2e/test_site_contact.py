"""Contact us in Chromium: the form, anonymous or signed in; the console's inbox, reply and close; the
reply mail's link to the thread, answered back; feedback counts with no personal data."""

import re

from assent_devtools.testing.helpers import eventually, unique
from tests.e2e.conftest import screenshot
from tests.e2e.site_steps import as_client, console, sign_up

_REPLY_LINK = re.compile(r"(https?://\S+/contact/reply\?inquiry=[0-9a-f-]+&token=[A-Za-z0-9_-]+)")


def reply_mails(system, email: str) -> list:
    return [m for m in system.sink.messages() if m["To"] == email and "Re: your inquiry" in m["Subject"]]


async def send(page, topic: str, message: str, email: str | None = None, want_reply: bool = False) -> str:
    """Fill the contact form and send it; the reference the page shows."""
    await page.goto("/contact")
    await page.get_by_label(topic, exact=True).check()
    await page.get_by_label("Your message").fill(message)
    if email is not None:
        await page.get_by_label("Your email address").fill(email)
    if want_reply:
        await page.get_by_label("I want a reply").check()
    await page.get_by_role("button", name="Send").click()
    await page.wait_for_selector("strong.reference")
    assert "we have your message" in await page.locator("h1").inner_text()
    return await page.locator("strong.reference").inner_text()


async def open_in_inbox(admin, reference: str, topic: str) -> None:
    await admin.goto("/admin/inquiries")
    await admin.get_by_label("Topic").select_option(topic)
    await admin.get_by_label("Status").select_option("open")
    await admin.get_by_role("button", name="Filter").click()
    await admin.wait_for_url(re.compile(rf"topic={topic}"))
    await admin.locator(f'tr[data-reference="{reference}"]').get_by_role("link").click()
    await admin.wait_for_url(re.compile(r"/admin/inquiries/[0-9a-f-]+$"))


async def reply(admin, body: str) -> None:
    await admin.get_by_label("Your reply").fill(body)
    await admin.get_by_role("button", name="Send the reply").click()
    await admin.wait_for_url(re.compile(r"done=replied"))


async def test_an_anonymous_question_with_an_address_is_answered_by_mail_and_the_thread_goes_on(system, browser):
    visitor = await browser.new_context(base_url=system.urls["site"], extra_http_headers=as_client())
    page = await visitor.new_page()
    email, question = f"{unique('ask')}@example.com", f"Do you sell my data? {unique()}"
    reference = await send(page, "A question", question, email=email)
    assert "We will answer by mail" in await page.locator("main").inner_text()

    admin = await console(await browser.new_context(base_url=system.urls["site"]))
    await open_in_inbox(admin, reference, "question")
    main = await admin.locator("main").inner_text()
    assert question in main and email in main
    await screenshot(admin, "console-inquiry")
    await reply(admin, "No. We never sell, trade or rent it.")
    assert await admin.locator("dd.status").inner_text() == "answered"

    [mail] = await eventually(lambda: reply_mails(system, email), timeout=30)
    assert reference in mail["Subject"] and mail["In-Reply-To"].startswith("<inquiry-")
    [link] = _REPLY_LINK.findall(mail.get_body(("plain",)).get_content())
    assert link.startswith(system.urls["site"] + "/contact/reply?")

    reader = await (await browser.new_context(base_url=system.urls["site"], extra_http_headers=as_client())
                    ).new_page()
    await reader.goto(link)
    thread = reader.locator("ol.thread")
    assert question in await thread.inner_text() and "We never sell" in await thread.inner_text()
    await reader.get_by_label("Your answer").fill("And my address, what for?")
    await reader.get_by_role("button", name="Send the answer").click()
    await reader.wait_for_url(re.compile(r"done=answer_sent"))
    assert "And my address, what for?" in await reader.locator("ol.thread").inner_text()
    await screenshot(reader, "contact-thread")

    await admin.reload()
    assert "And my address, what for?" in await admin.locator("ol.thread").inner_text()
    await reply(admin, "Only to answer you.")
    later = await eventually(lambda: [m for m in reply_mails(system, email) if m["Message-ID"] != mail["Message-ID"]],
                             timeout=30)
    assert mail["Message-ID"] in later[0]["References"], "the second reply is in the same thread"
    await admin.get_by_role("button", name="Close the inquiry").click()
    await admin.wait_for_url(re.compile(r"done=closed"))
    assert await admin.locator("dd.status").inner_text() == "closed"
    await reader.goto(link)
    assert "This conversation is closed" in await reader.locator("main").inner_text()
    await visitor.close()


async def test_a_signed_in_person_is_answered_by_mail_only_when_they_ask_for_a_reply(system, browser):
    visitor = await browser.new_context(base_url=system.urls["site"], extra_http_headers=as_client())
    email = f"{unique('me')}@example.com"
    page = await sign_up(visitor, email, newsletter=False)
    await page.goto("/contact")
    assert await page.get_by_label("Your email address").count() == 0, "a signed-in person types no address"
    quiet = await send(page, "A support request", f"The page is slow {unique()}")
    assert "our answer will be under" in await page.locator("main").inner_text()
    wanted = await send(page, "A question about privacy or my data", f"Who sees my data? {unique()}",
                        want_reply=True)

    admin = await console(await browser.new_context(base_url=system.urls["site"]))
    await open_in_inbox(admin, quiet, "support_request")
    facts = await admin.locator("main dl").inner_text()
    assert "a signed-in user" in facts and "no: the person reads the answer on the site" in facts
    assert email not in await admin.locator("main").inner_text()
    await reply(admin, "We made it faster.")
    await open_in_inbox(admin, wanted, "privacy_question")
    assert "Reply by mail\nyes" in await admin.locator("main dl").inner_text()
    await reply(admin, "Only you and us.")

    [mail] = await eventually(lambda: reply_mails(system, email), timeout=30)
    assert wanted in mail["Subject"], "only the inquiry that asked for a reply is mailed"
    await page.goto("/contact/mine")
    await page.get_by_role("link", name=quiet).click()
    assert "We made it faster." in await page.locator("ol.thread").inner_text()
    await page.get_by_label("Your answer").fill("Thank you!")
    await page.get_by_role("button", name="Send the answer").click()
    await page.wait_for_url(re.compile(r"done=answer_sent"))
    assert "Thank you!" in await page.locator("ol.thread").inner_text()
    assert not [m for m in reply_mails(system, email) if quiet in m["Subject"]]
    await visitor.close()


async def test_feedback_counts_show_numbers_and_no_person(system, browser):
    visitor = await browser.new_context(base_url=system.urls["site"], extra_http_headers=as_client())
    page = await visitor.new_page()
    secret = f"I love the cookie banner {unique()}"
    email = f"{unique('fb')}@example.com"
    admin = await console(await browser.new_context(base_url=system.urls["site"]))

    async def feedback_count() -> int:
        await admin.goto("/admin/feedback?days=7&bucket=day")
        return int(await admin.locator('tr[data-topic="feedback"] td.count').inner_text())

    before = await feedback_count()
    await send(page, "Feedback", secret, email=email)
    assert await eventually(lambda: _grew(feedback_count, before))
    main = await admin.locator("main").inner_text()
    assert secret not in main and email not in main
    chart = admin.locator("figure.charts img")
    assert await chart.evaluate("img => img.complete && img.naturalWidth > 0")
    await screenshot(admin, "console-feedback")
    await visitor.close()


async def _grew(count, before: int) -> bool:
    return await count() > before


async def test_a_message_the_form_refuses_keeps_what_was_typed(system, browser):
    visitor = await browser.new_context(base_url=system.urls["site"], extra_http_headers=as_client())
    page = await visitor.new_page()
    await page.goto("/contact")
    await page.get_by_label("Feedback", exact=True).check()
    await page.get_by_label("Your message").fill("Nice site")
    await page.get_by_label("Your email address").fill("not-an-address@")
    await page.evaluate("document.querySelector('form.stack').noValidate = true")  # the browser would refuse it
    await page.get_by_role("button", name="Send").click()
    assert await page.locator(".error").is_visible()
    assert await page.get_by_label("Your message").input_value() == "Nice site"
    await visitor.close()


async def test_the_console_erases_what_a_person_without_an_account_sent_from_their_address(system, browser):
    visitor = await browser.new_context(base_url=system.urls["site"], extra_http_headers=as_client())
    page = await visitor.new_page()
    email = f"{unique('forget')}@example.com"
    reference = await send(page, "A question about privacy or my data", "Please erase what I sent you.", email=email)
    admin = await console(await browser.new_context(base_url=system.urls["site"]))
    await admin.goto("/admin/erasures")
    await admin.get_by_label("Email address").fill(email)
    await admin.get_by_role("button", name="Erase their inquiries").click()
    assert "1 inquiry sent from that address was erased" in await admin.locator("#address-erased").inner_text()
    await admin.goto("/admin/inquiries?topic=privacy_question")
    assert await admin.locator(f'tr[data-reference="{reference}"]').count() == 0
    await visitor.close()


async def test_a_form_a_bot_filled_in_is_thanked_and_kept_nowhere(system, browser):
    visitor = await browser.new_context(base_url=system.urls["site"], extra_http_headers=as_client())
    page = await visitor.new_page()
    await page.goto("/contact")
    await page.get_by_label("A question", exact=True).check()
    await page.get_by_label("Your message").fill(f"Cheap pills {unique()}")
    await page.locator("#website").fill("https://spam.example", force=True)  # hidden from people
    await page.get_by_role("button", name="Send").click()
    reference = await page.locator("strong.reference").inner_text()
    admin = await console(await browser.new_context(base_url=system.urls["site"]))
    await admin.goto("/admin/inquiries?topic=question")
    assert await admin.locator(f'tr[data-reference="{reference}"]').count() == 0
    await visitor.close()
