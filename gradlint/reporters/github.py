"""GitHub Actions workflow commands: findings appear as annotations on the pull request."""

from __future__ import annotations

from gradlint.reporters import Report
from gradlint.rule import Severity

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(report: Report) -> str:
    lines = []
    for diag in report.diagnostics:
        props = (f"file={_escape_property(diag.path)},line={diag.line},col={diag.column},"
                 f"endLine={diag.end_line},endColumn={diag.end_column},"
                 f"title={_escape_property(f'{diag.code} ({diag.name})')}")
        lines.append(f"::{_COMMAND[diag.severity]} {props}::{_escape_data(f'{diag.code} {diag.message}')}")
    return "".join(line + "\n" for line in lines)
