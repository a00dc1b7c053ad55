"""GRD002: hidden weight layers initialised to zero or a constant."""

from __future__ import annotations

import math
from collections.abc import Iterable

from gradlint.analysis.flow import norm_kind_of
from gradlint.analysis.inits import RELU_LIKE
from gradlint.analysis.units import Unit, units_and_barriers
from gradlint.estimate import FLOAT32_MAX_LOG10, Estimate, format_ratio, no_gradient, symmetric
from gradlint.model import Gate, Layer, LayerKind, Model, Node, Residual, Span
from gradlint.rule import Finding, InitFix, Invalid, Rule, RuleContext, Severity, Valid


def _weight_layers(path: list[Node]) -> list[Layer]:
    return [u.layer for u in units_and_barriers(path) if isinstance(u, Unit)
            and u.layer.kind in (LayerKind.DENSE, LayerKind.CONV)]


def exempt_layers(model: Model) -> set[int]:
    """Layers whose zero init is a design, not a bug: the output head, the last weight layer
    of each residual branch (Fixup, ReZero, zero_init_residual, adaLN-Zero), gate paths."""
    exempt: set[int] = set()
    top = _weight_layers(model.path)
    if top:
        exempt.add(id(top[-1]))

    def visit(path: list[Node]) -> None:
        for node in path:
            if isinstance(node, Residual):
                branch = _weight_layers(node.branch)
                if branch:
                    exempt.add(id(branch[-1]))
                visit(node.branch)
                visit(node.shortcut)
            elif isinstance(node, Gate):
                for layer in _all_layers(node.path):
                    exempt.add(id(layer))

    visit(model.path)
    return exempt


def _all_layers(path: list[Node]) -> Iterable[Layer]:
    for node in path:
        if isinstance(node, Layer):
            yield node
        elif isinstance(node, Residual):
            yield from _all_layers(node.branch)
            yield from _all_layers(node.shortcut)
        elif isinstance(node, Gate):
            yield from _all_layers(node.path)


def _bias_cancelled(path: list[Node], out: set[int] | None = None) -> set[int]:
    """Ids of weight layers followed directly (in the same path) by a normalization with statistics per
    unit over the batch (BatchNorm; InstanceNorm per example): it removes each unit's constant offset,
    so a random bias no longer tells constant-init units apart. Anything between keeps them apart: an
    activation sees each unit's own bias, a train-mode dropout masks each unit its own way (measured:
    Linear/Conv → Dropout(0.1) → BatchNorm, no identical rows in 3/3 seeds)."""
    found: set[int] = set() if out is None else out
    for index, node in enumerate(path):
        if isinstance(node, Residual):
            _bias_cancelled(node.branch, found)
            _bias_cancelled(node.shortcut, found)
            continue
        if not isinstance(node, Layer) or node.kind not in (LayerKind.DENSE, LayerKind.CONV):
            continue
        after = path[index + 1] if index + 1 < len(path) else None
        if isinstance(after, Layer) and after.kind == LayerKind.NORMALIZATION and norm_kind_of(after.op) == "batch":
            found.add(id(node))
    return found


def _common_mode_removed(path: list[Node], out: dict[int, str] | None = None) -> dict[int, str]:
    """Dense layers (by id) whose output goes straight into what ignores a part shared by every unit:
    a LayerNorm (it subtracts the mean over the features) or a softmax (invariant to adding one number to
    every logit), with what that is. A constant-init layer's units all compute one function of the
    input plus their own bias, so after either the output no longer depends on the input."""
    found: dict[int, str] = {} if out is None else out
    for index, node in enumerate(path):
        if isinstance(node, Residual):
            _common_mode_removed(node.branch, found)
            _common_mode_removed(node.shortcut, found)
            continue
        if not isinstance(node, Layer) or node.kind != LayerKind.DENSE:
            continue
        after = path[index + 1] if index + 1 < len(path) else None
        if node.activation in ("softmax", "log_softmax"):
            found[id(node)] = node.activation
        elif isinstance(after, Layer) and after.kind == LayerKind.ACTIVATION \
                and after.activation in ("softmax", "log_softmax"):
            found[id(node)] = after.activation
        elif isinstance(after, Layer) and after.kind == LayerKind.NORMALIZATION \
                and norm_kind_of(after.op) == "layer" and "group" not in after.op.lower():
            found[id(node)] = after.op
    return found


def _shared_part_removed(layers: list[Layer], common_mode: dict[int, str], activations: dict[int, str]) -> Finding:
    """Constant-init layers (random biases) into a LayerNorm or softmax: the output ignores the input, and
    no gradient reaches the layers before them (measured: constant 0.1, 6 × 64 into LayerNorm, first
    layer ‖∂W‖/‖W‖ exactly 0 in 2/3 seeds and 1e-21 in the third; a constant head into softmax 1e-12 to
    1e-15). One step moves the weights apart, but at init the model is the protocol's vanishing."""
    init = layers[0].weight_init
    assert init is not None
    span = init.span or layers[0].span
    after = common_mode[id(layers[0])]
    what = f"the constant {init.constant_value:g}" if init.constant_value is not None else "a constant"
    count = f"These {len(layers)} weight layers start" if len(layers) > 1 else "A weight layer starts"
    removes = "ignores a number added to every logit" if "softmax" in after else "subtracts the mean over the features"
    message = (f"{count} with every weight {what} ({_group_names(layers)}) right before a {after}: each unit "
               f"computes the same function of the input, told apart only by its bias, and the {after} {removes}, "
               f"so the output does not depend on the input and no gradient reaches the layers before. "
               f"Initialise with {_advice(layers, activations)}.")
    where = Span(span.line, span.col, span.end_line, span.end_col, span.origin)
    return Finding(where, message, Severity.WARNING, no_gradient(len(layers), "shared_part_removed"),
                   fix=_fix_for(layers, span, activations))


def _centring_norm(node: Node | None) -> Layer | None:
    """A LayerNorm over the features whose output sums to a constant at init: it subtracts each example's
    mean, and its γ (ones unless an init wrote a constant) is the same for every feature."""
    if not isinstance(node, Layer) or node.kind != LayerKind.NORMALIZATION or norm_kind_of(node.op) != "layer" \
            or "group" in node.op.lower() or node.norm_stats is not None:
        return None
    init = node.weight_init
    return node if init is None or init.is_constant else None


def _centred_inputs(path: list[Node], before: Node | None = None, out: dict[int, Layer] | None = None,
                    top: bool = True) -> dict[int, Layer]:
    """Dense layers (by id, with the norm) that read a centring LayerNorm's output directly; a residual
    branch reads what came before its block. Only those on the top-level path when ``top``."""
    found: dict[int, Layer] = {} if out is None else out
    prev = before
    for node in path:
        if isinstance(node, Residual):
            if not top:
                _centred_inputs(node.branch, prev, found, top)
                _centred_inputs(node.shortcut, prev, found, top)
            prev = node
            continue
        if isinstance(node, Layer) and node.kind == LayerKind.DENSE:
            norm = _centring_norm(prev)
            if norm is not None:
                found[id(node)] = norm
        prev = node
    return found


def _input_lost(layers: list[Layer], norm: Layer, activations: dict[int, str]) -> Finding:
    """Constant-weight Dense layers right after a LayerNorm on the main path: the norm's output sums to a
    constant over the features (0 at init), so each unit computes c·Σx̂ + b = its bias alone, whatever the
    input, and no gradient reaches the layers before. Measured: 8 × (Linear → ReLU → LayerNorm) at 0.1,
    and 4 post-LN blocks into a constant head: first-layer ‖∂W‖/‖W‖ 0 to 1e-8 (float rounding)."""
    init = layers[0].weight_init
    assert init is not None
    span = init.span or layers[0].span
    what = f"the constant {init.constant_value:g}" if init.constant_value is not None else "a constant"
    count = f"These {len(layers)} weight layers start" if len(layers) > 1 else "A weight layer starts"
    message = (f"{count} with every weight {what} ({_group_names(layers)}) right after a {norm.op}: the norm's "
               f"output sums to zero over the features at init, so each unit computes {what} × 0 plus its bias — "
               f"the output does not depend on the input and no gradient reaches the layers before. "
               f"Initialise with {_advice(layers, activations)}.")
    where = Span(span.line, span.col, span.end_line, span.end_col, span.origin)
    return Finding(where, message, Severity.WARNING, no_gradient(len(layers), "input_lost"),
                   fix=_fix_for(layers, span, activations))


def _branch_reader(branch: list[Node]) -> Layer | None:
    """The weight layer a residual branch reads its input with, when nothing per unit comes before it (a
    centring LayerNorm passes a gradient common to the units back as 0, a scalar scale as a multiple)."""
    for node in branch:
        if not isinstance(node, Layer):
            return None
        if node.kind in (LayerKind.DENSE, LayerKind.CONV):
            return node
        if _centring_norm(node) is None and not (node.kind == LayerKind.SCALE and node.scale_params in (None, 1)):
            return None
    return None


def _constant(layer: Layer | None) -> bool:
    init = layer.weight_init if layer is not None else None
    return init is not None and init.is_constant and init.constant_value not in (None, 0)


def _common_gradient_layers(path: list[Node], activations: dict[int, str]) -> list[Layer]:
    """Constant-weight Dense layers of the top-level path with no activation whose output only constant
    layers read: residual blocks (identity shortcuts) whose branches read the stream with a constant
    layer, then a constant head. Every such reader passes back Wᵀδ = c·Σᵢδᵢ, one number for all its
    inputs, so the layer's units get identical gradients, and with identical weights they stay copies
    whatever their biases (measured: SkipInit, plain, pre-LN and ReZero stacks at constant 0.1 with
    torch's default biases, identical weight and gradient rows in 3/3 seeds)."""
    found: list[Layer] = []
    for index, node in enumerate(path):
        if not isinstance(node, Layer) or node.kind != LayerKind.DENSE or not _constant(node) \
                or activations.get(id(node), "linear") != "linear" or not node.fan_out or node.fan_out < 2:
            continue
        rest = path[index + 1:]
        blocks = 0
        while blocks < len(rest) and isinstance(block := rest[blocks], Residual) and not block.shortcut \
                and not block.concat and _constant(_branch_reader(block.branch)):
            blocks += 1
        head = rest[blocks] if blocks < len(rest) else None
        # after the head only its output activation (dropout is a per-unit mask, but after the head it
        # multiplies δ before Wᵀ sums it: still one number per input)
        tail_ok = all(isinstance(n, Layer) and n.kind in (LayerKind.ACTIVATION, LayerKind.DROPOUT)
                      for n in rest[blocks + 1:])
        if blocks and isinstance(head, Layer) and head.kind == LayerKind.DENSE and _constant(head) and tail_ok:
            found.append(node)
    return found


# Activations that pass a large shared (common-mode) signal on about linearly, at least for one sign:
# a constant-weight stack through them multiplies it by fan_in · c per layer. Bounded ones saturate.
_UNBOUNDED = frozenset({None, "linear", "relu", "leaky_relu", "elu", "selu", "celu", "gelu", "gelu_tanh", "silu",
                        "swish", "mish", "softplus", "prelu"})
# The protocol's exploding loss (1e6), plus a decade for how crude the common-mode estimate is.
_LOG10_BLOWUP_LOSS = 7.0


def _common_mode_blowups(path: list[Node], reported: set[int]) -> Iterable[tuple[list[Layer], float]]:
    """Runs of consecutive constant-weight layers on the main path (nothing reported for them: their
    units differ by random biases) whose shared signal blows up. Every unit of a layer with weights c
    sums its fan_in inputs alike, so what all units share is multiplied by fan_in · c per layer: an
    N(0, 1) input of width n enters as c·√n, and after the run the output's scale is
    c₁·√n · Π (fan_in · c). Measured (torch, default biases): leaky ReLU 24 × 128 at 0.1, the loss
    overflows to inf; ReLU 8 × 64 at 0.1, 4e8 to 2e10 (estimated 2e11); ReLU 8 × 32 at 0.05, 2 to 14
    (estimated 5: not reported); tanh 24 × 128 at 0.1 saturates instead, loss 1."""
    run: list[Layer] = []
    log10_scale = 0.0

    def close() -> Iterable[tuple[list[Layer], float]]:
        if len(run) >= 2 and 2 * log10_scale > _LOG10_BLOWUP_LOSS:
            yield list(run), 2 * log10_scale
        run.clear()

    for node in path:
        if not isinstance(node, Layer):  # a residual block or a gate: not a plain stack
            yield from close()
            continue
        if node.kind in (LayerKind.DROPOUT, LayerKind.POOLING, LayerKind.OTHER):
            continue
        if node.kind == LayerKind.ACTIVATION:
            if node.activation not in _UNBOUNDED:
                yield from close()
            continue
        init = node.weight_init
        constant = init is not None and init.is_constant and init.constant_value not in (None, 0)
        if node.kind not in (LayerKind.DENSE, LayerKind.CONV) or not constant or id(node) in reported \
                or not node.fan_in:
            yield from close()
            continue
        assert init is not None and init.constant_value is not None
        c = abs(init.constant_value)
        if not run:  # a unit-variance signal enters (the model input, or what a norm before the run made)
            log10_scale = math.log10(c * math.sqrt(node.fan_in))
        else:
            log10_scale += math.log10(c * node.fan_in)
        run.append(node)
        if node.activation not in _UNBOUNDED:  # a fused bounded activation (Keras) ends the run after it
            yield from close()
    yield from close()


def _common_mode_finding(layers: list[Layer], log10_loss: float, activations: dict[int, str]) -> Finding:
    init = layers[0].weight_init
    assert init is not None and init.constant_value is not None
    span = init.span or layers[0].span
    per_layer = [abs(init.constant_value) * (layer.fan_in or 0) for layer in layers[1:]]
    gain = max(per_layer) if per_layer else 0.0
    overflow = log10_loss >= FLOAT32_MAX_LOG10  # the loss (the square of the output) is inf in float32
    outcome = "float32 overflows (inf/NaN)" if overflow else f"the loss at init is ≈ {format_ratio(log10_loss)}"
    message = (f"These {len(layers)} weight layers start with every weight the constant {init.constant_value:g} "
               f"({_group_names(layers)}): every unit sums its inputs alike, so the part of the signal all units "
               f"share grows by fan_in × {abs(init.constant_value):g} ≈ {gain:.3g} per layer, and {outcome} "
               f"(MSE to unit-variance targets). Initialise with {_advice(layers, activations)}.")
    estimate = Estimate(0.0, 0.0, len(layers), False, ["the shared signal of a constant-weight stack, per-unit "
                        "biases and fluctuations neglected", "input of unit variance"], log10_loss=log10_loss,
                        log10_forward_growth=log10_loss, nonfinite=overflow, verdict="exploding", criterion="loss")
    where = Span(span.line, span.col, span.end_line, span.end_col, span.origin)
    return Finding(where, message, Severity.WARNING, estimate, fix=_fix_for(layers, span, activations))


def _common_gradient_finding(layer: Layer, activations: dict[int, str]) -> Finding:
    init = layer.weight_init
    assert init is not None and init.constant_value is not None
    span = init.span or layer.span
    message = (f"A hidden weight layer starts with every weight the constant {init.constant_value:g} "
               f"({_group_names([layer])}) and only layers that start constant read its output (the residual "
               f"branches and the head): each passes back {init.constant_value:g} × the sum of its gradient, "
               f"the same number for every unit, so the units of this layer get identical gradients and stay "
               f"identical (symmetry) although their biases differ. Initialise with {_advice([layer], activations)}.")
    where = Span(span.line, span.col, span.end_line, span.end_col, span.origin)
    return Finding(where, message, Severity.WARNING, symmetric(1, False), fix=_fix_for([layer], span, activations))


def _hidden_layers(model: Model) -> list[Layer]:
    out: list[Layer] = []
    seen: set[int] = set()

    def visit(path: list[Node]) -> None:
        for node in path:
            if isinstance(node, Layer):
                if node.kind in (LayerKind.DENSE, LayerKind.CONV) and id(node) not in seen:
                    seen.add(id(node))
                    out.append(node)
            elif isinstance(node, Residual):
                visit(node.shortcut)
                visit(node.branch)

    visit(model.path)
    return out


def _random_bias(layer: Layer) -> bool:
    """The layer's biases are drawn at random (so its units differ even with identical weights)."""
    init = layer.bias_init
    return layer.bias is not False and init is not None and not init.is_constant and init.scheme != "unknown"


def _group_names(layers: list[Layer]) -> str:
    """"3 × Linear (self.fc) at line 11, Conv2d at line 20": layers built in a loop share a line."""
    groups: dict[tuple[str, int], list[Layer]] = {}
    for layer in layers:
        groups.setdefault((layer.op, layer.span.line), []).append(layer)
    parts = []
    for (op, line), members in list(groups.items())[:4]:
        count = f"{len(members)} × " if len(members) > 1 else ""
        name = f" ({members[0].name})" if members[0].name else ""
        parts.append(f"{count}{op}{name} at line {line}")
    if len(groups) > 4:
        parts.append(f"and {len(groups) - 4} more")
    return ", ".join(parts)


def _fix_for(layers: list[Layer], span: Span, activations: dict[int, str]) -> InitFix | None:
    acts = {activations.get(id(layer), "linear") for layer in layers}
    relu = bool(acts) and acts <= RELU_LIKE
    framework = layers[0].framework
    if framework not in ("torch", "keras"):
        return None  # TensorFlow graph code: tf.Variable(tf.zeros(...)) has no one-argument rewrite
    if framework == "keras":
        scheme = "he_normal" if relu else "glorot_uniform"
        return InitFix(span, "keras", scheme, description=f"use kernel_initializer={scheme!r}")
    if relu:
        return InitFix(span, "torch", "kaiming_normal_", (("nonlinearity", '"relu"'),),
                       description='use nn.init.kaiming_normal_(w, nonlinearity="relu")')
    return InitFix(span, "torch", "xavier_uniform_", description="use nn.init.xavier_uniform_(w)")


def _advice(layers: list[Layer], activations: dict[int, str]) -> str:
    """The init to use, named for the layers' own activation (the message follows it)."""
    acts = {activations.get(id(layer), "linear") for layer in layers}
    if acts and acts <= RELU_LIKE:
        return f"He/kaiming init, the scheme for {'/'.join(sorted(acts))}"
    named = acts - {"linear", "identity", "unknown"}
    if named and acts == named:
        return f"Glorot/xavier init, the scheme for {'/'.join(sorted(named))}"
    return "the scheme that matches the activation (He/kaiming for ReLU, Glorot/xavier for tanh/sigmoid)"


class ConstantWeightInit(Rule):
    code = "GRD002"
    name = "constant-weight-init"
    summary = "A hidden weight layer is initialised to zero or a constant: its units stay identical or dead."
    what_it_does = """
Finds Linear/Dense/Conv layers on a model's path whose *weights* are set to zero or to a
constant — `nn.init.zeros_/ones_/constant_`, `.data.fill_()`, `.data.zero_()`,
`weight.data = torch.zeros(...)`, Keras `kernel_initializer="zeros"`/`"ones"`/`Constant(c)`.

Also reported, though the units differ by their biases: a constant weight layer right before a
BatchNorm/InstanceNorm, which subtracts each unit's mean, bias included (the units are identical
again), and a constant Dense layer (the head included) right before a LayerNorm or a softmax, which
remove the one function of the input its units share (the output ignores the input: no gradient
reaches the layers before); a constant Dense layer right after a LayerNorm (its output sums to zero over the features at
init, so the layer outputs its bias whatever the input: no gradient reaches the layers before); a
constant stem whose output only constant layers read (the first layers of residual branches and a
constant head: each passes back c × the sum of its gradient, the same number for every unit, so
the stem's units stay copies whatever their biases); and a stack of constant layers through
unbounded activations whose shared signal, multiplied by fan_in × c per layer, blows the loss
past 1e7 (exploding).

Not reported: biases; normalization weights; the output head (but for a non-zero constant one before
a softmax, above); a non-zero constant weight layer
whose biases are random (torch's default bias: its units differ by their bias, so their
gradients differ), unless a zero layer after it sends it no gradient; the last weight layer of a
residual branch (Fixup, ReZero, `zero_init_residual`, adaLN-Zero and layer scale start a
residual block as the identity on purpose); layers inside gating paths.

An `_init_weights(self, module)` hook applied with `self.apply(...)` decides the init: what it
writes is judged (a hook that zeroes hidden layers is reported). Zeros written before a hook
gradlint cannot run — a pretrained model's `_init_weights`, applied by `post_init()` of a base
class gradlint does not read — are an unknown init, not reported.
"""
    why_bad = """
Units of a layer that start with identical weights compute identical outputs and receive
identical updates (when the next layer is also constant) — the layer behaves like a single
unit forever. Zero weights also pass no gradient back: the error reaching the layer before is
φ′(z) ⊙ Wᵀδ = 0, so every layer upstream of a zero layer receives no gradient at all, whatever
the activation. With ReLU and zero biases the zero layer's own pre-activations sit at 0, where
PyTorch's and Keras' ReLU gradient is 0.
"""
    fix = """
Unsafe fix (`--fix --unsafe-fixes`): an `nn.init.zeros_/ones_/constant_(w, ...)` call becomes
`nn.init.kaiming_normal_(w, nonlinearity="relu")` for ReLU-like layers or
`nn.init.xavier_uniform_(w)` otherwise; Keras `kernel_initializer="zeros"` (or `Zeros()`,
`Constant(c)`) becomes `"he_normal"` or `"glorot_uniform"`. In-place forms `w.data.fill_(c)` /
`w.data.zero_()` become the same `nn.init` call on `w` when the file imports `torch.nn` (a
finding carries a `fix` only when it can be applied). An init the code changes afterwards
(`w.add_(noise)`) is not a constant init and is never rewritten. Unsafe because it changes the
model's initial weights."""
    fixable = True

    VALID = [
        # Zero biases in TensorFlow graph code; the zero-initialised output layer of a softmax regression.
        Valid("""
import tensorflow as tf
x = tf.placeholder(tf.float32, [None, 784])
W1 = tf.get_variable("W1", [784, 128])
b1 = tf.Variable(tf.zeros([128]))
h = tf.nn.relu(tf.matmul(x, W1) + b1)
W2 = tf.Variable(tf.zeros([128, 10]))
logits = tf.matmul(h, W2) + tf.Variable(tf.zeros([10]))
"""),
        Valid("""
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 10)
        nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="relu")
        nn.init.zeros_(self.fc1.bias)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu())
""", use_instead=True),
        # Zero biases and BatchNorm constants are fine.
        Valid("""
import torch.nn as nn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 32)
        self.bn = nn.BatchNorm1d(32)
        self.fc2 = nn.Linear(32, 2)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm1d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
    def forward(self, x):
        return self.fc2(self.bn(self.fc1(x)).relu())
"""),
        # Zero init of a residual branch's last layer (ReZero/Fixup style).
        Valid("""
import torch.nn as nn
class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, d)
        self.fc2 = nn.Linear(d, d)
        nn.init.zeros_(self.fc2.weight)
    def forward(self, x):
        return x + self.fc2(self.fc1(x).relu())
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(*[Block(64) for _ in range(4)])
    def forward(self, x):
        return self.blocks(x)
"""),
        # Constant weights whose biases are torch's random default: the units differ by their bias and
        # get different gradients (measured: 4-16-16-1 tanh at 0.5, ratio 0.08, no identical rows).
        Valid("""
import torch.nn as nn
def init_weights(m):
    if type(m) == nn.Linear:
        m.weight.data.fill_(0.5)
model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1))
model.apply(init_weights)
"""),
        # Zero-initialised output head.
        Valid("""
from keras import layers, Sequential
model = Sequential([layers.Dense(64, activation="relu", input_shape=(8,)),
                    layers.Dense(1, kernel_initializer="zeros")])
"""),
    ]
    INVALID = [
        Invalid("""
import tensorflow as tf
x = tf.placeholder(tf.float32, [None, 784])
W1 = tf.Variable(tf.zeros([784, 128]))
b1 = tf.Variable(tf.zeros([128]))
h = tf.nn.relu(tf.matmul(x, W1) + b1)
W2 = tf.Variable(tf.zeros([128, 10]))
logits = tf.matmul(h, W2)
""", line=3, column=6, message=r"every weight zero"),
        Invalid("""
import keras
from keras import layers
model = keras.Sequential([keras.Input(shape=(16,)),
                          layers.Dense(64, activation="relu", kernel_initializer="zero"),
                          layers.Dense(1)])
""", line=4, message=r"every weight zero"),
        Invalid("""
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 10)
        nn.init.zeros_(self.fc1.weight)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu())
""", line=9, column=9, message=r"every weight zero \(Linear \(self\.fc1\) at line 7\)", example=True),
        Invalid("""
from keras import layers, Sequential
model = Sequential([layers.Dense(64, activation="relu", kernel_initializer="zeros", input_shape=(8,)),
                    layers.Dense(64, activation="relu", kernel_initializer="zeros"),
                    layers.Dense(1)])
""", line=2, column=21, count=2, message=r"every weight zero \(Dense at line 2\)"),
        Invalid("""
import torch.nn as nn
def init_weights(m):
    if type(m) == nn.Linear:
        m.weight.data.fill_(0.5)
        m.bias.data.fill_(0.0)
model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1))
model.apply(init_weights)
""", line=4, column=9, message=r"every weight the constant 0\.5"),
        # A constant layer right after a LayerNorm sums a zero-mean vector: it outputs its bias alone.
        Invalid("""
import torch.nn as nn
net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.LayerNorm(32), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))
for m in net:
    if isinstance(m, nn.Linear):
        nn.init.constant_(m.weight, 0.1)
""", line=5, column=9, message=r"right after a LayerNorm: the norm's output sums to zero"),
        # Constant readers of a residual stream pass every unit of a constant stem the same gradient.
        Invalid("""
import torch
import torch.nn as nn
class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, d)
        self.fc2 = nn.Linear(d, d)
    def forward(self, x):
        return x + 0.1 * self.fc2(torch.relu(self.fc1(x)))
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(8, 32)
        self.blocks = nn.ModuleList([Block(32) for _ in range(3)])
        self.head = nn.Linear(32, 1)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.constant_(m.weight, 0.1)
    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks:
            x = b(x)
        return self.head(x)
""", line=18, column=17, message=r"only layers that start constant read its output"),
    ]

    def check(self, model: Model, context: RuleContext) -> Iterable[Finding]:
        activations = {id(u.layer): u.activation for u in units_and_barriers(model.path) if isinstance(u, Unit)}
        exempt = exempt_layers(model)
        by_site: dict[tuple[int, int], list[Layer]] = {}
        hidden = _hidden_layers(model)
        first_layer = hidden[0] if hidden else None
        bias_cancelled = _bias_cancelled(model.path)
        common_mode = _common_mode_removed(model.path)
        shared: dict[tuple[int, int], list[Layer]] = {}  # constant layers whose shared part is removed after them
        top = _weight_layers(model.path)
        head = top[-1] if top else None
        if head is not None and head.weight_init is not None and head.weight_init.is_constant \
                and head.weight_init.constant_value not in (None, 0) and id(head) in common_mode:
            span = head.weight_init.span or head.span
            shared.setdefault((span.line, span.col), []).append(head)
        for index, layer in enumerate(hidden):
            init = layer.weight_init
            if init is None or not init.is_constant or id(layer) in exempt:
                continue
            after = hidden[index + 1].weight_init if index + 1 < len(hidden) else None
            starved = after is not None and after.is_constant and after.constant_value == 0
            if init.constant_value != 0 and _random_bias(layer) and not starved and id(layer) not in bias_cancelled:
                # Identical non-zero weights, but units that differ by a random bias (torch's default
                # U(±1/√fan_in)) see different φ′(z) and get different gradients: they do not stay
                # identical (measured: 0.02-0.5 constant ReLU/tanh weights with default biases, ratio
                # 0.08-0.6, no identical rows) -- unless a zero layer after them sends them none. Zero
                # weights are reported whatever the bias: the layer ignores its input and every
                # gradient row is a multiple of one vector (and it starves the layers before it).
                # A BatchNorm right after the layer subtracts each unit's batch mean, bias included:
                # the units are identical again (measured: constant 0.1, ReLU + BatchNorm1d, 24 × 256,
                # identical rows in 3/3 seeds), so those are reported (``_bias_cancelled``).
                if id(layer) in common_mode:
                    span = init.span or layer.span
                    shared.setdefault((span.line, span.col), []).append(layer)
                continue
            span = init.span or layer.span
            by_site.setdefault((span.line, span.col), []).append(layer)
        for layers in by_site.values():
            init = layers[0].weight_init
            assert init is not None
            span = init.span or layers[0].span
            value = init.constant_value
            what = "zero" if value == 0 else (f"the constant {value:g}" if value is not None else "a constant")
            names = _group_names(layers)
            count = f"{len(layers)} hidden weight layers" if len(layers) > 1 else "hidden weight layer"
            these, verb = ("These", "start") if len(layers) > 1 else ("A", "starts")
            # Zero weights pass no gradient back (δ_{l-1} = φ'(z) ⊙ Wᵀδ_l = 0), whatever the activation;
            # the first weight layer has nothing before it to starve.
            starves = value == 0 and any(layer is not first_layer for layer in layers)
            starve_note = ", and no gradient flows back through zero weights to the earlier layers" if starves else ""
            message = (
                f"{these} {count} {verb} with every weight {what} ({names}): "
                f"the units of a layer stay identical (symmetry){starve_note}. "
                f"Initialise with {_advice(layers, activations)}; "
                f"keep zeros for biases, the output head or a residual branch's last layer."
            )
            fix = _fix_for(layers, span, activations)
            where = Span(span.line, span.col, span.end_line, span.end_col, span.origin)
            yield Finding(where, message, Severity.WARNING, symmetric(len(layers), starves), fix=fix)
        for layers in shared.values():
            yield _shared_part_removed(layers, common_mode, activations)
        reported = {id(layer) for group in (*by_site.values(), *shared.values()) for layer in group}
        lost: dict[tuple[int, int], list[Layer]] = {}
        centred = _centred_inputs(model.path)
        for layer in top[1:]:  # a layer before it gets no gradient
            if id(layer) in centred and _constant(layer) and id(layer) not in reported:
                span = layer.weight_init.span or layer.span if layer.weight_init is not None else layer.span
                lost.setdefault((span.line, span.col), []).append(layer)
        for layers in lost.values():
            yield _input_lost(layers, centred[id(layers[0])], activations)
        reported |= {id(layer) for group in lost.values() for layer in group}
        if not lost:
            for layer in _common_gradient_layers(model.path, activations):
                if id(layer) not in reported:
                    reported.add(id(layer))
                    yield _common_gradient_finding(layer, activations)
        for run, log10_loss in _common_mode_blowups(model.path, reported):
            yield _common_mode_finding(run, log10_loss, activations)
