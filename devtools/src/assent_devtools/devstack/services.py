"""The services and the Site as processes: how each starts and how to tell it is ready."""

import os
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import httpx

REGISTRY = Path(__file__).resolve().parents[4] / "deploy" / "services.toml"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int
    factory: str = ""  # default: assent_<name>.main:create_app
    has_database: bool = True

    def __post_init__(self) -> None:
        if not self.factory:
            object.__setattr__(self, "factory", f"assent_{self.name}.main:create_app")

    @property
    def database(self) -> str:
        return f"assent_{self.name}"


def load(path: Path = REGISTRY) -> tuple[ServiceSpec, ...]:
    """Every process of deploy/services.toml, in its order."""
    entries = tomllib.loads(path.read_text())["services"]
    return tuple(ServiceSpec(name, entry["port"], has_database=entry.get("database", True))
                 for name, entry in entries.items())


ALL = load()
SERVICES = tuple(spec for spec in ALL if spec.has_database)
# The web front end: no database, no Kafka; it starts once the services it calls are ready.
[SITE] = (spec for spec in ALL if not spec.has_database)


def start_service(spec: ServiceSpec, port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", spec.factory, "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--timeout-graceful-shutdown", "20"],
        env={**os.environ, **env}, stdout=log_path.open("ab"), stderr=subprocess.STDOUT,
    )


# A service starts in a few seconds on an idle machine; on a shared 2-core machine under heavy
# load an interpreter start, migrations and the consumer-group join took close to two minutes.
READY_TIMEOUT = 600.0


def wait_ready(url: str, process: subprocess.Popen, log_path: Path,
               timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}; see {log_path}")
        try:
            if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready within {timeout:.0f}s; see {log_path}")


def stop_all(processes: list[subprocess.Popen], timeout: float = 25) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
