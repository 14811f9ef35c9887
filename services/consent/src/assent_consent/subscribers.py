"""Consent's Kafka subscribers: which event goes to which use case, on a store over the inbox's transaction."""

from functools import partial

from assent_consent import handlers
from assent_consent.settings import ConsentSettings
from assent_consent.storage import PgConsentStore
from assent_shared import kafka, topics
from assent_shared.bootstrap import Runtime
from assent_shared.events import EmailVerified, PolicyUpdated, ProcessorRegistered, UnsubscribeRequested, UserErased
from assent_shared.inbox import Handler
from assent_shared.uow import in_inbox


def register(runtime: Runtime, settings: ConsentSettings) -> None:
    on = partial(in_inbox, PgConsentStore)

    kafka.subscribe(runtime.broker, runtime.settings, topics.USERS, runtime.inbox, {
        "EmailVerified": Handler(EmailVerified, on(handlers.apply_email_verified, settings=settings)),
        "UserErased": Handler(UserErased, on(handlers.apply_user_erased)),
    })
    kafka.subscribe(runtime.broker, runtime.settings, topics.PROCESSORS, runtime.inbox, {
        "ProcessorRegistered": Handler(ProcessorRegistered, on(handlers.apply_processor_registered)),
    })
    kafka.subscribe(runtime.broker, runtime.settings, topics.DELIVERIES, runtime.inbox, {
        "UnsubscribeRequested": Handler(UnsubscribeRequested,
                                        on(handlers.apply_unsubscribe_requested, settings=settings)),
    })
    kafka.subscribe(runtime.broker, runtime.settings, topics.POLICIES, runtime.inbox, {
        "PolicyUpdated": Handler(PolicyUpdated, on(handlers.apply_policy_updated)),
    })
