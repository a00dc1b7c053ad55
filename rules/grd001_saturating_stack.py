"""GRD001: a stack of sigmoid/tanh-family layers deep enough to starve the early layers."""

from __future__ import annotations

from collections.abc import Iterable

from gradlint.analysis.inits import describe_inits
from gradlint.analysis.triage import diagnoses_for
from gradlint.model import Model
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Valid

from ._shared import activations_text, diagnosis_severity, path_text, quantity_text, run_span

# Saturating activations whose outputs have mean ½: they give the next layer fixed per-unit offsets
# that LayerNorm (per sample, over features) keeps and BatchNorm (per unit, over the batch) removes.
# Measured: 14 × Linear → LayerNorm → Sigmoid, ratio 1.8e-7; the BatchNorm1d twin, 0.12.
_NONZERO_MEAN = frozenset({"sigmoid", "hard_sigmoid"})


class SaturatingActivationStack(Rule):
    code = "GRD001"
    name = "saturating-activation-stack"
    summary = ("Consecutive sigmoid/tanh layers with no normalization or residual path shrink the gradient "
               "geometrically.")
    what_it_does = """
Finds stacks of weight layers (Linear, Dense, Conv) whose activation squashes — sigmoid, tanh,
hard_sigmoid, softsign, hardtanh — on the model's main path whose gradient vanishes: with no
normalization or residual connection between them, or with a normalization that does not
rescue them (LayerNorm between sigmoid layers keeps the per-unit offsets of their mean-½
outputs), also when they alternate with other layers (sigmoid, ReLU, sigmoid, ...). A softmax
inside the network over a Dense/Linear layer's own units (`Dense(64, activation="softmax")`,
`Activation("softmax")` after a Dense, `nn.Softmax(dim=1)` after a `Linear` on flat inputs) counts
too: per unit it is sigmoid(u − ln(k − 1)), which passes on about 1/k of the gradient (6 such
Dense(64) layers measured 3.3e-10, 3 of them 4.5e-5; 4 torch Linear(64) + Softmax 1.4e-7). It
estimates, from the layers' init, width and norms, how much smaller the weight gradient of the
first layer is than that of the last (or how small the first layer's gradient is relative to
its weights) and reports the stack when that attenuation exceeds 1000× (or 1e-7).

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
One end-to-end mean-field propagation over the model's main path at init (the static twin of
one forward/backward pass on N(0, 1) input, MSE to N(0, 1) targets, batch 128, train mode),
split only at what it cannot see through (unresolved calls, recurrent and attention layers).
Per weight layer: σ_w² = fan_in·Var(W); forward, the second moment q_l = σ_w²·m_{l-1} + σ_b² of the
pre-activations, the share of it two examples have in common (per-unit offsets: biases, and
σ_w²·μ² from an activation of mean μ), and the stream's mean; BatchNorm removes the offsets,
LayerNorm/RMSNorm keep them, residual sums add variances, gates multiply, a branch scale
(ReZero, layer scale, SkipInit) or a zero-initialised last branch layer multiplies the branch.
Backward: ‖δ‖² per example from the MSE gradient, times χ_l = σ_w²·E[φ′(√q_l z)²] per layer
(over the variance a norm divides by), with the coherence of δ across the batch.
‖∂L/∂W_l‖² ≈ B·‖δ_l‖²·fan_in·m_{l-1}·(1 + (B−1)·ρ_δ·ρ_x); ‖W_l‖² = fan_out·σ_w².

The verdict uses the measurement protocol's three quantities, in its order:
(b) the loss at init > 1e6, or float32 overflow → exploding;
(c) ‖∂L/∂θ‖/‖θ‖ > 1e2 → exploding;
(a) the weight-gradient ratio first/last ≤ 10^vanishing-log10 (default −3) → vanishing;
(c) the first weight layer's ‖∂L/∂W‖/‖W‖ < 1e-7 (frozen: below Adam's ε) → vanishing (for a
    sigmoid/softmax head, with the cross-entropy gradient at the logits);
(a) the ratio ≥ 10^exploding-log10 (default 3; 1e4 on batch-normalized paths) → exploding.
This rule reports vanishing where sigmoid/tanh-family layers are at least half of the path's
weight layers or cause at least half of its attenuation. Severity error at a ratio beyond
10^±error-log10 (default 6), a frozen layer below 1e-10, a loss ≥ 1e12 or inf/NaN.
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
        self.blocks = nn.Sequential(*[nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                                                    SE(32)) for _ in range(8)])
    def forward(self, x):
        return self.blocks(x)
"""),
    ]
    INVALID = [
        Invalid("""
import tensorflow as tf
x = tf.placeholder(tf.float32, [None, 64])
net = x
for i in range(10):
    net = tf.layers.dense(net, 128, activation=tf.nn.sigmoid)
logits = tf.layers.dense(net, 1)
""", line=5, message=r"10 stacked sigmoid layers"),
        Invalid("""
import tensorflow as tf
from tensorflow import keras

class SigmoidDense(keras.layers.Layer):
    def __init__(self, units):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros")

    def call(self, x):
        return tf.nn.sigmoid(tf.matmul(x, self.w) + self.b)

model = keras.Sequential([keras.Input(shape=(64,))] + [SigmoidDense(64) for _ in range(8)])
""", line=14, message=r"8 stacked sigmoid layers"),
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
        # Sigmoid and ReLU alternating: no two sigmoid layers are adjacent (measured ratio 5e-12).
        Invalid("""
import torch.nn as nn
layers = []
for i in range(17):
    layers += [nn.Linear(128, 128), nn.Sigmoid() if i % 2 == 0 else nn.ReLU()]
model = nn.Sequential(*layers, nn.Linear(128, 1))
""", line=4, column=16, message=r"18 weight layers, 9 of them sigmoid"),
        # LayerNorm between sigmoid layers does not rescue them (measured ratio 5.6e-7, BatchNorm: 0.13).
        Invalid("""
import torch.nn as nn
blocks = []
for i in range(14):
    blocks += [nn.Linear(128, 128), nn.LayerNorm(128), nn.Sigmoid()]
model = nn.Sequential(*blocks, nn.Linear(128, 1))
""", line=4, column=16, message=r"replace LayerNorm by BatchNorm"),
    ]

    def check(self, model: Model, context: RuleContext) -> Iterable[Finding]:
        options = context.options
        for diagnosis in diagnoses_for(model, self.code, options.vanishing_log10, options.exploding_log10,
                                       options.frozen_log10):
            units, estimate = diagnosis.units, diagnosis.estimate
            every = diagnosis.all_units
            first, last = units[0].layer, units[-1].layer
            acts = sorted({u.activation for u in units})
            # (√χ of the weight layers: a hidden softmax's own ≈1/width is not in it; its advice says so)
            gain = (f"; each layer passes on ≈{estimate.per_layer_gain:.2g} of the gradient"
                    if estimate.per_layer_gain and "softmax" not in acts else "")
            path = path_text(diagnosis)
            sigmoid_like = bool(set(acts) & _NONZERO_MEAN)
            if "LayerNorm" in path and sigmoid_like:
                norms = ("replace LayerNorm by BatchNorm (LayerNorm keeps the per-unit offsets of sigmoid outputs "
                         "and does not rescue them)")
            elif sigmoid_like:
                norms = ("add BatchNorm (not LayerNorm: it keeps the per-unit offsets of sigmoid outputs) "
                         "between the layers")
            else:
                norms = "add BatchNorm/LayerNorm between the layers"
            body = every[:-1] if len(every) > 1 and every[-1].activation == "linear" else every  # minus a linear head
            what = (f"{len(units)} stacked {'/'.join(acts)} layers" if len(units) >= len(body) else
                    f"{len(every)} weight layers, {len(units)} of them {'/'.join(acts)},")
            lines = (f"line {first.span.line}" if first.span.line == last.span.line
                     else f"line {first.span.line} to line {last.span.line}")  # a loop builds them on one line
            fix = (f"Use ReLU-family activations with He init, or {norms}, or residual connections"
                   if "softmax" not in acts else
                   "Use softmax only on the output layer (inside the network it passes on about 1/width of the "
                   "gradient at each layer) and ReLU-family activations with He init in the hidden layers")
            message = (
                f"{what} {path} ({lines}): "
                f"{quantity_text(diagnosis)} ({activations_text(every)}, {describe_inits(every)}){gain}. {fix}."
            )
            yield Finding(run_span(units), message, diagnosis_severity(diagnosis, options), estimate)
