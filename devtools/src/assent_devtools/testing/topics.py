"""Read what a test's services published, straight from Kafka."""

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from assent_shared.cloudevents import EventMeta, decode_headers, encode_headers, meta_for
from assent_shared.events import Event


async def read_topic(bootstrap: str, topic: str) -> list[tuple[EventMeta, ConsumerRecord]]:
    """Every record on `topic` up to its current end, with its decoded CloudEvents headers."""
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await probe.start()
    try:
        exists = topic in await probe.topics()
    finally:
        await probe.stop()
    if not exists:
        return []
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        while not consumer.assignment():
            await asyncio.sleep(0.02)
        partitions = sorted(consumer.assignment())
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records: list[tuple[EventMeta, ConsumerRecord]] = []
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend((decode_headers(r.headers), r) for r in partition_records)
        return records
    finally:
        await consumer.stop()


async def publish(bootstrap: str, topic: str, event: Event, meta: EventMeta | None = None) -> EventMeta:
    """Publish `event` as its producer would (CloudEvents headers); pass `meta` again to redeliver it."""
    meta = meta or meta_for(event)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, event.model_dump_json().encode(), key=event.key().encode(),
                                     headers=encode_headers(meta))
    finally:
        await producer.stop()
    return meta
