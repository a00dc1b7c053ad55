"""GRD018: a trained loss takes the log of a sigmoid/softmax output with no bound in between, which is -inf
(and its gradient NaN) once the model is confident enough for the probability to round to 0 in float32."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gradlint.model import Layer, LayerKind, Model, Node, output_activation
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Severity, Valid
from gradlint.training import LossSpec, LossUse

from ._shared import output_units

_SQUASH = frozenset({"sigmoid", "softmax"})
_WEIGHTED = frozenset({LayerKind.DENSE, LayerKind.CONV})

# float32 thresholds, measured in torch 2.13 (CPU) on log(softmax(z)) / log(sigmoid(z)) and their backward:
# softmax: a class its logit 103.98 below the largest has p = 0 exactly (exp(-103.98) rounds below the smallest
# subnormal, 1.4e-45): log(p) = -inf, and its term y * log(p) = 0 * (-inf) = NaN when it is not the target;
# the target's own gradient 1/p overflows once p < 2.9e-39, 88.73 below. sigmoid: sigmoid(z) is exactly 1 once
# z > 16.64, so 1 - p = 0 there; sigmoid(z) < 2.9e-39 (an inf gradient of log p) once z < -88.73.
SOFTMAX_ZERO_GAP = 103.98
UNDERFLOW_GAP = 88.73
SIGMOID_ONE = 16.64


def probability_argument(nodes: Sequence[Node]) -> tuple[Layer, float, float] | None:
    """The sigmoid/softmax whose output ``p`` a log's argument is, written as a·p + c, when only literal
    scales and shifts stand between (``p``, ``1 - p``, ``p + 1e-8``): (that layer, a, c). None when the path
    does not end in a squash, or anything else stands between (a clip, a shift or scale not a literal, a
    normalization, an unresolved call): what is not read is not judged."""
    a, c = 1.0, 0.0
    for node in reversed(nodes):
        if not isinstance(node, Layer):
            return None
        if node.kind == LayerKind.SCALE:
            if node.scale_value is None or node.op not in ("scale", "shift"):
                return None
            shift = node.shift_value if node.shift_value is not None else 0.0
            if node.op == "shift" and node.shift_value is None:
                return None
            # the layers after this one map its output v to a·v + c; this one maps u to s·u + shift
            a, c = a * node.scale_value, a * shift + c
            continue
        if node.kind == LayerKind.ACTIVATION or (node.kind in _WEIGHTED and node.activation is not None):
            return (node, a, c) if node.activation in _SQUASH else None
        return None
    return None


def _hazard(a: float, c: float) -> str | None:
    """Which end of (0, 1) takes the log's argument to 0: ``"zero"`` for log(a·p) (p → 0), ``"one"`` for
    log(a·(1 − p)) (p → 1); None when neither does (an epsilon keeps it off 0)."""
    if a == 0:
        return None
    if c == 0:
        return "zero"
    if abs(a + c) <= 1e-12 * max(abs(a), abs(c)):
        return "one"
    return None


def _fix(framework: str, act: str, end: str) -> str:
    argument = "1 - p" if end == "one" else "p"
    if framework == "tensorflow":
        stable = ("tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits)" if act == "softmax" else
                  "tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits)")
        return f"{stable} on the logits, or bound the probability: tf.log(tf.clip_by_value({argument}, 1e-10, 1.0))"
    if framework == "keras":
        stable = ("keras.losses.CategoricalCrossentropy(from_logits=True)" if act == "softmax" else
                  "keras.losses.BinaryCrossentropy(from_logits=True)")
        return (f"{stable} on a model without the output activation, or bound y_pred first: "
                f"y_pred = K.clip(y_pred, K.epsilon(), 1 - K.epsilon())")
    stable = ("F.cross_entropy(logits, target), or F.log_softmax(logits, dim=1) with F.nll_loss" if act == "softmax"
              else "F.binary_cross_entropy_with_logits(logits, target) (nn.BCEWithLogitsLoss), or F.logsigmoid")
    return f"{stable} on the logits, or bound the probability: torch.log(({argument}).clamp(min=1e-7))"


def _why(act: str, end: str) -> str:
    if act == "softmax" and end == "zero":
        return (f"softmax underflows in float32: a class whose logit is {SOFTMAX_ZERO_GAP:.0f} below the largest gets "
                f"p = 0 exactly, so log(p) = -inf and its term y·log(p) = 0·(-inf) = NaN; a target class "
                f"{UNDERFLOW_GAP:.0f} below already gets an inf gradient (1/p overflows)")
    if act == "softmax":
        return ("1 - softmax rounds to 0 in float32 once the class is confident (the other logits ≈17 below), "
                "so log(1 - p) = -inf and its gradient NaN")
    if end == "one":
        return (f"sigmoid(z) rounds to exactly 1 in float32 once z > {SIGMOID_ONE:.1f}, so log(1 - p) = -inf and "
                f"(1 - y)·log(1 - p) = 0·(-inf) = NaN for every confidently right positive example")
    return (f"sigmoid(z) underflows in float32 once z < -{UNDERFLOW_GAP:.0f} (p < 2.9e-39: 1/p overflows, then "
            f"p = 0 and log(p) = -inf), so y·log(p) turns NaN for a confident negative")


def _measured(act: str) -> str:
    if act == "softmax":
        return ("The loss is summed over the batch, so every step grows with the batch size: measured, a softmax "
                "regression summed over 100 examples at SGD 0.5 turned NaN after its first update (logit gaps "
                "225-267) where the same sum from the logits trained; averaged, the gaps stayed under 26")
    return ("Confident training gets there: measured, an MLP ending in a sigmoid with Adam 1e-3 turned NaN at step "
            "399-1028 (3 seeds) where BCEWithLogitsLoss trained on with logits up to 25")


def _message(what: str, model: str, act: str, end: str, framework: str) -> str:
    argument = "1 - p" if end == "one" else "p"
    return (f"{what} takes log({argument}) of {model}'s {act} probabilities p with no clip or epsilon: "
            f"{_why(act, end)}. {_measured(act)}; one NaN gradient makes every weight NaN. Use "
            f"{_fix(framework, act, end)}.")


class LogOfProbability(Rule):
    code = "GRD018"
    name = "log-of-probability"
    summary = ("A trained hand-written cross-entropy takes the log of a sigmoid/softmax output with no clip or "
               "epsilon: once the model is confident the probability rounds to 0 in float32, the loss is -inf and "
               "the gradient NaN.")
    what_it_does = """
Follows a model's output into a loss that is minimized or backpropagated (`opt.minimize(loss)`,
`loss.backward()`, `tape.gradient(loss, ...)`, a Keras `compile(loss=f)`) and reports a log taken of
a sigmoid/softmax probability with nothing between them but literal scales and shifts that still
reach 0: a hand-written binary cross-entropy `-(y * torch.log(p) + (1 - y) * torch.log(1 - p))` or
`tf.log(1 - out)` with `p` a sigmoid (`torch.sigmoid(z)`, a model ending in `nn.Sigmoid()`,
`tf.sigmoid`), `torch.log(torch.sigmoid(z))`, a Keras custom loss taking `K.log(y_pred)` or
`K.log(1 - y_pred)` of a sigmoid output; and a softmax's log in a loss summed over the batch, TF1's
`-tf.reduce_sum(y_ * tf.log(y))` with `y = tf.nn.softmax(...)`, `-torch.sum(t * torch.log(p))`.
A clip or epsilon before the log (`tf.clip_by_value(y, 1e-10, 1.0)`, `p.clamp(min=1e-7)`, `p + 1e-8`,
`K.epsilon()`), `log_softmax`, `F.logsigmoid` and the framework losses on logits are not reported;
neither is a softmax's log averaged over the batch (measured latent, below), a `torch.log(softmax(...))`
of a model's logits (GRD009's), nor a log whose argument extraction cannot read.
"""
    why_bad = f"""
In float32, softmax gives p = 0 exactly to a class whose logit is {SOFTMAX_ZERO_GAP} below the
largest (exp(−104) is under the smallest subnormal, 1.4e-45): log(p) = −inf, and the term
y·log(p) of a class that is not the target is 0·(−inf) = NaN, in the loss and in the gradient; a
target class {UNDERFLOW_GAP} below already gets an inf gradient (1/p overflows for p < 2.9e-39).
sigmoid(z) is exactly 1 for z > {SIGMOID_ONE}, so a hand-written binary cross-entropy's
(1 − y)·log(1 − p) is NaN for every positive example the model is sure of (and log(p) for
z < −{UNDERFLOW_GAP}). One NaN gradient makes every weight NaN. The stable forms compute the same
values from the logits (log-sum-exp) and stay finite at any confidence.

When it bites (float32, 3 seeds, 2000 steps of batch 100 on separable 10- or 2-class Gaussian data
with standardized features; fixtures/programs4_numerics, tools/measure_log_probability.py and
tools/sweep_log_probability.py): a TF1 softmax regression with `-tf.reduce_sum(y_ * tf.log(y))`
summed over the batch and SGD 0.5 turned NaN after its first update in 3/3 seeds (the logit gap
jumped to 225–267), while `softmax_cross_entropy_with_logits_v2`, summed alike, trained to a loss
of 1e-6. An MLP ending in a sigmoid with the hand-written binary cross-entropy averaged over the
batch and Adam 1e-3 turned NaN at step 399/1028/657, as its logits passed 16.6; `BCEWithLogitsLoss`
trained on with logits up to 25. Averaged over the batch, a softmax's log was harmless in every run
measured (a linear model with SGD 0.1/0.5 or Adam 1e-3/1e-2, a 2-hidden-layer MLP with SGD 0.1/0.5
or Adam 1e-3: logit gaps 13–26, far from 104): latent, and not reported. A softmax is reported only
when its loss is summed over the batch (a sum with no axis, not divided afterwards), in a Keras loss
never (Keras averages it). A sigmoid's is reported whatever the reduction, though a logistic
regression trained by SGD 0.1 stayed under 12 and trained as well as its twin: whether training
gets past 16.6 is not visible in the code.
"""
    formula = f"""
Structural: the log's argument is a·p + c with p a sigmoid/softmax output and c = 0 (p → 0) or
a + c = 0 (1 − p, p → 1); for a softmax, the loss is also summed over the batch. Thresholds
(float32): softmax p = 0 at a logit gap ≥ {SOFTMAX_ZERO_GAP}; 1/p overflows at a gap ≥ {UNDERFLOW_GAP};
sigmoid rounds to 1 at z ≥ {SIGMOID_ONE}.
"""
    fix = "No automatic fix: compute the loss from the logits (log-softmax / log-sigmoid), or clip the probability."

    VALID = [
        Valid("""
import tensorflow as tf
x = tf.placeholder(tf.float32, [None, 784])
y_ = tf.placeholder(tf.float32, [None, 10])
W = tf.Variable(tf.zeros([784, 10]))
b = tf.Variable(tf.zeros([10]))
logits = tf.matmul(x, W) + b
cross_entropy = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y_, logits=logits))
train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)
""", use_instead=True),
        Valid("""
import tensorflow as tf
x = tf.placeholder(tf.float32, [None, 784])
y_ = tf.placeholder(tf.float32, [None, 10])
W = tf.Variable(tf.zeros([784, 10]))
b = tf.Variable(tf.zeros([10]))
y = tf.nn.softmax(tf.matmul(x, W) + b)
cross_entropy = -tf.reduce_sum(y_ * tf.log(tf.clip_by_value(y, 1e-10, 1.0)))
train_step = tf.train.GradientDescentOptimizer(0.01).minimize(cross_entropy)
"""),
        Valid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 1), nn.Sigmoid())
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
eps = 1e-7
for x, y in loader:
    p = model(x)
    loss = -(y * torch.log(p + eps) + (1 - y) * torch.log(1 - p + eps)).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
"""),
        Valid("""
import torch
import torch.nn as nn
import torch.nn.functional as F

model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    loss = -(F.one_hot(y, 10) * F.log_softmax(model(x), dim=1)).sum(1).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
"""),
        Valid("""
from tensorflow import keras
from tensorflow.keras import backend as K


def xent(y_true, y_pred):
    y_pred = K.clip(y_pred, K.epsilon(), 1 - K.epsilon())
    return -K.sum(y_true * K.log(y_pred), axis=-1)


model = keras.Sequential([keras.layers.Dense(64, activation="relu", input_shape=(20,)),
                          keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss=xent)
"""),
        # A softmax's log averaged over the batch: measured latent (logit gaps 18-26 against 104; see why_bad).
        Valid("""
import torch
import torch.nn as nn
import torch.nn.functional as F

model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10), nn.Softmax(dim=1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    optimizer.zero_grad()
    loss = -torch.sum(F.one_hot(y, 10) * torch.log(model(x))) / x.size(0)
    loss.backward()
    optimizer.step()
"""),
        Valid("""
from tensorflow import keras
from tensorflow.keras import backend as K


def xent(y_true, y_pred):
    return -K.sum(y_true * K.log(y_pred), axis=-1)


model = keras.Sequential([keras.layers.Dense(64, activation="relu", input_shape=(20,)),
                          keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss=xent)
"""),
        # A log of a probability nobody differentiates (a metric) is not a loss.
        Valid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(20, 10), nn.Softmax(dim=1))
with torch.no_grad():
    for x, y in loader:
        entropy = -(model(x) * torch.log(model(x))).sum(1).mean()
"""),
    ]
    INVALID = [
        Invalid("""
import tensorflow as tf
x = tf.placeholder(tf.float32, [None, 784])
y_ = tf.placeholder(tf.float32, [None, 10])
W = tf.Variable(tf.zeros([784, 10]))
b = tf.Variable(tf.zeros([10]))
y = tf.nn.softmax(tf.matmul(x, W) + b)
cross_entropy = -tf.reduce_sum(y_ * tf.log(y))
train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)
""", line=7, message=r"tf\.log\(\.\.\.\) takes log\(p\) of .*softmax probabilities.*104 below.*"
                     r"softmax_cross_entropy_with_logits_v2", example=True),
        Invalid("""
import tensorflow as tf
x = tf.placeholder(tf.float32, [None, 20])
y_ = tf.placeholder(tf.float32, [None, 1])
h = tf.layers.dense(x, 32, activation=tf.nn.relu)
out = tf.sigmoid(tf.layers.dense(h, 1))
loss = -tf.reduce_mean(y_ * tf.log(out) + (1 - y_) * tf.log(1 - out))
train_op = tf.train.AdamOptimizer(1e-3).minimize(loss)
""", line=6, message=r"log\(1 - p\).*z > 16\.6.*sigmoid_cross_entropy_with_logits"),
        Invalid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 1), nn.Sigmoid())
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for x, y in loader:
    p = model(x)
    loss = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
""", line=8, message=r"log\(1 - p\) of model's sigmoid.*BCEWithLogitsLoss"),
        Invalid("""
import torch
import torch.nn as nn
import torch.nn.functional as F

model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10), nn.Softmax(dim=1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
for x, y in loader:
    optimizer.zero_grad()
    loss = -torch.sum(F.one_hot(y, 10) * torch.log(model(x)))
    loss.backward()
    optimizer.step()
""", line=9, message=r"torch\.log\(\.\.\.\) takes log\(p\) of model's softmax.*F\.cross_entropy"),
        Invalid("""
from tensorflow import keras
from tensorflow.keras import backend as K


def bce(y_true, y_pred):
    return -K.mean(y_true * K.log(y_pred) + (1 - y_true) * K.log(1 - y_pred), axis=-1)


model = keras.Sequential([keras.layers.Dense(64, activation="relu", input_shape=(20,)),
                          keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss=bce)
""", line=11, column=1, message=r"loss bce\(\) takes log\(1 - p\) of model.s sigmoid.*from_logits=True"),
    ]

    def check_training(self, context: RuleContext) -> Iterable[tuple[Finding, Model | None]]:
        facts = context.training
        if facts is None:
            return
        for use in facts.losses:
            if use.loss.name != "log" or use.loss.framework not in ("torch", "tensorflow"):
                continue
            model = context.model_by_id(use.model_id)
            if model is None:
                continue  # only when the data flow connects a model of this file to the log
            judged = [got for log in [use, *use.companions]
                      if (got := _judge(log, model, use.reduction == "sum")) is not None]
            if judged:
                yield min(judged, key=lambda pair: pair[0])[1], model  # the log that turns NaN first
        for model_id, (loss, _, span) in facts.compiled.items():
            model = context.model_by_id(model_id)
            if model is None or loss is None or loss.name != "log" or loss.function is None:
                continue
            found = probability_argument([*model.path, *loss.before_log])
            end = _hazard(found[1], found[2]) if found is not None else None
            # Keras averages a loss over the batch: a softmax's log measured latent then (see why_bad)
            if found is not None and end is not None and found[0].activation == "sigmoid":
                yield Finding(span, _message(f"the hand-written loss {loss.function}()", model.name, "sigmoid", end,
                                             "keras"), Severity.WARNING), model


def _judge(use: LossUse, model: Model, batch_sum: bool) -> tuple[float, Finding] | None:
    """The finding for one log of a hand-written loss, ranked by the logit at which it turns NaN (the lowest
    first: a sigmoid's log(1 - p) at 16.6 before its log(p) at -88.7). A softmax's only when the loss is summed
    over the batch (``batch_sum``): averaged, its logit gaps were measured far below 104 (see why_bad)."""
    found = probability_argument(use.prediction)
    if found is None:
        return None
    layer, a, c = found
    end = _hazard(a, c)
    act = layer.activation
    if end is None or act is None:
        return None
    nodes = list(use.prediction)
    if act == "softmax" and not batch_sum:
        return None
    if act == "softmax" and use.loss.framework == "torch" and output_activation(model.path) == "linear":
        return None  # torch.log(softmax(...)) of the model's logits in training code: GRD009 says use log_softmax
    if act == "softmax" and output_units(nodes[:next(i for i, n in enumerate(nodes) if n is layer) + 1]) == 1:
        return None  # a softmax over one unit is the constant 1 (GRD010's)
    spec: LossSpec = use.loss
    what = f"{'tf' if spec.framework == 'tensorflow' else 'torch'}.log(...)"
    rank = SIGMOID_ONE if act == "sigmoid" and end == "one" else UNDERFLOW_GAP
    return rank, Finding(use.span, _message(what, model.name, act, end, spec.framework), Severity.WARNING)
