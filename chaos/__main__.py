"""`make chaos`: the fault suite. Starts the system as `make bench` does, on a Kafka and a PostgreSQL of
its own, holds a steady load of registrations, consent changes and hits, and runs one fault per scenario:
kill -9 of each service (then restart), a Kafka restart, a PostgreSQL restart, a replica of consent and
of mailer added and removed. After each, it audits the topics and the tables, prints a table and writes
chaos-results/<timestamp>.json.

    python -m chaos                           every scenario, at least 10,000 events each
    python -m chaos --scenarios kill-mailer   some of them
    python -m chaos --soak --soak-minutes 30  no faults: load held, RSS growth per service
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from bench import report as bench_report
from bench.core import kill_running
from chaos.run import FAULTS, SETTINGS, Options, campaign
from chaos.stack import ChaosStack

ROOT = Path(__file__).resolve().parents[1]


def table(rows: list[dict]) -> str:
    head = f"{'scenario':<18} {'events':>8} {'lost':>6} {'duplicated':>10} {'ungated':>8} {'resent':>7} " \
           f"{'time to recover':>16}"
    lines = [head, "-" * len(head)]
    for r in rows:
        recover = "n/a" if r.get("recover_s") is None else f"{r['recover_s']:.1f} s"
        lines.append(f"{r['scenario']:<18} {r['events']:>8,} {r['lost']:>6} {r['duplicated']:>10} {r['ungated']:>8} "
                     f"{r['resent']:>7} {recover:>16}")
    return "\n".join(lines)


def rss_table(rss: dict) -> str:
    lines = [f"{'process':<10} {'start MiB':>10} {'end MiB':>9} {'peak MiB':>9} {'growth MiB':>11} {'growth':>8}"]
    for name, r in sorted(rss.items()):
        lines.append(f"{name:<10} {r['start_bytes'] / 2**20:>10.1f} {r['end_bytes'] / 2**20:>9.1f} "
                     f"{r['peak_bytes'] / 2**20:>9.1f} {r['growth_bytes'] / 2**20:>11.1f} {r['growth_pct']:>7.1f}%")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=lambda s: [x for x in s.split(",") if x], default=list(FAULTS),
                        help=f"comma-separated, of: {', '.join(FAULTS)}")
    parser.add_argument("--events", type=int, default=10_000, help="events per scenario, at least")
    parser.add_argument("--load-seconds", type=float, default=40, help="load held per scenario")
    parser.add_argument("--drain-seconds", type=float, default=240, help="how long the audit waits for a clean state")
    parser.add_argument("--soak", action="store_true", help="no faults: hold load and report RSS growth")
    parser.add_argument("--soak-minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", 30)))
    parser.add_argument("--out", type=Path, default=ROOT / "chaos-results", help="folder of the JSON results")
    args = parser.parse_args()
    unknown = [s for s in args.scenarios if s not in FAULTS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; known: {', '.join(FAULTS)}")
    state = ROOT / "var" / "chaos" / str(os.getpid())

    def on_signal(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.time()
    keep = [True]
    try:
        with ExitStack() as stack:
            stack.callback(lambda: keep[0] or shutil.rmtree(state, ignore_errors=True))
            stack.callback(kill_running)
            system = ChaosStack(state, SETTINGS)
            (state / "work").mkdir(parents=True, exist_ok=True)
            system.start_infra(stack, ROOT / "var" / "cache")
            print(f"starting the services (topic prefix {system.prefix})...", flush=True)
            system.start_system(stack)
            options = Options(events=args.events, load_seconds=args.load_seconds, drain_seconds=args.drain_seconds)
            results = asyncio.run(campaign(system, options, state / "work", args.scenarios,
                                           args.soak_minutes if args.soak else None))
            results["run"] = {"started": started, "seconds": time.time() - started, "mode": "soak" if args.soak
                              else "faults", "events_per_scenario": args.events, "load_seconds": args.load_seconds,
                              "machine": bench_report.machine(), "note": "2 cores shared with other work"}
            print("\n" + table(results["scenarios"]))
            if args.soak:
                print("\nRSS per process over the soak (after warm-up):\n" + rss_table(results["soak"]["rss"]))
            args.out.mkdir(parents=True, exist_ok=True)
            path = args.out / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
            path.write_text(json.dumps(results, indent=2, default=str))
            print(f"\nwritten: {path}  ({results['run']['seconds']:.0f} s)", flush=True)
            bad = [r["scenario"] for r in results["scenarios"]
                   if r["lost"] or r["duplicated"] or r["ungated"] or ("recover_s" in r and r["recover_s"] is None)]
            if bad:
                print(f"chaos: findings in {', '.join(bad)}; state kept in {state}", file=sys.stderr)
                return 1
            keep[0] = False
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; everything stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
