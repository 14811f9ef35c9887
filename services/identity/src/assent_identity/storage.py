"""All of identity's SQL."""

import json
from datetime import datetime
from uuid import UUID

import asyncpg

from assent_identity.domain import User


class EmailTaken(Exception):
    pass


def _user(row: asyncpg.Record) -> User:
    return User(id=row["id"], email=row["email"], created_at=row["created_at"],
                display_name=row["display_name"], disabled=row["disabled_at"] is not None)


async def insert_user(conn: asyncpg.Connection, user_id: UUID, email: str, password_hash: str,
                      display_name: str | None) -> User:
    try:
        row = await conn.fetchrow(
            """INSERT INTO users (id, email, password_hash, display_name) VALUES ($1, $2, $3, $4)
               RETURNING id, email, created_at, display_name, disabled_at""",
            user_id, email, password_hash, display_name,
        )
    except asyncpg.UniqueViolationError as exc:
        raise EmailTaken from exc
    return _user(row)


async def user_by_id(conn: asyncpg.Connection, user_id: UUID) -> User | None:
    row = await conn.fetchrow("SELECT id, email, created_at, display_name, disabled_at FROM users WHERE id = $1", user_id)
    return _user(row) if row else None


async def credentials_by_email(conn: asyncpg.Connection, email: str) -> tuple[User, str] | None:
    row = await conn.fetchrow(
        "SELECT id, email, created_at, display_name, disabled_at, password_hash FROM users WHERE email = $1", email
    )
    return (_user(row), row["password_hash"]) if row else None


async def update_password_hash(conn: asyncpg.Connection, user_id: UUID, password_hash: str) -> None:
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)


async def insert_session(conn: asyncpg.Connection, session_id: UUID, user_id: UUID, refresh_hash: bytes,
                         expires_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO sessions (id, user_id, refresh_token_hash, expires_at) VALUES ($1, $2, $3, $4)",
        session_id, user_id, refresh_hash, expires_at,
    )


async def session_by_refresh(conn: asyncpg.Connection, refresh_hash: bytes) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT id, user_id FROM sessions
           WHERE refresh_token_hash = $1 AND revoked_at IS NULL AND expires_at > now() FOR UPDATE""",
        refresh_hash,
    )


async def rotate_refresh(conn: asyncpg.Connection, session_id: UUID, refresh_hash: bytes) -> None:
    await conn.execute("UPDATE sessions SET refresh_token_hash = $2 WHERE id = $1", session_id, refresh_hash)


async def session_active(conn: asyncpg.Connection, session_id: UUID) -> bool:
    return bool(await conn.fetchval(
        "SELECT 1 FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > now()", session_id
    ))


async def revoke_session(conn: asyncpg.Connection, session_id: UUID) -> None:
    await conn.execute("UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", session_id)


async def active_signing_key(conn: asyncpg.Connection) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT kid, private_pem, created_at FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1"
    )


async def insert_signing_key(conn: asyncpg.Connection, kid: str, private_pem: str, public_jwk: dict) -> None:
    await conn.execute(
        "INSERT INTO signing_keys (kid, private_pem, public_jwk) VALUES ($1, $2, $3::jsonb)",
        kid, private_pem, json.dumps(public_jwk),
    )


async def retire_keys_except(conn: asyncpg.Connection, kid: str) -> None:
    await conn.execute("UPDATE signing_keys SET retired_at = now() WHERE kid <> $1 AND retired_at IS NULL", kid)


async def published_keys(conn: asyncpg.Connection, retired_within_seconds: int) -> list[dict]:
    """The signing key and every key retired so recently that tokens it signed may still be valid."""
    rows = await conn.fetch(
        """SELECT public_jwk FROM signing_keys
           WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => $1)
           ORDER BY created_at DESC""",
        float(retired_within_seconds),
    )
    return [json.loads(r["public_jwk"]) for r in rows]


async def lock_keys(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('assent-identity-signing-keys'))")


async def policy_version(conn: asyncpg.Connection, policy_id: str) -> int:
    return await conn.fetchval("SELECT version FROM policy_in_force WHERE policy_id = $1", policy_id) or 1


async def record_policy(conn: asyncpg.Connection, policy_id: str, version: int, effective_at: datetime) -> None:
    await conn.execute(
        """INSERT INTO policy_in_force (policy_id, version, effective_at) VALUES ($1, $2, $3)
           ON CONFLICT (policy_id) DO UPDATE SET version = EXCLUDED.version, effective_at = EXCLUDED.effective_at
           WHERE policy_in_force.version < EXCLUDED.version""",
        policy_id, version, effective_at,
    )
