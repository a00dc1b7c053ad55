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


def render(report: Report, fmt: str, color: bool = False) -> str:
    if fmt == "json":
        from gradlint.reporters.json import render_json

        return render_json(report)
    from gradlint.reporters.text import render_text

    return render_text(report, color)
