"""Numbered SQL migrations, applied at start; replicas starting together wait on one lock."""

from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import asyncpg
import structlog

log = structlog.get_logger(__name__)
_LOCK_KEY = 0x617373656E74  # "assent": one migration run per database at a time


@dataclass(frozen=True)
class MigrationSet:
    namespace: str
    folder: Traversable

    @classmethod
    def of_package(cls, namespace: str, package: str) -> "MigrationSet":
        return cls(namespace, resources.files(package))

    def files(self) -> list[tuple[int, Traversable]]:
        numbered = []
        for entry in self.folder.iterdir():
            stem = entry.name.split("_", 1)[0]
            if entry.name.endswith(".sql") and stem.isdigit():
                numbered.append((int(stem), entry))
        return sorted(numbered, key=lambda pair: pair[0])


SHARED = MigrationSet.of_package("shared", "assent_shared.migrations")


async def apply_migrations(conn: asyncpg.Connection, sets: list[MigrationSet]) -> list[str]:
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   namespace text NOT NULL, version int NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (namespace, version))"""
        )
        for mset in sets:
            done = {
                r["version"]
                for r in await conn.fetch("SELECT version FROM schema_migrations WHERE namespace = $1", mset.namespace)
            }
            for version, entry in mset.files():
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(entry.read_text())
                    await conn.execute(
                        "INSERT INTO schema_migrations (namespace, version) VALUES ($1, $2)", mset.namespace, version
                    )
                applied.append(f"{mset.namespace}/{entry.name}")
                log.info("migration applied", migration=f"{mset.namespace}/{entry.name}")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied
