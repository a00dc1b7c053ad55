"""GRD003: a deep network with no normalization and no residual connections whose gradient vanishes."""

from __future__ import annotations

from collections.abc import Iterable

from gradlint.analysis.triage import diagnoses_for
from gradlint.model import Model
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Valid

from ._shared import diagnosis_severity, estimate_text, lines_text, matched_text, path_text, run_span


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
The end-to-end estimate and the three quantities of GRD001 (see `gradlint explain GRD001`):
reported when the path vanishes by (a) the ratio or (c) a frozen first layer and no other rule
owns the cause (saturating layers: GRD001; a hand-set init: GRD004/GRD005). A ratio-only
verdict needs six weight layers or more. PyTorch's default bias U(±1/√fan_in) puts a floor
under the forward variance, which is why the default init vanishes even though ReLU networks
without biases keep weight gradients balanced.
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
        for diagnosis in diagnoses_for(model, self.code, options.vanishing_log10, options.exploding_log10,
                                       options.frozen_log10):
            units = diagnosis.units
            init = "use the init that matches the activation (He/kaiming for ReLU)" + matched_text(diagnosis)
            fix = (f"Use the init that matches the activation (He/kaiming for ReLU){matched_text(diagnosis)}, or add "
                   f"BatchNorm/LayerNorm or residual connections" if diagnosis.matched_ok else
                   f"Add BatchNorm/LayerNorm or residual connections; {init}")
            message = (
                f"{len(units)} weight layers in a row {path_text(diagnosis)} ({lines_text(units)}): "
                f"{estimate_text(diagnosis)}. {fix}."
            )
            yield Finding(run_span(units), message, diagnosis_severity(diagnosis, options), diagnosis.estimate)
