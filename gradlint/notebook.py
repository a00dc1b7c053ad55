"""Jupyter notebooks (nbformat 4) and IPython syntax, for the engine, the reporters and the fixer.

The engine lints a notebook as one Python *virtual source*: its code cells concatenated in
order, with IPython-only syntax masked so the rest parses. ``VirtualSource.locate`` maps a
line of that text back to (cell, line in cell). Cells are numbered from 1 over **all** cells
of the notebook, markdown included (ruff does the same), so "cell 3" is the third cell a
reader sees.

Masking: a line that IPython would treat as a magic or shell escape (``!cmd``, ``%magic``,
``var = !cmd``, ``var = %magic``, ``obj?``, ``??obj``) becomes ``pass`` at its indentation;
a cell whose first line is a cell magic (``%%bash``, ``%%html``...) becomes blank lines
(its body may not be Python), except the magics whose body IPython runs as Python code
(``%%time``, ``%%timeit``, ``%%capture``, ``%%prun``, ``%%debug``): only their first line is
masked. Autocall lines (``/f x``, ``,f a b``, ``;f``) are masked too. Line numbers and the
columns of every other line are kept, so locations need no column map. Only lines that start
a logical line are considered: a ``%`` that continues an expression inside brackets is
Python's modulo, never a magic.

Only the standard library is used (``json``): the static install stays libcst + click.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import field

from gradlint.records import dataclass

NOTEBOOK_SUFFIX = ".ipynb"

_ASSIGN_MAGIC = re.compile(r"[A-Za-z_][\w.]*(\s*,\s*[A-Za-z_][\w.]*)*\s*=\s*[!%]")
_HELP = re.compile(r"[A-Za-z_*][\w.*\[\]()]*\?\??\s*(#.*)?")
_NEWLINE = re.compile(r"\r\n|\r|\n")
_LINE_REFERENCE = re.compile(r"\b(lines?) (\d+)(?:–(\d+))?")


class NotebookError(Exception):
    """The file is not a notebook gradlint can read; ``line``/``column`` are in the raw file."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def is_notebook(path: str) -> bool:
    return path.lower().endswith(NOTEBOOK_SUFFIX)


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split as Python's tokenizer does (\\n, \\r\\n, \\r only)."""
    if not text:
        return []
    parts: list[str] = []
    start = 0
    for match in _NEWLINE.finditer(text):
        parts.append(text[start:match.end()])
        start = match.end()
    if start < len(text):
        parts.append(text[start:])
    return parts


# ---------------------------------------------------------------------- masking


def is_magic_line(line: str) -> bool:
    """Whether a line that starts a logical line is IPython syntax rather than Python."""
    stripped = line.strip()
    if not stripped or stripped[0] == "#":
        return False
    if stripped[0] in "!%?/,;":  # no Python statement starts so; "/ , ;" are IPython's autocall
        return True
    if _ASSIGN_MAGIC.match(stripped):
        return True
    return _HELP.fullmatch(stripped) is not None and "?" in stripped


def _close_triple(line: str, start: int, delim: str) -> int:
    """Index just past the closing ``delim`` at or after ``start`` (-1 if the line has none)."""
    i = start
    while True:
        j = line.find(delim, i)
        if j < 0:
            return -1
        backslashes = 0
        k = j - 1
        while k >= 0 and line[k] == "\\":
            backslashes += 1
            k -= 1
        if backslashes % 2 == 0:
            return j + 3
        i = j + 1


class _Scanner:
    """Tracks bracket depth, open triple-quoted strings and backslash continuations, line by
    line: enough to tell where a logical line starts without tokenizing IPython syntax."""

    def __init__(self) -> None:
        self.depth = 0
        self.string: str | None = None  # delimiter of an open triple-quoted string
        self.continued = False

    @property
    def at_start(self) -> bool:
        return self.depth == 0 and self.string is None and not self.continued

    def feed(self, line: str) -> None:
        body = line.rstrip("\r\n")
        i = 0
        n = len(body)
        if self.string is not None:
            end = _close_triple(body, 0, self.string)
            if end < 0:
                self.continued = False
                return
            self.string = None
            i = end
        comment = False
        while i < n:
            c = body[i]
            if c == "#":
                comment = True
                break
            if c in "'\"":
                if body.startswith(c * 3, i):
                    end = _close_triple(body, i + 3, c * 3)
                    if end < 0:
                        self.string = c * 3
                        self.continued = False
                        return
                    i = end
                    continue
                i += 1
                while i < n and body[i] != c:
                    i += 2 if body[i] == "\\" else 1
                i += 1
                continue
            if c in "([{":
                self.depth += 1
            elif c in ")]}":
                self.depth = max(0, self.depth - 1)
            i += 1
        self.continued = not comment and body.endswith("\\")


# Cell magics whose body IPython runs as Python (the rest of the first line is options or,
# for %%timeit, a setup statement, which is masked with the magic).
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})


def _python_cell_magic(line: str) -> bool:
    stripped = line.strip()
    return stripped.startswith("%%") and stripped[2:].split(" ", 1)[0] in PYTHON_CELL_MAGICS


def mask_lines(lines: Sequence[str], placeholder: Callable[[int, str], str] | None = None,
               cell_magics: bool = True) -> tuple[list[str], list[int]]:
    """Mask IPython syntax in ``lines`` (each with its line ending).

    Returns the masked lines (same count) and the indices of the masked ones.
    ``placeholder(index, indent)`` gives the replacement statement (default ``pass``).
    With ``cell_magics``, a first line starting with ``%%`` masks the whole cell, unless the magic
    runs its body as Python (``PYTHON_CELL_MAGICS``): then only that line is masked."""
    make = placeholder or (lambda _index, indent: f"{indent}pass")
    out = list(lines)
    masked: list[int] = []

    def ending(line: str) -> str:
        return line[len(line.rstrip("\r\n")):]

    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    python_body = first is not None and _python_cell_magic(lines[first])
    if cell_magics and first is not None and lines[first].lstrip().startswith("%%") and not python_body:
        for i, line in enumerate(lines):
            out[i] = ending(line) if placeholder is None else make(i, "") + ending(line)
            masked.append(i)
        return out, masked
    scanner = _Scanner()
    magic_indent: str | None = None  # set while masking the continuation lines of a magic
    for i, line in enumerate(lines):
        if magic_indent is not None:
            out[i] = make(i, magic_indent) + ending(line)
            masked.append(i)
            if not line.rstrip("\r\n").endswith("\\"):
                magic_indent = None
            continue
        if scanner.at_start and is_magic_line(line):
            indent = line[:len(line) - len(line.lstrip())]
            out[i] = make(i, indent) + ending(line)
            masked.append(i)
            if line.rstrip("\r\n").endswith("\\"):
                magic_indent = indent
            continue
        scanner.feed(line)
    return out, masked


def mask_python(text: str) -> str:
    """The text with IPython line magics and shell escapes masked (an exported notebook's
    ``!pip install`` line). Cell magics are not special here: a ``%%`` line is one line."""
    lines, masked = mask_lines(split_lines(text), cell_magics=False)
    return "".join(lines) if masked else text


# ---------------------------------------------------------------------- virtual source


@dataclass(frozen=True)
class CellSpan:
    """Where one code cell sits in the virtual source."""

    number: int  # 1-based over all cells of the notebook
    start: int  # first line in the virtual source (1-based)
    lines: int  # how many lines the cell contributes


@dataclass
class VirtualSource:
    """Python text made of code cells, and the map from its lines back to cells."""

    text: str
    cells: list[CellSpan] = field(default_factory=list)

    def locate(self, line: int) -> tuple[int, int]:
        """(cell number, line within the cell) of a line of ``text``; past the end: the last cell."""
        if not self.cells:
            return 1, line
        lo, hi = 0, len(self.cells) - 1
        while lo < hi:  # the last cell starting at or before ``line``
            mid = (lo + hi + 1) // 2
            if self.cells[mid].start <= line:
                lo = mid
            else:
                hi = mid - 1
        cell = self.cells[lo]
        return cell.number, max(1, min(line - cell.start + 1, max(cell.lines, 1)))

    def cell(self, number: int) -> CellSpan | None:
        return next((c for c in self.cells if c.number == number), None)

    def relocate_message(self, message: str, cell: int) -> str:
        """Rule messages name other lines ("line 12", "lines 4–9"): say them within cells too."""
        def one(number: str) -> tuple[int, int]:
            return self.locate(int(number))

        def replace(match: re.Match[str]) -> str:
            word, first, last = match.group(1), match.group(2), match.group(3)
            c1, l1 = one(first)
            if last is None:
                return f"{word} {l1}" if c1 == cell else f"{word} {l1} of cell {c1}"
            c2, l2 = one(last)
            if c1 == c2:
                return f"{word} {l1}–{l2}" + ("" if c1 == cell else f" of cell {c1}")
            return f"line {l1} of cell {c1} to line {l2} of cell {c2}"

        return _LINE_REFERENCE.sub(replace, message)


def virtual_source(cells: Sequence[tuple[int, str]]) -> VirtualSource:
    """Concatenate code cells given as (cell number, source) in order, masking IPython syntax."""
    parts: list[str] = []
    spans: list[CellSpan] = []
    line = 1
    for number, source in cells:
        lines, _ = mask_lines(split_lines(source))
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += "\n"
        spans.append(CellSpan(number, line, len(lines)))
        parts.extend(lines)
        line += len(lines)
    return VirtualSource("".join(parts), spans)


# ---------------------------------------------------------------------- notebook files


@dataclass
class NotebookCell:
    number: int  # 1-based over all cells
    kind: str  # code | markdown | raw
    source: str
    # Span of the ``source`` value in the raw file text (for splicing a fixed cell back).
    raw_span: tuple[int, int] | None = None


@dataclass
class Notebook:
    text: str  # the raw file, decoded
    cells: list[NotebookCell]
    language: str  # "python" unless the metadata says otherwise

    @property
    def code_cells(self) -> list[NotebookCell]:
        return [c for c in self.cells if c.kind == "code"]

    def source(self) -> VirtualSource:
        return virtual_source([(c.number, c.source) for c in self.code_cells])

    def cell(self, number: int) -> NotebookCell | None:
        return next((c for c in self.cells if c.number == number), None)

    def raw_position(self, cell: int, line: int, column: int) -> tuple[int, int]:
        """Line and column in the raw ``.ipynb`` text of a (cell, line, column) location:
        where the JSON string holding that source line is, for formats that can only
        point into the file as it is stored (SARIF regions, GitHub annotations)."""
        found = self.cell(cell)
        if found is None or found.raw_span is None:
            return 1, 1
        start, end = found.raw_span
        value = self.text[start:end]
        decoder = json.JSONDecoder()
        # Each element of a list-valued source is one line (nbformat's layout).
        offsets: list[int] = []
        if value.startswith("["):
            pos = 1
            while True:
                while pos < len(value) and value[pos] in " \t\r\n,":
                    pos += 1
                if pos >= len(value) or value[pos] == "]":
                    break
                offsets.append(start + pos)
                try:
                    _, pos = decoder.raw_decode(value, pos)
                except ValueError:
                    break
        target = offsets[line - 1] if 1 <= line <= len(offsets) else start
        raw_line = self.text.count("\n", 0, target) + 1
        raw_col = target - (self.text.rfind("\n", 0, target) + 1) + 1
        if offsets and 1 <= line <= len(offsets):
            raw_col += column  # past the opening quote; escapes before the column are not counted
        return raw_line, raw_col


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _source_spans(text: str) -> list[tuple[int, int] | None]:
    """Span of each cell's ``source`` value in the raw JSON text, in cell order.

    Walks the top-level object and the ``cells`` array with ``raw_decode`` (which returns
    where each value ends), so the fixer can splice a cell without re-serializing the rest."""
    decoder = json.JSONDecoder()
    spans: list[tuple[int, int] | None] = []
    pos = _skip_ws(text, 0)
    if not text.startswith("{", pos):
        return spans
    pos += 1
    while True:
        pos = _skip_ws(text, pos)
        if pos >= len(text) or text[pos] == "}":
            return spans
        key, pos = decoder.raw_decode(text, pos)
        pos = _skip_ws(text, _skip_ws(text, pos) + 1)  # past ':'
        if key == "cells" and text.startswith("[", pos):
            pos = _skip_ws(text, pos + 1)
            while pos < len(text) and text[pos] != "]":
                spans.append(_cell_source_span(text, pos, decoder))
                _, pos = decoder.raw_decode(text, pos)
                pos = _skip_ws(text, pos)
                if text.startswith(",", pos):
                    pos = _skip_ws(text, pos + 1)
            return spans
        _, pos = decoder.raw_decode(text, pos)
        pos = _skip_ws(text, pos)
        if text.startswith(",", pos):
            pos += 1


def _cell_source_span(text: str, pos: int, decoder: json.JSONDecoder) -> tuple[int, int] | None:
    if not text.startswith("{", pos):
        return None
    pos += 1
    while True:
        pos = _skip_ws(text, pos)
        if pos >= len(text) or text[pos] == "}":
            return None
        key, pos = decoder.raw_decode(text, pos)
        pos = _skip_ws(text, _skip_ws(text, pos) + 1)  # past ':'
        _, end = decoder.raw_decode(text, pos)
        if key == "source":
            return pos, end
        pos = _skip_ws(text, end)
        if text.startswith(",", pos):
            pos += 1


def _join_source(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    return None


def load_notebook(data: bytes | str) -> Notebook:
    """Parse an nbformat 4 notebook; raise NotebookError saying what is wrong with it."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise NotebookError(f"malformed notebook: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    else:
        text = data
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(f"malformed notebook: invalid JSON ({exc.msg})", exc.lineno, exc.colno) from None
    except RecursionError:
        raise NotebookError("malformed notebook: JSON nested too deeply") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise NotebookError("malformed notebook: no `cells` list at the top level (not an nbformat 4 notebook)")
    nbformat = raw.get("nbformat")
    if isinstance(nbformat, int) and nbformat < 4:
        raise NotebookError(f"nbformat {nbformat} notebook: only nbformat 4 is read (convert it with "
                            f"`jupyter nbconvert --to notebook`)")
    metadata: dict[str, object] = raw["metadata"] if isinstance(raw.get("metadata"), dict) else {}
    language = "python"
    for holder, key in ((metadata.get("language_info"), "name"), (metadata.get("kernelspec"), "language")):
        if isinstance(holder, dict) and isinstance(holder.get(key), str):
            language = holder[key].lower()
            break
    try:
        spans = _source_spans(text)
    except (ValueError, IndexError, RecursionError):
        spans = []
    cells: list[NotebookCell] = []
    for index, cell in enumerate(raw["cells"]):
        if not isinstance(cell, dict):
            raise NotebookError(f"malformed notebook: cell {index + 1} is not an object")
        kind = cell.get("cell_type")
        source = _join_source(cell.get("source", ""))
        if not isinstance(kind, str) or source is None:
            raise NotebookError(f"malformed notebook: cell {index + 1} has no valid `cell_type`/`source`")
        span = spans[index] if index < len(spans) and len(spans) == len(raw["cells"]) else None
        cells.append(NotebookCell(index + 1, kind, source, span))
    return Notebook(text, cells, language)


# ---------------------------------------------------------------------- writing cells back


def encode_source(old_value: str, new_source: str, ensure_ascii: bool) -> str:
    """A cell's new ``source`` JSON value in the layout of ``old_value`` (the raw text it
    replaces): a list keeps its element indentation, and elements whose line did not change
    keep their exact original text."""
    import difflib

    new_lines = split_lines(new_source)
    if not old_value.lstrip().startswith("["):
        return json.dumps(new_source, ensure_ascii=ensure_ascii)
    decoder = json.JSONDecoder()
    elements: list[tuple[str, str]] = []  # (decoded line, raw element text)
    pos = 1
    while True:
        while pos < len(old_value) and old_value[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(old_value) or old_value[pos] == "]":
            break
        value, end = decoder.raw_decode(old_value, pos)
        elements.append((value, old_value[pos:end]))
        pos = end
    if not elements:
        if not new_lines:
            return old_value
        return json.dumps(new_lines, ensure_ascii=ensure_ascii)
    # Layout of the original list: what separates "[" from the first element, elements from
    # each other, and the last element from "]".
    first_at = old_value.index(elements[0][1], 1)
    lead = old_value[1:first_at]
    separator = ",\n" + lead.lstrip("\r\n") if "\n" in lead else ", "
    tail_at = old_value.rstrip().rfind("]")
    last_end = old_value.rfind(elements[-1][1], 0, tail_at) + len(elements[-1][1])
    trail = old_value[last_end:tail_at]
    old_lines = [value for value, _ in elements]
    encoded: list[str] = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            encoded.extend(raw for _, raw in elements[i1:i2])
        else:
            encoded.extend(json.dumps(line, ensure_ascii=ensure_ascii) for line in new_lines[j1:j2])
    if not encoded:
        return "[]"
    return "[" + lead + separator.join(encoded) + trail + "]"


def replace_cells(notebook: Notebook, new_sources: dict[int, str]) -> str:
    """The raw notebook text with the ``source`` of the given cells replaced, every other
    byte as it was (indentation, key order, outputs, metadata)."""
    ensure_ascii = not any(ord(ch) > 127 for ch in notebook.text) and "\\u" in notebook.text
    text = notebook.text
    edits = []
    for number, source in new_sources.items():
        cell = notebook.cell(number)
        if cell is None or cell.raw_span is None:
            raise NotebookError(f"cannot locate cell {number} in the notebook file")
        start, end = cell.raw_span
        edits.append((start, end, encode_source(text[start:end], source, ensure_ascii)))
    for start, end, value in sorted(edits, reverse=True):
        text = text[:start] + value + text[end:]
    return text


# ---------------------------------------------------------------------- for reporters

_READ_CACHE: dict[tuple[str, int, int], Notebook | None] = {}


def read_notebook(path: str) -> Notebook | None:
    """The notebook at ``path`` (None if it cannot be read), re-read when the file changes."""
    import os

    try:
        stat = os.stat(path)
    except OSError:
        return None
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _READ_CACHE:
        if len(_READ_CACHE) > 32:
            _READ_CACHE.clear()
        try:
            with open(path, "rb") as handle:
                _READ_CACHE[key] = load_notebook(handle.read())
        except (OSError, NotebookError):
            _READ_CACHE[key] = None
    return _READ_CACHE[key]


def cell_lines(path: str, cell: int) -> list[str] | None:
    """The lines of one cell as the user wrote them (magics unmasked), without line endings."""
    notebook = read_notebook(path)
    found = notebook.cell(cell) if notebook is not None else None
    return None if found is None else [line.rstrip("\r\n") for line in split_lines(found.source)]


def raw_location(path: str, cell: int, line: int, column: int) -> tuple[int, int]:
    """Where (cell, line, column) is in the raw .ipynb text; (1, 1) if the file cannot be read."""
    notebook = read_notebook(path)
    return (1, 1) if notebook is None else notebook.raw_position(cell, line, column)
