"""GRD001: a stack of sigmoid/tanh-family layers deep enough to starve the early layers."""

from __future__ import annotations

from typing import Iterable

from gradlint import gradflow
from gradlint.analysis import Unit, describe_inits, estimate_units, format_ratio, input_width, plain_runs
from gradlint.model import Model, Span
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Severity, Valid


def saturating_stacks(model: Model) -> list[list[Unit]]:
    """Maximal runs of consecutive saturating units on the main path, nothing in between."""
    stacks: list[list[Unit]] = []
    for run in plain_runs(model.path, input_width(model)):
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


class SaturatingActivationStack(Rule):
    code = "GRD001"
    name = "saturating-activation-stack"
    summary = "Consecutive sigmoid/tanh layers with no normalization or residual path shrink the gradient geometrically."
    what_it_does = """
Finds runs of weight layers (Linear, Dense, Conv) whose activation squashes — sigmoid, tanh,
hard_sigmoid, softsign, hardtanh — following each other on the model's main path with no
normalization layer and no residual connection in between. It estimates, from the layers'
init and width, how much smaller the weight gradient of the first layer of the run is than
that of the last, and reports the run when that attenuation exceeds 1000×.

Sigmoid used as a gate (squeeze-and-excitation, GLU, LSTM/GRU gates), as a single output
head, or in short stacks is not reported: only the depth of the stack makes it a problem.
"""
    why_bad = """
Backpropagation multiplies the gradient by the activation's derivative once per layer.
sigmoid′ ≤ 1/4 and tanh′ ≤ 1 (and far less once units saturate), so the gradient reaching
the early layers shrinks geometrically with depth: at PyTorch's default init a sigmoid layer
passes on about 0.14 of the gradient, so eleven of them pass on about 3e-9. The early layers
then barely learn while the loss plateaus.
"""
    formula = """
Mean-field estimate at initialization: per layer σ_w² = fan_in·Var(W), forward variance
q_l = σ_w²·E[φ(√q_{l-1} z)²] + σ_b², backward gain χ_l = σ_w²·E[φ′(√q_l z)²]; the weight-gradient
ratio first/last is ∏√χ_l times the ratio of the layers' input norms. Reported when
log10(ratio) ≤ vanishing-log10 (default −3); severity error at ≤ −error-log10 (default −6).
"""
    fix = "No automatic fix: replacing an activation changes what the model computes."

    VALID = [
        Valid("""
from tensorflow.keras.layers import BatchNormalization, Dense, ReLU
from tensorflow.keras.models import Sequential

model = Sequential()
model.add(Dense(64, input_shape=(20,)))
model.add(ReLU())
model.add(BatchNormalization())
for _ in range(10):
    model.add(Dense(64))
    model.add(ReLU())
    model.add(BatchNormalization())
model.add(Dense(1, activation="sigmoid"))
""", use_instead=True),
        # A sigmoid output head after a ReLU body.
        Valid("""
import torch.nn as nn
model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1), nn.Sigmoid())
"""),
        # Four tanh layers at Glorot init are near-critical: tanh′(0) = 1 and σ_w² = 1.
        Valid("""
from keras import layers, Sequential
model = Sequential([layers.Dense(128, activation="tanh", input_shape=(128,))]
                   + [layers.Dense(128, activation="tanh") for _ in range(3)])
"""),
        # Deep sigmoid stack with BatchNorm between the layers.
        Valid("""
import torch.nn as nn
layers = []
for _ in range(12):
    layers += [nn.Linear(64, 64), nn.BatchNorm1d(64), nn.Sigmoid()]
model = nn.Sequential(*layers)
"""),
        # Squeeze-and-excitation gates in a ReLU network.
        Valid("""
import torch, torch.nn as nn
class SE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // 4, 1)
        self.fc2 = nn.Conv2d(c // 4, c, 1)
    def forward(self, x):
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(*[nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), SE(32)) for _ in range(8)])
    def forward(self, x):
        return self.blocks(x)
"""),
    ]
    INVALID = [
        # The seed: 11 sigmoid Dense layers built in a loop.
        Invalid("""
from tensorflow.keras.layers import Dense
from tensorflow.keras.models import Sequential

model = Sequential()
model.add(Dense(64, activation="sigmoid", input_shape=(20,)))
for _ in range(10):
    model.add(Dense(64, activation="sigmoid"))
model.add(Dense(1, activation="sigmoid"))
""", line=5, column=11, message=r"12 stacked sigmoid layers", example=True),
        # Five sigmoid layers at PyTorch's default init.
        Invalid("""
import torch
import torch.nn as nn
class Net(nn.Module):
    def __init__(self, width=128):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(5)])
    def forward(self, x):
        for layer in self.layers:
            x = torch.sigmoid(layer(x))
        return x
""", line=6, column=38),
    ]

    def check(self, model: Model, context: RuleContext) -> Iterable[Finding]:
        options = context.options
        for stack in saturating_stacks(model):
            estimate = estimate_units(stack)
            if estimate is None or estimate.log10_weight_ratio > options.vanishing_log10:
                continue
            first, last = stack[0].layer, stack[-1].layer
            acts = sorted({u.activation for u in stack})
            severity = Severity.ERROR if estimate.log10_weight_ratio <= -options.error_log10 else Severity.WARNING
            gain = f"; each layer passes on ≈{estimate.per_layer_gain:.2g} of the gradient" if estimate.per_layer_gain else ""
            message = (
                f"{len(stack)} stacked {'/'.join(acts)} layers with no normalization or residual connection "
                f"(line {first.span.line} to line {last.span.line}): estimated gradient attenuation "
                f"≈ {format_ratio(estimate.log10_weight_ratio)} across {len(stack)} layers "
                f"({'/'.join(acts)}, {describe_inits(stack)}){gain}. Use ReLU-family activations with He init, "
                f"or add BatchNorm/LayerNorm between the layers, or residual connections."
            )
            yield Finding(Span(first.span.line, first.span.col, last.span.end_line, last.span.end_col),
                          message, severity, estimate)
