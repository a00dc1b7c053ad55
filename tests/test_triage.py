"""Rule ownership of gradient diagnoses: every diagnosis is reported by exactly one rule.

``gradlint.analysis.triage`` gives each diagnosed problem one ``Cause`` and ``OWNERS`` maps
each cause to one rule. These tests run every rule over every model of the fixture corpus
and of the rules' own examples, and check the contract from both sides: each diagnosis shows
up in exactly one finding, of its owner; each finding of a cause-owning rule comes from a
diagnosis.
"""

from __future__ import annotations

import ast
import textwrap

import pytest

from gradlint.analysis.triage import OWNERS, Cause, diagnose
from gradlint.extract import extract
from gradlint.py2 import python3_reading
from gradlint.rule import RuleContext, RuleOptions, all_rules
from rules._shared import through_time_diagnoses

from conftest import FIXTURES

OWNER_CODES = frozenset(OWNERS.values())


def _sources() -> list[tuple[str, str]]:
    out = [(str(p.relative_to(FIXTURES)), p.read_text(encoding="utf-8")) for p in sorted(FIXTURES.rglob("*.py"))]
    for code, rule in all_rules().items():
        for kind, cases in (("valid", rule.VALID), ("invalid", rule.INVALID)):
            out += [(f"{code}-{kind}-{i}", case.source) for i, case in enumerate(cases)]
    return out


SOURCES = _sources()


def test_every_cause_has_exactly_one_owner_and_it_is_a_rule() -> None:
    rules = all_rules()
    assert set(OWNERS) == set(Cause), "a Cause without an owner would be diagnosed and never reported"
    for cause, code in OWNERS.items():
        assert code in rules, (cause, code)


@pytest.mark.parametrize("name,source", SOURCES, ids=[n for n, _ in SOURCES])
def test_every_diagnosis_is_reported_by_exactly_one_rule(name: str, source: str) -> None:
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a Python 2 script: read as the engine reads it
        reading = python3_reading(source)
        assert reading is not None, name
        tree = ast.parse(reading.text)
    extraction = extract(tree)
    options = RuleOptions()
    context = RuleContext(options, extraction.models, extraction.training)
    rules = [cls() for code, cls in all_rules().items() if code in OWNER_CODES]
    for model in extraction.models:
        reported: dict[int, list[str]] = {}
        for rule in rules:
            for finding in rule.check(model, context):
                assert finding.estimate is not None, f"{rule.code} finding without an estimate"
                reported.setdefault(id(finding.estimate), []).append(rule.code)
        diagnoses = diagnose(model, options.vanishing_log10, options.exploding_log10, options.frozen_log10)
        diagnoses = diagnoses + [d for d, *_ in through_time_diagnoses(model, context)]
        for diagnosis in diagnoses:
            codes = reported.pop(id(diagnosis.estimate), [])
            assert codes == [diagnosis.owner], (model.name, diagnosis.cause, codes)
        assert not reported, f"findings with no diagnosis behind them: {reported}"


def test_alternating_sigmoid_relu_is_reported() -> None:
    """9 sigmoid and 8 ReLU layers interleaved: no two saturating layers are adjacent, yet the run
    attenuates the gradient to ≈5e-12 (measured, fixtures/torch/sigmoid_relu_alternating.py)."""
    source = (FIXTURES / "torch" / "sigmoid_relu_alternating.py").read_text(encoding="utf-8")
    (model,) = extract(ast.parse(source)).models
    (diagnosis,) = diagnose(model)
    assert diagnosis.cause == Cause.SATURATING and diagnosis.owner == "GRD001"
    assert -12.5 < diagnosis.estimate.log10_weight_ratio < -10.5


def test_constant_init_fix_and_init_messages_agree_on_the_matching_init() -> None:
    """GRD002's fix and GRD003-005's messages share one ReLU-like set: softplus gets He in both."""
    from gradlint.analysis.inits import recommended_init
    from gradlint.analysis.units import model_units
    from gradlint.engine import LintConfig, Selection, lint_source

    source = textwrap.dedent("""
        import torch.nn as nn
        model = nn.Sequential(nn.Linear(8, 32), nn.Softplus(), nn.Linear(32, 32), nn.Softplus(), nn.Linear(32, 1))
        nn.init.zeros_(model[0].weight)
    """)
    result = lint_source(source, "example.py", LintConfig(selection=Selection(("GRD002",))))
    (diag,) = [d for d in result.diagnostics if d.code == "GRD002"]
    assert diag.fix is not None and "kaiming" in diag.fix.scheme  # type: ignore[attr-defined]
    unit = model_units(result.models[0])[0]
    assert unit.activation == "softplus" and "kaiming" in recommended_init(unit)


@pytest.mark.parametrize("rel", ["torch/relu_bias_fill_negative.py", "torch/conv_relu_bias_negative.py",
                                 "keras/dense_relu_bias_negative.py"])
def test_a_negative_constant_bias_before_relu_is_grd011s(rel: str) -> None:
    """Measured: no gradient reaches the first or the last weight layer (fixture headers). The cause is
    the bias, not the depth or the init: with zero biases the same path is healthy."""
    (model,) = extract(ast.parse((FIXTURES / rel).read_text(encoding="utf-8"))).models
    (diagnosis,) = diagnose(model)
    assert diagnosis.cause == Cause.NEGATIVE_BIAS and diagnosis.owner == "GRD011"
    assert diagnosis.criterion == "dead_units" and diagnosis.direction == "vanishing"
    assert diagnosis.matched_ok


@pytest.mark.parametrize("rel", ["torch/relu_bias_small_positive.py", "torch/bn_relu_bias_negative.py",
                                 "torch/lstm_forget_bias_one.py", "keras/gate_sigmoid_bias_negative.py"])
def test_constant_biases_that_measure_healthy_are_quiet(rel: str) -> None:
    for model in extract(ast.parse((FIXTURES / rel).read_text(encoding="utf-8"))).models:
        assert not diagnose(model), rel
