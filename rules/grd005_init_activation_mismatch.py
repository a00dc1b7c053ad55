"""GRD005: an explicit fan-aware init whose gain does not match the activation, where it matters."""

from __future__ import annotations

from collections.abc import Iterable

from gradlint.analysis.inits import recommended_init
from gradlint.analysis.triage import diagnoses_for
from gradlint.model import Model
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Valid

from ._shared import activations_text, diagnosis_severity, estimate_text, lines_text, matched_text, run_span


class InitActivationMismatch(Rule):
    code = "GRD005"
    name = "init-activation-mismatch"
    summary = ("The init's gain is meant for another activation (He on tanh/sigmoid, Glorot on deep ReLU, gain=5 on "
               "tanh) and the estimate says it matters at this depth.")
    what_it_does = """
Finds runs of weight layers whose explicit init scales with fan-in (kaiming/He, xavier/Glorot,
LeCun, orthogonal, variance scaling) but with a gain chosen for a different activation, and
reports them only when the estimated weight-gradient ratio over the run crosses 1/1000 or
1000× *and* the init matching each activation would bring it back within those bounds.
"""
    why_bad = """
He init (σ_w² = 2) is derived for ReLU, which halves the variance; Glorot (σ_w² ≈ 1) for
tanh/linear, which keep it. Glorot on a deep ReLU stack loses a factor √2 of the signal per
layer (0.03 after ten layers); He on tanh puts the network in the chaotic phase; a large
explicit gain makes tanh saturate and the gradient grow with depth.
"""
    formula = """
Compares the end-to-end estimate of GRD001 (its three quantities: ratio, loss at init,
relative gradients) with the init as written against the same estimate with σ_w² of the
matching init (2/(1+a²) for ReLU-like, 1 for tanh/sigmoid/linear, 1 for SELU); reported when
the first says vanishing or exploding and the second is healthy.
"""
    fix = "Not yet automatic (planned as an unsafe fix)."

    VALID = [
        Valid("""
import torch.nn as nn


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(256, 256) for _ in range(40)])
        for layer in self.layers:
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x).relu()
        return x
""", use_instead=True),
    ]
    INVALID = [
        Invalid("""
import torch.nn as nn


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(256, 256) for _ in range(40)])
        for layer in self.layers:
            nn.init.xavier_normal_(layer.weight)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x).relu()
        return x
""", line=7, column=38, example=True,
                message=r"nn\.init\.xavier_normal_\(layer\.weight\) \(line 9\) does not match the relu activations "
                        r"of 40 layers"),
        Invalid("""
import torch.nn as nn
model = nn.Sequential(*[m for _ in range(20) for m in (nn.Linear(128, 128), nn.Tanh())])
for m in model:
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight, gain=5.0)
""", line=2, column=56,
                message=r"nn\.init\.xavier_uniform_\(m\.weight, gain=5\.0\) \(line 5\) does not match the tanh"),
    ]

    def check(self, model: Model, context: RuleContext) -> Iterable[Finding]:
        options = context.options
        for diagnosis in diagnoses_for(model, self.code, options.vanishing_log10, options.exploding_log10,
                                       options.frozen_log10):
            units = diagnosis.units
            init = units[0].init
            assert init is not None and init.span is not None
            message = (
                f"{init.describe()} (line {init.span.line}) does not match the {activations_text(units)} "
                f"activations of {len(units)} layers ({lines_text(units)}): {estimate_text(diagnosis, inits=False)}. "
                f"Use {recommended_init(units[0])}{matched_text(diagnosis)}."
            )
            yield Finding(run_span(units), message, diagnosis_severity(diagnosis, options), diagnosis.estimate)
