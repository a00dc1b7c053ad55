"""Reporters turn diagnostics into text for people and machines. They never lint, and they
import nothing of the engine: what they need (source lines for snippets) comes in the Report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gradlint.diagnostics import Diagnostic
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


def render(report: Report, fmt: str, color: bool = False, show_source: bool = True) -> str:
    return printable(_render(report, fmt, color, show_source))


def _render(report: Report, fmt: str, color: bool, show_source: bool) -> str:
    if fmt == "json":
        from gradlint.reporters.json import render_json

        return render_json(report)
    if fmt == "sarif":
        from gradlint.reporters.sarif import render_sarif

        return render_sarif(report)
    if fmt == "github":
        from gradlint.reporters.github import render_github

        return render_github(report)
    from gradlint.reporters.text import render_text

    return render_text(report, color, show_source)


@dataclass(frozen=True)
class RuleCount:
    code: str
    name: str
    count: int
    fixable_count: int


def statistics(report: Report) -> list[RuleCount]:
    """Findings per code, most frequent first (ties by code)."""
    counts: dict[tuple[str, str], list[int]] = {}
    for diag in report.diagnostics:
        entry = counts.setdefault((diag.code, diag.name), [0, 0])
        entry[0] += 1
        entry[1] += diag.fix is not None
    rows = [RuleCount(code, name, n, fixable) for (code, name), (n, fixable) in counts.items()]
    return sorted(rows, key=lambda r: (-r.count, r.code))


def render_statistics(report: Report, fmt: str = "text") -> str:
    """``--statistics``: findings per code in the chosen format (JSON as ruff prints it)."""
    rows = statistics(report)
    if fmt == "json":
        import json

        return json.dumps([{"code": r.code, "name": r.name, "count": r.count,
                            "fixable": r.count > 0 and r.fixable_count == r.count,
                            "fixable_count": r.fixable_count} for r in rows], indent=2) + "\n"
    total = len(report.diagnostics)
    summary = f"Found {total} problem{'s' if total != 1 else ''}."
    if fmt == "github":
        # Workflow commands without a file: they appear in the job's annotation list.
        title = "::notice title=gradlint statistics::"
        lines = [f"{title}{r.code} ({r.name}): {r.count} finding{'s' if r.count != 1 else ''}" for r in rows]
        return "".join(line + "\n" for line in [*lines, f"::notice title=gradlint statistics::{summary}"])
    if fmt != "text":
        raise ValueError(f"--statistics has no {fmt} form")
    width = max((len(r.name) for r in rows), default=0)
    lines = [f"{r.count:>5}  {r.code}  {r.name:<{width}}  {'[*]' if r.fixable_count else '   '}".rstrip()
             for r in rows]
    lines.append(summary)
    return "\n".join(lines) + "\n"
