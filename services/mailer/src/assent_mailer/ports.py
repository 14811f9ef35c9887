"""What the mailer's use cases and its dispatcher need of storage: `storage.PgMailerStore` on PostgreSQL,
`fakes.MemoryMailerStore` in memory. Every method runs in the caller's unit of work; "now" is the
database's clock (the fake's own). A delivery is a row by column name (`Row`): the columns of `deliveries`."""

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from assent_mailer.domain import AddressHash, ConsentView, NewDelivery, ProcessorDelivery
from assent_shared.events import Event
from assent_shared.uow import Publishing, UnitOfWork

Row = Mapping[str, Any]


@dataclass(frozen=True)
class NewWebhook:
    """A planned processor delivery with what its row needs besides the plan."""

    delivery_id: UUID
    subject_id: UUID
    planned: NewDelivery
    traceparent: str | None


class MailerStore(Publishing, Protocol):
    def savepoint(self) -> AbstractAsyncContextManager:
        """A block whose writes are undone alone when it raises; the transaction around it goes on."""

    async def lock_subject(self, subject_id: UUID) -> None:
        """Serialize the events of one subject so two plans never race each other."""

    async def lock_subjects(self, subject_ids: list[UUID]) -> None:
        """`lock_subject` for many, in one order (two transactions taking the same ones never deadlock)."""

    async def upsert_contact(self, subject_id: UUID, email: str, locale: str | None = None) -> bool:
        """False when the subject was erased: a redelivered registration must not bring them back.
        A change of address without a language keeps the language known."""

    async def locale_of(self, subject_id: UUID) -> str | None: ...

    async def contact_status(self, subject_id: UUID) -> str | None:
        """'known', 'erased', or None for a subject the mailer never heard of."""

    async def email_of(self, subject_id: UUID) -> str | None: ...

    async def consent_of(self, subject_id: UUID, purpose: str, recipient: str) -> ConsentView | None: ...

    async def consents_of(self, subject_ids: list[UUID]) -> dict[UUID, list[ConsentView]]:
        """The views held of those subjects, by subject (one without any is left out)."""

    async def apply_consents(self, views: list[tuple[UUID, ConsentView]]) -> None:
        """One view per (subject, purpose, recipient); a view already at or above its seq stays."""

    async def consents_at(self, keys: list[tuple[UUID, str, str]]) -> dict[tuple[UUID, str, str], ConsentView]:
        """The views held of those (subject, purpose, recipient) keys, in one read."""

    async def emails_of(self, subject_ids: list[UUID]) -> dict[UUID, str]:
        """The addresses of those subjects who are known and not erased."""

    async def processor_registry(self) -> dict[str, Row]:
        """Every processor by id: processor_id, name, endpoint_url, purposes, signing_secret."""

    async def processors(self) -> dict[str, set[str]]: ...

    async def processor(self, processor_id: str) -> Row | None:
        """processor_id, name, endpoint_url, purposes, signing_secret."""

    async def upsert_processor(self, processor_id: str, name: str, endpoint_url: str,
                               purposes: list[str], signing_secret: str) -> None: ...

    async def subjects_granting(self, processor_id: str) -> list[UUID]: ...

    async def processor_deliveries(self, subject_ids: list[UUID]) -> dict[UUID, list[ProcessorDelivery]]:
        """By subject, locked: a share the dispatcher is sending is read once its outcome commits."""

    async def insert_webhook_deliveries(self, new: list["NewWebhook"]) -> None:
        """Pending processor deliveries, those of a dedupe key already held left out."""

    async def insert_delivery(self, *, delivery_id: UUID, dedupe_key: str, subject_id: UUID,
                              kind: str, channel: str, recipient: str, purpose: str | None = None,
                              consent_event_id: str | None = None, content: dict | None = None) -> bool:
        """False when a delivery of the dedupe key exists."""

    async def cancel(self, delivery_ids: list[UUID]) -> list[Row]:
        """The pending ones among them, cancelled."""

    async def cancel_all_pending(self, subject_id: UUID) -> list[Row]:
        """Every pending delivery of the subject but revocations."""

    async def claim_due(self, limit: int) -> list[Row]:
        """Due deliveries, oldest due first, locked so that other replicas skip them until this transaction ends."""

    async def mail_delivery(self, *, delivery_id: UUID | None = None, dedupe_key: str | None = None,
                            lock: bool) -> Row | None:
        """An email delivery by its id or its dedupe key; `lock`: for a change of its status."""

    async def mark_sent(self, delivery_id: UUID) -> None: ...

    async def mark_all_sent(self, delivery_ids: list[UUID], forget: list[UUID]) -> None:
        """`mark_sent` for a batch; the content of those in `forget` is dropped as well."""

    async def publish_all(self, events: Sequence[Event]) -> None:
        """`publish` for a batch, in order."""

    async def forget_content(self, delivery_id: UUID) -> None: ...

    async def forget_contents(self, subject_id: UUID) -> None:
        """Erasure: what a subject's deliveries carried (sealed replies, tokens) goes with them."""

    async def mark_status(self, delivery_id: UUID, status: str) -> None: ...

    async def mark_failed(self, delivery_id: UUID, error: str) -> None: ...

    async def schedule_retry(self, delivery_id: UUID, at: datetime, error: str) -> None: ...

    async def deliveries_of(self, subject_id: UUID, after: tuple[datetime, UUID] | None = None,
                            limit: int | None = None) -> list[Row]:
        """In (created_at, delivery_id) order, from after `after`."""

    async def processor_page(self, after: str | None, limit: int) -> list[Row]:
        """Processors by id, from after `after`; never their signing secret."""

    async def deliveries_to(self, processor_id: str, before: tuple[datetime, UUID] | None,
                            limit: int) -> list[Row]:
        """A processor's webhook deliveries in (created_at, delivery_id) order, newest first, from before `before`."""

    async def newsletter_audience(self) -> list[UUID]: ...

    async def withdraw_locally(self, subject_id: UUID, purpose: str) -> None:
        """Stop at once on an unsubscribe; the consent service's ConsentRevoked (higher seq) follows."""

    async def erase_contact(self, subject_id: UUID) -> None: ...

    async def cancel_pending_mail(self, subject_id: UUID, purpose: str) -> list[Row]: ...

    async def suppression_of(self, hashes: list[AddressHash]) -> Row | None:
        """key_id, email_hash, reason of the address under any of its hashes (one per live key)."""

    async def suppress(self, address: AddressHash, reason: str) -> None: ...

    async def forget_suppression(self, hashes: list[AddressHash]) -> None: ...

    async def suppression_key_ids(self) -> set[str]: ...

    async def prune_suppressions(self, keep_seconds: float) -> int:
        """Deletes the hashes not seen for `keep_seconds`; returns how many."""

    async def withdraw_all(self, subject_id: UUID) -> None:
        """Keep each key's seq, so a late grant older than the erasure still changes nothing."""

    async def waiting_deliveries(self) -> tuple[dict[str, int], float]:
        """Pending deliveries per channel, and the age of the oldest in seconds."""


Mailers = UnitOfWork[MailerStore]
