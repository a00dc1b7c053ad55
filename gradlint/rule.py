"""Rule base class, findings and the registry of rules.

One rule = one module in ``gradlint.rules`` (the checkout's ``rules/`` folder) holding the
check, its message, its docs and its own typed ``Valid`` / ``Invalid`` cases, which
tests/test_rule_examples.py runs. The docs' Example and Use instead are two of those cases
(``Invalid(..., example=True)``, ``Valid(..., use_instead=True)``): every snippet a user reads
in ``gradlint explain`` is one the suite ran. Rules see ``gradlint.model.Model`` objects only:
no syntax, no I/O.
"""

from __future__ import annotations

import enum
import importlib
import pkgutil
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field
from typing import ClassVar

from gradlint.estimate import Estimate
from gradlint.model import Model, Span
from gradlint.records import dataclass
from gradlint.training import TrainingFacts


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"  # notes never change the exit code


@dataclass(frozen=True)
class InitFix:
    """A semantic edit: "make the init set at ``span`` this scheme". The fixer (gradlint.fixes)
    turns it into a syntax edit; rules never touch source text."""

    span: Span
    framework: str  # torch | keras
    scheme: str  # torch: kaiming_normal_ / xavier_uniform_ ...; keras: he_normal / glorot_uniform ...
    keywords: tuple[tuple[str, str], ...] = ()  # extra keyword arguments as source text
    safe: bool = False  # changing an init changes the model's behaviour: unsafe
    description: str = ""

    def to_json(self) -> dict[str, object]:
        return {"applicability": "safe" if self.safe else "unsafe", "message": self.description}


@dataclass
class Finding:
    """What a rule reports: where, how bad, why — with the estimate behind it when it has one."""

    span: Span
    message: str
    severity: Severity = Severity.WARNING
    estimate: Estimate | None = None
    fix: InitFix | None = None


@dataclass(frozen=True)
class RuleOptions:
    """Thresholds shared by the gradient rules (config keys in brackets)."""

    # A first/last weight-gradient ratio below 10^-3 [vanishing-log10] is "vanishing": at that
    # point Adam's per-parameter normalisation still moves the early layers, SGD effectively does
    # not; AUTOTRAINER uses the same 1e-3 on measured ratios.
    vanishing_log10: float = -3.0
    # Above 10^3 [exploding-log10]: the early layers' updates dwarf the rest.
    exploding_log10: float = 3.0
    # Ten orders of magnitude or more [error-log10]: training cannot recover; severity error.
    error_log10: float = 6.0
    # A first weight layer whose ‖∂L/∂W‖/‖W‖ is below 10^-7 [frozen-log10] is frozen: Adam's ε
    # (1e-8 torch, 1e-7 Keras) dominates its updates, SGD moves it by nothing (the protocol's threshold).
    frozen_log10: float = -7.0


@dataclass
class RuleContext:
    options: RuleOptions = field(default_factory=RuleOptions)
    models: list[Model] = field(default_factory=list)  # every model of the file
    training: TrainingFacts | None = None  # what the file's training code does
    # The codes that run on this file (None: all). A rule that leaves a finding to another checks it runs.
    enabled: frozenset[str] | None = None

    def runs(self, code: str) -> bool:
        return self.enabled is None or code in self.enabled

    def model_by_id(self, origin_id: int | None) -> Model | None:
        return next((m for m in self.models if m.origin_id == origin_id), None) if origin_id is not None else None


def _case_source(code: str) -> str:
    """A case as a user would save it: dedented, no blank first line, one final newline.
    Expected lines count in this text, so `gradlint explain`'s snippet saved to a file
    reports at the same line."""
    return textwrap.dedent(code).strip("\n") + "\n"


@dataclass(frozen=True)
class Valid:
    """Source on which the rule must report nothing.

    ``use_instead=True``: the one case `gradlint explain` shows under "Use instead" (the fix of
    the rule's example); the suite also checks that no other default rule fires on it."""

    code: str
    use_instead: bool = False

    @property
    def source(self) -> str:
        return _case_source(self.code)


@dataclass(frozen=True)
class Invalid:
    """Source on which the rule must report ``count`` findings, the first (in reading order) at
    ``line`` (1-based, in ``source``) and, when given, ``column``; ``message`` is a regular
    expression searched in that finding's message (for the wording that matters, e.g. which
    branch of the rule spoke).

    ``example=True``: the one case `gradlint explain` shows under "Example"."""

    code: str
    line: int
    column: int | None = None
    message: str | None = None
    count: int = 1
    example: bool = False

    @property
    def source(self) -> str:
        return _case_source(self.code)


class Rule:
    """Base class. Subclasses set the class attributes and implement ``check``."""

    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    what_it_does: ClassVar[str]
    why_bad: ClassVar[str]
    fix: ClassVar[str] = "No automatic fix."
    formula: ClassVar[str] = ""
    default_enabled: ClassVar[bool] = True
    fixable: ClassVar[bool] = False
    # Reported by the dynamic check (``--dynamic``), never by ``check``: its cases are run with
    # --dynamic (tests/dynamic/test_measured_rule.py), not by the static case tests.
    measured: ClassVar[bool] = False
    # Self-tests (tests/test_rule_examples.py) and the docs' Example / Use instead.
    VALID: ClassVar[Sequence[Valid]] = ()
    INVALID: ClassVar[Sequence[Invalid]] = ()

    def check(self, model: Model, context: RuleContext) -> Iterable[Finding]:
        """Findings about one model definition."""
        return ()

    def check_training(self, context: RuleContext) -> Iterable[tuple[Finding, Model | None]]:
        """Findings about the file's training code (with the model each concerns, if known)."""
        return ()

    @classmethod
    def example_case(cls) -> Invalid:
        """The INVALID case marked ``example=True`` (exactly one; the suite checks)."""
        marked = [case for case in cls.INVALID if case.example]
        if len(marked) != 1:
            raise LookupError(f"{cls.code}: {len(marked)} INVALID cases marked example=True, want 1")
        return marked[0]

    @classmethod
    def use_instead_case(cls) -> Valid:
        """The VALID case marked ``use_instead=True`` (exactly one; the suite checks)."""
        marked = [case for case in cls.VALID if case.use_instead]
        if len(marked) != 1:
            raise LookupError(f"{cls.code}: {len(marked)} VALID cases marked use_instead=True, want 1")
        return marked[0]

    @classmethod
    def docs(cls) -> str:
        parts = [f"{cls.code} ({cls.name})", "", cls.summary, "",
                 "## What it does", cls.what_it_does.strip(), "",
                 "## Why is this bad?", cls.why_bad.strip(), ""]
        if cls.formula:
            parts += ["## How it is measured" if cls.measured else "## How it is estimated", cls.formula.strip(), ""]
        parts += ["## Example", "```python", cls.example_case().source.rstrip("\n"), "```", "",
                  "## Use instead", "```python", cls.use_instead_case().source.rstrip("\n"), "```", "",
                  "## Fix", cls.fix.strip(), ""]
        return "\n".join(parts)


# Codes that are not rules but still diagnostics (file-level problems).
SYSTEM_CODES: Mapping[str, tuple[str, str]] = {
    "GRD100": ("unused-suppression", "A `# noqa: GRD...` or `# gradlint: ignore[...]` comment that silences nothing "
                                     "(off by default; enable with --extend-select GRD100)."),
    "GRD900": ("unreadable-file", "The file could not be read or decoded."),
    "GRD901": ("syntax-error", "The file is not valid Python 3 (nor Python 2 that reads as Python 3 "
                                "line for line, see GRD904) and was not linted."),
    "GRD902": ("internal-error", "gradlint failed on this file; please report it with the file attached."),
    "GRD903": ("too-complex", "A model, function or module-level statement needs more symbolic steps than gradlint "
                              "allows; the note says what was not checked (never changes the exit code)."),
    "GRD904": ("python2-syntax", "The file is Python 2 (print statement, `except X, e`, ...): it was linted with those "
                                 "statements rewritten in place, line for line (a note: never changes the exit code)."),
}

# What `gradlint explain` prints for the system codes, beyond the one-line summary.
SYSTEM_ADVICE: Mapping[str, str] = {
    "GRD100": """A suppression comment that no finding used: the problem it silenced was fixed, or the code
moved. Delete the comment (a bare `# noqa` serves other tools and is never reported).
Off by default: `--extend-select GRD100` or `extend-select = ["GRD100"]` turns it on.""",
    "GRD900": """The file could not be read (missing, a FIFO or device, a broken link, larger than gradlint
reads) or decoded (not UTF-8 and no PEP 263 `# -*- coding: ... -*-` line). The message says
which. The other files are still linted; the run exits 1.""",
    "GRD901": """Python could not parse the file; the message gives the line and the column. Fix the syntax
(or exclude the file with `--extend-exclude`); the other files are still linted.""",
    "GRD902": """A bug in gradlint. Please report it with the file (or a reduced copy); the run exits 2 and the
other files are still linted.""",
    "GRD903": """## What it means
gradlint runs the model-building code symbolically, with budgets of steps so that no file can
take minutes: each top-level statement of the module and each class or factory built gets its
own (about 150,000 steps, as much as building one model), the whole file 1,500,000, plus a
15-second CPU backstop. The note names exactly what ran out: a `model X` (not checked; the
other models in the file are), a `class X` or `function f` that could not be built, `the loop
at line N` of the module body (not interpreted; what it builds is not checked, the rest of the
module is), or the rest of the file once the file's budget is spent.
Training loops (a model called outside model code, `backward()`, an optimizer step, `fit`)
cost one iteration whatever their length; loops that do real work on every iteration (building
tables, preprocessing data) and generated models of hundreds of thousands of layers are what
exhausts a budget.

## What to do
- The note names a loop or statement that builds no model (data preparation, evaluation): no
  model was missed, every model of the file is checked; keep the note or silence it.
- The note names a model (or the class/function that builds it): a model generated by deeply
  nested loops is cheaper to trace when the repeated part is a block (a class or a function
  called in a loop); or measure it with `gradlint --dynamic`, which builds and runs it.
- It is a note: it never changes the exit code. Silence it with `# noqa: GRD903` on the reported
  line or `--ignore too-complex`.""",
    "GRD904": """## What it means
Python 3 cannot parse the file because of Python 2 statements: `print "x"`, `print >>f, x`,
`exec code`, `except IOError, e:`, `raise ValueError, "msg"`. None of them builds a model, so
gradlint reads the file with just those statements rewritten as Python 3 writes them, in place
(no line moves: every location reported is the file's own), and checks its models. A file that
still does not parse is reported as GRD901 at its own error. What differs in meaning between the
two languages is not modelled: `7 / 2` is 3.5 here and 3 in Python 2 (a layer width computed
with `/` may be left unknown).

## What to do
Nothing is required: it is a note and never changes the exit code. Porting the script
(`2to3`, or `print(...)` and `except X as e`) removes it; `--ignore python2-syntax` or
`# noqa: GRD904` on the reported line silences it.""",
}


_registry: dict[str, type[Rule]] | None = None


def code_for_selector(selector: str) -> str:
    """A code or prefix as written in select/ignore, with rule names (``saturating-activation-stack``)
    mapped to their codes, as ``explain`` accepts them. Codes are case-insensitive."""
    text = selector.strip()
    lowered = text.lower()
    for code, rule in all_rules().items():
        if rule.name == lowered:
            return code
    for code, (name, _) in SYSTEM_CODES.items():
        if name == lowered:
            return code
    return text.upper()


def unknown_selector(codes: Iterable[str]) -> str | None:
    """The first code that is neither ``ALL`` nor a prefix of a known code (None: all are known)."""
    known = set(all_rules()) | set(SYSTEM_CODES)
    for code in codes:
        if code != "ALL" and not any(k.startswith(code) for k in known):
            return code
    return None


def all_rules() -> dict[str, type[Rule]]:
    """Every rule in ``gradlint.rules``, by code (imported once)."""
    global _registry
    if _registry is None:
        # Imported by name: the package is the checkout's rules/ folder mapped onto gradlint.rules
        # at install time, which static tools (mypy) cannot follow.
        package = importlib.import_module("gradlint.rules")
        found: dict[str, type[Rule]] = {}
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for obj in vars(module).values():
                if isinstance(obj, type) and issubclass(obj, Rule) and obj is not Rule and getattr(obj, "code", None):
                    found[obj.code] = obj
        _registry = dict(sorted(found.items()))
    return _registry
