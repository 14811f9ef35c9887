"""Numbered migrations on real PostgreSQL: once each, in number order, one runner at a time."""

import asyncio
from pathlib import Path

import asyncpg
import pytest

from assent_shared.migrate import SHARED, MigrationSet, apply_migrations


def migrations(folder: Path, files: dict[str, str]) -> MigrationSet:
    folder.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (folder / name).write_text(sql)
    return MigrationSet(folder.name, folder)


@pytest.fixture
async def database(new_database):
    url = await new_database("migrate")
    conn = await asyncpg.connect(url)
    yield url, conn
    await conn.close()


async def recorded(conn) -> list[tuple[str, int]]:
    return [tuple(r) for r in await conn.fetch("SELECT namespace, version FROM schema_migrations ORDER BY 1, 2")]


async def test_applying_twice_applies_nothing_the_second_time(database, tmp_path):
    _, conn = database
    # Without the bookkeeping a second run would fail on CREATE TABLE and double the INSERT.
    mine = migrations(tmp_path / "svc", {
        "0001_things.sql": "CREATE TABLE things (name text NOT NULL);",
        "0002_seed.sql": "INSERT INTO things VALUES ('first');",
    })
    first = await apply_migrations(conn, [SHARED, mine])
    assert first == ["shared/0001_outbox_inbox.sql", "svc/0001_things.sql", "svc/0002_seed.sql"]
    assert await apply_migrations(conn, [SHARED, mine]) == []
    assert await conn.fetchval("SELECT count(*) FROM things") == 1
    assert await recorded(conn) == [("shared", 1), ("svc", 1), ("svc", 2)]
    assert await conn.fetchval("SELECT to_regclass('outbox') IS NOT NULL AND to_regclass('inbox') IS NOT NULL")


async def test_a_later_migration_is_applied_alone_and_numbers_sort_as_numbers(database, tmp_path):
    _, conn = database
    folder = tmp_path / "svc"
    mine = migrations(folder, {
        "2_create.sql": "CREATE TABLE steps (n int);",
        "10_after_two.sql": "INSERT INTO steps VALUES (10);",
        "notes.txt": "not a migration",
        "draft.sql": "SELECT * FROM nowhere;",  # no number: not a migration either
    })
    assert await apply_migrations(conn, [mine]) == ["svc/2_create.sql", "svc/10_after_two.sql"]
    migrations(folder, {"11_more.sql": "INSERT INTO steps VALUES (11);"})
    assert await apply_migrations(conn, [mine]) == ["svc/11_more.sql"]
    assert [r["n"] for r in await conn.fetch("SELECT n FROM steps ORDER BY n")] == [10, 11]


async def test_namespaces_keep_their_own_numbers(database, tmp_path):
    _, conn = database
    one = migrations(tmp_path / "one", {"0001_a.sql": "CREATE TABLE a (x int);"})
    two = migrations(tmp_path / "two", {"0001_b.sql": "CREATE TABLE b (x int);"})
    assert await apply_migrations(conn, [one, two]) == ["one/0001_a.sql", "two/0001_b.sql"]
    assert await recorded(conn) == [("one", 1), ("two", 1)]


async def test_two_runners_at_once_both_succeed_and_apply_each_migration_once(database, tmp_path):
    url, conn = database
    # pg_sleep widens the window in which an unlocked second runner would also see nothing applied.
    mine = migrations(tmp_path / "svc", {
        "0001_slow.sql": "SELECT pg_sleep(0.3); CREATE TABLE counted (runner text);",
        "0002_row.sql": "INSERT INTO counted VALUES ('once');",
    })
    other = await asyncpg.connect(url)
    try:
        results = await asyncio.gather(apply_migrations(conn, [SHARED, mine]), apply_migrations(other, [SHARED, mine]))
    finally:
        await other.close()
    assert sorted(results, key=len) == [[], ["shared/0001_outbox_inbox.sql", "svc/0001_slow.sql", "svc/0002_row.sql"]]
    assert await conn.fetchval("SELECT count(*) FROM counted") == 1
    assert await recorded(conn) == [("shared", 1), ("svc", 1), ("svc", 2)]


async def test_a_failing_migration_leaves_nothing_behind_and_releases_the_lock(database, tmp_path):
    url, conn = database
    folder = tmp_path / "svc"
    mine = migrations(folder, {
        "0001_ok.sql": "CREATE TABLE kept (x int);",
        "0002_broken.sql": "CREATE TABLE half (x int); INSERT INTO half VALUES ('not a number');",
    })
    with pytest.raises(asyncpg.InvalidTextRepresentationError):
        await apply_migrations(conn, [mine])
    assert await recorded(conn) == [("svc", 1)]
    assert await conn.fetchval("SELECT to_regclass('half')") is None  # the failed file rolled back whole
    migrations(folder, {"0002_broken.sql": "CREATE TABLE half (x int); INSERT INTO half VALUES (2);"})
    other = await asyncpg.connect(url)  # a different session: it would block if the lock were still held
    try:
        assert await asyncio.wait_for(apply_migrations(other, [mine]), timeout=10) == ["svc/0002_broken.sql"]
    finally:
        await other.close()
