"""Diagnostics: findings placed in a file, ready for reporters."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import field

from gradlint.estimate import Estimate
from gradlint.records import dataclass
from gradlint.rule import Severity

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def character_columns(text: str) -> Callable[[int, int], int]:
    """``(line, column)`` -> the column counted in characters, for 1-based lines and columns.

    Python's ``ast`` counts columns in UTF-8 bytes; people, LibCST, ruff and editors count
    characters. The same for ASCII lines; a line with "é" or "😋" before a finding differs."""
    if text.isascii():
        return lambda line, column: column
    lines = _LINE_BREAK.split(text)

    def convert(line: int, column: int) -> int:
        if not 1 <= line <= len(lines) or lines[line - 1].isascii():
            return column
        raw = lines[line - 1].encode("utf-8", "surrogatepass")
        return len(raw[:max(column - 1, 0)].decode("utf-8", "ignore")) + 1

    return convert


@dataclass
class Diagnostic:
    path: str
    line: int
    column: int  # 1-based, as editors count
    end_line: int
    end_column: int
    code: str
    name: str
    severity: Severity
    message: str
    model: str | None = None
    estimate: Estimate | None = None
    extra: dict[str, object] = field(default_factory=dict)
    # Stable across edits elsewhere in the file: code, model and the reported source line's text.
    fingerprint: str | None = None
    fix: object | None = None  # gradlint.rule.InitFix; not cached, --fix relints
    # Notebooks: the cell (1-based over all cells) and ``line``/``end_line`` are within it.
    # A fix's span stays in the notebook's virtual source (gradlint.notebook).
    cell: int | None = None

    def fix_json(self) -> dict[str, object] | None:
        return self.fix.to_json() if self.fix is not None else None  # type: ignore[attr-defined]

    def sort_key(self) -> tuple[str, int, int, int, str]:
        return (self.path, self.cell or 0, self.line, self.column, self.code)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "code": self.code,
            "name": self.name,
            "severity": self.severity.value,
            "message": self.message,
            "model": self.model,
        }
        if self.cell is not None:
            out["cell"] = self.cell
        if self.estimate is not None:
            out["estimate"] = self.estimate.to_json()
        if self.fingerprint is not None:
            out["fingerprint"] = self.fingerprint
        if self.fix is not None:
            out["fix"] = self.fix_json()
        out.update(self.extra)
        return out
