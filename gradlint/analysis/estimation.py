"""Estimation glue: model-description units in, ``gradlint.gradflow`` chains out, ``Estimate`` back."""

from __future__ import annotations

import math

from gradlint import gradflow
from gradlint.analysis.inits import bias_var_of, norm_kind, sigma_w2_of
from gradlint.analysis.units import Unit, units_and_barriers
from gradlint.estimate import Estimate
from gradlint.model import Layer, LayerKind, Node, Residual

_BARRIER_KINDS = (LayerKind.UNKNOWN, LayerKind.RECURRENT, LayerKind.ATTENTION)


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
            fan_in=unit.fan_in, norm_kind=norm_kind(unit.norm_layer),
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


def _max_log10_q(result: gradflow.ChainEstimate) -> float | None:
    qs = [e.q for e in result.layers if e.q is not None and e.q > 0]
    return max(math.log10(q) for q in qs) if qs else None


def model_segments(path: list[Node], width: int | None = None) -> list[list[gradflow.WeightLayer | gradflow.ResidualBlock]]:
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
                label=item.layer.describe(), fan_in=item.fan_in, norm_kind=norm_kind(item.norm_layer)))
        elif isinstance(item, Residual):
            block = _residual_block(item)
            if block is None:
                segments.append([])
            else:
                segments[-1].append(block)
        elif isinstance(item, Layer) and item.kind in _BARRIER_KINDS:
            segments.append([])
    return [s for s in segments if s]


def _residual_block(node: Residual) -> gradflow.ResidualBlock | None:
    width = getattr(node, "_in_width", None)
    branch_units = [u for u in units_and_barriers(node.branch, width)]
    if any(isinstance(u, Layer) and u.kind in _BARRIER_KINDS for u in branch_units):
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
                                  norm_kind=norm_kind(first if pre_norm else None))  # type: ignore[arg-type]


def _ends_in_zero_scale(path: list[Node]) -> bool:
    for node in reversed(path):
        if isinstance(node, Layer):
            if node.kind == LayerKind.SCALE:
                return node.scale_value is not None and abs(node.scale_value) < 1e-3
            if node.kind in (LayerKind.DROPOUT, LayerKind.ACTIVATION, LayerKind.OTHER):
                continue
        return False
    return False


def estimate_segment(segment: list[gradflow.WeightLayer | gradflow.ResidualBlock]) -> Estimate | None:
    count = _count_layers(segment)
    if count < 2:
        return None
    try:
        result = gradflow.estimate_chain(segment)
    except (ArithmeticError, ValueError):
        return None
    return Estimate(result.log10_weight_ratio, result.log10_backward_ratio, count, result.exact,
                    list(result.assumptions), max_log10_q=_max_log10_q(result))


def _count_layers(items: list[gradflow.WeightLayer | gradflow.ResidualBlock]) -> int:
    total = 0
    for item in items:
        total += 1 if isinstance(item, gradflow.WeightLayer) else _count_layers(list(item.branch))
    return total


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
