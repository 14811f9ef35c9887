"""Kafka plumbing: the broker, the producer, declared topics and inbox-backed subscribers."""

import logging
from collections.abc import Iterable, Mapping
from contextlib import nullcontext

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy

from pydantic import ValidationError

from assent_shared.events import CATALOG, PLAINTEXT_PERSONAL_DATA
from assent_shared.inbox import AnyHandler, Inbox, Record
from assent_shared.supervise import Supervisor
from assent_shared.settings import ServiceSettings
from assent_shared.topics import TopicSpec, dead_letter_topic



def make_broker(settings: ServiceSettings) -> KafkaBroker:
    # FastStream logs every message at INFO; per-message logs cost throughput and say nothing new.
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"assent-{settings.service_name}",
        logger=logging.getLogger("faststream"),
        log_level=logging.DEBUG,
    )


def make_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=f"assent-{settings.service_name}-producer",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
    )


async def ensure_topics(settings: ServiceSettings, specs: Iterable[TopicSpec], extra: Iterable[str] = ()) -> None:
    """Declare the topics a service uses, so nothing depends on the broker's auto-creation."""
    wanted = [
        NewTopic(
            settings.topic(spec.name),
            num_partitions=settings.topic_partitions,
            replication_factor=settings.topic_replication,
            topic_configs=_topic_configs(spec),
        )
        for spec in specs
    ] + [
        NewTopic(settings.topic(name), settings.topic_partitions, settings.topic_replication) for name in extra
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # a replica starting beside us created it first
    finally:
        await admin.close()


def _topic_configs(spec: TopicSpec) -> dict[str, str]:
    configs: dict[str, str] = {}
    if spec.compacted:
        configs["cleanup.policy"] = "compact"
    if spec.retention_ms is not None:
        configs["retention.ms"] = str(spec.retention_ms)
    return configs


def dead_letterer(settings: ServiceSettings, producer: AIOKafkaProducer):
    topic = settings.topic(dead_letter_topic(settings.service_name))

    async def send(record: Record, reason: str) -> None:
        headers = list(record.headers or ()) + [
            ("dlq_reason", reason.encode()),
            ("dlq_topic", record.topic.encode()),
            ("dlq_partition", str(record.partition).encode()),
            ("dlq_offset", str(record.offset).encode()),
        ]
        value = _copyable_value(record)
        if value is None:
            headers.append(("dlq_value", b"omitted"))
        await producer.send_and_wait(topic, value=value, key=record.key, headers=headers)

    return send


def _copyable_value(record: Record) -> bytes | None:
    """A dead letter copies the value only when it cannot hold personal data in the clear: a valid
    catalog event whose personal fields are sealed. Anything else keeps only where it lies."""
    ce_type = next((v.decode(errors="replace") for k, v in record.headers or () if k == "ce_type"), None)
    model = CATALOG.get(ce_type or "")
    if model is None or ce_type in PLAINTEXT_PERSONAL_DATA:
        return None
    try:
        model.model_validate_json(record.value or b"")
    except ValidationError:
        return None
    return record.value


async def undecoded(_message: KafkaMessage) -> None:
    """Subscribers read raw records: FastStream's own JSON decoding would turn a payload that is
    not JSON into an error that redelivers it forever, instead of a dead letter."""
    return None


def subscribe(
    broker: KafkaBroker,
    settings: ServiceSettings,
    spec: TopicSpec,
    inbox: Inbox,
    handlers: Mapping[str, AnyHandler],
    *,
    max_records: int | None = None,
    supervised_as: tuple[Supervisor, str] | None = None,
) -> None:
    """Register `on_<topic>`: each batch goes through the inbox in one transaction; offsets commit
    after it returns.

    Offsets are committed once per batch, not once per record (a commit per record capped a
    consumer at about 160 records/s: docs/performance.md). An error rewinds the whole batch; the
    inbox drops the records of it that were already applied. Supervised (as a task name), a failing
    batch (database gone) turns readiness red and the retry waits out a doubling pause.
    """
    async def handle(message: KafkaMessage) -> None:
        async with supervised_as[0].guard(supervised_as[1]) if supervised_as else nullcontext():
            await inbox.consume_batch(spec.name, message.raw_message, handlers)

    handle.__name__ = "on_" + spec.name.replace(".", "_")
    handle.event_types = tuple(handlers)  # what the subscriber applies: the chaos auditor reads it (chaos.audit)
    broker.subscriber(
        settings.topic(spec.name),
        group_id=settings.group_id,
        auto_offset_reset="earliest",
        batch=True,
        max_records=max_records or settings.consumer_batch,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        decoder=undecoded,
    )(handle)
