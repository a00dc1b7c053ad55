"""``yaml.safe_load(TEXT)`` of a literal string: the block YAML that configs are written in.

Scripts and notebooks keep their hyper-parameters as a YAML string in the file and load it with
PyYAML. gradlint does not depend on PyYAML, so this reads the subset configs use, the way PyYAML's
safe loader resolves it: nested block mappings by indentation, block sequences (``- item``), flow
sequences and mappings of scalars (``[64, 64]``, ``{a: 1}``), comments, and YAML 1.1 scalars
(``true``/``yes``/``on``, ``~``/``null``, ints, floats that have a dot or ``.inf``, quoted and plain
strings). Anything else (anchors, tags, multi-line strings, several documents) makes the whole text
unknown: a value read differently from PyYAML would be a wrong width or depth.
"""

from __future__ import annotations

import re
from typing import Any

MAX_TEXT = 100_000


class _Unsupported(Exception):
    pass


_INT = re.compile(r"[-+]?(0|[1-9][0-9_]*)$")
_HEX = re.compile(r"[-+]?0x[0-9a-fA-F_]+$")
# PyYAML's float: a dot is required (``1e-3`` is a string to the safe loader, ``1.0e-3`` a float)
_FLOAT = re.compile(r"[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+][0-9]+)?$")
_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def load(text: str) -> Any:
    """The data PyYAML's safe loader makes of ``text``; raises ValueError where this reader is not sure."""
    if len(text) > MAX_TEXT:
        raise ValueError("too long")
    lines: list[tuple[int, str]] = []
    for raw in text.splitlines():
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ValueError("tab indentation")
        stripped = _strip_comment(raw).rstrip()
        if not stripped.strip() or stripped.strip() in ("---",):
            continue
        if stripped.strip() in ("...",) or stripped.lstrip().startswith("%"):
            raise ValueError("directive or document end")
        lines.append((len(stripped) - len(stripped.lstrip()), stripped.strip()))
    if not lines:
        return None
    try:
        value, end = _block(lines, 0, lines[0][0])
    except (_Unsupported, IndexError) as exc:
        raise ValueError(str(exc)) from exc
    if end != len(lines):
        raise ValueError("trailing text")
    return value


def _strip_comment(line: str) -> str:
    """The line without a ``# comment`` (a ``#`` after a space, outside quotes)."""
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"" and (i == 0 or line[i - 1] in " :-[{,"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _block(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[Any, int]:
    """The mapping or sequence whose entries start at ``lines[i]`` with this indentation."""
    if lines[i][1].startswith("- ") or lines[i][1] == "-":
        return _sequence(lines, i, indent)
    return _mapping(lines, i, indent)


def _sequence(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[list[Any], int]:
    out: list[Any] = []
    while i < len(lines) and lines[i][0] == indent and (lines[i][1].startswith("- ") or lines[i][1] == "-"):
        rest = lines[i][1][1:].strip()
        if not rest:
            if i + 1 < len(lines) and lines[i + 1][0] > indent:
                value, i = _block(lines, i + 1, lines[i + 1][0])
                out.append(value)
                continue
            out.append(None)
            i += 1
            continue
        if _key_split(rest) is not None:  # "- name: x" opens a mapping inside the item
            inner = indent + 2 + (len(lines[i][1][1:]) - len(lines[i][1][1:].lstrip()) - 1)
            sub = [(inner, rest)] + lines[i + 1:]
            value, used = _mapping(sub, 0, inner)
            out.append(value)
            i += used
            continue
        out.append(_scalar(rest))
        i += 1
    if i < len(lines) and lines[i][0] > indent:
        raise _Unsupported("unexpected indentation")
    return out, i


def _mapping(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[dict[Any, Any], int]:
    out: dict[Any, Any] = {}
    while i < len(lines) and lines[i][0] == indent:
        split = _key_split(lines[i][1])
        if split is None:
            raise _Unsupported("not a mapping entry")
        key, rest = split
        if key in out:
            raise _Unsupported("duplicate key")
        if rest:
            out[key] = _scalar(rest)
            i += 1
        elif i + 1 < len(lines) and (lines[i + 1][0] > indent or
                                     (lines[i + 1][0] == indent and lines[i + 1][1].startswith("- "))):
            out[key], i = _block(lines, i + 1, lines[i + 1][0])
        else:
            out[key] = None
            i += 1
    if i < len(lines) and lines[i][0] > indent:
        raise _Unsupported("unexpected indentation")
    return out, i


def _key_split(text: str) -> tuple[Any, str] | None:
    """(key, rest) of ``key: rest``; None when the text is not a mapping entry."""
    if text[:1] in "'\"":
        close = text.find(text[0], 1)
        if close < 0 or text[close + 1: close + 2] != ":":
            return None
        key: Any = text[1:close]
        rest = text[close + 2:]
    else:
        m = re.match(r"([^:#\[\]{},]+?):(\s|$)", text)
        if m is None:
            return None
        key = _scalar(m.group(1).strip())
        rest = text[m.end():]
    if isinstance(key, (list, dict)):
        raise _Unsupported("complex key")
    return key, rest.strip()


def _scalar(text: str) -> Any:
    if text[:1] in "&*!|>%@`":
        raise _Unsupported("anchor, alias, tag or block scalar")
    if text[:1] == "[" or text[:1] == "{":
        return _flow(text)
    if text[:1] == '"':
        if len(text) < 2 or not text.endswith('"') or "\\" in text or '"' in text[1:-1]:
            raise _Unsupported("double-quoted string with escapes")
        return text[1:-1]
    if text[:1] == "'":
        if len(text) < 2 or not text.endswith("'"):
            raise _Unsupported("single-quoted string")
        return text[1:-1].replace("''", "'")
    if ": " in text or text.endswith(":"):
        raise _Unsupported("inline mapping")
    return _plain(text)


def _plain(text: str) -> Any:
    low = text.lower()
    if low in ("~", "null") or text == "":
        return None
    if text in ("true", "True", "TRUE", "false", "False", "FALSE", "yes", "Yes", "YES", "no", "No", "NO",
                "on", "On", "ON", "off", "Off", "OFF"):
        return _BOOLS[low]
    if _INT.match(text):
        return int(text.replace("_", ""))
    if _HEX.match(text):
        return int(text.replace("_", ""), 16)
    if low in (".inf", "+.inf", "-.inf", ".nan"):
        return float(low.replace(".", ""))
    if _FLOAT.match(text) and any(c.isdigit() for c in text):
        return float(text.replace("_", ""))
    if re.match(r"[-+]?0[0-7_]+$", text) or ":" in text:  # octal and sexagesimal numbers: not read
        raise _Unsupported("YAML 1.1 number form")
    return text


def _flow(text: str) -> Any:
    """``[64, 64, 32]`` / ``{units: 64, act: relu}`` of scalars (nested flow collections are not read)."""
    close = "]" if text[0] == "[" else "}"
    if not text.endswith(close):
        raise _Unsupported("multi-line flow collection")
    body = text[1:-1].strip()
    if any(ch in body for ch in "[]{}'\""):
        raise _Unsupported("nested flow collection or quotes")
    parts = [p.strip() for p in body.split(",")] if body else []
    if parts and parts[-1] == "":
        parts.pop()
    if close == "]":
        return [_plain(p) for p in parts]
    out: dict[Any, Any] = {}
    for part in parts:
        key, sep, value = part.partition(":")
        if not sep:
            raise _Unsupported("flow mapping entry without a value")
        out[_plain(key.strip())] = _plain(value.strip())
    return out
