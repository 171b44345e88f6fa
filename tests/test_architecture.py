"""The house rules of DESIGN.md that a reader cannot see in one file, checked over the import graph.

Every import counts, at module level or inside a function (a deferred import is still a
dependency): ``portal`` imports no app, apps meet each other only through a public face, no
module imports another's private name, and the project's modules form no import cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("portal", "itsm", "escalation", "exports")
APPS = ("itsm", "escalation", "exports")
# What one app may import of another: its public face only.
PUBLIC_FACES = {"itsm": ("itsm.public",)}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                modules[module_name(path)] = path
    return modules


MODULES = project_modules()


def imports_of(name: str, path: Path) -> Iterator[tuple[str, str, int]]:
    """(imported module, imported name or "", line) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, "", node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in MODULES:
                    yield submodule, "", node.lineno
                else:
                    yield base, alias.name, node.lineno


def project_edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for target, _, _ in imports_of(name, path):
            if target in MODULES and target != name:
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def top(module: str) -> str:
    return module.split(".")[0]


def test_the_project_modules_form_no_import_cycle():
    assert cycles(project_edges()) == []


def test_portal_imports_no_app():
    offending = [
        f"{MODULES[name].relative_to(ROOT)}:{line} imports {target}"
        for name in MODULES
        if top(name) == "portal"
        for target, _, line in imports_of(name, MODULES[name])
        if top(target) in APPS
    ]
    assert offending == []


def test_apps_meet_each_other_only_through_a_public_face():
    offending = []
    for name, path in MODULES.items():
        for target, _, line in imports_of(name, path):
            owner = top(target)
            if owner in APPS and owner != top(name) and top(name) in APPS:
                allowed = PUBLIC_FACES.get(owner, ())
                if target not in allowed:
                    offending.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert offending == []


def test_no_module_imports_a_private_name_of_another():
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {target}.{imported}"
        for name, path in MODULES.items()
        for target, imported, line in imports_of(name, path)
        if imported.startswith("_") and not imported.startswith("__") and top(target) in PACKAGES
    ]
    assert offending == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_the_cycle_finder_finds_exactly_the_cycles(graph, expected):
    assert cycles(graph) == expected


def test_a_deferred_import_inside_a_function_counts(tmp_path, monkeypatch):
    source = tmp_path / "sample.py"
    source.write_text("def f():\n    from itsm import tasks\n")
    monkeypatch.setitem(MODULES, "itsm.tasks", source)

    assert ("itsm.tasks", "", 2) in list(imports_of("portal.sample", source))
