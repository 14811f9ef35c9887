"""Scenarios: steady load of registrations, consent changes and hits (bench's generator processes),
a fault in the middle, the canary's time to recover, then the audit once the system has drained."""

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import psutil

from assent_devtools.devstack import environments, services
from assent_devtools.testing.helpers import unique
from bench.core import PLANS, Bench
from bench.load import PASSWORD
from bench.watch import Processor
from chaos.audit import Accepted, Findings, MailSink, audit
from chaos.ledger import Ledger
from chaos.probe import CANARY_SITE, Canary, time_to_recover
from chaos.stack import ChaosStack

PURPOSES = ("surveys", "analytics_cookies", "order_updates")
DOWN = 2.0  # seconds a killed component stays down before it is started again
HOLD = 4.0  # seconds an added replica runs (and takes partitions) before it is removed


@dataclass(frozen=True)
class Fault:
    hit: Callable[[ChaosStack], None]  # the disruption; time to recover counts from its start
    after: Callable[[ChaosStack], None] = lambda _s: None  # bringing it back, while the canary probes
    before: Callable[[ChaosStack], None] = lambda _s: None  # set-up that is not itself the fault


def _kill(name: str) -> Fault:
    return Fault(hit=lambda s: s.kill_service(name), after=lambda s: (time.sleep(DOWN), s.restart_service(name)))


def _replica(name: str) -> Fault:
    return Fault(before=lambda s: (s.add_replica(name), time.sleep(HOLD)), hit=lambda s: s.remove_replica(name))


FAULTS: dict[str, Fault] = {
    **{f"kill-{spec.name}": _kill(spec.name) for spec in services.SERVICES},
    "restart-kafka": Fault(hit=lambda s: s.kill_kafka(), after=lambda s: (time.sleep(DOWN), s.start_kafka())),
    "restart-postgres": Fault(hit=lambda s: s.crash_postgres(),
                              after=lambda s: (time.sleep(DOWN), s.start_postgres())),
    "replica-consent": _replica("consent"),
    "replica-mailer": _replica("mailer"),
}


SETTINGS = {**environments.QUICK, "ASSENT_SITES": json.dumps({"demo": [], CANARY_SITE: [], "chaos-soak": [],
                                                **{f"chaos-{n}": [] for n in FAULTS}})}


async def campaign(stack: ChaosStack, options: "Options", work: Path, scenarios: list[str],
                   soak_minutes: float | None = None) -> dict:
    """The scenarios one after the other (or, with `soak_minutes`, the soak alone) on a started stack."""
    run = Campaign(stack, options, work)
    await run.set_up()
    out = {"baseline_probe_s": await run.scenario_free_probe(), "scenarios": []}
    if soak_minutes is not None:
        out["soak"] = await run.soak(soak_minutes)
        out["scenarios"].append(out["soak"])
        return out
    for name in scenarios:
        out["scenarios"].append(await run.scenario(name))
    return out


@dataclass
class Options:
    events: int
    load_seconds: float
    drain_seconds: float
    users: int = 20
    registrations_per_s: float = 3
    consent_changes_per_s: float = 15
    hit_batch: int = 25  # hits per request: fewer requests, so the hit generator does not starve the others


@dataclass
class Campaign:
    stack: ChaosStack
    options: Options
    work: Path
    ledger: Ledger = field(init=False)
    sink: MailSink = field(init=False)
    processor: Processor = field(init=False)
    processor_id: str = ""
    users: list[tuple[str, str]] = field(default_factory=list)  # (id, email)
    state: list[bool] = field(default_factory=list)  # consent per slot, as the generator left it
    canary: Canary = field(init=False)
    bench: Bench = field(init=False)

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.stack.kafka, self.stack.prefix)
        self.sink = MailSink(self.stack.mail)
        self.processor = Processor("chaos-secret-" + unique())
        self.bench = Bench(self.stack, None, PLANS["quick"], self.work)  # for its generator processes

    def url(self, name: str) -> str:
        return self.stack.urls[name][0]

    async def set_up(self) -> None:
        self.processor_id = unique("chaos-proc-")
        async with httpx.AsyncClient(timeout=30, headers=self.stack.admin) as client:
            answer = await client.put(f"{self.url('mailer')}/v1/processors/{self.processor_id}", json={
                "name": "Chaos Co", "endpoint_url": self.processor.url, "purposes": list(PURPOSES),
                "signing_secret": self.processor.secret})
            answer.raise_for_status()
            while not any(self.processor_id in p["recipients"]
                          for p in (await client.get(f"{self.url('consent')}/v1/purposes")).json()):
                await asyncio.sleep(0.2)
            for _ in range(self.options.users):
                email = f"{unique('chaos-user-')}@example.com"
                created = await client.post(f"{self.url('identity')}/v1/users",
                                            json={"email": email, "password": PASSWORD})
                created.raise_for_status()
                self.users.append((created.json()["id"], email))
            self.state = [False] * (len(self.users) * len(PURPOSES))
            self.canary = Canary(self.stack, self.sink, self.processor, self.processor_id)
            await self.canary.sign_in(client)
        await self.ledger.catch_up()

    async def _slots(self) -> list[list[str]]:
        """Fresh tokens (they live 15 minutes) for every user, one slot per user and purpose."""
        async with httpx.AsyncClient(timeout=30) as client:
            async def login(email: str) -> str:
                answer = await client.post(f"{self.url('identity')}/v1/sessions",
                                           json={"email": email, "password": PASSWORD})
                answer.raise_for_status()
                return answer.json()["access_token"]

            tokens = await asyncio.gather(*(login(e) for _, e in self.users))
            await self.canary.sign_in(client)
            await self.canary.reset(client)
        return [[uid, token, purpose, self.processor_id] for (uid, _), token in zip(self.users, tokens)
                for purpose in PURPOSES]

    async def load(self, site: str, seconds: float, hits: int, accepted: Accepted,
                   slots: list[list[str]] | None = None) -> dict:
        """Hits, and with `slots` registrations and consent changes too, for `seconds`; adds what was accepted."""
        o = self.options
        consent = slots is not None
        specs = [{"kind": "collect", "site": site, "batch": o.hit_batch, "targets": self.stack.urls["telemetry"][:1],
                  "rate": max(1.0, hits / o.hit_batch / seconds), "seconds": seconds, "max_inflight": 64}]
        if consent:
            specs += [
                {"kind": "register", "prefix": unique("chaos-") + "-", "targets": self.stack.urls["identity"][:1],
                 "rate": o.registrations_per_s, "seconds": seconds, "max_inflight": 32},
                {"kind": "consent", "slots": slots, "initial": self.state,
                 "targets": self.stack.urls["consent"][:1], "rate": o.consent_changes_per_s, "seconds": seconds,
                 "max_inflight": 64},
            ]
        results = await asyncio.gather(*(self.bench.generate(s) for s in specs))
        accepted.hits += results[0]["weight"]
        if consent:
            accepted.users.update({user_id: email for email, _, user_id in results[1]["records"]})
            accepted.consent_events.update(event_id for event_id, _ in results[2]["records"])
            self.state = results[2]["final"]
        return {s["kind"]: {k: r[k] for k in ("ok", "errors", "error_samples")} for s, r in zip(specs, results)}

    async def drain(self, start: dict, since: float, accepted: Accepted) -> tuple[Findings, float]:
        """Audit until two audits in a row find nothing (or the deadline): returns the last findings."""
        began = time.monotonic()
        deadline = began + self.options.drain_seconds
        findings, clean_once = Findings(), False
        quiet_until = 0.0  # one progress line per 10 s at most
        while time.monotonic() < deadline:
            if await self.ledger.try_catch_up():
                try:
                    findings = await audit(window=self.ledger.since(start), every=self.ledger.records,
                                           accepted=accepted, databases=self.databases(), sink=self.sink,
                                           deliveries=list(self.processor.accepted), processor_id=self.processor_id,
                                           since=since)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    print(f"  audit waits for the databases: {type(exc).__name__}: {exc}", flush=True)
                    await asyncio.sleep(1)
                    continue
                if findings.clean and clean_once:
                    break
                clean_once = findings.clean
                if not findings.clean and time.monotonic() >= quiet_until:
                    print(f"  drain ({time.monotonic() - began:.0f}s): still waiting for {findings.open_items()}",
                          flush=True)
                    quiet_until = time.monotonic() + 10
            await asyncio.sleep(1)
        return findings, time.monotonic() - began

    def databases(self) -> dict[str, str]:
        return {name: self.stack.database(name) for name in self.stack.envs}

    async def scenario_free_probe(self) -> float | None:
        """The canary's round trip on the healthy system: what a time to recover compares with."""
        await self._slots()
        return await time_to_recover(self.canary, time.monotonic(), 120)

    async def scenario(self, name: str) -> dict:
        fault, o = FAULTS[name], self.options
        site = f"chaos-{name}"
        accepted = Accepted(site)
        await self.ledger.catch_up()
        start, since = dict(self.ledger.positions), time.time()
        print(f"{name}: load for {o.load_seconds:g}s, fault after {o.load_seconds / 4:g}s...", flush=True)
        slots = await self._slots()
        load = asyncio.create_task(self.load(site, o.load_seconds, math.ceil(o.events * 1.15), accepted, slots))
        await asyncio.sleep(o.load_seconds / 4)
        await asyncio.to_thread(fault.before, self.stack)
        t0 = time.monotonic()
        await asyncio.to_thread(fault.hit, self.stack)
        recovery = asyncio.create_task(time_to_recover(self.canary, t0, max(120.0, o.drain_seconds)))
        await asyncio.to_thread(fault.after, self.stack)
        recover_s = await recovery
        load_outcome = await load
        findings, drain_s = await self._drained(start, since, accepted)
        for _ in range(3):
            if findings.events >= o.events:
                break
            # The fault cost more events than the margin: top up with hits.
            await self.load(site, 5, max(o.hit_batch, (o.events - findings.events) * 1.1), accepted)
            findings, more = await self._drained(start, since, accepted)
            drain_s += more
        row = {"scenario": name, **findings.as_dict(), "recover_s": recover_s, "drain_s": drain_s,
               "recovery_steps_s": dict(self.canary.steps),
               "accepted": {"registrations": len(accepted.users), "consent_changes": len(accepted.consent_events),
                            "hits": accepted.hits}, "load": load_outcome}
        print(f"{name}: {row['events']} events, lost {row['lost']}, duplicated {row['duplicated']}, "
              f"ungated {row['ungated']}, recovered in {_secs(recover_s)}", flush=True)
        return row

    async def _drained(self, start: dict, since: float, accepted: Accepted) -> tuple[Findings, float]:
        accepted.users.update(self.canary.users)
        self.canary.users.clear()
        return await self.drain(start, since, accepted)

    async def soak(self, minutes: float, sample_every: float = 5.0) -> dict:
        accepted = Accepted("chaos-soak")
        await self.ledger.catch_up()
        start, since = dict(self.ledger.positions), time.time()
        samples: list[tuple[float, dict[str, int]]] = []
        stop = asyncio.Event()

        async def sample() -> None:
            while not stop.is_set():
                samples.append((time.monotonic(), self.rss()))
                try:
                    await asyncio.wait_for(stop.wait(), sample_every)
                except TimeoutError:
                    pass

        sampler = asyncio.create_task(sample())
        began = time.monotonic()
        end = began + minutes * 60
        rounds = 0
        while (left := end - time.monotonic()) > 1:
            seconds = min(300.0, left)  # tokens live 15 minutes: fresh ones every round
            rounds += 1
            print(f"soak: round {rounds}, {seconds:.0f}s of load...", flush=True)
            await self.load("chaos-soak", seconds, int(seconds * 100), accepted, await self._slots())
        stop.set()
        await sampler
        findings, drain_s = await self._drained(start, since, accepted)
        warm = began + min(60.0, minutes * 60 / 4)  # after start-up allocations settle
        first = next((s for t, s in samples if t >= warm), samples[0][1])
        last = samples[-1][1]
        rss = {name: {"start_bytes": first.get(name, 0), "end_bytes": last.get(name, 0),
                      "peak_bytes": max(s.get(name, 0) for _, s in samples),
                      "growth_bytes": last.get(name, 0) - first.get(name, 0),
                      "growth_pct": round(100 * (last.get(name, 0) - first.get(name, 0)) / max(first.get(name, 1), 1),
                                          2)}
               for name in last}
        return {"scenario": "soak", "minutes": minutes, **findings.as_dict(), "drain_s": drain_s, "rss": rss,
                "accepted": {"registrations": len(accepted.users), "consent_changes": len(accepted.consent_events),
                             "hits": accepted.hits}}

    def rss(self) -> dict[str, int]:
        out: dict[str, int] = {}
        groups = {name: [p.pid for p in ps if p.poll() is None] for name, ps in self.stack.processes.items()}
        for name, pid in self.stack.infra_pids.items():
            try:
                root = psutil.Process(pid)
                groups[name] = [pid, *(c.pid for c in root.children(recursive=True))]
            except psutil.Error:
                pass
        for name, pids in groups.items():
            total = 0
            for pid in pids:
                try:
                    total += psutil.Process(pid).memory_info().rss
                except psutil.Error:
                    pass
            out[name] = total
        return out


def _secs(value: float | None) -> str:
    return "n/a (not within the deadline)" if value is None else f"{value:.1f}s"
