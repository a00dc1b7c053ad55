"""Human-readable output: ``path:line:col: CODE message`` and a summary line."""

from __future__ import annotations

import unicodedata

from gradlint.diagnostics import Diagnostic
from gradlint.reporters.report import BaselineNote, Report
from gradlint.rule import Severity

_COLORS = {Severity.ERROR: "\033[31m", Severity.WARNING: "\033[33m", Severity.INFO: "\033[36m"}
_BOLD = "\033[1m"
_RESET = "\033[0m"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _source_line(report: Report, path: str, line: int, cache: dict[str, list[str] | None],
                 cell: int | None = None) -> str | None:
    """The reported line of the user's file (read once per file; None if it cannot be read)."""
    if report.source_lines is None:
        return None
    if cell is not None:  # a notebook: the line within the cell, as the user wrote it
        from gradlint.notebook import cell_lines

        key = f"{path}\0{cell}"
        if key not in cache:
            cache[key] = cell_lines(path, cell)
        path = key
    if path not in cache:
        try:
            cache[path] = report.source_lines(path)
        except Exception:  # the snippet is a courtesy: never fail the report over it
            cache[path] = None
    lines = cache[path]
    if lines is None or not 1 <= line <= len(lines):
        return None
    return lines[line - 1]


def _snippet(diag: Diagnostic, text: str, color: bool) -> list[str]:
    gutter = f"{diag.line:>5} | "
    one_line = diag.end_line == diag.line
    width = max(1, (diag.end_column - diag.column) if one_line else len(text.rstrip()) - diag.column + 1)
    shown = text.rstrip().expandtabs(_TAB)
    before = text[:diag.column - 1].expandtabs(_TAB)
    marked = text[diag.column - 1:diag.column - 1 + max(1, min(width, len(text) - diag.column + 1))]
    caret = "^" * max(1, _display_width(marked))
    if color:
        caret = f"{_COLORS[diag.severity]}{caret}{_RESET}"
    return [f"{gutter}{shown}", f"{' ' * (len(gutter) - 2)}| {' ' * _display_width(before)}{caret}"]


_TAB = 4


def _display_width(text: str) -> int:
    """Terminal cells: wide (CJK, emoji) characters take two, combining marks none."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in text)


def _summary(report: Report) -> str:
    scope = f"{_plural(report.files_linted, 'file')}, {_plural(report.models, 'model')}"
    # Silence about a model gradlint fully understood differs from silence about one it could not
    # follow (an unresolved import, an unknown depth): the summary says how many it understood.
    understood = f"{report.models_understood} fully understood" if report.models else ""
    note = report.baseline
    total = len(report.diagnostics)
    if note is not None and note.recorded is not None:
        return (f"Recorded {_plural(note.recorded, 'finding')} in {note.path} ({scope}"
                f"{', ' + understood if understood else ''}); "
                f"runs with --baseline {note.path} report only findings not in it.")
    hidden = _hidden(note)
    if total == 0:
        return f"All checks passed! ({scope}{', ' + understood if understood else ''}{'; ' + hidden if hidden else ''})"
    parts = [f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in report.counts().items() if n]
    return (f"Found {_plural(total, 'problem')} ({', '.join(parts)}) in {scope}"
            f"{' (' + understood + ')' if understood else ''}{'; ' + hidden if hidden else ''}.")


def _hidden(note: BaselineNote | None) -> str:
    if note is None or not note.hidden:
        return ""
    return f"{_plural(note.hidden, 'known finding')} hidden by the baseline {note.path}"


def render_text(report: Report, color: bool = False, show_source: bool = True) -> str:
    lines = []
    sources: dict[str, list[str] | None] = {}
    for diag in report.diagnostics:
        cell = f"cell {diag.cell}:" if diag.cell is not None else ""  # ruff's notebook form
        location = f"{diag.path}:{cell}{diag.line}:{diag.column}:"
        code = diag.code
        if color:
            location = f"{_BOLD}{location}{_RESET}"
            code = f"{_COLORS[diag.severity]}{code}{_RESET}"
        model = f" [{diag.model}]" if diag.model else ""
        lines.append(f"{location} {code} {diag.message}{model}")
        wanted = show_source and not diag.code.startswith("GRD90")
        text = _source_line(report, diag.path, diag.line, sources, diag.cell) if wanted else None
        if text is not None and text.strip():
            lines.extend(_snippet(diag, text, color))
    lines.append(_summary(report))
    return "\n".join(lines) + "\n"
