"""Policy's composition root: `uvicorn --factory assent_policy.main:create_app`."""

from fastapi import FastAPI

from assent_policy import api, subscribers
from assent_policy.handlers import PolicyHandlers
from assent_policy.settings import PolicySettings
from assent_shared import topics
from assent_shared.bootstrap import Runtime, ServiceDefinition, create_app as create_service_app
from assent_shared.migrate import MigrationSet


def create_app(settings: PolicySettings | None = None) -> FastAPI:
    settings = settings or PolicySettings()

    async def wire(runtime: Runtime) -> PolicyHandlers:
        service = PolicyHandlers(runtime.pool, settings)
        await service.seed()
        subscribers.register(runtime, service)
        runtime.spawn(service.run_scheduler, "policy-scheduler")
        return service

    return create_service_app(ServiceDefinition(
        settings=settings,
        title="Assent policy",
        migrations=MigrationSet.of_package("policy", "assent_policy.migrations"),
        topics=(topics.USERS, topics.POLICIES, topics.ACCEPTANCES),
        routers=(api.router,),
        wire=wire,
    ))
