"""Support's composition root: `uvicorn --factory assent_support.main:create_app`."""

from fastapi import FastAPI

from assent_shared import topics
from assent_shared.bootstrap import Runtime, ServiceDefinition, create_app as create_service_app
from assent_shared.migrate import MigrationSet
from assent_support import api, subscribers
from assent_support.handlers import SupportHandlers
from assent_support.settings import SupportSettings


def create_app(settings: SupportSettings | None = None) -> FastAPI:
    settings = settings or SupportSettings()

    async def wire(runtime: Runtime) -> SupportHandlers:
        service = SupportHandlers(runtime.pool, settings)
        subscribers.register(runtime, service)
        return service

    return create_service_app(ServiceDefinition(
        settings=settings,
        title="Assent support",
        migrations=MigrationSet.of_package("support", "assent_support.migrations"),
        topics=(topics.USERS, topics.INQUIRIES),
        routers=(api.router,),
        wire=wire,
    ))
