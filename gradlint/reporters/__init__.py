"""Reporters turn diagnostics into text for people and machines. They never lint."""

from __future__ import annotations

from dataclasses import dataclass, field

from gradlint.diagnostics import Diagnostic
from gradlint.rule import Severity


@dataclass
class Report:
    diagnostics: list[Diagnostic]
    files_linted: int
    files_with_models: int = 0
    models: int = 0
    extra: dict[str, object] = field(default_factory=dict)  # e.g. "dynamic" results

    def counts(self) -> dict[str, int]:
        out = {"error": 0, "warning": 0, "info": 0}
        for diag in self.diagnostics:
            out[diag.severity.value] += 1
        return out

    @property
    def failing(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity != Severity.INFO]


def render(report: Report, fmt: str, color: bool = False, show_source: bool = True) -> str:
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


def render_statistics(report: Report) -> str:
    """``--statistics``: findings per code, most frequent first."""
    counts: dict[tuple[str, str], int] = {}
    for diag in report.diagnostics:
        counts[(diag.code, diag.name)] = counts.get((diag.code, diag.name), 0) + 1
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0][0]))
    lines = [f"{count:>5}  {code}  {name}" for (code, name), count in rows]
    lines.append(f"Found {len(report.diagnostics)} problem{'s' if len(report.diagnostics) != 1 else ''}.")
    return "\n".join(lines) + "\n"
