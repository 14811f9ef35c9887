"""pytest plugin (`-p assent_devtools.testing.plugin`): session-wide real servers and per-test helpers."""

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from assent_devtools.devstack.postgres_server import ensure_database
from assent_devtools.testing.helpers import unique
from assent_devtools.testing.infra import Infra, start_infra
from assent_devtools.testing.issuer import LocalIssuer

SERVERS = "infra"
"""The fixture that starts Kafka and PostgreSQL: a test that needs it, directly or through another fixture,
is an integration test; every other test is in the unit lane (`make test-unit`: no JVM, no database, no network)."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs the run's real Kafka and PostgreSQL (set automatically)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVERS in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def infra(request: pytest.FixtureRequest) -> Iterator[Infra]:
    root: Path = request.config.rootpath
    state = root / "var" / "test" / str(os.getpid())  # concurrent runs on one machine keep apart
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, state, True)
        yield start_infra(stack, state, root / "var" / "cache")


@pytest.fixture
async def new_database(infra: Infra):
    async def make(prefix: str = "db") -> str:
        return await ensure_database(infra.postgres_admin_url, unique(prefix))

    return make


@pytest.fixture(scope="session")
def issuer() -> Iterator[LocalIssuer]:
    """Signs access tokens as identity would and serves their JWKS (ASSENT_JWKS_URL of a service under test)."""
    issuer = LocalIssuer()
    yield issuer
    issuer.close()
