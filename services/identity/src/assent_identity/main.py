"""Identity's composition root: `uvicorn --factory assent_identity.main:create_app`."""

import httpx
from fastapi import FastAPI

from assent_identity import api, handlers, keys_api, subscribers
from assent_identity.deps import Wiring
from assent_identity.export import Exporter
from assent_identity.keyowner import DataKeys
from assent_identity.links import MailLinks
from assent_identity.passwords import Passwords
from assent_identity.settings import IdentitySettings
from assent_identity.storage import PgIdentityStore
from assent_identity.tokens import KeyVault
from assent_shared import topics
from assent_shared.bootstrap import Runtime, ServiceDefinition, create_app as create_service_app
from assent_shared.events import ERASURE_TOPICS
from assent_shared.migrate import MigrationSet
from assent_shared.uow import PgUnitOfWork


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    settings = settings or IdentitySettings()

    async def wire(runtime: Runtime) -> Wiring:
        identities = PgUnitOfWork(runtime.pool, PgIdentityStore)
        keys = DataKeys(identities, settings.data_key_secret, settings.key_clients)
        runtime.spawn(lambda: keys.prune_audit(settings.key_audit_keep_seconds, every_seconds=3600),
                      "key-audit-pruning")
        subscribers.register(runtime)
        runtime.spawn(lambda: handlers.prune_throttle_forever(identities, settings=settings), "throttle-pruning")
        client = httpx.AsyncClient(timeout=10)
        runtime.on_stop(client.aclose)
        return Wiring(identities=identities, settings=settings, passwords=Passwords(settings),
                      vault=KeyVault(settings.signing_key_secret), keys=keys, links=MailLinks(settings),
                      exporter=Exporter(client, settings), forwarding=runtime.forwarding)

    return create_service_app(ServiceDefinition(
        settings=settings,
        title="Assent identity",
        migrations=MigrationSet.of_package("identity", "assent_identity.migrations"),
        topics=(topics.USERS, topics.POLICIES, *ERASURE_TOPICS.values()),
        routers=(api.router, keys_api.router, keys_api.admin_router),
        wire=wire,
    ))
