"""Closed-loop throughput of single APIs: registrations, logins, consent writes; SMTP sends via a newsletter."""

import asyncio
import time

from assent_devtools.testing.helpers import unique
from bench.core import Bench, rate, until
from bench.watch import MailWatch


def _figure(result: dict, cost: dict, **extra) -> dict:
    return {"per_s": rate(result, weight=False), "ok": result["ok"], "errors": result["errors"],
            "error_samples": result["error_samples"], "cpu_s_per_1k": cost, **extra}


async def registrations(bench: Bench, registered: dict[str, str], targets: list[str] | None = None) -> dict:
    before = bench.cpu()
    result = await bench.generate({"kind": "register", "prefix": unique("user-") + "-", "concurrency": 8,
                                   "targets": targets or bench.stack.urls["identity"], "seconds": bench.plan.seconds})
    registered.update({email: user_id for email, _, user_id in result["records"]})
    return _figure(result, bench.cost(before, result["ok"]), concurrency=8,
                   instances=len(targets or bench.stack.urls["identity"]))


async def logins(bench: Bench, registered: dict[str, str]) -> tuple[dict, dict[str, str]]:
    """Logins/s, and an access token for each of the first users (subjects of the consent runs)."""
    users = list(registered)[: max(bench.plan.users, 1)]
    before = bench.cpu()
    result = await bench.generate({"kind": "login", "users": users, "concurrency": 8, "count": 100_000,
                                   "targets": bench.stack.urls["identity"], "seconds": max(bench.plan.seconds, 3)})
    tokens = {registered[email]: token for email, token in result["records"]}
    return _figure(result, bench.cost(before, result["ok"]), concurrency=8), tokens


async def consent_writes(bench: Bench, tokens: dict[str, str]) -> dict:
    """First-party purposes: each write is a real change (a toggle) but sends nothing to a processor."""
    slots = [[s, t, p, "first_party"] for s, t in tokens.items() for p in ("surveys", "analytics_cookies")]
    before = bench.cpu()
    result = await bench.generate({"kind": "consent", "slots": slots, "concurrency": 16,
                                   "targets": bench.stack.urls["consent"], "seconds": bench.plan.seconds})
    return _figure(result, bench.cost(before, result["ok"]), concurrency=16, subjects=len(tokens))


async def smtp_sends(bench: Bench, registered: dict[str, str]) -> dict:
    """A newsletter to every registered user (each subscribed by an admin grant, since the signup's grant waits
for a verified address): mails/s from the POST to the last .eml.

The figure includes the mailer planning one delivery per subscriber; the sink runs in the bench's process."""
    mail = MailWatch(bench.stack.mail)
    mail.scan()
    issue = unique("issue-")
    expected = len(registered)
    await _subscribe(bench, list(registered.values()))
    before = bench.cpu()
    started = time.time()
    queued = 0
    async with bench.client("mailer") as mailer:
        # Re-posting an issue reaches each subscriber once: repeat until the mailer has seen every grant.
        while queued < expected and time.time() - started < 60:
            answer = await mailer.post("/v1/newsletters", json={"issue_id": issue, "title": f"Bench {issue}",
                                                                 "body": "Hello from the benchmark."})
            answer.raise_for_status()
            queued += answer.json()["queued"]
            if queued < expected:
                await asyncio.sleep(0.2)

    def ours() -> list[float]:
        return [t for t, _, subject in mail.scan().values() if issue in subject]

    async def check():
        n = len(await asyncio.to_thread(ours))
        return n >= expected, n

    await until(check, 600, interval=0.5, stall=bench.plan.drain)
    times = sorted(ours())
    seconds = max(1e-6, (times[-1] - started) if times else 0)
    return {"per_s": len(times) / seconds if times else 0.0, "sent": len(times), "expected": expected,
            "seconds": seconds, "cpu_s_per_1k": bench.cost(before, len(times))}


async def _subscribe(bench: Bench, subject_ids: list[str]) -> None:
    limit = asyncio.Semaphore(16)
    async with bench.client("consent") as consent:
        async def grant(subject_id: str) -> None:
            async with limit:
                answer = await consent.put(f"/v1/subjects/{subject_id}/consents/newsletter/first_party",
                                           json={"granted": True})
                answer.raise_for_status()

        await asyncio.gather(*(grant(s) for s in subject_ids))
