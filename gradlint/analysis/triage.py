"""Triage: which gradient problem a model has, and which single rule reports it.

``diagnose`` turns the estimates over a model's plain runs and residual segments into
``Diagnosis`` objects, each with exactly one ``Cause``; ``OWNERS`` says which rule reports
each cause. Rules ask for their own diagnoses (``diagnoses_for``) instead of re-deriving
them, so a problem can neither be reported twice nor fall between two rules.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from gradlint import gradflow
from gradlint.analysis.estimation import (
    estimate_segment,
    estimate_units,
    model_segments,
)
from gradlint.analysis.inits import FAN_AWARE_INITS, FIXED_SCALE_INITS, matched_sigma_w2
from gradlint.analysis.units import Run, Unit, input_width, plain_runs
from gradlint.estimate import Estimate
from gradlint.model import Model

# A vanishing run of non-saturating layers shorter than this is not reported: shallow stacks
# with an attenuation estimate near the threshold are where the estimate is least reliable.
MIN_DEPTH = 6


class Cause(str, enum.Enum):
    """Why gradients vanish or explode; each cause has exactly one owning rule (``OWNERS``)."""

    SATURATING = "saturating"  # vanishing through sigmoid/tanh-family layers
    DEPTH = "depth"  # vanishing through a deep plain stack of other activations
    INIT_SCALE = "init_scale"  # a fixed-scale init (N(0, s²), U(a, b)) wrong for the width
    INIT_MISMATCH = "init_mismatch"  # a fan-aware init whose gain suits another activation
    EXPANDING = "expanding"  # a plain stack that amplifies the gradient (chaos, exponential)
    RESIDUAL_GROWTH = "residual_growth"  # unnormalized residual blocks whose variance compounds


# The one table of who reports what.
OWNERS: Mapping[Cause, str] = {
    Cause.SATURATING: "GRD001",
    Cause.DEPTH: "GRD003",
    Cause.INIT_SCALE: "GRD004",
    Cause.INIT_MISMATCH: "GRD005",
    Cause.EXPANDING: "GRD006",
    Cause.RESIDUAL_GROWTH: "GRD006",
}


@dataclass(eq=False)
class Diagnosis:
    """One gradient problem of a model: the units it spans, the estimate behind it, its cause."""

    cause: Cause
    direction: str  # vanishing | exploding
    estimate: Estimate
    units: list[Unit] = field(default_factory=list)  # empty for a whole-path diagnosis
    run: Run | None = None
    matched: Estimate | None = None  # the same units with the init matching each activation
    blocks: int = 0  # residual blocks involved (RESIDUAL_GROWTH)

    @property
    def owner(self) -> str:
        return OWNERS[self.cause]


def saturating_stacks(run: Run) -> list[list[Unit]]:
    """Maximal stretches of consecutive saturating units of a run (gated units excluded)."""
    stacks: list[list[Unit]] = []
    current: list[Unit] = []
    for unit in run.units:
        if unit.activation in gradflow.SATURATING and not unit.gated:
            current.append(unit)
        else:
            if len(current) >= 2:
                stacks.append(current)
            current = []
    if len(current) >= 2:
        stacks.append(current)
    return stacks


def _direction(estimate: Estimate, vanishing_log10: float, exploding_log10: float) -> str | None:
    ratio = estimate.log10_weight_ratio
    if math.isnan(ratio):
        return None
    if ratio <= vanishing_log10:
        return "vanishing"
    if ratio >= exploding_log10 or estimate.overflows:
        return "exploding"
    return None


def _vanishing_stacks(run: Run, vanishing_log10: float) -> list[tuple[list[Unit], Estimate]]:
    out = []
    for stack in saturating_stacks(run):
        estimate = estimate_units(stack)
        if estimate is not None and estimate.log10_weight_ratio <= vanishing_log10:
            out.append((stack, estimate))
    return out


def _diagnose_run(run: Run, vanishing_log10: float, exploding_log10: float) -> list[Diagnosis]:
    if len(run.units) < 2:
        return []
    estimate = estimate_units(run.units)
    direction = None if estimate is None else _direction(estimate, vanishing_log10, exploding_log10)
    stacks = _vanishing_stacks(run, vanishing_log10)
    if estimate is None or direction is None:
        # The run as a whole is within bounds, yet a saturating stack inside it is not.
        return [Diagnosis(Cause.SATURATING, "vanishing", e, s, run) for s, e in stacks]
    matched = estimate_units(run.units, sigma_override={id(u): matched_sigma_w2(u) for u in run.units})
    matched_ok = (matched is not None and vanishing_log10 < matched.log10_weight_ratio < exploding_log10
                  and not matched.overflows)
    saturating = sum(u.activation in gradflow.SATURATING for u in run.units)
    explicit = [u.init for u in run.units if u.init is not None and u.init.span is not None]
    if direction == "vanishing" and saturating * 2 >= len(run.units):
        if stacks:  # point at the stacks themselves, where the attenuation happens
            return [Diagnosis(Cause.SATURATING, "vanishing", e, s, run) for s, e in stacks]
        cause = Cause.SATURATING  # interleaved with other layers (sigmoid/ReLU alternating): the run
    elif any(init.scheme in FIXED_SCALE_INITS for init in explicit):
        cause = Cause.INIT_SCALE
    elif matched_ok and any(init.scheme in FAN_AWARE_INITS for init in explicit):
        cause = Cause.INIT_MISMATCH
    elif direction == "vanishing" and stacks:
        # A minority of saturating layers, but they alone attenuate past the threshold: report the stack.
        return [Diagnosis(Cause.SATURATING, "vanishing", e, s, run) for s, e in stacks]
    elif direction == "vanishing":
        if len(run.units) < MIN_DEPTH:
            return []
        cause = Cause.DEPTH
    else:
        cause = Cause.EXPANDING
    return [Diagnosis(cause, direction, estimate, run.units, run, matched)]


def diagnose(model: Model, vanishing_log10: float = -3.0, exploding_log10: float = 3.0) -> list[Diagnosis]:
    """Every gradient problem of ``model`` the estimate sees, each with one cause (cached per model)."""
    cache_key = (vanishing_log10, exploding_log10)
    cache = model.__dict__.setdefault("_diagnoses", {})
    if cache_key in cache:
        return cache[cache_key]  # type: ignore[no-any-return]
    out: list[Diagnosis] = []
    for run in plain_runs(model.path, input_width(model)):
        out.extend(_diagnose_run(run, vanishing_log10, exploding_log10))
    if not any(d.direction == "exploding" for d in out):
        # Residual stacks: the runs between them may each be fine while the blocks compound.
        for segment in model_segments(model.path, input_width(model)):
            blocks = sum(isinstance(item, gradflow.ResidualBlock) for item in segment)
            if not blocks:
                continue
            estimate = estimate_segment(segment)
            if estimate is None or not (estimate.log10_weight_ratio >= exploding_log10 or estimate.overflows):
                continue
            out.append(Diagnosis(Cause.RESIDUAL_GROWTH, "exploding", estimate, blocks=blocks))
            break  # one finding per model: the first segment that explodes explains the rest
    cache[cache_key] = out
    return out


def diagnoses_for(model: Model, code: str, vanishing_log10: float = -3.0,
                  exploding_log10: float = 3.0) -> list[Diagnosis]:
    """The diagnoses of ``model`` that rule ``code`` owns."""
    return [d for d in diagnose(model, vanishing_log10, exploding_log10) if OWNERS[d.cause] == code]
