"""GRD003: a deep network with no normalization and no residual connections whose gradient vanishes."""

from __future__ import annotations

from collections.abc import Iterable

from gradlint.analysis.triage import diagnoses_for
from gradlint.estimate import format_ratio
from gradlint.model import Model
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Valid

from ._shared import estimate_text, lines_text, run_span, severity_for


class DeepPlainNetwork(Rule):
    code = "GRD003"
    name = "deep-plain-network"
    summary = ("A long stack of weight layers with neither normalization nor residual connections, whose gradient "
               "vanishes at init.")
    what_it_does = """
Finds long runs (six or more) of weight layers on a model's main path with no normalization
and no residual connection, of any activation, and estimates the weight-gradient ratio
between the first and the last layer of the run from the activation, the init and the
width. Reported when the estimate says the first layer gets less than 1/1000 of the gradient
of the last. Runs made mostly of sigmoid/tanh layers are GRD001's.
"""
    why_bad = """
Without normalization or skip connections every layer multiplies the backward signal by its
own gain; anything below 1 compounds. A plain 20-layer ReLU MLP at PyTorch's default init
(σ_w² = 1/3, not He's 2) measures a weight-gradient ratio of about 1e-7: the first layers do
not train. He init restores the gain of ReLU layers to 1; normalization and residual
connections make depth safe whatever the init.
"""
    formula = """
Same mean-field estimate as GRD001 (see `gradlint explain GRD001`), over the run. PyTorch's
default bias U(±1/√fan_in) puts a floor under the forward variance, which is why the default
init vanishes even though ReLU networks without biases keep weight gradients balanced.
"""
    fix = "No automatic fix."

    VALID = [
        Valid("""
import torch.nn as nn

layers = []
for _ in range(20):
    linear = nn.Linear(256, 256)
    nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
    layers += [linear, nn.BatchNorm1d(256), nn.ReLU()]
model = nn.Sequential(*layers, nn.Linear(256, 10))
""", use_instead=True),
        # He init keeps a deep ReLU stack critical.
        Valid("""
import torch.nn as nn
class MLP(nn.Module):
    def __init__(self, depth=20, width=256):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        for layer in self.layers:
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    def forward(self, x):
        for layer in self.layers:
            x = layer(x).relu()
        return x
"""),
        # A short plain network is fine.
        Valid("""
import torch.nn as nn
model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
"""),
    ]
    INVALID = [
        Invalid("""
import torch.nn as nn

layers = []
for _ in range(20):
    layers += [nn.Linear(256, 256), nn.ReLU()]
model = nn.Sequential(*layers, nn.Linear(256, 10))
""", line=5, column=16, message=r"21 weight layers in a row", example=True),
    ]

    def check(self, model: Model, context: RuleContext) -> Iterable[Finding]:
        options = context.options
        for diagnosis in diagnoses_for(model, self.code, options.vanishing_log10, options.exploding_log10):
            units = diagnosis.units
            hint = "use the init that matches the activation (He/kaiming for ReLU)"
            if diagnosis.matched is not None:
                hint += f": with it the estimate is ≈ {format_ratio(diagnosis.matched.log10_weight_ratio)}"
            message = (
                f"{len(units)} weight layers in a row with no normalization or residual connection "
                f"({lines_text(units)}): {estimate_text(diagnosis)}. Add BatchNorm/LayerNorm or residual "
                f"connections, or {hint}."
            )
            yield Finding(run_span(units), message, severity_for(diagnosis.estimate.log10_weight_ratio, options),
                          diagnosis.estimate)
