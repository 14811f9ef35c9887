"""Identity's composition root: `uvicorn --factory assent_identity.main:create_app`."""

import httpx
from fastapi import FastAPI

from assent_identity import api, keys_api, subscribers
from assent_identity.export import Exporter
from assent_identity.handlers import IdentityHandlers
from assent_identity.keyowner import DataKeys
from assent_identity.settings import IdentitySettings
from assent_shared import topics
from assent_shared.events import ERASURE_TOPICS
from assent_shared.bootstrap import Runtime, ServiceDefinition, create_app as create_service_app
from assent_shared.migrate import MigrationSet


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    settings = settings or IdentitySettings()

    async def wire(runtime: Runtime) -> IdentityHandlers:
        keys = DataKeys(runtime.pool, settings.data_key_secret, settings.key_clients)
        app.state.data_keys = keys
        runtime.spawn(lambda: keys.prune_audit(settings.key_audit_keep_seconds, every_seconds=3600),
                      "key-audit-pruning")
        service = IdentityHandlers(runtime.pool, settings, keys)
        subscribers.register(runtime, service)
        runtime.spawn(service.prune_throttle_forever, "throttle-pruning")
        client = httpx.AsyncClient(timeout=10)
        runtime.on_stop(client.aclose)
        app.state.exporter = Exporter(client, settings)
        return service

    app = create_service_app(ServiceDefinition(
        settings=settings,
        title="Assent identity",
        migrations=MigrationSet.of_package("identity", "assent_identity.migrations"),
        topics=(topics.USERS, topics.POLICIES, *ERASURE_TOPICS.values()),
        routers=(api.router, keys_api.router, keys_api.admin_router),
        wire=wire,
    ))
    return app
