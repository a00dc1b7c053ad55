"""Every rule's own typed Valid/Invalid cases (Fixit style), and the docs rendered from them.

`gradlint explain CODE` prints two of these cases as "Example" and "Use instead", so every snippet
a user reads is one this file ran: the Example fires the rule where its case says, the Use instead
draws nothing. The last tests read the real `gradlint explain` output, save its snippets to files
and lint them with the real command line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gradlint.engine import LintConfig, Selection, lint_source
from gradlint.rule import Invalid, Rule, Valid, all_rules

from conftest import run_cli

RULES = all_rules()
# Rules the dynamic check reports (``Rule.measured``) never fire statically: their Invalid cases and
# Example run with --dynamic in tests/dynamic/test_measured_rule.py.
STATIC = {code: rule for code, rule in RULES.items() if not rule.measured}
VALID = [(code, i, case) for code, rule in RULES.items() for i, case in enumerate(rule.VALID)]
INVALID = [(code, i, case) for code, rule in STATIC.items() for i, case in enumerate(rule.INVALID)]
# The sections every rule's docs must have, each with its own text.
SECTIONS = ("What it does", "Why is this bad?", "Example", "Use instead", "Fix")


def _lint(source: str, selection: tuple[str, ...]) -> list:
    result = lint_source(source, "example.py", LintConfig(selection=Selection(selection)))
    codes = [d.code for d in result.diagnostics]
    assert "GRD901" not in codes and "GRD902" not in codes, result.diagnostics
    return sorted(result.diagnostics, key=lambda d: (d.line, d.column))


@pytest.mark.parametrize("code,index,case", VALID, ids=[f"{c}-valid-{i}" for c, i, _ in VALID])
def test_valid_case(code: str, index: int, case: Valid) -> None:
    assert isinstance(case, Valid), f"{code}.VALID[{index}] is a {type(case).__name__}, not Valid"
    found = [d for d in _lint(case.source, (code,)) if d.code == code]
    assert not found, [f"{d.line}:{d.column} {d.message}" for d in found]


@pytest.mark.parametrize("code,index,case", INVALID, ids=[f"{c}-invalid-{i}" for c, i, _ in INVALID])
def test_invalid_case(code: str, index: int, case: Invalid) -> None:
    assert isinstance(case, Invalid), f"{code}.INVALID[{index}] is a {type(case).__name__}, not Invalid"
    found = [d for d in _lint(case.source, (code,)) if d.code == code]
    assert len(found) == case.count, [f"{d.line}:{d.column} {d.message}" for d in found]
    first = found[0]
    assert first.line == case.line, f"{code} reported at line {first.line}, the case expects {case.line}"
    if case.column is not None:
        assert first.column == case.column, f"{code} reported at column {first.column}, expected {case.column}"
    if case.message is not None:
        assert re.search(case.message, first.message), (case.message, first.message)


@pytest.mark.parametrize("code", RULES)
def test_docs_cases_are_designated_once(code: str) -> None:
    rule = RULES[code]
    assert sum(case.example for case in rule.INVALID) == 1, "mark exactly one Invalid case example=True"
    assert sum(case.use_instead for case in rule.VALID) == 1, "mark exactly one Valid case use_instead=True"


@pytest.mark.parametrize("code", STATIC)
def test_example_fires_only_its_rule(code: str) -> None:
    """What a user pastes from the Example gets this rule (at the case's line) and no other."""
    case = RULES[code].example_case()
    found = _lint(case.source, ("ALL",))
    assert {d.code for d in found} == {code}, [f"{d.line}:{d.column} {d.code} {d.message}" for d in found]
    assert min(d.line for d in found) == case.line


@pytest.mark.parametrize("code", RULES)
def test_use_instead_is_clean(code: str) -> None:
    """The Use instead draws nothing from any rule: a fix that trades one warning for another is no fix."""
    found = _lint(RULES[code].use_instead_case().source, ("ALL",))
    assert not found, [f"{d.line}:{d.column} {d.code} {d.message}" for d in found]


def _sections(docs: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", docs, flags=re.MULTILINE)
    return {title.strip(): body.strip() for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def _code_block(section: str) -> str:
    match = re.fullmatch(r"```python\n(.*)\n```", section, re.DOTALL)
    assert match, f"not a python code block:\n{section}"
    return match.group(1) + "\n"


@pytest.mark.parametrize("code", RULES)
def test_docs_sections_are_filled_and_distinct(code: str) -> None:
    rule: type[Rule] = RULES[code]
    sections = _sections(rule.docs())
    for title in SECTIONS:
        assert sections.get(title), f"{code}: section {title!r} missing or empty"
    bodies = [sections[title] for title in SECTIONS]
    assert len(set(bodies)) == len(bodies), f"{code}: two sections have the same text"
    assert rule.summary.strip() and rule.summary.strip() not in bodies
    # The rendered snippets are the tested cases, verbatim.
    assert _code_block(sections["Example"]) == rule.example_case().source
    assert _code_block(sections["Use instead"]) == rule.use_instead_case().source


def test_docs_differ_between_rules() -> None:
    """No rule's text is a copy of another's (the Fix line "No automatic fix." may repeat)."""
    for title in ("What it does", "Why is this bad?", "Example", "Use instead"):
        texts = {code: _sections(rule.docs())[title] for code, rule in RULES.items()}
        assert len(set(texts.values())) == len(texts), f"two rules share their {title!r} section"
    summaries = [rule.summary for rule in RULES.values()]
    assert len(set(summaries)) == len(summaries)


def test_explain_snippets_saved_to_files_do_what_they_say(tmp_path: Path) -> None:
    """Through the real CLI: each `gradlint explain CODE` Example, saved as a file, is reported with CODE
    at the case's line and nothing else; each Use instead is clean."""
    expected: dict[str, set[tuple[int, str]] | set[None]] = {}
    for code, rule in RULES.items():
        proc = run_cli("explain", code)
        assert proc.returncode == 0, proc.stderr
        sections = _sections(proc.stdout)
        (tmp_path / f"{code}_example.py").write_text(_code_block(sections["Example"]))
        (tmp_path / f"{code}_use_instead.py").write_text(_code_block(sections["Use instead"]))
        expected[f"{code}_example.py"] = set() if rule.measured else {(rule.example_case().line, code)}
        expected[f"{code}_use_instead.py"] = set()
    proc = run_cli("--no-cache", "--format", "json", ".", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    found: dict[str, set[tuple[int, str]]] = {name: set() for name in expected}
    for diag in json.loads(proc.stdout)["diagnostics"]:
        found[Path(diag["path"]).name].add((diag["line"], diag["code"]))
    assert found == expected
