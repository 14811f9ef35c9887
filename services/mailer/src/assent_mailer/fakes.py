"""`ports.MailerStore` in memory, for the unit lane (development only: the wheel leaves this module out).

A delivery is a dict of the `deliveries` columns; every read hands out copies, as a query's rows are."""

import copy
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

from assent_mailer.domain import FIRST_PARTY, REVOKED, AddressHash, ConsentView, ProcessorDelivery
from assent_mailer.ports import NewWebhook, Row
from assent_shared.events import Event
from assent_shared.fakes import MemoryStore, MemoryUnitOfWork

_DELIVERY = ("delivery_id", "subject_id", "kind", "channel", "recipient", "purpose", "consent_event_id", "status",
             "attempts", "content", "created_at", "sent_at", "traceparent")


def _row(delivery: dict) -> dict:
    return {k: copy.deepcopy(delivery[k]) for k in _DELIVERY}


class MemoryMailerStore(MemoryStore):
    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__()
        self.clock = clock
        self.contacts: dict[UUID, dict] = {}
        self.consents: dict[tuple[UUID, str, str], ConsentView] = {}
        self.registry: dict[str, dict] = {}
        self.deliveries: dict[UUID, dict] = {}
        self.suppressions: dict[tuple[str, bytes], dict] = {}

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        before = {k: v if callable(v) else copy.deepcopy(v) for k, v in self.__dict__.items()}
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    async def lock_subject(self, subject_id: UUID) -> None:
        """One test runs one use case at a time: nothing to serialize."""

    async def lock_subjects(self, subject_ids: list[UUID]) -> None:
        """As `lock_subject`."""

    async def upsert_contact(self, subject_id: UUID, email: str, locale: str | None = None) -> bool:
        held = self.contacts.get(subject_id)
        if held is not None and held["erased_at"] is not None:
            return False
        self.contacts[subject_id] = {"email": email, "locale": locale or (held or {}).get("locale"),
                                     "erased_at": None}
        return True

    def _known(self, subject_id: UUID) -> dict | None:
        held = self.contacts.get(subject_id)
        return held if held is not None and held["erased_at"] is None else None

    async def locale_of(self, subject_id: UUID) -> str | None:
        return (self._known(subject_id) or {}).get("locale")

    async def contact_status(self, subject_id: UUID) -> str | None:
        held = self.contacts.get(subject_id)
        return None if held is None else "known" if held["erased_at"] is None else "erased"

    async def email_of(self, subject_id: UUID) -> str | None:
        return (self._known(subject_id) or {}).get("email")

    async def consent_of(self, subject_id: UUID, purpose: str, recipient: str) -> ConsentView | None:
        return self.consents.get((subject_id, purpose, recipient))

    async def consents_of(self, subject_ids: list[UUID]) -> dict[UUID, list[ConsentView]]:
        held: dict[UUID, list[ConsentView]] = {}
        for (s, _, _), v in self.consents.items():
            if s in subject_ids:
                held.setdefault(s, []).append(v)
        return held

    async def apply_consents(self, views: list[tuple[UUID, ConsentView]]) -> None:
        for subject_id, view in views:
            held = self.consents.get((subject_id, view.purpose, view.recipient))
            if held is None or held.seq < view.seq:
                self.consents[(subject_id, view.purpose, view.recipient)] = view

    async def consents_at(self, keys: list[tuple[UUID, str, str]]) -> dict[tuple[UUID, str, str], ConsentView]:
        return {k: self.consents[k] for k in keys if k in self.consents}

    async def emails_of(self, subject_ids: list[UUID]) -> dict[UUID, str]:
        return {s: e for s in subject_ids if (e := (self._known(s) or {}).get("email")) is not None}

    async def processor_registry(self) -> dict[str, Row]:
        return {p: {k: v for k, v in r.items() if k != "updated_at"} for p, r in self.registry.items()}

    async def processors(self) -> dict[str, set[str]]:
        return {p: set(r["purposes"]) for p, r in self.registry.items()}

    async def processor(self, processor_id: str) -> Row | None:
        found = self.registry.get(processor_id)
        return {k: v for k, v in found.items() if k != "updated_at"} if found else None

    async def upsert_processor(self, processor_id: str, name: str, endpoint_url: str, purposes: list[str],
                               signing_secret: str) -> None:
        self.registry[processor_id] = {"processor_id": processor_id, "name": name, "endpoint_url": endpoint_url,
                                       "purposes": list(purposes), "signing_secret": signing_secret,
                                       "updated_at": self.clock()}

    async def subjects_granting(self, processor_id: str) -> list[UUID]:
        return list(dict.fromkeys(s for (s, _, r), v in self.consents.items() if r == processor_id and v.granted))

    async def processor_deliveries(self, subject_ids: list[UUID]) -> dict[UUID, list[ProcessorDelivery]]:
        held: dict[UUID, list[ProcessorDelivery]] = {}
        for d in self.deliveries.values():
            if d["subject_id"] in subject_ids and d["channel"] == "webhook":
                held.setdefault(d["subject_id"], []).append(ProcessorDelivery(
                    d["delivery_id"], d["kind"], d["recipient"], d["purpose"], d["consent_event_id"], d["status"]))
        return held

    async def insert_webhook_deliveries(self, new: list[NewWebhook]) -> None:
        for n in new:
            await self.insert_delivery(delivery_id=n.delivery_id, dedupe_key=n.planned.dedupe_key,
                                       subject_id=n.subject_id, kind=n.planned.kind, channel="webhook",
                                       recipient=n.planned.recipient, purpose=n.planned.purpose,
                                       consent_event_id=n.planned.consent_event_id)

    async def insert_delivery(self, *, delivery_id: UUID, dedupe_key: str, subject_id: UUID, kind: str, channel: str,
                              recipient: str, purpose: str | None = None, consent_event_id: str | None = None,
                              content: dict | None = None) -> bool:
        if any(d["dedupe_key"] == dedupe_key for d in self.deliveries.values()):
            return False
        now = self.clock()
        self.deliveries[delivery_id] = {
            "delivery_id": delivery_id, "dedupe_key": dedupe_key, "subject_id": subject_id, "kind": kind,
            "channel": channel, "recipient": recipient, "purpose": purpose, "consent_event_id": consent_event_id,
            "status": "pending", "attempts": 0, "content": copy.deepcopy(content), "created_at": now, "sent_at": None,
            "traceparent": None, "next_attempt_at": now, "last_error": None,
        }
        return True

    def _cancel_where(self, matches: Callable[[dict], bool]) -> list[Row]:
        cancelled = []
        for d in self.deliveries.values():
            if d["status"] == "pending" and matches(d):
                d["status"] = "cancelled"
                cancelled.append(_row(d))
        return cancelled

    async def cancel(self, delivery_ids: list[UUID]) -> list[Row]:
        return self._cancel_where(lambda d: d["delivery_id"] in delivery_ids)

    async def cancel_all_pending(self, subject_id: UUID) -> list[Row]:
        return self._cancel_where(lambda d: d["subject_id"] == subject_id and d["kind"] != REVOKED)

    async def cancel_pending_mail(self, subject_id: UUID, purpose: str) -> list[Row]:
        return self._cancel_where(lambda d: d["subject_id"] == subject_id and d["purpose"] == purpose
                                  and d["channel"] == "email")

    async def claim_due(self, limit: int) -> list[Row]:
        due = [d for d in self.deliveries.values() if d["status"] == "pending" and d["next_attempt_at"] <= self.clock()]
        return [_row(d) for d in sorted(due, key=lambda d: d["next_attempt_at"])[:limit]]

    async def mail_delivery(self, *, delivery_id: UUID | None = None, dedupe_key: str | None = None,
                            lock: bool) -> Row | None:
        return next((_row(d) for d in self.deliveries.values() if d["channel"] == "email"
                     and (d["delivery_id"] == delivery_id or d["dedupe_key"] == dedupe_key)), None)

    async def mark_sent(self, delivery_id: UUID) -> None:
        d = self.deliveries[delivery_id]
        d.update(status="sent", sent_at=self.clock(), attempts=d["attempts"] + 1, last_error=None)

    async def mark_all_sent(self, delivery_ids: list[UUID], forget: list[UUID]) -> None:
        for delivery_id in delivery_ids:
            await self.mark_sent(delivery_id)
        for delivery_id in forget:
            await self.forget_content(delivery_id)

    async def publish_all(self, events: Sequence[Event]) -> None:
        for event in events:
            await self.publish(event)

    async def forget_content(self, delivery_id: UUID) -> None:
        self.deliveries[delivery_id]["content"] = None

    async def forget_contents(self, subject_id: UUID) -> None:
        for d in self.deliveries.values():
            if d["subject_id"] == subject_id:
                d["content"] = None

    async def mark_status(self, delivery_id: UUID, status: str) -> None:
        self.deliveries[delivery_id]["status"] = status

    async def mark_failed(self, delivery_id: UUID, error: str) -> None:
        d = self.deliveries[delivery_id]
        d.update(status="failed", attempts=d["attempts"] + 1, last_error=error)

    async def schedule_retry(self, delivery_id: UUID, at: datetime, error: str) -> None:
        d = self.deliveries[delivery_id]
        d.update(attempts=d["attempts"] + 1, next_attempt_at=at, last_error=error)

    async def deliveries_of(self, subject_id: UUID, after: tuple[datetime, UUID] | None = None,
                            limit: int | None = None) -> list[Row]:
        found = sorted((d for d in self.deliveries.values() if d["subject_id"] == subject_id
                        and (after is None or (d["created_at"], d["delivery_id"]) > after)),
                       key=lambda d: (d["created_at"], d["delivery_id"]))
        return [_row(d) for d in found][:limit]

    async def processor_page(self, after: str | None, limit: int) -> list[Row]:
        return [{k: v for k, v in self.registry[p].items() if k != "signing_secret"}
                for p in sorted(self.registry) if after is None or p > after][:limit]

    async def deliveries_to(self, processor_id: str, before: tuple[datetime, UUID] | None, limit: int) -> list[Row]:
        found = sorted((d for d in self.deliveries.values() if d["channel"] == "webhook"
                        and d["recipient"] == processor_id
                        and (before is None or (d["created_at"], d["delivery_id"]) < before)),
                       key=lambda d: (d["created_at"], d["delivery_id"]), reverse=True)
        return [_row(d) for d in found][:limit]

    async def newsletter_audience(self) -> list[UUID]:
        return [s for (s, p, r), v in self.consents.items()
                if p == "newsletter" and r == FIRST_PARTY and v.granted and self._email_known(s)]

    def _email_known(self, subject_id: UUID) -> bool:
        return (self._known(subject_id) or {}).get("email") is not None

    async def withdraw_locally(self, subject_id: UUID, purpose: str) -> None:
        key = (subject_id, purpose, FIRST_PARTY)
        if key in self.consents:
            self.consents[key] = replace(self.consents[key], granted=False)

    async def erase_contact(self, subject_id: UUID) -> None:
        self.contacts[subject_id] = {"email": None, "locale": None, "erased_at": self.clock()}

    async def suppression_of(self, hashes: list[AddressHash]) -> Row | None:
        for h in hashes:
            if (found := self.suppressions.get((h.key_id, h.digest))) is not None:
                return {"key_id": h.key_id, "email_hash": h.digest, "reason": found["reason"]}
        return None

    async def suppress(self, address: AddressHash, reason: str) -> None:
        held = self.suppressions.get((address.key_id, address.digest))
        self.suppressions[(address.key_id, address.digest)] = {"reason": held["reason"] if held else reason,
                                                               "seen_at": self.clock()}

    async def forget_suppression(self, hashes: list[AddressHash]) -> None:
        for h in hashes:
            self.suppressions.pop((h.key_id, h.digest), None)

    async def suppression_key_ids(self) -> set[str]:
        return {key_id for key_id, _ in self.suppressions}

    async def prune_suppressions(self, keep_seconds: float) -> int:
        cutoff = self.clock() - timedelta(seconds=keep_seconds)
        old = [k for k, s in self.suppressions.items() if s["seen_at"] < cutoff]
        for k in old:
            del self.suppressions[k]
        return len(old)

    async def withdraw_all(self, subject_id: UUID) -> None:
        for key, view in self.consents.items():
            if key[0] == subject_id:
                self.consents[key] = replace(view, granted=False)

    async def waiting_deliveries(self) -> tuple[dict[str, int], float]:
        pending = [d for d in self.deliveries.values() if d["status"] == "pending"]
        waiting: dict[str, int] = {}
        for d in pending:
            waiting[d["channel"]] = waiting.get(d["channel"], 0) + 1
        oldest = min((d["created_at"] for d in pending), default=None)
        return waiting, (self.clock() - oldest).total_seconds() if oldest else 0.0


def memory_mailers(clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> MemoryUnitOfWork[MemoryMailerStore]:
    return MemoryUnitOfWork(MemoryMailerStore(clock))
