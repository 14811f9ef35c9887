"""The system under test, started as tests/e2e/conftest.py starts it: free ports, a unique topic prefix,
one fresh database per service, an SMTP sink, the five services as uvicorn processes.

Kafka and PostgreSQL come from KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL (a server URL) when both are
set; otherwise this run starts its own, durable as `make run`'s, under var/bench/<pid>.
"""

import asyncio
import os
import shutil
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from assent_devtools.devstack import environments, services
from assent_devtools.devstack.kafka_server import start_kafka
from assent_devtools.devstack.postgres_server import ensure_database, start_postgres
from assent_devtools.devstack.smtp_sink import SmtpSink
from assent_devtools.testing.helpers import free_port, unique

ADMIN_TOKEN = "bench-admin-token-" + "x" * 32
SITES = '{"demo": [], "bench-1": [], "bench-100": [], "bench-r1": [], "bench-r2": []}'


@dataclass
class Stack:
    state: Path
    settings: dict[str, str]
    kafka: str = ""
    postgres: str = ""
    origin: str = ""
    infra_pids: dict[str, int] = field(default_factory=dict)
    sink: SmtpSink | None = None
    prefix: str = field(default_factory=lambda: unique("bench-") + ".")
    urls: dict[str, list[str]] = field(default_factory=dict)
    envs: dict[str, dict[str, str]] = field(default_factory=dict)
    processes: dict[str, list[subprocess.Popen]] = field(default_factory=dict)
    admin: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {ADMIN_TOKEN}"})

    @property
    def mail(self) -> Path:
        return self.state / "mail"

    def start_infra(self, stack: ExitStack, cache: Path) -> None:
        self.kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
        self.postgres = os.environ.get("DATABASE_URL", "")
        if self.kafka and self.postgres:
            self.origin = "environment (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL)"
            return
        self.origin = "started by the bench (durable, as make run)"
        stack.callback(shutil.rmtree, self.state / "kafka", True)
        stack.callback(shutil.rmtree, self.state / "postgres", True)
        if not self.kafka:
            print("starting Apache Kafka...", flush=True)
            server = start_kafka(self.state / "kafka", free_port(), free_port(), cache=cache)
            stack.callback(server.stop)
            self.kafka = server.bootstrap
            self.infra_pids["kafka"] = server.process.pid
        if not self.postgres:
            print("starting PostgreSQL...", flush=True)
            pg = start_postgres(self.state / "postgres", free_port())
            stack.callback(pg.stop)
            self.postgres = pg.admin_url
            pid_file = pg.data / "postmaster.pid"
            if pid_file.exists():
                self.infra_pids["postgres"] = int(pid_file.read_text().split()[0])

    def start_system(self, stack: ExitStack) -> None:
        self.sink = SmtpSink(self.mail, free_port()).start()
        stack.callback(self.sink.stop)
        stack.callback(self.stop_services)
        for spec in services.SERVICES:
            self.urls[spec.name] = [f"http://127.0.0.1:{free_port()}"]
        databases = {spec.name: asyncio.run(ensure_database(self.postgres, unique(f"bench_{spec.name}_")))
                     for spec in services.SERVICES}
        self.envs = environments.build(
            environment="test", kafka=self.kafka, databases=databases,
            urls={name: urls[0] for name, urls in self.urls.items()}, smtp_port=self.sink.port,
            admin_token=ADMIN_TOKEN, topic_prefix=self.prefix,
            settings={**environments.REJOIN, "ASSENT_SITES": SITES, "ASSENT_TRUST_FORWARDED_FOR": "true",
                      **self.settings},
        )
        for spec in services.SERVICES:
            self._start(spec.name, self.urls[spec.name][0])
        for spec in services.SERVICES:
            self._wait(spec.name, 0)

    def add_replica(self, name: str) -> str:
        url = f"http://127.0.0.1:{free_port()}"
        self.urls[name].append(url)
        self._start(name, url)
        self._wait(name, len(self.urls[name]) - 1)
        return url

    def remove_replica(self, name: str) -> None:
        services.stop_all([self.processes[name].pop()])
        self.urls[name].pop()

    def _start(self, name: str, url: str) -> None:
        spec = next(s for s in services.SERVICES if s.name == name)
        log = self.state / "logs" / f"{name}-{len(self.processes.get(name, []))}.log"
        process = services.start_service(spec, int(url.rsplit(":", 1)[1]), self.envs[name], log)
        self.processes.setdefault(name, []).append(process)

    def _wait(self, name: str, index: int) -> None:
        log = self.state / "logs" / f"{name}-{index}.log"
        services.wait_ready(self.urls[name][index], self.processes[name][index], log)

    def stop_services(self) -> None:
        services.stop_all([p for ps in self.processes.values() for p in ps])
