"""GRD006: gradients estimated to grow by 1000× or more from the last layer back to the first."""

from __future__ import annotations

import math
from collections.abc import Iterable

from gradlint.analysis.triage import Cause, diagnoses_for
from gradlint.model import LayerKind, Model
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Valid

from ._shared import diagnosis_severity, estimate_text, lines_text, quantity_text, run_span


class ExplodingGradient(Rule):
    code = "GRD006"
    name = "exploding-gradient"
    summary = "The estimated gradient grows 1000× or more from the output back to the first layer."
    what_it_does = """
Estimates, for the model's main path, how the weight gradient grows from the last weight
layer back to the first, and reports paths where it grows by 1000× or more: stacked
`exponential` or other expanding activations, unnormalized residual stacks whose variance
doubles block after block, and any plain stack in the chaotic phase. Explosions caused by a
hand-picked init scale or gain are GRD004/GRD005's.
"""
    why_bad = """
When early layers receive gradients thousands of times larger than late layers, a learning
rate that suits one end is wrong for the other: updates overshoot, the loss spikes, NaNs
follow. Each unnormalized residual block multiplies the backward variance by about
(1 + χ_branch); twenty such blocks with χ ≈ 1 multiply it by 2^20.
"""
    formula = """
The end-to-end estimate of GRD001 (`gradlint explain GRD001`): residual blocks add variances,
q_out = q_in + q_branch, so that without normalization or a branch scale the forward variance
grows ~2^L for variance-preserving branches (pre-norm: ~linearly; post-norm: reset per block);
backward, ‖δ‖² grows by (1 + χ_branch) per block. Reported when (b) the loss at init > 1e6 or
float32 overflows, (c) ‖∂L/∂θ‖/‖θ‖ > 1e2, or (a) the ratio first/last ≥ 10^exploding-log10
(default 3; the protocol's 1e4 on batch-normalized paths, where BatchNorm's own gradient growth
is overestimated), and no hand-set init is the cause (GRD004/GRD005).
"""
    fix = "No automatic fix. Gradient clipping limits the damage during training but does not fix the cause."

    VALID = [
        Valid("""
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.branch = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, d))

    def forward(self, x):
        return x + self.branch(self.norm(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(32, 128)
        self.blocks = nn.Sequential(*[Block(128) for _ in range(12)])
        self.head = nn.Linear(128, 1)

    def forward(self, x):
        return self.head(self.blocks(self.inp(x)))
""", use_instead=True),
        Valid("""
import torch, torch.nn as nn
class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc = nn.Linear(d, d)
    def forward(self, x):
        return x + torch.relu(self.fc(self.norm(x)))
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([Block(128) for _ in range(12)])
        self.head = nn.Linear(128, 1)
    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return self.head(x)
"""),
    ]
    INVALID = [
        # Stacked exponential activations.
        Invalid("""
from keras import layers, Sequential
model = Sequential([layers.Dense(64, activation="exponential", input_shape=(16,))]
                   + [layers.Dense(64, activation="exponential") for _ in range(6)] + [layers.Dense(1)])
""", line=2, column=21, message=r"amplify the signal"),
        # 16 unnormalized residual blocks at He init: the variance doubles per block (loss ≈ 2.5e6 measured).
        Invalid("""
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)
        nn.init.kaiming_normal_(self.fc.weight, nonlinearity="relu")

    def forward(self, x):
        return x + torch.relu(self.fc(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(32, 128)
        self.blocks = nn.Sequential(*[Block(128) for _ in range(16)])
        self.head = nn.Linear(128, 1)

    def forward(self, x):
        return self.head(self.blocks(self.inp(x)))
""", line=15, column=1, message=r"16 residual blocks without normalization", example=True),
    ]

    def check(self, model: Model, context: RuleContext) -> Iterable[Finding]:
        options = context.options
        for diagnosis in diagnoses_for(model, self.code, options.vanishing_log10, options.exploding_log10,
                                       options.frozen_log10):
            estimate = diagnosis.estimate
            if diagnosis.cause == Cause.RESIDUAL_GROWTH:
                message = (
                    f"{diagnosis.blocks} residual blocks without normalization in their branches let the variance "
                    f"grow block after block: {quantity_text(diagnosis)}. Normalize the branch input (pre-norm), "
                    f"scale the branch (layer scale, ReZero) or zero-initialise each branch's last layer."
                )
                yield Finding(model.span, message, diagnosis_severity(diagnosis, options), estimate)
                continue
            units = diagnosis.units
            message = (
                f"{len(units)} weight layers ({lines_text(units)}) amplify the signal: "
                f"{estimate_text(diagnosis)}{_dropout_text(model)}. Add normalization, use bounded activations or "
                f"the init matching the activation, and clip gradients during training."
            )
            yield Finding(run_span(units), message, diagnosis_severity(diagnosis, options), estimate)


def _dropout_text(model: Model) -> str:
    """How much of the growth train-mode dropout adds, when a decade or more: inverted dropout multiplies the
    second moment by 1/(1 − p) each time (gradflow.Dropout)."""
    drops = [layer for layer in model.layers() if layer.kind == LayerKind.DROPOUT and layer.rate and layer.rate < 1
             and "alpha" not in layer.op.lower()]
    decades = sum(-math.log10(1.0 - layer.rate) for layer in drops if layer.rate)
    if decades < 1.0:
        return ""
    first = drops[0]
    return (f"; {len(drops)} × {first.op}({first.rate:g}) (line {first.span.line}) multiply the forward second "
            f"moment by ≈1e{decades:.0f} in training (1/(1 − p) each)")
