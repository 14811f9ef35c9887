"""All of support's SQL: the PostgreSQL side of `ports.SupportStore`."""

from datetime import date, datetime
from uuid import UUID

import asyncpg

from assent_shared.uow import PgStore
from assent_support.domain import Inquiry, Message, NewInquiry, Thread, TopicCount

_INQUIRY = "inquiry_id, reference, category, user_id, email, want_reply, locale, status, received_at, updated_at"


def _inquiry(row: asyncpg.Record) -> Inquiry:
    return Inquiry(**{k: row[k] for k in _INQUIRY.split(", ")})


def _message(row: asyncpg.Record) -> Message:
    return Message(row["message_id"], row["author"], row["body"], row["created_at"])


class PgSupportStore(PgStore):
    async def count_client(self, client_key: str, window_seconds: int) -> int:
        """Counts one more message of the client in the current window; returns the window's total."""
        await self.conn.execute("DELETE FROM rate_limits WHERE window_start < now() - make_interval(secs => $1 * 2)",
                           window_seconds)
        return await self.conn.fetchval(
            """INSERT INTO rate_limits (client_key, window_start, count)
               VALUES ($1, to_timestamp(floor(extract(epoch FROM now()) / $2) * $2), 1)
               ON CONFLICT (client_key, window_start) DO UPDATE SET count = rate_limits.count + 1
               RETURNING count""",
            client_key, window_seconds,
        )

    async def is_erased(self, user_id: UUID) -> bool:
        return bool(await self.conn.fetchval("SELECT 1 FROM erased_users WHERE user_id = $1", user_id))

    async def insert_inquiry(self, inquiry_id: UUID, reference: str, new: NewInquiry,
                             message_id: UUID) -> Inquiry | None:
        """None when the reference is taken (try another)."""
        row = await self.conn.fetchrow(
            f"""INSERT INTO inquiries (inquiry_id, reference, category, user_id, email, want_reply, locale)
                VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (reference) DO NOTHING RETURNING {_INQUIRY}""",
            inquiry_id, reference, new.category, new.user_id, new.email, new.want_reply, new.locale,
        )
        if row is None:
            return None
        await self.add_message(inquiry_id, message_id, "person", new.message)
        await self.conn.execute(
            """INSERT INTO topic_counts (day, category, count)
               VALUES (($1::timestamptz AT TIME ZONE 'UTC')::date, $2, 1)
               ON CONFLICT (day, category) DO UPDATE SET count = topic_counts.count + 1""",
            row["received_at"], new.category,
        )
        return _inquiry(row)

    async def add_message(self, inquiry_id: UUID, message_id: UUID, author: str,
                          body: str) -> Message:
        row = await self.conn.fetchrow(
            """INSERT INTO inquiry_messages (message_id, inquiry_id, author, body) VALUES ($1, $2, $3, $4)
               RETURNING message_id, author, body, created_at""",
            message_id, inquiry_id, author, body,
        )
        return _message(row)

    async def set_status(self, inquiry_id: UUID, status: str) -> None:
        await self.conn.execute("UPDATE inquiries SET status = $2, updated_at = now() WHERE inquiry_id = $1",
                           inquiry_id, status)

    async def inquiry(self, inquiry_id: UUID, lock: bool = False) -> Inquiry | None:
        row = await self.conn.fetchrow(
            f"SELECT {_INQUIRY} FROM inquiries WHERE inquiry_id = $1" + (" FOR UPDATE" if lock else ""), inquiry_id
        )
        return _inquiry(row) if row else None

    async def thread(self, inquiry_id: UUID, lock: bool = False) -> Thread | None:
        found = await self.inquiry(inquiry_id, lock)
        if found is None:
            return None
        rows = await self.conn.fetch(
            """SELECT message_id, author, body, created_at FROM inquiry_messages
               WHERE inquiry_id = $1 ORDER BY created_at, message_id""",
            inquiry_id,
        )
        return Thread(found, tuple(_message(r) for r in rows))

    async def search(self, *, status: str | None, category: str | None,
                     after: tuple[datetime, UUID] | None, limit: int) -> list[Inquiry]:
        """Newest first, in (received_at, inquiry_id) descending order, from after `after`."""
        at, inquiry_id = after or (None, None)
        rows = await self.conn.fetch(
            f"""SELECT {_INQUIRY} FROM inquiries
                WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR category = $2)
                  AND ($3::timestamptz IS NULL OR (received_at, inquiry_id) < ($3, $4::uuid))
                ORDER BY received_at DESC, inquiry_id DESC LIMIT $5""",
            status, category, at, inquiry_id, limit,
        )
        return [_inquiry(r) for r in rows]

    async def inquiries_of(self, user_id: UUID, after: tuple[datetime, UUID] | None = None,
                           limit: int | None = None) -> list[UUID]:
        """Oldest first, in (received_at, inquiry_id) order, from after `after`."""
        at, inquiry_id = after or (None, None)
        rows = await self.conn.fetch(
            """SELECT inquiry_id FROM inquiries WHERE user_id = $1
                 AND ($2::timestamptz IS NULL OR (received_at, inquiry_id) > ($2, $3::uuid))
               ORDER BY received_at, inquiry_id LIMIT $4""",
            user_id, at, inquiry_id, limit,
        )
        return [r["inquiry_id"] for r in rows]

    async def anonymous_inquiries_by_address(self, email: str) -> list[UUID]:
        rows = await self.conn.fetch(
            "SELECT inquiry_id FROM inquiries WHERE user_id IS NULL AND lower(email) = lower($1) FOR UPDATE", email
        )
        return [r["inquiry_id"] for r in rows]

    async def delete_inquiries(self, inquiry_ids: list[UUID]) -> None:
        """Messages and answer links go with them (ON DELETE CASCADE); the topic counts stay."""
        await self.conn.execute("DELETE FROM inquiries WHERE inquiry_id = ANY($1::uuid[])", inquiry_ids)

    async def record_erased_user(self, user_id: UUID, erased_at: datetime) -> None:
        await self.conn.execute("INSERT INTO erased_users (user_id, erased_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                           user_id, erased_at)

    async def insert_token(self, token_hash: bytes, inquiry_id: UUID, expires_at: datetime) -> None:
        await self.conn.execute("INSERT INTO reply_tokens (token_hash, inquiry_id, expires_at) VALUES ($1, $2, $3)",
                           token_hash, inquiry_id, expires_at)

    async def token_opens(self, token_hash: bytes, inquiry_id: UUID) -> bool:
        return bool(await self.conn.fetchval(
            "SELECT 1 FROM reply_tokens WHERE token_hash = $1 AND inquiry_id = $2 AND expires_at > now()",
            token_hash, inquiry_id,
        ))

    async def topic_counts(self, since: date, until: date, bucket: str) -> list[TopicCount]:
        rows = await self.conn.fetch(
            """SELECT date_trunc($3, day)::date AS period, category, sum(count)::int AS count FROM topic_counts
               WHERE day >= $1 AND day <= $2 GROUP BY 1, 2 ORDER BY 1, 2""",
            since, until, bucket,
        )
        return [TopicCount(r["period"], r["category"], r["count"]) for r in rows]
