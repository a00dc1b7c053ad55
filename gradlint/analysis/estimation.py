"""Estimation glue for a list of units (a ratio over a stretch of layers) and one RNN step.

The model-level verdicts use the end-to-end propagation of ``gradlint.analysis.flow``."""

from __future__ import annotations

import math

from gradlint import gradflow
from gradlint.analysis.inits import bias_var_of, norm_kind, sigma_w2_of
from gradlint.analysis.units import Unit
from gradlint.estimate import Estimate


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
