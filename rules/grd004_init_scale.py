"""GRD004: a fixed-scale init (N(0, s²), U(a, b)) that is too small or too large for the layers' width."""

from __future__ import annotations

from collections.abc import Iterable

from gradlint.analysis.inits import FIXED_SCALE_INITS, recommended_init
from gradlint.analysis.triage import diagnoses_for
from gradlint.model import Model
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Valid

from ._shared import estimate_text, lines_text, run_span, severity_for


class InitScale(Rule):
    code = "GRD004"
    name = "init-scale"
    summary = ("A fixed-scale weight init (normal/uniform with a hand-picked std) makes gradients vanish or explode "
               "at this width and depth.")
    what_it_does = """
Finds runs of weight layers initialised with a fixed scale that ignores the layer's width —
`nn.init.normal_(w, 0, 0.01)`, `w.data.uniform_(-1, 1)`, `torch.randn(n, m) * s`, Keras
`RandomNormal(stddev=...)`, `RandomUniform()` — and estimates the weight-gradient ratio over
the run. Reported when the first layer's gradient is estimated below 1/1000 or above 1000×
the last layer's.
"""
    why_bad = """
What matters for signal propagation is σ_w² = fan_in·Var(W). A std of 0.01 at fan-in 256
gives σ_w² = 0.0256: each ReLU layer then passes on √(σ_w²/2) ≈ 0.11 of the signal, and
twenty of them pass on nothing. N(0, 1) at fan-in 256 gives σ_w² = 256: tanh units saturate
and the network is chaotic, ReLU activations overflow. Keras' `RandomNormal()` default
(stddev 0.05) is only right near fan-in 400–800 for ReLU.
"""
    formula = """
σ_w² from the init: N(0, s²) → fan_in·s²; U(a, b) → fan_in·(b−a)²/12; then the mean-field
estimate of GRD001. Reported when log10(ratio) ≤ vanishing-log10 (−3) or ≥ exploding-log10 (3).
"""
    fix = "Not yet automatic (planned as an unsafe fix: the fan-aware init matching the activation)."

    VALID = [
        Valid("""
import torch.nn as nn


class MLP(nn.Module):
    def __init__(self, depth=20, width=256):
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
        # Small std on a shallow head is fine.
        Valid("""
import torch.nn as nn
class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(512, 256)
        self.fc2 = nn.Linear(256, 10)
        nn.init.normal_(self.fc2.weight, std=0.01)
    def forward(self, x):
        return self.fc2(self.fc1(x).relu())
"""),
    ]
    INVALID = [
        Invalid("""
import torch.nn as nn


class MLP(nn.Module):
    def __init__(self, depth=20, width=256):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0.0, std=0.01)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x).relu()
        return x
""", line=7, column=38, message=r"too small for 20 layers", example=True),
        Invalid("""
import torch.nn as nn
net = nn.Sequential(*[nn.Sequential(nn.Linear(128, 128), nn.Tanh()) for _ in range(10)])
for p in net.parameters():
    if p.dim() > 1:
        nn.init.normal_(p, std=1.0)
""", line=2, column=37, message=r"normal\(std=1\) \(set at line 5\) is too large for 10 layers"),
    ]

    def check(self, model: Model, context: RuleContext) -> Iterable[Finding]:
        options = context.options
        for diagnosis in diagnoses_for(model, self.code, options.vanishing_log10, options.exploding_log10):
            units = diagnosis.units
            fixed = [u for u in units if u.init is not None and u.init.scheme in FIXED_SCALE_INITS]
            init = fixed[0].init
            assert init is not None
            where = f" (set at line {init.span.line})" if init.span else ""
            too = "too small" if diagnosis.direction == "vanishing" else "too large"
            matched = ""
            if diagnosis.matched is not None:
                matched = f"; with the matching init the estimate is ≈ 10^{diagnosis.matched.log10_weight_ratio:.1f}"
            message = (
                f"{init.describe()}{where} is {too} for {len(units)} layers of this width ({lines_text(units)}): "
                f"{estimate_text(diagnosis)}. Use a fan-aware init such as {recommended_init(units[0])}{matched}."
            )
            yield Finding(run_span(units), message, severity_for(diagnosis.estimate.log10_weight_ratio, options),
                          diagnosis.estimate)
