"""--fix/--diff for notebooks, and for .py files that keep IPython lines.

A notebook is fixed cell by cell: each cell with fixes is masked (its IPython lines become
uniquely tagged ``pass`` statements), planned by the ordinary fixer (gradlint.fixes, with
all its checks) and unmasked; then only that cell's ``source`` value is spliced into the
file text (gradlint.notebook.replace_cells). Indentation, key order, outputs and metadata
stay byte for byte. Fix spans are in the notebook's virtual source; the returned ``applied``
holds the caller's fixes, so dry runs (``fixes.applicable``) match them by key. The planner
is passed in by gradlint.fixes, so this module never imports it (no import cycle).
"""

from __future__ import annotations

import difflib
import io
import re
import tokenize
from collections.abc import Callable, Sequence
from dataclasses import replace

from gradlint.model import Span
from gradlint.notebook import (
    NotebookError,
    load_notebook,
    mask_lines,
    replace_cells,
    split_lines,
)
from gradlint.rule import InitFix

_TAG = re.compile(r"[ \t]*pass  # gradlint-masked-(\d+)(\r\n|\r|\n)?")


# What gradlint.fixes passes in: Python bytes + fixes (+ the source naming torch.nn.init) ->
# (fixed bytes, fixes applied), or None. Injected so that this module does not import fixes.
Planner = Callable[[bytes, Sequence[InitFix], "bytes | None"], "tuple[bytes, list[InitFix]] | None"]


def cell_diff(path: str, cells: Sequence[tuple[int, str, str]]) -> str:
    """One unified diff per changed cell, headed ``path:cell N`` (as ruff prints them)."""
    out: list[str] = []
    for number, old, new in cells:
        out.extend(difflib.unified_diff(_diff_lines(old), _diff_lines(new), fromfile=f"a/{path}:cell {number}",
                                        tofile=f"b/{path}:cell {number}"))
    return "".join(out)


def _diff_lines(text: str) -> list[str]:
    lines = split_lines(text)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n"
    return lines


def fix_masked_text(text: str, fixes: Sequence[InitFix], cell_magics: bool, plan: Planner,
                     imports_from: bytes | None) -> tuple[str, list[InitFix]] | None:
    """Fix Python text holding IPython lines: masked, planned, unmasked. None: nothing applies."""
    lines = split_lines(text)
    masked, indices = mask_lines(lines, lambda i, indent: f"{indent}pass  # gradlint-masked-{i}", cell_magics)
    planned = plan("".join(masked).encode("utf-8"), fixes, imports_from)
    if planned is None:
        return None
    restored = []
    for line in split_lines(planned[0].decode("utf-8")):
        tag = _TAG.fullmatch(line) if indices else None
        restored.append(lines[int(tag.group(1))] if tag and int(tag.group(1)) < len(lines) else line)
    return "".join(restored), planned[1]


def plan_masked(data: bytes, fixes: Sequence[InitFix], plan: Planner,
                imports_from: bytes | None = None) -> tuple[bytes, str, list[InitFix]] | None:
    """A .py file that LibCST cannot parse: if IPython lines are the reason, fix around them.
    Returns (fixed bytes, encoding, fixes applied)."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return None
    if encoding not in ("utf-8", "utf-8-sig") or text.startswith("\ufeff"):
        return None  # the masked text is re-encoded as UTF-8: keep to files that are
    _, indices = mask_lines(split_lines(text), cell_magics=False)
    if not indices:
        return None  # a real syntax error
    fixed = fix_masked_text(text, fixes, False, plan, imports_from)
    if fixed is None:
        return None
    return fixed[0].encode(encoding), encoding, fixed[1]


def plan_notebook(data: bytes, fixes: Sequence[InitFix], plan: Planner
                  ) -> tuple[bytes, list[InitFix], list[tuple[int, str, str]], list[str]] | None:
    """(fixed file bytes, fixes applied, changed cells as (cell, old, new), "cell N line L" of
    each applied fix), or None."""
    try:
        notebook = load_notebook(data)
    except NotebookError:
        return None
    source = notebook.source()
    imports = source.text.encode("utf-8")  # torch.nn.init may be imported in another cell
    by_cell: dict[int, list[InitFix]] = {}
    original_of: dict[int, InitFix] = {}
    for fix in fixes:  # virtual-source spans -> cell-relative spans
        number, _ = source.locate(fix.span.line)
        span = source.cell(number)
        if span is None:
            continue
        shift = span.start - 1
        s = fix.span
        relative = replace(fix, span=Span(s.line - shift, s.col, s.end_line - shift, s.end_col))
        original_of[id(relative)] = fix
        by_cell.setdefault(number, []).append(relative)
    changed: dict[int, str] = {}
    cells: list[tuple[int, str, str]] = []
    applied: list[InitFix] = []
    where: list[str] = []
    for number, cell_fixes in sorted(by_cell.items()):
        cell = notebook.cell(number)
        if cell is None:
            continue
        result = fix_masked_text(cell.source, cell_fixes, True, plan, imports)
        if result is None or result[0] == cell.source:
            continue
        changed[number] = result[0]
        cells.append((number, cell.source, result[0]))
        applied.extend(original_of.get(id(f), f) for f in result[1])
        where.extend(f"cell {number} line {f.span.line}" for f in result[1])
    if not changed:
        return None
    try:
        text = replace_cells(notebook, changed)
        check = load_notebook(text)  # never write a notebook that does not read back as intended
    except NotebookError:
        return None
    if len(check.cells) != len(notebook.cells):
        return None
    for old, new in zip(notebook.cells, check.cells, strict=True):
        if new.source != changed.get(old.number, old.source) or new.kind != old.kind:
            return None
    bom = "\ufeff" if data.startswith(b"\xef\xbb\xbf") else ""
    return (bom + text).encode("utf-8"), applied, cells, where
