"""What a reporter is given: the Report of a run, and text helpers every format shares.

Its own module so that each reporter imports it without importing the package that dispatches
to the reporters (gradlint.reporters)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field

from gradlint.diagnostics import Diagnostic
from gradlint.records import dataclass
from gradlint.rule import Severity


@dataclass(frozen=True)
class BaselineNote:
    """What ``--baseline`` did: recorded the findings (first run, ``--update-baseline``) or hid
    the known ones."""

    path: str
    recorded: int | None = None  # findings written to the baseline on this run
    hidden: int = 0  # known findings not reported

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "recorded": self.recorded, "hidden": self.hidden}


@dataclass
class Report:
    diagnostics: list[Diagnostic]
    files_linted: int
    files_with_models: int = 0
    models: int = 0
    models_understood: int = 0  # models with no UNKNOWN node on the main path
    extra: dict[str, object] = field(default_factory=dict)  # e.g. "dynamic" results
    # The lines of a reported file, for source snippets (None: no snippets for it).
    source_lines: Callable[[str], list[str] | None] | None = None
    baseline: BaselineNote | None = None

    def counts(self) -> dict[str, int]:
        out = {"error": 0, "warning": 0, "info": 0}
        for diag in self.diagnostics:
            out[diag.severity.value] += 1
        return out

    @property
    def failing(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity != Severity.INFO]


FORMATS = ("text", "json", "sarif", "github")
# --statistics: SARIF is a log of individual results and has no place for counts per rule.
STATISTICS_FORMATS = ("text", "json", "github")


def printable(text: str) -> str:
    """Text that encodes as UTF-8. POSIX file names are bytes: one that is not UTF-8 arrives as
    lone surrogates (``os.fsdecode``); those bytes are shown as ``\\xNN`` escapes, so JSON,
    SARIF and annotations stay valid UTF-8 (and every other character is kept as is)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # surrogates outside the file-name range, e.g. "\ud800" in text
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def printable_tree(value: object) -> object:
    """``printable`` applied to every string (keys included) of a JSON-able value."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_tree(k): printable_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [printable_tree(v) for v in value]
    return value
