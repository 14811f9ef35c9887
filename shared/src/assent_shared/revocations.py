"""Ended sessions, refused at every service: identity publishes SessionsRevoked, each replica of each
service reads the whole topic (no consumer group) into memory and refuses the tokens it names.

An entry is kept until the last access token it covers has expired (the event says when), so the
memory held is bounded by the logouts of one token lifetime.
"""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import uuid4

import structlog
from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from assent_shared import cloudevents, topics
from assent_shared.events import SessionsRevoked
from assent_shared.settings import ServiceSettings

log = structlog.get_logger(__name__)


@dataclass
class Revocations:
    """The deny list: session ids, and users whose every session up to a moment has ended."""

    _sessions: dict[str, float] = field(default_factory=dict)  # sid -> when the entry may go
    _users: dict[str, tuple[float, float]] = field(default_factory=dict)  # sub -> (revoked up to, may go)

    def add(self, event: SessionsRevoked) -> None:
        until = event.expires_at.timestamp()
        if event.session_ids:
            for sid in event.session_ids:
                self._sessions[str(sid)] = max(until, self._sessions.get(str(sid), 0.0))
        else:
            before, old_until = self._users.get(str(event.user_id), (0.0, 0.0))
            self._users[str(event.user_id)] = (max(before, event.revoked_at.timestamp()), max(until, old_until))

    def refuses(self, claims: dict) -> bool:
        if str(claims.get("sid")) in self._sessions:
            return True
        revoked = self._users.get(str(claims.get("sub")))
        # iat has whole seconds: a token of the same second as the revocation is refused too.
        return revoked is not None and float(claims.get("iat", 0)) <= revoked[0]

    def forget_expired(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self._sessions = {sid: until for sid, until in self._sessions.items() if until > now}
        self._users = {sub: entry for sub, entry in self._users.items() if entry[1] > now}


async def follow(settings: ServiceSettings, revocations: Revocations, poll_ms: int = 500) -> None:
    """Read every partition of the sessions topic from its start (its retention is short) and keep
    reading; every replica does, so each one refuses every ended session."""
    consumer = AIOKafkaConsumer(
        settings.topic(topics.SESSIONS.name), bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
        client_id=f"assent-{settings.service_name}-revocations-{uuid4().hex[:8]}",
    )
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=poll_ms, max_records=1000)
            for records in batches.values():
                for record in records:
                    _apply(revocations, record)
            revocations.forget_expired()
    finally:
        await consumer.stop()


def _apply(revocations: Revocations, record) -> None:
    try:
        meta = cloudevents.decode_headers(record.headers)
        if meta.type == "SessionsRevoked":
            event = SessionsRevoked.model_validate_json(record.value or b"")
            if event.expires_at > datetime.now(UTC):
                revocations.add(event)
    except (cloudevents.MalformedHeaders, ValidationError):
        # Nothing to apply and nothing to lose: a record that is not a revocation refuses no token.
        log.warning("revocation record ignored", partition=record.partition, offset=record.offset)
