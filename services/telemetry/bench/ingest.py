"""Ingest benchmark: hits/s through POST /v1/collect, and the lag until the rollups hold every hit.

    uv run python services/telemetry/bench/ingest.py [--hits 20000] [--concurrency 16]

Uses KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL when both are set, else starts Kafka and PostgreSQL as
the tests do. The app runs in this process (no HTTP socket), so the numbers are the service's own cost.
"""

import argparse
import asyncio
import itertools
import os
import shutil
import time
from contextlib import ExitStack
from pathlib import Path

from assent_devtools.devstack.postgres_server import ensure_database
from assent_devtools.testing.apps import base_settings, serve
from assent_devtools.testing.helpers import unique
from assent_devtools.testing.infra import start_infra
from assent_telemetry.main import create_app
from assent_telemetry.settings import TelemetrySettings

AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
)


async def _phase(client, site: str, hits: int, batch: int, concurrency: int, counted_before: int, admin: dict) -> None:
    requests = itertools.count()
    total_requests = hits // batch

    async def worker() -> None:
        while (n := next(requests)) < total_requests:
            body = [{"site_id": site, "url": f"https://demo.example/p{n % 50}"}] * batch
            response = await client.post("/v1/collect", json=body if batch > 1 else body[0], headers={
                "X-Forwarded-For": f"198.51.{n % 250}.{n % 200}", "User-Agent": AGENTS[n % len(AGENTS)]})
            response.raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    accepted = time.perf_counter()
    expected = counted_before + total_requests * batch
    while True:
        stats = (await client.get("/v1/stats", headers=admin, params={"site_id": site})).json()
        if stats["pageviews"] >= expected:
            break
        await asyncio.sleep(0.05)
    done = time.perf_counter()
    label = "single hits" if batch == 1 else f"batches of {batch}"
    print(f"{label:>15}: {total_requests * batch / (accepted - started):8.0f} hits/s ingest, "
          f"lag to rollups after the last hit {done - accepted:5.2f} s, "
          f"end to end {total_requests * batch / (done - started):8.0f} hits/s")


async def main(hits: int, concurrency: int) -> None:
    root = Path(__file__).resolve().parents[3]
    state = root / "var" / "bench" / str(os.getpid())
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, state, True)
        infra = start_infra(stack, state, root / "var" / "cache")
        database_url = await ensure_database(infra.postgres_admin_url, unique("bench"))
        settings = TelemetrySettings(**base_settings(infra, database_url, unique("bench-") + ".",
                                                     trust_forwarded_for=True, log_level="WARNING"))
        admin = {"Authorization": f"Bearer {settings.admin_token}"}
        async with serve(create_app(settings)) as client:
            await _phase(client, "demo", hits // 10, 1, concurrency, 0, admin)
            await _phase(client, "demo", hits, 100, concurrency, hits // 10, admin)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(main(args.hits, args.concurrency))
