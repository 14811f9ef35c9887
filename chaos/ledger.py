"""What the topics hold, read as an auditor would: a plain Kafka consumer, no group, every partition
from the offsets where a scenario began to the end as it is now."""

import json
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from assent_shared import cloudevents


@dataclass(frozen=True)
class Rec:
    topic: str  # without the run's prefix
    partition: int
    offset: int
    ts_ms: int
    id: str
    type: str
    subject: str | None
    payload: dict


@dataclass
class Ledger:
    """Every record of the run's topics, read incrementally; scenarios are windows of offsets."""

    bootstrap: str
    prefix: str
    positions: dict[TopicPartition, int] = field(default_factory=dict)
    records: list[Rec] = field(default_factory=list)
    skip_payload: frozenset[str] = frozenset({"telemetry.hits.v1"})  # only the site is kept of a hit

    async def catch_up(self) -> dict[TopicPartition, int]:
        """Read everything published since the last call; returns the end offsets reached."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            described = await admin.describe_topics([t for t in await admin.list_topics() if t.startswith(self.prefix)])
        finally:
            await admin.close()
        parts = [TopicPartition(t["topic"], p["partition"]) for t in described if not t["error_code"]
                 for p in t["partitions"]]
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                    max_partition_fetch_bytes=4 << 20)
        await consumer.start()
        try:
            end = await consumer.end_offsets(parts) if parts else {}
            wanted = [tp for tp in parts if end[tp] > self.positions.get(tp, 0)]
            if wanted:
                consumer.assign(wanted)
                for tp in wanted:
                    consumer.seek(tp, self.positions.get(tp, 0))
                while pending := [tp for tp in wanted if await consumer.position(tp) < end[tp]]:
                    batch = await consumer.getmany(*pending, timeout_ms=1000, max_records=10000)
                    for tp, found in batch.items():
                        self.records.extend(self._decode(r) for r in found if r.offset < end[tp])
            for tp in parts:
                self.positions[tp] = max(self.positions.get(tp, 0), end[tp])
            return dict(self.positions)
        finally:
            await consumer.stop()

    async def try_catch_up(self) -> bool:
        try:
            await self.catch_up()
            return True
        except (KafkaError, OSError):
            return False  # the broker is restarting; the next call reads on from the same positions

    def _decode(self, r) -> Rec:
        topic = r.topic.removeprefix(self.prefix)
        try:
            meta = cloudevents.decode_headers(r.headers)
            ce_id, ce_type, subject = meta.id, meta.type, meta.subject
        except cloudevents.MalformedHeaders:
            ce_id, ce_type, subject = f"{r.topic}/{r.partition}/{r.offset}", "?", None
        try:
            payload = json.loads(r.value or b"null")
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            payload = {}
        if topic in self.skip_payload:
            payload = {"site_id": payload.get("site_id")}
        return Rec(topic, r.partition, r.offset, r.timestamp, ce_id, ce_type, subject, payload)

    def since(self, start: dict[TopicPartition, int]) -> list[Rec]:
        """The records published at or after the offsets `start` (a partition missing there: all of it)."""
        return [r for r in self.records
                if r.offset >= start.get(TopicPartition(self.prefix + r.topic, r.partition), 0)]
