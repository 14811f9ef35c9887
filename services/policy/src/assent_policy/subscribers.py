"""Policy's Kafka subscribers."""

from assent_policy.handlers import PolicyHandlers
from assent_shared import kafka, topics
from assent_shared.bootstrap import Runtime
from assent_shared.events import UserErased, UserRegistered, UserRegisteredV2
from assent_shared.inbox import Handler


def register(runtime: Runtime, service: PolicyHandlers) -> None:
    kafka.subscribe(runtime.broker, runtime.settings, topics.USERS, runtime.inbox, {
        "UserRegistered": Handler(UserRegistered, service.apply_user_registered),
        "UserRegisteredV2": Handler(UserRegisteredV2, service.apply_user_registered),
        "UserErased": Handler(UserErased, service.apply_user_erased),
    })
