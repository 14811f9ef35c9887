"""The system under fault: bench's stack on Kafka and PostgreSQL servers of its own, which it can
kill and start again on the same data folder and port, and services it can kill -9 and restart."""

import os
import signal
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from assent_devtools.devstack import services
from assent_devtools.devstack.kafka_server import KafkaServer, start_kafka
from assent_devtools.devstack.postgres_server import PostgresServer, start_postgres
from assent_devtools.testing.helpers import free_port
from bench.stack import Stack

@dataclass
class ChaosStack(Stack):
    kafka_ports: tuple[int, int] = (0, 0)
    cache: Path = Path()
    kafka_server: KafkaServer | None = None
    pg_server: PostgresServer | None = None
    restarts: dict[str, int] = field(default_factory=dict)

    def start_infra(self, stack: ExitStack, cache: Path) -> None:
        """Always servers of its own: faults are injected into them, never into someone else's."""
        self.origin = "started by the chaos run (durable, as make run)"
        self.cache = cache
        self.kafka_ports = (free_port(), free_port())
        print("starting Apache Kafka...", flush=True)
        self._start_kafka()
        stack.callback(lambda: self.kafka_server and self.kafka_server.stop())
        self.kafka = self.kafka_server.bootstrap
        print("starting PostgreSQL...", flush=True)
        self.pg_server = start_postgres(self.state / "postgres", free_port())
        stack.callback(lambda: self.pg_server.stop())
        self.postgres = self.pg_server.admin_url
        self._note_postgres_pid()

    def use_infra(self, kafka: str, postgres: str) -> None:
        """Servers someone else runs (a test run's): then only the services themselves are faulted."""
        self.origin = "given (no Kafka or PostgreSQL faults)"
        self.kafka, self.postgres = kafka, postgres

    def _start_kafka(self) -> None:
        self.kafka_server = start_kafka(self.state / "kafka", *self.kafka_ports, cache=self.cache)
        self.infra_pids["kafka"] = self.kafka_server.process.pid

    def _note_postgres_pid(self) -> None:
        pid_file = self.pg_server.data / "postmaster.pid"
        if pid_file.exists():
            self.infra_pids["postgres"] = int(pid_file.read_text().split()[0])

    def kill_kafka(self) -> None:
        """kill -9 the broker; `start_kafka` brings it back on the same data folder and ports."""
        self.kafka_server.kill()

    def start_kafka(self) -> None:
        self._start_kafka()

    def crash_postgres(self) -> None:
        """Stop PostgreSQL as a crash would: the next start runs recovery."""
        self.pg_server.stop("immediate")

    def start_postgres(self) -> None:
        self.pg_server = start_postgres(self.state / "postgres", self.pg_server.port)
        self._note_postgres_pid()

    def kill_service(self, name: str, index: int = 0) -> None:
        """SIGKILL: no shutdown hook runs, as when a node dies."""
        process = self.processes[name][index]
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    def restart_service(self, name: str, index: int = 0) -> None:
        spec = next(s for s in services.SERVICES if s.name == name)
        url = self.urls[name][index]
        self.restarts[name] = self.restarts.get(name, 0) + 1
        log = self.state / "logs" / f"{name}-{index}.{self.restarts[name]}.log"
        process = services.start_service(spec, int(url.rsplit(":", 1)[1]), self.envs[name], log)
        self.processes[name][index] = process
        services.wait_ready(url, process, log)

    def database(self, name: str) -> str:
        return self.envs[name]["DATABASE_URL"]
