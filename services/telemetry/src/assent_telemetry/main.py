"""Telemetry's composition root: `uvicorn --factory assent_telemetry.main:create_app`."""

from datetime import UTC, datetime

from fastapi import FastAPI

from assent_shared import topics
from assent_shared.bootstrap import Runtime, ServiceDefinition, create_app as create_service_app
from assent_shared.migrate import MigrationSet
from assent_shared.uow import PgUnitOfWork
from assent_telemetry import api, handlers, subscribers
from assent_telemetry.deps import Wiring
from assent_telemetry.handlers import Clock, Ingest
from assent_telemetry.hits import KafkaHits
from assent_telemetry.networks import NetworkLookup
from assent_telemetry.ratelimit import NetworkRateLimit
from assent_telemetry.salts import DailySalts
from assent_telemetry.settings import TelemetrySettings
from assent_telemetry.storage import PgTelemetryStore


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: TelemetrySettings | None = None, *, clock: Clock = _utc_now) -> FastAPI:
    settings = settings or TelemetrySettings()

    async def wire(runtime: Runtime) -> Wiring:
        telemetries = PgUnitOfWork(runtime.pool, PgTelemetryStore)
        salts = DailySalts(telemetries)
        ingest = Ingest(NetworkLookup(settings.asn_database), salts, NetworkRateLimit(settings.network_hits_per_minute),
                        KafkaHits(runtime.producer, settings, runtime.metrics))
        subscribers.register(runtime, settings, clock)
        runtime.spawn(lambda: handlers.maintain_forever(telemetries, settings=settings, salts=salts, clock=clock),
                      "telemetry-maintenance")
        return Wiring(telemetries=telemetries, settings=settings, ingest=ingest, clock=clock,
                      forwarding=runtime.forwarding)

    return create_service_app(ServiceDefinition(
        settings=settings,
        title="Assent telemetry",
        migrations=MigrationSet.of_package("telemetry", "assent_telemetry.migrations"),
        topics=(topics.HITS, topics.CONSENTS),
        routers=(api.router,),
        wire=wire,
    ))
