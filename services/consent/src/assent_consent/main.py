"""Consent's composition root: `uvicorn --factory assent_consent.main:create_app`."""

from fastapi import FastAPI

from assent_consent import api, subscribers
from assent_consent.deps import Wiring
from assent_consent.receipts import ReceiptSigner
from assent_consent.settings import ConsentSettings
from assent_consent.storage import PgConsentStore
from assent_shared import topics
from assent_shared.bootstrap import Runtime, ServiceDefinition, create_app as create_service_app
from assent_shared.migrate import MigrationSet
from assent_shared.uow import PgUnitOfWork


def create_app(settings: ConsentSettings | None = None) -> FastAPI:
    settings = settings or ConsentSettings()

    async def wire(runtime: Runtime) -> Wiring:
        subscribers.register(runtime, settings)
        return Wiring(consents=PgUnitOfWork(runtime.pool, PgConsentStore), settings=settings,
                      signer=ReceiptSigner(settings.signing_secret))

    return create_service_app(ServiceDefinition(
        settings=settings,
        title="Assent consent",
        migrations=MigrationSet.of_package("consent", "assent_consent.migrations"),
        topics=(topics.CONSENTS, topics.USERS, topics.PROCESSORS, topics.POLICIES, topics.DELIVERIES),
        routers=(api.router,),
        wire=wire,
    ))
