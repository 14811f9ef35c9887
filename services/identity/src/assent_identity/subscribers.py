"""Identity's Kafka subscribers."""

from assent_identity.handlers import IdentityHandlers
from assent_shared import kafka, topics
from assent_shared.bootstrap import Runtime
from assent_shared.events import ERASURE_TOPICS, ErasureConfirmed, PolicyUpdated
from assent_shared.inbox import Handler


def register(runtime: Runtime, service: IdentityHandlers) -> None:
    kafka.subscribe(runtime.broker, runtime.settings, topics.POLICIES, runtime.inbox, {
        "PolicyUpdated": Handler(PolicyUpdated, service.apply_policy_updated),
    })
    for spec in ERASURE_TOPICS.values():
        kafka.subscribe(runtime.broker, runtime.settings, spec, runtime.inbox, {
            "ErasureConfirmed": Handler(ErasureConfirmed, service.apply_erasure_confirmed),
        })
