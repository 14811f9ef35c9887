"""Telemetry's aggregator: a batch subscriber in the consumer group, so replicas share the partitions."""

from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy

from assent_shared import kafka, topics
from assent_shared.bootstrap import Runtime
from assent_shared.events import DeviceConsentGranted, DeviceConsentRevoked
from assent_shared.inbox import Handler
from assent_telemetry.handlers import TelemetryHandlers
from assent_telemetry.settings import TelemetrySettings


def register(runtime: Runtime, settings: TelemetrySettings, service: TelemetryHandlers) -> None:
    async def on_telemetry_hits_v1(message: KafkaMessage) -> None:
        # Offsets commit only after the batch's transaction; an error rewinds the batch, the inbox drops repeats.
        # Supervised: while batches fail (database gone) readiness is red and retries back off.
        async with runtime.supervisor.guard("telemetry-aggregator"):
            await service.aggregate(message.raw_message)

    runtime.broker.subscriber(
        settings.topic(topics.HITS.name),
        group_id=settings.group_id,
        batch=True,
        max_records=settings.aggregator_max_records,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        decoder=kafka.undecoded,
    )(on_telemetry_hits_v1)
    # The consent view that decides the visitor cookie: applied once each, through the inbox.
    kafka.subscribe(runtime.broker, settings, topics.CONSENTS, runtime.inbox, {
        "DeviceConsentGranted": Handler(DeviceConsentGranted, service.apply_device_consent),
        "DeviceConsentRevoked": Handler(DeviceConsentRevoked, service.apply_device_consent),
    })
