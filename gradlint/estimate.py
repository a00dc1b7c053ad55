"""What a gradient finding says about the numbers behind it: the ``Estimate`` value object.

This module sits below the model description: the output layer (``rule``, ``diagnostics``,
``cache``, reporters) imports it without importing the analysis that computes estimates.
It holds no reasoning, only the value, its JSON form and how numbers are displayed.
"""

from __future__ import annotations

import math
from dataclasses import field, fields

from gradlint.records import dataclass

# Pre-activation variance at which float32 values (max 3.4e38) overflow in the loss: an MSE
# loss sums squares of outputs of scale √q, so q ≈ 1e38 already gives inf.
FLOAT32_OVERFLOW_LOG10_Q = 38.0
# float32's largest finite value is 3.4e38: a ratio or norm above it is inf in a real run.
FLOAT32_MAX_LOG10 = math.log10(3.4028234663852886e38)
# float32's smallest positive (subnormal) value is 1.4e-45: anything below is exactly 0.
FLOAT32_TINY_LOG10 = math.log10(1.401298464324817e-45)


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
    # The end-to-end quantities of the measurement protocol (None where not estimated):
    log10_loss: float | None = None  # (b) MSE to N(0, 1) targets at init
    log10_forward_growth: float | None = None  # (b) output second moment over a unit-variance input
    log10_relative_grad: float | None = None  # (c) ‖∂L/∂θ‖/‖θ‖ over the path's parameters
    log10_first_relative_grad: float | None = None  # (c) the first weight layer's ‖∂L/∂W‖/‖W‖
    nonfinite: bool = False  # float32 overflows: the real pass gives inf/NaN
    dead_output: bool = False  # every gradient is exactly 0 at init (dead or saturated head)
    verdict: str | None = None  # vanishing | exploding, as the protocol would label it
    criterion: str | None = None  # the quantity that decided: ratio | loss | relative_grad | frozen | ...
    # the smallest share of units above a threshold (thresholded ReLU) along the path, log10; None: no such
    # layer, or no unit alive at all in the mean field
    log10_live_share: float | None = None
    # the first optimizer step's size relative to the weights, ‖ΔW‖/‖W‖ (log10), for the layer it moves most
    log10_update: float | None = None

    @property
    def overflows(self) -> bool:
        """Activations beyond float32's range: the real forward pass returns inf/NaN."""
        return self.nonfinite or (self.max_log10_q is not None and self.max_log10_q >= FLOAT32_OVERFLOW_LOG10_Q)

    def to_json(self) -> dict[str, object]:
        return {
            "log10_gain": finite_or_none(self.log10_weight_ratio),
            "log10_backward_gain": finite_or_none(self.log10_backward_ratio),
            "layers": self.layers,
            "exact": self.exact,
            "assumptions": list(self.assumptions),
            "verdict": self.verdict,
            "criterion": self.criterion,
            "log10_loss": finite_or_none(self.log10_loss),
            "log10_forward_growth": finite_or_none(self.log10_forward_growth),
            "log10_max_q": finite_or_none(self.max_log10_q),
            "log10_relative_grad": finite_or_none(self.log10_relative_grad),
            "log10_first_relative_grad": finite_or_none(self.log10_first_relative_grad),
            "nonfinite": self.nonfinite,
            "dead_output": self.dead_output,
            "log10_live_share": finite_or_none(self.log10_live_share),
            "log10_update": finite_or_none(self.log10_update),
        }

    def to_state(self) -> dict[str, object]:
        """Every field, for the result cache (``from_state`` reads it back)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_state(cls, state: dict[str, object]) -> Estimate:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in state.items() if k in names})  # type: ignore[arg-type]


def no_gradient(layers: int, criterion: str, reaches_first: bool = True, dead_output: bool = False) -> Estimate:
    """Exactly no gradient to ``layers`` weight layers (a gradient stop, a loss with no graph back, a
    constant prediction): the protocol's vanishing, ‖∂L/∂W‖/‖W‖ = 0 (log10 −inf, null in JSON) for the
    first weight layer when ``reaches_first``. Not an approximation: ``exact``."""
    return Estimate(
        log10_weight_ratio=-math.inf if reaches_first else 0.0,
        log10_backward_ratio=-math.inf,
        layers=layers,
        exact=True,
        log10_first_relative_grad=-math.inf if reaches_first else None,
        dead_output=dead_output,
        verdict="vanishing",
        criterion=criterion,
    )


def symmetric(layers: int, starves: bool) -> Estimate:
    """Weight layers that start constant: their units stay identical (the protocol's ``symmetric``), an
    exact statement; ``starves``: zero weights after the first layer, so the layers before them get
    exactly no gradient (log10 −inf). Otherwise the ratio is not what decides (NaN: null in JSON)."""
    return Estimate(
        log10_weight_ratio=-math.inf if starves else math.nan,
        log10_backward_ratio=-math.inf if starves else math.nan,
        layers=layers,
        exact=True,
        log10_first_relative_grad=-math.inf if starves else None,
        verdict="symmetric",
        criterion="symmetry",
    )


def finite_or_none(value: float | None, digits: int = 3) -> float | None:
    """JSON has no inf/nan: a gradient that is exactly zero (log10 = -inf) is reported as null."""
    return round(value, digits) if value is not None and math.isfinite(value) else None


def format_ratio(log10_value: float) -> str:
    """A ratio given by its log10, for messages: "3.5e-08", "0.42", "0"."""
    if log10_value == float("-inf"):
        return "0"
    if log10_value == float("inf"):
        return "inf"
    value = 10 ** log10_value if abs(log10_value) < 300 else None
    if value is None:
        return f"1e{log10_value:+.0f}"
    return f"{value:.1e}" if value < 0.01 or value >= 100 else f"{value:.2g}"


def approx(log10_value: float | None, plain: bool = False) -> str:
    """A number given by its log10, for messages, within float32's range: "≈ 3.5e-08";
    "overflows float32" above 3.4e38 (never "≈ 1e+1049"); "below float32's range" under 1.4e-45.
    ``plain``: without the leading "≈ "."""
    if log10_value is None:
        return "unknown"
    if log10_value != log10_value:  # NaN: 0/0
        return "undefined (0/0)"
    if log10_value > FLOAT32_MAX_LOG10:
        return "overflows float32 (inf)"
    if log10_value < FLOAT32_TINY_LOG10:
        return "0 (below float32's range)" if plain else "≈ 0 (below float32's range)"
    text = format_ratio(log10_value)
    return text if plain else f"≈ {text}"
