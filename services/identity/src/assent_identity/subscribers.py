"""Identity's Kafka subscribers: which event goes to which use case, on a store over the inbox's transaction."""

from functools import partial

from assent_identity import handlers
from assent_identity.storage import PgIdentityStore
from assent_shared import kafka, topics
from assent_shared.bootstrap import Runtime
from assent_shared.events import ERASURE_TOPICS, ErasureConfirmed, PolicyUpdated
from assent_shared.inbox import Handler
from assent_shared.uow import in_inbox


def register(runtime: Runtime) -> None:
    on = partial(in_inbox, PgIdentityStore)
    kafka.subscribe(runtime.broker, runtime.settings, topics.POLICIES, runtime.inbox, {
        "PolicyUpdated": Handler(PolicyUpdated, on(handlers.apply_policy_updated)),
    })
    for spec in ERASURE_TOPICS.values():
        kafka.subscribe(runtime.broker, runtime.settings, spec, runtime.inbox, {
            "ErasureConfirmed": Handler(ErasureConfirmed, on(handlers.apply_erasure_confirmed)),
        })
