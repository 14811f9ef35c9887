"""pytest plugin (`-p assent_shared.testing.plugin`): session-wide real servers and per-test helpers."""

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from assent_shared.devstack.postgres_server import ensure_database
from assent_shared.testing.helpers import unique
from assent_shared.testing.infra import Infra, start_infra


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
