"""Static checks of the container build and the compose stack.

No Docker engine is needed: these read docker-compose.yml, the Dockerfiles, the
.dockerignore and the postgres init script, and check what the stack relies on.
"""

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import tomllib
import yaml

from assent_devtools.devstack import services as registry

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
INIT_SQL = ROOT / "deploy" / "compose" / "postgres-init.sql"

# Names and ports come from deploy/services.toml; the Site is built like a service but has no database.
PORTS = {spec.name: spec.port for spec in registry.ALL}
SERVICES = sorted(spec.name for spec in registry.SERVICES)
BUILT = sorted(PORTS)
DOCKERFILE = ROOT / "Dockerfile"
SMTP_SINKS = ("mailpit", "smtp", "mailhog")


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose() -> dict:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), "compose file has no services mapping"
    return data


def environment_of(service: dict) -> dict[str, str]:
    """Compose accepts a mapping or a list of KEY=VALUE strings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {key: value for key, value in pairs}
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def interpolated_default(value: str) -> str:
    """`${NAME:-default}` as compose resolves it when NAME is unset; other text unchanged."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", value)


def healthcheck_command(service: dict) -> str:
    test = (service.get("healthcheck") or {}).get("test")
    if isinstance(test, list):
        return " ".join(str(part) for part in test[1:] if test and test[0] in ("CMD", "CMD-SHELL"))
    return str(test or "")


def published_ports(service: dict) -> list[tuple[str, str, str]]:
    """(host_ip, published, target) for each entry, short or long syntax."""
    out = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            out.append((str(entry.get("host_ip", "")), str(entry.get("published", "")), str(entry.get("target", ""))))
            continue
        parts = str(entry).split("/")[0].split(":")
        if len(parts) == 3:
            out.append((parts[0], parts[1], parts[2]))
        elif len(parts) == 2:
            out.append(("", parts[0], parts[1]))
        else:
            out.append(("", "", parts[0]))
    return out


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    if pending:
        keyword, _, args = pending.strip().partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


def from_image(args: str) -> tuple[str, str | None]:
    """The image reference of a FROM line, and its stage name if any."""
    words = [word for word in args.split() if not word.startswith("--")]
    image = words[0]
    alias = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
    return image, alias


def is_pinned(image: str) -> bool:
    """A tag with a digit in it, never `latest` (a digest pins too)."""
    if "@sha256:" in image:
        return True
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return False
    tag = name.split(":", 1)[1]
    return tag != "latest" and "latest" not in tag.split("-") and any(ch.isdigit() for ch in tag)


def is_root_user(args: str) -> bool:
    user = args.split(":", 1)[0].strip()
    return user in ("", "root", "0")


def stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for keyword, args in instructions:
        if keyword == "FROM":
            out.append([])
        if out:
            out[-1].append((keyword, args))
    return out


# ---------------------------------------------------------------- the helpers themselves


def test_helpers_reject_what_they_must() -> None:
    assert not is_pinned("python")
    assert not is_pinned("python:latest")
    assert not is_pinned("python:slim")
    assert not is_pinned("registry.example:5000/python")
    assert is_pinned("python:3.11.14-slim-bookworm")
    assert is_pinned("ghcr.io/astral-sh/uv:0.13.9")
    assert is_pinned("python@sha256:" + "0" * 64)
    assert is_root_user("root") and is_root_user("0") and is_root_user("0:0") and is_root_user("root:root")
    assert not is_root_user("10001:10001") and not is_root_user("assent")
    assert interpolated_default("${X:-abc}") == "abc" and interpolated_default("${X-abc}") == "abc"
    parsed = dockerfile_instructions("# c\nFROM a:1 AS b\nRUN x \\\n  y\nUSER 1\n")
    assert parsed == [("FROM", "a:1 AS b"), ("RUN", "x y"), ("USER", "1")]
    assert published_ports({"ports": ["127.0.0.1:1:2", "3:4"]}) == [("127.0.0.1", "1", "2"), ("", "3", "4")]
    assert environment_of({"environment": ["A=1", "B"]}) == {"A": "1", "B": ""}


# ---------------------------------------------------------------- compose: infrastructure


def test_kafka_is_single_node_kraft_reachable_as_kafka_9092(compose: dict) -> None:
    kafka = compose["services"].get("kafka")
    assert kafka, "no kafka service"
    assert str(kafka.get("image", "")).startswith("apache/kafka:"), kafka.get("image")
    assert is_pinned(kafka["image"])
    env = environment_of(kafka)
    assert "controller" in env.get("KAFKA_PROCESS_ROLES", ""), "kafka must run in KRaft mode (broker,controller)"
    assert "broker" in env.get("KAFKA_PROCESS_ROLES", "")
    assert "kafka:9092" in env.get("KAFKA_ADVERTISED_LISTENERS", ""), "other containers reach kafka at kafka:9092"
    assert ":9092" in env.get("KAFKA_LISTENERS", "")
    assert env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "").lower() == "false"
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env.get(key) == "1", f"{key} must be 1 on a single node"
    assert "kafka-broker-api-versions.sh" in healthcheck_command(kafka)
    assert "localhost:9092" in healthcheck_command(kafka)


def test_postgres_runs_the_init_script(compose: dict) -> None:
    postgres = compose["services"].get("postgres")
    assert postgres, "no postgres service"
    assert str(postgres.get("image", "")).startswith("postgres:17"), postgres.get("image")
    assert healthcheck_command(postgres), "postgres needs a healthcheck"
    mounts = [str(volume) for volume in postgres.get("volumes") or []]
    assert any(
        "deploy/compose/postgres-init.sql" in mount and "/docker-entrypoint-initdb.d/" in mount for mount in mounts
    ), f"init script not mounted into /docker-entrypoint-initdb.d: {mounts}"
    env = environment_of(postgres)
    assert env.get("POSTGRES_USER") and env.get("POSTGRES_PASSWORD")


def test_smtp_sink_has_smtp_and_web_ports(compose: dict) -> None:
    sinks = [name for name in compose["services"] if name in SMTP_SINKS]
    assert sinks, f"no SMTP sink among {sorted(compose['services'])}"
    sink = compose["services"][sinks[0]]
    assert is_pinned(str(sink.get("image", ""))), f"SMTP sink image not pinned: {sink.get('image')}"
    targets = {(ip, target) for ip, _, target in published_ports(sink)}
    assert ("127.0.0.1", "8025") in targets and ("127.0.0.1", "1025") in targets, targets
    assert healthcheck_command(sink)


def test_init_script_creates_every_service_database() -> None:
    assert INIT_SQL.is_file(), f"{INIT_SQL} is missing"
    sql = INIT_SQL.read_text()
    created = set(re.findall(r"(?im)^\s*CREATE\s+DATABASE\s+\"?(\w+)\"?", sql))
    assert created >= {f"assent_{name}" for name in SERVICES}, f"created only {sorted(created)}"


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    path = ROOT / ".dockerignore"
    assert path.is_file(), ".dockerignore is missing"
    entries = {line.strip().rstrip("/").removeprefix("**/") for line in path.read_text().splitlines()}
    for needed in ("var", ".venv", ".git", "__pycache__", ".pytest_cache", ".hypothesis"):
        assert needed in entries, f".dockerignore does not exclude {needed}"


# ---------------------------------------------------------------- compose: the five services


@pytest.mark.parametrize("name", BUILT)
def test_service_is_built_from_its_dockerfile(compose: dict, name: str) -> None:
    service = compose["services"].get(name)
    assert service, f"no {name} service in docker-compose.yml"
    build = service.get("build")
    assert isinstance(build, dict), f"{name}: build must be a mapping with context and dockerfile"
    assert build.get("context") == ".", f"{name}: build context must be the repository root"
    assert build.get("dockerfile") == "Dockerfile", f"{name}: every image is built from the one Dockerfile"
    assert (ROOT / build["context"] / build["dockerfile"]).is_file(), f"{build['dockerfile']} does not exist"
    assert build.get("args") == {"SERVICE": name, "PORT": str(PORTS[name])}, f"{name}: build args {build.get('args')}"


def test_compose_runs_exactly_the_processes_of_the_registry(compose: dict) -> None:
    built = {name for name, service in compose["services"].items() if "build" in service}
    assert built == set(PORTS), f"compose builds {sorted(built)}, deploy/services.toml lists {sorted(PORTS)}"


@pytest.mark.parametrize("name", SERVICES)
def test_service_environment(compose: dict, name: str) -> None:
    env = environment_of(compose["services"][name])
    url = urlsplit(env.get("DATABASE_URL", ""))
    assert url.scheme.startswith("postgres"), f"{name}: DATABASE_URL {env.get('DATABASE_URL')!r}"
    assert url.hostname == "postgres"
    assert url.path.lstrip("/") == f"assent_{name}", f"{name} must use its own database, not {url.path}"
    assert "kafka:9092" in env.get("KAFKA_BOOTSTRAP_SERVERS", "")
    assert env.get("ASSENT_ENV") in ("development", "test", "production")
    token = env.get("ASSENT_ADMIN_TOKEN", "")
    assert token, f"{name}: ASSENT_ADMIN_TOKEN missing"
    assert "${ASSENT_ADMIN_TOKEN" in token, f"{name}: the admin token must be overridable from the environment"
    assert len(interpolated_default(token)) >= 32, f"{name}: default admin token shorter than 32 characters"
    assert env.get("ASSENT_JWKS_URL") == "http://identity:8101/.well-known/jwks.json"
    if name in ("consent", "mailer"):
        assert env.get("ASSENT_SIGNING_SECRET"), f"{name}: ASSENT_SIGNING_SECRET missing"
    if name == "mailer":
        sinks = [sink for sink in compose["services"] if sink in SMTP_SINKS]
        assert env.get("ASSENT_SMTP_HOST") in sinks, f"mailer must send to the SMTP sink, not {env.get('ASSENT_SMTP_HOST')}"
        assert env.get("ASSENT_SMTP_PORT") == "1025"
        bounce = env.get("ASSENT_BOUNCE_SECRET", "")
        assert "${ASSENT_BOUNCE_SECRET" in bounce, "the relay's bounce secret must be overridable from the environment"
        assert len(interpolated_default(bounce)) >= 16


@pytest.mark.parametrize("name", BUILT)
def test_service_healthcheck_and_ports(compose: dict, name: str) -> None:
    service = compose["services"][name]
    port = str(PORTS[name])
    command = healthcheck_command(service)
    assert "/health/live" in command and f":{port}" in command, f"{name}: healthcheck {command!r}"
    ports = published_ports(service)
    assert ("127.0.0.1", port, port) in ports, f"{name}: port {port} must be published on 127.0.0.1, got {ports}"
    assert all(ip == "127.0.0.1" for ip, _, _ in ports), f"{name}: a port is published beyond 127.0.0.1"


@pytest.mark.parametrize("name", SERVICES)
def test_service_waits_for_healthy_kafka_and_postgres(compose: dict, name: str) -> None:
    depends = compose["services"][name].get("depends_on")
    assert isinstance(depends, dict), f"{name}: depends_on must be a mapping with conditions"
    for needed in ("kafka", "postgres"):
        assert needed in depends, f"{name} does not depend on {needed}"
        assert (depends[needed] or {}).get("condition") == "service_healthy", f"{name}: {needed} not service_healthy"
        assert healthcheck_command(compose["services"][needed]), f"{needed} has no healthcheck to wait on"


# ---------------------------------------------------------------- Dockerfiles


def build_args(text: str, values: dict[str, str]) -> str:
    """The Dockerfile's text as a build with these --build-arg values sees it."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m.group(1) or m.group(2), m.group(0)), text)


def test_one_dockerfile_copies_every_workspace_member() -> None:
    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]["members"]
    projects = {path.parent.relative_to(ROOT).as_posix() for member in members for path in ROOT.glob(f"{member}/pyproject.toml")}
    copied = set(re.findall(r"^COPY (\S+)/pyproject.toml \1/pyproject.toml$", DOCKERFILE.read_text(), re.M))
    assert copied == projects, f"the Dockerfile copies {sorted(copied)}, the workspace has {sorted(projects)}"
    assert not list(ROOT.glob("services/*/Dockerfile")), "one parameterised Dockerfile, not one per service"


@pytest.mark.parametrize("name", BUILT)
def test_dockerfile(name: str) -> None:
    assert DOCKERFILE.is_file(), f"{DOCKERFILE} is missing"
    port = str(PORTS[name])
    instructions = dockerfile_instructions(build_args(DOCKERFILE.read_text(), {"SERVICE": name, "PORT": port}))
    all_stages = stages(instructions)
    assert len(all_stages) >= 2, f"{name}: the Dockerfile must be multi-stage"

    declared: set[str] = set()
    for stage in all_stages:
        image, alias = from_image(stage[0][1])
        if image.lower() not in declared:
            assert is_pinned(image), f"{name}: base image {image} is not pinned"
        if alias:
            declared.add(alias.lower())

    final = all_stages[-1]
    final_from = from_image(final[0][1])[0]
    assert final_from.lower() not in declared, f"{name}: the final stage must start from a clean base image"
    users = [args for keyword, args in final if keyword == "USER"]
    assert users, f"{name}: the final stage has no USER line"
    assert not is_root_user(users[-1]), f"{name}: runs as {users[-1]}"
    assert any(keyword == "COPY" and "--from=" in args for keyword, args in final), f"{name}: nothing copied from build"

    env = " ".join(args for keyword, args in final if keyword == "ENV")
    assert f"ASSENT_SERVICE={name}" in env and f"ASSENT_HTTP_PORT={port}" in env, f"{name}: ENV {env!r}"
    healthchecks = [args for keyword, args in final if keyword == "HEALTHCHECK"]
    assert healthchecks, f"{name}: no HEALTHCHECK"
    assert "/health/live" in healthchecks[-1] and "ASSENT_HTTP_PORT" in healthchecks[-1]
    assert "curl" not in healthchecks[-1] and "wget" not in healthchecks[-1], "slim images have neither"

    exposed = " ".join(args for keyword, args in final if keyword == "EXPOSE")
    assert port in exposed.split(), f"{name}: EXPOSE {port} missing"
    cmd = " ".join(args for keyword, args in final if keyword == "CMD")
    assert "assent_${ASSENT_SERVICE}.main:create_app" in cmd and "--factory" in cmd, f"{name}: CMD {cmd!r}"
    assert "${ASSENT_HTTP_PORT}" in cmd and "--no-access-log" in cmd

    runs = " ".join(args for keyword, args in instructions if keyword == "RUN")
    assert f"--package assent-{name}" in runs and "--frozen" in runs and "--no-dev" in runs, (
        f"{name}: the build must install assent-{name} from the frozen lock without dev dependencies"
    )


def test_site_calls_the_services_by_their_compose_names(compose: dict) -> None:
    env = environment_of(compose["services"]["site"])
    assert "DATABASE_URL" not in env and "KAFKA_BOOTSTRAP_SERVERS" not in env, "the Site holds no data of its own"
    for name in SERVICES:
        assert env.get(f"ASSENT_{name.upper()}_URL") == f"http://{name}:{PORTS[name]}"
    assert "${ASSENT_SESSION_SECRET" in env.get("ASSENT_SESSION_SECRET", "")
    assert len(interpolated_default(env["ASSENT_SESSION_SECRET"])) >= 32
    sites = environment_of(compose["services"]["telemetry"]).get("ASSENT_SITES", "")
    assert env["ASSENT_SITE_URL"] in sites, "telemetry must take the Site's hits"
