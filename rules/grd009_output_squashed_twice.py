"""GRD009: a sigmoid/softmax output fed to a loss that applies it again (or logits to a loss wanting probabilities)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gradlint.model import Layer, LayerKind, Model, Node, output_activation
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Severity, Valid
from gradlint.training import (
    KERAS_PROBABILISTIC_LOSSES,
    TF_PROBABILITY_LOSSES,
    TORCH_PROBABILITY_LOSSES,
    LossSpec,
)

from ._shared import categorical_over_one_unit

_SQUASH = frozenset({"sigmoid", "softmax"})
# Output activations whose values are not probabilities: a Keras probability loss clips them into
# [ε, 1 − ε], and every output clipped (relu's zeros, tanh's negatives, anything above 1) passes no gradient.
# Losses that want log-probabilities (log_softmax); fed probabilities they compute −p, not −log p.
_LOG_PROBABILITY_LOSSES = frozenset({"NLLLoss", "nll_loss"})
_NOT_PROBABILITIES = frozenset({"relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "mish",
                                "softplus", "tanh", "exponential", "hard_swish"})
# Keras losses over a class distribution (from_logits=False: y_pred is renormalized to sum 1 over the classes).
_CATEGORICAL_LOSSES = frozenset({"categorical_crossentropy", "sparse_categorical_crossentropy",
                                 "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
                                 "categorical_focal_crossentropy", "CategoricalFocalCrossentropy"})


class OutputSquashedTwice(Rule):
    code = "GRD009"
    name = "output-squashed-twice"
    summary = ("The model's sigmoid/softmax output goes into a loss that applies sigmoid/softmax itself (or raw logits "
               "into a loss that expects probabilities).")
    what_it_does = """
Follows the model's output into the loss computed from it in the same file. Reports a
sigmoid/softmax output passed to `BCEWithLogitsLoss`, `CrossEntropyLoss`,
`F.binary_cross_entropy_with_logits`, `F.cross_entropy`, a Keras loss with
`from_logits=True`, or TensorFlow's `tf.nn.softmax_cross_entropy_with_logits(_v2)`,
`sigmoid_cross_entropy_with_logits` and `tf.losses.*_cross_entropy`; and a raw (linear) output
passed to a loss that expects probabilities — Keras `binary_crossentropy`/`categorical_crossentropy`
with `from_logits=False` (the default), `nn.BCELoss`, `tf.losses.log_loss`; a softmax/sigmoid output
passed to `nn.NLLLoss`/`F.nll_loss`, which want log-probabilities, and raw logits passed to them
(the loss is −x[target], unbounded below); or a hand-written
cross-entropy whose gradient is taken — `-tf.reduce_sum(y * tf.log(p))`, `-torch.sum(y * torch.log(p))`,
`-(y * p.log()).sum()`, `-(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()`,
`F.nll_loss(torch.log(p), y)`, a Keras `compile(loss=f)` whose `f(y_true, y_pred)` takes
`K.log(y_pred)` (run symbolically on the prediction). And `torch.log(softmax(logits))` where the training code applies
the softmax to a model's logits (use `log_softmax`). Also a Keras probability loss on an output
whose activation does not produce probabilities (`relu`, `tanh`, `elu`, `softplus`...), and the
same into `nn.BCELoss`; a sigmoid output over k ≥ 2 classes into a Keras categorical cross-entropy
(it wants a softmax distribution); and an output squashed twice in a row, in the model or between
the model and its loss (`Dense(k, activation="softmax")` then `Activation("softmax")`,
`nn.Sigmoid()` then `torch.sigmoid`). A model that itself ends in softmax/sigmoid, then a
hand-written log, is a correct cross-entropy and is not reported.
"""
    why_bad = """
Squashing twice flattens the gradient at the output: sigmoid(sigmoid(x)) lies in (0.5, 0.73),
so the loss can never be driven low and its gradient is scaled by sigmoid′ ≤ 1/4 on top of the
loss's own. Feeding logits to a probability loss is numerically unstable (log of values
outside (0, 1), clipping inside Keras) and trains the wrong objective.
"""
    fix = "No automatic fix."

    VALID = [
        # Multi-label: independent sigmoids with a binary cross-entropy; a binary head with BCELoss.
        Valid("""
from tensorflow import keras
import torch.nn as nn

model = keras.Sequential([keras.layers.Dense(128, activation="relu", input_shape=(300,)),
                          keras.layers.Dense(20, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy")
net = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())
criterion = nn.BCELoss()
for x, y in loader:
    criterion(net(x), y).backward()
"""),
        Valid("""
import torch
import torch.nn as nn
import torch.nn.functional as F

model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10), nn.Softmax(dim=1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    optimizer.zero_grad()
    loss = -(F.one_hot(y, 10) * torch.log(model(x))).sum(dim=1).mean()
    loss.backward()
    optimizer.step()
"""),
        Valid("""
import torch
import torch.nn as nn
import torch.nn.functional as F

model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    optimizer.zero_grad()
    F.nll_loss(F.log_softmax(model(x), dim=1), y).backward()
    optimizer.step()
"""),
        Valid("""
import tensorflow as tf
x = tf.placeholder(tf.float32, [None, 784])
y_ = tf.placeholder(tf.float32, [None, 10])
W = tf.Variable(tf.zeros([784, 10]))
b = tf.Variable(tf.zeros([10]))
logits = tf.matmul(x, W) + b
y = tf.nn.softmax(logits)
loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y_, logits=logits))
xent = tf.reduce_mean(-tf.reduce_sum(y_ * tf.log(y), axis=1))
train_step = tf.train.AdamOptimizer(1e-3).minimize(loss + xent)
"""),
        Valid("""
import torch.nn as nn

model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 1))  # logits: the loss applies the sigmoid
criterion = nn.BCEWithLogitsLoss()
for x, y in loader:
    loss = criterion(model(x), y)
    loss.backward()
""", use_instead=True),
        Valid("""
import torch.nn as nn

model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10), nn.LogSoftmax(dim=1))
criterion = nn.NLLLoss()
for x, y in loader:
    criterion(model(x), y).backward()
"""),
        Valid("""
from tensorflow import keras
model = keras.Sequential([keras.layers.Dense(10, input_shape=(8,))])
model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer="adam")
"""),
    ]
    INVALID = [
        Invalid("""
from keras.models import Sequential
from keras.layers import Dense, Activation

model = Sequential()
model.add(Dense(64, input_dim=20, activation="relu"))
model.add(Dense(5, activation="softmax"))
model.add(Activation("softmax"))
model.compile(loss="categorical_crossentropy", optimizer="adam")
""", line=7, message=r"through softmax \(Dense at line 6\) and then through softmax again"),
        Invalid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1), nn.ReLU())
criterion = nn.BCELoss()
for x, y in loader:
    criterion(model(x), y).backward()
""", line=7, message=r"BCELoss expects probabilities in \[0, 1\] but receives model's relu output"),
        Invalid("""
from keras.models import Sequential
from keras.layers import Dense

model = Sequential([Dense(128, activation="relu", input_shape=(784,)), Dense(10, activation="sigmoid")])
model.compile(loss="categorical_crossentropy", optimizer="adam")
""", line=5, message=r"categorical_crossentropy expects a distribution over the classes \(softmax\)"),
        Invalid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(784, 256), nn.LeakyReLU(0.2), nn.Linear(256, 1), nn.Sigmoid())
criterion = nn.BCELoss()
for x, y in loader:
    criterion(torch.sigmoid(model(x)), y).backward()
""", line=7, message=r"through sigmoid \(Sigmoid at line 4\) and then through sigmoid again"),
        Invalid("""
from tensorflow import keras

model = keras.Sequential([keras.Input(shape=(100,)), keras.layers.Dense(64, activation="relu"),
                          keras.layers.Dense(10, activation="relu")])
model.compile(loss="categorical_crossentropy", optimizer="sgd")
""", line=5, message=r"last layer uses relu, whose outputs are not probabilities"),
        Invalid("""
from tensorflow import keras
from tensorflow.keras import backend as K


def xent(y_true, y_pred):
    return -K.sum(y_true * K.log(y_pred), axis=-1)


model = keras.Sequential([keras.layers.Dense(64, activation="relu", input_shape=(20,)), keras.layers.Dense(10)])
model.compile(optimizer="adam", loss=xent)
""", line=10, column=1, message=r"the hand-written loss xent\(\) takes the log of y_pred"),
        Invalid("""
import torch
import torch.nn as nn
import torch.nn.functional as F

model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    optimizer.zero_grad()
    loss = -torch.sum(F.one_hot(y, 10) * torch.log(model(x)))
    loss.backward()
    optimizer.step()
""", line=9, message=r"torch\.log\(\.\.\.\) in this hand-written cross-entropy expects.*F\.cross_entropy"),
        Invalid("""
import torch
import torch.nn as nn
import torch.nn.functional as F

model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    optimizer.zero_grad()
    loss = F.nll_loss(torch.log(F.softmax(model(x), dim=1)), y)
    loss.backward()
    optimizer.step()
""", line=9, message=r"numerically unstable.*F\.log_softmax"),
        Invalid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10), nn.Softmax(dim=1))
criterion = nn.NLLLoss()
for x, y in loader:
    loss = criterion(model(x), y)
    loss.backward()
""", line=7, column=12, message=r"NLLLoss expects log-probabilities but receives model's softmax output"),
        Invalid("""
import tensorflow as tf
x = tf.placeholder(tf.float32, [None, 784])
y_ = tf.placeholder(tf.float32, [None, 10])
W = tf.Variable(tf.zeros([784, 10]))
b = tf.Variable(tf.zeros([10]))
y = tf.nn.softmax(tf.matmul(x, W) + b)
loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=y))
train_step = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
""", line=7, message=r"softmax_cross_entropy_with_logits applies softmax itself"),
        Invalid("""
import tensorflow as tf
x = tf.placeholder(tf.float32, [None, 784])
y_ = tf.placeholder(tf.float32, [None, 10])
W = tf.Variable(tf.zeros([784, 10]))
b = tf.Variable(tf.zeros([10]))
logits = tf.matmul(x, W) + b
loss = tf.reduce_mean(-tf.reduce_sum(y_ * tf.log(logits), axis=1))
train_step = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
""", line=7, message=r"tf\.log\(\.\.\.\) in this cross-entropy expects probabilities"),
        Invalid("""
import tensorflow.compat.v1 as tf
x = tf.placeholder(tf.float32, [None, 20])
y_ = tf.placeholder(tf.float32, [None, 1])
h = tf.layers.dense(x, 32, activation=tf.nn.relu)
p = tf.layers.dense(h, 1, activation=tf.nn.sigmoid)
loss = tf.losses.sigmoid_cross_entropy(multi_class_labels=y_, logits=p)
""", line=6, message=r"sigmoid_cross_entropy applies sigmoid itself"),
        Invalid("""
import torch.nn as nn

model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
criterion = nn.NLLLoss()
for x, y in loader:
    loss = criterion(model(x), y)
    loss.backward()
""", line=6, column=12, message=r"NLLLoss expects log-probabilities but receives model's raw output"),
        Invalid("""
import torch.nn as nn

model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 1), nn.Sigmoid())
criterion = nn.BCEWithLogitsLoss()
for x, y in loader:
    loss = criterion(model(x), y)
    loss.backward()
""", line=6, column=12, message=r"BCEWithLogitsLoss applies sigmoid itself", example=True),
        Invalid("""
from tensorflow import keras
model = keras.Sequential([keras.layers.Dense(64, activation="relu", input_shape=(8,)),
                          keras.layers.Dense(1)])
model.compile(loss="binary_crossentropy", optimizer="adam")
""", line=4, column=1, message=r"binary_crossentropy expects probabilities \(from_logits=False\)"),
    ]

    def check_training(self, context: RuleContext) -> Iterable[tuple[Finding, Model | None]]:
        facts = context.training
        if facts is None:
            return
        for use in facts.losses:
            model = context.model_by_id(use.model_id)
            if model is None:
                continue  # only when the data flow connects a model of this file to the loss
            if use.loss.framework == "keras" and categorical_over_one_unit(use.loss.name, use.prediction):
                continue  # a dead output, GRD010's
            act = output_activation(use.prediction)
            spec = use.loss
            if spec.from_logits and act in _SQUASH:
                yield Finding(use.span, (
                    f"{spec.name} applies {'sigmoid' if _applies_sigmoid(spec.name) else 'softmax'} "
                    f"itself, but {model.name}'s output already went through {act}: the output is squashed twice "
                    f"and its gradient flattened. Drop the final {act} and feed logits."), Severity.WARNING), model
            elif spec.name in TORCH_PROBABILITY_LOSSES and act == "linear":
                yield Finding(use.span, (
                    f"{spec.name} expects probabilities but receives {model.name}'s raw output (no sigmoid): use "
                    f"BCEWithLogitsLoss on the logits, which is also numerically stable."), Severity.WARNING), model
            elif spec.name in TORCH_PROBABILITY_LOSSES and act in _NOT_PROBABILITIES:
                yield Finding(use.span, (
                    f"{spec.name} expects probabilities in [0, 1] but receives {model.name}'s {act} output, whose "
                    f"values are not probabilities: outside [0, 1] the loss is undefined, and at 0 it takes log(0), "
                    f"clamped, with no useful gradient. End the model in sigmoid, or drop the {act} and use "
                    f"BCEWithLogitsLoss on the logits."), Severity.WARNING), model
            elif spec.framework == "torch" and spec.name in _LOG_PROBABILITY_LOSSES and act in _SQUASH:
                yield Finding(use.span, (
                    f"{spec.name} expects log-probabilities but receives {model.name}'s {act} output "
                    f"(probabilities): the loss is −p instead of −log p, its gradient at init is about 1/(number "
                    f"of classes) of the cross-entropy's (measured: 0.09 at 10 classes, 1e-3 at 1000) and it "
                    f"vanishes where a wrong class is confident. End the model in log_softmax (nn.LogSoftmax), or "
                    f"return logits and use CrossEntropyLoss."), Severity.WARNING), model
            elif spec.framework == "torch" and spec.name in _LOG_PROBABILITY_LOSSES and act == "linear":
                yield Finding(use.span, (
                    f"{spec.name} expects log-probabilities but receives {model.name}'s raw output (no "
                    f"log_softmax): the loss is −x[target], unbounded below, and its gradient is the constant −1/N "
                    f"at the target whatever the other outputs, so the logits grow without limit instead of "
                    f"learning a distribution. End the model in log_softmax (nn.LogSoftmax), or use "
                    f"CrossEntropyLoss on the logits."), Severity.WARNING), model
            elif spec.framework == "keras" and spec.name in KERAS_PROBABILISTIC_LOSSES and not spec.from_logits \
                    and act == "linear":
                yield Finding(use.span, (
                    f"{spec.name} expects probabilities (from_logits=False) but receives {model.name}'s raw output "
                    f"(no activation): pass from_logits=True (numerically stable) or add "
                    f"{'sigmoid' if 'binary' in spec.name.lower() else 'softmax'} to the output."),
                    Severity.WARNING), model
            elif spec.framework == "keras" and spec.name in KERAS_PROBABILISTIC_LOSSES and not spec.from_logits \
                    and act in _NOT_PROBABILITIES:
                yield Finding(use.span, _not_probabilities(spec.name, model.name, act), Severity.WARNING), model
            elif spec.framework == "keras" and _sigmoid_into_categorical(spec, act, use.prediction):
                yield Finding(use.span, _sigmoid_categorical(spec.name, model.name), Severity.WARNING), model
            elif spec.framework == "torch" and spec.name == "log" and act == "linear":
                binary = _output_width(use.prediction) == 1
                fix = ("F.binary_cross_entropy_with_logits(logits, target) (nn.BCEWithLogitsLoss)" if binary else
                       "F.cross_entropy(logits, target) (log-softmax and NLL in one)")
                yield Finding(use.span, (
                    f"torch.log(...) in this hand-written cross-entropy expects probabilities but receives "
                    f"{model.name}'s raw output (no softmax/sigmoid): the log of logits is NaN for every negative "
                    f"one and the loss is not a likelihood. Use {fix} on the logits, which is also numerically "
                    f"stable."), Severity.WARNING), model
            elif spec.framework == "torch" and spec.name == "log" and act == "softmax" \
                    and output_activation(model.path) == "linear":
                yield Finding(use.span, (
                    f"torch.log(softmax(...)) of {model.name}'s logits is numerically unstable: in float32 a "
                    f"target logit 90 below the largest already gives an inf/NaN gradient (104: log(0) = -inf "
                    f"loss). Use F.log_softmax(logits, dim=...) with F.nll_loss, or F.cross_entropy on the "
                    f"logits."),
                    Severity.WARNING), model
            elif spec.framework == "tensorflow" and spec.name in TF_PROBABILITY_LOSSES and act == "linear":
                what = "tf.log(...) in this cross-entropy" if spec.name == "log" else spec.name
                yield Finding(use.span, (
                    f"{what} expects probabilities but receives {model.name}'s raw output (no softmax/sigmoid): "
                    f"pass the logits to tf.nn.softmax_cross_entropy_with_logits_v2 (or "
                    f"sigmoid_cross_entropy_with_logits), which is also numerically stable."), Severity.WARNING), model
            elif (pair := double_squash(use.prediction)) is not None and double_squash(model.path) is None:
                # Squashed again between the model and the loss (the model's own double squash is check's).
                yield Finding(use.span, _squashed_twice(model.name, *pair), Severity.WARNING), model
        for model_id, (loss, _, span) in facts.compiled.items():
            model = context.model_by_id(model_id)
            if model is None or loss is None or categorical_over_one_unit(loss.name, model.path):
                continue  # (the last: a dead output, GRD010's; neither from_logits nor a softmax would help)
            act = output_activation(model.path)
            if loss.from_logits and act in _SQUASH:
                yield Finding(span, (
                    f"loss {loss.name}(from_logits=True) applies {act} itself, but {model.name}'s last layer already "
                    f"uses {act}: the output is squashed twice. Remove the output activation or set "
                    f"from_logits=False."), Severity.WARNING), model
            elif loss.function is not None and loss.name == "log" and act == "linear":
                yield Finding(span, (
                    f"the hand-written loss {loss.function}() takes the log of y_pred, but {model.name}'s last layer "
                    f"has no activation, so y_pred are logits: the log of a negative logit is NaN and the loss is not "
                    f"a likelihood. Add softmax (or sigmoid) to the output layer, or use "
                    f"keras.losses.CategoricalCrossentropy(from_logits=True)."), Severity.WARNING), model
            elif loss.name in KERAS_PROBABILISTIC_LOSSES and not loss.from_logits and act == "linear":
                yield Finding(span, (
                    f"loss {loss.name} expects probabilities (from_logits=False) but {model.name}'s last layer has no "
                    f"activation, so it outputs logits: pass from_logits=True (numerically stable) or add "
                    f"{'sigmoid' if 'binary' in loss.name.lower() else 'softmax'} to the output."),
                    Severity.WARNING), model
            elif loss.name in KERAS_PROBABILISTIC_LOSSES and not loss.from_logits and act in _NOT_PROBABILITIES:
                yield Finding(span, _not_probabilities(loss.name, model.name, act), Severity.WARNING), model
            elif _sigmoid_into_categorical(loss, act, model.path):
                yield Finding(span, "loss " + _sigmoid_categorical(loss.name, model.name), Severity.WARNING), model

    def check(self, model: Model, context: RuleContext) -> Iterable[Finding]:
        pair = double_squash(model.path)
        if pair is not None:
            yield Finding(pair[0].span, _squashed_twice(model.name, *pair), Severity.WARNING)


def double_squash(nodes: Sequence[Node]) -> tuple[Layer, Layer] | None:
    """The path's last squash and the squash right before it (only dropout between them), when the path
    ends in sigmoid/softmax twice: ``Dense(k, activation="softmax")`` then ``Activation("softmax")``,
    ``nn.Sigmoid()`` then ``torch.sigmoid``. None when it does not, or when a node between is not a layer."""
    found: list[Layer] = []
    for node in reversed(nodes):
        if not isinstance(node, Layer):
            return None
        if node.kind == LayerKind.DROPOUT:
            continue
        fused = node.kind in (LayerKind.DENSE, LayerKind.CONV)
        if node.kind == LayerKind.ACTIVATION or fused:
            if node.activation not in _SQUASH:
                return None
            found.append(node)
            if len(found) == 2:
                return found[0], found[1]
            if fused:
                return None  # the weight layer before the first squash: a single squash
            continue
        return None
    return None


def _squashed_twice(model: str, outer: Layer, inner: Layer) -> str:
    again = outer.activation
    band = "into (0.5, 0.73)" if again == "sigmoid" else "close to the uniform distribution"
    return (f"{model}'s output goes through {inner.activation} ({inner.describe()}) and then through {again} again "
            f"({outer.describe()}): the second {again} sees values in (0, 1) only, so its output is squeezed "
            f"{band}, the loss cannot be driven down, and the gradient is scaled by the second {again}'s "
            f"derivative on top of the first's. Keep one {inner.activation} (or none, with a from_logits loss).")


def _sigmoid_into_categorical(loss: LossSpec, act: str | None, nodes: Sequence[Node]) -> bool:
    """A Keras categorical cross-entropy (from_logits=False) on a sigmoid output over k ≥ 2 classes."""
    if act != "sigmoid" or loss.from_logits or loss.name not in _CATEGORICAL_LOSSES:
        return False
    width = _output_width(nodes)
    return width is not None and width >= 2


def _sigmoid_categorical(loss: str, model: str) -> str:
    return (f"{loss} expects a distribution over the classes (softmax), but {model}'s last layer uses sigmoid: "
            f"the independent sigmoids are renormalized by their sum, and a wrong class whose sigmoid saturates "
            f"near 1 passes almost no gradient (σ′ → 0) where softmax would push it down with its full "
            f"probability. Use softmax on the output layer (or no activation and from_logits=True); sigmoid "
            f"outputs go with binary_crossentropy (multi-label).")


def _not_probabilities(loss: str, model: str, act: str) -> str:
    squash = "sigmoid" if "binary" in loss.lower() else "softmax"
    return (f"loss {loss} expects probabilities (from_logits=False) but {model}'s last layer uses {act}, whose "
            f"outputs are not probabilities: Keras clips them into [ε, 1 − ε], and every output clipped passes no "
            f"gradient. Use {squash} on the output layer (or no activation and from_logits=True).")


def _output_width(nodes: Sequence[Node]) -> int | None:
    """The output width of the last weight layer on a path, when known."""
    for node in reversed(nodes):
        if isinstance(node, Layer) and node.has_weight:
            return node.fan_out
    return None


def _applies_sigmoid(loss: str) -> bool:
    return "BCE" in loss or "binary" in loss or "sigmoid" in loss
