"""Prometheus metrics of the shared mechanisms; each app has its own registry."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"registry": self.registry}
        self.http_requests = Counter(
            "http_requests_total", "HTTP requests by route and status", ["method", "route", "status"], **labels
        )
        self.http_latency = Histogram(
            "http_request_duration_seconds", "HTTP request latency", ["method", "route"], **labels
        )
        self.events_published = Counter("outbox_events_published_total", "Events relayed", ["topic"], **labels)
        self.outbox_backlog = Gauge("outbox_backlog", "Events waiting in the outbox", **labels)
        self.outbox_oldest_age = Gauge(
            "outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row", **labels
        )
        self.events_applied = Counter("inbox_events_applied_total", "Events applied", ["topic", "type"], **labels)
        self.inbox_duplicates = Counter(
            "inbox_duplicates_dropped_total", "Redelivered events dropped by the inbox", ["topic"], **labels
        )
        self.dead_letters = Counter("dead_letters_total", "Messages sent to the dead-letter topic", ["topic"], **labels)
        self.service_info = Gauge("assent_service_info", "Service identity", ["service"], **labels)
        self.service_info.labels(service=service).set(1)
