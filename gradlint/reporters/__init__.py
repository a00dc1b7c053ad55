"""Reporters turn diagnostics into text for people and machines. They never lint, and they
import nothing of the engine: what they need (source lines for snippets) comes in the Report."""

from __future__ import annotations

from gradlint.records import dataclass
from gradlint.reporters.report import (
    FORMATS,
    STATISTICS_FORMATS,
    BaselineNote,
    Report,
    printable,
    printable_tree,
)

__all__ = ["FORMATS", "STATISTICS_FORMATS", "BaselineNote", "Report", "RuleCount", "printable", "printable_tree",
           "render", "render_statistics", "statistics"]



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
