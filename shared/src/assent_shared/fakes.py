"""In-memory stand-ins for the unit lane, the base of every service's `fakes.py` (development only: the wheel
leaves this module out, and the services' `fakes.py` with it).

A service's fake store subclasses `MemoryStore` and keeps its tables as plain attributes;
`MemoryUnitOfWork` gives it the transaction semantics the use cases rely on: a block that raises
leaves the store (and the events it published) as they were.
"""

import copy
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from assent_shared.events import Event


class MemoryStore:
    def __init__(self) -> None:
        self.published: list[Event] = []
        self.forgotten: list[str] = []

    async def publish(self, event: Event) -> str:
        self.published.append(event)
        return str(uuid.uuid4())

    async def forget(self, key: str) -> None:
        self.forgotten.append(key)

    def published_of(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.published if isinstance(e, kind)]


M = TypeVar("M", bound=MemoryStore)


class MemoryUnitOfWork(Generic[M]):
    def __init__(self, store: M) -> None:
        self.store = store
        self.commits = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[M]:
        # Tables are copied; collaborators the store was given (a test's clock) stay the same objects.
        before = {k: v if callable(v) else copy.deepcopy(v) for k, v in self.store.__dict__.items()}
        try:
            yield self.store
        except BaseException:
            self.store.__dict__.clear()
            self.store.__dict__.update(before)
            raise
        self.commits += 1

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[M]:
        yield self.store
