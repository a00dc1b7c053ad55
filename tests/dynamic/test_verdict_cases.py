"""The protocol's verdict (gradlint.verdict) and the cases the old dynamic verdict got wrong.

Unit tests of ``judge`` are pure Python; the "Why" cases of issue 11 are measured for real
(tests/dynamic/models/why_cases.py, one ``run_dynamic`` call, two models at a time).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gradlint.verdict import Quantities, Thresholds, judge, layer_evidence

MODELS = Path(__file__).parent / "models"


def _label(**kwargs: object) -> str:
    return judge(Quantities(**kwargs)).label  # type: ignore[arg-type]


def test_each_criterion_and_its_threshold() -> None:
    healthy = {"ratio": 1.0, "loss": 1.0, "relative_grad": 0.1, "first_relative_grad": 0.01}
    assert _label(**healthy) == "healthy"
    # (a) the ratio
    assert _label(**{**healthy, "ratio": 0.9e-4}) == "vanishing"
    assert _label(**{**healthy, "ratio": 1.1e4}) == "exploding"
    assert _label(**{**healthy, "ratio": 1e-3}) == "borderline"
    assert _label(**{**healthy, "ratio": 1e3}) == "borderline"
    assert _label(**{**healthy, "ratio": math.nan}) == "vanishing"  # both ends got no gradient
    # (b) forward scale
    assert _label(**{**healthy, "loss": 1.1e6}) == "exploding"
    assert _label(**{**healthy, "loss": 9e5}) == "healthy"
    assert _label(**{**healthy, "nonfinite": True}) == "exploding"
    assert _label(**{**healthy, "loss": math.nan}) == "exploding"
    # (c) relative gradients
    assert _label(**{**healthy, "relative_grad": 1.1e2}) == "exploding"
    assert _label(**{**healthy, "relative_grad": 20.0}) == "borderline"
    assert _label(**{**healthy, "relative_grad": 1e-6}) == "borderline"
    assert _label(**{**healthy, "first_relative_grad": 0.9e-7}) == "vanishing"
    assert _label(**{**healthy, "first_relative_grad": 1e-5}) == "borderline"


def test_precedence() -> None:
    # identical units are symmetric even when no gradient flows (a zero init)
    assert _label(ratio=math.nan, first_relative_grad=0.0, symmetric=["fc1"]) == "symmetric"
    # ... but when no parameter gets any gradient (‖∂L/∂θ‖ = 0, ‖θ‖ > 0) the output is dead: a
    # zero-initialised branch layer behind a softmax over one unit is not a symmetry problem
    verdict = judge(Quantities(ratio=math.nan, relative_grad=0.0, first_relative_grad=0.0, output_grad=0.0,
                               symmetric=["fc2"]))
    assert verdict.label == "vanishing" and "exactly 0" in verdict.reason
    # a zero init without biases gets no gradient anywhere either, but its output passes one back
    assert _label(ratio=math.nan, relative_grad=0.0, output_grad=0.5, symmetric=["fc1"]) == "symmetric"
    assert _label(ratio=math.nan, relative_grad=0.0, symmetric=["fc1"]) == "symmetric"  # not measured
    # a forward blow-up is exploding even though its ratio is small
    assert _label(ratio=1e-5, loss=1e14, relative_grad=1e13) == "exploding"
    # NaN beats everything
    assert _label(ratio=1.0, nonfinite=True, symmetric=["fc1"]) == "exploding"


def test_thresholds_round_trip_and_reason_names_the_number() -> None:
    t = Thresholds(vanishing_ratio=1e-3)
    assert Thresholds.from_json({**t.to_json(), "unknown": 1}) == t
    verdict = judge(Quantities(ratio=5e-4, first="fc1", last="head"), t)
    assert verdict.label == "vanishing" and "5.00e-04 < 0.001" in verdict.reason and "fc1" in verdict.reason


def test_evidence_lines() -> None:
    layers = [{"name": "a", "saturation": 0.82, "dead_fraction": None},
              {"name": "b", "saturation": 0.1, "dead_fraction": 0.9}]
    lines = layer_evidence(layers)
    assert lines == ["saturated sigmoid/tanh units in 1 layer(s): a 82%", "dead ReLU units in 1 layer(s): b 90%"]


# -- measured ----------------------------------------------------------------------------------

CASES = ["ResidualNoNorm", "ChaoticTanh", "SaturatedTanh", "UniformVanishing", "ForwardBlowUp", "SoftmaxOneUnit",
         "AllZeros"]


@pytest.fixture(scope="module")
def measured() -> dict:
    pytest.importorskip("torch")
    from gradlint.dynamic import DynamicOptions, DynamicTarget, run_dynamic

    targets = [DynamicTarget(str(MODELS / "why_cases.py"), name, 1, "class", name, "torch") for name in CASES]
    return {r.model: r for r in run_dynamic(targets, DynamicOptions(jobs=2, timeout=120))}


def test_residual_mlp_with_huge_relative_gradients_is_not_healthy(measured: dict) -> None:
    r = measured["ResidualNoNorm"]
    assert r.status == "measured", r.reason
    assert max(x.relative_grad for x in r.layers) > 1e2  # the "‖∂W‖/‖W‖ from 17 to 3e4" the old verdict ignored
    assert 1e-2 <= r.ratio <= 1e2  # the ratio alone looks fine
    assert r.verdict == "exploding", r.reason
    assert r.loss > 1e6 or r.relative_grad > 1e2


def test_saturated_tanh_is_not_healthy_and_shows_saturation(measured: dict) -> None:
    r = measured["ChaoticTanh"]
    assert r.verdict == "exploding", r.reason
    saturated = [x.saturation for x in r.layers if x.saturation is not None]
    assert saturated and max(saturated) > 0.5
    assert any("saturated" in e for e in r.evidence), r.evidence


def test_saturated_tanh_with_a_moderate_ratio_is_not_called_healthy(measured: dict) -> None:
    r = measured["SaturatedTanh"]
    assert 1e2 < r.ratio < 1e3  # inside the old healthy band [1e-3, 1e3]
    assert r.verdict != "healthy", r.reason  # outside the protocol's healthy band [1e-2, 1e2]: borderline
    assert max(x.saturation for x in r.layers if x.saturation is not None) > 0.75
    assert any("saturated" in e for e in r.evidence), r.evidence


def test_uniform_vanishing_is_frozen(measured: dict) -> None:
    r = measured["UniformVanishing"]
    assert 1e-2 <= r.ratio <= 1e2  # ratio ~1: the old verdict said healthy
    assert r.first_relative_grad < 1e-7
    assert r.verdict == "vanishing" and "frozen" in r.reason, r.reason


def test_forward_blow_up(measured: dict) -> None:
    r = measured["ForwardBlowUp"]
    assert r.verdict == "exploding" and r.loss > 1e6, r.reason


def test_softmax_over_one_unit_passes_no_gradient(measured: dict) -> None:
    r = measured["SoftmaxOneUnit"]
    assert r.verdict == "vanishing" and all(x.grad_norm == 0 for x in r.layers), r.reason


def test_zero_init_is_symmetric_not_vanishing(measured: dict) -> None:
    r = measured["AllZeros"]
    assert r.verdict == "symmetric", r.reason


def test_a_disconnected_first_weight_layer_is_vanishing_whatever_the_ratio() -> None:
    """A first layer autograd left without any gradient (a detach/no_grad on every path) never learns:
    the verdict names it even when the first/last ratio and the relative gradients look healthy (its
    measured ‖∂W‖/‖W‖ is 0: the protocol's vanishing). A layer further in that nothing reaches (a
    detached side branch, a teacher under no_grad) leaves the label to the other quantities."""
    healthy = {"ratio": 0.4, "loss": 1.0, "relative_grad": 0.05, "first_relative_grad": 0.03}
    verdict = judge(Quantities(**healthy, disconnected=["fc1"], first="fc1", last="head"))  # type: ignore[arg-type]
    assert verdict.label == "vanishing" and "fc1" in verdict.reason
    side = judge(Quantities(**healthy, disconnected=["teacher.fc"], first="fc1", last="head"))  # type: ignore[arg-type]
    assert side.label == "healthy"
    assert _label(**healthy) == "healthy"
