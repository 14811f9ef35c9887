"""The mailer's composition root: `uvicorn --factory assent_mailer.main:create_app`."""

import httpx
from fastapi import FastAPI

from assent_mailer import api, storage, subscribers
from assent_mailer.channels import Smtp, Webhooks
from assent_mailer.dispatcher import Dispatcher
from assent_mailer.domain import LEGACY_KEY_ID, SuppressionKeys
from assent_mailer.handlers import MailerHandlers
from assent_mailer.mails import MailWriter
from assent_mailer.templating import Templates
from assent_mailer.transactional import TransactionalMail
from assent_mailer.metrics import MailerMetrics
from assent_mailer.settings import MailerSettings
from assent_shared import topics
from assent_shared.bootstrap import Runtime, ServiceDefinition, create_app as create_service_app
from assent_shared.migrate import MigrationSet
from assent_shared.personal import KeyOwner, KeyOwnerClient, PersonalFields


async def _suppression_keys(runtime: Runtime) -> SuppressionKeys:
    """The configured keys, refusing to start when hashes exist under a key no longer configured:
    dropping it would un-suppress every address hashed under it."""
    settings: MailerSettings = runtime.settings  # type: ignore[assignment]
    keys = SuppressionKeys(settings.suppression_keys, settings.suppression_key_id)
    async with runtime.pool.acquire() as conn:
        stored = await storage.suppression_key_ids(conn)
    if LEGACY_KEY_ID in stored:
        keys = keys.with_legacy(settings.signing_secret)
    if missing := stored - keys.ids:
        raise RuntimeError(f"suppression hashes exist under keys no longer configured: {sorted(missing)}; "
                           "add them back to ASSENT_SUPPRESSION_KEYS")
    return keys


def create_app(settings: MailerSettings | None = None, key_owner: KeyOwner | None = None) -> FastAPI:
    """`key_owner` replaces identity's key owner (tests); by default its internal API is used."""
    settings = settings or MailerSettings()

    async def wire(runtime: Runtime) -> MailerHandlers:
        owner = key_owner if key_owner is not None else KeyOwnerClient.for_service(settings, runtime.on_stop)
        personal, templates = PersonalFields(owner), Templates()
        service = MailerHandlers(runtime.pool, settings, personal, await _suppression_keys(runtime), templates)
        runtime.spawn(lambda: service.prune_suppressions(every_seconds=3600), "suppression-pruning")
        subscribers.register(runtime, service, TransactionalMail(service))
        mails = MailWriter(settings, templates, personal, service.is_suppressed)
        client = httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
        metrics = MailerMetrics(runtime.metrics.registry)
        smtp = Smtp(settings)
        runtime.on_stop(smtp.close)
        dispatcher = Dispatcher(runtime.pool, settings, service, smtp, Webhooks(client), runtime.tracer, metrics,
                                mails)
        runtime.spawn(dispatcher.run, "dispatcher")
        runtime.spawn(lambda: metrics.observe(runtime.pool), "mailer-metrics")
        runtime.on_stop(client.aclose)
        return service

    return create_service_app(ServiceDefinition(
        settings=settings,
        title="Assent mailer",
        migrations=MigrationSet.of_package("mailer", "assent_mailer.migrations"),
        topics=(topics.DELIVERIES, topics.PROCESSORS, topics.USERS, topics.CONSENTS, topics.POLICIES,
                topics.INQUIRIES, topics.ORDERS),
        routers=(api.router,),
        wire=wire,
    ))
