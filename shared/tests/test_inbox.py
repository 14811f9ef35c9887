"""The inbox on real PostgreSQL: an event's id and its effects commit together, exactly once."""

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from assent_shared import inbox as inbox_module
from assent_shared.cloudevents import encode_headers, meta_for
from assent_shared.events import UserErased, UserRegistered
from assent_shared.inbox import BatchHandler, Handler, Inbox
from assent_shared.metrics import Metrics
from assent_shared.migrate import SHARED, apply_migrations

TOPIC = "identity.users.v1"


@dataclass
class Record:
    """What the inbox reads of a Kafka record; aiokafka's ConsumerRecord has the same attributes."""

    value: bytes | None
    headers: Any
    key: bytes | None = b"k"
    topic: str = TOPIC
    partition: int = 0
    offset: int = 0


@dataclass
class Env:
    pool: asyncpg.Pool
    metrics: Metrics
    inbox: Inbox
    dead: list[tuple[Record, str]] = field(default_factory=list)

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, {"topic": TOPIC, **labels}) or 0.0

    async def applied_rows(self) -> list[asyncpg.Record]:
        return await self.pool.fetch("SELECT event_id, user_id FROM applied ORDER BY event_id")

    async def inbox_rows(self) -> list[tuple[str, str, str]]:
        return [tuple(r) for r in await self.pool.fetch("SELECT event_id, topic, event_type FROM inbox")]


@pytest.fixture
async def env(new_database):
    url = await new_database("inbox")
    pool = await asyncpg.create_pool(url, min_size=2, max_size=4)
    async with pool.acquire() as conn:
        await apply_migrations(conn, [SHARED])
        # No unique key on purpose: applying an event twice would show as two rows.
        await conn.execute("CREATE TABLE applied (event_id text NOT NULL, user_id uuid NOT NULL)")
    metrics = Metrics("test")
    dead: list[tuple[Record, str]] = []

    async def dead_letter(record, reason: str) -> None:
        dead.append((record, reason))

    yield Env(pool, metrics, Inbox(pool, metrics, dead_letter, retry_pause=0.01), dead)
    await pool.close()


def registered() -> UserRegistered:
    return UserRegistered(user_id=uuid4(), email="someone@example.com", registered_at=datetime.now(UTC),
                          policy_version=1, newsletter_opt_in=True)


def record_of(event, **overrides: Any) -> Record:
    meta = meta_for(event)
    return Record(value=event.model_dump_json().encode(), headers=encode_headers(meta), **overrides)


def ce_id(record: Record) -> str:
    return dict(record.headers)["ce_id"].decode()


class Recorder:
    """A handler that writes one row per application in the inbox's transaction, and can be told to fail."""

    def __init__(self, failures: list[BaseException | None] | None = None) -> None:
        self.failures = list(failures or [])
        self.calls = 0
        self.seen: list[tuple[UserRegistered, str]] = []

    async def __call__(self, conn: asyncpg.Connection, event: UserRegistered, meta) -> None:
        self.calls += 1
        await conn.execute("INSERT INTO applied VALUES ($1, $2)", meta.id, event.user_id)
        self.seen.append((event, meta.id))
        if self.failures and (failure := self.failures.pop(0)) is not None:
            raise failure

    def handlers(self) -> dict[str, Handler]:
        return {"UserRegistered": Handler(UserRegistered, self)}


async def test_the_same_record_twice_is_applied_once_and_counted_as_a_duplicate(env):
    recorder = Recorder()
    event = registered()
    record = record_of(event)
    assert await env.inbox.consume(TOPIC, record, recorder.handlers()) is True
    assert await env.inbox.consume(TOPIC, record, recorder.handlers()) is False
    assert [(r["event_id"], r["user_id"]) for r in await env.applied_rows()] == [(ce_id(record), event.user_id)]
    assert await env.inbox_rows() == [(ce_id(record), TOPIC, "UserRegistered")]
    assert recorder.seen == [(event, ce_id(record))]  # the handler got the validated event and its meta
    assert env.sample("inbox_duplicates_dropped_total") == 1
    assert env.sample("inbox_events_applied_total", type="UserRegistered") == 1
    assert env.dead == []


async def test_two_consumers_racing_on_one_record_apply_it_once(env):
    recorder = Recorder()
    record = record_of(registered())
    results = await asyncio.gather(*(env.inbox.consume(TOPIC, record, recorder.handlers()) for _ in range(2)))
    assert sorted(results) == [False, True]
    assert len(await env.applied_rows()) == 1
    assert env.sample("inbox_duplicates_dropped_total") == 1


async def test_a_handler_that_always_fails_is_dead_lettered_once_and_commits_nothing(env):
    recorder = Recorder([ValueError("breaks a rule")] * 10)
    record = record_of(registered())
    assert await env.inbox.consume(TOPIC, record, recorder.handlers()) is False
    assert recorder.calls == inbox_module._ATTEMPTS  # retried before giving up
    assert [(r, reason) for r, reason in env.dead] == [(record, "handler failed: ValueError")]
    assert await env.applied_rows() == [] and await env.inbox_rows() == []
    assert env.sample("dead_letters_total") == 1
    assert env.sample("inbox_events_applied_total", type="UserRegistered") == 0


async def test_a_handler_that_fails_once_then_succeeds_is_applied_once(env):
    recorder = Recorder([ValueError("first attempt")])
    record = record_of(registered())
    assert await env.inbox.consume(TOPIC, record, recorder.handlers()) is True
    assert recorder.calls == 2
    # The first attempt wrote a row too; it rolled back with its transaction.
    assert [r["event_id"] for r in await env.applied_rows()] == [ce_id(record)]
    assert len(await env.inbox_rows()) == 1
    assert env.dead == []


async def test_a_transient_error_propagates_so_the_record_is_redelivered_and_nothing_is_dead_lettered(env):
    record = record_of(registered())
    failing = Recorder([OSError("connection reset")])
    with pytest.raises(OSError, match="connection reset"):
        await env.inbox.consume(TOPIC, record, failing.handlers())
    assert failing.calls == 1  # not retried in place: the consumer's redelivery is the retry
    assert env.dead == [] and env.sample("dead_letters_total") == 0
    assert await env.applied_rows() == [] and await env.inbox_rows() == []
    # Its ce_id was not used up: the redelivered record applies.
    assert await env.inbox.consume(TOPIC, record, Recorder().handlers()) is True
    assert [r["event_id"] for r in await env.applied_rows()] == [ce_id(record)]


async def test_a_value_the_column_cannot_take_is_dead_lettered_not_redelivered_forever(env):
    async def out_of_range(conn: asyncpg.Connection, event: UserRegistered, meta) -> None:
        await conn.execute("INSERT INTO applied VALUES ($1, $2)", meta.id, event.user_id)
        await conn.execute("SELECT $1::int4", 2**40)  # asyncpg refuses the argument

    record = record_of(registered())
    assert await env.inbox.consume(TOPIC, record, {"UserRegistered": Handler(UserRegistered, out_of_range)}) is False
    assert [reason for _, reason in env.dead] == ["handler failed: DataError"]
    assert await env.applied_rows() == [] and await env.inbox_rows() == []
    # The next record of the partition applies.
    assert await env.inbox.consume(TOPIC, record_of(registered()), Recorder().handlers()) is True


def _without(headers, name):
    return [(k, v) for k, v in headers if k != name]


def _replace(headers, name, value):
    return [(k, value if k == name else v) for k, v in headers]


@pytest.mark.parametrize(
    "damage",
    [
        lambda h: _without(h, "ce_id"),
        lambda h: _without(h, "ce_type"),
        lambda h: _replace(h, "ce_specversion", b"0.3"),
        lambda h: _replace(h, "ce_time", b"last tuesday"),
        lambda h: _replace(h, "ce_source", b"\xff"),
        lambda h: [],
    ],
    ids=["no-id", "no-type", "old-spec", "bad-time", "not-utf8", "no-headers"],
)
async def test_bad_headers_are_dead_lettered(env, damage):
    recorder = Recorder()
    good = record_of(registered())
    record = Record(value=good.value, headers=damage(good.headers), offset=7)
    assert await env.inbox.consume(TOPIC, record, recorder.handlers()) is False
    [(dead_record, reason)] = env.dead
    assert dead_record is record and reason.startswith("malformed headers: ")
    assert recorder.calls == 0 and await env.inbox_rows() == []
    assert env.sample("dead_letters_total") == 1


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (
            b'{"user_id": "not-a-uuid", "email": "a@b.c", "registered_at": "2025-01-01T00:00:00Z",'
            b' "policy_version": 1, "newsletter_opt_in": true}',
            "user_id",
        ),
        (b'{"email": "a@b.c"}', "user_id,registered_at,policy_version,newsletter_opt_in"),
        (b"not json", "not JSON"),
        (b"[1, 2]", "not JSON"),
        (None, "not JSON"),
    ],
    ids=["wrong-type", "missing-fields", "not-json", "not-an-object", "tombstone"],
)
async def test_an_invalid_payload_is_dead_lettered_with_the_fields_at_fault(env, value, named):
    recorder = Recorder()
    record = Record(value=value, headers=record_of(registered()).headers)
    assert await env.inbox.consume(TOPIC, record, recorder.handlers()) is False
    [(dead_record, reason)] = env.dead
    assert dead_record is record
    assert reason.startswith("invalid UserRegistered payload: ")
    if named != "not JSON":
        assert reason == f"invalid UserRegistered payload: {named}"
    assert recorder.calls == 0 and await env.inbox_rows() == []


async def test_an_event_type_without_a_handler_is_ignored_not_dead_lettered(env):
    recorder = Recorder()
    record = record_of(UserErased(user_id=uuid4(), erased_at=datetime.now(UTC)))
    assert await env.inbox.consume(TOPIC, record, recorder.handlers()) is False
    assert recorder.calls == 0
    assert env.dead == [] and env.sample("dead_letters_total") == 0
    assert await env.inbox_rows() == []  # nothing remembered: a later version with a handler may still apply it


async def test_a_batch_applies_in_record_order_once_each_and_drops_its_own_redeliveries(env):
    recorder = Recorder()
    first, second = record_of(registered()), record_of(registered())
    applied_before = record_of(registered())
    assert await env.inbox.consume(TOPIC, applied_before, recorder.handlers()) is True
    batch = [first, applied_before, second, first]
    assert await env.inbox.consume_batch(TOPIC, batch, recorder.handlers()) == 2
    assert [meta_id for _, meta_id in recorder.seen] == [ce_id(applied_before), ce_id(first), ce_id(second)]
    assert sorted(r["event_id"] for r in await env.applied_rows()) == sorted(map(ce_id, [applied_before, first, second]))
    assert env.sample("inbox_duplicates_dropped_total") == 2
    assert env.sample("inbox_events_applied_total", type="UserRegistered") == 3


async def test_a_record_that_breaks_its_batch_is_dead_lettered_and_the_rest_of_the_batch_applies(env):
    poisoned = registered()

    async def refuses_one(conn: asyncpg.Connection, event: UserRegistered, meta) -> None:
        await conn.execute("INSERT INTO applied VALUES ($1, $2)", meta.id, event.user_id)
        if event.user_id == poisoned.user_id:
            raise ValueError("breaks a rule")

    batch = [record_of(registered()), record_of(poisoned), record_of(registered())]
    handlers = {"UserRegistered": Handler(UserRegistered, refuses_one)}
    assert await env.inbox.consume_batch(TOPIC, batch, handlers) == 2
    assert [(r, reason) for r, reason in env.dead] == [(batch[1], "handler failed: ValueError")]
    # The failed batch transaction left nothing behind: each good record once, the bad one not at all.
    assert sorted(r["event_id"] for r in await env.applied_rows()) == sorted([ce_id(batch[0]), ce_id(batch[2])])
    assert len(await env.inbox_rows()) == 2


async def test_a_transient_error_in_a_batch_propagates_and_commits_none_of_it(env):
    batch = [record_of(registered()), record_of(registered())]
    with pytest.raises(OSError):
        await env.inbox.consume_batch(TOPIC, batch, Recorder([None, OSError("connection reset")]).handlers())
    assert await env.applied_rows() == [] and await env.inbox_rows() == [] and env.dead == []
    assert await env.inbox.consume_batch(TOPIC, batch, Recorder().handlers()) == 2


async def test_a_batch_handler_gets_the_fresh_events_of_the_batch_in_one_call(env):
    calls: list[list[str]] = []

    async def total(conn: asyncpg.Connection, events) -> None:
        calls.append([meta.id for _, meta in events])
        await conn.executemany("INSERT INTO applied VALUES ($1, $2)", [(m.id, e.user_id) for e, m in events])

    handlers = {"UserRegistered": BatchHandler(UserRegistered, total)}
    batch = [record_of(registered()) for _ in range(3)]
    assert await env.inbox.consume_batch(TOPIC, batch[:1], handlers) == 1
    assert await env.inbox.consume_batch(TOPIC, batch, handlers) == 2
    assert calls == [[ce_id(batch[0])], [ce_id(batch[1]), ce_id(batch[2])]]
    assert len(await env.applied_rows()) == 3
