"""The import graph of ``gradlint/`` and ``rules/`` has no cycles.

The graph is built with ``ast`` from every ``import`` statement, at module level or inside a
function (a function-level import is still a dependency, only a late one), including
``TYPE_CHECKING`` blocks. ``from pkg import name`` depends on ``pkg.name`` when that is a module
and on ``pkg`` otherwise. Importing ``pkg.mod`` also runs ``pkg/__init__.py``, but that implicit
edge is not counted (as in import-linter and pydeps): it would make every package a cycle.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from conftest import ROOT

PACKAGES = ("gradlint", "rules")

# Known cycles outside extract, still to be removed. Each entry is one import edge that closes a
# known cycle; the test removes these edges and then demands an acyclic graph, so a new cycle fails
# and a fixed one must be taken off this list (test_allowlist_is_not_stale). Shrink it, never grow it.
KNOWN_CYCLE_EDGES: frozenset[tuple[str, str]] = frozenset()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The innermost project module ``name`` refers to (``a.b.c`` -> ``a.b`` when c is not a module)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (a fresh copy: callers may edit it)."""
    return {name: set(targets) for name, targets in _import_graph().items()}


@functools.cache
def _import_graph() -> dict[str, frozenset[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in targets:
                resolved = _resolve(target, modules)
                if resolved is not None and resolved != name:
                    graph[name].add(resolved)
    return {name: frozenset(targets) for name, targets in graph.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def test_the_graph_sees_imports() -> None:
    """Guard against a graph that is trivially acyclic because the parser saw nothing."""
    graph = import_graph()
    assert "gradlint.extract.interpreter" in graph["gradlint.extract"]
    assert "gradlint.engine" in graph["gradlint.cli"]
    assert len(graph) > 40 and sum(map(len, graph.values())) > 100


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    graph = import_graph()
    for importer, imported in KNOWN_CYCLE_EDGES:
        graph.get(importer, set()).discard(imported)
    cycles = _cycles(graph)
    assert not cycles, "import cycles (break them; do not extend KNOWN_CYCLE_EDGES):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_extract_is_cycle_free_without_exceptions() -> None:
    assert not [edge for edge in KNOWN_CYCLE_EDGES if any(m.startswith("gradlint.extract") for m in edge)]
    graph = import_graph()
    sub = {m: {t for t in ts if t.startswith("gradlint.extract")} for m, ts in graph.items()
           if m.startswith("gradlint.extract")}
    assert _cycles(sub) == []


def test_allowlist_is_not_stale() -> None:
    """An allowlisted edge that no longer exists, or no longer closes a cycle, must be removed."""
    graph = import_graph()
    stale = sorted(edge for edge in KNOWN_CYCLE_EDGES if edge[1] not in graph.get(edge[0], set()))
    assert not stale, f"these imports are gone; remove them from KNOWN_CYCLE_EDGES: {stale}"
    on_cycle = {m for cycle in _cycles(graph) for m in cycle}
    acyclic = sorted(edge for edge in KNOWN_CYCLE_EDGES if not set(edge) <= on_cycle)
    assert not acyclic, f"these edges no longer close a cycle; remove them from KNOWN_CYCLE_EDGES: {acyclic}"


def test_a_lazily_imported_framework_states_what_its_handler_says() -> None:
    """The interpreter reads a lazy handler's name, prefixes and model bases before importing it:
    they must be the handler's own."""
    from gradlint.extract.frameworks import FRAMEWORKS, LazyFramework

    lazy = [f for f in FRAMEWORKS if isinstance(f, LazyFramework)]
    assert lazy
    for framework in lazy:
        handler = framework.handler()
        assert (framework.name, framework.prefixes, dict(framework.model_bases), framework.model_base_suffixes) == (
            handler.name, handler.prefixes, dict(handler.model_bases), handler.model_base_suffixes)


def test_a_torch_file_is_linted_without_importing_the_tensorflow_handler() -> None:
    import subprocess
    import sys

    script = ("import sys; from gradlint.engine import lint_source\n"
              "lint_source('import torch.nn as nn\\nm = nn.Sequential(nn.Linear(4, 4), nn.Tanh())\\n')\n"
              "print('gradlint.extract.tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
