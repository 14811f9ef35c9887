"""Offline checks of deploy/monitoring: the Grafana dashboard, the Prometheus alert rules and the
example scrape configuration.

Metric names are checked against what the code registers (assent_shared.metrics.Metrics) plus the
few series the services are expected to add (consumer lag, mailer gauges and counters) and
Prometheus' own `up`, so a misspelt metric in a panel or an alert fails here instead of showing
an empty graph or an alert that can never fire.
"""

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from assent_devtools.devstack import services as registry
from assent_shared.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
DASHBOARD = MONITORING / "grafana" / "assent-overview.json"
ALERTS = MONITORING / "prometheus" / "alerts.yaml"
SCRAPE = MONITORING / "prometheus" / "prometheus.yml"
RUNBOOK = ROOT / "docs" / "operations.md"

SERVICES = ("identity", "consent", "mailer", "policy", "telemetry", "support")
# Exported by the services beyond assent_shared.metrics (issue 9), and Prometheus' own `up`.
EXPECTED_ELSEWHERE = {"kafka_consumer_lag", "mailer_deliveries_waiting", "mailer_delivery_failures_total", "up"}
DASHBOARD_METRICS = {
    "http_requests_total", "http_request_duration_seconds_bucket", "outbox_backlog", "outbox_oldest_age_seconds",
    "inbox_duplicates_dropped_total", "dead_letters_total", "kafka_consumer_lag", "mailer_deliveries_waiting",
    "mailer_delivery_failures_total", "up",
}
ALERT_METRICS = {
    "AssentConsumerLagHigh": "kafka_consumer_lag",
    "AssentOutboxStale": "outbox_oldest_age_seconds",
    "AssentDeadLetters": "dead_letters_total",
    "AssentDeliveryFailures": "mailer_delivery_failures_total",
    "AssentServiceDown": "up",
}

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                "offset", "inf", "nan"}


def known_metrics() -> set[str]:
    """Sample names the shared Metrics class exposes, as Prometheus sees them."""
    metrics = Metrics("test")
    names = set()
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        base, kind = value._name, value._type
        if kind == "counter":
            names.add(f"{base}_total")
        elif kind == "histogram":
            names |= {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
        else:
            names.add(base)
    return names


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (enough PromQL for the expressions used here)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # string literals
    text = re.sub(r"\{[^{}]*\}", " ", text)                     # label matchers
    text = re.sub(r"\[[^\[\]]*\]", " ", text)                   # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word, rest = match.group(0), text[match.end():].lstrip()
        if word.lower() in PROMQL_WORDS or rest.startswith("("):  # keyword or function/aggregation
            continue
        if match.start() > 0 and (text[match.start() - 1].isdigit() or text[match.start() - 1] == "."):
            continue  # the exponent or unit of a number, e.g. 1e3
        names.add(word)
    return names


def balanced(expr: str) -> bool:
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for ch in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return False
    return not stack


def test_metric_name_extraction():
    expr = ('histogram_quantile(0.95, sum by (service, le) (rate(http_request_duration_seconds_bucket'
            '{job=~"assent.*", route!="/x{y}"}[5m]))) / on (service) group_left up > 1e3')
    assert metric_names(expr) == {"http_request_duration_seconds_bucket", "up"}
    assert balanced(expr) and not balanced("sum(rate(x[5m])")


# ------------------------------------------------------------------ dashboard


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels_of(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out += panel.get("panels", [])
    return out


def exprs_of(dashboard: dict) -> list[str]:
    return [target["expr"] for panel in panels_of(dashboard) for target in panel.get("targets", [])]


def test_dashboard_is_a_grafana_dashboard(dashboard):
    assert dashboard["uid"] and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert "service" in variables
    ids = [panel["id"] for panel in panels_of(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    boxes = []
    for panel in panels_of(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["w"] > 0 and grid["h"] > 0, panel["title"]
        boxes.append((grid["x"], grid["y"], grid["x"] + grid["w"], grid["y"] + grid["h"], panel["title"]))
        if panel["type"] != "row":
            assert panel["targets"], f"panel {panel['title']} queries nothing"
            for target in panel["targets"]:
                assert target["expr"].strip() and target["refId"]
                assert target["datasource"]["uid"] == "${datasource}"
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
            assert not overlap, f"panels {a[4]!r} and {b[4]!r} overlap"


def test_dashboard_shows_every_operator_metric(dashboard):
    used = set().union(*(metric_names(expr) for expr in exprs_of(dashboard)))
    missing = DASHBOARD_METRICS - used
    assert not missing, f"the dashboard does not show {sorted(missing)}"
    unknown = used - known_metrics() - EXPECTED_ELSEWHERE
    assert not unknown, f"the dashboard queries metrics nobody exports: {sorted(unknown)}"
    for expr in exprs_of(dashboard):
        assert balanced(expr), expr


def test_dashboard_breaks_down_by_service_route_and_partition(dashboard):
    exprs = exprs_of(dashboard)
    assert any("http_requests_total" in e and re.search(r"by \([^)]*service[^)]*route", e) for e in exprs)
    assert any("http_request_duration_seconds_bucket" in e and "histogram_quantile" in e
               and re.search(r"by \([^)]*route[^)]*le", e) for e in exprs)
    assert any("kafka_consumer_lag" in e and re.search(r"by \([^)]*topic[^)]*partition", e) for e in exprs)


# ------------------------------------------------------------------ alert rules


@pytest.fixture(scope="module")
def rules() -> dict[str, dict]:
    data = yaml.safe_load(ALERTS.read_text())
    out = {}
    for group in data["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert rule["alert"] not in out, f"alert {rule['alert']} defined twice"
            out[rule["alert"]] = rule
    return out


def test_the_five_alerts_exist_and_are_complete(rules):
    assert set(ALERT_METRICS) <= set(rules)
    for name, rule in rules.items():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, name
        assert isinstance(rule["expr"], str) and rule["expr"].strip(), name
        assert re.fullmatch(r"\d+[smh]", str(rule["for"])), f"{name}: `for` is not a duration"
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert balanced(rule["expr"]), name
        unknown = metric_names(rule["expr"]) - known_metrics() - EXPECTED_ELSEWHERE
        assert not unknown, f"{name} queries metrics nobody exports: {sorted(unknown)}"


def test_each_alert_watches_what_it_says(rules):
    for name, metric in ALERT_METRICS.items():
        assert metric in metric_names(rules[name]["expr"]), f"{name} does not use {metric}"
    assert re.search(r">\s*60\b", rules["AssentOutboxStale"]["expr"]), "outbox age threshold is 60 s"
    assert "increase(dead_letters_total" in rules["AssentDeadLetters"]["expr"]
    assert re.search(r"rate\(mailer_delivery_failures_total", rules["AssentDeliveryFailures"]["expr"])
    assert re.search(r"up\{[^}]*\}\s*==\s*0", rules["AssentServiceDown"]["expr"])
    assert rules["AssentServiceDown"]["labels"]["severity"] == "critical"


def test_alert_runbook_links_resolve(rules):
    """Each alert points at a section of docs/operations.md that exists."""
    anchors = set()
    for line in RUNBOOK.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"\s+", "-", re.sub(r"[^\w\s-]", "", title)))
    for name, rule in rules.items():
        link = rule["annotations"].get("runbook")
        assert link, f"{name} has no runbook link"
        path, _, anchor = link.partition("#")
        assert path == "docs/operations.md" and anchor in anchors, f"{name}: no section #{anchor} in {path}"


# ------------------------------------------------------------------ scrape configuration


def test_scrape_config_finds_the_services_and_loads_the_rules():
    config = yaml.safe_load(SCRAPE.read_text())
    assert [(SCRAPE.parent / f).is_file() for f in config["rule_files"]] == [True]
    assert (SCRAPE.parent / config["rule_files"][0]).resolve() == ALERTS.resolve()
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert all(re.fullmatch(r"assent.*", name) for name in jobs), "alerts select job=~\"assent.*\""

    kube = jobs["assent"]
    assert kube["metrics_path"] == "/metrics"
    assert kube["kubernetes_sd_configs"][0]["role"] == "pod"
    relabel = kube["relabel_configs"]
    keep = {tuple(r["source_labels"]): r["regex"] for r in relabel if r.get("action") == "keep"}
    assert keep[("__meta_kubernetes_pod_label_app_kubernetes_io_part_of",)] == "assent"
    service_rule = [r for r in relabel if r.get("target_label") == "service"]
    assert service_rule and service_rule[0]["source_labels"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_name"]
    # The address rewrite really joins host and annotated port.
    address = [r for r in relabel if r.get("target_label") == "__address__"][0]
    joined = ";".join(["10.1.2.3:8080", "8102"])
    match = re.fullmatch(address["regex"], joined)  # Prometheus anchors relabel regexes
    assert match and match.expand(address["replacement"].replace("$", "\\")) == "10.1.2.3:8102"

    compose = jobs["assent-compose"]
    targets = {cfg["labels"]["service"]: cfg["targets"] for cfg in compose["static_configs"]}
    ports = {spec.name: spec.port for spec in registry.SERVICES}
    assert targets == {s: [f"127.0.0.1:{p}"] for s, p in ports.items()}


def test_kubernetes_pods_carry_what_the_scrape_config_keeps():
    """The Deployments' pod labels and annotations match the relabelling above."""
    for service, port in {spec.name: spec.port for spec in registry.SERVICES}.items():
        deployment = yaml.safe_load((ROOT / "deploy" / "k8s" / "base" / service / "deployment.yaml").read_text())
        meta = deployment["spec"]["template"]["metadata"]
        assert meta["labels"]["app.kubernetes.io/part-of"] == "assent"
        assert meta["labels"]["app.kubernetes.io/component"] == "service"
        assert meta["labels"]["app.kubernetes.io/name"] == service
        assert meta["annotations"]["prometheus.io/scrape"] == "true"
        assert meta["annotations"]["prometheus.io/port"] == str(port)
