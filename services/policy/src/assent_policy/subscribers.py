"""Policy's Kafka subscribers: which event goes to which use case, on a store over the inbox's transaction."""

from functools import partial

from assent_policy import handlers
from assent_policy.settings import PolicySettings
from assent_policy.storage import PgPolicyStore
from assent_shared import kafka, topics
from assent_shared.bootstrap import Runtime
from assent_shared.events import UserErased, UserRegistered, UserRegisteredV2
from assent_shared.inbox import Handler
from assent_shared.uow import in_inbox


def register(runtime: Runtime, settings: PolicySettings) -> None:
    on = partial(in_inbox, PgPolicyStore)
    kafka.subscribe(runtime.broker, runtime.settings, topics.USERS, runtime.inbox, {
        "UserRegistered": Handler(UserRegistered, on(handlers.apply_user_registered, settings=settings)),
        "UserRegisteredV2": Handler(UserRegisteredV2, on(handlers.apply_user_registered, settings=settings)),
        "UserErased": Handler(UserErased, on(handlers.apply_user_erased)),
    })
