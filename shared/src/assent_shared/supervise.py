"""Background tasks that cannot die silently: a crash is logged, counted and restarted with backoff,
and readiness is red while a task waits to restart."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

log = structlog.get_logger(__name__)
Run = Callable[[], Awaitable[None]]


class Supervisor:
    def __init__(self, registry: CollectorRegistry, min_backoff: float, max_backoff: float) -> None:
        self._min = min_backoff
        self._max = max_backoff
        self._tasks: dict[str, asyncio.Task] = {}
        self._down: set[str] = set()
        self._failures: dict[str, int] = {}  # consecutive failures of guarded work
        self._up = Gauge("background_task_up", "1 while a background task runs, 0 while it waits to restart",
                         ["task"], registry=registry)
        self._crashes = Counter("background_task_crashes_total", "Crashes of background tasks (each restarted)",
                                ["task"], registry=registry)

    def start(self, name: str, run: Run) -> asyncio.Task:
        """Keep `run` running under `name`; `run` is called again after each crash, so it must be a
        function that makes a fresh coroutine (`dispatcher.run`, not `dispatcher.run()`)."""
        if asyncio.iscoroutine(run):
            run.close()
            raise TypeError(f"supervise {name!r} with a function that makes its coroutine, not a coroutine")
        task = asyncio.create_task(self._keep(name, run), name=name)
        self._tasks[name] = task
        return task

    @asynccontextmanager
    async def guard(self, name: str) -> AsyncIterator[None]:
        """Supervise work that something else drives (a consumer's batch handler, retried by
        rewinding): a failure is logged, counted, marks `name` down and waits out the backoff before
        it propagates, so the retry comes after the pause; the next success marks `name` up."""
        try:
            yield
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures = self._failures[name] = self._failures.get(name, 0) + 1
            delay = min(self._max, self._min * 2 ** (failures - 1))
            self._crashed(name, exc, delay)
            await asyncio.sleep(delay)
            raise
        self._failures.pop(name, None)
        self._down.discard(name)
        self._up.labels(task=name).set(1)

    def down(self) -> list[str]:
        """Names of tasks that crashed and wait to restart."""
        return sorted(self._down)

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _keep(self, name: str, run: Run) -> None:
        failures = 0
        while True:
            self._down.discard(name)
            self._up.labels(task=name).set(1)
            started = time.monotonic()
            try:
                await run()
                self._up.labels(task=name).set(0)
                return  # a task that returns has finished its work (the relay when stopped)
            except asyncio.CancelledError:
                self._up.labels(task=name).set(0)
                raise
            except Exception as exc:
                # A task that ran a while before crashing starts again from the shortest pause.
                failures = 1 if time.monotonic() - started > self._max else failures + 1
                delay = min(self._max, self._min * 2 ** (failures - 1))
                self._crashed(name, exc, delay)
                await asyncio.sleep(delay)

    def _crashed(self, name: str, exc: Exception, delay: float) -> None:
        self._down.add(name)
        self._up.labels(task=name).set(0)
        self._crashes.labels(task=name).inc()
        # The type only: an exception's text may quote data it was handling.
        log.error("background task crashed; restarting", task=name, error=type(exc).__name__,
                  restart_in_seconds=delay)
