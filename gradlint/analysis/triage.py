"""Triage: which gradient problem a model has, and which single rule reports it.

``diagnose`` judges each propagation segment of a model (``gradlint.analysis.flow``: the whole
main path, split only where the estimate cannot see through) by the measurement protocol's
three quantities — (a) the first/last weight-gradient ratio, (b) the forward scale (the loss at
init, float32 overflow), (c) the relative gradient ‖∂L/∂W‖/‖W‖ — plus dead outputs, and gives
each problem found one ``Cause``; ``OWNERS`` says which rule reports each cause. Rules ask for
their own diagnoses (``diagnoses_for``) instead of re-deriving them, so a problem can neither
be reported twice nor fall between two rules.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import field

from gradlint import gradflow
from gradlint.analysis.flow import Segment, model_segments, run_segment, segment_flow
from gradlint.analysis.inits import FAN_AWARE_INITS, FIXED_SCALE_INITS, RELU_LIKE, matched_sigma_w2, sigma_w2_of
from gradlint.analysis.units import Unit
from gradlint.estimate import Estimate
from gradlint.gradflow.propagate import Propagation
from gradlint.model import Model
from gradlint.records import dataclass
from gradlint.verdict import DEFAULT as PROTOCOL

# A ratio-only vanishing verdict on a plain stack of non-saturating layers shorter than this is
# not reported: shallow stacks near the threshold are where the estimate is least reliable.
MIN_DEPTH = 6
LOG10_EXPLODING_LOSS = math.log10(PROTOCOL.exploding_loss)  # (b) loss > 1e6
LOG10_EXPLODING_RELATIVE = math.log10(PROTOCOL.exploding_relative_grad)  # (c) ‖∂L/∂θ‖/‖θ‖ > 1e2
LOG10_FROZEN = math.log10(PROTOCOL.frozen_first_relative_grad)  # (c) first layer ‖∂W‖/‖W‖ < 1e-7


class Cause(str, enum.Enum):
    """Why gradients vanish or explode; each cause has exactly one owning rule (``OWNERS``)."""

    SATURATING = "saturating"  # vanishing through sigmoid/tanh-family layers (LayerNorm does not rescue)
    DEPTH = "depth"  # vanishing through a deep stack of other activations
    INIT_SCALE = "init_scale"  # a fixed-scale init (N(0, s²), U(a, b)) wrong for the width
    INIT_MISMATCH = "init_mismatch"  # a fan-aware init whose gain suits another activation
    EXPANDING = "expanding"  # a stack that amplifies (chaos, exponential activations)
    RESIDUAL_GROWTH = "residual_growth"  # unnormalized residual blocks whose variance compounds
    DEAD_OUTPUT = "dead_output"  # softmax over one unit, or a head saturated by a forward blow-up
    NEGATIVE_BIAS = "negative_bias"  # a constant negative bias in front of ReLU-family units: dead at init
    # a stack of thresholded units (ThresholdedReLU, nn.Threshold) whose live share collapses layer by layer
    DEAD_FORWARD = "dead_forward"
    # a recurrent init whose gradient through time explodes over the known sequence (diagnosed with the
    # sequence length training code states: ``rules._shared.through_time_diagnoses``)
    RECURRENT_INIT = "recurrent_init"


# The one table of who reports what.
OWNERS: Mapping[Cause, str] = {
    Cause.SATURATING: "GRD001",
    Cause.DEPTH: "GRD003",
    Cause.INIT_SCALE: "GRD004",
    Cause.INIT_MISMATCH: "GRD005",
    Cause.EXPANDING: "GRD006",
    Cause.RESIDUAL_GROWTH: "GRD006",
    Cause.DEAD_OUTPUT: "GRD010",
    Cause.NEGATIVE_BIAS: "GRD011",
    Cause.DEAD_FORWARD: "GRD010",
    Cause.RECURRENT_INIT: "GRD004",
}


@dataclass(eq=False)
class Diagnosis:
    """One gradient problem of a model: the units it implicates, the estimate behind it, its cause."""

    cause: Cause
    direction: str  # vanishing | exploding
    estimate: Estimate
    units: list[Unit] = field(default_factory=list)  # the implicated weight layers (message, span)
    segment: Segment | None = None
    flow: Propagation | None = None
    matched: Estimate | None = None  # the same path with the init matching each activation
    matched_ok: bool = False  # ... and that path is healthy: the matching init is a fix
    # ratio | loss | relative_grad | frozen | nonfinite | dead_output | dead_units | dead_forward
    criterion: str = "ratio"
    blocks: int = 0  # residual blocks involved (RESIDUAL_GROWTH)
    upstream: Cause | None = None  # DEAD_OUTPUT after a blow-up: what blew it up

    @property
    def owner(self) -> str:
        return OWNERS[self.cause]

    @property
    def all_units(self) -> list[Unit]:
        return self.segment.units if self.segment is not None else self.units


def _judge(p: Propagation, seg: Segment, vanishing_log10: float, exploding_log10: float,
           frozen_log10: float = LOG10_FROZEN) -> tuple[str, str] | None:
    """(direction, criterion) by the protocol's order (gradlint.verdict.judge), or None: healthy."""
    whole = seg.starts_input and seg.ends_output
    ratio = p.log10_ratio if len(p.layers) >= 2 else None
    if ratio is not None and not seg.ends_output and p.layers[-1].depth > 0:
        ratio = None  # a segment ending inside a residual branch: its last layer is no reference
    explode = exploding_log10
    if seg.batch_normalized:
        # BatchNorm makes deep nets' gradients grow toward the input (Yang et al. 2019) and the
        # estimate overshoots it on deep conv stacks (ResNet-152: 10^3.6 estimated, 264 measured):
        # only the protocol's exploding label (> 1e4) is reported for a ratio alone.
        explode = max(exploding_log10, math.log10(PROTOCOL.exploding_ratio))
    if p.nonfinite:  # an inf activation into a saturated head makes NaN gradients (inf · 0), not zeros
        return "exploding", "nonfinite"
    if p.dead_head is not None:
        return "vanishing", "dead_output"
    if p.killed is not None:
        return "vanishing", "dead_forward"  # Dropout(p=1.0): every activation after it is exactly 0
    if p.log10_loss is not None and p.log10_loss > LOG10_EXPLODING_LOSS:
        return "exploding", "loss"
    if whole and p.log10_relative_grad is not None and p.log10_relative_grad > LOG10_EXPLODING_RELATIVE:
        return "exploding", "relative_grad"
    dead = p.dead
    if dead is not None and dead.depth == 0:
        # Every unit of a main-path layer is dead (a constant bias below the ReLU's kink): everything
        # before it gets exactly 0 — measured as a NaN ratio (both ends zero) or a zero first layer.
        return "vanishing", "dead_units"
    if ratio is not None and not math.isnan(ratio) and ratio <= vanishing_log10:
        return "vanishing", "ratio"
    first = p.log10_first_relative_grad
    if first is not None and p.log10_ce_rescale is not None:
        first += p.log10_ce_rescale  # a probability head trains with cross-entropy, not MSE through it
    if whole and first is not None and first < frozen_log10:
        if p.log10_head_factor < 0 and first - p.log10_head_factor >= frozen_log10:
            return "vanishing", "dead_output"  # frozen by a saturated head: without its loss, not frozen
        return "vanishing", "frozen"
    if ratio is not None and not math.isnan(ratio) and ratio >= explode:
        return "exploding", "ratio"
    return None


def to_estimate(p: Propagation, direction: str | None = None, criterion: str | None = None,
                whole: bool = True) -> Estimate:
    """The value a finding carries, from a propagation."""
    gains = [math.sqrt(lf.chi) for lf in p.layers[1:] if lf.chi > 0]
    typical = math.exp(sum(math.log(g) for g in gains) / len(gains)) if gains else None
    return Estimate(
        log10_weight_ratio=p.log10_ratio,
        log10_backward_ratio=p.log10_backward_ratio,
        layers=len(p.layers),
        exact=p.exact,
        assumptions=list(p.assumptions),
        per_layer_gain=typical,
        max_log10_q=p.log10_max_m,
        log10_loss=p.log10_loss,
        log10_forward_growth=p.log10_out_m,
        log10_relative_grad=p.log10_relative_grad if whole else None,
        log10_first_relative_grad=p.log10_first_relative_grad if whole else None,
        nonfinite=p.nonfinite,
        dead_output=p.dead_head is not None,
        verdict=direction,
        criterion=criterion,
        log10_live_share=_log10_live_share(p),
    )


def _log10_live_share(p: Propagation) -> float | None:
    """The smallest live share of a thresholded layer up to the first dead one (after it, nothing is left)."""
    shares: list[float] = []
    for lf in p.layers:
        if lf.live is not None and lf.live > 0:
            shares.append(lf.live)
        if lf.alive == 0.0:
            break
    return math.log10(min(shares)) if shares else None


#: A thresholded stack is the cause of a vanishing verdict when its live share falls below this (1 %).
LOG10_COLLAPSED_SHARE = -2.0


def _dead_forward(seg: Segment, p: Propagation, criterion: str) -> list[Unit] | None:
    """The thresholded units of a path whose live share collapses (every unit of one dead in a typical
    batch, or a share below 1 %) — the units from the first thresholded one to the collapse — or None."""
    if p.killed is not None:
        return list(seg.units)
    by_key = seg.unit_by_key
    thresholded = [(lf, by_key[lf.key]) for lf in p.layers if lf.live is not None and lf.key in by_key]
    if not thresholded:
        return None
    dead = p.dead
    if criterion == "dead_units" and dead is not None and dead.live is None:
        return None  # a bias below a plain ReLU's kink (GRD011)
    worst = min(lf.live or 0.0 for lf, _ in thresholded)
    if criterion != "dead_units" and (worst > 0 and math.log10(worst) > LOG10_COLLAPSED_SHARE):
        return None
    return [unit for _, unit in thresholded]


def _explicit(units: list[Unit], schemes: frozenset[str]) -> list[Unit]:
    return [u for u in units if u.init is not None and u.init.span is not None and u.init.scheme in schemes
            and "rescale" not in u.init.params]


def _hand_scaled(units: list[Unit]) -> list[Unit]:
    """Units whose init the code sets to a hand-picked scale: a fixed-scale scheme (N(0, s²), U(a, b)),
    or any scheme multiplied afterwards by a number (``w.data.mul_(10)``, ``w *= 5``)."""
    return [u for u in units if u.init is not None and u.init.span is not None
            and (u.init.scheme in FIXED_SCALE_INITS or "rescale" in u.init.params)]


def _textbook_scale(units: list[Unit]) -> bool:
    """Every unit's hand-picked scale is the textbook init for its activation (σ_w² within a factor
    √10 of He for ReLU, Glorot/LeCun otherwise): an ``N(0, 2/fan_in)`` written out by hand."""
    for unit in units:
        value, _ = sigma_w2_of(unit)
        if value is None or value <= 0 or abs(math.log10(value / matched_sigma_w2(unit))) > 0.5:
            return False
    return True


def _healthy_with(seg: Segment, units: list[Unit], vanishing_log10: float, exploding_log10: float
                  ) -> tuple[bool, Propagation | None]:
    """Would the segment be healthy with the init matching each activation on ``units``?"""
    override = {id(u.layer): matched_sigma_w2(u) for u in units}
    what_if = run_segment(seg, override)
    if what_if is None:
        return False, None
    return _judge(what_if, seg, vanishing_log10, exploding_log10) is None, what_if


def _negative_bias(seg: Segment, p: Propagation) -> list[Unit]:
    """Main-path ReLU-family units whose constant bias is negative, in execution order."""
    by_key = seg.unit_by_key
    out: list[Unit] = []
    for lf in p.layers:
        unit = by_key.get(lf.key) if lf.key is not None else None
        if unit is not None and lf.bias_mean < 0 and not unit.normalized and unit.activation in RELU_LIKE:
            out.append(unit)
    return out


def _healthy_without_bias(seg: Segment, vanishing_log10: float, exploding_log10: float
                          ) -> tuple[bool, Propagation | None]:
    """Would the segment be healthy with its constant biases at 0?"""
    what_if = run_segment(seg, zero_bias=True)
    if what_if is None:
        return False, None
    return _judge(what_if, seg, vanishing_log10, exploding_log10) is None, what_if


def _saturating_share(p: Propagation, seg: Segment) -> tuple[list[Unit], float]:
    """The main-path saturating units and the share of the attenuation they cause (log √χ)."""
    by_key = seg.unit_by_key
    sat: list[Unit] = []
    total = own = 0.0
    last = p.layers[-1].key if p.layers else None
    for lf in p.layers:
        unit = by_key.get(lf.key) if lf.key is not None else None
        if unit is None or lf.chi <= 0:
            continue
        loss = -min(0.0, 0.5 * math.log10(lf.chi))
        total += loss
        # A softmax inside the stack (not the output's) saturates like a sigmoid of u − ln(k − 1).
        hidden_softmax = unit.activation == "softmax" and lf.key != last
        if (unit.activation in gradflow.SATURATING or hidden_softmax) and not unit.gated:
            sat.append(unit)
            own += loss
    return sat, (own / total if total > 0 else 0.0)


def _attribute(seg: Segment, p: Propagation, direction: str, criterion: str,
               vanishing_log10: float, exploding_log10: float) -> Diagnosis | None:
    units = seg.units
    estimate = to_estimate(p, direction, criterion, seg.starts_input and seg.ends_output)
    fixed = _hand_scaled(units)
    fan = _explicit(units, FAN_AWARE_INITS)
    sat, share = _saturating_share(p, seg)

    def diagnosis(cause: Cause, implicated: list[Unit], what_if: tuple[bool, Propagation | None] = (False, None)
                  ) -> Diagnosis:
        ok, matched = what_if
        m = to_estimate(matched) if matched is not None else None
        return Diagnosis(cause, direction, estimate, implicated or units, seg, p, m, ok, criterion,
                         blocks=seg.residual_blocks)

    if criterion == "dead_output":
        upstream = None
        if p.head_q is not None and p.head_q > 1e2:  # saturated by a blow-up: say what blew it up
            upstream = Cause.INIT_SCALE if fixed else Cause.INIT_MISMATCH if fan else (
                Cause.RESIDUAL_GROWTH if seg.unnormalized_blocks else Cause.EXPANDING)
        d = diagnosis(Cause.DEAD_OUTPUT, units[-1:])
        d.upstream = upstream
        return d
    collapsed = _dead_forward(seg, p, criterion) if direction == "vanishing" else None
    if collapsed is not None:
        d = diagnosis(Cause.DEAD_FORWARD, collapsed)
        d.criterion = "dead_forward"
        d.estimate.criterion = "dead_forward"
        return d
    negative = _negative_bias(seg, p)
    if criterion == "dead_units":
        return diagnosis(Cause.NEGATIVE_BIAS, negative, _healthy_without_bias(seg, vanishing_log10, exploding_log10))
    if direction == "vanishing" and len(sat) >= 2 and (2 * len(sat) >= len(units) or share >= 0.5):
        return diagnosis(Cause.SATURATING, sat, _healthy_with(seg, units, vanishing_log10, exploding_log10))
    if direction == "vanishing" and negative:
        # Not dead but in the flat part (leaky ReLU's slope, GELU's tail): the bias is the cause when
        # the same path with zero biases is healthy.
        what_if = _healthy_without_bias(seg, vanishing_log10, exploding_log10)
        if what_if[0]:
            return diagnosis(Cause.NEGATIVE_BIAS, negative, what_if)
    if fixed:
        what_if = _healthy_with(seg, units, vanishing_log10, exploding_log10)
        if direction == "exploding" and seg.unnormalized_blocks and not what_if[0] and _textbook_scale(fixed):
            # N(0, 2/fan_in) written by hand is He init: the blocks' variance compounds whatever the init
            return diagnosis(Cause.RESIDUAL_GROWTH, units)
        return diagnosis(Cause.INIT_SCALE, fixed, what_if)
    if fan:
        what_if = _healthy_with(seg, units, vanishing_log10, exploding_log10)
        if what_if[0]:
            return diagnosis(Cause.INIT_MISMATCH, fan, what_if)
    if direction == "vanishing":
        if criterion == "ratio" and len(units) < MIN_DEPTH:
            return None
        return diagnosis(Cause.DEPTH, units, _healthy_with(seg, units, vanishing_log10, exploding_log10))
    if seg.unnormalized_blocks:
        return diagnosis(Cause.RESIDUAL_GROWTH, units)
    return diagnosis(Cause.EXPANDING, units)


def diagnose(model: Model, vanishing_log10: float = -3.0, exploding_log10: float = 3.0,
             frozen_log10: float = LOG10_FROZEN) -> list[Diagnosis]:
    """Every gradient problem of ``model`` the estimate sees, each with one cause (cached per model)."""
    cache_key = (vanishing_log10, exploding_log10, frozen_log10)
    cache = model.__dict__.setdefault("_diagnoses", {})
    if cache_key in cache:
        return cache[cache_key]  # type: ignore[no-any-return]
    out: list[Diagnosis] = []
    for seg in model_segments(model):
        if seg.behind_cut:
            continue  # no gradient reaches it along the main path at all: a gradient stop's (GRD012)
        p = segment_flow(seg)
        if p is None:
            continue
        if seg.constant_hidden and not (p.dead_head is not None and p.head_q is None):
            # A constant hidden init is a symmetry problem (GRD002), its estimate meaningless; a softmax
            # over one unit is dead whatever the init (and outranks the symmetry: no gradient at all).
            continue
        verdict = _judge(p, seg, vanishing_log10, exploding_log10, frozen_log10)
        if verdict is None:
            continue
        diagnosis = _attribute(seg, p, *verdict, vanishing_log10, exploding_log10)
        if diagnosis is not None:
            out.append(diagnosis)
    cache[cache_key] = out
    return out


def diagnoses_for(model: Model, code: str, vanishing_log10: float = -3.0, exploding_log10: float = 3.0,
                  frozen_log10: float = LOG10_FROZEN) -> list[Diagnosis]:
    """The diagnoses of ``model`` that rule ``code`` owns."""
    return [d for d in diagnose(model, vanishing_log10, exploding_log10, frozen_log10) if OWNERS[d.cause] == code]
