"""Support test support: the app on the run's real Kafka and PostgreSQL, and a stand-in token issuer."""

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from assent_shared.cloudevents import EventMeta
from assent_shared.events import Event, InquiryAnswered
from assent_shared.personal import PersonalFields
from assent_devtools.testing.apps import base_settings, serve
from assent_devtools.testing.helpers import eventually, on_database, unique
from assent_devtools.testing.keys import MemoryKeyOwner
from assent_devtools.testing.topics import publish, read_topic
from assent_support.main import create_app
from assent_support.settings import SupportSettings


@dataclass
class Deployment:
    settings: SupportSettings
    bootstrap: str
    keys: MemoryKeyOwner

    async def opened(self, event: dict) -> dict:
        """An InquiryAnswered payload with its sealed fields opened."""
        model = InquiryAnswered.model_validate(event)
        fields = PersonalFields(self.keys)
        return {**event, "email": await fields.open_optional(model, "email"),
                "body": await fields.open(model, "body"), "reply_url": await fields.open(model, "reply_url")}

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.admin_token}"}

    async def events(self, topic: str, type_: str | None = None) -> list[tuple[EventMeta, dict]]:
        """The events on `topic` so far, once the outbox has nothing left to publish."""
        async def drained() -> bool:
            return await self.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0

        await eventually(drained)
        records = await read_topic(self.bootstrap, self.settings.topic(topic))
        return [(meta, json.loads(r.value)) for meta, r in records if type_ is None or meta.type == type_]

    async def raw_topic(self, topic: str) -> bytes:
        records = await read_topic(self.bootstrap, self.settings.topic(topic))
        return b"\n".join((r.value or b"") + b"".join(v for _, v in r.headers) for _, r in records)

    async def fetchval(self, query: str, *args: object) -> object:
        return await on_database(self.settings.database_url, lambda conn: conn.fetchval(query, *args))

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        return await on_database(self.settings.database_url, lambda conn: conn.fetch(query, *args))

    async def publish(self, event: Event) -> EventMeta:
        return await publish(self.bootstrap, self.settings.topic(event.topic.name), event)

    @asynccontextmanager
    async def app(self) -> AsyncIterator[httpx.AsyncClient]:
        async with serve(create_app(self.settings, self.keys)) as client:
            yield client


@pytest.fixture
def deployment(infra, new_database, issuer) -> Callable[..., object]:
    async def make(**overrides: object) -> Deployment:
        settings = SupportSettings(**base_settings(
            infra, await new_database("support"), unique("st-") + ".", jwks_url=issuer.jwks_url,
            consumer_group=unique("support-"), topic_partitions=1, **overrides,
        ))
        return Deployment(settings, infra.kafka_bootstrap, MemoryKeyOwner())

    return make
