"""CloudEvents 1.0 in Kafka binary mode: the event's attributes travel as `ce_*` headers."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import uuid4

from assent_shared.events import Event

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
# Extension attributes are lower-case alphanumerics by the CloudEvents spec.
_CORRELATION = "ce_correlationid"
_TRACEPARENT = "traceparent"
# RFC 3339 date-time (section 5.6): full date and time with an offset; fractions of any length.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


class MalformedHeaders(ValueError):
    """The message does not carry the CloudEvents headers the contract requires."""


@dataclass(frozen=True)
class EventMeta:
    id: str
    type: str
    source: str
    time: datetime
    subject: str | None = None
    correlation_id: str | None = None
    traceparent: str | None = None


def meta_for(event: Event, correlation_id: str | None = None, traceparent: str | None = None) -> EventMeta:
    return EventMeta(
        id=str(uuid4()),
        type=type(event).__name__,
        source=event.source_uri(),
        time=datetime.now(UTC),
        subject=event.subject(),
        correlation_id=correlation_id,
        traceparent=traceparent,
    )


def encode_headers(meta: EventMeta) -> list[tuple[str, bytes]]:
    headers = [
        ("ce_specversion", SPEC_VERSION),
        ("ce_id", meta.id),
        ("ce_source", meta.source),
        ("ce_type", meta.type),
        ("ce_time", meta.time.astimezone(UTC).isoformat().replace("+00:00", "Z")),
        ("content-type", CONTENT_TYPE),
    ]
    if meta.subject is not None:
        headers.append(("ce_subject", meta.subject))
    if meta.correlation_id is not None:
        headers.append((_CORRELATION, meta.correlation_id))
    if meta.traceparent is not None:
        headers.append((_TRACEPARENT, meta.traceparent))
    return [(k, v.encode()) for k, v in headers]


def decode_headers(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...] | dict[str, str]) -> EventMeta:
    items = headers.items() if isinstance(headers, dict) else headers
    values: dict[str, str] = {}
    for key, raw in items:
        try:
            values[key] = raw.decode() if isinstance(raw, bytes) else str(raw)
        except UnicodeDecodeError as exc:
            raise MalformedHeaders(f"header {key} is not UTF-8") from exc
    if values.get("ce_specversion") != SPEC_VERSION:
        raise MalformedHeaders("ce_specversion is missing or not 1.0")
    missing = [k for k in ("ce_id", "ce_source", "ce_type", "ce_time") if not values.get(k)]
    if missing:
        raise MalformedHeaders(f"missing headers: {', '.join(missing)}")
    raw_time = values["ce_time"]
    if not _RFC3339.fullmatch(raw_time):  # fromisoformat alone takes dates and times without an offset
        raise MalformedHeaders("ce_time is not RFC 3339")
    try:
        time = datetime.fromisoformat(raw_time[:-1] + "+00:00" if raw_time[-1] in "Zz" else raw_time)
    except ValueError as exc:
        raise MalformedHeaders("ce_time is not RFC 3339") from exc
    return EventMeta(
        id=values["ce_id"],
        type=values["ce_type"],
        source=values["ce_source"],
        time=time,
        subject=values.get("ce_subject"),
        correlation_id=values.get(_CORRELATION),
        traceparent=values.get(_TRACEPARENT),
    )
