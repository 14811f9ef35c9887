"""The fault suite, reduced: kill -9 of consent and of mailer, a Kafka restart and a mailer replica added
and removed, under load, each audited from the topics and the tables (`make chaos` runs them all, bigger)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # starts its own Kafka, PostgreSQL and five services; `make test-unit` leaves it out

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("kill-consent", "kill-mailer", "restart-kafka", "replica-mailer")
EVENTS = 1500


def test_faults_under_load_lose_duplicate_and_leak_nothing(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "chaos", "--scenarios", ",".join(SCENARIOS), "--events", str(EVENTS),
         "--load-seconds", "20", "--drain-seconds", "90", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    [path] = tmp_path.glob("*.json")
    rows = {r["scenario"]: r for r in json.loads(path.read_text())["scenarios"]}
    assert set(rows) == set(SCENARIOS), done.stdout[-3000:] + done.stderr[-3000:]
    for name, row in rows.items():
        found = {k: row[k] for k in ("lost_by_reason", "duplicated_by_reason", "ungated_by_reason", "samples")}
        assert (row["lost"], row["duplicated"], row["ungated"]) == (0, 0, 0), (name, found)
        assert row["events"] >= EVENTS, name
        assert row["recover_s"] is not None, name
        # The audit had something to check: every kind of request was accepted during the scenario.
        assert min(row["accepted"].values()) > 0, (name, row["accepted"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
