"""Suppression comments: ``# noqa``, ``# noqa: GRD001``, ``# gradlint: ignore[GRD001]`` per line,
``# gradlint: noqa`` for a whole file — and which of them were used (for GRD100)."""

from __future__ import annotations

import re
from dataclasses import field

from gradlint.records import dataclass

_NOQA = re.compile(r"#\s*noqa(?P<colon>:\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
_IGNORE = re.compile(r"#\s*gradlint\s*:\s*ignore(?:\[(?P<codes>[A-Za-z0-9,\s]*)\])?", re.IGNORECASE)
_FILE_NOQA = re.compile(r"#\s*gradlint\s*:\s*noqa\b", re.IGNORECASE)
OWN_PREFIX = "GRD"


@dataclass
class Directive:
    line: int
    column: int
    codes: frozenset[str] | None  # None: every code
    own: bool  # `# gradlint: ignore` or a noqa naming GRD codes: ours to report when unused
    used: set[str] = field(default_factory=set)

    def covers(self, code: str) -> bool:
        return self.codes is None or code in self.codes


class Suppressions:
    """The suppression comments of one file."""

    def __init__(self, text: str) -> None:
        self.by_line: dict[int, list[Directive]] = {}
        self.file_level = False
        if "noqa" not in text and "gradlint" not in text:
            return
        for number, line in enumerate(text.splitlines(), start=1):
            if "#" not in line:
                continue
            if number <= 50 and _FILE_NOQA.search(line):
                self.file_level = True
            for match in _NOQA.finditer(line):
                codes = match.group("codes")
                parsed = frozenset(c.upper() for c in re.split(r"[\s,]+", codes) if c) if codes else None
                own = parsed is not None and any(c.startswith(OWN_PREFIX) for c in parsed)
                self.by_line.setdefault(number, []).append(Directive(number, match.start() + 1, parsed, own))
            for match in _IGNORE.finditer(line):
                codes = match.group("codes")
                parsed = frozenset(c.strip().upper() for c in codes.split(",") if c.strip()) if codes else None
                self.by_line.setdefault(number, []).append(Directive(number, match.start() + 1, parsed, True))

    def suppresses(self, code: str, lines: set[int]) -> bool:
        """True when a directive on one of ``lines`` covers ``code`` (and marks it used)."""
        hit = False
        for number in lines:
            for directive in self.by_line.get(number, ()):
                if directive.covers(code):
                    directive.used.add(code)
                    hit = True
        return hit

    def unused(self) -> list[Directive]:
        """Our directives that suppressed nothing (bare `# noqa` may serve other tools: not ours)."""
        return [d for ds in self.by_line.values() for d in ds if d.own and not d.used]
