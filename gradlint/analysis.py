"""Shared reasoning over a model description, for rules: weight units, plain runs, estimates.

A *unit* is one weight layer together with what acts on its output before the next
weight layer: its activation, and whether a normalization sits there. A *run* is a
maximal sequence of units on the main path with no normalization, residual connection,
recurrent/attention block or unresolved call between them — the stretch over which
gradient-flow theory for a plain network applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

from gradlint import gradflow
from gradlint.model import Gate, Init, Layer, LayerKind, Model, Node, Residual

# Pre-activation variance at which float32 values (max 3.4e38) overflow in the loss: an MSE
# loss sums squares of outputs of scale √q, so q ≈ 1e38 already gives inf.
FLOAT32_OVERFLOW_LOG10_Q = 38.0

# Activations that do not end a unit: they scale or re-arrange, they do not saturate.
_TRANSPARENT_KINDS = frozenset({LayerKind.DROPOUT, LayerKind.POOLING, LayerKind.OTHER})


@dataclass
class Unit:
    layer: Layer
    activation: str = "linear"
    act_param: float | None = None
    act_layer: Layer | None = None
    normalized: bool = False
    norm_layer: Layer | None = None
    fan_in: int | None = None
    fan_out: int | None = None
    gated: bool = False  # a multiplicative gate acts on this unit's output (SE, GLU)

    @property
    def init(self) -> Init | None:
        return self.layer.weight_init


@dataclass
class Run:
    """Consecutive plain units; ``starts_at_input`` when nothing precedes the first unit."""

    units: list[Unit]
    starts_at_input: bool
    ends_model: bool  # the last unit is the model's output head
    after: str | None = None  # what precedes the run: "normalization", "residual", ...


@dataclass
class Estimate:
    """A gradient-flow estimate over some units, with the assumptions it rests on."""

    log10_weight_ratio: float
    log10_backward_ratio: float
    layers: int
    exact: bool
    assumptions: list[str] = field(default_factory=list)
    per_layer_gain: float | None = None  # typical √χ, for messages
    max_log10_q: float | None = None  # largest forward pre-activation variance (log10)

    @property
    def overflows(self) -> bool:
        """Activations beyond float32's range: the real forward pass returns inf/NaN."""
        return self.max_log10_q is not None and self.max_log10_q >= FLOAT32_OVERFLOW_LOG10_Q

    def to_json(self) -> dict[str, object]:
        return {
            "log10_gain": _finite(self.log10_weight_ratio),
            "log10_backward_gain": _finite(self.log10_backward_ratio),
            "layers": self.layers,
            "exact": self.exact,
            "assumptions": list(self.assumptions),
        }


def _finite(value: float) -> float | None:
    """JSON has no inf/nan: a gradient that is exactly zero (log10 = -inf) is reported as null."""
    return round(value, 3) if math.isfinite(value) else None


def canonical_act(name: str | None) -> str:
    if not name:
        return "linear"
    return name


def main_path_items(path: list[Node]) -> list[Node]:
    """The top-level main path (residual blocks and gates stay single items)."""
    return path


def input_width(model: Model) -> int | None:
    """Features entering the first layer, from the model's input (Keras: channels last)."""
    hint = model.input_hint
    if hint is None or not hint.shape or hint.kind in ("tokens", "unknown"):
        return None
    if hint.kind == "image":
        return hint.shape[-1] if model.framework == "keras" else hint.shape[0]
    return hint.shape[-1]


def units_and_barriers(path: list[Node], width: int | None = None) -> Iterator[Unit | Node]:
    """Linearize a path into units; barriers (residual, norm w/o unit, unknown, recurrent) pass through.

    ``width`` is the number of features entering the path when known; it fills in the fan-in of
    layers that do not state it (Keras Dense/Conv). Residual nodes remember their input width
    (``_in_width``) so their branches can be linearized the same way."""
    current: Unit | None = None
    for node in path:
        if isinstance(node, Layer):
            kind = node.kind
            if kind in (LayerKind.DENSE, LayerKind.CONV, LayerKind.EMBEDDING) or (
                    kind == LayerKind.OTHER and node.op in ("matmul",)):
                if current is not None:
                    yield current
                fan_in = node.fan_in
                if kind == LayerKind.EMBEDDING:
                    fan_in = 1  # a lookup: each output sees one row, σ_w² is the row variance
                elif fan_in is None and width is not None:
                    fan_in = width * (node.receptive or 1)
                current = Unit(node, fan_in=fan_in, fan_out=node.fan_out)
                if node.activation and node.activation != "linear":
                    current.activation = node.activation
                    current.act_param = node.act_param
                    current.act_layer = node
                if node.fan_out is not None:
                    width = node.fan_out // (node.receptive or 1)
                continue
            if kind == LayerKind.ACTIVATION:
                if current is not None and current.activation == "linear":
                    current.activation = node.activation or "other"
                    current.act_param = node.act_param
                    current.act_layer = node
                elif current is not None:
                    # Two activations in a row (e.g. Dense(activation='relu') then Activation('sigmoid')):
                    # the unit keeps the saturating one, which is what bounds the gradient.
                    if (node.activation in gradflow.SATURATING) and current.activation not in gradflow.SATURATING:
                        current.activation = node.activation or "other"
                        current.act_layer = node
                else:
                    yield node
                continue
            if kind == LayerKind.NORMALIZATION:
                if current is not None:
                    current.normalized = True
                    current.norm_layer = node
                    yield current
                    current = None
                yield node
                continue
            if kind in _TRANSPARENT_KINDS or kind == LayerKind.SCALE:
                continue
            # recurrent, attention, unknown: a barrier
            if current is not None:
                yield current
                current = None
            if node.fan_out is not None:
                width = node.fan_out
            yield node
        elif isinstance(node, Gate):
            if current is not None:
                current.gated = True
            continue
        else:  # Residual
            if current is not None:
                yield current
                current = None
            node._in_width = width  # type: ignore[union-attr]
            out = _out_width(node.branch, width)
            width = out if out is not None else width
            yield node
    if current is not None:
        yield current


def _out_width(path: list[Node], width: int | None) -> int | None:
    for item in units_and_barriers(path, width):
        if isinstance(item, Unit) and item.fan_out is not None:
            width = item.fan_out // (item.layer.receptive or 1)
    return width


def plain_runs(path: list[Node], width: int | None = None) -> list[Run]:
    """Maximal runs of units with no normalization, residual or barrier between them."""
    runs: list[Run] = []
    current: list[Unit] = []
    after: str | None = None
    seen_anything = False
    items = list(units_and_barriers(path, width))
    last_unit_index = max((i for i, item in enumerate(items) if isinstance(item, Unit)), default=-1)
    for index, item in enumerate(items):
        if isinstance(item, Unit):
            current.append(item)
            if item.normalized:
                runs.append(Run(current, starts_at_input=after is None and not seen_anything,
                                ends_model=index == last_unit_index, after=after))
                seen_anything = True
                current = []
                after = "normalization"
            continue
        if isinstance(item, Layer) and item.kind == LayerKind.ACTIVATION:
            continue
        if current:
            runs.append(Run(current, starts_at_input=after is None and not seen_anything,
                            ends_model=False, after=after))
            current = []
        seen_anything = True
        if isinstance(item, Residual):
            after = "residual"
        elif isinstance(item, Layer):
            after = item.kind.value
    if current:
        runs.append(Run(current, starts_at_input=after is None and not seen_anything,
                        ends_model=True, after=after))
    return runs


def sigma_w2_of(unit: Unit) -> tuple[float | None, str | None]:
    """σ_w² of a unit's weights and, when it had to assume something, what."""
    init = unit.init
    if init is None or init.scheme == "unknown":
        return None, f"init of {unit.layer.describe()} unknown"
    scheme = init.scheme
    if scheme == "keras_default":
        scheme = "glorot_uniform"
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


def bias_var_of(unit: Unit) -> float:
    try:
        value = _bias_var(unit)
    except (ArithmeticError, ValueError):
        return 0.0
    return value if math.isfinite(value) else 0.0


def _bias_var(unit: Unit) -> float:
    layer = unit.layer
    if layer.bias is False:
        return 0.0
    init = layer.bias_init
    if init is None:
        return 0.0
    if init.scheme == "torch_default_bias":
        return gradflow.torch_default_bias_var(unit.fan_in) or 0.0
    if init.is_constant:
        value = init.constant_value or 0.0
        return value * value  # a constant bias shifts every unit alike; its square is what q sees
    if init.scheme in ("normal", "random_normal", "truncated_normal", "trunc_normal"):
        std = init.params.get("std", init.params.get("stddev", 1.0 if init.scheme in ("normal", "trunc_normal") else 0.05))
        return std * std
    if init.scheme in ("uniform", "random_uniform"):
        a = init.params.get("a", init.params.get("minval", 0.0 if init.scheme == "uniform" else -0.05))
        b = init.params.get("b", init.params.get("maxval", 1.0 if init.scheme == "uniform" else 0.05))
        return (b - a) ** 2 / 12.0
    return 0.0


def _norm_kind(layer: Layer | None) -> str:
    if layer is None or "batch" in layer.op.lower():
        return "batch"
    return "layer"


def estimate_units(units: list[Unit], input_q: float = 1.0,
                   sigma_override: dict[int, float] | None = None) -> Estimate | None:
    """Mean-field estimate of the weight-gradient ratio first/last over ``units``.

    ``sigma_override`` maps ``id(unit)`` to a σ_w² to use instead of the unit's own init
    (to ask "what if this layer had the init matching its activation?")."""
    chain: list[gradflow.WeightLayer] = []
    assumptions: list[str] = []
    for unit in units:
        sigma_w2, note = sigma_w2_of(unit)
        if sigma_override and id(unit) in sigma_override:
            sigma_w2, note = sigma_override[id(unit)], None
        if sigma_w2 == 0.0:
            return None  # constant init: a symmetry problem (GRD002), not a gain to estimate
        if note:
            assumptions.append(note)
        activation = unit.activation if unit.activation in gradflow.ACTIVATIONS else "linear"
        if unit.activation not in gradflow.ACTIVATIONS and unit.activation != "linear":
            assumptions.append(f"activation {unit.activation} treated as linear")
        chain.append(gradflow.WeightLayer(
            sigma_w2=sigma_w2, activation=activation, sigma_b2=bias_var_of(unit),
            normalized=unit.normalized, act_param=unit.act_param, label=unit.layer.describe(),
            fan_in=unit.fan_in, norm_kind=_norm_kind(unit.norm_layer),
        ))
    if len(chain) < 2:
        return None
    try:
        result = gradflow.estimate_chain(chain, input_q=input_q)
    except (ArithmeticError, ValueError):
        return None  # absurd constants (a slope of 1e308): no number rather than a made-up one
    gains = [e.chi for e in result.layers[1:] if e.chi is not None and e.chi > 0]
    typical = None
    if gains:
        typical = math.exp(sum(0.5 * math.log(g) for g in gains) / len(gains))
    return Estimate(
        log10_weight_ratio=result.log10_weight_ratio,
        log10_backward_ratio=result.log10_backward_ratio,
        layers=len(chain),
        exact=result.exact and not assumptions,
        assumptions=assumptions + [a for a in result.assumptions if a not in assumptions],
        per_layer_gain=typical,
        max_log10_q=_max_log10_q(result),
    )


def _max_log10_q(result: "gradflow.ChainEstimate") -> float | None:
    qs = [e.q for e in result.layers if e.q is not None and e.q > 0]
    return max(math.log10(q) for q in qs) if qs else None


def describe_inits(units: list[Unit]) -> str:
    names = []
    for unit in units:
        text = unit.init.describe() if unit.init else "unknown init"
        if text not in names:
            names.append(text)
    return ", ".join(names)


def format_ratio(log10_value: float) -> str:
    if log10_value == float("-inf"):
        return "0"
    if log10_value == float("inf"):
        return "inf"
    value = 10 ** log10_value if abs(log10_value) < 300 else None
    if value is None:
        return f"1e{log10_value:+.0f}"
    return f"{value:.1e}" if value < 0.01 or value >= 100 else f"{value:.2g}"


def model_units(model: Model) -> list[Unit]:
    return [u for u in units_and_barriers(model.path, input_width(model)) if isinstance(u, Unit)]


# ---------------------------------------------------------------------- diagnosis of runs

# Inits whose scale is fixed, whatever the layer's width: they only suit one width.
FIXED_SCALE_INITS = frozenset({"normal", "uniform", "random_normal", "random_uniform", "trunc_normal",
                               "truncated_normal"})
# Inits that scale with fan-in/out but carry a gain chosen for some activation.
FAN_AWARE_INITS = frozenset({"kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal",
                             "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
                             "lecun_normal", "orthogonal", "variance_scaling", "eye"})
_RELU_LIKE = frozenset({"relu", "relu6", "leaky_relu", "gelu", "gelu_tanh", "silu", "mish", "hard_swish",
                        "elu", "celu", "softplus"})


def matched_sigma_w2(unit: Unit) -> float:
    """The σ_w² of the textbook init for the unit's activation (He for ReLU-like, LeCun for SELU,
    Glorot ≈ 1 for tanh, sigmoid and linear)."""
    act = unit.activation
    if act == "leaky_relu":
        a = unit.act_param if unit.act_param is not None else 0.01
        return 2.0 / (1.0 + a * a)
    if act in _RELU_LIKE:
        return 2.0
    return 1.0


def recommended_init(unit: Unit) -> str:
    act = unit.activation
    if unit.layer.framework == "keras":
        return "he_normal" if act in _RELU_LIKE else ("lecun_normal" if act == "selu" else "glorot_uniform")
    if act in _RELU_LIKE:
        return f"nn.init.kaiming_normal_(w, nonlinearity='{'leaky_relu' if act == 'leaky_relu' else 'relu'}')"
    if act == "selu":
        return "nn.init.kaiming_normal_(w, nonlinearity='linear') (LeCun)"
    if act == "tanh":
        return "nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain('tanh'))"
    return "nn.init.xavier_uniform_(w)"


@dataclass
class RunDiagnosis:
    run: Run
    estimate: Estimate
    direction: str  # vanishing | exploding
    cause: str  # saturating | init_scale | init_mismatch | depth
    matched: Estimate | None = None  # the same run with the init matching each activation

    @property
    def units(self) -> list[Unit]:
        return self.run.units


def diagnose_runs(model: Model, vanishing_log10: float = -3.0, exploding_log10: float = 3.0) -> list[RunDiagnosis]:
    """Every plain run whose estimated weight-gradient ratio crosses a threshold, with its cause.

    Each run gets exactly one cause, so that exactly one rule reports it."""
    cache_key = (vanishing_log10, exploding_log10)
    cache = model.__dict__.setdefault("_run_diagnoses", {})
    if cache_key in cache:
        return cache[cache_key]
    out: list[RunDiagnosis] = []
    for run in plain_runs(model.path, input_width(model)):
        if len(run.units) < 2:
            continue
        estimate = estimate_units(run.units)
        if estimate is None:
            continue
        ratio = estimate.log10_weight_ratio
        if math.isnan(ratio):
            continue
        if ratio <= vanishing_log10:
            direction = "vanishing"
        elif ratio >= exploding_log10 or estimate.overflows:
            direction = "exploding"
        else:
            continue
        matched = estimate_units(run.units, sigma_override={id(u): matched_sigma_w2(u) for u in run.units})
        matched_ok = (matched is not None and vanishing_log10 < matched.log10_weight_ratio < exploding_log10
                      and not matched.overflows)
        saturating = sum(u.activation in gradflow.SATURATING for u in run.units)
        explicit = [u for u in run.units if u.init is not None and u.init.span is not None]
        if direction == "vanishing" and saturating * 2 >= len(run.units):
            cause = "saturating"
        elif any(u.init.scheme in FIXED_SCALE_INITS for u in explicit if u.init):
            cause = "init_scale"
        elif matched_ok and any(u.init.scheme in FAN_AWARE_INITS for u in explicit if u.init):
            cause = "init_mismatch"
        else:
            cause = "depth"
        out.append(RunDiagnosis(run, estimate, direction, cause, matched))
    cache[cache_key] = out
    return out


def model_segments(path: list[Node], width: int | None = None) -> list[list["gradflow.WeightLayer | gradflow.ResidualBlock"]]:
    """The main path as gradflow chains, residual blocks included, split where the estimate cannot
    see through (unresolved calls, recurrent and attention layers)."""
    segments: list[list[gradflow.WeightLayer | gradflow.ResidualBlock]] = [[]]
    for item in units_and_barriers(path, width):
        if isinstance(item, Unit):
            sigma_w2, _ = sigma_w2_of(item)
            if sigma_w2 is None:
                segments.append([])
                continue
            segments[-1].append(gradflow.WeightLayer(
                sigma_w2=sigma_w2, activation=item.activation if item.activation in gradflow.ACTIVATIONS else "linear",
                sigma_b2=bias_var_of(item), normalized=item.normalized, act_param=item.act_param,
                label=item.layer.describe(), fan_in=item.fan_in, norm_kind=_norm_kind(item.norm_layer)))
        elif isinstance(item, Residual):
            block = _residual_block(item)
            if block is None:
                segments.append([])
            else:
                segments[-1].append(block)
        elif isinstance(item, Layer) and item.kind in (LayerKind.UNKNOWN, LayerKind.RECURRENT, LayerKind.ATTENTION):
            segments.append([])
    return [s for s in segments if s]


def _residual_block(node: Residual) -> "gradflow.ResidualBlock | None":
    width = getattr(node, "_in_width", None)
    branch_units = [u for u in units_and_barriers(node.branch, width)]
    if any(isinstance(u, Layer) and u.kind in (LayerKind.UNKNOWN, LayerKind.RECURRENT, LayerKind.ATTENTION)
           for u in branch_units):
        return None
    inner = model_segments(node.branch, width)
    if len(inner) != 1:
        return None
    units = [u for u in branch_units if isinstance(u, Unit)]
    first = next((u for u in branch_units if not (isinstance(u, Layer) and u.kind == LayerKind.ACTIVATION)), None)
    pre_norm = isinstance(first, Layer) and first.kind == LayerKind.NORMALIZATION
    zero_last = bool(units) and (
        (units[-1].init is not None and units[-1].init.is_constant and units[-1].init.constant_value == 0)
        or _ends_in_zero_scale(node.branch)
        or (units[-1].normalized and units[-1].norm_layer is not None and units[-1].norm_layer.weight_init is not None
            and units[-1].norm_layer.weight_init.constant_value == 0))
    return gradflow.ResidualBlock(tuple(inner[0]), zero_init_last=zero_last, normalized_branch=pre_norm,
                                  norm_kind=_norm_kind(first if pre_norm else None))  # type: ignore[arg-type]


def _ends_in_zero_scale(path: list[Node]) -> bool:
    for node in reversed(path):
        if isinstance(node, Layer):
            if node.kind == LayerKind.SCALE:
                return node.scale_value is not None and abs(node.scale_value) < 1e-3
            if node.kind in (LayerKind.DROPOUT, LayerKind.ACTIVATION, LayerKind.OTHER):
                continue
        return False
    return False


def estimate_segment(segment: list["gradflow.WeightLayer | gradflow.ResidualBlock"]) -> Estimate | None:
    count = _count_layers(segment)
    if count < 2:
        return None
    try:
        result = gradflow.estimate_chain(segment)
    except (ArithmeticError, ValueError):
        return None
    return Estimate(result.log10_weight_ratio, result.log10_backward_ratio, count, result.exact,
                    list(result.assumptions), max_log10_q=_max_log10_q(result))


def _count_layers(items: list["gradflow.WeightLayer | gradflow.ResidualBlock"]) -> int:
    total = 0
    for item in items:
        total += 1 if isinstance(item, gradflow.WeightLayer) else _count_layers(list(item.branch))
    return total


# ---------------------------------------------------------------------- outputs and recurrence

def output_activation(nodes: "list[Node] | tuple[Node, ...]") -> str | None:
    """The activation a path ends with: ``linear`` for a bare weight layer; None when unknown."""
    for node in reversed(nodes):
        if not isinstance(node, Layer):
            return None
        if node.kind in (LayerKind.DROPOUT, LayerKind.POOLING, LayerKind.OTHER, LayerKind.SCALE):
            continue
        if node.kind == LayerKind.ACTIVATION:
            return node.activation
        if node.kind in (LayerKind.DENSE, LayerKind.CONV):
            return node.activation or "linear"
        return None
    return None


def recurrent_step_gain(activation: str, sigma_rec2: float, sigma_in2: float) -> float:
    """√χ of one time step of a plain RNN h_t = φ(W h_{t-1} + U x_t + b) at its fixed point."""
    q = 1.0
    for _ in range(200):
        second, _ = gradflow.activation_moments(activation, q)
        q_new = sigma_rec2 * second + sigma_in2
        if abs(q_new - q) < 1e-10:
            break
        q = q_new
    _, slope = gradflow.activation_moments(activation, q)
    return math.sqrt(max(sigma_rec2 * slope, 0.0))
