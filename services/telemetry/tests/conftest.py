"""A telemetry app per test on the run's real Kafka and PostgreSQL, with a tiny ASN database and a movable clock."""

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from assent_devtools.testing.apps import base_settings, serve
from assent_devtools.testing.helpers import unique
from assent_telemetry.main import create_app
from assent_telemetry.networks import build_database
from assent_telemetry.settings import TelemetrySettings

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: let the tests import their kit
from telemetry_testkit import ORIGIN, PARTNER_TOKEN, Clock, Telemetry  # noqa: E402


@pytest.fixture(scope="session")
def asn_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("asn") / "asn.mmdb"
    build_database([("203.0.113.0/24", 64500, "Example Net"), ("2001:db8::/32", 64501, "Example Six")], str(path))
    return str(path)


@pytest.fixture
def telemetry_app(infra, new_database, asn_database) -> Callable:
    """Starts a telemetry instance; instances given the same database and prefix form one consumer group."""

    @asynccontextmanager
    async def start(database_url: str | None = None, prefix: str | None = None,
                    **overrides: object) -> AsyncIterator[Telemetry]:
        database_url = database_url or await new_database("telemetry")
        prefix = prefix or unique("tm-") + "."
        clock = Clock()
        settings = TelemetrySettings(**base_settings(
            infra, database_url, prefix, sites={"demo": [ORIGIN], "shop": [], "blog": []},
            partners={"acme": PARTNER_TOKEN}, partner_sites={"acme": ["demo", "shop"]}, k_anonymity=3, trust_forwarded_for=True, asn_database=asn_database,
            **overrides,
        ))
        app = create_app(settings, clock=clock)
        async with serve(app) as client:
            yield Telemetry(client, prefix, database_url, clock, settings, app)

    return start


@pytest.fixture
async def telemetry(telemetry_app) -> AsyncIterator[Telemetry]:
    async with telemetry_app() as app:
        yield app
