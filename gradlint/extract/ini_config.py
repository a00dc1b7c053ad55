"""``configparser`` configs written in the file: ``config.read_string(TEXT)`` of a literal string (or
``read_dict({...})``), then ``config.getint("model", "depth")``, ``config["model"]["width"]``,
``config["model"].getfloat("std")``. The text is read by the standard library's own
``configparser`` (the same class the file makes, so interpolation and ``DEFAULT`` work as they do
when the script runs); a parser that reads files (``read``, ``read_file``) is unknown past what the
file wrote itself.
"""

from __future__ import annotations

import ast
import configparser
from typing import Any

from gradlint.extract.api import Args, AttributedV, Interp, InvocableV, Kwargs
from gradlint.extract.values import UNKNOWN, Const, DictV, Value

MAX_TEXT = 100_000
_PARSERS: dict[str, type[configparser.RawConfigParser]] = {
    "configparser.ConfigParser": configparser.ConfigParser,
    "configparser.RawConfigParser": configparser.RawConfigParser,
}
_GETTERS = ("get", "getint", "getfloat", "getboolean")


class IniSectionV(DictV, AttributedV):
    """A section of a parser: its options as strings, by key; ``getint(option)`` and the like."""

    def attribute(self, interp: Interp, name: str) -> Value:
        return _SectionMethodV(self, name) if name in _GETTERS else UNKNOWN


class IniConfigV(DictV, AttributedV):
    """``configparser.ConfigParser()``: its sections, by name."""

    def __init__(self, kind: type[configparser.RawConfigParser]) -> None:
        super().__init__({})
        self.parser = kind()

    def attribute(self, interp: Interp, name: str) -> Value:
        if name in _GETTERS or name in ("read_string", "read_dict", "read", "read_file", "sections"):
            return _ParserMethodV(self, name)
        return UNKNOWN

    def refresh(self) -> None:
        """The sections as the parser holds them (``DEFAULT`` options in each, interpolated)."""
        items: dict[Any, Value] = {}
        for section in self.parser.sections():
            try:
                options: dict[Any, Value] = {key: Const(self.parser.get(section, key))
                                             for key in self.parser.options(section)}
            except (configparser.Error, ValueError):
                self.partial = True
                continue
            items[section] = IniSectionV(options)
        self.items = items


def make_parser(q: str, args: Args, kwargs: Kwargs) -> Value | None:
    """``configparser.ConfigParser()`` with no arguments; None for other names."""
    kind = _PARSERS.get(q)
    if kind is None:
        return None
    return IniConfigV(kind) if not args and not kwargs else UNKNOWN


def _get(options: DictV, partial: bool, name: str, key: Value, fallback: Value | None) -> Value:
    if not (isinstance(key, Const) and isinstance(key.value, str)):
        return UNKNOWN
    found = options.items.get(key.value.lower())  # configparser lowercases option names
    if found is None:
        return fallback if fallback is not None and not partial else UNKNOWN
    raw = found.value if isinstance(found, Const) else None
    if not isinstance(raw, str):
        return UNKNOWN
    try:
        if name == "getint":
            return Const(int(raw))
        if name == "getfloat":
            return Const(float(raw))
        if name == "getboolean":
            state = configparser.ConfigParser.BOOLEAN_STATES.get(raw.lower())
            return Const(state) if state is not None else UNKNOWN
    except ValueError:
        return UNKNOWN
    return Const(raw)


class _SectionMethodV(InvocableV):
    def __init__(self, section: IniSectionV, name: str) -> None:
        self.section = section
        self.name = name

    def invoke(self, interp: Interp, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        if not args:
            return UNKNOWN
        fallback = args[1] if len(args) > 1 else kwargs.get("fallback")
        return _get(self.section, self.section.partial, self.name, args[0], fallback)


class _ParserMethodV(InvocableV):
    def __init__(self, config: IniConfigV, name: str) -> None:
        self.config = config
        self.name = name

    def invoke(self, interp: Interp, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        config, name = self.config, self.name
        if name in ("read", "read_file"):
            config.partial = True  # files: what they hold is not known here
            return UNKNOWN
        if name == "sections":
            return UNKNOWN if config.partial else Const(list(config.items))
        if name == "read_string":
            text = args[0] if args else kwargs.get("string")
            if not (isinstance(text, Const) and isinstance(text.value, str)) or len(text.value) > MAX_TEXT:
                config.partial = True
                return UNKNOWN
            try:
                config.parser.read_string(text.value)
            except configparser.Error:
                config.partial = True
                return UNKNOWN
            config.refresh()
            return Const(None)
        if name == "read_dict":
            source = args[0] if args else None
            data = _plain(source)
            if not isinstance(data, dict):
                config.partial = True
                return UNKNOWN
            try:
                config.parser.read_dict(data)
            except (configparser.Error, TypeError, ValueError):
                config.partial = True
                return UNKNOWN
            config.refresh()
            return Const(None)
        if len(args) < 2 or not (isinstance(args[0], Const) and isinstance(args[0].value, str)):
            return UNKNOWN
        section = config.items.get(args[0].value)
        fallback = args[2] if len(args) > 2 else kwargs.get("fallback")
        if not isinstance(section, IniSectionV):
            return fallback if fallback is not None and not config.partial else UNKNOWN
        return _get(section, config.partial, name, args[1], fallback)


def _plain(value: Value | None) -> Any:
    """A dict of dicts of literal values as plain data; None when any part is not literal."""
    if isinstance(value, DictV) and not value.partial:
        out = {}
        for key, item in value.items.items():
            inner = _plain(item)
            if inner is None:
                return None
            out[key] = inner
        return out
    if isinstance(value, Const) and isinstance(value.value, (str, int, float, bool)):
        return value.value
    return None
