"""Human-readable output: ``path:line:col: CODE message`` and a summary line."""

from __future__ import annotations

from gradlint.reporters import Report
from gradlint.rule import Severity

_COLORS = {Severity.ERROR: "\033[31m", Severity.WARNING: "\033[33m", Severity.INFO: "\033[36m"}
_BOLD = "\033[1m"
_RESET = "\033[0m"


def render_text(report: Report, color: bool = False) -> str:
    lines = []
    for diag in report.diagnostics:
        location = f"{diag.path}:{diag.line}:{diag.column}:"
        code = diag.code
        if color:
            location = f"{_BOLD}{location}{_RESET}"
            code = f"{_COLORS[diag.severity]}{code}{_RESET}"
        model = f" [{diag.model}]" if diag.model else ""
        lines.append(f"{location} {code} {diag.message}{model}")
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
