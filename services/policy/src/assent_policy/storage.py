"""All of policy's SQL: the PostgreSQL side of `ports.PolicyStore`."""

import json
from datetime import datetime
from uuid import UUID

import asyncpg

from assent_policy.domain import Acceptance, AcceptanceHow, DataUse, NewVersion, Version
from assent_shared.uow import PgStore

_VERSION_COLUMNS = """policy_id, version, title, summary, body, material, data_use, effective_at,
                      published_at, in_force_since"""
_ACCEPTANCE_COLUMNS = "user_id, policy_id, version, how, accepted_at"


def _version(row: asyncpg.Record) -> Version:
    uses = tuple(DataUse(u["purpose"], u["processor"], tuple(u["data"])) for u in json.loads(row["data_use"]))
    return Version(
        policy_id=row["policy_id"], version=row["version"], title=row["title"], summary=row["summary"],
        text=row["body"], material=row["material"], data_use=uses, effective_at=row["effective_at"],
        published_at=row["published_at"], in_force_since=row["in_force_since"],
    )


def _acceptance(row: asyncpg.Record) -> Acceptance:
    return Acceptance(row["user_id"], row["policy_id"], row["version"], row["how"], row["accepted_at"])


class PgPolicyStore(PgStore):
    async def lock_policy(self, policy_id: str) -> None:
        """Serializes publishing per policy, so version numbers and schedules are decided one at a time."""
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('assent-policy/' || $1))", policy_id)

    async def insert_version(self, policy_id: str, number: int, new: NewVersion) -> Version | None:
        """None when the number is taken (a replica seeded it first)."""
        uses = [{"purpose": u.purpose, "processor": u.processor, "data": list(u.data)} for u in new.data_use]
        row = await self.conn.fetchrow(
            f"""INSERT INTO policy_versions (policy_id, version, title, summary, body, material, data_use, effective_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, coalesce($8, now()))
                ON CONFLICT (policy_id, version) DO NOTHING
                RETURNING {_VERSION_COLUMNS}""",
            policy_id, number, new.title, new.summary, new.text, new.material, json.dumps(uses), new.effective_at,
        )
        return _version(row) if row else None

    async def latest_version(self, policy_id: str) -> Version | None:
        row = await self.conn.fetchrow(
            f"SELECT {_VERSION_COLUMNS} FROM policy_versions WHERE policy_id = $1 ORDER BY version DESC LIMIT 1",
            policy_id,
        )
        return _version(row) if row else None

    async def current_version(self, policy_id: str) -> Version | None:
        row = await self.conn.fetchrow(
            f"""SELECT {_VERSION_COLUMNS} FROM policy_versions
                WHERE policy_id = $1 AND in_force_since IS NOT NULL ORDER BY version DESC LIMIT 1""",
            policy_id,
        )
        return _version(row) if row else None

    async def version(self, policy_id: str, number: int) -> Version | None:
        row = await self.conn.fetchrow(
            f"SELECT {_VERSION_COLUMNS} FROM policy_versions WHERE policy_id = $1 AND version = $2", policy_id, number
        )
        return _version(row) if row else None

    async def versions(self, policy_id: str, after: int | None = None,
                       limit: int | None = None) -> list[Version]:
        """In version order, from after version `after`."""
        rows = await self.conn.fetch(
            f"""SELECT {_VERSION_COLUMNS} FROM policy_versions WHERE policy_id = $1 AND version > coalesce($2, 0)
                ORDER BY version LIMIT $3""",
            policy_id, after, limit,
        )
        return [_version(r) for r in rows]

    async def put_due_in_force(self) -> list[Version]:
        """Marks every due version in force, each exactly once, in the transaction that announces them.

        Replicas take turns on one lock, so a racing replica finds in_force_since set, and the
        announcements enter the outbox in version order."""
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('assent-policy/promotion'))")
        rows = await self.conn.fetch(
            f"""UPDATE policy_versions SET in_force_since = now()
                WHERE in_force_since IS NULL AND effective_at <= now()
                RETURNING {_VERSION_COLUMNS}"""
        )
        return sorted((_version(r) for r in rows), key=lambda v: (v.policy_id, v.version))

    async def insert_acceptance(self, user_id: UUID, policy_id: str, number: int,
                                how: AcceptanceHow, accepted_at: datetime | None = None) -> Acceptance | None:
        """None when this user already accepted this version this way."""
        row = await self.conn.fetchrow(
            f"""INSERT INTO acceptances (user_id, policy_id, version, how, accepted_at)
                VALUES ($1, $2, $3, $4, coalesce($5, now()))
                ON CONFLICT DO NOTHING RETURNING {_ACCEPTANCE_COLUMNS}""",
            user_id, policy_id, number, how, accepted_at,
        )
        return _acceptance(row) if row else None

    async def acceptance(self, user_id: UUID, policy_id: str, number: int,
                         how: AcceptanceHow) -> Acceptance | None:
        row = await self.conn.fetchrow(
            f"""SELECT {_ACCEPTANCE_COLUMNS} FROM acceptances
                WHERE user_id = $1 AND policy_id = $2 AND version = $3 AND how = $4""",
            user_id, policy_id, number, how,
        )
        return _acceptance(row) if row else None

    async def newest_accepted(self, user_id: UUID, policy_id: str) -> int | None:
        return await self.conn.fetchval(
            "SELECT max(version) FROM acceptances WHERE user_id = $1 AND policy_id = $2", user_id, policy_id
        )

    async def acceptances_of(self, user_id: UUID, after: tuple[datetime, str, int] | None = None,
                             limit: int | None = None) -> list[Acceptance]:
        """In (accepted_at, policy_id, version) order, from after `after`."""
        at, policy_id, version = after or (None, None, None)
        rows = await self.conn.fetch(
            f"""SELECT {_ACCEPTANCE_COLUMNS} FROM acceptances WHERE user_id = $1
                AND ($2::timestamptz IS NULL OR (accepted_at, policy_id, version) > ($2, $3::text, $4::int))
                ORDER BY accepted_at, policy_id, version LIMIT $5""",
            user_id, at, policy_id, version, limit,
        )
        return [_acceptance(r) for r in rows]

    async def erase_acceptances(self, user_id: UUID, erased_at: datetime) -> None:
        await self.conn.execute("DELETE FROM acceptances WHERE user_id = $1", user_id)
        await self.conn.execute("INSERT INTO erased_users (user_id, erased_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                           user_id, erased_at)

    async def is_erased(self, user_id: UUID) -> bool:
        return bool(await self.conn.fetchval("SELECT 1 FROM erased_users WHERE user_id = $1", user_id))
