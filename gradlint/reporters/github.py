"""GitHub Actions workflow commands: findings appear as annotations on the pull request."""

from __future__ import annotations

from gradlint.reporters.report import Report
from gradlint.rule import Severity

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(report: Report) -> str:
    lines = []
    for diag in report.diagnostics:
        line, column, end_line, end_column = diag.line, diag.column, diag.end_line, diag.end_column
        message = f"{diag.code} {diag.message}"
        if diag.cell is not None:
            # Annotations know only lines of the file as stored: point at the line of the
            # .ipynb JSON that holds the code, and name the cell in the text.
            from gradlint.notebook import raw_location

            line, column = raw_location(diag.path, diag.cell, diag.line, diag.column)
            end_line, end_column = line, column + max(diag.end_column - diag.column, 0) if \
                diag.end_line == diag.line else column
            message = f"{diag.code} {diag.message} [notebook cell {diag.cell}, line {diag.line}]"
        props = (f"file={_escape_property(diag.path)},line={line},col={column},"
                 f"endLine={end_line},endColumn={end_column},"
                 f"title={_escape_property(f'{diag.code} ({diag.name})')}")
        lines.append(f"::{_COMMAND[diag.severity]} {props}::{_escape_data(message)}")
    return "".join(line + "\n" for line in lines)
