"""Configuration from ``[tool.gradlint]`` in pyproject.toml, merged with the command line.

Discovery: the nearest ``pyproject.toml`` with a ``[tool.gradlint]`` table, searched upward
from the current directory (or from the first linted path); ``--config FILE`` names it;
``--isolated`` ignores all configuration files. Unknown keys and bad values are errors that
name the key and the file.
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import field, replace
from pathlib import Path
from typing import Any

from gradlint.records import dataclass

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]

from gradlint.limits import limit_error
from gradlint.rule import RuleOptions, code_for_selector, unknown_selector


class ConfigError(Exception):
    """A configuration problem the user must fix (exit code 2)."""


@dataclass
class FileConfig:
    """What a ``[tool.gradlint]`` table may hold (kebab-case keys, as in ruff)."""

    path: Path | None = None
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    extend_exclude: tuple[str, ...] = ()
    per_file_ignores: dict[str, tuple[str, ...]] = field(default_factory=dict)
    options: RuleOptions = field(default_factory=RuleOptions)
    dynamic: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def ignored_for(self, file_path: str) -> tuple[str, ...]:
        """Codes ``per-file-ignores`` switches off for this file (patterns relative to the config)."""
        if not self.per_file_ignores:
            return ()
        try:
            rel = os.path.relpath(os.path.abspath(file_path), self.root)
        except ValueError:
            rel = file_path
        name = os.path.basename(file_path)
        codes: list[str] = []
        for pattern, ignored in self.per_file_ignores.items():
            directory = pattern.rstrip("/") + "/*"
            if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(rel, directory):
                codes.extend(ignored)
        return tuple(codes)


_OPTION_KEYS = {"vanishing-log10": "vanishing_log10", "exploding-log10": "exploding_log10",
                "error-log10": "error_log10", "frozen-log10": "frozen_log10"}
_DYNAMIC_KEYS = {"timeout", "seeds", "batch-size", "memory-mb", "vanishing-ratio", "exploding-ratio"}
_LIST_KEYS = {"select", "ignore", "extend-select", "exclude", "extend-exclude"}
KNOWN_KEYS = _LIST_KEYS | {"per-file-ignores", "rules", "dynamic"}


def find_config(start: Path) -> Path | None:
    """The nearest pyproject.toml with a [tool.gradlint] table, from ``start`` upward.

    A pyproject.toml on the way that is not valid TOML is an error (as in ruff): it may hold the
    configuration the user meant, and silently skipping it would lint with other settings."""
    current = start if start.is_dir() else start.parent
    current = current.resolve()
    for directory in (current, *current.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            try:
                data = _read_toml(candidate)
            except ConfigError:
                if _unreadable(candidate):
                    continue  # a file we may not read (permissions) is not ours to judge
                raise
            if isinstance(data.get("tool"), dict) and "gradlint" in data["tool"]:
                return candidate
    return None


def _unreadable(path: Path) -> bool:
    try:
        path.read_bytes()
    except OSError:
        return True
    return False


_TOML_POSITION = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)$")


def _read_toml(path: Path) -> dict[str, Any]:
    """Parsed TOML; errors name the file and, for syntax errors, ``file:line[:column]``."""
    try:
        text = path.read_text(encoding="utf-8")
        return tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.search(message)
        if match is None:
            raise ConfigError(f"{path}: not valid TOML: {message}") from None
        line, column = match.groups()
        # "at end of document" (an unclosed array or string): the last line is where it ends.
        where = f"{line}:{column}" if line else str(len(text.splitlines()) or 1)
        raise ConfigError(f"{path}:{where}: not valid TOML: {message[:match.start()]}") from None


def load_config(path: Path) -> FileConfig:
    data = _read_toml(path)
    table = data.get("tool", {}).get("gradlint")
    if table is None:
        if path.name != "pyproject.toml":  # a dedicated gradlint.toml holds the table at top level
            table = data
        else:
            raise ConfigError(f"{path}: no [tool.gradlint] table")
    return parse_table(table, path)


def parse_table(table: Mapping[str, Any], path: Path | None) -> FileConfig:
    where = str(path) if path else "configuration"
    config = FileConfig(path=path)
    for key, value in table.items():
        if key not in KNOWN_KEYS:
            raise ConfigError(f"{where}: unknown key {key!r} in [tool.gradlint] "
                              f"(known: {', '.join(sorted(KNOWN_KEYS))})")
        if key in ("select", "ignore", "extend-select"):
            setattr(config, key.replace("-", "_"), _selectors(value, key, where))
        elif key in _LIST_KEYS:
            setattr(config, key.replace("-", "_"), _string_list(value, key, where))
        elif key == "per-file-ignores":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: per-file-ignores must be a table of pattern = [codes]")
            config.per_file_ignores = {str(k): _selectors(v, f"per-file-ignores.{k}", where)
                                       for k, v in value.items()}
        elif key == "rules":
            config.options = _rule_options(value, where)
        elif key == "dynamic":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: [tool.gradlint.dynamic] must be a table")
            for dkey, dvalue in value.items():
                if dkey not in _DYNAMIC_KEYS:
                    raise ConfigError(f"{where}: unknown key {dkey!r} in [tool.gradlint.dynamic] "
                                      f"(known: {', '.join(sorted(_DYNAMIC_KEYS))})")
                problem = limit_error(dkey, dvalue)
                if problem is not None:
                    raise ConfigError(f"{where}: dynamic.{problem}")
            config.dynamic = dict(value)
    return config


def _selectors(value: Any, key: str, where: str) -> tuple[str, ...]:
    """Codes, prefixes or rule names (mapped to codes); an unknown one is an error naming the key."""
    written = _string_list(value, key, where)
    codes = tuple(code_for_selector(c) for c in written)
    unknown = unknown_selector(codes)
    if unknown is not None:
        raise ConfigError(f"{where}: {key}: unknown rule code, prefix or name {written[codes.index(unknown)]!r} "
                          f"(`gradlint rules` lists them)")
    return codes


def _string_list(value: Any, key: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key} must be a list of strings, got {value!r}")
    return tuple(value)


def _rule_options(value: Any, where: str) -> RuleOptions:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [tool.gradlint.rules] must be a table")
    options = RuleOptions()
    for key, raw in value.items():
        if key not in _OPTION_KEYS:
            raise ConfigError(f"{where}: unknown key {key!r} in [tool.gradlint.rules] "
                              f"(known: {', '.join(sorted(_OPTION_KEYS))})")
        if not isinstance(raw, (int, float)) or isinstance(raw, bool):
            raise ConfigError(f"{where}: rules.{key} must be a number, got {raw!r}")
        options = replace(options, **{_OPTION_KEYS[key]: float(raw)})
    if options.vanishing_log10 >= 0 or options.exploding_log10 <= 0 or options.error_log10 <= 0 \
            or options.frozen_log10 >= 0:
        raise ConfigError(f"{where}: rules: vanishing-log10 and frozen-log10 must be < 0, exploding-log10 and "
                          f"error-log10 > 0")
    return options
