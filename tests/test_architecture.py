"""The package layout keeps data flowing one way.

Every module of the project packages is parsed with :mod:`ast`; every import,
at module level or inside a function, becomes an edge of the module graph.
The graph must have no cycle, and ``tasks`` (the puzzle and text domain)
must stand on nothing else in the project.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tasks", "models", "training", "interp", "probes")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _imported(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules that ``name`` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            candidates = [f"{module}.{alias.name}" for alias in node.names] + [module]
        else:
            continue
        for candidate in candidates:
            # The longest known prefix: ``from a.b import c`` is module a.b.c
            # when that exists, otherwise module a.b.
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imported(name, path, known) for name, path in modules.items()}


def _edges_without_package_parents(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Drop the implicit edge child -> parent package.

    Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first, but
    Python resolves that without a cycle; an ``__init__`` that imports its own
    children is the usual way a package exports its names.
    """
    return {
        name: {t for t in targets if not name.startswith(t + ".")}
        for name, targets in graph.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of module names, or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt, BLACK) == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if colour.get(nxt) == WHITE:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = BLACK
        return None

    for node in sorted(graph):
        if colour[node] == WHITE:
            found = visit(node)
            if found:
                return found
    return None


def test_graph_sees_every_package():
    graph = import_graph()
    for package in PACKAGES:
        assert package in graph, package
    # A sanity check that in-function and relative imports are followed.
    assert "models.config" in graph["models.registry"]


def test_no_import_cycles():
    graph = _edges_without_package_parents(import_graph())
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_tasks_stand_alone():
    graph = import_graph()
    bad = {
        (name, target)
        for name, targets in graph.items()
        if name == "tasks" or name.startswith("tasks.")
        for target in targets
        if target.split(".")[0] in {"models", "training", "interp", "probes"}
    }
    assert not bad, sorted(bad)


def test_find_cycle_reports_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("module", ["interp.cli", "training.cli"])
def test_cli_start_up_is_light(module):
    """``interp --help`` and ``recurse-train --help`` must not pay for torch, pandas, pyarrow, plotly or matplotlib."""
    code = (
        f"import sys, {module}\n"
        f"{module}.build_parser()\n"
        "heavy = [m for m in ('torch', 'pandas', 'pyarrow', 'plotly', 'matplotlib') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
        env={**__import__('os').environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.stdout.strip() == "", f"{module} imports {out.stdout.strip()} at start-up"
