"""Telemetry's composition root: `uvicorn --factory assent_telemetry.main:create_app`."""

from datetime import UTC, datetime

from fastapi import FastAPI

from assent_shared import topics
from assent_shared.bootstrap import Runtime, ServiceDefinition, create_app as create_service_app
from assent_shared.migrate import MigrationSet
from assent_telemetry import api, subscribers
from assent_telemetry.handlers import Clock, TelemetryHandlers
from assent_telemetry.networks import NetworkLookup
from assent_telemetry.settings import TelemetrySettings


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: TelemetrySettings | None = None, *, clock: Clock = _utc_now) -> FastAPI:
    settings = settings or TelemetrySettings()

    async def wire(runtime: Runtime) -> TelemetryHandlers:
        service = TelemetryHandlers(runtime, settings, NetworkLookup(settings.asn_database), clock)
        subscribers.register(runtime, settings, service)
        runtime.spawn(service.maintain_forever, "telemetry-maintenance")
        return service

    return create_service_app(ServiceDefinition(
        settings=settings,
        title="Assent telemetry",
        migrations=MigrationSet.of_package("telemetry", "assent_telemetry.migrations"),
        topics=(topics.HITS, topics.CONSENTS),
        routers=(api.router,),
        wire=wire,
    ))
