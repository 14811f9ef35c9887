"""Policy test support: a stand-in for identity's JWKS, user tokens, and the app on real servers."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from aiokafka.structs import ConsumerRecord

from assent_policy.main import create_app
from assent_policy.settings import PolicySettings
from assent_shared.cloudevents import EventMeta
from assent_shared.events import Event
from assent_devtools.testing.apps import base_settings, serve
from assent_devtools.testing.helpers import on_database, unique
from assent_devtools.testing.topics import publish, read_topic


@dataclass
class Deployment:
    """One database and topic prefix; apps started from it share both, like replicas or restarts do."""

    settings: PolicySettings
    bootstrap: str

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.admin_token}"}

    async def events(self, topic: str, type_: str) -> list[tuple[EventMeta, ConsumerRecord, dict]]:
        """Every `type_` event on `topic` so far, once the outbox has nothing left to publish."""
        assert await self.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
        records = await read_topic(self.bootstrap, self.settings.topic(topic))
        return [(meta, r, json.loads(r.value)) for meta, r in records if meta.type == type_]

    async def fetchval(self, query: str, *args: object) -> object:
        return await on_database(self.settings.database_url, lambda conn: conn.fetchval(query, *args))

    async def publish(self, event: Event, meta: EventMeta | None = None) -> EventMeta:
        """Puts an event on its topic as its producer would; the same `meta` again is a redelivery."""
        return await publish(self.bootstrap, self.settings.topic(event.topic.name), event, meta)

    @asynccontextmanager
    async def app(self) -> AsyncIterator[httpx.AsyncClient]:
        async with serve(create_app(self.settings)) as client:
            yield client

    @asynccontextmanager
    async def replicas(self, count: int) -> AsyncIterator[list[httpx.AsyncClient]]:
        """Starts `count` apps at once; each lives in its own task, as lifespans require."""
        stop = asyncio.Event()
        started: list[asyncio.Future[httpx.AsyncClient]] = [asyncio.get_running_loop().create_future()
                                                             for _ in range(count)]

        async def run(ready: asyncio.Future[httpx.AsyncClient]) -> None:
            try:
                async with self.app() as client:
                    ready.set_result(client)
                    await stop.wait()
            except Exception as exc:
                if not ready.done():
                    ready.set_exception(exc)
                raise

        tasks = [asyncio.create_task(run(ready)) for ready in started]
        try:
            done = await asyncio.wait_for(asyncio.gather(*started), 120)
            yield list(done)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
def deployment(infra, new_database, issuer) -> Callable[..., object]:
    async def make(**overrides: object) -> Deployment:
        settings = PolicySettings(**base_settings(
            infra, await new_database("policy"), unique("pt-") + ".", jwks_url=issuer.jwks_url,
            consumer_group=unique("policy-"), schedule_poll_seconds=0.2, topic_partitions=1, **overrides,
        ))
        return Deployment(settings, infra.kafka_bootstrap)

    return make
