"""The project's import directions: no import cycle, and ``make lint`` refuses a forbidden import.

User story: a developer adds an import that breaks a direction (Django in the SIP engine, the
API layer in a model, a tenant-schema app in a public-schema app) or closes a circle; ``make
lint`` (and so CI) fails and names what broke, instead of the layering eroding unnoticed.
"""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
PACKAGES = CONFIG["root_packages"]
CONTRACT_NAMES = {contract["id"]: contract["name"] for contract in CONFIG["contracts"]}
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _is_project_code(module: str) -> bool:
    parts = module.split(".")
    return "tests" not in parts and "migrations" not in parts


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    modules = sorted(m for m in graph.modules if _is_project_code(m))
    known = set(modules)
    edges = {
        m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i in known)
        for m in modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in modules:
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if child < len(edges[node]):
                work.append((node, child + 1))
                target = edges[node][child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def _describe(graph: grimp.ImportGraph, component: list[str]) -> str:
    members = set(component)
    lines = [" <-> ".join(component)]
    for importer in component:
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & members):
            details = graph.get_import_details(importer=importer, imported=imported)
            where = ", ".join(f"l.{d['line_number']}" for d in details)
            lines.append(f"    {importer} -> {imported} ({where})")
    return "\n".join(lines)


def test_no_import_cycle_among_project_modules():
    """Module-level, function-level and TYPE_CHECKING imports all count: a function-level
    import is still a dependency, it only moves the failure from import time to call time."""
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False, cache_dir=None)
    cycles = _cycles(graph)
    report = "\n".join(_describe(graph, component) for component in cycles)
    assert not cycles, f"{len(cycles)} import cycle(s):\n{report}"


def test_cycle_finder_finds_a_circle():
    """The finder itself: a three-module circle and a tail outside it."""
    graph = grimp.ImportGraph()
    for module in ("app", "app.a", "app.b", "app.c", "app.d", "app.tests.t"):
        graph.add_module(module)
    graph.add_import(importer="app.a", imported="app.b", line_number=1, line_contents="")
    graph.add_import(importer="app.b", imported="app.c", line_number=2, line_contents="")
    graph.add_import(importer="app.c", imported="app.a", line_number=3, line_contents="")
    graph.add_import(importer="app.d", imported="app.a", line_number=4, line_contents="")
    # Tests may import each other and the code both ways; they are not project code.
    graph.add_import(importer="app.tests.t", imported="app.d", line_number=5, line_contents="")
    graph.add_import(importer="app.d", imported="app.tests.t", line_number=6, line_contents="")
    assert _cycles(graph) == [["app.a", "app.b", "app.c"]]


@pytest.fixture
def project_copy(tmp_path):
    """The project's Python packages (``.py`` files only) and its pyproject, in ``tmp_path``."""
    for package in PACKAGES:
        for source in (ROOT / package).rglob("*.py"):
            target = tmp_path / source.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    shutil.copyfile(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--no-logo"],
        cwd=root,
        # Wide enough that no contract name is wrapped in the report.
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "COLUMNS": "500"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_make_lint_checks_the_import_contracts():
    makefile = (ROOT / "Makefile").read_text()
    lint = makefile.split("\nlint:\n", 1)[1].split("\n\n", 1)[0]
    assert "lint-imports" in lint
    assert "make lint" in (ROOT / ".ci" / "run").read_text()


def test_the_project_keeps_its_import_contracts(project_copy):
    result = _lint_imports(project_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in CONTRACT_NAMES.values():
        assert f"{name} KEPT" in result.stdout


# One forbidden import per contract, added as the first line of a module: (contract, module,
# the line, how the report names the import).
FORBIDDEN = [
    ("engine", "telephony/sip/message.py", "import django", "telephony.sip.message -> django"),
    ("media", "telephony/media/codecs.py", "import django", "telephony.media.codecs -> django"),
    (
        "vendors",
        "provisioning/vendors/render.py",
        "from provisioning.models import Device",
        "provisioning.vendors.render -> provisioning.models",
    ),
    (
        "domain",
        "telephony/models.py",
        "from tenants.api import serializers",
        "telephony.models -> tenants.api.serializers",
    ),
    (
        "schemas",
        "billing/models.py",
        "from telephony.models import Extension",
        "billing.models -> telephony.models",
    ),
]


def test_a_forbidden_import_breaks_its_contract(project_copy):
    for _, module, line, _ in FORBIDDEN:
        path = project_copy / module
        path.write_text(f"{line}\n{path.read_text()}")
    result = _lint_imports(project_copy)
    assert result.returncode != 0
    report = result.stdout
    for contract, _, _, edge in FORBIDDEN:
        name = CONTRACT_NAMES[contract]
        assert f"{name} BROKEN" in report
        # The edge is reported under its own contract's heading.
        section = report.split(f"\n{name}\n", 1)[1]
        following = [f"\n{n}\n" for n in CONTRACT_NAMES.values() if n != name]
        for heading in following:
            section = section.split(heading, 1)[0]
        assert f"{edge} (l.1)" in section, report
