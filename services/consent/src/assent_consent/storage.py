"""All of consent's SQL: the PostgreSQL side of `ports.ConsentStore`."""

from datetime import datetime
from uuid import UUID

import asyncpg

from assent_consent.domain import ConsentState, DeviceConsentState
from assent_shared.uow import PgStore

_STATE_COLUMNS = "subject_id, purpose, recipient, granted, seq, event_id, updated_at"
_DEVICE_STATE = "device_id, purpose, granted, seq, event_id, updated_at"
_DEVICE_EVENT = "event_id, device_id, seq, purpose, granted, policy_version, source, gpc, occurred_at"


def _state(row: asyncpg.Record) -> ConsentState:
    return ConsentState(**dict(row))


class PgConsentStore(PgStore):
    async def lock_subject(self, subject_id: UUID) -> int:
        """Lock the subject's row (creating it) and return the last seq handed out."""
        return await self.conn.fetchval(
            """INSERT INTO subjects (subject_id) VALUES ($1)
               ON CONFLICT (subject_id) DO UPDATE SET last_seq = subjects.last_seq
               RETURNING last_seq""",
            subject_id,
        )

    async def state_of(self, subject_id: UUID, purpose: str, recipient: str) -> ConsentState | None:
        row = await self.conn.fetchrow(
            f"SELECT {_STATE_COLUMNS} FROM consent_state WHERE subject_id = $1 AND purpose = $2 AND recipient = $3",
            subject_id, purpose, recipient,
        )
        return _state(row) if row else None

    async def states_of(self, subject_id: UUID) -> list[ConsentState]:
        rows = await self.conn.fetch(
            f"SELECT {_STATE_COLUMNS} FROM consent_state WHERE subject_id = $1 ORDER BY purpose, recipient", subject_id
        )
        return [_state(r) for r in rows]

    async def record_event(self, *, event_id: str, subject_id: UUID, seq: int, purpose: str,
                           recipient: str, granted: bool, policy_version: int, source: str,
                           occurred_at: datetime, evidence: str | None = None) -> ConsentState:
        await self.conn.execute(
            """INSERT INTO consent_events (event_id, subject_id, seq, purpose, recipient, granted, policy_version,
                                           source, occurred_at, evidence)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
            UUID(event_id), subject_id, seq, purpose, recipient, granted, policy_version, source, occurred_at, evidence,
        )
        await self.conn.execute("UPDATE subjects SET last_seq = $2 WHERE subject_id = $1", subject_id, seq)
        row = await self.conn.fetchrow(
            f"""INSERT INTO consent_state ({_STATE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (subject_id, purpose, recipient) DO UPDATE
                SET granted = EXCLUDED.granted, seq = EXCLUDED.seq, event_id = EXCLUDED.event_id,
                    updated_at = EXCLUDED.updated_at
                RETURNING {_STATE_COLUMNS}""",
            subject_id, purpose, recipient, granted, seq, UUID(event_id), occurred_at,
        )
        return _state(row)

    async def history_of(self, subject_id: UUID, after_seq: int = 0,
                         limit: int | None = None) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            """SELECT event_id, subject_id, seq, purpose, recipient, granted, policy_version, source, occurred_at,
                      evidence
               FROM consent_events WHERE subject_id = $1 AND seq > $2 ORDER BY seq LIMIT $3""",
            subject_id, after_seq, limit,
        )

    async def event_by_id(self, event_id: UUID) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            """SELECT event_id, subject_id, seq, purpose, recipient, granted, policy_version, source, occurred_at,
                      evidence
               FROM consent_events WHERE event_id = $1""",
            event_id,
        )

    async def processors(self) -> dict[str, set[str]]:
        rows = await self.conn.fetch("SELECT processor_id, purposes FROM recipients")
        return {r["processor_id"]: set(r["purposes"]) for r in rows}

    async def processor_rows(self) -> list[asyncpg.Record]:
        return await self.conn.fetch("SELECT processor_id, name, purposes FROM recipients ORDER BY processor_id")

    async def upsert_processor(self, processor_id: str, name: str, purposes: list[str]) -> None:
        await self.conn.execute(
            """INSERT INTO recipients (processor_id, name, purposes) VALUES ($1, $2, $3)
               ON CONFLICT (processor_id) DO UPDATE SET name = EXCLUDED.name, purposes = EXCLUDED.purposes,
                                                        updated_at = now()""",
            processor_id, name, purposes,
        )

    async def policy_version(self, policy_id: str) -> int:
        return await self.conn.fetchval("SELECT version FROM policy_in_force WHERE policy_id = $1", policy_id) or 1

    async def record_policy(self, policy_id: str, version: int) -> None:
        await self.conn.execute(
            """INSERT INTO policy_in_force (policy_id, version) VALUES ($1, $2)
               ON CONFLICT (policy_id) DO UPDATE SET version = EXCLUDED.version
               WHERE policy_in_force.version < EXCLUDED.version""",
            policy_id, version,
        )

    async def is_erased(self, subject_id: UUID) -> bool:
        return bool(await self.conn.fetchval("SELECT erased_at IS NOT NULL FROM subjects WHERE subject_id = $1",
                                             subject_id))

    async def erase_subject(self, subject_id: UUID, erased_at: datetime) -> None:
        await self.conn.execute("DELETE FROM consent_state WHERE subject_id = $1", subject_id)
        await self.conn.execute("DELETE FROM consent_events WHERE subject_id = $1", subject_id)
        await self.conn.execute("UPDATE subjects SET erased_at = $2 WHERE subject_id = $1", subject_id, erased_at)

    async def lock_device(self, device_id: str) -> int:
        """Lock the device's row (creating it) and return the last seq handed out."""
        return await self.conn.fetchval(
            """INSERT INTO devices (device_id) VALUES ($1)
               ON CONFLICT (device_id) DO UPDATE SET last_seq = devices.last_seq RETURNING last_seq""",
            device_id,
        )

    async def device_states(self, device_id: str) -> list[DeviceConsentState]:
        rows = await self.conn.fetch(
            f"SELECT {_DEVICE_STATE} FROM device_consent_state WHERE device_id = $1 ORDER BY purpose", device_id
        )
        return [DeviceConsentState(**dict(r)) for r in rows]

    async def record_device_event(self, *, event_id: str, device_id: str, seq: int, purpose: str,
                                  granted: bool, policy_version: int, source: str, gpc: bool,
                                  occurred_at: datetime) -> DeviceConsentState:
        await self.conn.execute(
            f"INSERT INTO device_consent_events ({_DEVICE_EVENT}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            UUID(event_id), device_id, seq, purpose, granted, policy_version, source, gpc, occurred_at,
        )
        await self.conn.execute("UPDATE devices SET last_seq = $2 WHERE device_id = $1", device_id, seq)
        row = await self.conn.fetchrow(
            f"""INSERT INTO device_consent_state ({_DEVICE_STATE}) VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (device_id, purpose) DO UPDATE
                SET granted = EXCLUDED.granted, seq = EXCLUDED.seq, event_id = EXCLUDED.event_id,
                    updated_at = EXCLUDED.updated_at
                RETURNING {_DEVICE_STATE}""",
            device_id, purpose, granted, seq, UUID(event_id), occurred_at,
        )
        return DeviceConsentState(**dict(row))

    async def device_history(self, device_id: str) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            f"SELECT {_DEVICE_EVENT} FROM device_consent_events WHERE device_id = $1 ORDER BY seq", device_id
        )

    async def device_event(self, device_id: str, event_id: UUID) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            f"SELECT {_DEVICE_EVENT} FROM device_consent_events WHERE device_id = $1 AND event_id = $2",
            device_id, event_id,
        )
