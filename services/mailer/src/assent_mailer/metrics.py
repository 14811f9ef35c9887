"""The mailer's own metrics, beside the shared ones, in the app's registry."""

import asyncio

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge

from assent_mailer.ports import Mailers


class MailerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter("mailer_deliveries_sent_total", "Emails and webhooks delivered", ["channel", "kind"],
                            registry=registry)
        self.failures = Counter("mailer_delivery_failures_total", "Failed SMTP and webhook attempts (retried)",
                                ["channel"], registry=registry)
        self.waiting = Gauge("mailer_deliveries_waiting", "Deliveries due or waiting for a retry", ["channel"],
                             registry=registry)
        self.oldest_waiting = Gauge("mailer_oldest_waiting_delivery_age_seconds",
                                    "Age of the oldest delivery not yet sent", registry=registry)

    async def observe(self, mailers: Mailers, every: float = 15.0) -> None:
        while True:
            try:
                async with mailers.reading() as store:
                    waiting, oldest = await store.waiting_deliveries()
                for channel in ("email", "webhook"):
                    self.waiting.labels(channel=channel).set(waiting.get(channel, 0))
                self.oldest_waiting.set(oldest)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pass
            await asyncio.sleep(every)
