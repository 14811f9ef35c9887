"""Scaling with replicas: the busiest scenarios with 1 and then 2 instances of their service.

Telemetry ingest (the highest volume), registrations (the most CPU per operation, argon2id), consent
writes, and consent change -> delivery with 2 consent and 2 mailer instances (its search starts at the
1-instance figure of this run); the generator load-balances round-robin over the instances. The 1- and
2-instance runs are back to back, so they share the machine's state of the moment.
"""

import asyncio

from bench.core import Bench
from bench.scen_api import consent_writes, registrations
from bench.scen_flows import consent_to_delivery
from bench.scen_telemetry import ingest


async def run(bench: Bench, registered: dict[str, str], tokens: dict[str, str]) -> dict:
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
    out.update(await _consent(bench, tokens))
    return out


async def _consent(bench: Bench, tokens: dict[str, str]) -> dict:
    stack, out = bench.stack, {}
    one = bench.results["api"]["consent_writes"]
    await asyncio.to_thread(stack.add_replica, "consent")
    try:
        print("replicas: consent writes, 2 instances...", flush=True)
        two = await consent_writes(bench, tokens)
        out["consent_writes"] = {"1": one, "2": two, "speedup": two["per_s"] / max(one["per_s"], 1e-9)}
        await asyncio.to_thread(stack.add_replica, "mailer")
        try:
            await asyncio.sleep(3)  # let the consumer groups rebalance over both mailers
            held = bench.results["flows"]["consent_to_delivery"]["sustained_max_per_s"]
            print("replicas: consent -> delivery, 2 consent + 2 mailer instances...", flush=True)
            flow = await consent_to_delivery(bench, tokens, first=held or None)
        finally:
            await asyncio.to_thread(stack.remove_replica, "mailer")
    finally:
        await asyncio.to_thread(stack.remove_replica, "consent")
    out["consent_to_delivery"] = {"1": held, "2": flow["sustained_max_per_s"], "2_detail": flow,
                                  "speedup": flow["sustained_max_per_s"] / max(held, 1e-9)}
    return out
