"""What every scenario shares: the running stack, generator processes, CPU accounting, percentiles."""

import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.procs import Monitor, per_thousand

RUNNING: set[asyncio.subprocess.Process] = set()  # killed on the way out, also on Ctrl-C


def kill_running() -> None:
    for process in list(RUNNING):
        try:
            os.kill(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass
class Plan:
    """Durations and sizes of one mode (full, quick, smoke)."""

    name: str
    seconds: float  # closed-loop throughput runs
    hold: float  # each step of a sustained-rate search
    reg_search: tuple[float, float]  # first step/s, top as a share of the argon2id ceiling
    consent_search: tuple[float, float]  # first step/s, top step/s (the target)
    consent_fixed: float  # the open-loop rate of the consent -> delivery latency figure
    resolution: float  # the search bisects until the first failed step is within this share of the last held
    users: int  # subjects for consent runs and newsletter recipients
    drain: float  # how long to wait for the last deliveries of a step


PLANS = {
    "full": Plan("full", 12, 30, (5, 1.0), (12.5, 500), 200, 0.125, 60, 30),
    "quick": Plan("quick", 3, 5, (5, 0.8), (12.5, 500), 200, 0.25, 20, 6),
    "smoke": Plan("smoke", 1.5, 2, (3, 0), (3, 3), 3, 1.0, 4, 15),
}


@dataclass
class Bench:
    stack: object
    monitor: Monitor
    plan: Plan
    work: Path
    results: dict = field(default_factory=dict)
    _n: int = 0

    def url(self, service: str) -> str:
        return self.stack.urls[service][0]

    def client(self, service: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url(service), timeout=30, headers=self.stack.admin)

    async def generate(self, spec: dict) -> dict:
        """Run one load-generator process to completion; returns its result."""
        self._n += 1
        spec = {**spec, "out": str(self.work / f"load-{self._n}.out.json")}
        path = self.work / f"load-{self._n}.json"
        path.write_text(json.dumps(spec))
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.load", str(path))
        RUNNING.add(process)
        try:
            await asyncio.wait_for(process.wait(), spec["seconds"] + 90)
        finally:
            RUNNING.discard(process)
            if process.returncode is None:
                process.kill()
        return json.loads(Path(spec["out"]).read_text())

    async def generate_many(self, spec: dict, processes: int) -> dict:
        """Split a closed-loop run over several generator processes and merge their results."""
        parts = await asyncio.gather(*(self.generate({**spec, "concurrency": max(1, spec["concurrency"] // processes)})
                                       for _ in range(processes)))
        merged = {k: sum(p[k] for p in parts) for k in ("ok", "errors", "sent", "skipped", "weight")}
        merged["started"] = min(p["started"] for p in parts)
        merged["last_ok"] = max(p["last_ok"] for p in parts)
        merged["error_samples"] = [e for p in parts for e in p["error_samples"]][:5]
        merged["records"] = [r for p in parts for r in p["records"]]
        merged["progress"] = sorted(x for p in parts for x in p["progress"])
        return merged

    def cpu(self) -> dict[str, float]:
        return self.monitor.cpu()

    def cost(self, before: dict[str, float], operations: int) -> dict[str, float]:
        return per_thousand(before, self.cpu(), operations)


def rate(result: dict, weight: bool = True) -> float:
    """Operations per second over the run, from the first request to the last success."""
    seconds = max(1e-6, result["last_ok"] - result["started"])
    return (result["weight"] if weight else result["ok"]) / seconds


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summary(latencies: list[float]) -> dict:
    return {"n": len(latencies), "p50_s": pct(latencies, 50), "p99_s": pct(latencies, 99),
            "max_s": max(latencies) if latencies else float("nan")}


async def until(check, timeout: float, interval: float = 0.2, stall: float | None = None):
    """Poll `check` (returns (done, progress)) until done, the deadline, or `stall` seconds without progress."""
    deadline = time.monotonic() + timeout
    last, last_change = None, time.monotonic()
    while True:
        done, progress = await check()
        if done:
            return True
        now = time.monotonic()
        if progress != last:
            last, last_change = progress, now
        if now >= deadline or (stall is not None and now - last_change >= stall):
            return False
        await asyncio.sleep(interval)
