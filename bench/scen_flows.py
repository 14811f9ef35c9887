"""End-to-end flows at a fixed offered rate, and the highest rate they hold.

registration -> welcome mail: from POST /v1/users answering 201 to the .eml arriving in the sink.
consent change -> processor delivery: from the PUT answering 200 to the processor receiving the
webhook that carries that change's event id.
A step holds its rate when the generator offered >= 90 % of it without errors, every delivery
arrived, and the lag did not grow: the median of the last third of the step is at most twice the
first third's plus 0.25 s. The search doubles up to its top (the target) until a step fails, then bisects
between the last held and the first failed step down to the plan's resolution (full: 12.5 %). The
registrations' fixed-rate figure is the first step; consent -> delivery has its own step at 200/s.
"""

import asyncio
from collections.abc import Awaitable, Callable

from assent_devtools.testing.helpers import unique
from bench.core import Bench, pct, summary, until
from bench.watch import MailWatch, Processor

PURPOSES = ("surveys", "analytics_cookies", "order_updates")


def _judge(rate: float, hold: float, result: dict, sent: list[tuple[str, float]], arrived: dict[str, float]) -> dict:
    latencies = [arrived[k] - t for k, t in sorted(sent, key=lambda x: x[1]) if k in arrived]
    third = max(1, len(latencies) // 3)
    first, last = pct(latencies[:third], 50), pct(latencies[-third:], 50)
    growing = bool(latencies) and last > 2 * first + 0.25
    achieved = result["ok"] / hold
    held = achieved >= 0.9 * rate and not result["errors"] and len(latencies) == len(sent) and not growing
    return {"offered_per_s": rate, "achieved_per_s": achieved, "errors": result["errors"],
            "error_samples": result["error_samples"], "skipped": result["skipped"], "delivered": len(latencies),
            "expected": len(sent), "first_third_p50_s": first, "last_third_p50_s": last, "lag_growing": growing,
            "held": held, **summary(latencies)}


def _step_rates(first: float, top: float, resolution: float):
    """Rates to try: double from `first` up to `top` until a step fails, then bisect between the last held and
    the first failed step until they are within `resolution` of each other. Send each step's verdict in."""
    best, failed, rate = 0.0, None, first
    while failed is None:
        if (yield rate):
            best = rate
            if rate >= top:
                return
            rate = min(2 * rate, top)
        else:
            failed = rate
    while best and (failed - best) / best > resolution:
        rate = float(f"{(best + failed) / 2:.2g}")
        if not best < rate < failed:
            return
        if (yield rate):
            best = rate
        else:
            failed = rate


async def _search(bench: Bench, first: float, top: float, step: Callable[[float], Awaitable[dict]],
                  fixed: dict | None = None) -> dict:
    runs, best, verdict = [], 0.0, None
    rates = _step_rates(first, max(first, top), bench.plan.resolution)
    try:
        while True:
            rate = rates.send(verdict)
            before = bench.cpu()
            outcome = await step(rate)
            outcome["cpu_s_per_1k"] = bench.cost(before, outcome["expected"])
            runs.append(outcome)
            print(f"  {rate:g}/s: held={outcome['held']} p50={outcome['p50_s']:.3f}s p99={outcome['p99_s']:.3f}s "
                  f"delivered {outcome['delivered']}/{outcome['expected']}", flush=True)
            verdict = outcome["held"]
            best = max(best, rate) if verdict else best
    except StopIteration:
        pass
    failed = [r["offered_per_s"] for r in runs if not r["held"] and r["offered_per_s"] > best]
    return {"fixed_rate": fixed or runs[0], "sustained_max_per_s": best, "first_failed_per_s": min(failed, default=None),
            "hold_seconds": bench.plan.hold, "steps": runs, "search_top_per_s": max(first, top),
            "search_capped": best >= max(first, top)}


async def registration_to_mail(bench: Bench, registered: dict[str, str]) -> dict:
    mail = MailWatch(bench.stack.mail)

    async def step(rate: float) -> dict:
        prefix = unique("reg-") + "-"
        result = await bench.generate({"kind": "register", "prefix": prefix, "targets": bench.stack.urls["identity"],
                                       "rate": rate, "seconds": bench.plan.hold, "max_inflight": 256})
        sent = [(email, t) for email, t, _ in result["records"]]
        registered.update({email: user_id for email, _, user_id in result["records"]})
        wanted = {email for email, _ in sent}

        async def check():
            n = len(await asyncio.to_thread(mail.arrivals_to, wanted))
            return n >= len(wanted), n

        await until(check, bench.plan.drain + bench.plan.hold, stall=bench.plan.drain)
        return _judge(rate, bench.plan.hold, result, sent, mail.arrivals_to(wanted))

    print("flow: registration -> welcome mail", flush=True)
    first, share = bench.plan.reg_search
    return await _search(bench, first, share * bench.results["ceilings"]["argon2_hashes_per_s"], step)


async def register_processor(bench: Bench, processor: Processor) -> str:
    processor_id = unique("bench-proc-")
    async with bench.client("mailer") as mailer, bench.client("consent") as consent:
        answer = await mailer.put(f"/v1/processors/{processor_id}", json={
            "name": "Bench Co", "endpoint_url": processor.url, "purposes": list(PURPOSES),
            "signing_secret": processor.secret})
        answer.raise_for_status()

        async def announced():
            listed = (await consent.get("/v1/purposes")).json()
            return any(processor_id in p["recipients"] for p in listed), None

        if not await until(announced, 60):
            raise RuntimeError("the consent service never saw the bench's processor")
    return processor_id


async def consent_to_delivery(bench: Bench, tokens: dict[str, str], first: float | None = None) -> dict:
    """The fixed-rate step, then the search (from `first`, when given, instead of the plan's first step)."""
    processor = Processor("bench-secret-" + unique())
    try:
        recipient = await register_processor(bench, processor)
        slots = [[subject, token, purpose, recipient] for subject, token in tokens.items() for purpose in PURPOSES]
        state = [False] * len(slots)

        async def step(rate: float) -> dict:
            nonlocal state
            result = await bench.generate({"kind": "consent", "slots": slots, "initial": state,
                                           "targets": bench.stack.urls["consent"], "rate": rate,
                                           "seconds": bench.plan.hold, "max_inflight": 256})
            state = result["final"]
            sent = [(event_id, t) for event_id, t in result["records"]]

            async def check():
                arrived = processor.arrivals()
                n = sum(1 for k, _ in sent if k in arrived)
                return n >= len(sent), n

            await until(check, bench.plan.drain + bench.plan.hold, stall=bench.plan.drain)
            return _judge(rate, bench.plan.hold, result, sent, processor.arrivals())

        print("flow: consent change -> processor delivery", flush=True)
        print(f"  fixed rate {bench.plan.consent_fixed:g}/s (open loop):", flush=True)
        before = bench.cpu()
        fixed = await step(bench.plan.consent_fixed)
        fixed["cpu_s_per_1k"] = bench.cost(before, fixed["expected"])
        print(f"  {bench.plan.consent_fixed:g}/s: held={fixed['held']} p50={fixed['p50_s']:.3f}s "
              f"p99={fixed['p99_s']:.3f}s", flush=True)
        start, top = bench.plan.consent_search
        return await _search(bench, first or start, top, step, fixed)
    finally:
        processor.close()
