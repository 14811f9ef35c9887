"""Before/after of the proposed middleware fix, without Kafka or PostgreSQL: `python -m bench.middleware`.

Serves the empty endpoint four ways with the services' uvicorn flags and loads each from a generator
process, interleaved over rounds so that a noisy neighbour hits every variant alike:
bare; + a no-op BaseHTTPMiddleware; + the services' middleware as it was (a BaseHTTPMiddleware,
bench/asgi_observe.py); + the services' middleware now (plain ASGI, assent_shared.observability).
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from assent_devtools.devstack import services
from assent_devtools.testing.helpers import free_port

VARIANTS = {
    "bare": "bench.emptyapp:create_app",
    "noop BaseHTTPMiddleware": "bench.emptyapp:create_app_noop_base",
    "services' middleware before (BaseHTTPMiddleware)": "bench.emptyapp:create_app_observed_before",
    "services' middleware now (plain ASGI)": "bench.emptyapp:create_app_observed",
}


def measure(factory: str, seconds: float, work: Path) -> float:
    port = free_port()
    log = work / "uvicorn.log"
    process = services.start_service(services.ServiceSpec("empty", port, factory), port, {}, log)
    try:
        services.wait_ready(f"http://127.0.0.1:{port}", process, log)
        spec = {"kind": "empty", "targets": [f"http://127.0.0.1:{port}"], "concurrency": 32, "seconds": seconds,
                "out": str(work / "out.json")}
        (work / "spec.json").write_text(json.dumps(spec))
        subprocess.run([sys.executable, "-m", "bench.load", str(work / "spec.json")], check=True, timeout=seconds + 60)
        result = json.loads((work / "out.json").read_text())
        return result["ok"] / max(1e-6, result["last_ok"] - result["started"])
    finally:
        services.stop_all([process])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    found: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            for name, factory in VARIANTS.items():
                found[name].append(measure(factory, args.seconds, Path(folder)))
                time.sleep(0.5)
    bare = statistics.median(found["bare"])
    for name, rates in found.items():
        median = statistics.median(rates)
        print(f"{name:<34} {median:8.0f} req/s  ({median / bare:.2f} of bare; rounds: "
              + ", ".join(f"{r:.0f}" for r in rates) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
