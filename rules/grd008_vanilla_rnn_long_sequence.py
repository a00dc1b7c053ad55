"""GRD008: a plain tanh RNN over a sequence long enough for the gradient through time to vanish."""

from __future__ import annotations

import math
from collections.abc import Iterable

from gradlint.analysis.estimation import recurrent_step_gain
from gradlint.estimate import Estimate, format_ratio
from gradlint.model import Layer, LayerKind, Model
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Severity, Valid

from ._shared import long_sequence_steps, reads_every_step, recurrent_estimate, unclipped_long_recurrence


class VanillaRnnLongSequence(Rule):
    code = "GRD008"
    name = "vanilla-rnn-long-sequence"
    summary = "A plain (Elman) tanh RNN over a statically known long sequence: the gradient through time vanishes."
    what_it_does = """
Finds `nn.RNN` / Keras `SimpleRNN` / TF 1.x `BasicRNNCell` layers whose sequence length is known
from the code (a Keras `Input(shape=(T, F))` or `input_shape=(T, F)`, a TF `placeholder([None, T, F])`
into `tf.nn.dynamic_rnn`/`static_rnn`), estimates the gradient's gain per time
step at the recurrence's fixed point, and reports when the gradient from the last step back
to the first falls below 1/1000. A recurrence whose output at every step reaches the loss is not
reported: a hand-stepped `nn.RNNCell` whose per-step outputs the forward stacks
(`outs.append(self.fc(h))` ... `torch.stack(outs, 1)`), an `nn.RNN` whose output sequence reaches
the model's output through per-step layers, elementwise functions, dropout or a reduction over time
only (`self.fc(out)`, `self.fc(torch.relu(out))`, `self.fc(out.mean(1))`, `out.max(1)[0]`; not
`out[:, -1]`, `out.narrow(...)`, `h_n`), a
Keras layer with `return_sequences=True`
followed by no other recurrence (and nothing unknown) on the way to the output. Each step's input
then gets a gradient of its own from its step's output (measured, default inits: ‖∂L/∂x_1‖/‖∂L/∂x_T‖
≈ 1.3 over 60 steps of an `nn.RNNCell`, 1.1–1.2 over 60 of an `nn.RNN` mean-, sum- or max-pooled over
time, ≈ 1.5 over 200 of a `SimpleRNN`, against 6.3e-16 and an
underflow to 0 when only the last step is read).
"""
    why_bad = """
Each step multiplies the backward signal by W_hhᵀ·diag(tanh′): with the default recurrent init
that is about 0.6–0.75 per step, so after 30 steps the first inputs get ~1e-4 of the gradient
of the last ones and the network cannot learn long-range dependencies. LSTM and GRU add a
gated additive path that keeps the gradient through time.
"""
    formula = """
Per-step gain √χ = √(σ_rec²·E[tanh′(√q z)²]) at the fixed point q = σ_rec²·E[tanh(√q z)²] + σ_in²
(σ_rec² = 1 for Keras' orthogonal recurrent init, 1/3 for PyTorch's U(±1/√h), 2H/(F + 2H) for a TF
cell's one glorot kernel over input and state); over T steps the
gradient scales by (√χ)^T. Reported when that is below 10^vanishing-log10 (−3).
"""
    fix = "No automatic fix."

    VALID = [
        Valid("""
from tensorflow import keras

inputs = keras.Input(shape=(200, 16))
hidden = keras.layers.LSTM(64)(inputs)
model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
""", use_instead=True),
        Valid("""
from tensorflow import keras
model = keras.Sequential([keras.layers.SimpleRNN(32, input_shape=(8, 4)), keras.layers.Dense(1)])
"""),
    ]
    INVALID = [
        Invalid("""
from tensorflow import keras

inputs = keras.Input(shape=(200, 16))
hidden = keras.layers.SimpleRNN(64)(inputs)
model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
""", line=4, column=10, message=r"SimpleRNN over 200 time steps", example=True),
    ]

    def check(self, model: Model, context: RuleContext) -> Iterable[Finding]:
        facts = context.training
        if facts is None or model.origin_id not in facts.sequence_lengths:
            return
        steps = facts.sequence_lengths[model.origin_id]
        # Trained here without clipping over a long sequence: GRD007 reports the layer, with this estimate.
        exploding = unclipped_long_recurrence(model, context, long_sequence_steps(context.options)) \
            if context.runs("GRD007") else None
        layers = list(model.layers())
        for index, layer in enumerate(layers):
            if exploding is not None and layer is exploding[0]:
                continue
            if layer.kind != LayerKind.RECURRENT or layer.op not in ("SimpleRNN", "RNN", "RNNCell", "BasicRNNCell"):
                continue
            if layer.activation not in (None, "tanh"):
                continue
            if reads_every_step(layer, layers[index + 1:]):
                continue  # each step's output reaches the loss: the first steps get their own gradient
            sigma_rec2 = 1.0 if layer.framework == "keras" else 1.0 / 3.0
            gain = recurrent_step_gain("tanh", sigma_rec2, 1.0)
            found = recurrent_estimate(model, layer)
            if found is not None and found.cell == "tanh":
                sigma_rec2, gain = found.sigma_rec2, found.gain
            elif not _default_recurrent_init(layer):
                continue  # a recurrent init set by hand that cannot be estimated: nothing
            log10_total = steps * math.log10(gain)
            if log10_total > context.options.vanishing_log10:
                continue
            # through time, first step to last: not the layer-to-layer ratio the dynamic check measures
            # at init, so no ``verdict`` it would confirm or deny
            estimate = Estimate(log10_total, log10_total, steps, False,
                                [f"recurrent init σ_rec²={sigma_rec2:.2g}, input variance 1 per step"],
                                per_layer_gain=gain, criterion="through_time")
            message = (f"{layer.op} over {steps} time steps: each step passes on ≈{gain:.2f} of the gradient, so the "
                       f"first steps get ≈ {format_ratio(log10_total)} of the gradient of the last. Use "
                       f"{'LSTMCell or GRUCell' if layer.op.endswith('RNNCell') else 'LSTM or GRU'} "
                       f"(gated, additive memory), "
                       f"or shorten the sequences.")
            yield Finding(layer.span, message, Severity.WARNING, estimate)


def _default_recurrent_init(layer: Layer) -> bool:
    """The framework's own recurrent init (torch U(±1/√H), Keras orthogonal with gain 1)."""
    init = layer.recurrent_init
    if init is None:
        return False
    if init.scheme == "torch_rnn_default":
        return True
    return layer.framework == "keras" and init.scheme == "orthogonal" and init.span is None
