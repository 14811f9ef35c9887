"""The relay's reports read and their signatures checked, without I/O."""

from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assent_mailer import messages, relay_reports
from assent_mailer.relay_reports import BadReport, Report, UnsupportedMediaType
from assent_devtools.testing import relay

SECRET = "a-relay-secret-of-enough-length"
NOW = 1_800_000_000.0


def _valid(body: bytes, header: str, now: float = NOW) -> bool:
    return relay_reports.signature_valid(SECRET, header, body, now)


def test_a_fresh_signature_over_the_body_is_valid_and_nothing_else_is():
    body = b'{"type":"complaint"}'
    good = relay.signed(SECRET, body, "application/json", at=NOW)["Assent-Signature"]
    assert _valid(body, good)
    assert _valid(body, good, now=NOW + 300) and not _valid(body, good, now=NOW + 301)
    assert not _valid(body, good, now=NOW - 301)
    assert not _valid(body + b" ", good)
    assert not _valid(body, relay.signed("another-secret-entirely", body, "application/json", at=NOW)["Assent-Signature"])
    for broken in ("", "t=,v1=", "v1=" + good.split("v1=")[1], good.split(",")[0], "t=abc," + good.split(",")[1]):
        assert not _valid(body, broken)


def test_one_of_several_signatures_may_match_while_the_relay_rotates_its_secret():
    body = b"{}"
    good = relay.signed(SECRET, body, "application/json", at=NOW)["Assent-Signature"]
    t, v1 = good.split(",")
    assert _valid(body, f"{t},v1={'0' * 64},{v1}")


@given(st.binary(max_size=200), st.text(max_size=200))
def test_no_header_or_body_makes_the_check_raise(body, header):
    assert relay_reports.signature_valid(SECRET, header, body, NOW) in (True, False)


def test_a_json_complaint_and_bounces():
    mid = messages.delivery_message_id(uuid4())
    assert relay_reports.read("application/json", relay.notification("complaint", mid, "a@example.com")) == \
        Report("complaint", mid, "a@example.com", True)
    assert relay_reports.read("application/json; charset=utf-8", relay.notification("bounce", mid)) == \
        Report("bounce", mid, None, True)
    soft = relay_reports.read("application/json", relay.notification("bounce", mid, bounce_type="soft"))
    assert not soft.permanent


def test_a_dsn_mail_is_a_hard_bounce_only_when_it_failed_with_a_5xx_status():
    mid = messages.delivery_message_id(uuid4())
    assert relay_reports.read("message/rfc822", relay.bounce_mail(mid, "gone@example.com")) == \
        Report("bounce", mid, "gone@example.com", True)
    delayed = relay_reports.read("message/rfc822", relay.bounce_mail(mid, "x@example.com", "4.2.2", "delayed"))
    assert delayed.kind == "bounce" and not delayed.permanent


def test_the_report_itself_may_be_the_body():
    mid = messages.delivery_message_id(uuid4())
    mail = relay.bounce_mail(mid, "gone@example.com")
    head, body = mail.split(b"\r\n\r\n", 1)
    content_type = next(line for line in head.decode().split("\r\n") if line.startswith("Content-Type"))
    assert relay_reports.read(content_type.split(": ", 1)[1], body).message_id == mid


def test_a_feedback_loop_complaint_mail():
    mid = messages.reply_id(uuid4())
    assert relay_reports.read("message/rfc822", relay.complaint_mail(mid, "me@example.com")) == \
        Report("complaint", mid, "me@example.com", True)


@pytest.mark.parametrize("content_type, body", [
    ("application/json", b"not json"),
    ("application/json", b'{"type": "delivered", "message_id": "<a@b>"}'),
    ("application/json", b'{"type": "bounce"}'),
    ("application/json", b"[" * 5000),
    ("message/rfc822", b"Subject: hello\r\n\r\njust a mail"),
    ("message/rfc822", b"\xff\xfe\x00garbage"),
    ("multipart/report", b"--x--"),
    ("message/rfc822", relay.bounce_mail("<a@b>", "x@example.com").replace(b"Message-ID: <a@b>\r\n", b"")),
    ("message/rfc822", relay.bounce_mail("<a@b>", "x@example.com").replace(b"report-type=delivery-status",
                                                                            b"report-type=disposition-notification")),
])
def test_what_is_not_a_report_is_refused_with_a_reason(content_type, body):
    with pytest.raises(BadReport) as refused:
        relay_reports.read(content_type, body)
    assert str(refused.value) and "@" not in str(refused.value)


def test_other_media_types_are_unsupported():
    with pytest.raises(UnsupportedMediaType):
        relay_reports.read("text/plain", b"bounce")


def test_our_message_ids_name_their_delivery_or_reply():
    delivery, reply = uuid4(), uuid4()
    assert messages.sent_as(messages.delivery_message_id(delivery)) == ("delivery", delivery)
    assert messages.sent_as(messages.reply_id(reply)) == ("reply", reply)
    assert messages.sent_as(f" {messages.delivery_message_id(delivery).upper()} ") == ("delivery", delivery)
    for other in ("<x@assent.example>", f"<delivery-{delivery}@elsewhere.example>", messages.thread_root(reply), ""):
        assert messages.sent_as(other) is None
