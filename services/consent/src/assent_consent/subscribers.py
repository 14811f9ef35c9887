"""Consent's Kafka subscribers."""

from assent_consent.handlers import ConsentHandlers
from assent_shared import kafka, topics
from assent_shared.bootstrap import Runtime
from assent_shared.events import EmailVerified, PolicyUpdated, ProcessorRegistered, UnsubscribeRequested, UserErased
from assent_shared.inbox import Handler


def register(runtime: Runtime, service: ConsentHandlers) -> None:
    kafka.subscribe(runtime.broker, runtime.settings, topics.USERS, runtime.inbox, {
        "EmailVerified": Handler(EmailVerified, service.apply_email_verified),
        "UserErased": Handler(UserErased, service.apply_user_erased),
    })
    kafka.subscribe(runtime.broker, runtime.settings, topics.PROCESSORS, runtime.inbox, {
        "ProcessorRegistered": Handler(ProcessorRegistered, service.apply_processor_registered),
    })
    kafka.subscribe(runtime.broker, runtime.settings, topics.DELIVERIES, runtime.inbox, {
        "UnsubscribeRequested": Handler(UnsubscribeRequested, service.apply_unsubscribe_requested),
    })
    kafka.subscribe(runtime.broker, runtime.settings, topics.POLICIES, runtime.inbox, {
        "PolicyUpdated": Handler(PolicyUpdated, service.apply_policy_updated),
    })
