"""GRD004: a fixed-scale init (N(0, s²), U(a, b)) that is too small or too large for the layers' width."""

from __future__ import annotations

from collections.abc import Iterable

from gradlint.analysis.inits import matched_sigma_w2, recommended_init, sigma_w2_of, weight_mean_of
from gradlint.analysis.triage import Diagnosis, diagnoses_for
from gradlint.estimate import format_ratio
from gradlint.model import Layer, Model
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Valid

from ._shared import (
    diagnosis_severity,
    estimate_text,
    lines_text,
    matched_text,
    run_span,
    set_at,
    severity_for,
    through_time_diagnoses,
)


class InitScale(Rule):
    code = "GRD004"
    name = "init-scale"
    summary = ("A fixed-scale weight init (normal/uniform with a hand-picked std) makes gradients vanish or explode "
               "at this width and depth.")
    what_it_does = """
Finds runs of weight layers initialised with a fixed scale that ignores the layer's width —
`nn.init.normal_(w, 0, 0.01)`, `w.data.uniform_(-1, 1)`, `torch.randn(n, m) * s`, Keras
`RandomNormal(stddev=...)`, `RandomUniform()`, or any init multiplied afterwards by a number
(`w.data.mul_(10)`, `w *= 5` under `no_grad`) — and estimates the weight-gradient ratio over
the run. A non-centred init (`nn.init.uniform_(w)` is U(0, 1)) also shifts every unit by
fan_in·E[W]·E[x] of a non-centred input, which the estimate includes. Reported when the first
layer's gradient is estimated below 1/1000 or above 1000× the last layer's.

Also finds a recurrent layer (`nn.RNN`/`LSTM`/`GRU`, Keras `SimpleRNN`/`LSTM`/`GRU`) whose
hidden-to-hidden init — `nn.init.normal_(lstm.weight_hh_l0, std=1)`, `orthogonal_(..., gain=3)`,
an init loop over `named_parameters()`, Keras `recurrent_initializer=RandomNormal(stddev=1)` —
makes the gradient through time grow 1000× or more over the sequence length the code states
(Keras `Input(shape=(T, F))`, the batches a PyTorch training loop feeds it). The frameworks'
default recurrent inits never do; the length unknown, nothing is reported.
"""
    why_bad = """
What matters for signal propagation is σ_w² = fan_in·Var(W). A std of 0.01 at fan-in 256
gives σ_w² = 0.0256: each ReLU layer then passes on √(σ_w²/2) ≈ 0.11 of the signal, and
twenty of them pass on nothing. N(0, 1) at fan-in 256 gives σ_w² = 256: tanh units saturate
and the network is chaotic, ReLU activations overflow. Keras' `RandomNormal()` default
(stddev 0.05) is only right near fan-in 400–800 for ReLU.
"""
    formula = """
σ_w² from the init: N(0, s²) → fan_in·s²; U(a, b) → fan_in·(b−a)²/12; then the end-to-end
estimate of GRD001 (`gradlint explain GRD001`) and its three quantities: (a) the ratio
first/last beyond 10^∓3, (b) the loss at init > 1e6 or float32 overflow (a forward blow-up:
ReLU layers with N(0, 1) weights), (c) ‖∂L/∂θ‖/‖θ‖ > 1e2, or a first layer frozen below 1e-7
of its weights (uniform vanishing: every layer starved alike while the ratio stays ≈ 1).
Reported when any of them says vanishing or exploding and a layer on the path has an explicit
fixed-scale init; the message gives the same quantities with the matching fan-aware init.

Recurrent layers: σ_rec² = H·Var(W_hh) per gate block (torch's default U(±1/√H): 1/3; an
orthogonal (k·H × H) matrix: gain²/k), σ_in² what the input kernel and biases add. Per-step gain
of the gradient through time at the mean-field fixed point: tanh RNN √(σ_rec²·E[tanh′²]) at
q = σ_rec²·E[tanh²] + σ_in²; ReLU RNN √(σ_rec²/2); LSTM/GRU √ of the leading eigenvalue of the
(cell, hidden) perturbation-variance transfer (forget/update gate carry plus the gate
derivatives, which saturation shrinks). Reported when T·log10(gain) ≥ exploding-log10 (3).
Checked against PyTorch and Keras (hidden 32/128, T 20–400, 3 seeds; tools/measure_recurrent.py):
tanh/ReLU RNN within ~1 decade of the measured gradient through time; for LSTM/GRU this is a
lower estimate (measured growth is larger near σ_rec ≈ 3), so it misses some explosions but
calls none of the measured-healthy cells exploding. The IRNN (ReLU with an identity recurrence)
is not estimated.
"""
    fix = "Not yet automatic (planned as an unsafe fix: the fan-aware init matching the activation)."

    VALID = [
        Valid("""
from tensorflow import keras
inputs = keras.Input(shape=(400, 16))
hidden = keras.layers.LSTM(128, recurrent_initializer=keras.initializers.Orthogonal(gain=3.0))(inputs)
model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
"""),
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
from tensorflow import keras
inputs = keras.Input(shape=(50, 16))
hidden = keras.layers.SimpleRNN(64, recurrent_initializer=keras.initializers.RandomNormal(stddev=1.0))(inputs)
model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
""", line=3, column=10, message=r"RandomNormal\(stddev=1\.0\).*recurrent weights of SimpleRNN is too large for 50 time "
                                r"steps"),
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
""", line=2, column=37, message=r"nn\.init\.normal_\(p, std=1\.0\) \(set at line 5\) is too large for 10 layers"),
    ]

    def check(self, model: Model, context: RuleContext) -> Iterable[Finding]:
        options = context.options
        for diagnosis in diagnoses_for(model, self.code, options.vanishing_log10, options.exploding_log10,
                                       options.frozen_log10):
            units = diagnosis.units
            init = units[0].init
            assert init is not None
            where = set_at(init.span)
            # fan_in·E[W²]: a non-centred init (U(0, 1)) is too large by its mean, whatever its variance.
            larger = [s + (u.fan_in or 0) * weight_mean_of(u) ** 2 > matched_sigma_w2(u)
                      for u in units if (s := sigma_w2_of(u)[0]) is not None]
            if larger:
                too = "too large" if 2 * sum(larger) >= len(larger) else "too small"
            else:
                too = "too large" if diagnosis.direction == "exploding" else "too small"
            message = (
                f"{init.describe()}{where} is {too} for {len(units)} layers of this width ({lines_text(units)}): "
                f"{estimate_text(diagnosis, inits=False)}. Use a fan-aware init such as {recommended_init(units[0])}"
                f"{matched_text(diagnosis)}."
            )
            yield Finding(run_span(units), message, diagnosis_severity(diagnosis, options), diagnosis.estimate)
        yield from _recurrent(model, context)


def _recurrent(model: Model, context: RuleContext) -> Iterable[Finding]:
    """A recurrent init large enough that the gradient through time explodes over the known sequence."""
    for diagnosis, layer, found, steps in through_time_diagnoses(model, context):
        growth = diagnosis.estimate.log10_weight_ratio
        init = layer.recurrent_init
        assert init is not None
        if found.cell == "irnn":
            yield _identity_recurrence(diagnosis, layer, steps, context)
            continue
        default = ("the default U(±1/√H) or nn.init.orthogonal_ (gain 1)" if layer.framework == "torch" else
                   "the default recurrent_initializer='orthogonal' (gain 1)")
        forward = (" (ReLU: the forward pass grows by the same factor, the loss with it)" if found.cell == "relu"
                   else "")
        # Gated cells: the lower estimate the finding relies on, and the tied-weight one above it.
        per_step = (f"{found.decisive:.2f}–{found.gain:.2f}" if f"{found.decisive:.2f}" != f"{found.gain:.2f}"
                    else f"{found.gain:.2f}")
        least = "at least " if found.decisive < found.gain else ""
        message = (
            f"{init.describe()}{set_at(init.span)} on the recurrent weights of {layer.op}"
            f"{f' ({layer.name})' if layer.name else ''} is too large for {steps} time steps: "
            f"σ_rec² = H·Var(W_hh) = {found.sigma_rec2:.3g} per gate, so each step multiplies the gradient through "
            f"time by ≈{per_step}{forward} and the first steps get {least}≈{format_ratio(growth)}× the last "
            f"step's gradient at init. Use {default}."
        )
        yield Finding(layer.span, message, severity_for(growth, context.options), diagnosis.estimate)


def _identity_recurrence(diagnosis: Diagnosis, layer: Layer, steps: int, context: RuleContext) -> Finding:
    """A ReLU recurrence whose recurrent weights start as the identity: its state sums every input and bias."""
    init = layer.recurrent_init
    assert init is not None
    est = diagnosis.estimate
    rel, loss = est.log10_relative_grad or 0.0, est.log10_loss or 0.0
    default = ("the default U(±1/√H) or nn.init.orthogonal_ (gain 1)" if layer.framework == "torch" else
               "the default recurrent_initializer='orthogonal' (gain 1)")
    message = (
        f"{init.describe()}{set_at(init.span)} makes the ReLU recurrence of {layer.op}"
        f"{f' ({layer.name})' if layer.name else ''} the identity: over {steps} time steps each unit adds up its "
        f"inputs and its bias (a random walk that only grows), so the state reaching the output grows with T and "
        f"‖∂L/∂θ‖/‖θ‖ ≈ {format_ratio(rel)} at init (loss ≈ {format_ratio(loss)}, MSE to unit-variance targets). "
        f"Use {default}, or scale the identity below 1 and zero the biases."
    )
    return Finding(layer.span, message, severity_for(max(rel, loss), context.options), est)
