"""Support's Kafka subscribers."""

from assent_shared import kafka, topics
from assent_shared.bootstrap import Runtime
from assent_shared.events import UserErased
from assent_shared.inbox import Handler
from assent_support.handlers import SupportHandlers


def register(runtime: Runtime, service: SupportHandlers) -> None:
    kafka.subscribe(runtime.broker, runtime.settings, topics.USERS, runtime.inbox, {
        "UserErased": Handler(UserErased, service.apply_user_erased),
    })
