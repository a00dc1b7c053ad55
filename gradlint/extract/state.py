"""Interpreter state shared by every part of the extraction: scopes, limits and control-flow signals."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from gradlint.extract.values import LazyV, Value

MAX_CALL_DEPTH = 24
MAX_LOOP_ITERATIONS = 512
# Iterations of a whole loop nest that are run one by one (the product of the trip counts of
# the enclosing loops and comprehensions). Beyond it an inner loop runs once with an unknown
# target, as a loop of unknown length does, and what it adds to becomes partial: 512 × 512
# `model.add(Dense(8))` costs ~512 steps instead of 262,144 layers. Real code: the largest
# nest in timm, torchvision, transformers and keras applications is far below (a stage × block
# loop is ~4 × 40).
MAX_UNROLLED = 4_096
MAX_LIST_ITEMS = 20_000  # beyond this a symbolic list stands for "many": partial
DEFAULT_BUDGET = 400_000


class BudgetExceeded(Exception):
    """The file needs more symbolic steps than we allow; its models stay unresolved."""


class ReturnSignal(Exception):
    """``return`` (and ``raise``, as an UNKNOWN result) unwinding to the call."""

    def __init__(self, value: Value) -> None:
        self.value = value


class BreakSignal(Exception):
    """``break`` unwinding to its loop."""


class ContinueSignal(Exception):
    """``continue`` unwinding to its loop."""


class Scope:
    """Variables of one function call, class body or the module; lookups walk to the parent.

    A project module's scope has a ``loader``: a name it does not hold yet is defined on demand
    (``gradlint.extract.project``). Names imported from project modules are ``LazyV`` until read."""

    __slots__ = ("parent", "vars", "loader")

    def __init__(self, parent: Scope | None = None) -> None:
        self.vars: dict[str, Value] = {}
        self.parent = parent
        self.loader: Callable[[str], Value | None] | None = None

    def lookup(self, name: str) -> Value | None:
        scope: Scope | None = self
        while scope is not None:
            found = scope.vars.get(name)
            if found is not None:
                if type(found) is LazyV:
                    found = scope.vars[name] = found.force()
                return found
            if scope.parent is None and scope.loader is not None:
                return scope.loader(name)
            scope = scope.parent
        return None


_TABLES: dict[tuple[type, str], dict[type, Callable[..., Any]]] = {}


def dispatch_table(cls: type, prefix: str) -> dict[type, Callable[..., Any]]:
    """Syntax node class -> the method of ``cls`` named ``prefix + node class name`` (``eval_Call``).

    Built once per interpreter class: ``getattr(self, "eval_" + type(node).__name__)`` built a
    string and a bound method on every one of the ~10^6 expressions a cold lint of a model zoo
    evaluates."""
    key = (cls, prefix)
    table = _TABLES.get(key)
    if table is None:
        table = {}
        stack: list[type] = [ast.AST]
        while stack:
            node_class = stack.pop()
            stack.extend(node_class.__subclasses__())
            method = getattr(cls, prefix + node_class.__name__, None)
            if method is not None:
                table[node_class] = method
        table = _TABLES.setdefault(key, table)
    return table
