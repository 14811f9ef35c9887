"""The mailer's composition root: `uvicorn --factory assent_mailer.main:create_app`."""

from functools import partial

import httpx
from fastapi import FastAPI

from assent_mailer import api, handlers, subscribers
from assent_mailer.channels import Smtp, Webhooks
from assent_mailer.deps import Wiring
from assent_mailer.dispatcher import Dispatcher
from assent_mailer.domain import LEGACY_KEY_ID, SuppressionKeys
from assent_mailer.mails import MailWriter
from assent_mailer.metrics import MailerMetrics
from assent_mailer.ports import Mailers
from assent_mailer.settings import MailerSettings
from assent_mailer.storage import PgMailerStore
from assent_mailer.templating import Templates
from assent_mailer.wakeup import WorkArrived
from assent_shared import topics
from assent_shared.bootstrap import Runtime, ServiceDefinition, create_app as create_service_app
from assent_shared.migrate import MigrationSet
from assent_shared.personal import KeyOwner, KeyOwnerClient, PersonalFields
from assent_shared.uow import PgUnitOfWork


async def _suppression_keys(mailers: Mailers, settings: MailerSettings) -> SuppressionKeys:
    """The configured keys, refusing to start when hashes exist under a key no longer configured:
    dropping it would un-suppress every address hashed under it."""
    keys = SuppressionKeys(settings.suppression_keys, settings.suppression_key_id)
    async with mailers.reading() as store:
        stored = await store.suppression_key_ids()
    if LEGACY_KEY_ID in stored:
        keys = keys.with_legacy(settings.signing_secret)
    if missing := stored - keys.ids:
        raise RuntimeError(f"suppression hashes exist under keys no longer configured: {sorted(missing)}; "
                           "add them back to ASSENT_SUPPRESSION_KEYS")
    return keys


def create_app(settings: MailerSettings | None = None, key_owner: KeyOwner | None = None) -> FastAPI:
    """`key_owner` replaces identity's key owner (tests); by default its internal API is used."""
    settings = settings or MailerSettings()

    async def wire(runtime: Runtime) -> Wiring:
        owner = key_owner if key_owner is not None else KeyOwnerClient.for_service(settings, runtime.on_stop)
        personal, templates, work = PersonalFields(owner), Templates(), WorkArrived()
        mailers = PgUnitOfWork(runtime.pool, PgMailerStore)
        suppressions = await _suppression_keys(mailers, settings)
        runtime.spawn(lambda: handlers.keep_pruning_suppressions(mailers, every_seconds=3600, settings=settings),
                      "suppression-pruning")
        subscribers.register(runtime, personal=personal, suppressions=suppressions, work=work)
        mails = MailWriter(settings, templates, personal, partial(handlers.is_suppressed, suppressions=suppressions))
        # A batch's webhooks go out side by side: as many kept-alive connections as a batch can use.
        client = httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False,
                                   limits=httpx.Limits(max_keepalive_connections=settings.dispatch_batch))
        metrics = MailerMetrics(runtime.metrics.registry)
        smtp = Smtp(settings)
        runtime.on_stop(smtp.close)
        dispatcher = Dispatcher(mailers, settings, work=work, suppressions=suppressions, smtp=smtp,
                                webhooks=Webhooks(client), tracer=runtime.tracer, metrics=metrics, mails=mails)
        runtime.spawn(dispatcher.run, "dispatcher")
        runtime.spawn(lambda: metrics.observe(mailers), "mailer-metrics")
        runtime.on_stop(client.aclose)
        return Wiring(mailers=mailers, settings=settings, suppressions=suppressions, templates=templates, work=work)

    return create_service_app(ServiceDefinition(
        settings=settings,
        title="Assent mailer",
        migrations=MigrationSet.of_package("mailer", "assent_mailer.migrations"),
        topics=(topics.DELIVERIES, topics.PROCESSORS, topics.USERS, topics.CONSENTS, topics.POLICIES,
                topics.INQUIRIES, topics.ORDERS),
        routers=(api.router,),
        wire=wire,
    ))
