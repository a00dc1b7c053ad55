"""GRD003: a deep network with no normalization and no residual connections whose gradient vanishes."""

from __future__ import annotations

from typing import Iterable

from gradlint import gradflow
from gradlint.analysis import describe_inits, estimate_units, format_ratio, plain_runs
from gradlint.model import Model, Span
from gradlint.rule import Finding, Rule, RuleContext, Severity

MIN_DEPTH = 6


class DeepPlainNetwork(Rule):
    code = "GRD003"
    name = "deep-plain-network"
    summary = "A long stack of weight layers with neither normalization nor residual connections, whose gradient vanishes at init."
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
    example = """
layers = []
for _ in range(20):
    layers += [nn.Linear(256, 256), nn.ReLU()]
model = nn.Sequential(*layers, nn.Linear(256, 10))
"""
    use_instead = """
layers = []
for _ in range(20):
    lin = nn.Linear(256, 256)
    nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
    layers += [lin, nn.BatchNorm1d(256), nn.ReLU()]
model = nn.Sequential(*layers, nn.Linear(256, 10))
"""
    fix = "No automatic fix."

    VALID = [
        # He init keeps a deep ReLU stack critical.
        """
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
""",
        # A short plain network is fine.
        """
import torch.nn as nn
model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
""",
    ]
    INVALID = [
        """
import torch.nn as nn
layers = []
for _ in range(20):
    layers += [nn.Linear(256, 256), nn.ReLU()]
model = nn.Sequential(*layers, nn.Linear(256, 10))
""",
    ]

    def check(self, model: Model, context: RuleContext) -> Iterable[Finding]:
        options = context.options
        for run in plain_runs(model.path):
            units = run.units
            if len(units) < MIN_DEPTH:
                continue
            saturating = sum(u.activation in gradflow.SATURATING for u in units)
            if saturating * 2 >= len(units):
                continue  # GRD001 reports sigmoid/tanh stacks
            estimate = estimate_units(units)
            if estimate is None or estimate.log10_weight_ratio > options.vanishing_log10:
                continue
            first, last = units[0].layer, units[-1].layer
            acts = sorted({u.activation for u in units})
            severity = Severity.ERROR if estimate.log10_weight_ratio <= -options.error_log10 else Severity.WARNING
            message = (
                f"{len(units)} weight layers in a row with no normalization or residual connection "
                f"(line {first.span.line} to line {last.span.line}): estimated gradient attenuation "
                f"≈ {format_ratio(estimate.log10_weight_ratio)} across {len(units)} layers "
                f"({'/'.join(acts)}, {describe_inits(units)}). Add BatchNorm/LayerNorm or residual connections, "
                f"or use the init that matches the activation (He/kaiming for ReLU)."
            )
            yield Finding(Span(first.span.line, first.span.col, last.span.end_line, last.span.end_col),
                          message, severity, estimate)
