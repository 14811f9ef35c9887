"""A service's storage as a port: use cases get a unit of work and talk to a store inside it.

The store of a service (its `storage.py`) holds all of its SQL as methods on one connection;
`publish` puts an event in the outbox in the same transaction, so a change and its events commit
together. The composition root hands use cases a `PgUnitOfWork`; unit tests hand them an
in-memory fake of the same store (the service's `fakes.py`).
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Generic, Protocol, TypeVar

import asyncpg

from assent_shared import outbox
from assent_shared.cloudevents import EventMeta
from assent_shared.events import Event

S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)
E = TypeVar("E", bound=Event)


class Publishing(Protocol):
    """What every store offers besides its own statements: the transactional outbox."""

    async def publish(self, event: Event) -> str:
        """Add `event` to the outbox in this transaction; returns its `ce_id`."""

    async def forget(self, key: str) -> None:
        """Drop the published events of one aggregate (on erasure)."""


class UnitOfWork(Protocol[S_co]):
    def transaction(self) -> AbstractAsyncContextManager[S_co]:
        """A store in one transaction: committed when the block ends, rolled back when it raises."""

    def reading(self) -> AbstractAsyncContextManager[S_co]:
        """A store for reads that need no transaction."""


class PgStore:
    """Base of a service's PostgreSQL store: one connection, the outbox on it."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def publish(self, event: Event) -> str:
        return await outbox.enqueue(self.conn, event)

    async def forget(self, key: str) -> None:
        await outbox.forget(self.conn, key)


class PgUnitOfWork(Generic[S]):
    def __init__(self, pool: asyncpg.Pool, store: Callable[[asyncpg.Connection], S]) -> None:
        self._pool = pool
        self._store = store

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[S]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield self._store(conn)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[S]:
        async with self._pool.acquire() as conn:
            yield self._store(conn)


def in_inbox(store: Callable[[asyncpg.Connection], S], apply: Callable[..., Awaitable[None]], **deps: Any
             ) -> Callable[[asyncpg.Connection, E, EventMeta], Awaitable[None]]:
    """An event's use case `apply(store, event, meta, **deps)` as the inbox calls it: on a store over the
    inbox's transaction, so the effects commit with the event's id."""

    async def run(conn: asyncpg.Connection, event: E, meta: EventMeta) -> None:
        await apply(store(conn), event, meta, **deps)

    return run


def in_batch_inbox(store: Callable[[asyncpg.Connection], S], apply_all: Callable[..., Awaitable[None]], **deps: Any
                   ) -> Callable[[asyncpg.Connection, Sequence[tuple[E, EventMeta]]], Awaitable[None]]:
    """`in_inbox` for a `BatchHandler`: `apply_all(store, events, **deps)` gets the batch's fresh events."""

    async def run(conn: asyncpg.Connection, events: Sequence[tuple[E, EventMeta]]) -> None:
        await apply_all(store(conn), events, **deps)

    return run
