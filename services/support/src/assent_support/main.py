"""Support's composition root: `uvicorn --factory assent_support.main:create_app`."""

from fastapi import FastAPI

from assent_shared import topics
from assent_shared.bootstrap import Runtime, ServiceDefinition, create_app as create_service_app
from assent_shared.migrate import MigrationSet
from assent_shared.personal import KeyOwnerClient, PersonalFields
from assent_shared.uow import PgUnitOfWork
from assent_support import api, subscribers
from assent_support.deps import Wiring
from assent_support.handlers import KeyOwner
from assent_support.settings import SupportSettings
from assent_support.storage import PgSupportStore


def create_app(settings: SupportSettings | None = None, key_owner: KeyOwner | None = None) -> FastAPI:
    """`key_owner` replaces identity's key owner (tests); by default its internal API is used."""
    settings = settings or SupportSettings()

    async def wire(runtime: Runtime) -> Wiring:
        owner = key_owner if key_owner is not None else KeyOwnerClient.for_service(settings, runtime.on_stop)
        subscribers.register(runtime)
        return Wiring(supports=PgUnitOfWork(runtime.pool, PgSupportStore), settings=settings,
                      personal=PersonalFields(owner), owner=owner)

    return create_service_app(ServiceDefinition(
        settings=settings,
        title="Assent support",
        migrations=MigrationSet.of_package("support", "assent_support.migrations"),
        topics=(topics.USERS, topics.INQUIRIES),
        routers=(api.router,),
        wire=wire,
    ))
