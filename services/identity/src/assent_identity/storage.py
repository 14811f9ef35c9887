"""All of identity's SQL: the PostgreSQL side of `ports.IdentityStore`."""

import json
from datetime import datetime
from uuid import UUID

import asyncpg

from assent_identity.domain import User
from assent_identity.ports import EmailTaken
from assent_shared.uow import PgStore


_USER = "id, email, created_at, display_name, disabled_at, email_verified_at, locale"


def _user(row: asyncpg.Record) -> User:
    return User(id=row["id"], email=row["email"], created_at=row["created_at"],
                display_name=row["display_name"], disabled=row["disabled_at"] is not None,
                email_verified=row["email_verified_at"] is not None, locale=row["locale"])


class PgIdentityStore(PgStore):
    async def insert_user(self, user_id: UUID, email: str, password_hash: str, display_name: str | None,
                          locale: str | None = None, newsletter_pending: bool = False) -> User:
        try:
            row = await self.conn.fetchrow(
                f"""INSERT INTO users (id, email, password_hash, display_name, locale, newsletter_opt_in_pending)
                    VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_USER}""",
                user_id, email, password_hash, display_name, locale, newsletter_pending,
            )
        except asyncpg.UniqueViolationError as exc:
            raise EmailTaken from exc
        return _user(row)

    async def user_by_id(self, user_id: UUID) -> User | None:
        row = await self.conn.fetchrow(f"SELECT {_USER} FROM users WHERE id = $1", user_id)
        return _user(row) if row else None

    async def credentials_by_email(self, email: str) -> tuple[User, str] | None:
        row = await self.conn.fetchrow(
            f"SELECT {_USER}, password_hash FROM users WHERE email = $1", email
        )
        return (_user(row), row["password_hash"]) if row else None

    async def update_password_hash(self, user_id: UUID, password_hash: str) -> None:
        await self.conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)

    async def insert_session(self, session_id: UUID, user_id: UUID, refresh_hash: bytes,
                             expires_at: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO sessions (id, user_id, refresh_token_hash, expires_at) VALUES ($1, $2, $3, $4)",
            session_id, user_id, refresh_hash, expires_at,
        )

    async def session_by_refresh(self, refresh_hash: bytes) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            """SELECT id, user_id FROM sessions
               WHERE refresh_token_hash = $1 AND revoked_at IS NULL AND expires_at > now() FOR UPDATE""",
            refresh_hash,
        )

    async def rotate_refresh(self, session_id: UUID, refresh_hash: bytes) -> None:
        await self.conn.execute("UPDATE sessions SET refresh_token_hash = $2 WHERE id = $1", session_id, refresh_hash)

    async def session_active(self, session_id: UUID) -> bool:
        return bool(await self.conn.fetchval(
            "SELECT 1 FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > now()", session_id
        ))

    async def revoke_session(self, session_id: UUID) -> UUID | None:
        """End one session; returns its user when it was live."""
        return await self.conn.fetchval(
            "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING user_id", session_id
        )

    async def active_signing_key(self) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            "SELECT kid, private_key_sealed, created_at FROM signing_keys WHERE retired_at IS NULL "
            "ORDER BY created_at DESC LIMIT 1"
        )

    async def insert_signing_key(self, kid: str, sealed: str, public_jwk: dict) -> None:
        await self.conn.execute(
            "INSERT INTO signing_keys (kid, private_key_sealed, public_jwk) VALUES ($1, $2, $3::jsonb)",
            kid, sealed, json.dumps(public_jwk),
        )

    async def retire_keys_except(self, kid: str) -> None:
        await self.conn.execute("UPDATE signing_keys SET retired_at = now() WHERE kid <> $1 AND retired_at IS NULL",
                                kid)

    async def published_keys(self, retired_within_seconds: int) -> list[dict]:
        """The signing key and every key retired so recently that tokens it signed may still be valid."""
        rows = await self.conn.fetch(
            """SELECT public_jwk FROM signing_keys
               WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => $1)
               ORDER BY created_at DESC""",
            float(retired_within_seconds),
        )
        return [json.loads(r["public_jwk"]) for r in rows]

    async def lock_keys(self) -> None:
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('assent-identity-signing-keys'))")

    async def policy_version(self, policy_id: str) -> int:
        return await self.conn.fetchval("SELECT version FROM policy_in_force WHERE policy_id = $1", policy_id) or 1

    async def record_policy(self, policy_id: str, version: int, effective_at: datetime) -> None:
        await self.conn.execute(
            """INSERT INTO policy_in_force (policy_id, version, effective_at) VALUES ($1, $2, $3)
               ON CONFLICT (policy_id) DO UPDATE SET version = EXCLUDED.version, effective_at = EXCLUDED.effective_at
               WHERE policy_in_force.version < EXCLUDED.version""",
            policy_id, version, effective_at,
        )

    async def reserve_attempt(self, key: str, window: int) -> tuple[int | None, float]:
        """Count an attempt before its password is checked, unless the key is locked. Returns the
        attempts in the key's window, or None and the seconds the lock still holds. The row lock
        serializes parallel attempts, so each sees the count (and the lock) of those before it."""
        attempts = await self.conn.fetchval(
            """INSERT INTO login_failures (throttle_key, failures, first_at) VALUES ($1, 1, now())
               ON CONFLICT (throttle_key) DO UPDATE SET
                 failures = CASE WHEN login_failures.first_at < now() - make_interval(secs => $2)
                                 THEN 1 ELSE login_failures.failures + 1 END,
                 first_at = CASE WHEN login_failures.first_at < now() - make_interval(secs => $2)
                                 THEN now() ELSE login_failures.first_at END
               WHERE login_failures.locked_until IS NULL OR login_failures.locked_until <= now()
               RETURNING failures""",
            key, window,
        )
        if attempts is not None:
            return attempts, 0.0
        wait = await self.conn.fetchval(
            "SELECT greatest(extract(epoch FROM locked_until - now()), 0) FROM login_failures WHERE throttle_key = $1",
            key
        )
        return None, float(wait or 0)

    async def release_attempt(self, key: str, free: int) -> None:
        """A reserved attempt that succeeded is no failure: un-count it, and lift the lock its
        reservation set when the failures left are fewer than the rule lets pass."""
        await self.conn.execute(
            """UPDATE login_failures SET failures = greatest(failures - 1, 0),
                 locked_until = CASE WHEN failures - 1 < $2 THEN NULL ELSE locked_until END
               WHERE throttle_key = $1""",
            key, free,
        )

    async def prune_login_failures(self, window: int) -> int:
        """Rows whose window has passed and whose lock has ended hold nothing any rule still needs."""
        status = await self.conn.execute(
            """DELETE FROM login_failures WHERE first_at < now() - make_interval(secs => $1)
               AND (locked_until IS NULL OR locked_until < now())""",
            window,
        )
        return int(status.split()[-1])

    async def lock(self, key: str, seconds: int) -> None:
        await self.conn.execute(
            "UPDATE login_failures SET locked_until = now() + make_interval(secs => $2) WHERE throttle_key = $1",
            key, seconds,
        )

    async def clear_failures(self, key: str) -> None:
        await self.conn.execute("DELETE FROM login_failures WHERE throttle_key = $1", key)

    async def update_email(self, user_id: UUID, email: str) -> None:
        """A new address is unverified until its own link is used; links sent to the old one stop working."""
        try:
            await self.conn.execute("UPDATE users SET email = $2, email_verified_at = NULL WHERE id = $1",
                                    user_id, email)
            await self.conn.execute("DELETE FROM mail_tokens WHERE user_id = $1 AND purpose = 'verify_email'", user_id)
        except asyncpg.UniqueViolationError as exc:
            raise EmailTaken from exc

    async def revoke_sessions(self, user_id: UUID, keep: UUID | None = None) -> list[UUID]:
        """End the user's sessions but `keep`; returns the ids ended."""
        rows = await self.conn.fetch(
            "UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL "
            "AND id IS DISTINCT FROM $2 RETURNING id",
            user_id, keep,
        )
        return [r["id"] for r in rows]

    async def disable_user(self, user_id: UUID) -> bool:
        status = await self.conn.execute("UPDATE users SET disabled_at = now() WHERE id = $1 AND disabled_at IS NULL",
                                         user_id)
        return status.endswith(" 1")

    async def user_by_email(self, email: str) -> User | None:
        row = await self.conn.fetchrow(f"SELECT {_USER} FROM users WHERE email = $1", email)
        return _user(row) if row else None

    async def password_hash_of(self, user_id: UUID) -> str | None:
        return await self.conn.fetchval("SELECT password_hash FROM users WHERE id = $1", user_id)

    async def erase_user(self, user_id: UUID, requested_at: datetime) -> None:
        """Delete the account with its credentials and sessions; keep only the id as a tombstone."""
        await self.conn.execute("DELETE FROM users WHERE id = $1", user_id)
        await self.conn.execute("INSERT INTO erasures (user_id, requested_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                           user_id, requested_at)

    async def record_confirmation(self, user_id: UUID, service: str, at: datetime) -> None:
        await self.conn.execute(
            """INSERT INTO erasure_confirmations (user_id, service, confirmed_at)
               SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM erasures WHERE user_id = $1)
               ON CONFLICT DO NOTHING""",
            user_id, service, at,
        )

    async def erasure_status(self, user_id: UUID) -> tuple[datetime, dict[str, datetime]] | None:
        requested = await self.conn.fetchval("SELECT requested_at FROM erasures WHERE user_id = $1", user_id)
        if requested is None:
            return None
        rows = await self.conn.fetch("SELECT service, confirmed_at FROM erasure_confirmations WHERE user_id = $1",
                                     user_id)
        return requested, {r["service"]: r["confirmed_at"] for r in rows}

    async def erasure_page(self, before: tuple[datetime, UUID] | None,
                           limit: int) -> list[asyncpg.Record]:
        """Erasures newest first by (requested_at, user_id), from before `before`, each with its confirmations."""
        since, last_id = before or (None, None)
        return await self.conn.fetch(
            """SELECT e.user_id, e.requested_at,
                      array_remove(array_agg(c.service ORDER BY c.service), NULL) AS services,
                      array_remove(array_agg(c.confirmed_at ORDER BY c.service), NULL) AS confirmed_at
               FROM erasures e LEFT JOIN erasure_confirmations c USING (user_id)
               WHERE $1::timestamptz IS NULL OR (e.requested_at, e.user_id) < ($1, $2::uuid)
               GROUP BY e.user_id, e.requested_at ORDER BY e.requested_at DESC, e.user_id DESC LIMIT $3""",
            since, last_id, limit,
        )

    async def data_key(self, subject_id: UUID) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            "SELECT key_id, wrapped_key, owner_service FROM data_keys WHERE subject_id = $1", subject_id,
        )

    async def insert_data_key(self, subject_id: UUID, key_id: UUID, wrapped: bytes,
                              owner: str) -> asyncpg.Record:
        """The subject's key: the one just made, or the one a concurrent call made first."""
        await self.conn.execute(
            """INSERT INTO data_keys (subject_id, key_id, wrapped_key, owner_service) VALUES ($1, $2, $3, $4)
               ON CONFLICT (subject_id) DO NOTHING""",
            subject_id, key_id, wrapped, owner,
        )
        return await self.data_key(subject_id)

    async def data_key_erased(self, subject_id: UUID) -> bool:
        return bool(await self.conn.fetchval("SELECT 1 FROM data_key_erasures WHERE subject_id = $1", subject_id))

    async def delete_data_key(self, subject_id: UUID, by: str) -> None:
        await self.conn.execute("DELETE FROM data_keys WHERE subject_id = $1", subject_id)
        await self.conn.execute(
            "INSERT INTO data_key_erasures (subject_id, erased_by) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            subject_id, by,
        )

    async def audit_key_access(self, service: str, subject_id: UUID, key_id: UUID | None,
                               action: str, outcome: str) -> None:
        await self.conn.execute(
            "INSERT INTO data_key_audit (service, subject_id, key_id, action, outcome) VALUES ($1, $2, $3, $4, $5)",
            service, subject_id, key_id, action, outcome,
        )

    async def key_audit(self, subject_id: UUID) -> list[dict]:
        rows = await self.conn.fetch(
            "SELECT at, service, key_id, action, outcome FROM data_key_audit WHERE subject_id = $1 ORDER BY id",
            subject_id
        )
        return [dict(r) for r in rows]

    async def prune_key_audit(self, older_than_seconds: float) -> int:
        status = await self.conn.execute("DELETE FROM data_key_audit WHERE at < now() - make_interval(secs => $1)",
                                    older_than_seconds)
        return int(status.split()[-1])

    async def insert_mail_token(self, selector: str, verifier_hash: bytes, user_id: UUID,
                                purpose: str, expires_at: datetime) -> None:
        await self.conn.execute(
            """INSERT INTO mail_tokens (selector, verifier_hash, user_id, purpose, expires_at)
               VALUES ($1, $2, $3, $4, $5)""",
            selector, verifier_hash, user_id, purpose, expires_at,
        )
        # Expired links are useless; dropping them as new ones are made keeps the table small.
        await self.conn.execute("DELETE FROM mail_tokens WHERE user_id = $1 AND expires_at < now()", user_id)

    async def mail_tokens_since(self, user_id: UUID, purpose: str, seconds: int) -> int:
        return await self.conn.fetchval(
            """SELECT count(*) FROM mail_tokens WHERE user_id = $1 AND purpose = $2
               AND created_at > now() - make_interval(secs => $3)""",
            user_id, purpose, float(seconds),
        )

    async def lock_mail_token(self, selector: str, purpose: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            """SELECT selector, verifier_hash, user_id, used_at, expires_at FROM mail_tokens
               WHERE selector = $1 AND purpose = $2 FOR UPDATE""",
            selector, purpose,
        )

    async def use_mail_token(self, selector: str) -> None:
        await self.conn.execute("UPDATE mail_tokens SET used_at = now() WHERE selector = $1", selector)

    async def drop_mail_tokens(self, user_id: UUID, purpose: str) -> None:
        await self.conn.execute("DELETE FROM mail_tokens WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
                           user_id, purpose)

    async def mark_verified(self, user_id: UUID) -> bool | None:
        """Verify the address; the pending newsletter opt-in it releases, or None when it was already verified."""
        return await self.conn.fetchval(
            """UPDATE users u SET email_verified_at = now(), newsletter_opt_in_pending = false
               FROM (SELECT id, newsletter_opt_in_pending AS pending FROM users WHERE id = $1 FOR UPDATE) old
               WHERE u.id = old.id AND u.email_verified_at IS NULL
               RETURNING old.pending""",
            user_id,
        )

    async def reset_requests_within_hour(self, client_key: str) -> int:
        await self.conn.execute("DELETE FROM reset_requests WHERE requested_at < now() - interval '1 hour'")
        return await self.conn.fetchval(
            "SELECT count(*) FROM reset_requests WHERE client_key = $1 AND requested_at > now() - interval '1 hour'",
            client_key,
        )

    async def record_reset_request(self, client_key: str) -> None:
        await self.conn.execute("INSERT INTO reset_requests (client_key) VALUES ($1)", client_key)
