"""The framework-neutral description of a model that rules judge.

Extraction (``gradlint.extract``) turns syntax into these objects; rules never see syntax.
A model is its main path: layers in execution order, with residual blocks and gating
sub-paths as structured nodes, so that "what sits between two sigmoid layers" is a
question about this list, not about tokens.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import field

from gradlint.records import dataclass


@dataclass(frozen=True)
class Span:
    """A source range, 1-based lines and 0-based columns (as in ``ast``)."""

    line: int
    col: int
    end_line: int
    end_col: int
    # (path, line) of the definition in another file of the project this span stands for (a layer
    # of a block imported from a sibling module); the span itself is where the linted file uses it.
    origin: tuple[str, int] | None = None


class LayerKind(str, enum.Enum):
    DENSE = "dense"
    CONV = "conv"
    RECURRENT = "recurrent"
    EMBEDDING = "embedding"
    ATTENTION = "attention"
    ACTIVATION = "activation"
    NORMALIZATION = "normalization"
    DROPOUT = "dropout"
    POOLING = "pooling"
    SCALE = "scale"  # multiplication by a learned or constant scalar/vector (layer scale, ReZero α)
    OTHER = "other"
    # A gradient stop: the value passes unchanged, no gradient flows back through it (``x.detach()``,
    # ``x.data``, a ``torch.no_grad()`` block, a numpy round trip, ``tf.stop_gradient``).
    STOP = "stop"
    UNKNOWN = "unknown"  # a call gradlint could not resolve: rules must not guess across it


WEIGHT_KINDS = frozenset({LayerKind.DENSE, LayerKind.CONV, LayerKind.EMBEDDING})

#: OTHER layers that re-arrange the features (Keras Flatten/Reshape, ``tf.reshape``): their
#: ``fan_out`` is the width on the last axis after them, None when it is unknown — never the
#: width before them (channels are not the features after a Flatten).
RESHAPE_OPS = frozenset({"reshape", "Flatten", "Reshape"})


# Init.params["mode"] codes (params are numbers): the fan a variance-scaling init divides by.
INIT_MODES = {0: "fan_in", 1: "fan_out", 2: "fan_avg"}


@dataclass
class Init:
    """A weight (or bias) initialisation, in the names ``gradlint.gradflow`` understands.

    ``scheme`` is e.g. ``torch_default``, ``glorot_uniform``, ``kaiming_normal``, ``normal``,
    ``zeros``, ``constant``; ``params`` holds its numeric arguments (std, gain, value, ...).
    ``span`` is where the user set it (None for a framework default).
    """

    scheme: str
    params: dict[str, float] = field(default_factory=dict)
    span: Span | None = None
    written: str | None = None  # the init as the source writes it, for messages


    @property
    def is_constant(self) -> bool:
        return self.scheme in {"zeros", "ones", "constant"}

    @property
    def constant_value(self) -> float | None:
        if self.scheme == "zeros":
            return 0.0
        if self.scheme == "ones":
            return 1.0
        if self.scheme == "constant":
            return self.params.get("value")
        return None

    def describe(self) -> str:
        if self.written:
            return self.written
        if self.scheme == "torch_default":
            return "PyTorch default init"
        if self.scheme == "keras_default":
            return "Keras default init (glorot_uniform)"
        args = ", ".join(f"mode={INIT_MODES.get(int(v), v)!r}" if k == "mode" else f"{k}={v:g}"
                         for k, v in sorted(self.params.items(), key=lambda kv: (kv[0] != "mode", kv[0]))
                         if k != "rescale")
        text = f"{self.scheme}({args})" if args else self.scheme
        rescale = self.params.get("rescale")
        return f"{text} scaled by {rescale:g}" if rescale is not None else text


@dataclass(frozen=True)
class Window:
    """How a conv or pooling layer maps the spatial sizes of its input, per spatial axis, as its
    arguments say: a sliding window (``kernel``, ``stride``, zero ``padding`` per axis or Keras'
    ``"same"``/``"valid"``, ``dilation``; a transposed conv's ``output_padding``), an adaptive pool to
    ``output`` sizes (1: global pooling), or a reduction over tensor axes ``reduce`` (``x.mean((2, 3))``,
    axes counted with the batch axis as torch counts them)."""

    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] | str = ()
    dilation: tuple[int, ...] = ()
    transposed: bool = False
    output_padding: tuple[int, ...] = ()
    output: tuple[int, ...] = ()
    reduce: tuple[int, ...] = ()
    # A resampling (an OTHER layer: upsampling, pixel (un)shuffle, padding, cropping): each spatial size
    # n becomes ⌊n·scale⌋ + added (or ``output`` when the size is given); ``zero_pad``: the left/right
    # zeros per axis of a symmetric constant-0 padding, which a conv right after it sees as its own
    # padding (taps on zeros add nothing).
    scale: tuple[float, ...] = ()
    added: tuple[int, ...] = ()
    zero_pad: tuple[int, ...] = ()


@dataclass(eq=False)
class Layer:
    """One operation on the main path. ``eq=False``: identity matters (shared modules)."""

    kind: LayerKind
    op: str  # the constructor or function as written, e.g. "Linear", "Dense", "sigmoid"
    span: Span
    framework: str  # "torch" | "keras"
    name: str | None = None  # attribute path where known, e.g. "self.fc1"
    activation: str | None = None  # canonical activation (ACTIVATION layers, or Keras' fused activation=)
    act_param: float | None = None  # leaky_relu slope, elu alpha
    fan_in: int | None = None
    fan_out: int | None = None
    weight_init: Init | None = None  # None: unknown
    bias: bool | None = True
    bias_init: Init | None = None
    # RECURRENT layers: the hidden-to-hidden matrix's init (torch weight_hh_l*, Keras recurrent_kernel);
    # ``weight_init`` is the input kernel's. None: unknown.
    recurrent_init: Init | None = None
    units: int | None = None  # RECURRENT layers: the hidden size of one direction (fan_out may be 2× it)
    # LSTM layers: the forget gate's bias at init (Keras' unit_forget_bias=True, its default: 1; torch's
    # U(±1/√H) biases: 0 in the mean); None: unknown (unit_forget_bias not a literal).
    forget_bias: float | None = 0.0
    # Transposed convs: the product of the strides (each output sees receptive/stride_area taps of each
    # input channel); None: not a transposed conv, or its stride is not a literal.
    stride_area: int | None = None
    scale_value: float | None = None  # SCALE layers: the initial multiplier when constant
    shift_value: float | None = None  # SCALE layers: a constant added after it (``1 - g``: scale −1, shift 1)
    # SCALE layers by a learned parameter (ReZero α, SkipInit, layer scale): how many elements it has
    # (1 for a scalar or an unstated shape); None: a constant factor, nothing to train.
    scale_params: int | None = None
    # GroupNorm with several channels per group but not all of them: the channels per group (literal counts)
    norm_group: int | None = None
    rate: float | None = None  # DROPOUT layers: the drop probability when a literal in [0, 1); None: unknown
    receptive: int | None = None  # conv kernel area (fan_in = in_channels x receptive / groups)
    axis: int | None = None  # softmax: the dimension it normalizes over, when written (torch's dim=)
    reason: str | None = None  # UNKNOWN layers: why extraction could not resolve it (for `gradlint inspect`)
    # The code freezes its parameters (``requires_grad = False``, ``requires_grad_(False)``, Keras
    # ``trainable = False``) or loads them (``load_state_dict``): it is not meant to learn from this
    # model's gradient, so a gradient stop before it is by design.
    frozen: bool = False
    # Its weights are set by code gradlint does not read: a base class of the model's hierarchy it
    # cannot read defines how they are initialised or loaded (Hugging Face's ``PreTrainedModel``:
    # ``post_init``, ``from_pretrained``). Whether they start random or from a checkpoint is
    # unknown, so a stop that cuts them off while the rest of the model still trains may be a
    # pretrained part kept frozen on purpose (``analysis/cuts.py``).
    external_weights: bool = False
    # torch: the code turns ``requires_grad`` off for its parameters (and not back on): not loaded, not
    # Keras-frozen -- nothing of it can get a gradient.
    grad_off: bool = False
    window: Window | None = None  # conv and pooling layers: how they map spatial sizes (None: unknown)
    # A torch cell (nn.RNNCell ...) whose outputs of several time steps the forward stacks or
    # concatenates (``outs.append(self.fc(h))`` ... ``torch.stack(outs, 1)``): every step's output
    # reaches what follows, so the first steps get a gradient of their own, not only the one carried
    # back through time from the last step (GRD008).
    reads_every_step: bool = False
    # A Keras recurrent layer built with ``return_sequences=True``: it hands on its output at every
    # step (whether each reaches the loss depends on what follows it: another recurrence does not).
    returns_sequences: bool = False
    # NORMALIZATION layers whose arguments decide what they normalize over: "batch" (statistics per
    # unit: GroupNorm with one channel per group is InstanceNorm) or "layer" (per example over the
    # features: GroupNorm(1, C) is LayerNorm over C x H x W); None: told by the op alone.
    norm_stats: str | None = None

    @property
    def has_weight(self) -> bool:
        return self.kind in WEIGHT_KINDS

    def describe(self) -> str:
        where = f" ({self.name})" if self.name else ""
        return f"{self.op}{where} at line {self.span.line}"


@dataclass(eq=False)
class Residual:
    """``shortcut(x) + branch(x)``; an empty shortcut is the identity."""

    branch: list[Node]
    shortcut: list[Node]
    span: Span
    concat: bool = False  # DenseNet-style concatenation: gradient also bypasses the branch


@dataclass(eq=False)
class Gate:
    """``x * g(x)``: the gating sub-path multiplies the main path; it is not on it."""

    path: list[Node]
    span: Span


Node = Layer | Residual | Gate


@dataclass
class InputHint:
    """What input the model expects, as far as the source says."""

    kind: str  # features | image | tokens | sequence | unknown
    shape: tuple[int, ...] | None = None
    vocab: int | None = None


@dataclass(frozen=True)
class Configuration:
    """One iteration of a loop over literal configurations that builds a model per iteration
    (``for name, init in [("glorot", "glorot_uniform"), ("zero", "zero")]:``)."""

    label: str  # the loop variables that vary, as written: "init='zero'"
    group: str  # which loop (nested loops: outer/inner), to tell when every configuration agrees
    count: int  # how many configurations the loop (nest) has


@dataclass(eq=False)
class Model:
    """A model definition found in a file."""

    name: str
    framework: str  # torch | keras
    origin: str  # class | sequential | functional | factory
    span: Span
    path: list[Node]
    # Top-level target the dynamic check can build: symbol name and how to build it.
    symbol: str | None = None
    build: str | None = None  # class | factory | variable
    end_line: int | None = None
    input_hint: InputHint | None = None
    origin_id: int | None = None  # identity of the built object, to tie training facts to the model
    # Whether no UNKNOWN node sits on the main path; None: read it off ``path`` (a cached summary
    # has no layers, so it carries the answer computed when the layers were there).
    understood: bool | None = None
    configuration: Configuration | None = None  # built by one iteration of a configuration loop
    # Other routes a gradient can take from what the model computes back to its layers, besides
    # ``path``: the other tensors its forward returns (a tuple's items), stores on an attribute or
    # hands to a loss (an auxiliary loss, Keras ``add_loss``). Only gradient stops need them.
    side_routes: list[Sequence[Node]] = field(default_factory=list)

    @property
    def fully_understood(self) -> bool:
        """Nothing unresolved on the main path (residual branches included, gating sub-paths not): no
        UNKNOWN node, no activation that could not be resolved, no weight layer whose init (or a recurrent
        layer's recurrent init) is unknown. See ``unresolved``."""
        if self.understood is not None:
            return self.understood
        return not any(True for _ in unresolved(self.path))

    def layers(self) -> Iterator[Layer]:
        """All layers in execution order, including residual branches and gates."""
        yield from iter_layers(self.path)


#: Activation names extraction gives what it could not resolve (``activation=act_fn`` from a variable, an
#: RNN's ``nonlinearity=`` not a literal) or recognised without a model of it (Tanhshrink, Softshrink).
UNRESOLVED_ACTIVATIONS = frozenset({"unknown", "other"})
_INIT_KINDS = frozenset({LayerKind.DENSE, LayerKind.CONV, LayerKind.EMBEDDING, LayerKind.RECURRENT})


def _init_unknown(init: Init | None) -> bool:
    return init is None or init.scheme == "unknown"


def unresolved(path: list[Node], include_gates: bool = False) -> Iterator[tuple[Layer, str]]:
    """(layer, what about it is unresolved) for each layer of ``path`` gradlint could not read in full: an
    UNKNOWN node, an unresolved activation, an unknown weight, bias or recurrent init. Rules never reason
    across these; ``Model.fully_understood`` is whether there are none on the main path."""
    for layer in iter_layers(path, include_gates):
        if layer.kind == LayerKind.UNKNOWN:
            yield layer, layer.reason or f"unresolved call {layer.op}"
            continue
        if layer.activation in UNRESOLVED_ACTIVATIONS and (layer.kind == LayerKind.ACTIVATION or layer.has_weight
                                                           or layer.kind == LayerKind.RECURRENT):
            what = "not resolved" if layer.activation == "unknown" else "not modelled (treated as linear)"
            yield layer, f"activation of {layer.describe()} {what}"
        if layer.kind not in _INIT_KINDS:
            continue
        if _init_unknown(layer.weight_init):
            why = layer.weight_init.written if layer.weight_init is not None and layer.weight_init.written else None
            yield layer, f"init of {layer.describe()} unknown" + (f": {why}" if why else "")
        elif layer.kind == LayerKind.RECURRENT and _init_unknown(layer.recurrent_init):
            yield layer, f"recurrent init of {layer.describe()} unknown"
        elif layer.bias is not False and layer.bias_init is not None and layer.bias_init.scheme == "unknown":
            yield layer, f"bias init of {layer.describe()} unknown"

def iter_layers(path: list[Node], include_gates: bool = True) -> Iterator[Layer]:
    for node in path:
        if isinstance(node, Layer):
            yield node
        elif isinstance(node, Residual):
            yield from iter_layers(node.shortcut, include_gates)
            yield from iter_layers(node.branch, include_gates)
        elif isinstance(node, Gate) and include_gates:
            yield from iter_layers(node.path, include_gates)


def output_activation(nodes: Sequence[Node]) -> str | None:
    """The activation a path ends with: ``linear`` for a bare weight layer; None when unknown."""
    for node in reversed(nodes):
        if not isinstance(node, Layer):
            return None
        if node.kind in (LayerKind.DROPOUT, LayerKind.POOLING, LayerKind.OTHER, LayerKind.SCALE, LayerKind.STOP):
            continue
        if node.kind == LayerKind.ACTIVATION:
            return node.activation
        if node.kind in (LayerKind.DENSE, LayerKind.CONV):
            return node.activation or "linear"
        return None
    return None


def gradient_blocked(nodes: Sequence[Node]) -> bool:
    """Whether no gradient flows from the end of ``nodes`` back to its start: a gradient stop on it,
    or a residual whose branch and shortcut are both blocked (a sum of a stopped and a live value
    is live). A gate's sub-path does not block the path it multiplies. Cached per residual."""
    for node in nodes:
        if isinstance(node, Layer):
            if node.kind == LayerKind.STOP:
                return True
        elif isinstance(node, Residual):
            cached = getattr(node, "_blocked", None)
            if cached is None:
                cached = gradient_blocked(node.branch) and gradient_blocked(node.shortcut)
                node._blocked = cached  # type: ignore[attr-defined]
            if cached:
                return True
    return False
