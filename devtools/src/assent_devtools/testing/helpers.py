import asyncio
import inspect
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import uuid4

import asyncpg

T = TypeVar("T")


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid4().hex[:12]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def eventually(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll `check` until it returns a truthy value without raising AssertionError; fail at the deadline."""
    deadline = time.monotonic() + timeout
    last_error: AssertionError | None = None
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            last_error = None
        except AssertionError as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            if last_error is not None:
                raise last_error
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def on_database(database_url: str, run: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """`run` on a connection of its own, closed after: for a test's look into a service's tables."""
    conn = await asyncpg.connect(database_url)
    try:
        return await run(conn)
    finally:
        await conn.close()
