"""The mailer's composition root: `uvicorn --factory assent_mailer.main:create_app`."""

import httpx
from fastapi import FastAPI

from assent_mailer import api, subscribers
from assent_mailer.channels import Smtp, Webhooks
from assent_mailer.dispatcher import Dispatcher
from assent_mailer.handlers import MailerHandlers
from assent_mailer.metrics import MailerMetrics
from assent_mailer.settings import MailerSettings
from assent_shared import topics
from assent_shared.bootstrap import Runtime, ServiceDefinition, create_app as create_service_app
from assent_shared.migrate import MigrationSet
from assent_shared.personal import KeyOwnerClient, PersonalFields


def create_app(settings: MailerSettings | None = None) -> FastAPI:
    settings = settings or MailerSettings()

    async def wire(runtime: Runtime) -> MailerHandlers:
        owner = KeyOwnerClient.from_settings(settings)
        runtime.on_stop(owner.aclose)
        service = MailerHandlers(runtime.pool, settings, PersonalFields(owner))
        subscribers.register(runtime, service)
        client = httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
        metrics = MailerMetrics(runtime.metrics.registry)
        smtp = Smtp(settings)
        runtime.on_stop(smtp.close)
        dispatcher = Dispatcher(runtime.pool, settings, service, smtp, Webhooks(client), runtime.tracer, metrics)
        runtime.spawn(dispatcher.run, "dispatcher")
        runtime.spawn(lambda: metrics.observe(runtime.pool), "mailer-metrics")
        runtime.on_stop(client.aclose)
        return service

    return create_service_app(ServiceDefinition(
        settings=settings,
        title="Assent mailer",
        migrations=MigrationSet.of_package("mailer", "assent_mailer.migrations"),
        topics=(topics.DELIVERIES, topics.PROCESSORS, topics.USERS, topics.CONSENTS, topics.POLICIES),
        routers=(api.router,),
        wire=wire,
    ))
