"""docs/contract.md stays true with the code: every topic, event and HTTP path it names exists.

Cheap checks only: the catalog and the services' OpenAPI documents are built in memory (no server,
no Kafka, no PostgreSQL). The generated AsyncAPI (docs/events/) has its own staleness test.
"""

import importlib
import json
import re
from pathlib import Path

import pytest

from assent_shared import topics
from assent_shared.events import CATALOG, ERASURE_TOPICS

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = (ROOT / "docs" / "contract.md").read_text()
SERVICES = ("identity", "consent", "mailer", "policy", "telemetry", "support")
TOPIC = re.compile(r"\b[a-z]+\.[a-z-]+\.v\d+\b")
ROUTE = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`?\s]*)")


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}.*?(?=^## |\Z)", CONTRACT, re.M | re.S)
    assert match, f"docs/contract.md has no section {title!r}"
    return match.group(0)


def event_rows() -> dict[str, set[str]]:
    """Event name -> the topics its table row names."""
    rows: dict[str, set[str]] = {}
    for line in section("Events on Kafka").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 3 or cells[0] in ("event", "---"):
            continue
        for name in cells[0].split(" / "):
            rows[name.strip()] = set(TOPIC.findall(cells[1]))
    return rows


def routes_by_service() -> dict[str, set[tuple[str, str]]]:
    """Service -> (method, path with parameters as {}) for every bullet of the HTTP section."""
    found: dict[str, set[tuple[str, str]]] = {}
    service = None
    for line in section("HTTP surface").splitlines():
        bullet = re.match(r"- (\w+)", line)
        if bullet:
            service = bullet.group(1) if bullet.group(1) in SERVICES else None
        if service:
            found.setdefault(service, set()).update((m, normal(p)) for m, p in ROUTE.findall(line))
    return found


def normal(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def openapi_routes(service: str) -> set[tuple[str, str]]:
    main = importlib.import_module(f"assent_{service}.main")
    settings_module = importlib.import_module(f"assent_{service}.settings")
    settings = getattr(settings_module, f"{service.capitalize()}Settings")(environment="test")
    paths = main.create_app(settings).openapi()["paths"]
    return {(method.upper(), normal(path)) for path, operations in paths.items() for method in operations}


def test_every_topic_named_exists_in_the_catalog():
    known = {spec.name for spec in topics.ALL}
    named = set(TOPIC.findall(CONTRACT)) - {"dead-letters.v1"}
    assert named, "the contract names no topic"
    assert named <= known, f"topics in docs/contract.md the code does not declare: {sorted(named - known)}"
    assert known <= named, f"topics the code declares that docs/contract.md does not name: {sorted(known - named)}"


def test_every_event_in_the_contract_is_in_the_catalog_on_its_topic():
    rows = event_rows()
    assert set(rows) == set(CATALOG), (
        f"only in docs/contract.md: {sorted(set(rows) - set(CATALOG))}; "
        f"only in the catalog: {sorted(set(CATALOG) - set(rows))}"
    )
    for name, named in rows.items():
        travels = {spec.name for spec in CATALOG[name].travels_on()}
        assert named == travels, f"{name}: the contract says {sorted(named)}, the catalog {sorted(travels)}"


def test_erasure_confirmers_are_the_ones_the_contract_lists():
    row = next(line for line in CONTRACT.splitlines() if line.startswith("| ErasureConfirmed"))
    assert set(TOPIC.findall(row)) == {spec.name for spec in ERASURE_TOPICS.values()}


def test_the_generated_asyncapi_has_the_events_of_the_contract_on_their_topics():
    asyncapi = json.loads((ROOT / "docs" / "events" / "asyncapi.json").read_text())
    documented = {tuple(name.split(":")[:2]) for name in asyncapi["components"]["messages"]}
    named = {(topic, event) for event, on in event_rows().items() for topic in on}
    assert named == documented, (
        f"only in docs/contract.md: {sorted(named - documented)}; only in docs/events: {sorted(documented - named)}"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_every_http_path_in_the_contract_is_served(service: str):
    named = routes_by_service().get(service, set())
    assert named, f"docs/contract.md names no path of {service}"
    missing = named - openapi_routes(service)
    assert not missing, f"{service} does not serve {sorted(missing)} that docs/contract.md promises"
