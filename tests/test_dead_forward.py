"""Dead forward signal: a stack of thresholded units (Keras ThresholdedReLU / ReLU(threshold=),
keras.activations.relu(x, threshold=), torch nn.Threshold / F.threshold) whose live share collapses is
reported by GRD010 (Cause.DEAD_FORWARD), with its estimate; the healthy twins stay clean. Labels: the
fixtures' measured headers (3 seeds, fixtures/README.md §1b protocol)."""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from gradlint.analysis.triage import OWNERS, Cause, diagnose
from gradlint.engine import LintConfig, lint_source
from gradlint.extract import extract
from gradlint.gradflow import activation_moments, relu_family
from gradlint.gradflow.sparse import sparse_step

ROOT = Path(__file__).resolve().parent.parent
RECALL = ROOT / "fixtures" / "recall"
FLAGGED = ["torch/threshold_module_default_deep.py", "torch/threshold_functional_default_deep.py",
           "torch/threshold_module_he_theta2_deep.py", "keras/relu_threshold_he_theta2.py",
           "keras/thresholded_relu_glorot_deep.py", "torch/dropout_p1_mlp.py", "keras/dropout_rate1_sequential.py"]
HEALTHY = ["torch/threshold_module_he_theta2_shallow.py", "torch/threshold_module_he_theta1_deep.py",
           "keras/relu_threshold_he_theta1.py", "keras/activations_relu_threshold_he_deep.py",
           "torch/dropout_p05_mlp.py", "keras/dropout_rate05_sequential.py"]


def _codes(rel: str) -> list[str]:
    path = RECALL / rel
    result = lint_source(path.read_text(encoding="utf-8"), str(path), LintConfig())
    return [d.code for d in result.diagnostics]


@pytest.mark.parametrize("rel", FLAGGED)
def test_collapsing_thresholded_stack_is_reported_once_by_grd010(rel: str) -> None:
    assert "# label: vanishing" in (RECALL / rel).read_text(encoding="utf-8")
    assert _codes(rel) == ["GRD010"]


@pytest.mark.parametrize("rel", HEALTHY)
def test_healthy_twins_stay_clean(rel: str) -> None:
    assert "# label: healthy" in (RECALL / rel).read_text(encoding="utf-8")
    assert _codes(rel) == []


def test_one_owner_and_json_estimate() -> None:
    assert OWNERS[Cause.DEAD_FORWARD] == "GRD010"
    path = RECALL / "keras/relu_threshold_he_theta2.py"
    out = subprocess.run([sys.executable, "-m", "gradlint", "--format", "json", "--no-cache", str(path)],
                         capture_output=True, text=True, cwd=ROOT)
    (diag,) = json.loads(out.stdout)["diagnostics"]
    estimate = diag["estimate"]
    assert diag["severity"] == "error" and estimate["criterion"] == "dead_forward"
    assert estimate["verdict"] == "vanishing"
    assert estimate["log10_live_share"] is not None and estimate["log10_live_share"] < -3
    assert "no unit alive" in diag["message"] and "plain ReLU" in diag["message"]


def test_the_cause_is_dead_forward_not_a_negative_bias() -> None:
    src = (RECALL / "torch/threshold_module_default_deep.py").read_text(encoding="utf-8")
    (model,) = extract(ast.parse(src), source=src).models
    (d,) = diagnose(model)
    assert d.cause == Cause.DEAD_FORWARD and d.criterion == "dead_forward" and d.owner == "GRD010"


_KERAS = ("import keras\nfrom keras import layers\n"
          "m = keras.Sequential([keras.Input((4,)), layers.Dense(8), {}, layers.Dense(1)])\n")


@pytest.mark.parametrize(("spelling", "act", "param"), [
    ("layers.ThresholdedReLU(theta=0.7)", "thresholded_relu", 0.7),
    ("layers.ThresholdedReLU()", "thresholded_relu", 1.0),
    ("layers.ReLU(threshold=1.5)", "thresholded_relu", 1.5),
    ("layers.ReLU(max_value=6)", "relu6", None),
    ("layers.ReLU(6.0)", "relu6", None),
    ("layers.ReLU(negative_slope=0.2)", "leaky_relu", 0.2),
    ("layers.ReLU()", "relu", None),
    ("layers.ReLU(max_value=2.0, threshold=1.0)", "unknown", None),  # not modelled: unknown, not a guess
])
def test_keras_relu_family_spellings(spelling: str, act: str, param: float | None) -> None:
    src = _KERAS.format(spelling)
    (model,) = extract(ast.parse(src), source=src).models
    (layer,) = [lay for lay in model.layers() if lay.kind.name == "ACTIVATION"]
    assert (layer.activation, layer.act_param) == (act, param)


@pytest.mark.parametrize(("call", "act", "param"), [
    ("nn.Threshold(1.0, 0.0)", "thresholded_relu", 1.0),
    ("nn.Threshold(threshold=0.5, value=0)", "thresholded_relu", 0.5),
    ("nn.Threshold(0.1, 20.0)", "unknown", None),  # a non-zero floor is not a ReLU-family member modelled
])
def test_torch_threshold_module(call: str, act: str, param: float | None) -> None:
    src = f"import torch.nn as nn\nm = nn.Sequential(nn.Linear(4, 8), {call}, nn.Linear(8, 1))\n"
    (model,) = extract(ast.parse(src), source=src).models
    (layer,) = [lay for lay in model.layers() if lay.op == "Threshold"]
    assert (layer.activation, layer.act_param) == (act, param)


def test_functional_spellings() -> None:
    src = ("import keras\nfrom keras import layers\ninp = keras.Input((4,))\nh = layers.Dense(8)(inp)\n"
           "h = keras.activations.relu(h, threshold=2.0)\nm = keras.Model(inp, layers.Dense(1)(h))\n")
    (model,) = extract(ast.parse(src), source=src).models
    found = [(lay.activation, lay.act_param) for lay in model.layers() if lay.op == "relu"]
    assert found == [("thresholded_relu", 2.0)]
    assert relu_family(threshold=0.0) == ("relu", None) and relu_family(slope=0.1, threshold=1.0) is None


def test_upper_tail_keeps_its_digits() -> None:
    # θ = 2 over std 0.1: P(u > θ) = Q(20) = 2.75e-89 (1 − Φ(20) would cancel to 0)
    _, d2 = activation_moments("thresholded_relu", 0.01, 2.0)
    assert d2 == pytest.approx(0.5 * math.erfc(20 / math.sqrt(2)), rel=1e-9) and d2 > 0


def test_sparse_layer_spreads_the_examples() -> None:
    # A layer leaving λ = n·p ≈ 1 live unit per example: some examples keep none (exactly dead), the
    # output mix has mean 1 and a weight at 0 of about e^{-λ}.
    q, theta, n = 0.05, 0.6, 128
    step = sparse_step("thresholded_relu", theta, [q], [1.0], n)
    assert step.mix_out is not None
    weights, ratios = step.mix_out.weights, step.mix_out.ratios
    assert sum(weights) == pytest.approx(1.0)
    assert sum(w * r for w, r in zip(weights, ratios, strict=True)) == pytest.approx(1.0)
    lam = n * step.d2
    dead = sum(w for w, r in zip(weights, ratios, strict=True) if r == 0.0)
    assert dead == pytest.approx(math.exp(-lam), rel=1e-6)


def test_dropout_of_rate_one_is_the_dead_forward_cause() -> None:
    src = (RECALL / "torch/dropout_p1_mlp.py").read_text(encoding="utf-8")
    (model,) = extract(ast.parse(src), source=src).models
    (d,) = diagnose(model)
    assert d.cause == Cause.DEAD_FORWARD and d.flow is not None and d.flow.killed is not None
    result = lint_source(src, "dropout.py", LintConfig())
    (diag,) = result.diagnostics
    assert (diag.code, diag.line) == ("GRD010", 12) and "drop probability below 1" in diag.message


def test_activation_function_keeps_its_threshold() -> None:
    src = ("import keras\nfrom keras import layers\nm = keras.Sequential([keras.Input((4,)), layers.Dense(8, "
           "activation=lambda x: keras.activations.relu(x, threshold=1.5)), layers.Dense(1)])\n")
    (model,) = extract(ast.parse(src), source=src).models
    dense = next(lay for lay in model.layers() if lay.op == "Dense")
    assert (dense.activation, dense.act_param) == ("thresholded_relu", 1.5)


def _measured_ratio(rel: str) -> float:
    header = (RECALL / rel).read_text(encoding="utf-8").splitlines()[1]
    return float(header.split("first/last = ")[1].split(" ")[0])


@pytest.mark.parametrize("rel", [r for r in HEALTHY if "threshold" in r])
def test_estimate_follows_the_measured_sparse_stacks(rel: str) -> None:
    # The healthy thresholded twins: the estimated first/last ratio within a decade of the measured one
    # (the mean field without the examples' spread and the Euler term put some 2-3 decades below).
    src = (RECALL / rel).read_text(encoding="utf-8")
    (model,) = extract(ast.parse(src), source=src).models
    from gradlint.analysis.flow import model_segments, segment_flow

    (seg,) = model_segments(model)
    flow = segment_flow(seg)
    assert flow is not None
    assert abs(flow.log10_ratio - math.log10(_measured_ratio(rel))) <= 1.0


def test_live_share_after_four_sparse_layers_is_near_the_simulation() -> None:
    # 4 × ThresholdedReLU(2) at He init, width 128, 32 N(0, 1) inputs: numpy (3 seeds) measured a live
    # share of 1.3e-3-3.4e-3 at the fourth layer; the mean field with one common q says 1e-191.
    src = ("import keras\nfrom keras import layers\nm = keras.Sequential([keras.Input((32,))] + [l for _ in range(4) "
           "for l in (layers.Dense(128, kernel_initializer='he_normal'), layers.ThresholdedReLU(theta=2.0))]"
           " + [layers.Dense(1)])\n")
    (model,) = extract(ast.parse(src), source=src).models
    from gradlint.analysis.flow import model_segments, segment_flow

    (seg,) = model_segments(model)
    flow = segment_flow(seg)
    assert flow is not None
    live = [lf.live for lf in flow.layers if lf.live is not None]
    assert len(live) == 4 and 1.3e-4 < (live[-1] or 0.0) < 3.4e-2
