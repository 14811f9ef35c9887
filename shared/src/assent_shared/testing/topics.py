"""Read what a test's services published, straight from Kafka."""

import asyncio

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from assent_shared.cloudevents import EventMeta, decode_headers


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
