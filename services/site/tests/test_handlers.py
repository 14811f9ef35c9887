"""Every use case of the Site on in-memory services (`assent_site.fakes`): what it asks of them and what
the person sees."""

import json
import re

import httpx
import pytest
from argon2 import PasswordHasher

from assent_site import fakes
from assent_site.clients.base import Unavailable
from assent_site.main import create_app
from assent_site.settings import SiteSettings
from assent_site.web import DEVICE_COOKIE, SESSION_COOKIE

PASSWORD = "correct horse battery"
CONSOLE_PASSWORD = "console password 0001"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def settings() -> SiteSettings:
    return SiteSettings(environment="test", session_secret="unit-test-site-secret-" + "s" * 32,
                        site_url="http://testserver", policy_id="privacy",
                        # The console's hash at the cheapest cost: each sign-in verifies against it.
                        admin_password_hash=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(
                            CONSOLE_PASSWORD))


@pytest.fixture
def up():
    return fakes.memory_upstreams()


@pytest.fixture
async def browser(settings, up):
    # Not testing.apps.serve: asgi-lifespan hands every request the one lifespan state dict (ASGI says a
    # copy each), so the cookies one request queues in request.state would be sent again with the next.
    app = create_app(settings, up)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        yield client


async def send(browser: httpx.AsyncClient, form_page: str, path: str, data: dict, **kwargs) -> httpx.Response:
    """Submits a form as a browser does: the token from the page the form is on."""
    token = _CSRF.search((await browser.get(form_page, **kwargs)).text).group(1)
    return await browser.post(path, data={**data, "csrf": token}, **kwargs)


async def registered(up, email: str = "ann@example.com") -> dict:
    return await up.identity.register(email, PASSWORD, "Ann", False, None)


async def signed_in(browser, up, email: str = "ann@example.com") -> dict:
    user = await registered(up, email)
    assert (await send(browser, "/signin", "/signin", {"email": email, "password": PASSWORD})).status_code == 303
    return user


async def admin_signed_in(browser) -> None:
    response = await send(browser, "/admin/signin", "/admin/signin", {"password": CONSOLE_PASSWORD, "next": "/admin"})
    assert (response.status_code, response.headers["location"]) == (303, "/admin")


# ------------------------------------------------------------------ accounts


async def test_sign_up_creates_the_account_signs_in_and_asks_to_verify_the_address(browser, up):
    response = await send(browser, "/signup", "/signup", {"email": "ann@example.com", "password": PASSWORD,
                                                    "display_name": "Ann", "newsletter": "yes"},
                    headers={"accept-language": "de-DE,de;q=0.9"})
    assert (response.status_code, response.headers["location"]) == (303, "/my-data?done=signed_up")
    [user] = up.identity.users.values()
    assert (user["email"], user["display_name"], user["newsletter"], user["locale"]) == (
        "ann@example.com", "Ann", True, "de")
    assert [(mail, to) for mail, to, _ in up.identity.sent] == [("verify", "ann@example.com")]
    page = await browser.get("/my-data")
    assert page.status_code == 200 and "ann@example.com" in page.text and "Your account is ready" not in page.text


async def test_sign_up_refused_shows_why_and_keeps_what_was_typed_but_the_password(browser, up):
    await registered(up)
    response = await send(browser, "/signup", "/signup", {"email": "ann@example.com", "password": PASSWORD})
    assert response.status_code == 400 and "Email already registered" in response.text
    assert 'value="ann@example.com"' in response.text and PASSWORD not in response.text
    response = await send(browser, "/signup", "/signup", {"email": "bob@example.com", "password": "short"})
    assert response.status_code == 400 and "at least 10 characters" in response.text
    assert len(up.identity.users) == 1 and SESSION_COOKIE not in browser.cookies


async def test_sign_in_goes_to_the_page_asked_for_and_sign_out_ends_the_session_at_identity(browser, up):
    user = await registered(up)
    response = await send(browser, "/signin", "/signin", {"email": "ann@example.com", "password": "not it at all",
                                                    "next": "/contact/mine"})
    assert response.status_code == 400 and "Wrong email or password." in response.text
    assert up.identity.sessions == {}
    response = await send(browser, "/signin", "/signin", {"email": "ann@example.com", "password": PASSWORD,
                                                    "next": "/contact/mine"})
    assert (response.status_code, response.headers["location"]) == (303, "/contact/mine?done=signed_in")
    assert list(up.identity.sessions.values()) == [user["id"]]
    assert (await browser.get("/my-data")).status_code == 200
    response = await send(browser, "/my-data", "/signout", {})
    assert (response.status_code, response.headers["location"]) == (303, "/?done=signed_out")
    assert up.identity.sessions == {}
    assert (await browser.get("/my-data")).headers["location"] == "/signin?next=/my-data"


async def test_sign_in_never_sends_anyone_off_the_site(browser, up):
    await registered(up)
    response = await send(browser, "/signin", "/signin", {"email": "ann@example.com", "password": PASSWORD,
                                                    "next": "//evil.example/"})
    assert response.headers["location"] == "/my-data?done=signed_in"


async def test_a_form_without_its_token_changes_nothing(browser, up):
    response = await browser.post("/signup", data={"email": "ann@example.com", "password": PASSWORD,
                                                   "csrf": "1.forged"})
    assert response.status_code == 403 and up.identity.users == {}


# ------------------------------------------------------------------ my data


async def test_the_consent_switch_records_the_choice_at_consent(browser, up):
    user = await signed_in(browser, up)
    response = await send(browser, "/my-data", "/my-data/consents",
                    {"purpose": "surveys", "recipient": "acme-surveys", "granted": "true"})
    assert response.status_code == 303 and response.headers["location"].startswith("/my-data#consents")
    [state] = up.consent.states[user["id"]].values()
    assert (state["purpose"], state["recipient"], state["granted"]) == ("surveys", "acme-surveys", True)
    page = await browser.get("/my-data")
    assert state["event_id"] in page.text, "the page links the receipt of the change"
    receipt = await browser.get(f"/my-data/receipts/{state['event_id']}")
    assert json.loads(receipt.content)["state"] == "granted"


async def test_a_refused_consent_change_shows_consents_reason_and_changes_nothing(browser, up):
    user = await signed_in(browser, up)
    response = await send(browser, "/my-data", "/my-data/consents",
                    {"purpose": "telepathy", "recipient": "acme-surveys", "granted": "true"})
    assert response.status_code == 400 and "See GET /v1/purposes" in response.text
    assert up.consent.states.get(user["id"], {}) == {}


async def test_under_gpc_a_page_view_withdraws_third_party_grants_once_and_a_switch_cannot_grant_one(browser, up):
    user = await signed_in(browser, up)
    await send(browser, "/my-data", "/my-data/consents",
         {"purpose": "surveys", "recipient": "acme-surveys", "granted": "true"})
    gpc = {"sec-gpc": "1"}
    page = await browser.get("/my-data", headers=gpc)
    assert "we withdrew your consent to share with acme-surveys" in page.text
    assert up.consent.gpc_signals == [user["id"]]
    assert not up.consent.states[user["id"]][("surveys", "acme-surveys")]["granted"]
    await send(browser, "/my-data", "/my-data/consents",
         {"purpose": "surveys", "recipient": "acme-surveys", "granted": "true"}, headers=gpc)
    assert not up.consent.states[user["id"]][("surveys", "acme-surveys")]["granted"]
    assert up.consent.gpc_signals == [user["id"]], "once per sign-in"


async def test_export_downloads_what_identity_holds_and_needs_a_sign_in(browser, up):
    assert (await browser.get("/my-data/export")).headers["location"] == "/signin?next=/my-data/export"
    await signed_in(browser, up)
    response = await browser.get("/my-data/export")
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    assert json.loads(response.content)["user"]["email"] == "ann@example.com"


async def test_erase_asks_for_the_password_again_then_erases_and_signs_out(browser, up):
    user = await signed_in(browser, up)
    response = await send(browser, "/my-data/erase", "/my-data/erase", {"password": "not my password"})
    assert response.status_code == 400 and "That is not your password." in response.text
    assert user["id"] in up.identity.users and up.identity.erased == {}
    response = await send(browser, "/my-data/erase", "/my-data/erase", {"password": PASSWORD})
    assert (response.status_code, response.headers["location"]) == (303, "/?done=erased")
    assert user["id"] not in up.identity.users and list(up.identity.erased) == [user["id"]]
    assert SESSION_COOKIE not in browser.cookies
    assert (await browser.get("/my-data")).status_code == 303


# ------------------------------------------------------------------ public pages


async def test_the_unsubscribe_link_only_asks_and_the_button_unsubscribes(browser, up):
    token = up.mailer.link_for("subject-1")
    page = await browser.get("/unsubscribe", params={"token": token})
    assert page.status_code == 200 and token in page.text and up.mailer.unsubscribed == []
    done = await send(browser, f"/unsubscribe?token={token}", "/unsubscribe", {"token": token})
    assert done.status_code == 200 and up.mailer.unsubscribed == ["subject-1"]
    refused = await send(browser, "/unsubscribe", "/unsubscribe", {"token": "forged-token"})
    assert refused.status_code == 400 and "The link is damaged" in refused.text
    assert up.mailer.unsubscribed == ["subject-1"]


async def test_allowing_cookies_records_a_device_consent_then_sets_the_device_cookie(browser, up):
    response = await send(browser, "/cookies", "/cookies", {"choice": "allow", "next": "/policy"})
    assert (response.status_code, response.headers["location"]) == (303, "/policy?done=cookies_allowed")
    [(device, purpose)] = up.consent.devices
    assert browser.cookies[DEVICE_COOKIE] == device and purpose == "cookies"
    assert up.consent.devices[(device, purpose)]["granted"] is True
    response = await send(browser, "/cookies", "/cookies", {"choice": "refuse", "next": "/cookies"})
    assert response.headers["location"] == "/cookies?done=cookies_refused"
    assert up.consent.devices[(device, purpose)]["granted"] is False, "the same device withdraws"
    assert DEVICE_COOKIE not in browser.cookies


async def test_a_refusal_stores_nothing_in_the_browser_and_an_unrecorded_allowance_sets_no_cookie(browser, up):
    response = await send(browser, "/cookies", "/cookies", {"choice": "refuse", "next": "/"})
    assert response.headers["location"] == "/?done=cookies_refused" and DEVICE_COOKIE not in browser.cookies
    [record] = up.consent.devices.values()
    assert record["granted"] is False

    async def unavailable(*_args):
        raise Unavailable("consent")

    up.consent.set_device_consent = unavailable
    response = await send(browser, "/cookies", "/cookies", {"choice": "allow", "next": "/"})
    assert response.status_code == 503 and "no cookie was set" in response.text
    assert DEVICE_COOKIE not in browser.cookies
    response = await send(browser, "/cookies", "/cookies", {"choice": "refuse", "next": "/"})
    assert response.headers["location"] == "/?done=cookies_refused", "a refusal is honoured unrecorded"
    assert DEVICE_COOKIE not in browser.cookies


async def test_a_signed_in_page_view_accepts_a_material_version_by_continued_use_once(browser, up):
    user = await signed_in(browser, up)
    up.policy.publish_version({"title": "Privacy policy, second edition", "summary": "Surveys by a partner",
                               "text": "# Privacy\n\nWe ask more.", "material": True, "data_use": []})
    page = await browser.get("/")
    assert up.policy.acceptances == [(user["id"], 2)]
    assert "/policy/versions/2" in page.text, "what was accepted is shown"
    await browser.get("/policy")
    assert up.policy.acceptances == [(user["id"], 2)]


async def test_a_visitor_without_an_account_sees_the_notice_and_accepts_nothing(browser, up):
    up.policy.publish_version({"title": "Second edition", "summary": "Surveys by a partner", "text": "# New",
                               "material": True, "data_use": []}, notice=True)
    page = await browser.get("/")
    assert "Surveys by a partner" in page.text and up.policy.acceptances == []


# ------------------------------------------------------------------ contact


async def test_the_contact_form_sends_an_address_only_when_one_is_typed(browser, up):
    sent = await send(browser, "/contact", "/contact", {"topic": "question", "message": "Where is my order?",
                                                  "email": "ann@example.com"})
    [inquiry] = up.support.inquiries.values()
    assert sent.status_code == 200 and inquiry["reference"] in sent.text
    assert (inquiry["email"], inquiry["user_id"], inquiry["messages"][0]["body"]) == (
        "ann@example.com", None, "Where is my order?")
    await send(browser, "/contact", "/contact", {"topic": "feedback", "message": "Nice site"})
    assert [i["email"] for i in up.support.inquiries.values()] == ["ann@example.com", None]


async def test_a_signed_in_author_sends_no_address_and_reads_the_thread_on_the_site(browser, up):
    user = await signed_in(browser, up)
    await send(browser, "/contact", "/contact", {"topic": "support_request", "message": "Help", "want_reply": "yes",
                                           "email": "typed@example.com"})
    [inquiry] = up.support.inquiries.values()
    assert (inquiry["user_id"], inquiry["email"], inquiry["reply_by_mail"]) == (user["id"], None, True)
    assert inquiry["reference"] in (await browser.get("/contact/mine")).text
    thread = f"/contact/reply?inquiry={inquiry['id']}"
    response = await send(browser, thread, "/contact/reply", {"inquiry": inquiry["id"], "message": "Any news?"})
    assert response.headers["location"] == thread + "&done=answer_sent"
    assert [m["body"] for m in inquiry["messages"]] == ["Help", "Any news?"]


async def test_a_contact_form_refused_says_why_and_sends_nothing(browser, up):
    response = await send(browser, "/contact", "/contact", {"topic": "gossip", "message": "Hello"})
    assert response.status_code == 400 and "Choose what your message is about." in response.text
    response = await send(browser, "/contact", "/contact", {"topic": "question", "message": "x" * 5001})
    assert response.status_code == 400 and "at most 5000 characters" in response.text
    assert up.support.inquiries == {} and sum(up.support.sent_by.values()) == 0
    for _ in range(fakes.MemorySupport.RATE_LIMIT):
        await send(browser, "/contact", "/contact", {"topic": "question", "message": "Hello"})
    response = await send(browser, "/contact", "/contact", {"topic": "question", "message": "Hello"})
    assert response.status_code == 429 and "several messages" in response.text
    assert len(up.support.inquiries) == fakes.MemorySupport.RATE_LIMIT


# ------------------------------------------------------------------ the console


async def test_the_console_locks_out_after_repeated_wrong_passwords_even_the_right_one(browser, up):
    for _ in range(fakes.CONSOLE_LOCKOUT):
        response = await send(browser, "/admin/signin", "/admin/signin", {"password": "guess", "next": "/admin"})
        assert response.status_code == 400 and "Wrong password." in response.text
    response = await send(browser, "/admin/signin", "/admin/signin", {"password": CONSOLE_PASSWORD, "next": "/admin"})
    assert response.status_code == 429 and "Too many failed sign-ins. Try again in 900 seconds." in response.text
    assert (await browser.get("/admin")).headers["location"] == "/admin/signin?next=/admin"


async def test_a_right_console_password_clears_the_accounts_failures_and_opens_the_console(browser, up):
    for _ in range(fakes.CONSOLE_LOCKOUT - 1):
        await send(browser, "/admin/signin", "/admin/signin", {"password": "guess", "next": "/admin"})
    await admin_signed_in(browser)
    failures = up.identity.console_failures
    assert failures["account:site-console"] == 0
    assert failures["client:127.0.0.1"] == fakes.CONSOLE_LOCKOUT - 1, "the sign-in that worked is not counted"
    assert (await browser.get("/admin")).status_code == 200


async def test_the_console_inbox_lists_answers_and_closes_an_inquiry(browser, up):
    inquiry = await up.support.submit({"topic": "question", "message": "Where is my order?",
                                       "email": "ann@example.com"}, None, "203.0.113.9")
    assert (await browser.get("/admin/inquiries")).headers["location"] == "/admin/signin?next=/admin/inquiries"
    await admin_signed_in(browser)
    assert inquiry["reference"] in (await browser.get("/admin/inquiries", params={"status": "open"})).text
    page = f"/admin/inquiries/{inquiry['id']}"
    response = await send(browser, page, f"{page}/reply", {"body": "  "})
    assert response.status_code == 400 and "Write a reply" in response.text
    response = await send(browser, page, f"{page}/reply", {"body": "It ships today."})
    assert (response.status_code, response.headers["location"]) == (303, f"{page}?done=replied")
    thread = up.support.inquiries[inquiry["id"]]
    assert thread["status"] == "answered" and thread["messages"][-1]["author"] == "admin"
    assert inquiry["reference"] not in (await browser.get("/admin/inquiries", params={"status": "open"})).text
    await send(browser, page, f"{page}/close", {})
    assert thread["status"] == "closed"
    response = await send(browser, page, f"{page}/reply", {"body": "One more thing."})
    assert response.status_code == 400 and "Please send a new inquiry." in response.text
    assert len(thread["messages"]) == 2
