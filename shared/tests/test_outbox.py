"""The outbox on real PostgreSQL and Kafka: committed events go out in order, at least once, one relay at a time."""

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from assent_shared import topics
from assent_shared.events import ConsentGranted, UserRegistered
from assent_shared.inbox import Handler, Inbox
from assent_shared.kafka import ensure_topics, make_producer
from assent_shared.metrics import Metrics
from assent_shared.migrate import SHARED, apply_migrations
from assent_shared.outbox import OutboxRelay, enqueue
from assent_shared.settings import ServiceSettings
from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.topics import read_topic


class OutboxTestSettings(ServiceSettings):
    service_name: str = "shared-tests"


class Rollback(Exception):
    """Raised inside a transaction to abandon it."""


class CountingRelay(OutboxRelay):
    """A real relay that remembers how many rows it published."""

    published = 0

    async def publish_pending(self, conn):
        sent = await super().publish_pending(conn)
        self.published += sent
        return sent


@dataclass
class Env:
    url: str
    conn: asyncpg.Connection
    settings: OutboxTestSettings
    producer: AIOKafkaProducer
    bootstrap: str
    tasks: list[asyncio.Task] = field(default_factory=list)

    def relay(self, cls=CountingRelay, producer=None, poll_seconds=0.1, metrics=None) -> OutboxRelay:
        return cls(self.url, producer or self.producer, self.settings.topic, metrics or Metrics("test"), poll_seconds)

    def run(self, relay: OutboxRelay) -> asyncio.Task:
        task = asyncio.create_task(relay.run())
        self.tasks.append(task)
        return task

    async def read(self, spec: topics.TopicSpec = topics.USERS):
        return await read_topic(self.bootstrap, self.settings.topic(spec.name))

    async def unpublished(self) -> int:
        return await self.conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")


@pytest.fixture
async def env(infra, new_database):
    url = await new_database("outbox")
    # One partition per topic, so the topic shows the relay's order across keys too.
    settings = OutboxTestSettings(environment="test", kafka_bootstrap_servers=infra.kafka_bootstrap,
                                  topic_prefix=unique("ob-") + ".", topic_partitions=1)
    await ensure_topics(settings, [topics.USERS, topics.CONSENTS])
    conn = await asyncpg.connect(url)
    await apply_migrations(conn, [SHARED])
    producer = make_producer(settings)
    await producer.start()
    env = Env(url, conn, settings, producer, infra.kafka_bootstrap)
    yield env
    for task in env.tasks:
        task.cancel()
    await asyncio.gather(*env.tasks, return_exceptions=True)
    await producer.stop()
    await conn.close()


def registered(user_id=None) -> UserRegistered:
    return UserRegistered(user_id=user_id or uuid4(), email=f"{unique()}@example.com",
                          registered_at=datetime.now(UTC), policy_version=1, newsletter_opt_in=True)


def granted(subject_id, seq=1) -> ConsentGranted:
    return ConsentGranted(subject_id=subject_id, purpose="newsletter", recipient="first_party", seq=seq,
                          policy_version=1, source="signup", occurred_at=datetime.now(UTC))


async def enqueue_each(conn, events) -> list[str]:
    """Each event in its own committed transaction, as services do; returns their ce_ids."""
    ids = []
    for event in events:
        async with conn.transaction():
            ids.append(await enqueue(conn, event))
    return ids


def has(n: int, env: Env, spec=topics.USERS):
    async def check():
        records = await env.read(spec)
        return records if len(records) >= n else None

    return check


async def test_only_committed_events_are_relayed_in_order_with_their_headers(env):
    user = uuid4()
    with pytest.raises(Rollback):
        async with env.conn.transaction():
            rolled_back = await enqueue(env.conn, registered(user))
            raise Rollback
    events = [registered(user), registered(), registered(user)]
    async with env.conn.transaction():  # several events in one transaction keep their order
        ids = [await enqueue(env.conn, event) for event in events]
    assert rolled_back not in ids
    assert await env.conn.fetchval("SELECT count(*) FROM outbox") == 3

    metrics = Metrics("test")
    # A long poll: events enqueued while the relay waits must be woken out by NOTIFY, not by the poll.
    env.run(env.relay(poll_seconds=30, metrics=metrics))
    records = await eventually(has(3, env))
    more = [registered(user), registered()]
    ids += await enqueue_each(env.conn, more)
    events += more
    consent = granted(user)
    [consent_id] = await enqueue_each(env.conn, [consent])
    records = await eventually(has(5, env), timeout=10)
    [(consent_meta, consent_record)] = await eventually(has(1, env, topics.CONSENTS), timeout=10)

    assert [meta.id for meta, _ in records] == ids
    assert rolled_back not in {meta.id for meta, _ in records}
    for (meta, record), event in zip(records, events, strict=True):
        assert record.value == event.model_dump_json().encode()
        assert record.key == str(event.user_id).encode()
        headers = dict(record.headers)
        assert headers["ce_specversion"] == b"1.0" and headers["content-type"] == b"application/json"
        assert (meta.type, meta.source, meta.subject) == ("UserRegistered", "/assent/identity", str(event.user_id))
    assert (consent_meta.id, consent_meta.type) == (consent_id, "ConsentGranted")
    assert consent_record.key == str(user).encode() and consent_record.value == consent.model_dump_json().encode()

    await eventually(lambda: _unpublished_is(env, 0))
    assert await env.conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL") == 6
    published = metrics.registry.get_sample_value
    assert published("outbox_events_published_total", {"topic": topics.USERS.name}) == 5
    assert published("outbox_events_published_total", {"topic": topics.CONSENTS.name}) == 1
    await eventually(lambda: metrics.registry.get_sample_value("outbox_backlog") == 0)


async def _unpublished_is(env: Env, n: int) -> bool:
    return await env.unpublished() == n


async def test_a_relay_that_crashes_before_marking_is_followed_by_a_republish_of_the_same_ids(env):
    ids = await enqueue_each(env.conn, [registered() for _ in range(3)])
    crashed = env.relay()
    crash_conn = await asyncpg.connect(env.url)
    try:
        with pytest.raises(Rollback):
            async with crash_conn.transaction():  # the mark is lost with the transaction, as in a crash
                assert await crashed.publish_pending(crash_conn) == 3
                raise Rollback
    finally:
        await crash_conn.close()
    assert [meta.id for meta, _ in await env.read()] == ids  # sent...
    assert await env.unpublished() == 3  # ...but not marked

    env.run(env.relay())
    records = await eventually(has(6, env))
    await eventually(lambda: _unpublished_is(env, 0))
    assert [meta.id for meta, _ in records] == ids + ids  # the same ce_ids, not new ones
    assert [r.value for _, r in records[:3]] == [r.value for _, r in records[3:]]

    # ...which a consumer's inbox drops.
    pool = await asyncpg.create_pool(env.url, min_size=1, max_size=2)
    try:
        await pool.execute("CREATE TABLE welcomed (user_id uuid NOT NULL)")

        async def welcome(conn, event, meta):
            await conn.execute("INSERT INTO welcomed VALUES ($1)", event.user_id)

        async def no_dead_letters(record, reason):
            raise AssertionError(f"dead-lettered: {reason}")

        metrics = Metrics("test")
        inbox = Inbox(pool, metrics, no_dead_letters)
        handlers = {"UserRegistered": Handler(UserRegistered, welcome)}
        applied = [await inbox.consume(topics.USERS.name, record, handlers) for _, record in records]
        assert applied == [True] * 3 + [False] * 3
        assert await pool.fetchval("SELECT count(*) FROM welcomed") == 3
        assert metrics.registry.get_sample_value("inbox_duplicates_dropped_total", {"topic": topics.USERS.name}) == 3
    finally:
        await pool.close()


async def test_two_relays_at_once_publish_each_event_exactly_once_and_one_takes_over_from_the_other(env):
    before = await enqueue_each(env.conn, [registered() for _ in range(15)])
    relays = [env.relay(), env.relay()]
    tasks = [env.run(relay) for relay in relays]
    during = await enqueue_each(env.conn, [registered() for _ in range(15)])  # while both run
    records = await eventually(has(30, env))
    await eventually(lambda: _unpublished_is(env, 0))
    assert sorted(relay.published for relay in relays) == [0, 30]  # only the lock holder publishes

    holder = next(i for i, relay in enumerate(relays) if relay.published)
    tasks[holder].cancel()
    await asyncio.gather(tasks[holder], return_exceptions=True)
    after = await enqueue_each(env.conn, [registered() for _ in range(5)])
    records = await eventually(has(35, env))
    await eventually(lambda: _unpublished_is(env, 0))
    assert relays[1 - holder].published == 5  # the standby took the lock and went on

    counts = Counter(meta.id for meta, _ in records)
    assert len(records) == 35 and set(counts.values()) == {1}
    assert [meta.id for meta, _ in records] == before + during + after


class FlakyProducer(AIOKafkaProducer):
    """A real producer whose first send fails as when the broker connection drops."""

    failures = 1

    async def send(self, *args, **kwargs):
        if self.failures:
            self.failures -= 1
            raise KafkaConnectionError("connection to the broker was lost")
        return await super().send(*args, **kwargs)


async def test_the_relay_survives_a_kafka_error_and_publishes_afterwards(env):
    producer = FlakyProducer(bootstrap_servers=env.bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        ids = await enqueue_each(env.conn, [registered() for _ in range(2)])
        task = env.run(env.relay(producer=producer, poll_seconds=0.05))
        records = await eventually(has(2, env))
        assert producer.failures == 0  # the error did happen
        assert [meta.id for meta, _ in records] == ids
        assert not task.done(), task.exception() if task.done() and not task.cancelled() else None
        await eventually(lambda: _unpublished_is(env, 0))
        more = await enqueue_each(env.conn, [registered()])
        records = await eventually(has(3, env))
        assert [meta.id for meta, _ in records] == ids + more
    finally:
        for task in env.tasks:
            task.cancel()
        await asyncio.gather(*env.tasks, return_exceptions=True)
        await producer.stop()
