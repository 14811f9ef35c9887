"""Telemetry's consumers: the aggregator (a batch subscriber in the consumer group, so replicas
share the partitions) and the consent view that decides the visitor cookie."""

from assent_shared import kafka, topics
from assent_shared.bootstrap import Runtime
from assent_shared.events import DeviceConsentGranted, DeviceConsentRevoked, PageViewed
from assent_shared.inbox import BatchHandler, Handler
from assent_telemetry.handlers import TelemetryHandlers
from assent_telemetry.settings import TelemetrySettings


def register(runtime: Runtime, settings: TelemetrySettings, service: TelemetryHandlers) -> None:
    # Supervised: while batches fail (database gone) readiness is red and retries back off.
    kafka.subscribe(runtime.broker, settings, topics.HITS, runtime.inbox,
                    {"PageViewed": BatchHandler(PageViewed, service.add_page_views)},
                    max_records=settings.aggregator_max_records,
                    supervised_as=(runtime.supervisor, "telemetry-aggregator"))
    kafka.subscribe(runtime.broker, settings, topics.CONSENTS, runtime.inbox, {
        "DeviceConsentGranted": Handler(DeviceConsentGranted, service.apply_device_consent),
        "DeviceConsentRevoked": Handler(DeviceConsentRevoked, service.apply_device_consent),
    })
