"""Topic names of the contract and how each topic is declared on the broker."""

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    compacted: bool = False
    retention_ms: int | None = None

    @property
    def source(self) -> str:
        """`ce_source` of the events on this topic: its owner, the first part of the name."""
        return f"/assent/{self.name.split('.', 1)[0]}"


USERS = TopicSpec("identity.users.v1", key="user id")
CONSENTS = TopicSpec("consent.consents.v1", key="subject id")
POLICIES = TopicSpec("policy.policies.v1", key="policy id")
ACCEPTANCES = TopicSpec("policy.acceptances.v1", key="user id")
DELIVERIES = TopicSpec("mailer.deliveries.v1", key="subject id")
PROCESSORS = TopicSpec("mailer.processors.v1", key="processor id")
HITS = TopicSpec("telemetry.hits.v1", key="site id", retention_ms=7 * 24 * 3600 * 1000)
INQUIRIES = TopicSpec("support.inquiries.v1", key="inquiry id")
ORDERS = TopicSpec("orders.orders.v1", key="order id")
# Read whole by every replica of every service; a revocation matters only while the tokens it names live.
SESSIONS = TopicSpec("identity.sessions.v1", key="user id", retention_ms=24 * 3600 * 1000)

ALL = (USERS, CONSENTS, POLICIES, ACCEPTANCES, DELIVERIES, PROCESSORS, HITS, INQUIRIES, ORDERS, SESSIONS)


def dead_letter_topic(service: str) -> str:
    """One dead-letter topic per consuming service, so an operator sees whose messages failed."""
    return f"{service}.dead-letters.v1"


def resolve(name: str, prefix: str) -> str:
    """Apply the deployment's topic prefix (empty in production; tests isolate runs with it)."""
    return f"{prefix}{name}"
