"""GRD011: a constant negative bias in front of ReLU-family activations: the units start dead."""

from __future__ import annotations

from collections.abc import Iterable

from gradlint.analysis.triage import Diagnosis, diagnoses_for
from gradlint.analysis.units import Unit
from gradlint.estimate import approx, format_ratio
from gradlint.model import Model
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Valid

from ._shared import activations_text, diagnosis_severity, lines_text, quantity_text, run_span, set_at


def _share_text(dead: float) -> str:
    if dead >= 0.995:
        return "≈ 100 %"
    if dead < 0.01:
        return "< 1 %"
    return f"{100 * dead:.0f} %"


def _bias_fix(unit: Unit) -> str:
    if unit.layer.framework == "keras":
        return 'bias_initializer="zeros"'
    if unit.layer.framework == "tensorflow":
        return "tf.zeros_initializer()"
    return "nn.init.zeros_(m.bias)"


class NegativeBias(Rule):
    code = "GRD011"
    name = "negative-bias"
    summary = ("Biases initialised to a negative constant in front of ReLU-family activations: the units start dead "
               "(or in their flat part) and no gradient reaches the layers before them.")
    what_it_does = """
Finds weight layers whose bias starts at one constant for every unit — `nn.init.constant_(m.bias, -1)`,
`m.bias.data.fill_(-3.0)`, Keras `bias_initializer=Constant(-5)` — when the constant is negative and
a ReLU-family activation follows with no normalization in between, and the end-to-end estimate
says the gradient vanishes because of it: every unit of some layer is dead for a whole batch
(ReLU outputs exactly 0 below zero, so nothing passes back), or the units sit in the flat part of
a leaky ReLU, GELU, ELU or softplus.
"""
    why_bad = """
A constant bias c shifts every pre-activation by c, the same for every unit and example: it does not
add spread. Behind a ReLU, a unit whose pre-activation stays below 0 outputs 0 and has derivative 0.
With c = −10 and He init no unit of a batch ever crosses 0: the first layer's output is exactly 0,
so is every later layer's, and every weight gradient, the head's included, is exactly 0 (measured: the
first and the last weight layer both get no gradient at all). Smaller negative constants do the
same a few layers in: with PyTorch's default weight init (σ_w² = 1/3) each layer shrinks the spread
that could cross 0, and −0.1 is enough to kill a 4-layer stack. A small positive bias (0.01, 0.1)
is common and harmless; BatchNorm or LayerNorm right after the layer removes any constant.
"""
    formula = """
The end-to-end propagation carries the bias mean c: the pre-activation of unit i is c + (Wx)_i with
Var((Wx)_i) = σ_w²·E[x²], and the activation's moments are those of the shifted Gaussian
(E[φ(c + √v·z)], E[φ′²] by quadrature). For ReLU the share of live (example, unit) pairs is
P(c + √v·z > 0); a layer is dead for a typical batch when B·n·share < ln 2 (B = 128 examples,
n units, a conv layer's at 32×32 positions each: no live pair with probability > ½, the protocol's
median over 3 seeds). Reported when a
main-path layer is dead, or the path vanishes by the ratio or a frozen first layer and the same
path with zero biases is healthy. Sigmoid and tanh stacks (gates, LSTM) are GRD001's; a norm after
the layer cancels c.
"""
    fix = "No automatic fix: initialise the biases to 0 (or a small positive constant for ReLU)."

    VALID = [
        Valid("""
import torch.nn as nn


class MLP(nn.Module):
    def __init__(self, depth=8, width=128):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x).relu()
        return x
""", use_instead=True),
        # A small positive bias for ReLU units is a common choice, and harmless.
        Valid("""
import torch.nn as nn
model = nn.Sequential(*[m for _ in range(8) for m in (nn.Linear(128, 128), nn.ReLU())], nn.Linear(128, 10))
for m in model:
    if isinstance(m, nn.Linear):
        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        nn.init.constant_(m.bias, 0.1)
"""),
        # BatchNorm after the layer removes the constant.
        Valid("""
import torch.nn as nn
layers = []
for _ in range(8):
    linear = nn.Linear(128, 128)
    nn.init.constant_(linear.bias, -3.0)
    layers += [linear, nn.BatchNorm1d(128), nn.ReLU()]
model = nn.Sequential(*layers, nn.Linear(128, 10))
"""),
        # A slightly negative bias with He init leaves about half of the units alive.
        Valid("""
from keras import Sequential, initializers, layers

model = Sequential([layers.Input((128,))]
                   + [layers.Dense(128, activation="relu", kernel_initializer="he_normal",
                                   bias_initializer=initializers.Constant(-0.1)) for _ in range(16)]
                   + [layers.Dense(10)])
"""),
    ]
    INVALID = [
        Invalid("""
import torch.nn as nn


class MLP(nn.Module):
    def __init__(self, depth=8, width=128):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.constant_(m.bias, -10)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x).relu()
        return x
""", line=7, column=38, example=True,
                message=r"nn\.init\.constant_\(m\.bias, -10\) \(set at line 11\) starts the biases of 8 relu layers "
                        r"at -10 \(line 7\), with no normalization before the activation: ≈ 100 % of the first "
                        r"layer's units start dead"),
        Invalid("""
import torch.nn as nn
model = nn.Sequential(*[m for _ in range(8) for m in (nn.Linear(256, 256), nn.ReLU())], nn.Linear(256, 10))
for m in model:
    if isinstance(m, nn.Linear):
        m.bias.data.fill_(-3.0)
""", line=2, column=55, message=r"m\.bias\.data\.fill_\(-3\.0\) \(set at line 5\) starts the biases"),
        Invalid("""
from keras import Sequential, initializers, layers

model = Sequential([layers.Input((64,))]
                   + [layers.Dense(64, activation="relu", bias_initializer=initializers.Constant(-1.0))
                      for _ in range(8)]
                   + [layers.Dense(10)])
""", line=4, message=r"every unit of weight layer \d+ of 9 \(Dense at line 4\) is dead"),
        # Leaky ReLU units are not dead but sit on their 0.01 slope: the gradient shrinks ×100 per layer.
        Invalid("""
import torch.nn as nn
model = nn.Sequential(*[m for _ in range(8) for m in (nn.Linear(128, 128), nn.LeakyReLU(0.01))])
for m in model:
    if isinstance(m, nn.Linear):
        nn.init.kaiming_normal_(m.weight, nonlinearity="leaky_relu")
        nn.init.constant_(m.bias, -3.0)
""", line=2, column=55, message=r"flat part"),
    ]

    def check(self, model: Model, context: RuleContext) -> Iterable[Finding]:
        options = context.options
        for diagnosis in diagnoses_for(model, self.code, options.vanishing_log10, options.exploding_log10,
                                       options.frozen_log10):
            units = diagnosis.units
            yield Finding(run_span(units), self._message(diagnosis), diagnosis_severity(diagnosis, options),
                          diagnosis.estimate)

    def _message(self, diagnosis: Diagnosis) -> str:
        units = diagnosis.units
        init = next((u.layer.bias_init for u in units if u.layer.bias_init is not None
                     and u.layer.bias_init.constant_value is not None), None)
        value = (init.constant_value or 0.0) if init is not None else 0.0
        written = f"{init.describe()}{set_at(init.span)}" if init is not None else "a constant bias"
        flows = {lf.key: lf for lf in diagnosis.flow.layers} if diagnosis.flow is not None else {}
        first = flows.get(id(units[0].layer))
        dead_first = 1.0 - first.alive if first is not None and first.alive is not None else None
        head = (f"{written} starts the biases of {len(units)} "
                f"{activations_text(units)} layers at {value:g} ({lines_text(units)}), with no normalization "
                f"before the activation")
        if diagnosis.criterion == "dead_units":
            flow = diagnosis.flow
            dead = flow.dead if flow is not None else None
            share = ""
            if dead_first is not None:
                share = f": {_share_text(dead_first)} of the first layer's units start dead"
            where = ""
            if flow is not None and dead is not None:
                index = flow.layers.index(dead) + 1
                where = (f"; every unit of weight layer {index} of {len(flow.layers)} ({dead.label}) is dead for "
                         f"a whole batch (none of 128 examples gets above 0), so it and every weight layer before "
                         f"it get exactly zero gradient")
            body = share + where
        else:
            body = f": the units start in the flat part of the activation, and {quantity_text(diagnosis)}"
        m = diagnosis.matched
        with_zero = ""
        if m is not None and diagnosis.matched_ok:
            with_zero = f" (with zero biases: ratio ≈ {format_ratio(m.log10_weight_ratio)})"
        elif m is not None:  # the biases are not the only problem (a weight init far too small, say)
            rel = m.log10_first_relative_grad
            frozen = f", first layer ‖∂W‖/‖W‖ ≈ {approx(rel, plain=True)}" if rel is not None else ""
            with_zero = (f" (not enough on its own: with zero biases, ratio ≈ {format_ratio(m.log10_weight_ratio)}"
                         f"{frozen})")
        return (f"{head}{body}. Initialise the biases to 0 ({_bias_fix(units[0])}) or, for ReLU, a small "
                f"positive constant such as 0.01, or normalize after the layer{with_zero}.")
