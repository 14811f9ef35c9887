"""Every mail in every language renders both parts from its files, with nothing left unrendered."""

import re
from typing import get_args
from datetime import UTC, datetime
from email import message_from_bytes, policy
from uuid import uuid4

import pytest

from assent_mailer import messages
from assent_mailer.samples import SAMPLES
from assent_mailer.templating import MAILS, Templates, UnknownTemplate
from assent_shared.events import OrderStatus

TEMPLATES = Templates()
CASES = [(mail, locale) for mail in MAILS for locale in TEMPLATES.locales(mail)]
UNRENDERED = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}|Undefined")


def render(mail, locale, **changes):
    return TEMPLATES.render(mail, locale, {**SAMPLES[mail], "sender_name": "Assent demo site", **changes})


def test_every_mail_has_samples_and_at_least_english_and_german():
    assert set(SAMPLES) == set(MAILS)
    for mail in MAILS:
        assert {"en", "de"} <= set(TEMPLATES.locales(mail)), mail


@pytest.mark.parametrize(("mail", "locale"), CASES)
def test_each_mail_renders_both_parts_with_nothing_left_unrendered(mail, locale):
    rendered = render(mail, locale)
    assert rendered.subject and "\n" not in rendered.subject
    for part in (rendered.subject, rendered.text, rendered.html):
        assert not UNRENDERED.search(part), (mail, locale, part)
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>") and f'<html lang="{locale}">' in rendered.html
    assert "<" not in rendered.text.replace("<this>", "")  # the text part holds no markup
    for name, value in SAMPLES[mail].items():  # every variable reaches both parts (a status as its words)
        if isinstance(value, str) and "\n" not in value and name != "status":
            shown = value.replace("&", "&amp;")
            assert value in rendered.subject + rendered.text and shown in rendered.subject + rendered.html, (mail, value)


@pytest.mark.parametrize(("mail", "locale"), CASES)
def test_a_missing_variable_fails_the_mail_instead_of_rendering_empty(mail, locale):
    variables = dict(SAMPLES[mail])
    variables.pop(next(iter(variables)))
    with pytest.raises(Exception, match="undefined"):
        TEMPLATES.render(mail, locale, {**variables, "sender_name": "Assent"})


def test_the_languages_differ_and_german_is_german():
    assert render("welcome", "en").subject != render("welcome", "de").subject
    assert "Bestellung" in render("order_update", "de").subject
    assert "Ihre Anfrage" in render("inquiry_reply", "de").text


def test_html_escapes_what_people_typed_and_text_keeps_it_verbatim():
    body = '<script>alert(1)</script>\n\nSecond "paragraph" & more'
    rendered = render("inquiry_reply", "en", body=body)
    assert "<script>" not in rendered.html and "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "<p>Second &#34;paragraph&#34; &amp; more</p>" in rendered.html
    assert body in rendered.text


def test_a_line_break_in_a_subject_is_refused_not_folded():
    with pytest.raises(ValueError):
        render("newsletter", "en", title="Line one\r\nBcc: everyone@example.com")
    with pytest.raises(ValueError):
        render("policy_change", "de", title="Line one\nBcc: everyone@example.com")


@pytest.mark.parametrize(("wanted", "chosen"), [("de", "de"), ("de-AT", "de"), ("DE", "de"), ("en-GB", "en"),
                                                 ("fr", "en"), (None, "en"), ("", "en")])
def test_the_users_language_is_chosen_and_anything_else_falls_back_to_english(wanted, chosen):
    assert TEMPLATES.choose_locale("order_update", wanted) == chosen


def test_unknown_mails_and_languages_are_refused():
    with pytest.raises(UnknownTemplate):
        TEMPLATES.render("nonsense", "en", {})
    with pytest.raises(UnknownTemplate):
        TEMPLATES.render("welcome", "fr", {})


def test_the_mail_is_multipart_alternative_and_threaded():
    inquiry, first, second, this = uuid4(), uuid4(), uuid4(), uuid4()
    message = messages.compose("Assent <hello@assent.example>", "a@example.com", uuid4(), render("inquiry_reply", "de"),
                               messages.thread_headers(inquiry, this, (first, second)))
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert "Ihre Anfrage" in parsed.get_body(("plain",)).get_content()
    assert parsed["Message-ID"] == f"<reply-{this}@assent.example>" and len(parsed.get_all("Message-ID")) == 1
    assert parsed["In-Reply-To"] == f"<reply-{second}@assent.example>"
    assert parsed["References"].split() == [f"<inquiry-{inquiry}@assent.example>", f"<reply-{first}@assent.example>",
                                            f"<reply-{second}@assent.example>"]
    assert parsed["Subject"] == render("inquiry_reply", "de").subject


def test_the_first_reply_answers_the_inquiry_itself():
    inquiry, this = uuid4(), uuid4()
    headers = messages.thread_headers(inquiry, this, ())
    assert headers["In-Reply-To"] == headers["References"] == f"<inquiry-{inquiry}@assent.example>"


def test_order_dates_follow_the_language():
    when = datetime(2026, 12, 24, 18, 5, tzinfo=UTC)
    assert "24.12.2026 18:05" in render("order_update", "de", occurred_at=when).text
    assert "2026-12-24 18:05" in render("order_update", "en", occurred_at=when).text


@pytest.mark.parametrize("locale", TEMPLATES.locales("order_update"))
@pytest.mark.parametrize("status", get_args(OrderStatus))
def test_every_order_status_has_its_words_in_every_language(status, locale):
    rendered = render("order_update", locale, status=status)
    assert status not in rendered.subject or locale == "en"
    assert rendered.subject.split(" ", 3)[-1] in rendered.text
