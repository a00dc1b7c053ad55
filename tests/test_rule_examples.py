"""Every rule's own VALID/INVALID examples (Fixit style): the docs cannot drift from the code."""

from __future__ import annotations

import textwrap

import pytest

from gradlint.engine import LintConfig, Selection, lint_source
from gradlint.rule import all_rules

CASES = [(code, kind, i, src) for code, rule in all_rules().items()
         for kind, sources in (("valid", rule.VALID), ("invalid", rule.INVALID))
         for i, src in enumerate(sources)]


@pytest.mark.parametrize("code,kind,index,source", CASES, ids=[f"{c}-{k}-{i}" for c, k, i, _ in CASES])
def test_rule_example(code: str, kind: str, index: int, source: str) -> None:
    result = lint_source(textwrap.dedent(source), "example.py", LintConfig(selection=Selection((code,))))
    codes = [d.code for d in result.diagnostics]
    assert "GRD901" not in codes and "GRD902" not in codes, result.diagnostics
    if kind == "valid":
        assert code not in codes, [d.message for d in result.diagnostics]
    else:
        assert code in codes, f"{code} did not fire on its INVALID example {index}"


def test_every_rule_has_examples_and_docs() -> None:
    for code, rule in all_rules().items():
        assert rule.VALID and rule.INVALID, code
        docs = rule.docs()
        for heading in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
            assert heading in docs, (code, heading)
