"""Offline checks of the Kubernetes manifests in deploy/k8s (Kustomize base and overlays).

Nothing here needs a cluster or the network:
- a small Kustomize renderer (only the features the overlays use; it refuses any other) builds
  the base and each overlay; where kubectl is installed, its built-in `kubectl kustomize`
  must produce the same objects;
- every rendered object, and the example Secrets, is validated against the Kubernetes JSON
  schemas shipped inside the kubernetes-validate wheel (strict: unknown fields fail);
- then what the platform relies on: each service's Deployment, Service, PDB, HPA,
  NetworkPolicy and ConfigMap, probes, limits, the security context, secret references,
  settings names the services really read, and the topics Job against assent_shared.topics.
"""

import copy
import functools
import importlib
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from pydantic.fields import FieldInfo

from assent_shared import topics
from assent_devtools.devstack import services as registry
from assent_shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAYS = {"dev": K8S / "overlays" / "dev", "production": K8S / "overlays" / "production"}
BUILDS = {"base": BASE, **OVERLAYS}
SECRETS_EXAMPLE = BASE / "secrets.example.yaml"

PORTS = {spec.name: spec.port for spec in registry.SERVICES}  # deploy/services.toml
SERVICES = sorted(PORTS)
# The web front end: deployed like a service, but without a database or Kafka of its own.
SITE_PORT = registry.SITE.port
WORKLOADS = sorted([*SERVICES, "site"])
UID = 10001
DLQ_RETENTION_MS = 14 * 24 * 3600 * 1000
# Oldest Kubernetes the manifests promise to work with, and the newest the schemas know.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())

# Secret env every service must take from a Secret: (env var, secret name, key).
REQUIRED_SECRETS = {
    service: [("DATABASE_URL", f"assent-{service}", "DATABASE_URL"),
              ("ASSENT_ADMIN_TOKEN", "assent-admin", "ASSENT_ADMIN_TOKEN")]
    for service in SERVICES
}
REQUIRED_SECRETS["support"].append(("ASSENT_SIGNING_SECRET", "assent-support", "ASSENT_SIGNING_SECRET"))
REQUIRED_SECRETS["consent"].append(("ASSENT_SIGNING_SECRET", "assent-consent", "ASSENT_SIGNING_SECRET"))
REQUIRED_SECRETS["identity"] += [
    ("ASSENT_DATA_KEY_SECRET", "assent-identity", "ASSENT_DATA_KEY_SECRET"),
    ("ASSENT_KEY_CLIENTS", "assent-identity", "ASSENT_KEY_CLIENTS"),
]
REQUIRED_SECRETS["identity"].append(("ASSENT_MAIL_TOKEN_SECRET", "assent-mail-token", "ASSENT_MAIL_TOKEN_SECRET"))
REQUIRED_SECRETS["mailer"] += [
    ("ASSENT_MAIL_TOKEN_SECRET", "assent-mail-token", "ASSENT_MAIL_TOKEN_SECRET"),
    ("ASSENT_SIGNING_SECRET", "assent-mailer", "ASSENT_SIGNING_SECRET"),
    ("ASSENT_SUPPRESSION_KEYS", "assent-mailer", "ASSENT_SUPPRESSION_KEYS"),
    ("ASSENT_KEY_OWNER_TOKEN", "assent-mailer", "ASSENT_KEY_OWNER_TOKEN"),
    ("ASSENT_BOUNCE_SECRET", "assent-mailer", "ASSENT_BOUNCE_SECRET"),
    ("ASSENT_SMTP_USERNAME", "assent-mailer", "ASSENT_SMTP_USERNAME"),
    ("ASSENT_SMTP_PASSWORD", "assent-mailer", "ASSENT_SMTP_PASSWORD"),
]
SECRET_WORDS = re.compile(r"(^|_)(TOKEN|SECRET|PASSWORD|USERNAME|PARTNERS)$|DATABASE_URL")


# ------------------------------------------------------------ a minimal Kustomize renderer

KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "namespace", "images", "replicas", "patches"}


def load_yaml_docs(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _pointer(path: str) -> list[str]:
    assert path.startswith("/"), f"JSON pointer must start with /: {path}"
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _parent(doc, parts: list[str]):
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node, parts[-1]


def apply_json6902(doc: dict, ops: list[dict]) -> None:
    """RFC 6902 add/replace/remove, as kustomize applies a `patches` entry given as a list."""
    for op in ops:
        parent, last = _parent(doc, _pointer(op["path"]))
        kind = op["op"]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(index, copy.deepcopy(op["value"]))
            elif kind == "replace":
                parent[index] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del parent[index]
            else:
                raise AssertionError(f"unsupported op {kind}")
        else:
            if kind in ("replace", "remove"):
                assert last in parent, f"{kind} of missing path {op['path']} in {doc['kind']}/{doc['metadata']['name']}"
            if kind in ("add", "replace"):
                parent[last] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del parent[last]
            else:
                raise AssertionError(f"unsupported op {kind}")


def _matches(target: dict, doc: dict) -> bool:
    assert set(target) <= {"kind", "name"}, f"unsupported patch target fields: {target}"
    if "kind" in target and doc["kind"] != target["kind"]:
        return False
    return "name" not in target or re.fullmatch(target["name"], doc["metadata"]["name"]) is not None


def pod_spec(doc: dict) -> dict | None:
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return doc["spec"]["template"]["spec"]
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def containers(doc: dict) -> list[dict]:
    spec = pod_spec(doc)
    return [] if spec is None else spec.get("initContainers", []) + spec["containers"]


def split_image(image: str) -> tuple[str, str | None, str | None]:
    name, digest = (image.split("@", 1) + [None])[:2]
    tag = None
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest


def render(directory: Path) -> list[dict]:
    """Build a kustomization the way `kubectl kustomize` does, for the features used here."""
    kfile = directory / "kustomization.yaml"
    assert kfile.is_file(), f"{kfile} is missing"
    spec = yaml.safe_load(kfile.read_text())
    unknown = set(spec) - KUSTOMIZATION_KEYS
    assert not unknown, f"{kfile}: the test renderer does not implement {unknown}"
    docs: list[dict] = []
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        docs += render(path) if path.is_dir() else load_yaml_docs(path)
    for patch in spec.get("patches", []):
        assert set(patch) == {"target", "patch"}, f"{kfile}: only inline JSON6902 patches with a target"
        ops = yaml.safe_load(patch["patch"])
        assert isinstance(ops, list), f"{kfile}: patch is not a JSON6902 list"
        hits = [doc for doc in docs if _matches(patch["target"], doc)]
        assert hits, f"{kfile}: patch target {patch['target']} matches nothing"
        for doc in hits:
            apply_json6902(doc, ops)
    for rule in spec.get("images", []):
        for doc in docs:
            for container in containers(doc):
                name, tag, digest = split_image(container["image"])
                if name != rule["name"]:
                    continue
                name = rule.get("newName", name)
                tag = rule.get("newTag", tag)
                digest = rule.get("digest", digest)
                container["image"] = name + (f":{tag}" if tag and not digest else "") + (f"@{digest}" if digest else "")
    for rule in spec.get("replicas", []):
        hits = [doc for doc in docs if doc["kind"] in ("Deployment", "StatefulSet")
                and doc["metadata"]["name"] == rule["name"]]
        assert hits, f"{kfile}: replicas for unknown workload {rule['name']}"
        for doc in hits:
            doc["spec"]["replicas"] = rule["count"]
    if "namespace" in spec:
        for doc in docs:
            doc["metadata"]["namespace"] = spec["namespace"]
    return docs


def index(docs: list[dict]) -> dict[tuple[str, str], dict]:
    out: dict[tuple[str, str], dict] = {}
    for doc in docs:
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in out, f"duplicate object {key}"
        out[key] = doc
    return out


@functools.cache
def _rendered(build: str) -> tuple[dict, ...]:
    return tuple(render(BUILDS[build]))


def rendered(build: str) -> list[dict]:
    """The objects of a build (a fresh deep copy, so a test may change them)."""
    return copy.deepcopy(list(_rendered(build)))


def objects(build: str) -> dict[tuple[str, str], dict]:
    return index(rendered(build))


def env_of(container: dict) -> dict[str, dict]:
    return {item["name"]: item for item in container.get("env", [])}


def configmap_data(build: str, name: str) -> dict[str, str]:
    return objects(build)[("ConfigMap", name)]["data"]


def topic_lines(build: str) -> dict[str, dict[str, str]]:
    """topics.txt of the topics ConfigMap: name -> its topic configs."""
    out = {}
    for line in configmap_data(build, "assent-kafka-topics")["topics.txt"].splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, configs = line.split()
        assert name not in out, f"topic {name} declared twice"
        out[name] = {} if configs == "-" else dict(item.split("=", 1) for item in configs.split(","))
    return out


def quantity(value) -> float:
    """CPU (cores) or memory (bytes) quantity."""
    text = str(value)
    suffixes = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(suffixes.items(), key=lambda item: -len(item[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def selects(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, f"only matchLabels selectors are used here: {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


# ------------------------------------------------------------------ the renderer itself


def test_renderer_applies_json6902_like_kustomize():
    doc = {"kind": "X", "metadata": {"name": "a"}, "spec": {"list": [1, 2], "keep": 1, "drop": 2}}
    apply_json6902(doc, [
        {"op": "replace", "path": "/spec/keep", "value": 5},
        {"op": "remove", "path": "/spec/drop"},
        {"op": "add", "path": "/spec/list/-", "value": 3},
        {"op": "add", "path": "/spec/new~1key", "value": {"x": 1}},
    ])
    assert doc["spec"] == {"list": [1, 2, 3], "keep": 5, "new/key": {"x": 1}}
    with pytest.raises(AssertionError):
        apply_json6902(doc, [{"op": "replace", "path": "/spec/missing", "value": 1}])


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_kubectl_kustomize_renders_the_same(build):
    """The renderer above is only trusted because it agrees with the real Kustomize."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the offline renderer is used alone")
    result = subprocess.run([kubectl, "kustomize", str(BUILDS[build])], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    theirs = index([doc for doc in yaml.safe_load_all(result.stdout) if doc])
    ours = objects(build)
    assert sorted(theirs) == sorted(ours)
    for key in ours:
        assert theirs[key] == ours[key], f"{build}: {key} differs from kubectl kustomize"


# ------------------------------------------------------------------ schema validation


@pytest.fixture(scope="module", autouse=True)
def _schemas_read_once():
    """kubernetes_validate parses a kind's schema and the large definitions file on every call (80% of
    the time); jsonschema never changes a schema, so this module's runs share one parse of each file."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kubernetes_validate.utils, "schema_contents",
                      functools.cache(kubernetes_validate.utils.schema_contents))
        yield


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("build", sorted(BUILDS))
def test_every_rendered_object_matches_the_kubernetes_schema(build, version):
    assert len(rendered(build)) >= 5 * 6
    for doc in rendered(build):
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            pytest.fail(f"{build}: {doc['kind']}/{doc['metadata']['name']} invalid for {version} at {path}: {error.message}")


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_example_secrets_match_the_schema(version):
    docs = load_yaml_docs(SECRETS_EXAMPLE)
    assert docs and all(doc["kind"] == "Secret" for doc in docs)
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_rejects_a_broken_manifest():
    """Guards the check above against a validator that accepts anything."""
    deployment = copy.deepcopy(objects("base")[("Deployment", "consent")])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pathh"] = "/x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)
    deployment = copy.deepcopy(objects("base")[("Deployment", "consent")])
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def test_every_manifest_file_is_in_the_build():
    """A YAML file left out of kustomization.yaml would silently never be applied."""
    rendered_names = {(doc["kind"], doc["metadata"]["name"]) for doc in rendered("base")}
    for path in sorted(BASE.rglob("*.yaml")):
        if path.name in ("kustomization.yaml", SECRETS_EXAMPLE.name):
            continue
        for doc in load_yaml_docs(path):
            assert (doc["kind"], doc["metadata"]["name"]) in rendered_names, f"{path} is not in the base"


def test_secrets_are_not_part_of_any_build():
    base = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert SECRETS_EXAMPLE.name not in base["resources"]
    for build in BUILDS:
        assert not [doc for doc in rendered(build) if doc["kind"] == "Secret"], f"{build} renders a Secret"


# ------------------------------------------------------------------ each service


@pytest.mark.parametrize("build", sorted(BUILDS))
@pytest.mark.parametrize("service", WORKLOADS)
def test_service_has_all_its_objects(build, service):
    objs = objects(build)
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"):
        assert (kind, service) in objs, f"{build}: {kind}/{service} missing"
    assert ("ConfigMap", f"assent-{service}") in objs

    deployment = objs[("Deployment", service)]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selects(deployment["spec"]["selector"], pod_labels)
    assert pod_labels["app.kubernetes.io/part-of"] == "assent"

    svc = objs[("Service", service)]
    assert all(pod_labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    [port] = svc["spec"]["ports"]
    assert port["port"] == {**PORTS, "site": SITE_PORT}[service]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named[port["targetPort"]] == port["port"]

    pdb = objs[("PodDisruptionBudget", service)]
    assert selects(pdb["spec"]["selector"], pod_labels)
    hpa = objs[("HorizontalPodAutoscaler", service)]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service}
    policy = objs[("NetworkPolicy", service)]
    assert selects(policy["spec"]["podSelector"], pod_labels)


@pytest.mark.parametrize("service", WORKLOADS)
def test_deployment_runs_the_image_and_command_of_its_dockerfile(service):
    [container] = objects("base")[("Deployment", service)]["spec"]["template"]["spec"]["containers"]
    name, tag, _ = split_image(container["image"])
    assert name == f"assent/{service}" and tag
    port = {**PORTS, "site": SITE_PORT}[service]
    # The Dockerfile's CMD with this service's build args; Kubernetes adds the graceful-shutdown timeout.
    image_cmd = ["uvicorn", "--factory", f"assent_{service}.main:create_app", "--host", "0.0.0.0", "--port", str(port)]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "exec uvicorn --factory" in dockerfile and "assent_${ASSENT_SERVICE}.main:create_app" in dockerfile
    command = container["command"]
    assert command[: len(image_cmd)] == image_cmd and "--no-access-log" in command
    assert container["ports"][0]["containerPort"] == port


def test_every_process_of_the_registry_is_deployed():
    deployed = {name for kind, name in objects("base") if kind == "Deployment"}
    assert {spec.name for spec in registry.ALL} <= deployed


@pytest.mark.parametrize("build", sorted(BUILDS))
@pytest.mark.parametrize("service", WORKLOADS)
def test_probes_resources_and_graceful_shutdown(build, service):
    spec = objects(build)[("Deployment", service)]["spec"]["template"]["spec"]
    [container] = spec["containers"]
    paths = {
        probe: container[probe]["httpGet"]["path"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert paths == {"startupProbe": "/health/live", "livenessProbe": "/health/live",
                     "readinessProbe": "/health/ready"}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ("http", {**PORTS, "site": SITE_PORT}[service])
    # The startup probe, not the liveness probe, waits for migrations.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60

    resources = container["resources"]
    for kind in ("cpu", "memory"):
        request, limit = quantity(resources["requests"][kind]), quantity(resources["limits"][kind])
        assert 0 < request <= limit, f"{build}/{service}: {kind} request {request} > limit {limit}"

    grace = spec["terminationGracePeriodSeconds"]
    assert grace == 30
    command = container["command"]
    assert "--timeout-graceful-shutdown" in command
    drain = int(command[command.index("--timeout-graceful-shutdown") + 1])
    assert 0 < drain <= grace - 5, "uvicorn must finish draining with time left for the lifespan shutdown"
    assert "lifecycle" not in container, "no preStop sleep: uvicorn's graceful shutdown handles SIGTERM"


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_every_pod_runs_non_root_with_a_read_only_root(build):
    workloads = [doc for doc in rendered(build) if pod_spec(doc) is not None]
    assert {doc["metadata"]["name"] for doc in workloads} >= set(SERVICES) | {"assent-kafka-topics"}
    for doc in workloads:
        spec = pod_spec(doc)
        where = f"{build}: {doc['kind']}/{doc['metadata']['name']}"
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec.get("automountServiceAccountToken") is False, where
        assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), where
        mounts_by_volume = {v["name"]: v for v in spec.get("volumes", [])}
        for container in containers(doc):
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in sc["capabilities"], where
            assert sc.get("privileged", False) is False, where
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", where
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert tmp and "emptyDir" in mounts_by_volume[tmp[0]["name"]], f"{where}: /tmp must be an emptyDir"
        if doc["metadata"]["name"] in WORKLOADS:
            assert spec["securityContext"]["runAsUser"] == UID
            assert all(c["securityContext"]["runAsUser"] == UID for c in containers(doc))


# ------------------------------------------------------------------ configuration and secrets


def accepted_env_names(service: str) -> set[str]:
    """Every environment variable the service's settings class reads."""
    module = importlib.import_module(f"assent_{service}.settings")
    classes = [obj for obj in vars(module).values()
               if isinstance(obj, type) and issubclass(obj, ServiceSettings) and obj is not ServiceSettings]
    assert len(classes) == 1, f"assent_{service}.settings: expected one settings class, found {classes}"
    cls = classes[0]
    prefix = cls.model_config.get("env_prefix", "")
    names = set()
    for field_name, field in cls.model_fields.items():
        assert isinstance(field, FieldInfo)
        alias = field.validation_alias
        if alias is not None and hasattr(alias, "choices"):
            names |= {str(choice) for choice in alias.choices}
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


@pytest.mark.parametrize("build", sorted(BUILDS))
@pytest.mark.parametrize("service", SERVICES)
def test_every_setting_given_is_one_the_service_reads(build, service):
    """A misspelt variable would be ignored silently (extra="ignore"): catch it here."""
    accepted = accepted_env_names(service)
    [container] = objects(build)[("Deployment", service)]["spec"]["template"]["spec"]["containers"]
    given = set(env_of(container))
    for source in container["envFrom"]:
        given |= set(configmap_data(build, source["configMapRef"]["name"]))
    unknown = given - accepted
    assert not unknown, f"{service} does not read {sorted(unknown)}"
    assert {"ASSENT_ENV", "KAFKA_BOOTSTRAP_SERVERS", "ASSENT_JWKS_URL", "DATABASE_URL",
            "ASSENT_ADMIN_TOKEN", "ASSENT_TOPIC_PARTITIONS", "ASSENT_TOPIC_REPLICATION"} <= given


@pytest.mark.parametrize("build", sorted(BUILDS))
@pytest.mark.parametrize("service", SERVICES)
def test_secrets_come_from_secret_references(build, service):
    [container] = objects(build)[("Deployment", service)]["spec"]["template"]["spec"]["containers"]
    env = env_of(container)
    for var, secret, key in REQUIRED_SECRETS[service]:
        assert var in env, f"{service}: {var} missing"
        ref = env[var].get("valueFrom", {}).get("secretKeyRef")
        assert ref and ref["name"] == secret and ref["key"] == key, f"{service}: {var} must come from {secret}/{key}"
        assert "value" not in env[var]
    # Nothing secret-looking as a literal value, nor in any ConfigMap the pod reads.
    for var, item in env.items():
        if SECRET_WORDS.search(var):
            assert "secretKeyRef" in item.get("valueFrom", {}), f"{service}: {var} is not from a Secret"
    for source in container["envFrom"]:
        assert "secretRef" not in source or source["secretRef"]["name"].startswith("assent-")
        if "configMapRef" in source:
            leaked = [k for k in configmap_data(build, source["configMapRef"]["name"]) if SECRET_WORDS.search(k)]
            assert not leaked, f"secret-looking keys in a ConfigMap: {leaked}"


def test_example_secrets_cover_every_reference():
    example = {(doc["metadata"]["name"], key) for doc in load_yaml_docs(SECRETS_EXAMPLE)
               for key in doc.get("stringData", {})}
    referenced = set()
    for doc in rendered("production"):
        for container in containers(doc):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.add((ref["name"], ref["key"]))
    assert {(s, k) for svc in SERVICES for _, s, k in REQUIRED_SECRETS[svc]} <= referenced
    assert referenced <= example, f"not in secrets.example.yaml: {sorted(referenced - example)}"


def test_overlays_set_environment_replicas_and_images():
    dev, prod, base = objects("dev"), objects("production"), objects("base")
    assert configmap_data("dev", "assent-common")["ASSENT_ENV"] == "development"
    assert configmap_data("production", "assent-common")["ASSENT_ENV"] == "production"
    assert {doc["metadata"]["namespace"] for doc in rendered("dev")} == {"assent-dev"}
    assert {doc["metadata"]["namespace"] for doc in rendered("production")} == {"assent"}
    for service in SERVICES:
        assert dev[("Deployment", service)]["spec"]["replicas"] == 1
        assert dev[("HorizontalPodAutoscaler", service)]["spec"]["minReplicas"] == 1
        assert "minAvailable" not in dev[("PodDisruptionBudget", service)]["spec"], "would block node drains"
        dev_res = dev[("Deployment", service)]["spec"]["template"]["spec"]["containers"][0]["resources"]
        base_res = base[("Deployment", service)]["spec"]["template"]["spec"]["containers"][0]["resources"]
        for kind in ("requests", "limits"):
            assert quantity(dev_res[kind]["memory"]) < quantity(base_res[kind]["memory"])
            assert quantity(dev_res[kind]["cpu"]) <= quantity(base_res[kind]["cpu"])
        hpa = prod[("HorizontalPodAutoscaler", service)]["spec"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
        [metric] = hpa["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
        assert prod[("PodDisruptionBudget", service)]["spec"]["minAvailable"] == 1
        assert prod[("Deployment", service)]["spec"]["replicas"] >= 2
    for doc in rendered("production"):
        for container in containers(doc):
            _, tag, digest = split_image(container["image"])
            assert digest or (tag and re.fullmatch(r"v?\d+\.\d+\.\d+", tag)), (
                f"production image {container['image']} is not pinned to a version")


# ------------------------------------------------------------------ NetworkPolicies


def _rules_to(policy: dict, port: int) -> list[dict]:
    return [rule for rule in policy["spec"].get("egress", []) if any(p.get("port") == port for p in rule.get("ports", []))]


def _rules_from(policy: dict) -> list[dict]:
    return policy["spec"].get("ingress", [])


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_network_policies(build):
    objs = objects(build)
    deny = objs[("NetworkPolicy", "default-deny")]["spec"]
    assert deny["podSelector"] == {} and sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny and "egress" not in deny

    dns = objs[("NetworkPolicy", "allow-dns")]
    kafka = objs[("NetworkPolicy", "allow-kafka")]
    [dns_rule] = dns["spec"]["egress"]
    assert dns_rule["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kube-system"}
    assert {(p["protocol"], p["port"]) for p in dns_rule["ports"]} == {("UDP", 53), ("TCP", 53)}
    [kafka_rule] = kafka["spec"]["egress"]
    assert kafka_rule["to"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "kafka"}
    assert [p["port"] for p in kafka_rule["ports"]] == [9092]
    for doc in rendered(build):
        if pod_spec(doc) is not None:
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert selects(dns["spec"]["podSelector"], labels), f"{doc['metadata']['name']} gets no DNS"
            assert selects(kafka["spec"]["podSelector"], labels), f"{doc['metadata']['name']} cannot reach Kafka"

    for service, port in PORTS.items():
        policy = objs[("NetworkPolicy", service)]
        assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]
        # In: only on its own port, from the ingress controller, Prometheus and (identity) the services.
        sources = []
        for rule in _rules_from(policy):
            assert [p["port"] for p in rule["ports"]] == [port]
            sources += rule["from"]
        namespaces = {s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                      for s in sources if "namespaceSelector" in s}
        assert namespaces == {"ingress-nginx", "monitoring"}
        prometheus = [s for s in sources if s.get("podSelector", {}).get("matchLabels", {}).get(
            "app.kubernetes.io/name") == "prometheus"]
        assert prometheus, f"{service}: Prometheus cannot scrape /metrics"
        assert not [s for s in sources if "ipBlock" in s], f"{service}: ingress by ipBlock"
        peers = [s for s in sources if "namespaceSelector" not in s]
        callers = [p["podSelector"]["matchLabels"].get("app.kubernetes.io/name") for p in peers]
        if service == "identity":
            assert peers and all(p["podSelector"]["matchLabels"]["app.kubernetes.io/part-of"] == "assent" for p in peers)
        elif service in EXPORTED_BY_IDENTITY:
            # identity gathers a user's data from them for the export; the Site calls their public APIs.
            assert callers == ["identity", "site"]
        else:
            assert callers == ["site"], f"{service}: called by the Site only"

        # Out: its database, identity's JWKS, and (the mailer alone) SMTP and HTTPS.
        [database] = _rules_to(policy, 5432)
        assert database["to"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "postgresql"}
        [jwks] = _rules_to(policy, 8101)
        assert jwks["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "identity"
        egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
        outside = [peer for rule in policy["spec"]["egress"] for peer in rule["to"] if "ipBlock" in peer]
        if service == "identity":
            assert egress_ports == {5432, 8101} | {PORTS[name] for name in EXPORTED_BY_IDENTITY}
            for name in EXPORTED_BY_IDENTITY:
                [call] = _rules_to(policy, PORTS[name])
                assert call["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == name
        elif service == "mailer":
            assert egress_ports == {5432, 8101, 587, 25, 443}
            [https] = _rules_to(policy, 443)
            assert "10.0.0.0/8" in https["to"][0]["ipBlock"]["except"], "webhooks must not reach private addresses"
        else:
            assert egress_ports == {5432, 8101}
            assert not outside, f"{service} must not reach outside the cluster"
        for rule in policy["spec"]["egress"]:
            assert rule.get("to") and rule.get("ports"), f"{service}: an egress rule open to any peer or port"


EXPORTED_BY_IDENTITY = ("consent", "mailer", "policy", "support")


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_the_site_reaches_the_services_apis_and_nothing_else(build):
    objs = objects(build)
    policy = objs[("NetworkPolicy", "site")]
    for rule in _rules_from(policy):
        assert [p["port"] for p in rule["ports"]] == [SITE_PORT]
        assert all("namespaceSelector" in s for s in rule["from"]), "only the ingress controller and Prometheus"
    called = {}
    for rule in policy["spec"]["egress"]:
        [peer] = rule["to"]
        [port] = rule["ports"]
        called[peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]] = port["port"]
    assert called == PORTS, "the Site talks to the services' HTTP APIs only: no database, nothing outside"


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_the_site_takes_its_secrets_from_secret_references(build):
    [container] = objects(build)[("Deployment", "site")]["spec"]["template"]["spec"]["containers"]
    env = env_of(container)
    for var, secret in (("ASSENT_SESSION_SECRET", "assent-site"), ("ASSENT_SITE_ADMIN_PASSWORD_HASH", "assent-site"),
                        ("ASSENT_ADMIN_TOKEN", "assent-admin")):
        assert env[var]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": var}
    assert "DATABASE_URL" not in env
    from assent_site.settings import SiteSettings

    accepted = {f"ASSENT_{name.upper()}" for name in SiteSettings.model_fields} | {
        "ASSENT_ENV", "ASSENT_SITE_ADMIN_PASSWORD_HASH"}
    given = set(configmap_data(build, "assent-site")) | set(env)
    assert given <= accepted, f"the Site does not read {sorted(given - accepted)}"
    assert configmap_data(build, "assent-site")["ASSENT_SITE_URL"].startswith("https://")


# ------------------------------------------------------------------ Kafka topics


def expected_topics() -> dict[str, dict[str, str]]:
    out = {}
    for spec in topics.ALL:
        configs = {}
        if spec.compacted:
            configs["cleanup.policy"] = "compact"
        if spec.retention_ms is not None:
            configs["retention.ms"] = str(spec.retention_ms)
        out[spec.name] = configs
    for service in SERVICES:
        out[topics.dead_letter_topic(service)] = {"retention.ms": str(DLQ_RETENTION_MS)}
    return out


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_topics_job_declares_every_topic(build):
    declared = topic_lines(build)
    assert declared == expected_topics()
    assert declared["telemetry.hits.v1"]["retention.ms"] == str(7 * 24 * 3600 * 1000)
    data = configmap_data(build, "assent-kafka-topics")
    common = configmap_data(build, "assent-common")
    # The services check topics with the same numbers they would create them with.
    assert common["ASSENT_TOPIC_PARTITIONS"] == data["PARTITIONS"]
    assert common["ASSENT_TOPIC_REPLICATION"] == data["REPLICATION_FACTOR"]
    assert int(data["MIN_INSYNC_REPLICAS"]) <= int(data["REPLICATION_FACTOR"])
    if build != "dev":
        assert (data["PARTITIONS"], data["REPLICATION_FACTOR"], data["MIN_INSYNC_REPLICAS"]) == ("6", "3", "2")

    job = objects(build)[("Job", "assent-kafka-topics")]
    [container] = job["spec"]["template"]["spec"]["containers"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert container["image"] == compose["services"]["kafka"]["image"] == "apache/kafka:4.1.1"
    assert {"configMapRef": {"name": "assent-kafka-topics"}} in container["envFrom"]
    [volume] = [v for v in job["spec"]["template"]["spec"]["volumes"] if "configMap" in v]
    assert volume["configMap"]["name"] == "assent-kafka-topics"


def _run_topics_script(tmp_path: Path, build: str) -> list[list[str]]:
    """Runs the Job's shell script with stand-ins for kafka-topics.sh and kafka-configs.sh."""
    job = objects(build)[("Job", "assent-kafka-topics")]
    [container] = job["spec"]["template"]["spec"]["containers"]
    shell, flag, script = container["command"]
    assert shell == "/bin/sh" and flag.startswith("-")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    for tool in ("kafka-topics.sh", "kafka-configs.sh"):
        stub = bin_dir / tool
        stub.write_text(f'#!/bin/sh\nprintf "%s\\0" {tool} "$@" >> "{calls}"\nprintf "\\n" >> "{calls}"\n')
        stub.chmod(0o755)
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "topics.txt").write_text(configmap_data(build, "assent-kafka-topics")["topics.txt"])
    assert "bin=/opt/kafka/bin" in script and "/etc/assent/topics.txt" in script
    script = script.replace("bin=/opt/kafka/bin", f"bin={bin_dir}").replace("/etc/assent/", f"{etc}/")
    env = {k: v for k, v in configmap_data(build, "assent-kafka-topics").items() if k != "topics.txt"}
    env |= {"KAFKA_BOOTSTRAP_SERVERS": "kafka.test:9092", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(["/bin/sh", flag, script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [line.strip("\0").split("\0") for line in calls.read_text().splitlines() if line]


def _flag_values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg == flag]


@pytest.mark.parametrize("build", ["base", "production", "dev"])
def test_topics_job_script_creates_each_topic_with_its_settings(tmp_path, build):
    calls = _run_topics_script(tmp_path, build)
    data = configmap_data(build, "assent-kafka-topics")
    created = {}
    altered = {}
    for call in calls:
        tool, args = call[0], call[1:]
        assert _flag_values(args, "--bootstrap-server") == ["kafka.test:9092"]
        if tool == "kafka-topics.sh" and "--create" in args:
            assert "--if-not-exists" in args
            [name] = _flag_values(args, "--topic")
            configs = dict(c.split("=", 1) for c in _flag_values(args, "--config"))
            created[name] = (_flag_values(args, "--partitions"), _flag_values(args, "--replication-factor"), configs)
        elif tool == "kafka-configs.sh":
            assert "--alter" in args and _flag_values(args, "--entity-type") == ["topics"]
            [name] = _flag_values(args, "--entity-name")
            [configs] = _flag_values(args, "--add-config")
            altered[name] = dict(c.split("=", 1) for c in configs.split(","))
    wanted = expected_topics()
    assert set(created) == set(wanted) == set(altered)
    for name, configs in wanted.items():
        partitions, replication, created_configs = created[name]
        assert partitions == [data["PARTITIONS"]] and replication == [data["REPLICATION_FACTOR"]]
        full = {"min.insync.replicas": data["MIN_INSYNC_REPLICAS"], **configs}
        assert created_configs == full == altered[name], name
        if build != "dev":
            assert replication == ["3"] and full["min.insync.replicas"] == "2"
    for service in SERVICES:
        assert created[topics.dead_letter_topic(service)][2]["retention.ms"] == str(DLQ_RETENTION_MS)
