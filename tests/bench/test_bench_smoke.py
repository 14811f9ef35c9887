"""`python -m bench --smoke` still runs end to end and records every section. Never asserts on timing."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # starts the five services

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("run", "machine", "versions", "settings", "idle_cores", "ceilings", "telemetry", "flows", "api", "replicas",
            "peak_rss_bytes", "figures")


def test_smoke_run_writes_every_section_with_numeric_figures(infra, tmp_path):
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap, "DATABASE_URL": infra.postgres_admin_url}
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--smoke", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [path] = tmp_path.glob("*.json")
    result = json.loads(path.read_text())
    assert all(result.get(s) for s in SECTIONS), [s for s in SECTIONS if not result.get(s)]
    assert result["machine"]["cores"] >= 1 and result["settings"]["argon2"]["memory_kib"] > 0
    for row in result["figures"]:
        assert isinstance(row["value"], int | float) and math.isfinite(row["value"]), row
    ceilings = result["ceilings"]
    for key in ("kafka_produce_msgs_per_s", "kafka_consume_msgs_per_s", "postgres_insert_tx_per_s",
                "empty_fastapi_req_per_s", "argon2_hashes_per_s"):
        assert ceilings[key] > 0, key
    assert result["telemetry"]["single"]["hits"] > 0 and result["telemetry"]["batch_100"]["hits"] > 0
    assert result["flows"]["registration_to_mail"]["fixed_rate"]["delivered"] > 0
    assert result["flows"]["consent_to_delivery"]["fixed_rate"]["delivered"] > 0
    assert result["api"]["smtp"]["sent"] > 0
    for scenario in ("telemetry_single_hits", "identity_registrations", "consent_writes", "consent_to_delivery"):
        assert set(result["replicas"][scenario]) >= {"1", "2"}, scenario
    figures = {row["figure"]: row for row in result["figures"]}
    assert any(name.startswith("peak RSS identity") for name in figures)
    assert {row["met"] for row in result["figures"] if row["target"]} <= {True, False, None}
    assert figures["identity registrations"]["target"] and figures["consent API writes"]["target"]
