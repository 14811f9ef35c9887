"""Telemetry's consumers: the aggregator (a batch subscriber in the consumer group, so replicas
share the partitions) and the consent view that decides the visitor cookie."""

from assent_shared import kafka, topics
from assent_shared.bootstrap import Runtime
from assent_shared.events import DeviceConsentGranted, DeviceConsentRevoked, PageViewed
from assent_shared.inbox import BatchHandler, Handler
from assent_shared.uow import in_batch_inbox, in_inbox
from assent_telemetry import handlers
from assent_telemetry.handlers import Clock
from assent_telemetry.settings import TelemetrySettings
from assent_telemetry.storage import PgTelemetryStore


def register(runtime: Runtime, settings: TelemetrySettings, clock: Clock) -> None:
    add_page_views = in_batch_inbox(PgTelemetryStore, handlers.add_page_views, settings=settings, clock=clock)
    # Supervised: while batches fail (database gone) readiness is red and retries back off.
    kafka.subscribe(runtime.broker, settings, topics.HITS, runtime.inbox,
                    {"PageViewed": BatchHandler(PageViewed, add_page_views)},
                    max_records=settings.aggregator_max_records,
                    supervised_as=(runtime.supervisor, "telemetry-aggregator"))
    apply_device_consent = in_inbox(PgTelemetryStore, handlers.apply_device_consent)
    kafka.subscribe(runtime.broker, settings, topics.CONSENTS, runtime.inbox, {
        "DeviceConsentGranted": Handler(DeviceConsentGranted, apply_device_consent),
        "DeviceConsentRevoked": Handler(DeviceConsentRevoked, apply_device_consent),
    })
