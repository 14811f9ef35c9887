"""The services and the Site as processes: how each starts and how to tell it is ready."""

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int
    factory: str

    @property
    def database(self) -> str:
        return f"assent_{self.name}"


SERVICES = (
    ServiceSpec("identity", 8101, "assent_identity.main:create_app"),
    ServiceSpec("consent", 8102, "assent_consent.main:create_app"),
    ServiceSpec("mailer", 8103, "assent_mailer.main:create_app"),
    ServiceSpec("policy", 8104, "assent_policy.main:create_app"),
    ServiceSpec("telemetry", 8105, "assent_telemetry.main:create_app"),
    ServiceSpec("support", 8106, "assent_support.main:create_app"),
)
# The web front end: no database, no Kafka; it starts once the services it calls are ready.
SITE = ServiceSpec("site", 8100, "assent_site.main:create_app")


def site_env(urls: dict[str, str], site_url: str) -> dict[str, str]:
    """What the Site needs to find the services, and what telemetry needs to take the Site's hits."""
    env = {f"ASSENT_{name.upper()}_URL": url for name, url in urls.items()}
    return {**env, "ASSENT_SITE_URL": site_url}


def telemetry_sites(site_url: str) -> str:
    return json.dumps({"site": [site_url, site_url.replace("127.0.0.1", "localhost")]})


def start_service(spec: ServiceSpec, port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", spec.factory, "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--timeout-graceful-shutdown", "20"],
        env={**os.environ, **env}, stdout=log_path.open("ab"), stderr=subprocess.STDOUT,
    )


def wait_ready(url: str, process: subprocess.Popen, timeout: float, log_path: Path) -> None:
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
