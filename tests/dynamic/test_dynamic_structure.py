"""Structure of the dynamic check and the monitor: no import cycles, public API only.

Static (``ast``): every import statement counts, including the lazy ones inside functions,
because a lazy import of a module that imports back is still a cycle a reader must untangle.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "gradlint"
SCOPE = ("gradlint.dynamic", "gradlint.monitor", "gradlint.verdict", "gradlint.dynamic_bridge")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, name: str, known: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """(imported module, names imported from it) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [alias.name for alias in node.names]
            # `from pkg import submodule` is an import of the submodule, not of pkg's __init__.
            subs = [n for n in names if f"{base}.{n}" in known]
            found += [(f"{base}.{n}", []) for n in subs]
            rest = [n for n in names if n not in subs]
            if rest:
                found.append((base, rest))
    return found


def _graph() -> tuple[dict[str, set[str]], dict[str, list[tuple[str, list[str]]]]]:
    known = _modules()
    graph: dict[str, set[str]] = {}
    raw: dict[str, list[tuple[str, list[str]]]] = {}
    for name, path in known.items():
        if not name.startswith(SCOPE):
            continue
        raw[name] = _imports(path, name, known)
        graph[name] = {target for target, _ in raw[name] if target in known and target != name}
    return graph, raw


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and nxt in graph:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles_in_dynamic_and_monitor() -> None:
    graph, _ = _graph()
    assert "gradlint.dynamic.worker" in graph and "gradlint.monitor.core" in graph
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_monitor_uses_only_the_public_api_of_dynamic() -> None:
    _, raw = _graph()
    private = [
        (module, target, name)
        for module, imports in raw.items()
        if module.startswith("gradlint.monitor")
        for target, names in imports
        if target.startswith("gradlint.dynamic")
        for name in names
        if name.startswith("_")
    ]
    assert private == []


def test_verdict_is_pure_python() -> None:
    _, raw = _graph()
    # gradlint.records (the dataclass decorator) is itself standard library only: test_gradflow checks it
    top = {target.split(".")[0] for target, _ in raw["gradlint.verdict"] if target != "gradlint.records"}
    assert top <= set(sys.stdlib_module_names) | {"__future__"}, top
