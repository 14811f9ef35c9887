"""A single-node KRaft Apache Kafka broker from Kafka's own jars, fetched by Maven at pinned versions."""

import base64
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from assent_devtools.devstack.errors import MissingPrerequisite

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_LOG4J = """Configuration:
  Appenders:
    File:
      name: FILE
      fileName: "{log}"
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: FILE
    Logger:
      - name: kafka.server
        level: INFO
"""


def fetch_jars(cache: Path) -> Path:
    """Resolve the broker's runtime classpath once; later starts reuse the cached folder."""
    libs = cache / "libs"
    marker = libs / ".complete"
    pom = resources.files("assent_devtools.devstack") / "kafka-pom.xml"
    if marker.exists() and marker.read_text() == pom.read_text():
        return libs
    if shutil.which("mvn") is None:
        raise MissingPrerequisite("Maven (mvn) is needed to fetch Apache Kafka's jars: install maven")
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "pom.xml").write_text(pom.read_text())
    shutil.rmtree(libs, ignore_errors=True)
    subprocess.run(
        ["mvn", "-B", "-q", "-f", str(cache / "pom.xml"), f"{DEPENDENCY_PLUGIN}:copy-dependencies",
         f"-DoutputDirectory={libs}", "-DincludeScope=runtime"],
        check=True,
    )
    marker.write_text(pom.read_text())
    return libs


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise MissingPrerequisite("Java 17 or newer is needed to run Apache Kafka: install openjdk-17-jre-headless")
    return java


@dataclass
class KafkaServer:
    process: subprocess.Popen
    bootstrap: str
    log_file: Path

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL, as when the node dies; `start_kafka` on the same state and ports brings it back."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_kafka(state: Path, port: int, controller_port: int, *, cache: Path, fast_tests: bool = False,
                timeout: float = 120) -> KafkaServer:
    java = _java()
    libs = fetch_jars(cache / "kafka-runtime")
    data = state / "data"
    data.mkdir(parents=True, exist_ok=True)
    log_file = state / "kafka.log"
    (state / "log4j2.yaml").write_text(_LOG4J.format(log=log_file))
    props = state / "server.properties"
    props.write_text(_properties(data.resolve(), port, controller_port, fast_tests))
    classpath = f"{libs.resolve()}/*"
    if not (data / "meta.properties").exists():
        # An id may start with "-": passed as `--cluster-id=...` so it is never read as an option.
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        subprocess.run(
            [java, "-cp", classpath, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(props), "-g"],
            check=True, stdout=subprocess.DEVNULL,
        )
    log_offset = log_file.stat().st_size if log_file.exists() else 0
    process = subprocess.Popen(
        [java, "-Xms256m", "-Xmx768m", "-XX:+UseSerialGC", f"-Dlog4j2.configurationFile={state / 'log4j2.yaml'}",
         "-cp", classpath, "kafka.Kafka", str(props)],
        stdout=(state / "kafka.out").open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    server = KafkaServer(process, f"127.0.0.1:{port}", log_file)
    try:
        _wait_ready(server, log_offset, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: KafkaServer, log_offset: int, timeout: float) -> None:
    """Ready once this run's log says so and the port takes connections (the log is kept across runs)."""
    deadline = time.monotonic() + timeout
    host, port = server.bootstrap.split(":")
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"Kafka exited with {server.process.returncode}; see {server.log_file}")
        if server.log_file.exists():
            with server.log_file.open("rb") as log:
                log.seek(log_offset)
                started = b"Kafka Server started" in log.read()
            if started:
                try:
                    with socket.create_connection((host, int(port)), timeout=2):
                        return
                except OSError:
                    pass
        time.sleep(0.25)
    raise RuntimeError(f"Kafka did not start within {timeout:.0f}s; see {server.log_file}")


def _properties(data: Path, port: int, controller_port: int, fast_tests: bool) -> str:
    lines = [
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={data}",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=6",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=4",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "log.cleaner.dedupe.buffer.size=4194304",
        "num.partitions=3",
        # Topics are declared by the services; auto-creation would hide a missing declaration.
        "auto.create.topics.enable=false",
    ]
    if fast_tests:
        lines.append("log.flush.interval.messages=1000000")
    return "\n".join(lines) + "\n"
