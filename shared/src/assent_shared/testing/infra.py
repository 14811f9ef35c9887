"""Where a test run's Kafka and PostgreSQL come from: given servers, Docker, or local processes."""

import os
import shutil
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from assent_shared.testing.helpers import free_port


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap: str
    postgres_admin_url: str
    origin: str


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:  # no client library, no socket, no engine: all mean "no Docker"
        return False


def start_infra(stack: ExitStack, state: Path, cache: Path) -> Infra:
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    postgres = os.environ.get("DATABASE_URL")
    if kafka and postgres:
        return Infra(kafka, postgres, "environment")
    if _docker_available():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        if not kafka:
            container = stack.enter_context(KafkaContainer("apache/kafka:4.1.1").with_kraft())
            kafka = container.get_bootstrap_server()
        if not postgres:
            pg = stack.enter_context(PostgresContainer("postgres:17-alpine", driver=None))
            postgres = pg.get_connection_url()
        return Infra(kafka, postgres, "testcontainers")
    from assent_shared.devstack.kafka_server import start_kafka
    from assent_shared.devstack.postgres_server import start_postgres

    shutil.rmtree(state, ignore_errors=True)
    if not kafka:
        server = start_kafka(state / "kafka", free_port(), free_port(), cache=cache, fast_tests=True)
        stack.callback(server.stop)
        kafka = server.bootstrap
    if not postgres:
        pg_server = start_postgres(state / "postgres", free_port(), durable=False)
        stack.callback(pg_server.stop)
        postgres = pg_server.admin_url
    return Infra(kafka, postgres, "local processes")
