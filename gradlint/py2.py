"""Reading a Python 2 script as Python 3, line for line, so that its model is still checked.

Old Stack Overflow questions and tutorials are Python 2: ``print "x"``, ``except IOError, e:``,
``raise ValueError, "msg"``, ``exec code``. Python 3 cannot parse them, yet the model code
around them is usually plain. ``python3_reading`` rewrites only those statements, in place:
no line is added or removed, so every location gradlint reports is the file's own. A text that
still does not parse afterwards is not Python 2 of this kind, and the caller reports the
original syntax error. The rewritten statements print, execute strings or raise: none builds a
model, so what they mean in Python 3 does not matter to the lint, only that the file parses.
"""

from __future__ import annotations

import io
import tokenize
from collections.abc import Iterator
from dataclasses import field

from gradlint.records import dataclass

# Statement keywords of Python 2 rewritten here, with what the note calls them.
_STATEMENTS = {"print": "print statement", "exec": "exec statement", "except": "`except X, e`",
               "raise": "`raise E, msg`"}
_OPENERS, _CLOSERS = "([{", ")]}"
_COMPOUND = frozenset({"if", "elif", "else", "for", "while", "try", "finally", "with", "def", "class", "except"})


@dataclass
class Reading:
    """The rewritten text and what was rewritten: (line, what) in reading order."""

    text: str
    rewritten: list[tuple[int, str]] = field(default_factory=list)


def python3_reading(text: str) -> Reading | None:
    """``text`` with its Python 2 statements rewritten (same lines), or None when there is none,
    or when the text cannot even be tokenized."""
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
                  if t.type not in (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT)]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None
    lines = text.splitlines(keepends=True)
    # Edits as (row, col, remove, insert) on the original lines, applied right to left.
    edits: list[tuple[int, int, int, str]] = []
    rewritten: list[tuple[int, str]] = []
    start = 0
    for i, tok in enumerate(tokens):
        if tok.type not in (tokenize.NEWLINE, tokenize.ENDMARKER):
            continue
        for what, changes in _statements(tokens[start:i]):
            edits.extend(changes)
            rewritten.append((changes[0][0], what))
        start = i + 1
    if not edits:
        return None
    for row, col, remove, insert in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        line = lines[row - 1]
        lines[row - 1] = line[:col] + insert + line[col + remove:]
    return Reading("".join(lines), rewritten)


def _statements(tokens: list[tokenize.TokenInfo]) -> list[tuple[str, list[tuple[int, int, int, str]]]]:
    """The edits making one logical line Python 3: for each Python 2 statement in it, what it is
    and its edits. A compound statement's header (``for i in x: print i``) is read apart from the
    statement after its colon."""
    if not tokens or tokens[0].type != tokenize.NAME:
        return []
    keyword = tokens[0].string
    if keyword in _COMPOUND:
        colon = _header_colon(tokens)
        if colon is None:
            return []
        found = []
        if keyword == "except":
            comma = _top_level_comma(tokens[1:colon])
            if comma is not None:  # except IOError, e:  ->  except IOError as e:
                found.append((_STATEMENTS["except"], [(*comma.start, _comma_width(comma, tokens), " as ")]))
        return found + _statements(tokens[colon + 1:])
    if keyword not in _STATEMENTS or keyword == "except":
        return []
    rest = tokens[1:]
    what = _STATEMENTS[keyword]
    close = _close_position(tokens)
    if keyword in ("print", "exec"):
        if not rest:
            return []  # a bare name: already Python 3
        if rest[0].type == tokenize.OP and rest[0].string not in ("-", "+", "~", ">>"):
            return []  # print(...), print = ..., print.x: already Python 3
        row, col = tokens[0].end
        # The parenthesis takes the place of the space after the keyword: columns do not move.
        spaced = rest[0].start == (row, col + 1)
        edits = [(row, col, 1 if spaced else 0, "(")]
        if rest[0].string == ">>":  # print >>f, x: the stream becomes one more argument
            edits.append((rest[0].start[0], rest[0].start[1], 2, ""))
        edits.append((*close, 0, ")"))
        return [(what, edits)]
    comma = _top_level_comma(rest)
    if comma is None:
        return []
    # raise E, msg  ->  raise E(msg)
    return [(what, [(*comma.start, _comma_width(comma, tokens), "("), (*close, 0, ")")])]


def _comma_width(comma: tokenize.TokenInfo, tokens: list[tokenize.TokenInfo]) -> int:
    """The comma and the one space after it, when the next token follows on the same line."""
    following = next((t for t in tokens if t.start > comma.start), None)
    return 2 if following is not None and following.start == (comma.end[0], comma.end[1] + 1) else 1


def _at_depth_zero(tokens: list[tokenize.TokenInfo]) -> Iterator[tuple[int, tokenize.TokenInfo]]:
    """The tokens outside any bracket (brackets themselves left out), with their indices."""
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.OP and tok.string in _OPENERS:
            depth += 1
        elif tok.type == tokenize.OP and tok.string in _CLOSERS:
            depth -= 1
        elif depth == 0:
            yield i, tok


def _header_colon(tokens: list[tokenize.TokenInfo]) -> int | None:
    """The index of a compound statement header's colon (not a lambda's, a slice's or a dict's)."""
    lambdas = 0
    for i, tok in _at_depth_zero(tokens):
        if tok.type == tokenize.NAME and tok.string == "lambda":
            lambdas += 1
        elif tok.type == tokenize.OP and tok.string == ":":
            if not lambdas:
                return i
            lambdas -= 1
    return None


def _top_level_comma(tokens: list[tokenize.TokenInfo]) -> tokenize.TokenInfo | None:
    for _, tok in _at_depth_zero(tokens):
        if tok.type == tokenize.OP and tok.string in (",", ":"):
            return tok if tok.string == "," else None
    return None
    return None


def _close_position(tokens: list[tokenize.TokenInfo]) -> tuple[int, int]:
    """Where a closing parenthesis goes: right after the statement's last token (before a
    trailing comment or ``;`` on the line)."""
    last = tokens[-1]
    if last.type == tokenize.OP and last.string == ";":
        last = tokens[-2] if len(tokens) > 1 else last
    return last.end
