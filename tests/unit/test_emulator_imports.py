"""The emulators' import graph: no module imports itself through others (also not under
TYPE_CHECKING or inside a function), and nothing in emulators/ imports scripts/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

Graph = dict[str, set[str]]


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(path: Path, module: str, modules: set[str]) -> set[str]:
    """Every module `path` imports, anywhere in the file (TYPE_CHECKING, functions), absolute.
    `from package import name` imports `package.name` if that is one of `modules`, else
    `package`."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                names.add(submodule if submodule in modules else base)
    return names


def import_graph(root: Path, top: str) -> tuple[Graph, Graph]:
    """(edges between the modules under `root/top`, every import of each of those modules)."""
    files = {module_name(root, p): p for p in sorted((root / top).rglob("*.py"))}
    everything = {name: imported_names(path, name, set(files)) for name, path in files.items()}
    inside = {
        name: {n for n in names if n in files and n != name} for name, names in everything.items()
    }
    return inside, everything


def cycles(graph: Graph) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.unit
def test_no_module_in_emulators_imports_itself_through_others() -> None:
    inside, _ = import_graph(REPO_ROOT, "emulators")
    assert len(inside) > 50  # the walk found the emulators
    assert cycles(inside) == []


@pytest.mark.unit
def test_nothing_in_emulators_imports_scripts() -> None:
    _, everything = import_graph(REPO_ROOT, "emulators")
    offenders = {
        module: sorted(n for n in names if n == "scripts" or n.startswith("scripts."))
        for module, names in everything.items()
    }
    assert {m: n for m, n in offenders.items() if n} == {}


@pytest.mark.unit
def test_the_check_sees_a_circle_through_type_checking_and_relative_imports(
    tmp_path: Path,
) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import C\n"
    )
    (package / "c.py").write_text("def f():\n    import pkg.a\n    from scripts.x import y\n")
    inside, everything = import_graph(tmp_path, "pkg")
    assert cycles(inside) == [["pkg.a", "pkg.b", "pkg.c"]]
    assert "scripts.x" in everything["pkg.c"]
