"""Consumer lag per partition of this service's group: how far its consumers are behind."""

import asyncio

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Gauge

log = structlog.get_logger(__name__)


class LagMonitor:
    def __init__(self, bootstrap: str, group: str, registry: CollectorRegistry, every: float) -> None:
        self._bootstrap = bootstrap
        self._group = group
        self._every = every
        self._gauge = Gauge("kafka_consumer_lag", "Records not yet consumed by the group",
                            ["group", "topic", "partition"], registry=registry)

    async def run(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
        ends = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        await admin.start()
        await ends.start()
        try:
            while True:
                try:
                    await self.observe(admin, ends)
                except KafkaError as exc:
                    log.warning("consumer lag not observed", error=type(exc).__name__)
                await asyncio.sleep(self._every)
        finally:
            await ends.stop()
            await admin.close()

    async def observe(self, admin: AIOKafkaAdminClient, ends: AIOKafkaConsumer) -> None:
        committed = await admin.list_consumer_group_offsets(self._group)
        if not committed:
            return
        latest = await ends.end_offsets(list(committed))
        for tp, offset in committed.items():
            behind = max(0, latest[tp] - max(offset.offset, 0))
            self._gauge.labels(self._group, tp.topic, str(tp.partition)).set(behind)
