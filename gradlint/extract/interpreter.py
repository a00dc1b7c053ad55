"""A small abstract interpreter for model-building Python code.

It runs a file's module body, classes and functions symbolically — never importing or
executing the user's code — so that loops with constant trip counts, comprehensions,
``[...] * n``, default arguments, module constants, helper functions and block classes
resolve to the layers they really build. Anything it cannot know becomes ``UNKNOWN``
and later turns into an explicit UNKNOWN layer that rules do not reason across.

``Interpreter`` assembles the Python-semantics mixins (``statements``, ``expressions``, ``calls``,
``pybuiltins``, ``modules``) over the state below; framework knowledge comes from the handlers in
``frameworks.FRAMEWORKS``.
"""

from __future__ import annotations

import ast
import os
import time
from collections.abc import Sequence

from gradlint.extract import catalog
from gradlint.extract.api import Framework
from gradlint.extract.calls import CallsMixin
from gradlint.extract.expressions import ExpressionsMixin
from gradlint.extract.frameworks import FRAMEWORKS
from gradlint.extract.modules import ModulesMixin
from gradlint.extract.project import ProjectView
from gradlint.extract.pybuiltins import BuiltinsMixin
from gradlint.extract.recorder import grad_event
from gradlint.extract.state import (
    DEFAULT_BUDGET,
    BreakSignal,
    BudgetExceeded,
    ContinueSignal,
    ReturnSignal,
    Scope,
    dispatch_table,
)
from gradlint.extract.statements import StatementsMixin
from gradlint.extract.values import (
    UNKNOWN,
    BatchProbe,
    ClassInfo,
    Frame,
    FunctionV,
    ListV,
    TensorV,
    Value,
    next_serial,
)
from gradlint.model import Layer
from gradlint.training import TrainingFacts

# Steps between two readings of the CPU clock (the deadline of ``extract.FILE_CPU_SECONDS``).
CLOCK_STEPS = 4096


class Interpreter(StatementsMixin, ExpressionsMixin, CallsMixin, BuiltinsMixin, ModulesMixin):
    """Interprets one file. ``run_module`` first; then ``forward`` / ``apply_module`` on roots."""

    def __init__(self, tree: ast.Module, budget: int = DEFAULT_BUDGET, file_budget: int = 1_000_000,
                 frameworks: Sequence[Framework] = FRAMEWORKS, path: str | None = None,
                 roots: tuple[str, ...] = ()) -> None:
        self.tree = tree
        self.eval_methods = dispatch_table(type(self), "eval_")
        self.stmt_methods = dispatch_table(type(self), "stmt_")
        # The step limits count down together in ``steps`` (see ``budget``): a build's budget, reset
        # by the caller for each root; the file's, all roots together (a huge file cannot take
        # minutes); and the steps until the CPU clock is next read.
        self.steps = 0
        self._budget_base = budget
        self._file_base = file_budget
        self._clock_base = CLOCK_STEPS
        self._rewindow()
        self.frameworks = frameworks
        self.module_scope = Scope()
        self.depth = 0
        self.uncertain_since: list[int] = []  # serial at which each open uncertain region began
        self.loops = 0  # open for / while statements (training events inside one repeat)
        self.layer_flags: set[str] = set()  # attribute names the file sets on some layer object
        self.classes: list[ClassInfo] = []
        self.functions: list[FunctionV] = []
        # Everything model-like that got built, in creation order; roots are those never owned.
        self.built: list[Value] = []
        self.instantiated_classes: set[str] = set()
        self.called_functions: set[int] = set()
        self.frame = Frame()
        self.facts = TrainingFacts()
        self.framework_state: dict[str, object] = {}
        self.escaped: list[TensorV] = []  # see Interp.escaped
        self.unrolled = 1  # iterations of the enclosing loop nest run one by one
        self.time_loops: list[tuple[TensorV, int]] = []  # see Interp.time_loops
        self.axis_views: dict[int, tuple[TensorV, TensorV, tuple[int, ...]]] = {}  # see Interp.axis_views
        self.time_pieces: dict[int, tuple[Value, TensorV, int]] = {}  # see Interp.time_pieces
        self.step_lists: dict[int, ListV] = {}  # see Interp.step_lists
        self.step_outputs: dict[int, tuple[TensorV, Layer]] = {}  # see Interp.step_outputs
        self.batch_probe: BatchProbe | None = None  # see Core.batch_probe
        # CPU-time backstop (time.process_time() seconds; None: none): steps are the budget,
        # this only bounds what steps do not measure (an expensive step).
        self.deadline: float | None = None
        self.statement_line = 1  # the top-level statement being run
        # While unreached factory functions run: model classes -> configurations built so far.
        self.entry_configs: dict[int, int] | None = None
        self.foreign_depth = 0  # calls of project modules' functions on the stack
        self.foreign_budget: int | None = None  # see extract.FOREIGN_PROBE_BUDGET
        self.deferrable: ast.AST | None = None  # see CallsMixin.eval_Call
        # Imports of the file's own project are read (never run) when the file's path is known.
        self.project: ProjectView | None = None
        if path is not None and os.path.isfile(path):
            external = {p.split(".")[0] for f in frameworks for p in f.prefixes} | catalog.FRAMEWORK_PACKAGES
            self.project = ProjectView(self, path, roots, tuple(sorted(external)))

    # Each limit is its base plus ``steps``, the countdown to the nearest of them, so that a step
    # (``eval``, ``exec_stmt``: about 10^6 a file) decrements one counter and compares it with 0,
    # instead of three. ``tick`` settles the limits when the countdown runs out.

    @property
    def budget(self) -> int:
        """Steps the current build may still spend."""
        return self._budget_base + self.steps

    @budget.setter
    def budget(self, value: int) -> None:
        self._budget_base = value - self.steps
        self._rewindow()

    @property
    def file_budget(self) -> int:
        """Steps the whole file may still spend."""
        return self._file_base + self.steps

    @file_budget.setter
    def file_budget(self, value: int) -> None:
        self._file_base = value - self.steps
        self._rewindow()

    def _rewindow(self) -> None:
        """Count down to the nearest limit: a budget below 0, or the clock's turn."""
        steps = self.steps
        budget, file_budget, clock = self._budget_base + steps, self._file_base + steps, self._clock_base + steps
        window = min(budget, file_budget, clock - 1)
        self.steps = window
        self._budget_base, self._file_base, self._clock_base = budget - window, file_budget - window, clock - window

    def tick(self, n: int = 1) -> None:
        self.steps -= n
        if self.steps >= 0:
            return
        steps = self.steps
        if self._budget_base + steps < 0 or self._file_base + steps < 0:
            raise BudgetExceeded()  # the countdown stays below 0: every later step raises again
        if self._clock_base + steps <= 0:
            self._clock_base = CLOCK_STEPS - steps
            if self.deadline is not None and time.process_time() > self.deadline:
                self.file_budget = 0  # nothing more in this file: everything left is reported
                raise BudgetExceeded()
        self._rewindow()

    def release(self) -> None:
        """Drop the file's interpretation once its extraction is done. Scopes, the functions and
        classes defined in them, and project modules' scopes refer to each other: left as they are,
        the whole graph (and the syntax it points into) is garbage only the cyclic collector can
        free, walking all of it; emptied, reference counting frees most of it."""
        self.module_scope.vars.clear()
        for info in self.classes:
            info.scope.vars.clear()
        if self.project is not None:
            for module in self.project.modules.values():
                module.scope.vars.clear()
        self.__dict__.clear()

    def enter_uncertain(self) -> None:
        self.uncertain_since.append(next_serial())

    def leave_uncertain(self) -> None:
        self.uncertain_since.pop()

    def mutating_uncertainly(self, target: Value) -> bool:
        """True when ``target`` existed before the innermost undecidable branch or loop began."""
        if not self.uncertain_since:
            return False
        serial = getattr(target, "serial", None)
        return serial is None or serial < self.uncertain_since[-1]

    def framework_of_base(self, qualname: str) -> tuple[str, str | None] | None:
        """(framework, container kind) of a user class deriving from ``qualname``; None: not a model base."""
        for framework in self.frameworks:
            if qualname in framework.model_bases or qualname.endswith(framework.model_base_suffixes):
                return framework.name, framework.model_bases.get(qualname)
        return None

    def is_framework_base(self, qualname: str) -> bool:
        return any(qualname in framework.model_bases for framework in self.frameworks)

    def run_module(self, statement_budget: int | None = None) -> list[tuple[str, int]]:
        """Run the module body. With ``statement_budget`` each top-level statement has its own
        budget: one that runs out (a runaway loop) is abandoned -- the models it built or
        touched are not reported as analysed -- and the next statement runs, so one runaway
        statement cannot starve the others. Returns what was abandoned, as (what, line).
        ``BudgetExceeded`` still escapes when the whole file's budget is spent."""
        abandoned: list[tuple[str, int]] = []
        for stmt in self.tree.body:
            self.statement_line = stmt.lineno
            if statement_budget is not None:
                self.budget = statement_budget
            built_before = len(self.built)
            try:
                self.exec_stmt(stmt, self.module_scope)
            except (ReturnSignal, BreakSignal, ContinueSignal):
                return abandoned
            except (BudgetExceeded, RecursionError):
                if statement_budget is None or self.file_budget <= 0:
                    raise
                abandoned.append((self._abandon(stmt, built_before), stmt.lineno))
                grad_event(self, "opaque", stmt)  # what it did to gradients past that point is unknown
        return abandoned

    def _abandon(self, stmt: ast.stmt, built_before: int) -> str:
        """Models built or touched by a statement that ran out of budget: not analysed."""
        names: list[str] = []
        for value in self.built[built_before:]:
            value.abandoned = True  # type: ignore[attr-defined]
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and node.id not in names:
                bound = self.module_scope.vars.get(node.id)
                if bound is not None and getattr(bound, "owned", None) is not None:  # model-like
                    bound.abandoned = True  # type: ignore[attr-defined]
                    self.module_scope.vars[node.id] = UNKNOWN
                    names.append(node.id)
        kind = {ast.For: "loop", ast.While: "loop", ast.AsyncFor: "loop"}.get(type(stmt), "statement")
        return f"the {kind} at line {stmt.lineno}" + (f" (building {', '.join(names[:3])})" if names else "")


__all__ = ["BudgetExceeded", "Interpreter"]
