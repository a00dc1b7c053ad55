"""Unit tests for gradlint.gradflow (pure Python, no torch): reference numbers, inits, bounds, edge cases."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

from gradlint import gradflow as gf
from gradlint.gradflow import (
    ACTIVATIONS,
    SATURATING,
    ResidualBlock,
    WeightLayer,
    activation_moments,
    estimate_chain,
    gaussian_expectation,
    init_sigma_w2,
    per_layer_bound,
    torch_default_bias_var,
)


def fixed_point(act: str, sw2: float, sb2: float = 0.0) -> tuple[float, float]:
    """(q*, χ) by plain iteration, as in reference.md §1."""
    q = 1.0
    for _ in range(3000):
        q_new = sw2 * activation_moments(act, q)[0] + sb2
        if abs(q_new - q) < 1e-13:
            break
        q = q_new
    return q, sw2 * activation_moments(act, q)[1]


# ------------------------------------------------------------------ reference.md §1


@pytest.mark.parametrize(
    ("act", "sw2", "chi"),
    [
        ("sigmoid", 1 / 3, 0.0200),
        ("sigmoid", 1.0, 0.0557),
        ("sigmoid", 2.0, 0.101),
        ("tanh", 1 / 3, 1 / 3),
        ("tanh", 1.0, 1.0),
        ("tanh", 2.0, 1.11),
        ("relu", 1 / 3, 1 / 6),
        ("relu", 1.0, 0.5),
        ("relu", 2.0, 1.0),
    ],
)
def test_reference_chi_table(act: str, sw2: float, chi: float) -> None:
    _, got = fixed_point(act, sw2)
    assert got == pytest.approx(chi, rel=0.03)


@pytest.mark.parametrize(
    ("act", "sw2", "ratio"),
    [("sigmoid", 1 / 3, 3.1e-9), ("sigmoid", 1.0, 5.3e-7), ("sigmoid", 2.0, 1.1e-5),
     ("tanh", 1 / 3, 4.1e-3), ("relu", 1 / 3, 1.29e-4), ("relu", 1.0, 3.1e-2), ("relu", 2.0, 1.0)],
)
def test_reference_11_layer_backward_ratios(act: str, sw2: float, ratio: float) -> None:
    """reference.md: predicted ‖∂L/∂h₁‖/‖∂L/∂h₁₁‖ (10 hidden + head with the same σ_w², no bias).

    The recursion starts from input_q = 1, not at q*, hence the 25 % band (tanh at
    σ_w² = 1/3 starts at q = 1/3, where χ is below its fixed-point value 1/3).
    """
    layers = [WeightLayer(sw2, act) for _ in range(10)] + [WeightLayer(sw2, "linear")]
    est = estimate_chain(layers)
    assert est.exact
    assert est.log10_backward_ratio == pytest.approx(math.log10(ratio), abs=math.log10(1.35))


def test_relu_chi_is_exact_and_q_free() -> None:
    for q in (1e-6, 0.3, 7.0, 1e6):
        assert activation_moments("relu", q) == pytest.approx((q / 2, 0.5))


# --------------------------------------------------------------------- quadrature


@pytest.mark.parametrize("q", [1e-4, 0.5, 1.0, 3.9, 4.1, 25.0, 1e4])
def test_gaussian_expectation_moments(q: float) -> None:
    assert gaussian_expectation(lambda u: 1.0, q) == pytest.approx(1.0, rel=1e-12)
    assert gaussian_expectation(lambda u: u * u, q) == pytest.approx(q, rel=1e-10)
    assert gaussian_expectation(lambda u: u**4, q) == pytest.approx(3 * q * q, rel=1e-9)
    if q <= 25:  # the rules target activation-like integrands, not fast oscillation
        assert gaussian_expectation(math.cos, q) == pytest.approx(math.exp(-q / 2), abs=1e-9)
    assert gaussian_expectation(abs, q, (0.0,)) == pytest.approx(math.sqrt(2 * q / math.pi), rel=1e-10)


def test_gaussian_expectation_resolves_narrow_derivatives() -> None:
    """E[sigmoid′(√q z)²] → (1/6)/√(2πq) for large q (∫σ′² = 1/6); Hermite nodes alone miss it."""
    q = 1e4

    def d2(u: float) -> float:
        s = 1 / (1 + math.exp(-u)) if u > -700 else 0.0
        return (s * (1 - s)) ** 2

    assert gaussian_expectation(d2, q) == pytest.approx((1 / 6) / math.sqrt(2 * math.pi * q), rel=1e-3)
    assert gaussian_expectation(lambda u: 1.0, 0.0) == 1.0
    with pytest.raises(ValueError):
        gaussian_expectation(abs, -1.0)


def test_hermite_nodes_are_correct() -> None:
    nodes, weights = gf.hermite_rule()
    assert len(nodes) == 100
    assert sum(weights) == pytest.approx(1.0, abs=1e-13)
    assert sum(w * z**10 for z, w in zip(nodes, weights, strict=True)) == pytest.approx(945.0, rel=1e-10)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_activation_moments_small_q_limit(act: str) -> None:
    """q → 0: E[φ′²] → φ′(0)², the linearisation every activation must get right."""
    d0 = {
        "linear": 1, "sigmoid": 1 / 16, "tanh": 1, "relu": 1, "relu6": 1, "leaky_relu": 1, "elu": 1,
        "selu": gf._SELU_SCALE**2 * (1 + gf._SELU_ALPHA**2) / 2, "celu": 1, "gelu": 1 / 4,
        "gelu_tanh": 1 / 4, "silu": 1 / 4, "mish": 0.6**2, "softplus": 1 / 4, "softsign": 1,
        "hardtanh": 1, "hard_sigmoid": 1 / 36, "hard_swish": 1 / 4, "exponential": 1, "log_sigmoid": 1 / 4,
        "thresholded_relu": 0,  # its default theta = 1 is far above a q → 0 pre-activation
    }[act]
    m2, d2 = activation_moments(act, 1e-8)
    if act in ("relu", "relu6", "leaky_relu", "elu", "celu"):
        d0 = (d0 + {"leaky_relu": 1e-4}.get(act, 0.0 if act.startswith("relu") else 1.0)) / 2
    assert d2 == pytest.approx(d0, rel=1e-3)
    assert math.isfinite(m2) and m2 >= 0


def test_activation_closed_forms() -> None:
    assert activation_moments("linear", 2.5) == pytest.approx((2.5, 1.0))
    assert activation_moments("leaky_relu", 2.0, 0.2) == pytest.approx((1.04, 0.52))
    assert activation_moments("exponential", 0.5) == pytest.approx((math.e, math.e))
    assert activation_moments("hardtanh", 1e6)[0] == pytest.approx(1.0, rel=1e-3)
    assert activation_moments("selu", 1.0)[0] == pytest.approx(1.0, rel=1e-6)  # self-normalizing
    # ELU at tiny q must not lose the answer to cancellation (e^u − 1 ≈ u).
    assert activation_moments("elu", 1e-10)[0] == pytest.approx(1e-10, rel=1e-3)


def test_activation_moments_accepts_aliases_and_rejects_unknown() -> None:
    assert activation_moments("swish", 1.0) == activation_moments("silu", 1.0)
    with pytest.raises(ValueError):
        activation_moments("softmax", 1.0)


def test_canonical_activation_aliases() -> None:
    assert gf.canonical_activation("Swish") == "silu"
    assert gf.canonical_activation("hardswish") == "hard_swish"
    assert gf.canonical_activation(None) == "linear"
    assert gf.canonical_activation("softmax") is None
    assert SATURATING == {"sigmoid", "tanh", "softsign", "hardtanh", "hard_sigmoid"}
    assert SATURATING <= ACTIVATIONS


# ------------------------------------------------------------------------- inits


@pytest.mark.parametrize(
    ("init", "params", "fan_in", "fan_out", "expected"),
    [
        ("torch_default", {}, None, None, 1 / 3),
        ("kaiming_uniform", {}, None, None, 2.0),
        ("kaiming_normal", {}, 64, 32, 2.0),
        ("kaiming_normal", {"a": math.sqrt(5)}, 64, 32, 1 / 3),
        ("kaiming_normal", {"gain": 5 / 3}, 64, 32, 25 / 9),
        ("kaiming_normal", {"fan_out_mode": 1}, 64, 32, 4.0),
        ("kaiming_uniform", {"mode": "fan_out"}, 64, 32, 4.0),
        ("kaiming_normal", {"fan_out_mode": 1}, 64, None, None),
        ("kaiming_normal", {"nonlinearity": "tanh"}, 64, 32, 25 / 9),
        ("kaiming_uniform", {"nonlinearity": "leaky_relu", "a": math.sqrt(5)}, 64, 32, 1 / 3),
        ("xavier_uniform", {}, 256, 256, 1.0),
        ("xavier_normal", {"gain": 2.0}, 100, 300, 4 * 2 * 100 / 400),
        ("xavier_uniform", {}, None, 10, None),
        ("normal", {}, 64, 64, 64.0),
        ("normal", {"std": 0.01}, 256, 256, 0.0256),
        ("uniform", {}, 12, 1, 1.0),
        ("uniform", {"a": -1.0, "b": 1.0}, 3, 1, 1.0),
        ("trunc_normal", {"std": 0.02}, 1000, 1, 0.4),
        ("orthogonal", {}, 10, 10, 1.0),
        ("orthogonal", {"gain": math.sqrt(2)}, 10, 10, 2.0),
        ("orthogonal", {"gain": 2.0}, 16, 128, 0.5),  # tall: orthonormal columns (measured 0.53)
        ("eye", {}, 10, 10, 1.0),
        ("identity", {"gain": 0.5}, 10, 10, 0.25),
        ("glorot_uniform", {}, 100, 100, 1.0),
        ("glorot_normal", {}, 30, 10, 1.5),
        ("he_uniform", {}, None, None, 2.0),
        ("he_normal", {}, None, None, 2.0),
        ("lecun_uniform", {}, None, None, 1.0),
        ("lecun_normal", {}, None, None, 1.0),
        ("random_normal", {}, 400, 1, 1.0),
        ("random_uniform", {}, 1200, 1, 1.0),
        ("random_uniform", {"minval": -1.0, "maxval": 1.0}, 3, 1, 1.0),
        ("variance_scaling", {"scale": 2.0}, 10, 20, 2.0),
        ("variance_scaling", {"scale": 1.0, "mode": "fan_avg"}, 10, 30, 0.5),
        ("variance_scaling", {"scale": 1.0, "mode": 1}, 10, 30, 1 / 3),
        ("zeros", {}, 10, 10, 0.0),
        ("ones", {}, 10, 10, 0.0),
        ("constant", {"value": 0.3}, 10, 10, 0.0),
        ("no_such_init", {}, 10, 10, None),
        ("normal", {"std": 0.1}, None, 10, None),
    ],
)
def test_init_sigma_w2(init: str, params: dict, fan_in: int | None, fan_out: int | None,
                       expected: float | None) -> None:
    got = init_sigma_w2(init, params, fan_in, fan_out)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, rel=1e-9)


def test_truncated_normal_variances() -> None:
    # keras TruncatedNormal redraws beyond 2 stddev: variance 0.7737·stddev².
    assert init_sigma_w2("truncated_normal", {}, 1000, 1) == pytest.approx(1000 * 0.0025 * 0.77372, rel=1e-4)
    # torch trunc_normal_ default std=1 cut at absolute ±2: the same factor.
    assert init_sigma_w2("trunc_normal", {}, 1, 1) == pytest.approx(0.77372, rel=1e-4)


def test_torch_default_bias_var() -> None:
    assert torch_default_bias_var(256) == pytest.approx(1 / 768)
    assert torch_default_bias_var(None) is None
    assert torch_default_bias_var(0) is None


# ------------------------------------------------------------------------ bounds


def test_per_layer_bound_reference_values() -> None:
    assert per_layer_bound("sigmoid", 4.0) == pytest.approx(2.0 / 4)
    assert per_layer_bound("tanh", 4.0) == pytest.approx(2.0)
    assert per_layer_bound("relu", 2.0) == pytest.approx(1.0)
    assert per_layer_bound("leaky_relu", 2.0, 0.2) == pytest.approx(math.sqrt(1.04))
    assert per_layer_bound("exponential", 1.0) == math.inf
    assert per_layer_bound("not_an_activation", 1.0) == math.inf


@pytest.mark.parametrize("act", sorted(ACTIVATIONS - {"exponential"}))
def test_per_layer_bound_holds_for_every_q(act: str) -> None:
    for k in range(-12, 13):
        q = 10 ** (k / 2)
        chi = 1.7 * activation_moments(act, q)[1]
        assert math.sqrt(chi) <= per_layer_bound(act, 1.7) * (1 + 1e-9), (act, q)


# ---------------------------------------------------------------------- estimator


def test_layer_estimates_cover_every_weight_layer_in_order() -> None:
    block = ResidualBlock((WeightLayer(1 / 3, "relu", label="b1"), WeightLayer(1 / 3, label="b2")))
    layers = [WeightLayer(1 / 3, "relu", label="stem"), block, WeightLayer(1 / 3, label="head")]
    est = estimate_chain(layers)
    assert [e.label for e in est.layers] == ["stem", "b1", "b2", "head"]
    assert est.layers[-1].log10_backward == 0.0 and est.layers[-1].log10_weight_grad == 0.0
    assert est.log10_backward_ratio == est.layers[0].log10_backward


def test_unknown_init_falls_back_and_is_flagged() -> None:
    layers = [WeightLayer(None, "sigmoid") for _ in range(10)] + [WeightLayer(None)]
    est = estimate_chain(layers)
    assert not est.exact
    assert any("init unknown" in a for a in est.assumptions)
    # the most favourable common init (He) still vanishes for a sigmoid stack
    assert est.log10_backward_ratio < -4
    relu = estimate_chain([WeightLayer(None, "relu") for _ in range(10)] + [WeightLayer(None)])
    assert abs(relu.log10_backward_ratio) < 0.05  # He is plausible: not flagged


def test_unknown_activation_is_flagged() -> None:
    est = estimate_chain([WeightLayer(1.0, "swooshy"), WeightLayer(1.0)])
    assert not est.exact and any("swooshy" in a for a in est.assumptions)


def test_zero_init_residual_block_is_identity() -> None:
    """A zero-initialised branch leaves forward variance and backward gain at 1."""
    branch = (WeightLayer(2.0, "relu"), WeightLayer(2.0))
    plain = [WeightLayer(1.0, "tanh"), WeightLayer(1.0)]
    with_block = [WeightLayer(1.0, "tanh"), ResidualBlock(branch, zero_init_last=True), WeightLayer(1.0)]
    a, b = estimate_chain(plain), estimate_chain(with_block)
    assert b.layers[0].log10_backward == pytest.approx(a.layers[0].log10_backward, abs=1e-12)
    assert b.layers[0].q == pytest.approx(a.layers[0].q)
    assert b.layers[1].log10_weight_grad == -math.inf  # gets no gradient at init
    assert math.isfinite(b.layers[2].log10_weight_grad)  # the zero layer itself does
    live = estimate_chain([WeightLayer(1.0, "tanh"), ResidualBlock(branch), WeightLayer(1.0)])
    assert live.layers[0].log10_backward > a.layers[0].log10_backward  # 1 + χ_branch > 1


def test_residual_gain_per_block_is_one_plus_chi_branch() -> None:
    sw2 = 0.5
    blocks = [ResidualBlock((WeightLayer(sw2, "linear"),)) for _ in range(10)]
    est = estimate_chain([WeightLayer(1.0, "linear"), *blocks, WeightLayer(1.0)])
    # stem δ: head σ_w²=1, ten blocks each (1 + 0.5) in ‖·‖², linear stem activation
    assert est.log10_backward_ratio == pytest.approx(0.5 * 10 * math.log10(1.5), rel=1e-9)


def test_zero_init_branch_first_layer_is_skipped_in_ratio() -> None:
    branch = (WeightLayer(2.0, "relu"), WeightLayer(2.0))
    est = estimate_chain([ResidualBlock(branch, zero_init_last=True), WeightLayer(1.0)])
    assert est.layers[0].log10_weight_grad == -math.inf
    assert math.isfinite(est.log10_weight_ratio)
    assert any("exactly zero gradient" in a for a in est.assumptions)


def test_prenorm_residual_stays_bounded() -> None:
    def chain(pre: bool) -> float:
        blocks = [ResidualBlock((WeightLayer(2.0, "relu"), WeightLayer(2.0)), normalized_branch=pre) for _ in range(50)]
        return estimate_chain([WeightLayer(2.0, "relu"), *blocks, WeightLayer(1.0)]).log10_backward_ratio

    assert chain(False) > 10  # (1 + 1)^(50/2): explodes
    assert chain(True) < 2  # pre-norm: χ_branch ∝ 1/stream variance


def test_batchnorm_vs_layernorm_with_sigmoid() -> None:
    """BN removes each unit's offset (sigmoid's mean 0.5), LN does not (validated in calibration)."""
    def ratio(kind: str) -> float:
        layers = [WeightLayer(1 / 3, "sigmoid", normalized=True, norm_kind=kind) for _ in range(10)]
        return estimate_chain([*layers, WeightLayer(1 / 3)]).log10_backward_ratio

    assert abs(ratio("batch")) < 1.0
    assert ratio("layer") < -3.5


def test_batchnorm_relu_explodes_like_yang_et_al() -> None:
    """BN+ReLU: ‖δ‖² grows by π/(π−1) per layer (Yang et al. 2019), from Var(relu) = ½ − 1/(2π)."""
    layers = [WeightLayer(2.0, "relu", normalized=True) for _ in range(20)] + [WeightLayer(2.0)]
    est = estimate_chain(layers)
    assert est.layers[5].chi == pytest.approx(math.pi / (math.pi - 1), rel=1e-6)


def test_relu_without_bias_weight_grads_balanced_for_any_scale() -> None:
    for sw2 in (0.01, 1 / 3, 2.0, 50.0):
        est = estimate_chain([WeightLayer(sw2, "relu") for _ in range(19)] + [WeightLayer(sw2)], batch_size=None)
        assert abs(est.log10_weight_ratio) < 1e-9
        assert est.log10_weight_ratio == est.log10_weight_ratio_per_sample


def test_default_bias_floor_makes_deep_relu_vanish() -> None:
    sb2 = torch_default_bias_var(256) or 0.0
    est = estimate_chain([WeightLayer(1 / 3, "relu", sb2) for _ in range(19)] + [WeightLayer(1 / 3, "linear", sb2)])
    assert est.log10_weight_ratio < -5
    assert est.log10_backward_ratio == pytest.approx(19 / 2 * math.log10(1 / 6), abs=0.01)


def test_batch_coherence_lowers_the_weight_ratio() -> None:
    """Correlated examples add up in the last layer's batch gradient (calibrated at B=128)."""
    layers = [WeightLayer(1 / 3, "sigmoid") for _ in range(10)] + [WeightLayer(1 / 3)]
    per_ex = estimate_chain(layers, batch_size=None)
    batch = estimate_chain(layers, batch_size=128)
    assert batch.log10_backward_ratio == per_ex.log10_backward_ratio
    assert batch.log10_weight_ratio < per_ex.log10_weight_ratio - 0.3
    assert batch.log10_weight_ratio_per_sample == pytest.approx(per_ex.log10_weight_ratio)


def test_fan_in_enters_weight_ratio() -> None:
    a = [WeightLayer(1.0, "tanh", fan_in=784), WeightLayer(1.0, fan_in=256)]
    b = [WeightLayer(1.0, "tanh"), WeightLayer(1.0)]
    ea, eb = estimate_chain(a), estimate_chain(b)
    assert ea.log10_weight_ratio - eb.log10_weight_ratio == pytest.approx(0.5 * math.log10(784 / 256))
    assert any("fan-in" in s for s in eb.assumptions) and not any("fan-in" in s for s in ea.assumptions)


def test_degenerate_chains() -> None:
    empty = estimate_chain([])
    assert empty.layers == [] and empty.log10_weight_ratio == 0.0
    one = estimate_chain([WeightLayer(1.0, "relu")])
    assert one.log10_backward_ratio == 0.0 and one.log10_weight_ratio == 0.0
    zero_in = estimate_chain([WeightLayer(1.0, "relu"), WeightLayer(1.0)], input_q=0.0)
    assert math.isnan(zero_in.log10_weight_ratio) and not zero_in.exact


def test_forward_overflow_is_clamped_and_flagged() -> None:
    est = estimate_chain([WeightLayer(1e6, "relu") for _ in range(60)] + [WeightLayer(1.0)])
    assert not est.exact and any("overflow" in a for a in est.assumptions)
    assert all(math.isfinite(e.log10_backward) for e in est.layers)


def test_exponential_overflow_is_flagged() -> None:
    est = estimate_chain([WeightLayer(2.0, "exponential") for _ in range(5)] + [WeightLayer(1.0)])
    assert not est.exact


def test_work_of_a_deep_smooth_chain_is_linear() -> None:
    """Runs in a pre-commit hook: 200 distinct GELU layers cost one quadrature each, never one per
    pair of layers (speed itself is measured by benchmarks/bench_static.py, not asserted here)."""
    gf._act_stats.cache_clear()
    gf._hermite.cache_clear()
    estimate_chain([WeightLayer(1.0 + i * 1e-3, "gelu", 1e-3) for i in range(200)] + [WeightLayer(1.0)])
    assert gf._act_stats.cache_info().misses <= 201
    assert gf._hermite.cache_info().misses <= 200


def test_module_is_stdlib_only() -> None:
    """Every module of the gradflow package imports the standard library, its siblings and
    ``gradlint.records`` (the dataclass decorator, itself standard library only) only."""
    allowed = {"__future__", "math", "dataclasses", "functools", "collections", "collections.abc", "operator", "typing",
               "reprlib", "gradlint.records",
               "typing_extensions"}  # records.py, for mypy only (under TYPE_CHECKING)
    files = sorted(Path(gf.__file__).parent.glob("*.py"))
    assert len(files) > 1
    for path in files + [Path(gf.__file__).parent.parent / "records.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                assert {a.name for a in node.names} <= allowed, path
            elif isinstance(node, ast.ImportFrom):
                assert node.module in allowed or (node.module or "").startswith("gradlint.gradflow."), path
