"""The measurement protocol's verdict: three quantities, one set of thresholds.

Pure Python, standard library only: the dynamic check (``--dynamic``, in its worker), the
training monitor (``gradlint.monitor``), the calibration tool (``tools/calibrate.py``) and the
static estimator all read their thresholds from here, so a measured label, a dynamic verdict,
a monitor alert and a static finding mean the same thing.

The quantities, from one forward/backward pass (the dynamic check takes medians over seeds):

(a) ``ratio`` = ‖∂L/∂W_first‖ / ‖∂L/∂W_last‖, the weight gradients of the first and the last
    weight layer (≥ 2-D weight, not a normalization layer) in execution order;
(b) forward scale: the ``loss`` (MSE to N(0, 1) targets in the protocol) and whether any loss
    or gradient value is non-finite;
(c) relative gradients: ``relative_grad`` = ‖∂L/∂θ‖ / ‖θ‖ over every trainable parameter,
    and ``first_relative_grad`` = ‖∂L/∂W‖ / ‖W‖ of the first weight layer.

Thresholds (docs/dynamic.md says where each comes from): vanishing when the ratio is below
1e-4 or the first layer's relative gradient below 1e-7 (it is frozen: below Adam's ε, SGD and
Adam alike leave it in place); exploding when ‖∂L/∂θ‖/‖θ‖ > 1e2, the loss > 1e6, the ratio
> 1e4 or a value is NaN/Inf; symmetric when a hidden layer has identical weight rows and
identical gradient rows (constant init: its units stay copies of each other) — unless no
parameter gets any gradient at all because the output passes none back (a dead output:
vanishing), or a weight layer that ran gets no gradient at all, not even a zero one (nothing
connects it to the loss: a detach, ``no_grad`` or stop_gradient on every path; vanishing,
checked first); healthy when
the ratio is in [1e-2, 1e2], ‖∂L/∂θ‖/‖θ‖ in [1e-5, 10] and the first layer's ‖∂W‖/‖W‖ ≥ 1e-4;
anything between is borderline.

Saturation and dead units are evidence shown with the verdict, not part of it: a saturated
stack already shows in (a) or (c).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from typing import Any

from gradlint.records import dataclass

__all__ = [
    "LABELS",
    "PROBLEMS",
    "Quantities",
    "Thresholds",
    "Verdict",
    "judge",
    "layer_evidence",
]

#: Every label the protocol gives; ``borderline`` is not scored.
LABELS = ("healthy", "vanishing", "exploding", "symmetric", "borderline")
#: Labels that are a problem (a dynamic diagnostic, a monitor alert).
PROBLEMS = frozenset({"vanishing", "exploding", "symmetric"})


@dataclass(frozen=True)
class Thresholds:
    """The protocol's thresholds. Field names are the JSON keys (``to_json``/``from_json``)."""

    # (a) first/last weight-gradient ratio
    vanishing_ratio: float = 1e-4
    exploding_ratio: float = 1e4
    healthy_ratio_low: float = 1e-2
    healthy_ratio_high: float = 1e2
    # (b) forward scale
    exploding_loss: float = 1e6
    # (c) relative gradients
    exploding_relative_grad: float = 1e2  # ‖∂L/∂θ‖/‖θ‖ above this: exploding
    healthy_relative_grad_low: float = 1e-5
    healthy_relative_grad_high: float = 10.0
    frozen_first_relative_grad: float = 1e-7  # first layer ‖∂W‖/‖W‖ below this: frozen (vanishing)
    healthy_first_relative_grad: float = 1e-4
    # evidence (DeepDiagnosis' definitions)
    saturation_bound: float = 5.0  # |sigmoid/tanh pre-activation| beyond this is saturated
    saturation_margin: float = 1e-3  # ... or the activation within this of its bounds
    saturated_share: float = 0.5  # a layer is reported when more than this share is saturated
    dead_share: float = 0.7  # a ReLU unit is dead when at least this share of its outputs is <= 0
    dead_units_share: float = 0.5  # a layer is reported when more than this share of its units is dead
    symmetry_tol: float = 1e-6  # rows equal within tol * max|row| count as identical

    def to_json(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Thresholds:
        """Known keys only (a job from another version may carry more or fewer)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in (data or {}).items() if k in names})


DEFAULT = Thresholds()


@dataclass
class Quantities:
    """What was measured. ``None``: not measured (that criterion is not applied)."""

    ratio: float | None = None  # (a); NaN when both ends got no gradient
    loss: float | None = None  # (b)
    nonfinite: bool = False  # (b): a NaN/Inf loss or gradient
    relative_grad: float | None = None  # (c) ‖∂L/∂θ‖/‖θ‖ over all trainable parameters
    first_relative_grad: float | None = None  # (c) the first weight layer's ‖∂W‖/‖W‖
    # ‖∂L/∂y‖ at the last weight layer's output: 0 with no gradient anywhere means the output passes
    # none back (a dead output); None: not measured (the dead-output criterion is not applied)
    output_grad: float | None = None
    symmetric: Sequence[str] = ()  # hidden layers with identical weight and gradient rows
    # weight layers that ran in the forward and got no gradient at all (autograd left their gradient
    # unset: a detach, ``no_grad`` block or stop_gradient on every path from them to the loss)
    disconnected: Sequence[str] = ()
    first: str | None = None  # names of the first and last weight layers, for the reason
    last: str | None = None
    evidence: Sequence[str] = ()  # saturation / dead units (``layer_evidence``)


@dataclass(frozen=True)
class Verdict:
    label: str  # one of LABELS
    reason: str  # the criterion that decided it, with its number
    evidence: tuple[str, ...] = ()  # saturation and dead units, shown with the verdict

    @property
    def problem(self) -> bool:
        return self.label in PROBLEMS

    def describe(self) -> str:
        return self.reason + "".join(f"; {e}" for e in self.evidence)


def _num(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.2e}"


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def judge(q: Quantities, t: Thresholds = DEFAULT) -> Verdict:
    """The protocol's label for one measurement.

    Order: a non-finite value; a first weight layer no gradient reaches at all (disconnected: autograd
    left its gradient unset); no gradient at all (‖∂L/∂θ‖ exactly 0 with ‖θ‖ > 0 and none at
    the last weight layer's output: a dead output, whatever else the model has); identical units
    (a constant init is symmetric, not vanishing, even when its hidden gradients are zero); forward
    scale and relative gradient too large; the ratio or the first layer's relative gradient too
    small; the ratio too large; healthy; borderline. Forward blow-up wins over a small ratio: both
    directions grow together, and a blown-up forward pass is the cause.
    """
    evidence = tuple(q.evidence)
    ends = f" [first: {q.first}, last: {q.last}]" if q.first is not None else ""
    if q.nonfinite or (q.loss is not None and math.isnan(q.loss)):
        return Verdict("exploding", "loss or gradients are NaN/Inf", evidence)
    # The protocol reads the first weight layer's ‖∂W‖/‖W‖: no gradient there at all is vanishing. A
    # layer further in that nothing reaches (a detached side branch, an EMA teacher run under no_grad)
    # leaves the label to the other quantities; it stays evidence (``layer_evidence``) and confirms a
    # GRD012 finding (``dynamic_bridge.covers``).
    if q.disconnected and (q.first is None or q.first in q.disconnected):
        more = len(q.disconnected) - 3
        shown = ", ".join(q.disconnected[:3]) + (f" (+{more} more)" if more > 0 else "")
        return Verdict("vanishing", f"no gradient at all reaches {len(q.disconnected)} weight layer(s): {shown} — "
                       "nothing connects them to the loss (a detach, no_grad block or stop_gradient on every path)"
                       + ends, evidence)
    if q.relative_grad == 0.0 and q.output_grad == 0.0:
        # Every gradient is exactly 0 while some weight is not (‖θ‖ > 0), and already at the output of
        # the last weight layer: the output passes nothing back (softmax over one unit, a saturated
        # head). Identical rows then say nothing about the init — a zero-initialised branch layer looks
        # like copies only because nothing reaches it. (A zero init without biases also gets no
        # gradient anywhere, but its output does pass one back: that stays symmetric.)
        return Verdict("vanishing", "no gradient at all: the output passes none back, every parameter's gradient is "
                       "exactly 0 (dead output)" + ends, evidence)
    if q.symmetric:
        shown = ", ".join(q.symmetric[:3]) + (", ..." if len(q.symmetric) > 3 else "")
        return Verdict("symmetric", f"hidden units with identical weights and identical gradients in {shown}", evidence)
    if q.loss is not None and q.loss > t.exploding_loss:
        return Verdict("exploding", f"loss {_num(q.loss)} > {t.exploding_loss:g} (forward blow-up)", evidence)
    if q.relative_grad is not None and q.relative_grad > t.exploding_relative_grad:
        return Verdict(
            "exploding", f"relative gradient ‖∂L/∂θ‖/‖θ‖ {_num(q.relative_grad)} > {t.exploding_relative_grad:g}",
            evidence,
        )
    if q.ratio is not None and math.isnan(q.ratio):
        return Verdict("vanishing", "no gradient reaches the first or the last weight layer (both zero)" + ends,
                       evidence)
    if q.ratio is not None and q.ratio < t.vanishing_ratio:
        return Verdict(
            "vanishing", f"first/last weight-gradient ratio {_num(q.ratio)} < {t.vanishing_ratio:g}{ends}", evidence
        )
    if q.first_relative_grad is not None and q.first_relative_grad < t.frozen_first_relative_grad:
        return Verdict(
            "vanishing",
            f"first weight layer{f' {q.first}' if q.first else ''} is frozen: ‖∂W‖/‖W‖ "
            f"{_num(q.first_relative_grad)} < {t.frozen_first_relative_grad:g}",
            evidence,
        )
    if q.ratio is not None and q.ratio > t.exploding_ratio:
        return Verdict(
            "exploding", f"first/last weight-gradient ratio {_num(q.ratio)} > {t.exploding_ratio:g}{ends}", evidence
        )
    outside = []
    if q.ratio is not None and not t.healthy_ratio_low <= q.ratio <= t.healthy_ratio_high:
        outside.append(
            f"first/last weight-gradient ratio {_num(q.ratio)}"
            f" outside [{t.healthy_ratio_low:g}, {t.healthy_ratio_high:g}]"
        )
    healthy_rel = (t.healthy_relative_grad_low, t.healthy_relative_grad_high)
    if q.relative_grad is not None and not healthy_rel[0] <= q.relative_grad <= healthy_rel[1]:
        outside.append(
            f"‖∂L/∂θ‖/‖θ‖ {_num(q.relative_grad)} outside "
            f"[{t.healthy_relative_grad_low:g}, {t.healthy_relative_grad_high:g}]"
        )
    if q.first_relative_grad is not None and not q.first_relative_grad >= t.healthy_first_relative_grad:
        outside.append(f"first layer ‖∂W‖/‖W‖ {_num(q.first_relative_grad)} < {t.healthy_first_relative_grad:g}")
    if outside:
        return Verdict("borderline", "; ".join(outside) + ends, evidence)
    parts = []
    if _finite(q.ratio):
        parts.append(f"first/last weight-gradient ratio {_num(q.ratio)}")  # type: ignore[arg-type]
    if _finite(q.relative_grad):
        parts.append(f"‖∂L/∂θ‖/‖θ‖ {_num(q.relative_grad)}")  # type: ignore[arg-type]
    if _finite(q.first_relative_grad):
        parts.append(f"first layer ‖∂W‖/‖W‖ {_num(q.first_relative_grad)}")  # type: ignore[arg-type]
    text = ", ".join(parts) + " within the healthy bands" if parts else "finite gradients (nothing to compare)"
    return Verdict("healthy", text + ends, evidence)


def layer_evidence(
    layers: Sequence[Mapping[str, Any]], t: Thresholds = DEFAULT, limit: int = 3
) -> list[str]:
    """Evidence lines: layers no gradient reaches (``connected`` False), and saturation and dead
    units from per-layer ``saturation``/``dead_fraction``.

    ``saturation``: share of a layer's sigmoid/tanh pre-activations beyond ±saturation_bound
    (or activations within saturation_margin of the bounds); ``dead_fraction``: share of its
    ReLU units with at least ``dead_share`` of their outputs <= 0.
    """
    out = []
    cut = [str(x["name"]) for x in layers if x.get("connected") is False]
    if cut:
        more = f" (+{len(cut) - limit} more)" if len(cut) > limit else ""
        out.append(f"no gradient at all reaches {len(cut)} weight layer(s): {', '.join(cut[:limit])}{more}")
    saturated = [(str(x["name"]), float(x["saturation"])) for x in layers
                 if x.get("saturation") is not None and float(x["saturation"]) > t.saturated_share]
    if saturated:
        shown = ", ".join(f"{name} {share:.0%}" for name, share in saturated[:limit])
        more = f" (+{len(saturated) - limit} more)" if len(saturated) > limit else ""
        out.append(f"saturated sigmoid/tanh units in {len(saturated)} layer(s): {shown}{more}")
    dead = [(str(x["name"]), float(x["dead_fraction"])) for x in layers
            if x.get("dead_fraction") is not None and float(x["dead_fraction"]) > t.dead_units_share]
    if dead:
        shown = ", ".join(f"{name} {share:.0%}" for name, share in dead[:limit])
        more = f" (+{len(dead) - limit} more)" if len(dead) > limit else ""
        out.append(f"dead ReLU units in {len(dead)} layer(s): {shown}{more}")
    return out
