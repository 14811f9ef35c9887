"""Ceilings measured in this run: Kafka produce/consume, PostgreSQL insert transactions, an empty FastAPI
endpoint under the services' uvicorn flags, argon2id at identity's parameters, SMTP to the sink."""

import asyncio
import json
import os
import sys

from assent_devtools.devstack import services
from assent_devtools.devstack.postgres_server import ensure_database
from assent_devtools.testing.helpers import free_port, unique
from bench.core import RUNNING, Bench, rate

EMPTY = services.ServiceSpec("empty", 0, "bench.emptyapp:create_app")
OBSERVED = services.ServiceSpec("empty", 0, "bench.emptyapp:create_app_observed")


async def _child(*args: str, timeout: float = 180) -> dict:
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.ceilings", *args,
                                                   stdout=asyncio.subprocess.PIPE)
    RUNNING.add(process)
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    finally:
        RUNNING.discard(process)
        if process.returncode is None:
            process.kill()
    return json.loads(out.decode().strip().splitlines()[-1])


async def run(bench: Bench, argon2: dict[str, int]) -> dict:
    plan, stack = bench.plan, bench.stack
    limit = 2_000 if plan.name == "smoke" else 1_000_000
    print("ceilings: kafka...", flush=True)
    kafka = await _child("kafka", stack.kafka, stack.prefix + unique("ceiling-"), "3", str(plan.seconds), str(limit))
    print("ceilings: postgres...", flush=True)
    db = await ensure_database(stack.postgres, unique("bench_ceiling_"))
    postgres = await _child("postgres", db, "10", str(plan.seconds))
    print("ceilings: argon2, smtp...", flush=True)
    hashes = await _child("argon2", str(argon2["time_cost"]), str(argon2["memory_kib"]),
                          str(argon2["parallelism"]), str(os.cpu_count() or 1), str(min(plan.seconds, 5)))
    smtp = await _child("smtp", str(stack.sink.port), "40" if plan.name == "smoke" else "400", "20")
    print("ceilings: empty FastAPI endpoint...", flush=True)
    result = await _empty(bench, EMPTY)
    try:
        observed = await _empty(bench, OBSERVED)
    except RuntimeError as exc:  # it leans on a private function of shared/; a change there must not stop the run
        print(f"  the middleware ceiling failed: {exc}", flush=True)
        observed = {**result, "ok": 0, "weight": 0}
    return {
        "empty_fastapi_with_service_middleware_req_per_s": rate(observed, weight=False),
        "kafka_produce_msgs_per_s": kafka["produce_msgs_per_s"],
        "kafka_consume_msgs_per_s": kafka["consume_msgs_per_s"],
        "kafka_consume_commit_each_msgs_per_s": kafka["consume_commit_each_msgs_per_s"],
        "kafka_consume_commit_per_batch_msgs_per_s": kafka["consume_commit_per_batch_msgs_per_s"],
        "kafka_detail": kafka, "postgres_insert_tx_per_s": postgres["insert_tx_per_s"], "postgres_detail": postgres,
        "argon2_hashes_per_s": hashes["hashes_per_s"], "argon2_detail": {**hashes, **argon2},
        "smtp_connection_per_mail_per_s": smtp["connection_per_mail_per_s"],
        "smtp_kept_connection_per_s": smtp["kept_connection_per_s"],
        "empty_fastapi_req_per_s": rate(result, weight=False), "empty_fastapi_errors": result["errors"],
    }


async def _empty(bench: Bench, spec: services.ServiceSpec) -> dict:
    url = f"http://127.0.0.1:{free_port()}"
    log = bench.stack.state / "logs" / "empty.log"
    process = services.start_service(spec, int(url.rsplit(":", 1)[1]), {}, log)
    try:
        await asyncio.to_thread(services.wait_ready, url, process, log)
        return await bench.generate({"kind": "empty", "targets": [url], "concurrency": 32,
                                     "seconds": bench.plan.seconds})
    finally:
        services.stop_all([process])
