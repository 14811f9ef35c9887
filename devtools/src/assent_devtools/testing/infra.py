"""Where a test run's Kafka and PostgreSQL come from: given servers, Docker, or local processes."""

import os
import shutil
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from assent_devtools.testing.helpers import free_port


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
        from testcontainers.community.postgres import PostgresContainer

        if not kafka:
            kafka = _kafka_container(stack)
        if not postgres:
            pg = stack.enter_context(PostgresContainer("postgres:17-alpine", driver=None))
            postgres = pg.get_connection_url()
        return Infra(kafka, postgres, "testcontainers")
    from assent_devtools.devstack.kafka_server import start_kafka
    from assent_devtools.devstack.postgres_server import start_postgres

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


def _kafka_container(stack: ExitStack) -> str:
    """Apache Kafka's own image in KRaft mode. testcontainers' KafkaContainer drives Confluent's
    image only, so the broker is configured here; its advertised address is a fixed host port."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    port = free_port()
    settings = {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{port}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
    }
    container = DockerContainer("apache/kafka:4.1.1").with_bind_ports(9092, port)
    for key, value in settings.items():
        container = container.with_env(key, value)
    stack.enter_context(container)
    wait_for_logs(container, "Kafka Server started", timeout=120)
    return f"127.0.0.1:{port}"
