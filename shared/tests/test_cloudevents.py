"""CloudEvents 1.0 in Kafka binary mode: the headers the contract promises, and the decoder's refusals."""

from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assent_shared.cloudevents import EventMeta, MalformedHeaders, decode_headers, encode_headers, meta_for
from assent_shared.events import PolicyUpdated, UserRegistered

# Header values are UTF-8 text; lone surrogates cannot be encoded, so they are no header value at all.
_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
_offsets = st.builds(lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-23 * 60 - 59, 23 * 60 + 59))
_times = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=_offsets)
_metas = st.builds(
    EventMeta,
    id=st.one_of(st.uuids().map(str), _text),
    type=_text,
    source=_text,
    time=_times,
    subject=st.none() | _text,
    correlation_id=st.none() | _text,
    traceparent=st.none() | _text,
)

VALID = {
    "ce_specversion": b"1.0",
    "ce_id": b"5f0c3c1e-8a51-4a43-9d1b-3f3d1e6f9a10",
    "ce_source": b"/assent/identity",
    "ce_type": b"UserRegistered",
    "ce_time": b"2025-03-01T12:30:45.123456Z",
    "content-type": b"application/json",
}


def registered() -> UserRegistered:
    return UserRegistered(user_id=uuid4(), email="a@example.com", registered_at=datetime.now(UTC),
                          policy_version=3, newsletter_opt_in=True)


@given(_metas)
def test_encode_then_decode_gives_back_the_same_meta(meta):
    decoded = decode_headers(encode_headers(meta))
    assert decoded == meta  # aware datetimes compare as instants
    assert decoded.time.utcoffset() == timedelta(0)


@given(_metas)
def test_every_header_is_bytes_and_the_decoder_takes_a_dict_too(meta):
    headers = encode_headers(meta)
    assert all(isinstance(k, str) and isinstance(v, bytes) for k, v in headers)
    assert decode_headers(tuple(headers)) == meta
    assert decode_headers({k: v.decode() for k, v in headers}) == meta


def test_headers_are_the_ones_the_contract_names():
    event = registered()
    before = datetime.now(UTC)
    meta = meta_for(event, correlation_id="c0ffee00c0ffee00")
    headers = dict(encode_headers(meta))
    assert headers["ce_specversion"] == b"1.0"
    assert headers["content-type"] == b"application/json"
    assert headers["ce_source"] == b"/assent/identity"
    assert headers["ce_type"] == b"UserRegistered"
    assert headers["ce_subject"] == str(event.user_id).encode()
    assert headers["ce_correlationid"] == b"c0ffee00c0ffee00"
    UUID(headers["ce_id"].decode())
    ce_time = headers["ce_time"].decode()
    assert ce_time.endswith("Z") and "T" in ce_time  # RFC 3339 in UTC
    assert before <= datetime.fromisoformat(ce_time.replace("Z", "+00:00")) <= datetime.now(UTC)
    assert "traceparent" not in headers


def test_each_event_gets_its_own_id_and_events_without_a_subject_carry_no_subject_header():
    event = PolicyUpdated(policy_id="privacy", version=2, title="v2", summary="s", effective_at=datetime.now(UTC),
                          published_at=datetime.now(UTC))
    first, second = meta_for(event), meta_for(event)
    assert first.id != second.id
    assert first.source == "/assent/policy" and first.subject is None
    assert "ce_subject" not in dict(encode_headers(first))


def test_a_time_with_an_offset_is_sent_in_utc():
    two_hours_east = timezone(timedelta(hours=2))
    meta = EventMeta(id="x", type="T", source="/s", time=datetime(2025, 1, 1, 2, 0, tzinfo=two_hours_east))
    assert dict(encode_headers(meta))["ce_time"] == b"2025-01-01T00:00:00Z"


@pytest.mark.parametrize(
    "ce_time",
    ["2025-03-01T12:30:45Z", "2025-03-01T12:30:45.123456789Z", "2025-03-01T14:30:45+02:00", "2025-03-01t12:30:45z"],
)
def test_other_producers_rfc3339_times_are_accepted(ce_time):
    meta = decode_headers({**VALID, "ce_time": ce_time.encode()})
    assert meta.time.replace(microsecond=0) == datetime(2025, 3, 1, 12, 30, 45, tzinfo=UTC)


@pytest.mark.parametrize("missing", ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time"])
def test_a_missing_required_header_is_malformed(missing):
    headers = {k: v for k, v in VALID.items() if k != missing}
    with pytest.raises(MalformedHeaders, match=missing):
        decode_headers(headers)


@pytest.mark.parametrize("empty", ["ce_id", "ce_source", "ce_type", "ce_time"])
def test_an_empty_required_header_is_malformed(empty):
    with pytest.raises(MalformedHeaders, match=empty):
        decode_headers({**VALID, empty: b""})


@pytest.mark.parametrize("version", [b"0.3", b"1", b"2.0", b" 1.0"])
def test_another_spec_version_is_malformed(version):
    with pytest.raises(MalformedHeaders, match="ce_specversion"):
        decode_headers({**VALID, "ce_specversion": version})


@pytest.mark.parametrize(
    "ce_time",
    [
        b"yesterday",
        b"2025-13-01T00:00:00Z",
        b"2025-03-01T25:00:00Z",
        b"1740832245",
        b"2025-03-01",  # a date is not a timestamp
        b"2025-03-01T12:30:45",  # RFC 3339 requires an offset: without one the instant is unknown
        b"20250301T123045Z",  # ISO 8601 basic format is not RFC 3339
    ],
)
def test_a_time_that_is_not_rfc3339_is_malformed(ce_time):
    with pytest.raises(MalformedHeaders, match="ce_time"):
        decode_headers({**VALID, "ce_time": ce_time})


def test_a_header_that_is_not_utf8_is_malformed():
    with pytest.raises(MalformedHeaders, match="ce_type"):
        decode_headers([*VALID.items(), ("ce_type", b"\xff\xfe")])


def test_optional_headers_decode_when_present():
    meta = decode_headers({**VALID, "ce_subject": b"u1", "ce_correlationid": b"abc", "traceparent": b"00-ab-cd-01"})
    assert (meta.id, meta.type, meta.source) == (VALID["ce_id"].decode(), "UserRegistered", "/assent/identity")
    assert (meta.subject, meta.correlation_id, meta.traceparent) == ("u1", "abc", "00-ab-cd-01")
