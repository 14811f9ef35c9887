"""Policy's composition root: `uvicorn --factory assent_policy.main:create_app`."""

from fastapi import FastAPI

from assent_policy import api, handlers, subscribers
from assent_policy.deps import Wiring
from assent_policy.settings import PolicySettings
from assent_policy.storage import PgPolicyStore
from assent_shared import topics
from assent_shared.bootstrap import Runtime, ServiceDefinition, create_app as create_service_app
from assent_shared.migrate import MigrationSet
from assent_shared.uow import PgUnitOfWork


def create_app(settings: PolicySettings | None = None) -> FastAPI:
    settings = settings or PolicySettings()

    async def wire(runtime: Runtime) -> Wiring:
        policies = PgUnitOfWork(runtime.pool, PgPolicyStore)
        await handlers.seed_policy(policies, settings=settings)
        subscribers.register(runtime, settings)
        runtime.spawn(lambda: handlers.run_scheduler(policies, settings=settings), "policy-scheduler")
        return Wiring(policies=policies, settings=settings)

    return create_service_app(ServiceDefinition(
        settings=settings,
        title="Assent policy",
        migrations=MigrationSet.of_package("policy", "assent_policy.migrations"),
        topics=(topics.USERS, topics.POLICIES, topics.ACCEPTANCES),
        routers=(api.router,),
        wire=wire,
    ))
