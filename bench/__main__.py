"""`make bench`: start the system as the end-to-end tests do, load it from separate processes over loopback,
print a table of figures beside the ceilings of their parts, and write bench-results/<timestamp>.json.

    python -m bench            full run (about 10-15 minutes)
    python -m bench --quick    short run (about 2 minutes)
    python -m bench --smoke    seconds: proves the machinery works; figures mean nothing

KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL (a server URL), when both are set, are used instead of
starting Kafka and PostgreSQL under var/bench/<pid>.
"""

import argparse
import asyncio
import os
import shutil
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench import report, scen_api, scen_ceilings, scen_flows, scen_replicas, scen_telemetry
from bench.core import PLANS, Bench, kill_running, until
from bench.procs import Monitor
from bench.stack import Stack

ROOT = Path(__file__).resolve().parents[1]


async def warm_up(bench: Bench) -> None:
    """One registration through to its welcome mail and one hit into the rollups: every consumer group is up."""
    async with bench.client("identity") as identity:
        (await identity.post("/v1/users", json={"email": "warmup@example.com", "password": "correct horse battery"})
         ).raise_for_status()
    async with bench.client("telemetry") as telemetry:
        (await telemetry.post("/v1/collect", json={"site_id": "demo", "url": "https://demo.example/"},
                              headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Firefox/125.0"})
         ).raise_for_status()

        async def ready():
            stats = (await telemetry.get("/v1/stats", params={"site_id": "demo"})).json()
            mails = list(bench.stack.mail.glob("*.eml"))
            return stats["pageviews"] >= 1 and bool(mails), None

        if not await until(ready, 120):
            raise RuntimeError(f"the system did not warm up; see {bench.stack.state / 'logs'}")


async def scenarios(bench: Bench, argon2: dict[str, int]) -> dict:
    r = bench.results
    await warm_up(bench)
    before, seconds = bench.cpu(), 2 if bench.plan.name == "smoke" else 10
    await asyncio.sleep(seconds)  # the background cost (consumer fetch loops, relays' polls) that every figure carries
    r["idle_cores"] = {k: round((v - before.get(k, 0)) / seconds, 4) for k, v in bench.cpu().items()}
    r["ceilings"] = await scen_ceilings.run(bench, argon2)
    r["telemetry"] = await scen_telemetry.run(bench)
    registered: dict[str, str] = {}
    print("api: registrations/s...", flush=True)
    r["api"] = {"registrations": await scen_api.registrations(bench, registered)}
    r["flows"] = {"registration_to_mail": await scen_flows.registration_to_mail(bench, registered)}
    print("api: logins/s...", flush=True)
    r["api"]["logins"], tokens = await scen_api.logins(bench, registered)
    r["flows"]["consent_to_delivery"] = await scen_flows.consent_to_delivery(bench, tokens)
    print("api: consent writes/s...", flush=True)
    r["api"]["consent_writes"] = await scen_api.consent_writes(bench, tokens)
    print(f"mailer: newsletter to {len(registered)} users...", flush=True)
    r["api"]["smtp"] = await scen_api.smtp_sends(bench, registered)
    r["replicas"] = await scen_replicas.run(bench, registered, tokens)
    return r


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run, about 2 minutes")
    parser.add_argument("--smoke", action="store_true", help="a run of seconds with tiny counts (for the smoke test)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results", help="folder of the JSON results")
    parser.add_argument("--argon2-time-cost", type=int, default=int(os.environ.get("ASSENT_ARGON2_TIME_COST", 2)))
    parser.add_argument("--argon2-memory-kib", type=int, default=int(os.environ.get("ASSENT_ARGON2_MEMORY_KIB", 19456)))
    parser.add_argument("--argon2-parallelism", type=int, default=int(os.environ.get("ASSENT_ARGON2_PARALLELISM", 1)))
    args = parser.parse_args()
    plan = PLANS["smoke" if args.smoke else "quick" if args.quick else "full"]
    argon2 = {"time_cost": args.argon2_time_cost, "memory_kib": args.argon2_memory_kib,
              "parallelism": args.argon2_parallelism}
    settings = {"ASSENT_ARGON2_TIME_COST": str(argon2["time_cost"]),
                "ASSENT_ARGON2_MEMORY_KIB": str(argon2["memory_kib"]),
                "ASSENT_ARGON2_PARALLELISM": str(argon2["parallelism"])}
    state = ROOT / "var" / "bench" / str(os.getpid())

    def on_signal(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.time()
    keep = [True]  # the state folder stays for a look only when the run failed
    try:
        with ExitStack() as stack:
            stack.callback(lambda: keep[0] or shutil.rmtree(state, ignore_errors=True))
            stack.callback(kill_running)
            system = Stack(state, settings)
            (state / "work").mkdir(parents=True, exist_ok=True)
            system.start_infra(stack, ROOT / "var" / "cache")
            print(f"starting the five services (topic prefix {system.prefix})...", flush=True)
            system.start_system(stack)
            monitor = Monitor(system).start()
            stack.callback(monitor.stop)
            bench = Bench(system, monitor, plan, state / "work")
            bench.results.update({
                "run": {"mode": plan.name, "started": started, "pid": os.getpid()},
                "machine": report.machine(), "versions": report.versions(system),
                "settings": {"argon2": argon2, "infra": system.origin, "topic_partitions": 3,
                             "uvicorn": "one process per instance, --no-access-log, uvloop+httptools when installed",
                             "service_env": {k: v for k, v in system.envs["identity"].items()
                                             if k not in ("ASSENT_ADMIN_TOKEN", "DATABASE_URL")},
                             "plan": vars(plan), "generator": "bench.load, raw HTTP/1.1 keep-alive over loopback"},
            })
            try:
                results = asyncio.run(scenarios(bench, argon2))
            except KeyboardInterrupt:
                keep[0] = False
                raise
            results["peak_rss_bytes"] = monitor.peak_rss
            results["run"]["seconds"] = time.time() - started
            rows = report.figures(results)
            results["figures"] = [{"figure": n, "value": v, "unit": u, "ceiling": c, "ceiling_value": cv,
                                   "ratio": (v / cv if cv else None),
                                   **dict(zip(("target", "met"), report.target(n, v, cv), strict=True))}
                                  for n, v, u, c, cv in rows]
            print("\n" + report.table(rows, monitor.peak_rss) + "\n\n" + report.cpu_table(results))
            path = report.write(results, args.out)
            print(f"\nwritten: {path}  ({results['run']['seconds']:.0f} s; {os.cpu_count()} cores; "
                  "figures are noisy on a shared machine)", flush=True)
            keep[0] = False
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; everything stopped", file=sys.stderr)
        return 130
    except (RuntimeError, httpx.HTTPError, OSError) as exc:
        print(f"bench failed: {exc}; state kept in {state}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
