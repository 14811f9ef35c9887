"""Scaling with replicas: the busiest scenarios with 1 and then 2 instances of their service.

Telemetry ingest (the highest volume) and registrations (the most CPU per operation, argon2id); the
generator load-balances round-robin over the instances. Both runs are back to back, so they share
the machine's state of the moment.
"""

import asyncio

from bench.core import Bench
from bench.scen_api import registrations
from bench.scen_telemetry import ingest


async def run(bench: Bench, registered: dict[str, str]) -> dict:
    stack, out = bench.stack, {}
    print("replicas: telemetry single hits, 1 then 2 instances...", flush=True)
    one = await ingest(bench, "bench-r1", 1, stack.urls["telemetry"][:1], 32)
    await asyncio.to_thread(stack.add_replica, "telemetry")
    try:
        await asyncio.sleep(3)  # let the consumer group rebalance over both aggregators
        two = await ingest(bench, "bench-r2", 1, stack.urls["telemetry"], 32)
    finally:
        await asyncio.to_thread(stack.remove_replica, "telemetry")
    out["telemetry_single_hits"] = {"1": one, "2": two, "speedup": two["hits_per_s"] / max(one["hits_per_s"], 1e-9)}
    print("replicas: identity registrations, 1 then 2 instances...", flush=True)
    one = await registrations(bench, registered, stack.urls["identity"][:1])
    await asyncio.to_thread(stack.add_replica, "identity")
    try:
        two = await registrations(bench, registered, stack.urls["identity"])
    finally:
        await asyncio.to_thread(stack.remove_replica, "identity")
    out["identity_registrations"] = {"1": one, "2": two, "speedup": two["per_s"] / max(one["per_s"], 1e-9)}
    return out
