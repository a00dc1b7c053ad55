"""Init semantics: what a unit's init means for σ_w² and σ_b², and which init its activation wants.

One source of truth for "which activations are ReLU-like" and "which init matches an
activation", shared by every rule that recommends an init (GRD002's fix, GRD003-005's
messages), so that they never disagree.
"""

from __future__ import annotations

import math

from gradlint import gradflow
from gradlint.analysis.units import Unit
from gradlint.model import Init, Layer, LayerKind

# Inits whose scale is fixed, whatever the layer's width: they only suit one width.
FIXED_SCALE_INITS = frozenset({"normal", "uniform", "random_normal", "random_uniform", "trunc_normal",
                               "truncated_normal"})
# Inits that scale with fan-in/out but carry a gain chosen for some activation.
FAN_AWARE_INITS = frozenset({"kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal",
                             "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
                             "lecun_normal", "orthogonal", "variance_scaling", "eye"})
# Activations that halve (roughly) the forward variance, as ReLU does: He init matches them.
RELU_LIKE = frozenset({"relu", "relu6", "leaky_relu", "gelu", "gelu_tanh", "silu", "mish", "hard_swish",
                       "elu", "celu", "softplus"})


def sigma_w2_of(unit: Unit) -> tuple[float | None, str | None]:
    """σ_w² of a unit's weights and, when it had to assume something, what."""
    init = unit.init
    if init is None or init.scheme == "unknown":
        return None, f"init of {unit.layer.describe()} unknown"
    scheme = init.scheme
    if scheme == "keras_default":
        scheme = "glorot_uniform"
    if unit.layer.kind == LayerKind.CONV and "Transpose" in unit.layer.op:
        return _transposed_sigma_w2(unit, scheme, init)
    fan_in, fan_out = unit.fan_in, unit.fan_out
    try:
        value = gradflow.init_sigma_w2(scheme, init.params, fan_in, fan_out)
    except (ArithmeticError, ValueError):
        return None, f"init of {unit.layer.describe()} has absurd parameters"
    if value is not None and not math.isfinite(value):
        return None, f"init of {unit.layer.describe()} has absurd parameters"
    if value is None and scheme in ("glorot_uniform", "glorot_normal", "xavier_uniform", "xavier_normal"):
        value = gradflow.init_sigma_w2(scheme, init.params, 1, 1)
        return value, f"fan-in of {unit.layer.describe()} unknown: assumed square for {scheme}"
    if value is None:
        return None, f"width of {unit.layer.describe()} unknown, needed for {init.describe()}"
    return value, None


def _transposed_sigma_w2(unit: Unit, scheme: str, init: Init) -> tuple[float | None, str | None]:
    """σ_w² of a transposed conv: Var(W) as the init draws it, times the forward fan-in.

    Both frameworks compute an init's fans from the kernel's shape, whose second axis (torch
    (in, out, k, k)) or second-to-last (Keras (k, k, out, in)) is the *output* channels: the init's
    fan_in is out·k², its fan_out in·k². Forward, each output position sums in·k²/∏stride taps (a
    stride-2 transposed conv places every input pixel 2 apart, so a k×k kernel overlaps k²/4 of them).
    Measured (Keras, 4 × Conv2DTranspose(64, 4, strides=2) he_normal): estimating with in·k² and the
    forward fans put every layer's ‖∂L/∂W‖ 1.3–2 decades high."""
    layer = unit.layer
    if layer.stride_area is None:
        return None, f"stride of {layer.describe()} not a literal"
    forward, init_fan_in = unit.fan_in, unit.fan_out
    if not forward or not init_fan_in:
        return None, f"width of {layer.describe()} unknown, needed for {init.describe()}"
    try:
        value = gradflow.init_sigma_w2(scheme, init.params, init_fan_in, forward)
    except (ArithmeticError, ValueError):
        return None, f"init of {layer.describe()} has absurd parameters"
    if value is None or not math.isfinite(value):
        return None, f"init of {layer.describe()} has absurd parameters"
    return value / init_fan_in * forward / layer.stride_area, None


def weight_mean_of(unit: Unit) -> float:
    """E[W] of a unit's weights at init when the code sets a non-centred init (0 otherwise)."""
    init = unit.init
    if init is None or init.scheme == "unknown" or init.is_constant:
        return 0.0
    try:
        mean = gradflow.init_weight_mean(init.scheme, init.params)
    except (ArithmeticError, ValueError):
        return 0.0
    return mean if math.isfinite(mean) else 0.0


def bias_var_of(unit: Unit) -> float:
    """σ_b² of a unit's bias as the chain estimator takes it: E[b²], a constant's square included
    (0 when there is none or it is unknown)."""
    try:
        value = _bias_var(unit)
    except (ArithmeticError, ValueError):
        return 0.0
    return value if math.isfinite(value) else 0.0


def bias_moments_of(unit: Unit) -> tuple[float, float]:
    """(mean, variance) of a unit's bias at init, for the end-to-end propagation: a constant bias c
    (``constant_(b, c)``, ``b.data.fill_(c)``, Keras ``Constant(c)``) shifts every pre-activation by
    c — below zero a ReLU unit is dead — where a random bias spreads them. (0, 0) when unknown."""
    layer = unit.layer
    init = layer.bias_init
    mean = 0.0
    if layer.bias is not False and init is not None:
        if init.is_constant:
            mean = init.constant_value or 0.0
        elif init.scheme in ("normal", "random_normal", "truncated_normal", "trunc_normal"):
            mean = init.params.get("mean", 0.0) * init.params.get("rescale", 1.0)
    if not math.isfinite(mean):
        return 0.0, 0.0
    return mean, max(bias_var_of(unit) - mean * mean, 0.0)


def _bias_var(unit: Unit) -> float:
    layer = unit.layer
    if layer.bias is False:
        return 0.0
    init = layer.bias_init
    if init is None:
        return 0.0
    rescale = init.params.get("rescale", 1.0)  # b.data.mul_(k): every value k times (constants carry it in value)
    return _drawn_bias_var(unit, init) * rescale * rescale


def _drawn_bias_var(unit: Unit, init: Init) -> float:
    if init.scheme == "torch_default_bias":
        return gradflow.torch_default_bias_var(unit.fan_in) or 0.0
    if init.is_constant:
        value = init.constant_value or 0.0
        return value * value  # a constant bias shifts every unit alike; its square is what q sees
    if init.scheme in ("normal", "random_normal", "truncated_normal", "trunc_normal"):
        default_std = 1.0 if init.scheme in ("normal", "trunc_normal") else 0.05
        std = init.params.get("std", init.params.get("stddev", default_std))
        return std * std
    if init.scheme in ("uniform", "random_uniform"):
        a = init.params.get("a", init.params.get("minval", 0.0 if init.scheme == "uniform" else -0.05))
        b = init.params.get("b", init.params.get("maxval", 1.0 if init.scheme == "uniform" else 0.05))
        return (b - a) ** 2 / 12.0
    return 0.0


def norm_kind(layer: Layer | None) -> str:
    """``batch`` (statistics per unit: over the batch, or per example and channel for InstanceNorm and
    GroupNorm(C, C), which remove the per-channel offsets too) or ``layer`` (per sample over features).
    The same reading as ``flow.norm_kind_of``, which the propagation uses."""
    if layer is None or layer.norm_stats == "batch":
        return "batch"
    if layer.norm_stats is not None:
        return "layer"
    name = layer.op.lower()
    return "batch" if "batch" in name or "instance" in name else "layer"


def describe_inits(units: list[Unit]) -> str:
    names = []
    for unit in units:
        text = unit.init.describe() if unit.init else "unknown init"
        if text not in names:
            names.append(text)
    return ", ".join(names)


def matched_sigma_w2(unit: Unit) -> float:
    """The σ_w² of the textbook init for the unit's activation (He for ReLU-like, LeCun for SELU,
    Glorot ≈ 1 for tanh, sigmoid and linear)."""
    act = unit.activation
    if act == "leaky_relu":
        a = unit.act_param if unit.act_param is not None else 0.01
        return 2.0 / (1.0 + a * a)
    if act in RELU_LIKE:
        return 2.0
    return 1.0


def recommended_init(unit: Unit) -> str:
    """The matching init as the user would write it, in the unit's framework."""
    act = unit.activation
    if unit.layer.framework == "keras":
        return "he_normal" if act in RELU_LIKE else ("lecun_normal" if act == "selu" else "glorot_uniform")
    if unit.layer.framework == "tensorflow":
        if act in RELU_LIKE:
            return "tf.contrib.layers.variance_scaling_initializer() (He; TF 2: tf.keras.initializers.he_normal())"
        return "tf.glorot_uniform_initializer() (TF 2: tf.keras.initializers.GlorotUniform())"
    if act in RELU_LIKE:
        return f"nn.init.kaiming_normal_(w, nonlinearity='{'leaky_relu' if act == 'leaky_relu' else 'relu'}')"
    if act == "selu":
        return "nn.init.kaiming_normal_(w, nonlinearity='linear') (LeCun)"
    if act == "tanh":
        return "nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain('tanh'))"
    return "nn.init.xavier_uniform_(w)"
