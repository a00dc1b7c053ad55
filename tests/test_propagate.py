"""The end-to-end propagation (gradlint.gradflow.propagate) against measured numbers.

Each reference value below was measured by the protocol (reference.md §1b: N(0, 1) input, MSE to
N(0, 1) targets, batch 128, train mode, median of 3 seeds) on the fixture named next to it; the
fixture's header carries the measurement. The estimate must land within the stated number of
decades: the static twin of the measurement, not an order-of-magnitude guess.
"""

from __future__ import annotations

import ast
import math
from dataclasses import replace
from pathlib import Path

import pytest

from gradlint.analysis.flow import model_segments, segment_flow
from gradlint.extract import extract
from gradlint.gradflow import WeightLayer
from gradlint.gradflow.propagate import Activation, Block, Norm, Scale, propagate

from conftest import FIXTURES


def _flow(rel: str):  # type: ignore[no-untyped-def]
    (model,) = extract(ast.parse((FIXTURES / rel).read_text(encoding="utf-8"))).models
    (segment,) = model_segments(model)
    flow = segment_flow(segment)
    assert flow is not None
    return flow


# (fixture, quantity, measured log10, tolerance in decades)
MEASURED = [
    ("torch/relu_normal_8_blowup.py", "loss", 18.82, 0.7),
    ("torch/relu_normal_8_blowup.py", "rel", 16.57, 0.7),
    ("torch/relu_normal_8_blowup.py", "ratio", -0.93, 0.5),
    ("torch/residual_relu_he_16.py", "loss", 5.46, 1.0),
    ("torch/residual_relu_he_16.py", "rel", 5.63, 0.7),
    ("torch/residual_relu_he_16.py", "ratio", -2.12, 0.5),
    ("keras/uniform_relu_frozen.py", "first", -15.05, 1.0),
    ("torch/layernorm_sigmoid_deep.py", "ratio", -6.25, 0.5),
    ("torch/batchnorm_sigmoid_deep.py", "ratio", -0.89, 0.5),
    ("torch/sigmoid_relu_alternating.py", "ratio", math.log10(5.3e-12), 0.5),
    # In-place rescaling of an init (weight.data.mul_(10), weight *= 20 under no_grad, p.data *= 8) and
    # a gain written as calculate_gain('tanh') * 4.
    ("torch/relu_weight_data_mul.py", "loss", 11.10, 1.0),
    ("torch/relu_weight_data_mul.py", "rel", 10.40, 1.0),
    ("torch/tanh_nograd_weight_imul.py", "ratio", 5.14, 0.5),
    ("torch/tanh_nograd_weight_imul.py", "rel", 2.92, 0.5),
    ("torch/tanh_nograd_weight_imul_shallow.py", "ratio", -0.20, 0.5),
    ("torch/relu_parameters_data_imul.py", "loss", 6.29, 0.7),
    ("torch/tanh_xavier_gain_calculate_x4.py", "ratio", 5.78, 0.5),
    ("torch/tanh_xavier_gain_calculate.py", "ratio", 0.59, 0.5),
    ("keras/relu_serialized_initializer.py", "loss", 13.94, 1.0),
    # Non-centred weights (U(0, 1), N(1, 0.1²)): the mean's shift fan_in·E[W]·E[x], not the variance.
    ("torch/relu_uniform_default_range.py", "loss", 8.00, 1.0),
    ("torch/relu_uniform_default_range.py", "rel", 6.30, 1.0),
    ("torch/relu_normal_mean_one.py", "loss", 11.36, 1.0),
    ("keras/relu_random_uniform_positive.py", "loss", 7.11, 1.0),
    ("torch/elu_uniform_positive.py", "loss", 8.20, 1.0),
    ("torch/relu_uniform_small_positive.py", "loss", 0.0, 0.5),
    # ... and their gradient: Wᵀδ adds E[W]·Σδ to every input unit, coherently once δ is common to the units.
    ("keras/relu_random_uniform_positive.py", "ratio", -2.16, 0.5),
    ("keras/relu_random_uniform_positive.py", "first", 4.49, 0.7),
    ("recall/tensorflow/random_uniform_default_relu.py", "ratio", -0.77, 0.5),
    ("recall/tensorflow/random_uniform_default_relu.py", "first", 16.00, 0.7),
    # A dense first layer whose input width nothing states: its gradient as a square layer's.
    ("recall/keras/build_method_layers_sigmoid.py", "ratio", -6.66, 0.5),
    ("recall/keras/layernorm_sigmoid_subclass_pairs.py", "ratio", -6.21, 0.5),
    # Keras 1 conv geometry (Convolution2D(nb_filter=, nb_row=, nb_col=, border_mode=)): the head's fan-in.
    ("recall/keras/keras1_conv_border_mode_subsample_sigmoid.py", "ratio", -5.30, 0.5),
]


@pytest.mark.parametrize("rel,quantity,measured,tol", MEASURED, ids=[f"{r}:{q}" for r, q, _, _ in MEASURED])
def test_estimate_matches_the_measurement(rel: str, quantity: str, measured: float, tol: float) -> None:
    flow = _flow(rel)
    value = {"loss": flow.log10_loss, "rel": flow.log10_relative_grad, "ratio": flow.log10_ratio,
             "first": flow.log10_first_relative_grad}[quantity]
    assert value is not None and abs(value - measured) <= tol, (value, measured)


def test_layernorm_keeps_the_offsets_batchnorm_removes() -> None:
    """The same 14 sigmoid layers: LayerNorm vanishes (5.6e-7 measured), BatchNorm does not (0.13)."""
    assert _flow("torch/layernorm_sigmoid_deep.py").log10_ratio < -5
    assert _flow("torch/batchnorm_sigmoid_deep.py").log10_ratio > -1.5


def test_dead_heads() -> None:
    assert "softmax over a single output" in (_flow("torch/softmax_single_unit.py").dead_head or "")
    assert "softmax over a single output" in (_flow("keras/softmax_single_unit.py").dead_head or "")
    assert "sigmoid head saturated" in (_flow("torch/blowup_sigmoid_head.py").dead_head or "")
    # a sigmoid head at a healthy scale is alive
    layers = [WeightLayer(2.0, "relu", fan_in=64, fan_out=64) for _ in range(8)]
    assert propagate([*layers, WeightLayer(1.0, "sigmoid", fan_in=64, fan_out=1)]).dead_head is None
    # a softmax over ten classes is not the constant 1
    ten = [*layers, WeightLayer(1.0, fan_in=64, fan_out=10), Activation("softmax", width=10)]
    assert propagate(ten).dead_head is None
    assert propagate(ten).log10_head_factor == 0.0


def test_a_saturated_head_starves_a_typical_batch() -> None:
    """Pre-activations far wider than the head's derivative: a typical batch has no example near the
    centre, so every gradient shrinks far below the mean field (measured: softmax after 3 residual GELU
    blocks at N(0, 1), width 64, ‖∂W₁‖/‖W₁‖ 6.6e-20; a sigmoid after 8 unnormalized softplus blocks at
    He init: exactly 0), while the ratio first/last stays what it was."""
    blocks = [Block((WeightLayer(64.0, "gelu", fan_in=64, fan_out=64),)) for _ in range(3)]
    wide = [WeightLayer(32.0, fan_in=32, fan_out=64), *blocks, WeightLayer(64.0, fan_in=64, fan_out=10),
            Activation("softmax", width=10)]
    flow = propagate(wide)
    assert flow.dead_head is None and flow.log10_head_factor < -10
    assert flow.log10_first_relative_grad is not None and flow.log10_first_relative_grad < -7
    # the mean field alone would leave it far from frozen
    assert flow.log10_first_relative_grad - flow.log10_head_factor > -7
    # a moderately wide head (std ≈ 3) still has examples near its centre in a batch of 128
    mild = [WeightLayer(2.0, "relu", fan_in=64, fan_out=64), WeightLayer(9.0, fan_in=64, fan_out=1),
            Activation("sigmoid", width=1)]
    assert propagate(mild).log10_head_factor == 0.0


def test_residual_variance_adds_and_is_tamed_by_norms_and_scales() -> None:
    """x + relu(fc(x)), He init: the variance doubles per block; pre-LN: ~linear; ReZero α=0: flat."""
    stem = [WeightLayer(2.0, fan_in=32, fan_out=128)]
    head = [WeightLayer(1.0, fan_in=128, fan_out=1)]

    def out(branch: tuple) -> float:  # type: ignore[type-arg]
        return propagate(stem + [Block(branch) for _ in range(16)] + head).log10_out_m

    fc = WeightLayer(2.0, "relu", fan_in=128, fan_out=128)
    plain, pre_ln = out((fc,)), out((Norm("layer"), fc))
    # At least 2^16 (each branch adds the stream's variance; the shared means of ReLU outputs add more):
    # the fixture torch/residual_relu_he_16.py measures a loss of 2.9e5 (its stem has σ_w² = 1/3).
    assert plain >= 0.3 + 16 * math.log10(2.0) - 0.1
    # pre-LN: each branch adds O(1); ReLU branch means add up coherently (≈ (16·0.56)² + 16): polynomial
    assert pre_ln < 2.5 and pre_ln < plain - 2
    assert out((fc, Scale(0.0))) == pytest.approx(math.log10(2.0), abs=0.01)  # ReZero / zero-init: identity


def test_frozen_layers_come_from_the_absolute_scale_not_the_ratio() -> None:
    """20 ReLU layers with U(±0.05) at width 64: ratio ≈ 1, yet every gradient ≈ 1e-15."""
    v = 64 * 0.1 ** 2 / 12
    layers = [WeightLayer(v, "relu", fan_in=64, fan_out=64) for _ in range(20)] + [WeightLayer(v, fan_in=64, fan_out=1)]
    flow = propagate(layers)
    assert abs(flow.log10_ratio) < 0.5
    assert flow.log10_first_relative_grad is not None and flow.log10_first_relative_grad < -12


def test_overflow_is_nonfinite() -> None:
    layers = [WeightLayer(256.0, "relu", fan_in=256, fan_out=256) for _ in range(20)]
    flow = propagate([*layers, WeightLayer(256.0, fan_in=256, fan_out=1)])
    assert flow.nonfinite and flow.log10_loss is not None and flow.log10_loss > 38


def test_repeated_blocks_reuse_their_statistics() -> None:
    """Pre-commit speed: a 100-block pre-LN stack with GELU computes the GELU statistics of its
    (identical) blocks once, not once per block (timing is benchmarks/bench_static.py's job)."""
    from gradlint.gradflow import activations

    activations._act_stats.cache_clear()
    activations._hermite.cache_clear()
    block = Block((Norm("layer"), WeightLayer(1.0, "gelu", 1e-3, fan_in=512, fan_out=2048),
                   WeightLayer(0.5, fan_in=2048, fan_out=512)))
    propagate([WeightLayer(1.0, fan_in=64, fan_out=512), *[block] * 100, WeightLayer(1.0, fan_in=512, fan_out=10)])
    assert activations._act_stats.cache_info().misses <= 8
    assert activations._hermite.cache_info().misses <= 2


def test_fixture_headers_hold_the_numbers_used_here() -> None:
    for rel, _, _, _ in MEASURED:
        head = Path(FIXTURES / rel).read_text(encoding="utf-8").splitlines()[1]
        assert head.startswith("# measured:"), rel


def _source_flow(source: str):  # type: ignore[no-untyped-def]
    (model,) = extract(ast.parse(source)).models
    flow = segment_flow(model_segments(model)[-1])
    assert flow is not None
    return flow


_CONV_HEAD = """
import torch, torch.nn as nn, torch.nn.functional as F
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 32, UNITS)
    def forward(self, x):
        return F.softmax(self.fc(torch.flatten(F.relu(self.conv(x)), 1)), dim=DIM)
"""


def test_softmax_over_the_last_axis_of_a_linear_is_over_its_outputs() -> None:
    """A Linear maps the last axis, so softmax(dim=-1) after a 1-unit Linear is the constant 1 even on
    image or sequence inputs (measured: every gradient exactly 0); dim=1 there is left undecided."""
    dead = _source_flow(_CONV_HEAD.replace("UNITS", "1").replace("DIM", "-1"))
    assert "softmax over a single output" in (dead.dead_head or "")
    assert _source_flow(_CONV_HEAD.replace("UNITS", "10").replace("DIM", "-1")).dead_head is None
    assert _source_flow(_CONV_HEAD.replace("UNITS", "1").replace("DIM", "1")).dead_head is None


def test_a_constant_factor_on_a_branch_is_a_scale() -> None:
    """x + c·f(x) with c = depth ** -0.5 bounds the variance growth (measured loss 30, not 2e6)."""
    source = """
import torch.nn as nn
class Block(nn.Module):
    def __init__(self, width, depth):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.scale = depth ** -0.5
        for m in (self.fc1, self.fc2):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    def forward(self, x):
        return x + self.scale * self.fc2(self.fc1(x).relu())
class Net(nn.Module):
    def __init__(self, depth=12):
        super().__init__()
        self.stem = nn.Linear(32, 128)
        self.blocks = nn.ModuleList([Block(128, depth) for _ in range(depth)])
        self.head = nn.Linear(128, 10)
    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks:
            x = b(x)
        return self.head(x)
"""
    flow = _source_flow(source)
    assert flow.log10_loss is not None and flow.log10_loss < 3  # measured 29.6 (log10 1.47)
    unscaled = _source_flow(source.replace("self.scale * ", ""))
    assert unscaled.log10_loss is not None and unscaled.log10_loss > 4


def test_max_pooling_raises_the_second_moment() -> None:
    """Max over 2×2 windows of a field with independent fluctuations: E[M₄] = 1.03, Var[M₄] = 0.49
    (measured on a Keras Conv2D/SELU residual stack: the second moment doubles at each MaxPooling2D,
    3.98 → 8.12)."""
    from gradlint.gradflow.propagate import MaxPool, _max_moments

    mean4, var4 = _max_moments(4)
    assert abs(mean4 - 1.0294) < 1e-3 and abs(var4 - 0.4917) < 1e-3
    body = [WeightLayer(1.0, fan_in=16, fan_out=16)]
    plain = propagate(body, ends_output=False).log10_out_m
    pooled = propagate([*body, MaxPool(4)], ends_output=False).log10_out_m
    assert 0.15 < pooled - plain < 0.25  # m: 1 → 1.06 + 0.49 = 1.55


def _relu_stack(bias: float, sw2: float = 2.0, depth: int = 8, width: int = 128, normalized: bool = False) -> list:
    layers: list = [WeightLayer(sw2, "relu", fan_in=32 if i == 0 else width, fan_out=width, bias_width=width,
                                bias_mean=bias, normalized=normalized, key=i) for i in range(depth)]
    return layers + [WeightLayer(1.0, "linear", fan_in=width, fan_out=10, bias_width=10, key=depth)]


def test_a_constant_bias_is_a_shift_not_a_spread() -> None:
    """A constant bias c moves the pre-activations to mean c: ReLU units below their kink are dead.
    Measured (tools/measured_corpus.py, bias stratum: docs/measured_corpus.json), He init, width 128,
    8 layers: c = −1 → 76 % of the first layer's units dead and none alive a few layers in (first and
    last weight gradients exactly 0); c = −0.1 → healthy (ratio 0.20); c = +0.1 → healthy (0.075)."""
    dead = propagate(_relu_stack(-1.0))
    assert dead.dead is not None and dead.layers[0].alive is not None
    assert dead.layers[0].alive == pytest.approx(0.24, abs=0.01)  # P(N(−1, 2) > 0)
    assert all(lf.log10_grad == -math.inf for lf in dead.layers)
    assert math.isnan(dead.log10_ratio)
    for bias, measured in ((-0.1, math.log10(0.201)), (0.1, math.log10(0.0752))):
        p = propagate(_relu_stack(bias))
        assert p.dead is None
        assert abs(p.log10_ratio - measured) < 0.5, (bias, p.log10_ratio, measured)


def test_a_norm_after_the_layer_cancels_a_constant_bias() -> None:
    """Measured: 8 × Linear(bias −10) → BatchNorm1d → ReLU, He init: healthy (ratio 0.16)."""
    for kind in ("batch", "layer"):
        stack = [replace(wl, norm_kind=kind) if wl.normalized else wl
                 for wl in _relu_stack(-10.0, normalized=True)]
        stack[-1] = replace(stack[-1], normalized=False)
        p = propagate(stack)
        assert p.dead is None and all(lf.alive is None for lf in p.layers)
        assert abs(p.log10_ratio - math.log10(0.165)) < 0.6, (kind, p.log10_ratio)


def test_dead_units_depend_on_the_batch_not_only_the_mean_field() -> None:
    """With c = −3 and He init the first layer keeps P(N(−3, 2) > 0) ≈ 1.7 % of its pairs alive (a
    batch of 128 × 128 has ~280): not dead; the second layer's input is so small that none survive."""
    p = propagate(_relu_stack(-3.0))
    assert p.layers[0].alive == pytest.approx(0.017, abs=0.002)
    assert p.dead is p.layers[1]
