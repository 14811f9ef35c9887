"""The in-memory unit of work that every service's fake store runs in: a block that raises changes nothing."""

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from assent_shared.events import ErasureConfirmed
from assent_shared.fakes import MemoryStore, MemoryUnitOfWork


class Store(MemoryStore):
    def __init__(self, clock) -> None:
        super().__init__()
        self.clock = clock
        self.rows: dict[str, list[int]] = {}


def confirmed() -> ErasureConfirmed:
    return ErasureConfirmed(user_id=uuid4(), service="consent", confirmed_at=datetime.now(UTC))


async def test_a_block_that_raises_leaves_tables_and_published_events_as_they_were():
    clock = lambda: datetime.now(UTC)  # noqa: E731 - a collaborator the store was given
    uow = MemoryUnitOfWork(Store(clock))
    async with uow.transaction() as store:
        store.rows["a"] = [1]
        await store.publish(confirmed())
    with pytest.raises(RuntimeError):
        async with uow.transaction() as store:
            store.rows["a"].append(2)
            store.rows["b"] = [3]
            await store.publish(confirmed())
            await store.forget("someone")
            raise RuntimeError("refused")
    assert uow.store.rows == {"a": [1]} and len(uow.store.published) == 1 and uow.store.forgotten == []
    assert uow.store.clock is clock and uow.commits == 1


async def test_published_events_are_kept_in_order_and_found_by_type():
    uow = MemoryUnitOfWork(Store(None))
    async with uow.transaction() as store:
        first, second = confirmed(), confirmed()
        ids = [await store.publish(first), await store.publish(second)]
    assert uow.store.published_of(ErasureConfirmed) == [first, second] and len(set(ids)) == 2
