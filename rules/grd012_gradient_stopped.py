"""GRD012: a gradient stop on the model's path (``x.detach()``, ``torch.no_grad()``, ``tf.stop_gradient``)
that leaves weight layers with no gradient at all."""

from __future__ import annotations

from collections.abc import Iterable

from gradlint.analysis.cuts import Cut, gradient_cuts
from gradlint.estimate import Estimate, no_gradient
from gradlint.model import WEIGHT_KINDS, Layer, LayerKind, Model, Span, iter_layers
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Severity, Valid
from gradlint.training import TrainingFacts

from ._shared import models_feeding
from ._shared import trained_layers as path_weight_layers

# How each stop is spelled, for the message (the op as extraction records it).
_SPELLED = {
    "detach": "`.detach()`",
    "detach_": "`.detach_()`",
    "data": "`.data`",
    "no_grad": "a `torch.no_grad()` block",
    "no_grad_method": "a `@torch.no_grad()` decorator",
    "inference_mode_method": "a `@torch.inference_mode()` decorator",
    "numpy": "a `.numpy()` round trip",
    "tolist": "a `.tolist()` round trip",
    "item": "an `.item()` round trip",
    "float": "a `float(...)` round trip",
    "int": "an `int(...)` round trip",
    "tensor": "a `torch.tensor(...)` copy",
    "Tensor": "a `torch.Tensor(...)` copy",
    "FloatTensor": "a `torch.FloatTensor(...)` copy",
    "requires_grad_": "`requires_grad_(False)`",
    "requires_grad": "`requires_grad = False`",
    "stop_gradient": "`stop_gradient`",
    "argmax": "`argmax` (integer indices: no gradient)",
    "argmin": "`argmin` (integer indices: no gradient)",
    "argsort": "`argsort` (integer indices: no gradient)",
}
_LISTED = 3  # layers named one by one; more are given as a range


def _spelled(stop: Layer) -> str:
    return _SPELLED.get(stop.op, f"`{stop.op}`")


def _layers_text(layers: list[Layer]) -> str:
    if len(layers) == 1:
        return f"weight layer {layers[0].describe()} receives"
    # Layers built by one line (a comprehension, a loop) are counted, not repeated.
    names: list[tuple[str, int]] = []
    for layer in layers:
        text = layer.describe()
        if names and names[-1][0] == text:
            names[-1] = (text, names[-1][1] + 1)
        else:
            names.append((text, 1))
    if len(names) <= _LISTED:
        listed = ", ".join(text if n == 1 else f"{n} × {text}" for text, n in names)
        return f"weight layers {listed} receive"
    return f"{len(layers)} weight layers, {layers[0].describe()} to {layers[-1].describe()}, receive"


def _stops_text(stops: list[Layer], concat: bool = False) -> str:
    # One stop written once and run several times (a loop's x.detach()) is named once.
    distinct = list({(s.span.line, s.span.col, _spelled(s)): s for s in stops}.values())
    where = "on every tensor the concatenation joins" if concat else "on both sides of a residual sum"
    if len(distinct) == 1:
        text = f"the gradient stop at line {distinct[0].span.line} ({_spelled(distinct[0])})"
        return text if len(stops) == 1 else f"{text}, {where}"
    parts = " and ".join(f"line {s.span.line} ({_spelled(s)})" for s in distinct)
    return f"the gradient stops at {parts}, {where}"


def _first_weight_layer(model: Model) -> Layer | None:
    return next(iter(path_weight_layers(model.path)), None)


def _estimate(cut: Cut, first: Layer | None) -> Estimate:
    """Exactly no gradient: the protocol's vanishing (a first weight layer's ‖∂W‖/‖W‖ of 0)."""
    includes_first = first is not None and any(layer is first for layer in cut.layers)
    return no_gradient(len(cut.layers), "cut", reaches_first=includes_first)


class GradientStopped(Rule):
    code = "GRD012"
    name = "gradient-stopped"
    summary = ("A gradient stop on the model's path (`x.detach()`, `x.data`, `torch.no_grad()`, a numpy round trip, "
               "`tf.stop_gradient`) leaves the weight layers before it with no gradient at all.")
    what_it_does = """
Finds weight layers that no gradient can reach because every route from the model's outputs
back to them passes through a gradient stop inside the model: `x = x.detach()`, `x.detach_()`,
`x = x.data`, `x.requires_grad_(False)`, a `with torch.no_grad():` block in `forward`, a `forward`
decorated with `@torch.no_grad()` / `@torch.inference_mode()`, a round trip through data
(`torch.tensor(x)`, `torch.from_numpy(x.detach().numpy())`, `torch.tensor(x.tolist())`, numbers read
out with `x.item()` / `float(x)` and made a tensor again), detached tensors collected in a list that
`torch.cat`/`torch.stack` feeds to the path, and in Keras/TensorFlow `tf.stop_gradient`,
`keras.ops.stop_gradient`, `K.stop_gradient` (also inside a `Lambda` layer).

It reasons on the model's tensor paths, not on tokens: a stopped value added to a live one is
live (the straight-through estimator `x + (q - x).detach()`), a stop on a side branch leaves
what another output, a stored tensor or a loss computed in the forward reaches live
(`return p, z.detach()`, `loss = mse(p, z.detach())`, a target network, an EMA teacher computed
under `no_grad`), and a stop outside the model (a GAN's `D(fake.detach())` in the training step,
a value detached for logging, a mask or indices, `@torch.no_grad()` inference methods, init code
under `no_grad`) is not on the model's path at all. Layers the code freezes or loads on purpose
(`requires_grad = False`, `requires_grad_(False)`, Keras `trainable = False` or
`Dense(..., trainable=False)`, `load_state_dict`) are not reported; a frozen layer is no stop: the
layers before it still get their gradient through it. Nor, while the rest of the model still
trains, is a stop in front of a component gradlint cannot read: layers whose weights a base class
it does not read sets (a Hugging Face `PreTrainedModel`'s `post_init` / `from_pretrained`: a
pretrained codec run under `no_grad` before a trained projection), or a module whose code it does
not read (`timm.create_model(..., pretrained=True)`, a class whose `forward` is an unread base's)
with the layers computed along with it. A stop that cuts off every trainable layer is reported
whatever they are, and so is a part built from scratch in the file (merely putting it in eval mode
changes nothing: its parameters still require a gradient and get none).

In the training code it reports a model whose parameters are given to an optimizer but whose
output reaches the losses only through a stop: `fake = G(z).detach()` used for the discriminator's
update *and* the generator's loss, `z = encoder(x).detach()` (or `torch.tensor(z.detach().numpy())`)
fed to the decoder that the loss trains, a prediction made a new leaf
(`torch.tensor(pred.tolist(), requires_grad=True)`) before the loss. A model is trained when a
loss is computed on its output, on the output of a model it feeds with no stop between, or
adds its output as a term (`loss + 0.1 * (out ** 2).mean()`); with a loss
gradlint cannot read, a `fit`, or a model whose parameters no optimizer is given (a frozen feature
extractor, a DQN target network, a teacher), nothing is reported. And it reports a loss "made to
require grad" before `backward()`: `loss = Variable(loss.data, requires_grad=True)`,
`torch.tensor(loss.item(), requires_grad=True)`, `Variable(loss, requires_grad=True)`,
`loss.detach().requires_grad_()` — a new leaf with no graph (measured: every `p.grad` stays `None`),
when every `backward()` of the file runs on such a copy; and the same for a loss computed inside
`with torch.no_grad():` and backpropagated after it (measured: backward() raises "element 0 of
tensors does not require grad"). A loss on numbers read out of the output
(`torch.tensor(np.mean((out.detach().numpy() - y) ** 2), requires_grad=True)`) or on its integer
indices (`F.mse_loss(out.argmax(1).float(), y.float())`, `torch.argmax`) reaches the model through
that stop only (argmax/argmin/argsort are read as stops in training code only: a model's own
`forward` may return its decoded prediction). And the model every `backward()` trains, when the
code turned `requires_grad` off for all of its parameters (`for p in model.parameters():
p.requires_grad = False`, `model.requires_grad_(False)`, and not back on for any part) — not for
loaded weights (`load_state_dict`), which still train.
"""
    why_bad = """
Autograd records no operation behind a stop: the layers before it get no gradient at all
(`p.grad` stays `None`; the measurement protocol reads ‖∂W‖/‖W‖ = 0 exactly, vanishing), so the
optimizer never moves them and they stay at their random initialization for the whole training
run, while the loss still goes down through the layers after the stop — which hides the bug.
Usually the stop was meant for a value used only for logging, a target or a mask, or a
`torch.tensor(...)` / numpy conversion slipped into `forward`.
"""
    formula = """
Structural, exact: a weight layer is reported when every route from the main output back to it
crosses a STOP node. A route ends at a stop; a residual sum passes the gradient through its
branch and its shortcut (blocked only when both are); a gate's sub-path is a route into the
gating layers; the other tensors the forward returns, stores on `self` or hands to a loss are
routes too. The stop reported is the last one on the path in front of the layers.
"""
    fix = """No automatic fix: remove the stop from the model's path (`x = x.detach()` → keep `x`; compute
inside `forward` without `torch.no_grad()`; keep tensors as tensors instead of converting them).
Detach only the copy used for logging, a target or a mask. To freeze the layers on purpose, say
so: `module.requires_grad_(False)` (Keras: `layer.trainable = False`)."""

    VALID = [
        Valid("""
import torch
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        self.last_hidden = h.detach()  # a copy for logging; the path stays live
        return self.fc2(h)
""", use_instead=True),
        # VQ-VAE's straight-through estimator: a stopped value added to a live one is live; the codebook
        # learns from the losses computed in the forward.
        Valid("""
import torch.nn as nn
import torch.nn.functional as F

class VQ(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(64, 16)
        self.codebook = nn.Embedding(128, 16)
        self.dec = nn.Linear(16, 64)

    def forward(self, x):
        z = self.enc(x)
        q = self.codebook((z @ self.codebook.weight.t()).argmax(-1))
        vq_loss = F.mse_loss(q, z.detach()) + 0.25 * F.mse_loss(q.detach(), z)
        q = z + (q - z).detach()
        return self.dec(q), vq_loss
"""),
        # SimSiam: the targets are detached side outputs; the predictions keep the encoder live.
        Valid("""
import torch.nn as nn

class SimSiam(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32))
        self.predictor = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 32))

    def forward(self, x1, x2):
        z1, z2 = self.encoder(x1), self.encoder(x2)
        return self.predictor(z1), self.predictor(z2), z1.detach(), z2.detach()
"""),
        # A frozen pretrained encoder under no_grad, frozen on purpose; an EMA teacher as a side output.
        Valid("""
import torch
import torch.nn as nn

class Probe(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64))
        self.encoder.requires_grad_(False)
        self.teacher = nn.Linear(64, 10)
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        with torch.no_grad():
            f = self.encoder(x)
            t = self.teacher(f)
        return self.head(f), t

    @torch.no_grad()
    def predict(self, x):
        return self.head(self.encoder(x)).argmax(-1)
"""),
        # A GAN's training step detaches the generator's output for the discriminator's update.
        Valid("""
import torch
import torch.nn as nn

G = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 32))
D = nn.Sequential(nn.Linear(32, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))
bce = nn.BCEWithLogitsLoss()
opt_d = torch.optim.Adam(D.parameters())
for _ in range(10):
    fake = G(torch.randn(64, 16))
    d_loss = bce(D(fake.detach()), torch.zeros(64, 1)) + bce(D(torch.randn(64, 32)), torch.ones(64, 1))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
"""),
        # The generator's step uses the live output: G is trained; only the discriminator's copy is detached.
        Valid("""
import torch
import torch.nn as nn

G = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 2))
D = nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))
opt_g = torch.optim.Adam(G.parameters())
opt_d = torch.optim.Adam(D.parameters())
bce = nn.BCEWithLogitsLoss()
for _ in range(10):
    fake = G(torch.randn(64, 16))
    d_loss = bce(D(fake.detach()), torch.zeros(64, 1))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    g_loss = bce(D(fake), torch.ones(64, 1))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
"""),
        # Keras: a straight-through estimator in a functional model.
        Valid("""
import keras
from keras import layers, ops

inputs = keras.Input(shape=(32,))
z = layers.Dense(16)(inputs)
q = layers.Lambda(lambda t: ops.round(t))(z)
z = layers.Lambda(lambda t: t[0] + ops.stop_gradient(t[1] - t[0]))([z, q])
outputs = layers.Dense(10)(z)
model = keras.Model(inputs, outputs)
"""),
    ]
    INVALID = [
        Invalid("""
import torch
import torch.nn as nn
from torch.autograd import Variable

model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
opt = torch.optim.Adam(model.parameters())
for x, y in loader:
    loss = nn.CrossEntropyLoss()(model(x), y)
    loss = Variable(loss.data, requires_grad=True)
    opt.zero_grad()
    loss.backward()
    opt.step()
""", line=9, column=21,
                message=r"the loss backward\(\) runs on at line 11 is a copy of the loss's values \(`loss\.data`\)"),
        Invalid("""
import torch
import torch.nn as nn

G = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 2))
D = nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))
opt_g = torch.optim.Adam(G.parameters())
opt_d = torch.optim.Adam(D.parameters())
bce = nn.BCEWithLogitsLoss()
for _ in range(10):
    fake = G(torch.randn(64, 16)).detach()
    d_loss = bce(D(fake), torch.zeros(64, 1))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    g_loss = bce(D(fake), torch.ones(64, 1))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
""", line=10, column=12, message=r"G's parameters are given to an optimizer, but its output reaches every loss only "
                                 r"through the gradient stop at line 10 \(`\.detach\(\)`\)"),
        Invalid("""
import torch
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        h = h.detach()
        return self.fc2(h)
""", line=12, column=13, message=r"weight layer Linear \(self\.fc1\) at line 7 receives no gradient: every path "
                                  r"to the output passes through the gradient stop at line 12", example=True),
        Invalid("""
import torch
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        with torch.no_grad():
            f = self.encoder(x)
        return self.head(f)
""", line=11, message=r"weight layers .* receive no gradient.*torch\.no_grad\(\)"),
        Invalid("""
import torch
import torch.nn as nn

class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(32, 64)

    @torch.no_grad()
    def forward(self, x):
        return torch.relu(self.fc(x))

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.encoder(x))
""", line=9, message=r"Linear \(self\.fc\) at line 7 receives no gradient.*`@torch\.no_grad\(\)` decorator"),
        Invalid("""
import torch
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(1, 10)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        score = torch.tensor([[row.sum().item()] for row in h.unbind(0)])
        return self.fc2(score)
""", line=12, message=r"weight layer Linear \(self\.fc1\) at line 7 receives no gradient.*`\.item\(\)` round trip"),
        Invalid("""
import torch
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        h = torch.tanh(self.fc1(x))
        h = torch.from_numpy(h.detach().cpu().numpy())
        return self.fc2(h)
""", line=12, message=r"fc1"),
        Invalid("""
import torch
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        h = self.fc1(x).data
        return self.fc2(torch.relu(h))
""", line=11, message=r"`\.data`"),
        Invalid("""
import torch
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        h = torch.tensor(h.tolist())
        return self.fc2(h)
""", line=12, message=r"fc1"),
        # Inside a residual branch: the branch's layer never learns (the shortcut carries the rest).
        Invalid("""
import torch
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(32, 64)
        self.branch = nn.Linear(64, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        h = h + self.branch(h).detach()
        return self.fc2(h)
""", line=13, message=r"Linear \(self\.branch\) at line 8 receives no gradient"),
        Invalid("""
from tensorflow import keras
from tensorflow.keras import backend as K
from tensorflow.keras.layers import Dense, Lambda

model = keras.Sequential([
    Dense(64, activation="relu", input_shape=(32,)),
    Dense(64, activation="relu"),
    Lambda(lambda t: K.stop_gradient(t)),
    Dense(10, activation="softmax"),
])
""", line=8, message=r"weight layers Dense at line 6, Dense at line 7 receive no gradient.*`stop_gradient`"),
        Invalid("""
import tensorflow as tf
from tensorflow import keras

class Net(keras.Model):
    def __init__(self):
        super().__init__()
        self.d1 = keras.layers.Dense(64, activation="relu")
        self.d2 = keras.layers.Dense(10)

    def call(self, x):
        h = tf.stop_gradient(self.d1(x))
        return self.d2(h)
""", line=11, message=r"Dense \(self\.d1\)"),
    ]

    def check_training(self, context: RuleContext) -> Iterable[tuple[Finding, Model | None]]:
        """A model whose parameters an optimizer is given, whose output reaches the losses only through
        a stop in the training code (``fake = G(z).detach()`` used for the discriminator *and* the
        generator's loss; ``z = encoder(x).detach()`` into the decoder)."""
        facts = context.training
        if facts is None or not facts.backwards or facts.fits:
            return
        yield from _severed_losses(facts, context)
        yield from _all_frozen(facts, context)
        if any(use is None for _, use in facts.backwards):
            return  # a loss gradlint cannot read may reach any model
        uses = [use for _, use in facts.backwards if use is not None] + list(facts.losses)
        # a loss on a model's output made a tensor again (torch.tensor(out.tolist(), requires_grad=True))
        direct: dict[int, list[Layer]] = {}
        for use in uses:
            if use.model_id is not None and isinstance(use.cut, Layer):
                direct.setdefault(use.model_id, []).append(use.cut)
        reached = {use.model_id for use in uses if use.cut is None} | facts.term_models
        if None in reached:
            return
        stopped: dict[int, list[tuple[int, Layer]]] = {}
        for call in facts.model_calls:
            if call.fed_by is not None and call.cut is not None and isinstance(call.cut, Layer):
                stopped.setdefault(call.model_id, []).append((call.fed_by, call.cut))
        trained = models_feeding(facts, [m for m in reached if m is not None])
        # layers trained through any model a loss reaches (a submodule called on its own shares its parent's)
        trained_layers = set().union(*(facts.model_layers.get(m, frozenset()) for m in trained))
        for model_id in sorted(facts.optimized_models - trained):
            stops = [stop for consumer in trained for source, stop in stopped.get(consumer, []) if source == model_id]
            stops += direct.get(model_id, [])
            model = context.model_by_id(model_id)
            if not stops or model is None or not facts.model_layers.get(model_id, frozenset()).isdisjoint(
                    trained_layers) or any(layer.frozen for layer in iter_layers(model.path)):
                continue
            stop = min(stops, key=lambda s: (s.span.line, s.span.col))
            span = Span(stop.span.line, stop.span.col, stop.span.end_line, stop.span.end_col, stop.span.origin)
            yield Finding(span, (
                f"{model.name}'s parameters are given to an optimizer, but its output reaches every loss only "
                f"through the gradient stop at line {stop.span.line} ({_spelled(stop)}) in the training code: no "
                f"gradient reaches {model.name}, ‖∂L/∂W‖ is exactly 0 for all its layers and it stays at its "
                f"random initialization. Detach only the copy one update must not train (a GAN's "
                f"discriminator step: D(fake.detach())), and pass the live output to the loss that trains "
                f"{model.name}."), Severity.ERROR, no_gradient(len(path_weight_layers(model.path)), "cut")), model

    def check(self, model: Model, context: RuleContext) -> Iterable[Finding]:
        cuts = gradient_cuts(model)
        if not cuts:
            return
        first = _first_weight_layer(model)
        for cut in cuts:
            stop = cut.stops[-1]
            one = len(cut.layers) == 1
            learns = "it never learns" if one else "they never learn"
            message = (f"{_layers_text(cut.layers)} no gradient: every path to the output passes through "
                       f"{_stops_text(cut.stops, cut.concat)}, so ‖∂L/∂W‖ is exactly 0 and {learns}. "
                       f"Remove the stop from the model's path (detach only a copy used for logging, a target or a "
                       f"mask); to freeze {'it' if one else 'them'} on purpose, use requires_grad_(False) (Keras: "
                       f"trainable = False).")
            span = Span(stop.span.line, stop.span.col, stop.span.end_line, stop.span.end_col, stop.span.origin)
            yield Finding(span, message, Severity.ERROR, _estimate(cut, first))


_SEVERED_SPELLED = {"data": "`loss.data`", "detach": "`loss.detach()`", "item": "`loss.item()`",
                    "numpy": "`loss.numpy()`", "tolist": "`loss.tolist()`", "tensor": "`torch.tensor(loss)`",
                    "Tensor": "`torch.Tensor(loss)`", "FloatTensor": "`torch.FloatTensor(loss)`",
                    "Variable": "`Variable(loss)`"}


# Layers that hold parameters: a model none of whose are trainable has nothing for backward() to reach.
_PARAMETER_KINDS = WEIGHT_KINDS | {LayerKind.RECURRENT, LayerKind.NORMALIZATION, LayerKind.ATTENTION}


def _all_frozen(facts: TrainingFacts, context: RuleContext) -> Iterable[tuple[Finding, Model | None]]:
    """The model every ``backward()`` trains (its loss on the model's live output) has every parameter
    frozen (``for p in model.parameters(): p.requires_grad = False`` before the loop): nothing requires
    a gradient, backward() raises, and no optimizer step moves anything. Only a fully understood model
    fed by no other model, whose losses are all read."""
    uses = [use for _, use in facts.backwards if use is not None]
    if not uses or len(uses) != len(facts.backwards) or not facts.steps:
        return
    reached = {use.model_id for use in uses if use.cut is None}
    if not reached or None in reached or facts.term_models - reached:
        return
    for model_id in sorted(m for m in reached if m is not None):
        model = context.model_by_id(model_id)
        if model is None or not model.fully_understood or model_id not in facts.optimized_models or any(
                call.model_id == model_id and call.fed_by is not None for call in facts.model_calls):
            continue
        layers = [layer for layer in iter_layers(model.path) if layer.kind in _PARAMETER_KINDS]
        if model.framework != "torch" or not layers or not all(layer.grad_off for layer in layers):
            continue
        first = layers[0]
        yield Finding(first.span, (
            f"every parameter of {model.name} is frozen (requires_grad=False on all its {len(layers)} layers with "
            f"parameters, from {first.op} at line {first.span.line} on), but it is the model trained here: the loss "
            f"has no gradient to take, backward() raises (element 0 of tensors does not require grad) and no "
            f"step moves any weight. Freeze only the part meant to stay fixed (the feature extractor) and give "
            f"the optimizer the rest (the new head)."), Severity.ERROR,
            no_gradient(len(path_weight_layers(model.path)), "cut")), model


def _severed_losses(facts: TrainingFacts, context: RuleContext) -> Iterable[tuple[Finding, Model | None]]:
    """Every ``backward()`` of the file runs on a loss whose values were copied out of the graph and
    made a new leaf (``loss = Variable(loss.data, requires_grad=True)``, ``torch.tensor(loss.item(),
    requires_grad=True)``): the model the loss was computed from, in an optimizer, gets no gradient."""
    severed_at = {(b.line, b.col) for _, _, _, b in facts.severed}
    if not facts.severed or any((span.line, span.col) not in severed_at for span, _ in facts.backwards):
        return
    seen: set[int] = set()
    for span, op, use, where in facts.severed:
        model = context.model_by_id(use.model_id)
        if model is None or use.model_id in seen or use.model_id not in facts.optimized_models or any(
                layer.frozen for layer in iter_layers(model.path)):
            continue
        seen.add(use.model_id)
        if op in ("no_grad", "no_grad_method", "inference_mode_method"):
            yield Finding(span, (
                f"the loss backward() runs on at line {where.line} is computed under {_SPELLED[op]}: it has no "
                f"graph back to {model.name}, so backward() raises (element 0 of tensors does not require grad) "
                f"and no gradient ever reaches {model.name}'s layers. Compute the training loss outside "
                f"torch.no_grad(); keep no_grad() for evaluation."), Severity.ERROR,
                no_gradient(len(path_weight_layers(model.path)), "cut")), model
            continue
        yield Finding(span, (
            f"the loss backward() runs on at line {where.line} is a copy of the loss's values "
            f"({_SEVERED_SPELLED.get(op, op)}) made a new tensor: it has no graph back to {model.name}, so no "
            f"gradient reaches any of {model.name}'s layers (‖∂L/∂W‖ is exactly 0, `p.grad` stays None) and "
            f"the optimizer never moves them. Call backward() on the loss itself; read loss.item() only "
            f"for logging."), Severity.ERROR, no_gradient(len(path_weight_layers(model.path)), "cut")), model
