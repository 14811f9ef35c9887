"""`make chaos` reduced to fit in `make test`: a few faults under a small steady load, on the test run's
Kafka and PostgreSQL, audited as the full run is: nothing lost, applied twice or sent ungated."""

import asyncio
from contextlib import ExitStack

from bench.core import kill_running
from chaos.run import SETTINGS, Options, campaign
from chaos.stack import ChaosStack

SCENARIOS = ["kill-mailer", "kill-consent", "replica-mailer"]
EVENTS = 600


async def test_killed_services_and_a_rebalance_lose_duplicate_and_ungate_nothing(infra, tmp_path):
    with ExitStack() as stack:
        stack.callback(kill_running)
        system = ChaosStack(tmp_path, SETTINGS)
        system.use_infra(infra.kafka_bootstrap, infra.postgres_admin_url)
        await asyncio.to_thread(system.start_system, stack)
        (tmp_path / "work").mkdir()
        results = await campaign(system, Options(events=EVENTS, load_seconds=12, drain_seconds=150),
                                 tmp_path / "work", SCENARIOS)
    rows = {r["scenario"]: r for r in results["scenarios"]}
    assert list(rows) == SCENARIOS
    for name, row in rows.items():
        assert row["events"] >= EVENTS, (name, row["events"])
        assert (row["lost"], row["duplicated"], row["ungated"]) == (0, 0, 0), (name, row["samples"])
        assert row["recover_s"] is not None, (name, row["recovery_steps_s"])
