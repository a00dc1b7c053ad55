"""Human-readable output: ``path:line:col: CODE message`` and a summary line."""

from __future__ import annotations

from gradlint.reporters import Report
from gradlint.rule import Severity

_COLORS = {Severity.ERROR: "\033[31m", Severity.WARNING: "\033[33m", Severity.INFO: "\033[36m"}
_BOLD = "\033[1m"
_RESET = "\033[0m"


def _source_line(path: str, line: int, cache: dict[str, list[str] | None]) -> str | None:
    """The reported line of the user's file (read once per file; None if it cannot be read)."""
    if path not in cache:
        try:
            from gradlint.engine import decode_source

            with open(path, "rb") as handle:
                cache[path] = decode_source(handle.read()).splitlines()
        except Exception:  # the snippet is a courtesy: never fail the report over it
            cache[path] = None
    lines = cache[path]
    if lines is None or not 1 <= line <= len(lines):
        return None
    return lines[line - 1]


def render_text(report: Report, color: bool = False, show_source: bool = True) -> str:
    lines = []
    sources: dict[str, list[str] | None] = {}
    for diag in report.diagnostics:
        location = f"{diag.path}:{diag.line}:{diag.column}:"
        code = diag.code
        if color:
            location = f"{_BOLD}{location}{_RESET}"
            code = f"{_COLORS[diag.severity]}{code}{_RESET}"
        model = f" [{diag.model}]" if diag.model else ""
        lines.append(f"{location} {code} {diag.message}{model}")
        text = _source_line(diag.path, diag.line, sources) if show_source and not diag.code.startswith("GRD90") else None
        if text is not None and text.strip():
            gutter = f"{diag.line:>5} | "
            width = max(1, (diag.end_column - diag.column) if diag.end_line == diag.line else len(text.rstrip()) - diag.column + 1)
            caret = "^" * max(1, min(width, len(text) - diag.column + 1))
            if color:
                caret = f"{_COLORS[diag.severity]}{caret}{_RESET}"
            lines.append(f"{gutter}{text.rstrip()}")
            lines.append(f"{' ' * (len(gutter) - 2)}| {' ' * (diag.column - 1)}{caret}")
    counts = report.counts()
    total = len(report.diagnostics)
    if total == 0:
        lines.append(f"All checks passed! ({report.files_linted} file{'s' if report.files_linted != 1 else ''}, "
                     f"{report.models} model{'s' if report.models != 1 else ''})")
    else:
        parts = [f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in counts.items() if n]
        lines.append(f"Found {total} problem{'s' if total != 1 else ''} ({', '.join(parts)}) in "
                     f"{report.files_linted} file{'s' if report.files_linted != 1 else ''}, "
                     f"{report.models} model{'s' if report.models != 1 else ''}.")
    return "\n".join(lines) + "\n"
