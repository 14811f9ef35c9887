"""All of the mailer's SQL: `PgMailerStore`, the port (`ports.MailerStore`) on one connection."""

import json
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from uuid import UUID

import asyncpg

from assent_mailer.domain import AddressHash, ConsentView, ProcessorDelivery
from assent_mailer.ports import NewWebhook
from assent_shared import outbox
from assent_shared.events import Event
from assent_shared.tracing import current_traceparent
from assent_shared.uow import PgStore

_DELIVERY = ("delivery_id, subject_id, kind, channel, recipient, purpose, consent_event_id, status, attempts, "
             "content, created_at, sent_at, traceparent")


_CANCELLED = "RETURNING delivery_id, subject_id, kind, consent_event_id, recipient"


class PgMailerStore(PgStore):
    def savepoint(self) -> AbstractAsyncContextManager:
        return self.conn.transaction()

    async def lock_subject(self, subject_id: UUID) -> None:
        """Serialize the events of one subject so two plans never race each other."""
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))", str(subject_id))


    async def lock_subjects(self, subject_ids: list[UUID]) -> None:
        """`lock_subject` for many, in one order (two transactions taking the same ones never deadlock)."""
        await self.conn.execute(
            """SELECT count(pg_advisory_xact_lock(hashtextextended(s, 7)))
               FROM (SELECT DISTINCT s FROM unnest($1::text[]) AS s ORDER BY s) AS sorted""",
            [str(s) for s in subject_ids],
        )


    async def upsert_contact(self, subject_id: UUID, email: str, locale: str | None = None) -> bool:
        """False when the subject was erased: a redelivered registration must not bring them back.
        A change of address without a language keeps the language known."""
        status = await self.conn.execute(
            """INSERT INTO contacts (subject_id, email, locale) VALUES ($1, $2, $3)
               ON CONFLICT (subject_id) DO UPDATE SET email = EXCLUDED.email,
                   locale = coalesce(EXCLUDED.locale, contacts.locale), updated_at = now()
               WHERE contacts.erased_at IS NULL""",
            subject_id, email, locale,
        )
        return status.endswith(" 1")


    async def locale_of(self, subject_id: UUID) -> str | None:
        return await self.conn.fetchval("SELECT locale FROM contacts WHERE subject_id = $1 AND erased_at IS NULL",
                                        subject_id)


    async def contact_status(self, subject_id: UUID) -> str | None:
        """'known', 'erased', or None for a subject the mailer never heard of."""
        return await self.conn.fetchval(
            "SELECT CASE WHEN erased_at IS NULL THEN 'known' ELSE 'erased' END FROM contacts WHERE subject_id = $1",
            subject_id,
        )


    async def email_of(self, subject_id: UUID) -> str | None:
        return await self.conn.fetchval("SELECT email FROM contacts WHERE subject_id = $1 AND erased_at IS NULL",
                                        subject_id)


    async def consent_of(self, subject_id: UUID, purpose: str, recipient: str) -> ConsentView | None:
        row = await self.conn.fetchrow(
            """SELECT purpose, recipient, granted, seq, event_id FROM consent_view
               WHERE subject_id = $1 AND purpose = $2 AND recipient = $3""",
            subject_id, purpose, recipient,
        )
        return ConsentView(**dict(row)) if row else None


    async def consents_of(self, subject_ids: list[UUID]) -> dict[UUID, list[ConsentView]]:
        rows = await self.conn.fetch(
            """SELECT subject_id, purpose, recipient, granted, seq, event_id FROM consent_view
               WHERE subject_id = ANY($1::uuid[])""",
            subject_ids,
        )
        held: dict[UUID, list[ConsentView]] = {}
        for r in rows:
            held.setdefault(r["subject_id"], []).append(
                ConsentView(r["purpose"], r["recipient"], r["granted"], r["seq"], r["event_id"]))
        return held


    async def apply_consents(self, views: list[tuple[UUID, ConsentView]]) -> None:
        """One view per (subject, purpose, recipient); a view already at or above its seq stays."""
        await self.conn.execute(
            """INSERT INTO consent_view (subject_id, purpose, recipient, granted, seq, event_id)
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bool[], $5::bigint[], $6::text[])
               ON CONFLICT (subject_id, purpose, recipient) DO UPDATE
               SET granted = EXCLUDED.granted, seq = EXCLUDED.seq, event_id = EXCLUDED.event_id
               WHERE consent_view.seq < EXCLUDED.seq""",
            [s for s, _ in views], [v.purpose for _, v in views], [v.recipient for _, v in views],
            [v.granted for _, v in views], [v.seq for _, v in views], [v.event_id for _, v in views],
        )


    async def consents_at(self, keys: list[tuple[UUID, str, str]]) -> dict[tuple[UUID, str, str], ConsentView]:
        rows = await self.conn.fetch(
            """SELECT subject_id, purpose, recipient, granted, seq, event_id FROM consent_view
               WHERE (subject_id, purpose, recipient) IN (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]))""",
            [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
        )
        return {(r["subject_id"], r["purpose"], r["recipient"]):
                ConsentView(r["purpose"], r["recipient"], r["granted"], r["seq"], r["event_id"]) for r in rows}


    async def emails_of(self, subject_ids: list[UUID]) -> dict[UUID, str]:
        rows = await self.conn.fetch(
            "SELECT subject_id, email FROM contacts WHERE subject_id = ANY($1::uuid[]) AND erased_at IS NULL "
            "AND email IS NOT NULL",
            subject_ids,
        )
        return {r["subject_id"]: r["email"] for r in rows}


    async def processor_registry(self) -> dict[str, asyncpg.Record]:
        rows = await self.conn.fetch("SELECT processor_id, name, endpoint_url, purposes, signing_secret FROM processors")
        return {r["processor_id"]: r for r in rows}


    async def processors(self) -> dict[str, set[str]]:
        rows = await self.conn.fetch("SELECT processor_id, purposes FROM processors")
        return {r["processor_id"]: set(r["purposes"]) for r in rows}


    async def processor(self, processor_id: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            "SELECT processor_id, name, endpoint_url, purposes, signing_secret FROM processors WHERE processor_id = $1",
            processor_id,
        )


    async def upsert_processor(self, processor_id: str, name: str, endpoint_url: str,
                               purposes: list[str], signing_secret: str) -> None:
        await self.conn.execute(
            """INSERT INTO processors (processor_id, name, endpoint_url, purposes, signing_secret)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (processor_id) DO UPDATE SET name = EXCLUDED.name, endpoint_url = EXCLUDED.endpoint_url,
                   purposes = EXCLUDED.purposes, signing_secret = EXCLUDED.signing_secret, updated_at = now()""",
            processor_id, name, endpoint_url, purposes, signing_secret,
        )


    async def subjects_granting(self, processor_id: str) -> list[UUID]:
        rows = await self.conn.fetch(
            "SELECT DISTINCT subject_id FROM consent_view WHERE recipient = $1 AND granted", processor_id
        )
        return [r["subject_id"] for r in rows]


    async def processor_deliveries(self, subject_ids: list[UUID]) -> dict[UUID, list[ProcessorDelivery]]:
        """Locked: a share the dispatcher is sending is read once its outcome (sent, failed) commits, so a
        revoke arriving mid-send plans the revocation instead of seeing the share still pending."""
        rows = await self.conn.fetch(
            """SELECT subject_id, delivery_id, kind, recipient, purpose, consent_event_id, status FROM deliveries
               WHERE subject_id = ANY($1::uuid[]) AND channel = 'webhook' FOR UPDATE""",
            subject_ids,
        )
        held: dict[UUID, list[ProcessorDelivery]] = {}
        for r in rows:
            held.setdefault(r["subject_id"], []).append(ProcessorDelivery(
                r["delivery_id"], r["kind"], r["recipient"], r["purpose"], r["consent_event_id"], r["status"]))
        return held


    async def insert_webhook_deliveries(self, new: list[NewWebhook]) -> None:
        """Pending processor deliveries, those of a dedupe key already held left out."""
        await self.conn.execute(
            """INSERT INTO deliveries (delivery_id, dedupe_key, subject_id, kind, channel, recipient, purpose,
                                       consent_event_id, traceparent)
               SELECT d, k, s, kind, 'webhook', r, p, e, t
               FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
                           $8::text[]) AS n(d, k, s, kind, r, p, e, t)
               ON CONFLICT (dedupe_key) DO NOTHING""",
            [n.delivery_id for n in new], [n.planned.dedupe_key for n in new], [n.subject_id for n in new],
            [n.planned.kind for n in new], [n.planned.recipient for n in new], [n.planned.purpose for n in new],
            [n.planned.consent_event_id for n in new], [n.traceparent for n in new],
        )


    async def insert_delivery(self, *, delivery_id: UUID, dedupe_key: str, subject_id: UUID,
                              kind: str, channel: str, recipient: str, purpose: str | None = None,
                              consent_event_id: str | None = None, content: dict | None = None) -> bool:
        status = await self.conn.execute(
            """INSERT INTO deliveries (delivery_id, dedupe_key, subject_id, kind, channel, recipient, purpose,
                                       consent_event_id, content, traceparent)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10) ON CONFLICT (dedupe_key) DO NOTHING""",
            delivery_id, dedupe_key, subject_id, kind, channel, recipient, purpose, consent_event_id,
            json.dumps(content) if content is not None else None, current_traceparent(),
        )
        return status.endswith(" 1")




    async def cancel(self, delivery_ids: list[UUID]) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "UPDATE deliveries SET status = 'cancelled' WHERE delivery_id = ANY($1::uuid[]) AND status = 'pending' "
            + _CANCELLED,
            delivery_ids,
        )


    async def cancel_all_pending(self, subject_id: UUID) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "UPDATE deliveries SET status = 'cancelled' WHERE subject_id = $1 AND status = 'pending' "
            "AND kind <> 'subject.revoked' " + _CANCELLED,
            subject_id,
        )


    async def claim_due(self, limit: int) -> list[asyncpg.Record]:
        """Due deliveries, locked so that other replicas skip them until this transaction ends."""
        return await self.conn.fetch(
            f"""SELECT {_DELIVERY} FROM deliveries
                WHERE status = 'pending' AND next_attempt_at <= now()
                ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED""",
            limit,
        )


    async def mail_delivery(self, *, delivery_id: UUID | None = None, dedupe_key: str | None = None,
                            lock: bool) -> asyncpg.Record | None:
        """An email delivery by its id or its dedupe key; `lock`: for a change of its status."""
        return await self.conn.fetchrow(
            f"""SELECT {_DELIVERY} FROM deliveries WHERE channel = 'email' AND (delivery_id = $1 OR dedupe_key = $2)
                {"FOR UPDATE" if lock else ""}""",
            delivery_id, dedupe_key,
        )


    async def mark_sent(self, delivery_id: UUID) -> None:
        await self.conn.execute(
            "UPDATE deliveries SET status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = NULL "
            "WHERE delivery_id = $1",
            delivery_id,
        )


    async def mark_all_sent(self, delivery_ids: list[UUID], forget: list[UUID]) -> None:
        """`mark_sent` for a batch; the content of those in `forget` is dropped as well."""
        await self.conn.execute(
            """UPDATE deliveries SET status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = NULL,
                   content = CASE WHEN delivery_id = ANY($2::uuid[]) THEN NULL ELSE content END
               WHERE delivery_id = ANY($1::uuid[])""",
            delivery_ids, forget,
        )


    async def publish_all(self, events: Sequence[Event]) -> None:
        await outbox.enqueue_many(self.conn, events)


    async def forget_content(self, delivery_id: UUID) -> None:
        await self.conn.execute("UPDATE deliveries SET content = NULL WHERE delivery_id = $1", delivery_id)


    async def forget_contents(self, subject_id: UUID) -> None:
        """Erasure: what a subject's deliveries carried (sealed replies, tokens) goes with them."""
        await self.conn.execute("UPDATE deliveries SET content = NULL WHERE subject_id = $1 AND content IS NOT NULL",
                           subject_id)


    async def mark_status(self, delivery_id: UUID, status: str) -> None:
        await self.conn.execute("UPDATE deliveries SET status = $2 WHERE delivery_id = $1", delivery_id, status)


    async def mark_failed(self, delivery_id: UUID, error: str) -> None:
        await self.conn.execute(
            "UPDATE deliveries SET status = 'failed', attempts = attempts + 1, last_error = $2 WHERE delivery_id = $1",
            delivery_id, error,
        )


    async def schedule_retry(self, delivery_id: UUID, at: datetime, error: str) -> None:
        await self.conn.execute(
            "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3 WHERE delivery_id = $1",
            delivery_id, at, error,
        )


    async def deliveries_of(self, subject_id: UUID, after: tuple[datetime, UUID] | None = None,
                            limit: int | None = None) -> list[asyncpg.Record]:
        """In (created_at, delivery_id) order, from after `after`."""
        since, last_id = after or (None, None)
        return await self.conn.fetch(
            f"""SELECT {_DELIVERY} FROM deliveries WHERE subject_id = $1
                AND ($2::timestamptz IS NULL OR (created_at, delivery_id) > ($2, $3::uuid))
                ORDER BY created_at, delivery_id LIMIT $4""",
            subject_id, since, last_id, limit,
        )


    async def processor_page(self, after: str | None, limit: int) -> list[asyncpg.Record]:
        """Processors by id, from after `after`; never their signing secret."""
        return await self.conn.fetch(
            """SELECT processor_id, name, endpoint_url, purposes, updated_at FROM processors
               WHERE $1::text IS NULL OR processor_id > $1 ORDER BY processor_id LIMIT $2""",
            after, limit,
        )


    async def deliveries_to(self, processor_id: str, before: tuple[datetime, UUID] | None,
                            limit: int) -> list[asyncpg.Record]:
        """A processor's webhook deliveries in (created_at, delivery_id) order, newest first, from before `before`."""
        since, last_id = before or (None, None)
        return await self.conn.fetch(
            f"""SELECT {_DELIVERY} FROM deliveries WHERE channel = 'webhook' AND recipient = $1
                AND ($2::timestamptz IS NULL OR (created_at, delivery_id) < ($2, $3::uuid))
                ORDER BY created_at DESC, delivery_id DESC LIMIT $4""",
            processor_id, since, last_id, limit,
        )


    async def newsletter_audience(self) -> list[UUID]:
        rows = await self.conn.fetch(
            """SELECT v.subject_id FROM consent_view v JOIN contacts c USING (subject_id)
               WHERE v.purpose = 'newsletter' AND v.recipient = 'first_party' AND v.granted
                 AND c.email IS NOT NULL AND c.erased_at IS NULL"""
        )
        return [r["subject_id"] for r in rows]


    async def withdraw_locally(self, subject_id: UUID, purpose: str) -> None:
        """Stop at once on an unsubscribe; the consent service's ConsentRevoked (higher seq) follows."""
        await self.conn.execute(
            "UPDATE consent_view SET granted = false WHERE subject_id = $1 AND purpose = $2 AND recipient = 'first_party'",
            subject_id, purpose,
        )


    async def erase_contact(self, subject_id: UUID) -> None:
        await self.conn.execute(
            """INSERT INTO contacts (subject_id, email, erased_at) VALUES ($1, NULL, now())
               ON CONFLICT (subject_id) DO UPDATE SET email = NULL, locale = NULL, erased_at = now(), updated_at = now()""",
            subject_id,
        )


    async def cancel_pending_mail(self, subject_id: UUID, purpose: str) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "UPDATE deliveries SET status = 'cancelled' WHERE subject_id = $1 AND purpose = $2 "
            "AND channel = 'email' AND status = 'pending' " + _CANCELLED,
            subject_id, purpose,
        )


    async def suppression_of(self, hashes: list[AddressHash]) -> asyncpg.Record | None:
        """The suppression of an address under any of its hashes (one per live key)."""
        return await self.conn.fetchrow(
            """SELECT key_id, email_hash, reason FROM suppressions
               WHERE (key_id, email_hash) IN (SELECT * FROM unnest($1::text[], $2::bytea[])) LIMIT 1""",
            [h.key_id for h in hashes], [h.digest for h in hashes],
        )


    async def suppress(self, address: AddressHash, reason: str) -> None:
        await self.conn.execute(
            """INSERT INTO suppressions (key_id, email_hash, reason) VALUES ($1, $2, $3)
               ON CONFLICT (key_id, email_hash) DO UPDATE SET seen_at = now()""",
            address.key_id, address.digest, reason,
        )


    async def forget_suppression(self, hashes: list[AddressHash]) -> None:
        await self.conn.execute(
            "DELETE FROM suppressions WHERE (key_id, email_hash) IN (SELECT * FROM unnest($1::text[], $2::bytea[]))",
            [h.key_id for h in hashes], [h.digest for h in hashes],
        )


    async def suppression_key_ids(self) -> set[str]:
        return {r["key_id"] for r in await self.conn.fetch("SELECT DISTINCT key_id FROM suppressions")}


    async def prune_suppressions(self, keep_seconds: float) -> int:
        status = await self.conn.execute("DELETE FROM suppressions WHERE seen_at < now() - make_interval(secs => $1)",
                                    keep_seconds)
        return int(status.split()[-1])


    async def withdraw_all(self, subject_id: UUID) -> None:
        """Keep each key's seq, so a late grant older than the erasure still changes nothing."""
        await self.conn.execute("UPDATE consent_view SET granted = false WHERE subject_id = $1", subject_id)


    async def waiting_deliveries(self) -> tuple[dict[str, int], float]:
        rows = await self.conn.fetch(
            "SELECT channel, count(*) AS n FROM deliveries WHERE status = 'pending' GROUP BY channel"
        )
        oldest = await self.conn.fetchval(
            "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM deliveries WHERE status = 'pending'"
        )
        return {r["channel"]: r["n"] for r in rows}, float(oldest)
