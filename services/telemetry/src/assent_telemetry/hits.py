"""Publishing hits: straight to Kafka, no outbox (see `KafkaHits`)."""

import asyncio
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaProducer

from assent_shared import cloudevents, topics
from assent_shared.events import PageViewed
from assent_shared.logs import current_correlation_id
from assent_shared.metrics import Metrics
from assent_telemetry.settings import TelemetrySettings

PublishHits = Callable[[list[PageViewed]], Awaitable[None]]


class KafkaHits:
    """No outbox here, on purpose: a hit changes nothing in telemetry's database before it is aggregated,
    so there is no state for the event to agree with, and a transaction per hit would cap ingest.
    The idempotent producer (acks=all) keeps retries from duplicating; failure answers 5xx, the
    beacon may be lost, which analytics tolerates."""

    def __init__(self, producer: AIOKafkaProducer, settings: TelemetrySettings, metrics: Metrics) -> None:
        self._producer = producer
        self._topic = settings.topic(topics.HITS.name)
        self._metrics = metrics

    async def __call__(self, events: list[PageViewed]) -> None:
        correlation_id = current_correlation_id()
        sends = [
            await self._producer.send(
                self._topic, value=event.model_dump_json().encode(), key=event.key().encode(),
                headers=cloudevents.encode_headers(cloudevents.meta_for(event, correlation_id=correlation_id)),
            )
            for event in events
        ]
        await asyncio.gather(*sends)
        self._metrics.events_published.labels(topic=topics.HITS.name).inc(len(events))
