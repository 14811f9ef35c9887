"""Support's Kafka subscribers: which event goes to which use case, on a store over the inbox's transaction."""

from assent_shared import kafka, topics
from assent_shared.bootstrap import Runtime
from assent_shared.events import UserErased
from assent_shared.inbox import Handler
from assent_shared.uow import in_inbox
from assent_support import handlers
from assent_support.storage import PgSupportStore


def register(runtime: Runtime) -> None:
    kafka.subscribe(runtime.broker, runtime.settings, topics.USERS, runtime.inbox, {
        "UserErased": Handler(UserErased, in_inbox(PgSupportStore, handlers.apply_user_erased)),
    })
