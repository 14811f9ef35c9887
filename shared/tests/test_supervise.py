"""Supervised background tasks: a crash is logged, counted and restarted with a growing pause."""

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from assent_shared.supervise import Supervisor
from assent_devtools.testing.helpers import eventually


def _sample(registry: CollectorRegistry, name: str, task: str) -> float | None:
    return registry.get_sample_value(name, {"task": task})


async def test_a_crashing_task_is_restarted_counted_and_reported_down_while_it_waits():
    registry = CollectorRegistry()
    supervisor = Supervisor(registry, min_backoff=0.05, max_backoff=0.4)
    starts: list[float] = []
    running = asyncio.Event()

    async def flaky() -> None:
        starts.append(asyncio.get_running_loop().time())
        if len(starts) <= 3:
            raise RuntimeError("boom")
        running.set()
        await asyncio.Event().wait()

    supervisor.start("flaky", flaky)
    await eventually(lambda: len(starts) >= 2)
    await asyncio.wait_for(running.wait(), 5)
    assert _sample(registry, "background_task_crashes_total", "flaky") == 3
    assert _sample(registry, "background_task_up", "flaky") == 1 and supervisor.down() == []
    pauses = [b - a for a, b in zip(starts, starts[1:])]
    assert pauses[0] >= 0.05 and pauses[1] >= 0.1 and pauses[2] >= 0.2  # doubling
    await supervisor.stop()
    assert _sample(registry, "background_task_up", "flaky") == 0


async def test_while_a_crashed_task_waits_to_restart_it_is_down():
    registry = CollectorRegistry()
    supervisor = Supervisor(registry, min_backoff=30, max_backoff=60)

    async def broken() -> None:
        raise ValueError("always")

    supervisor.start("broken", broken)
    await eventually(lambda: supervisor.down() == ["broken"])
    assert _sample(registry, "background_task_up", "broken") == 0
    await supervisor.stop()


async def test_a_task_that_returns_is_done_not_restarted():
    supervisor = Supervisor(CollectorRegistry(), min_backoff=0.01, max_backoff=0.01)
    calls = []

    async def once() -> None:
        calls.append(1)

    await supervisor.start("once", once)
    assert calls == [1] and supervisor.down() == []


async def test_a_coroutine_is_refused_because_it_could_not_be_restarted():
    supervisor = Supervisor(CollectorRegistry(), min_backoff=0.01, max_backoff=0.01)

    async def work() -> None:
        pass

    with pytest.raises(TypeError, match="function that makes its coroutine"):
        supervisor.start("work", work())  # type: ignore[arg-type]


async def test_guarded_work_that_fails_is_down_counted_and_retried_after_a_growing_pause():
    registry = CollectorRegistry()
    supervisor = Supervisor(registry, min_backoff=0.05, max_backoff=0.4)
    loop = asyncio.get_running_loop()
    attempts: list[float] = []

    async def batch(fail: bool) -> None:
        async with supervisor.guard("consumer"):
            attempts.append(loop.time())
            if fail:
                raise OSError("database gone")

    for _ in range(3):
        with pytest.raises(OSError):
            await batch(fail=True)
        assert supervisor.down() == ["consumer"] and _sample(registry, "background_task_up", "consumer") == 0
    assert _sample(registry, "background_task_crashes_total", "consumer") == 3
    await batch(fail=False)
    assert supervisor.down() == [] and _sample(registry, "background_task_up", "consumer") == 1
    pauses = [b - a for a, b in zip(attempts, attempts[1:])]
    assert pauses[0] >= 0.05 and pauses[1] >= 0.1 and pauses[2] >= 0.2  # doubling, before each retry
    with pytest.raises(OSError):
        await batch(fail=True)
    assert loop.time() - attempts[-1] < 0.2  # a success resets the pause to the shortest
