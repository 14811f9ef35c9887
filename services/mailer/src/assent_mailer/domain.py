"""The consent gate and delivery rules, free of I/O.

`plan` is the whole decision: given what the mailer knows of one subject, which deliveries to
create and which waiting ones to cancel. Every event about the subject is followed by a plan,
so the order in which topics arrive never changes the outcome. `replay` runs a batch of consent
changes through it as one change at a time would, on what was read once for the whole batch.
"""

import hashlib
import hmac
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from uuid import UUID, uuid4

from assent_shared.events import FIRST_PARTY

SHARED = "subject.shared"
REVOKED = "subject.revoked"
# A share that gave up may still have reached the processor (it took the data, then its answer was
# lost or late): a revoke must tell it as well as one that answered.
MAY_HAVE_ARRIVED = frozenset({"sent", "failed"})


@dataclass(frozen=True)
class ConsentView:
    purpose: str
    recipient: str
    granted: bool
    seq: int
    event_id: str


@dataclass(frozen=True)
class ProcessorDelivery:
    delivery_id: UUID
    kind: str
    recipient: str
    purpose: str
    consent_event_id: str
    status: str


@dataclass(frozen=True)
class NewDelivery:
    kind: str
    recipient: str
    purpose: str
    consent_event_id: str

    @property
    def dedupe_key(self) -> str:
        return f"{self.kind}:{self.recipient}:{self.consent_event_id}"


@dataclass(frozen=True)
class Plan:
    create: list[NewDelivery] = field(default_factory=list)
    cancel: list[UUID] = field(default_factory=list)


def applies(held: ConsentView | None, incoming_seq: int) -> bool:
    """Gate rule 2: an event at or below the seq already held changes nothing."""
    return held is None or incoming_seq > held.seq


def plan(consents: list[ConsentView], email_known: bool, processors: dict[str, set[str]],
         deliveries: list[ProcessorDelivery]) -> Plan:
    result = Plan()
    for consent in consents:
        if consent.recipient == FIRST_PARTY:
            continue
        same_key = [d for d in deliveries if d.recipient == consent.recipient and d.purpose == consent.purpose]
        if consent.granted:
            allowed = consent.purpose in processors.get(consent.recipient, set())
            already = any(d.kind == SHARED and d.consent_event_id == consent.event_id for d in same_key)
            if email_known and allowed and not already:
                result.create.append(NewDelivery(SHARED, consent.recipient, consent.purpose, consent.event_id))
            continue
        result.cancel.extend(d.delivery_id for d in same_key if d.kind == SHARED and d.status == "pending")
        data_went_out = any(d.kind == SHARED and d.status in MAY_HAVE_ARRIVED for d in same_key)
        told = any(d.kind == REVOKED and d.consent_event_id == consent.event_id for d in same_key)
        if data_went_out and not told:
            result.create.append(NewDelivery(REVOKED, consent.recipient, consent.purpose, consent.event_id))
    return result


@dataclass
class Replayed:
    views: dict[tuple[UUID, str, str], ConsentView] = field(default_factory=dict)  # newest applied view of each key
    create: list[tuple[int, UUID, NewDelivery]] = field(default_factory=list)  # (the change planning it, its id, it)
    cancel: list[UUID] = field(default_factory=list)


def replay(changes: list[tuple[UUID, ConsentView]], consents: dict[UUID, list[ConsentView]], emails_known: set[UUID],
           processors: dict[str, set[str]], deliveries: dict[UUID, list[ProcessorDelivery]],
           new_id: Callable[[], UUID] = uuid4) -> Replayed:
    """Consent changes (subject, view) in their order: each one that `applies` is followed by its subject's
    `plan`, which sees the deliveries the changes before it planned or cancelled."""
    held = {subject: {(c.purpose, c.recipient): c for c in views} for subject, views in consents.items()}
    known = {subject: list(found) for subject, found in deliveries.items()}
    result = Replayed()
    for i, (subject, view) in enumerate(changes):
        views = held.setdefault(subject, {})
        if not applies(views.get((view.purpose, view.recipient)), view.seq):
            continue
        views[(view.purpose, view.recipient)] = view
        result.views[(subject, view.purpose, view.recipient)] = view
        theirs = known.setdefault(subject, [])
        decided = plan(list(views.values()), subject in emails_known, processors, theirs)
        cancelled = set(decided.cancel)
        theirs[:] = [replace(d, status="cancelled") if d.delivery_id in cancelled else d for d in theirs]
        result.cancel.extend(decided.cancel)
        for new in decided.create:
            delivery_id = new_id()
            theirs.append(ProcessorDelivery(delivery_id, new.kind, new.recipient, new.purpose, new.consent_event_id,
                                            "pending"))
            result.create.append((i, delivery_id, new))
    return result


def may_send(delivery: ProcessorDelivery, current: ConsentView | None, processors: dict[str, set[str]]) -> bool:
    """Checked again just before sending: a share goes out only on the grant that is still the newest."""
    if delivery.kind == REVOKED:
        return True
    return (
        current is not None and current.granted and current.event_id == delivery.consent_event_id
        and delivery.purpose in processors.get(delivery.recipient, set())
    )


def gives_up(attempts_made: int, max_attempts: int) -> bool:
    """Retries end: after the last allowed attempt a delivery is failed for good, not rescheduled."""
    return attempts_made >= max_attempts


def retry_delay(attempts: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter, so failing processors are not hammered in lockstep."""
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)


LEGACY_KEY_ID = "legacy"


@dataclass(frozen=True)
class AddressHash:
    key_id: str
    digest: bytes


class SuppressionKeys:
    """HMAC-SHA256 keys of suppression hashes, apart from every other secret. New hashes use the
    current key; a lookup tries every live key, so rotating never un-suppresses anyone."""

    def __init__(self, keys: dict[str, str], current: str) -> None:
        if current not in keys:
            raise ValueError(f"the current suppression key {current!r} is not among the configured keys")
        self._keys = {key_id: secret.encode() for key_id, secret in keys.items()}
        self.current_id = current

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def with_legacy(self, secret: str) -> "SuppressionKeys":
        """Also look up hashes made before keys had ids (under the unsubscribe secret)."""
        keys = {k: v.decode() for k, v in self._keys.items()} | {LEGACY_KEY_ID: secret}
        return SuppressionKeys(keys, self.current_id)

    def _hash(self, key_id: str, email: str) -> AddressHash:
        normalized = email.strip().lower().encode()
        return AddressHash(key_id, hmac.new(self._keys[key_id], normalized, hashlib.sha256).digest())

    def current(self, email: str) -> AddressHash:
        return self._hash(self.current_id, email)

    def every(self, email: str) -> list[AddressHash]:
        return [self._hash(key_id, email) for key_id in sorted(self._keys)]
