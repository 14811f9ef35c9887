"""Telemetry ingest: hits/s through POST /v1/collect, and the lag from a hit's 202 to the rollups counting it.

The lag is read by polling GET /v1/stats every 0.1 s while the generator runs: the k-th hit's lag is the
first poll that counts k page views minus the moment k hits had been accepted (order of arrival assumed),
so figures carry up to 0.1 s of polling resolution.
"""

import asyncio
import bisect
import time

from bench.core import Bench, rate, summary

POLL = 0.1


async def ingest(bench: Bench, site: str, batch: int, targets: list[str], concurrency: int) -> dict:
    samples: list[tuple[float, int]] = []
    finished = asyncio.Event()

    async def poll() -> None:
        async with bench.client("telemetry") as client:
            stall_until = None
            while True:
                answer = await client.get("/v1/stats", params={"site_id": site})
                samples.append((time.time(), answer.json()["pageviews"]))
                if finished.is_set():
                    stall_until = stall_until or time.monotonic() + bench.plan.drain
                    if samples[-1][1] >= expected[0] or time.monotonic() > stall_until:
                        return
                await asyncio.sleep(POLL)

    expected = [1 << 62]
    before = bench.cpu()
    poller = asyncio.create_task(poll())
    result = await bench.generate({"kind": "collect", "site": site, "batch": batch, "targets": targets,
                                   "concurrency": concurrency, "seconds": bench.plan.seconds, "keep_progress": True})
    expected[0] = result["weight"]
    finished.set()
    await poller
    cost = bench.cost(before, result["weight"])
    return {"hits_per_s": rate(result), "requests_per_s": rate(result, weight=False), "hits": result["weight"],
            "errors": result["errors"], "error_samples": result["error_samples"], "batch": batch,
            "concurrency": concurrency, "instances": len(targets),
            "rolled_up": samples[-1][1] if samples else 0,
            "accept_to_rollup": summary(_lags(result["progress"], samples)), "cpu_s_per_1k_hits": cost}


def _lags(progress: list[tuple[float, int]], samples: list[tuple[float, int]], points: int = 500) -> list[float]:
    if not progress or not samples:
        return []
    accepted_counts = [n for _, n in progress]
    rolled_counts = [n for _, n in samples]
    total = progress[-1][1]
    lags = []
    for k in sorted({max(1, total * j // points) for j in range(1, points + 1)}):
        a = bisect.bisect_left(accepted_counts, k)
        r = bisect.bisect_left(rolled_counts, k)
        if a < len(progress) and r < len(samples):
            lags.append(max(0.0, samples[r][0] - progress[a][0]))
    return lags


async def run(bench: Bench) -> dict:
    target = [bench.url("telemetry")]
    print("telemetry: single hits...", flush=True)
    single = await ingest(bench, "bench-1", 1, target, 32)
    print("telemetry: batches of 100...", flush=True)
    batches = await ingest(bench, "bench-100", 100, target, 8)
    return {"single": single, "batch_100": batches}
