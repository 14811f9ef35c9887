"""Run a service's ASGI app in the test's event loop, lifespan included, on the run's real servers."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(app, startup_timeout=90, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def base_settings(infra, database_url: str, topic_prefix: str, **overrides: object) -> dict[str, object]:
    """Keyword arguments every service's settings take in a test."""
    return {
        "environment": "test",
        "database_url": database_url,
        "kafka_bootstrap_servers": infra.kafka_bootstrap,
        "topic_prefix": topic_prefix,
        "admin_token": "test-admin-token-" + "x" * 32,
        "kafka_session_timeout_ms": 6000,
        "kafka_heartbeat_interval_ms": 500,
        "relay_poll_seconds": 0.2,
        **overrides,
    }
