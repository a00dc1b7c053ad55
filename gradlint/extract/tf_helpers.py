"""Pure helpers of the TensorFlow graph-code handler (``gradlint.extract.tensorflow``): shapes,
numbers, initializer parameters and what a path of graph nodes holds. No interpreter state."""

from __future__ import annotations

import ast
import math
from collections.abc import Sequence

from gradlint.extract import tf_catalog
from gradlint.extract.common import (
    dropout_rate,
    shape_dims,
)
from gradlint.extract.values import (
    Const,
    LayerObj,
    ParamV,
    Ref,
    TensorConstV,
    TensorV,
    Value,
)
from gradlint.model import WEIGHT_KINDS, Init, InputHint, Layer, LayerKind, Node, Span, iter_layers


def attach_bias(tensor: TensorV, bias: ParamV) -> TensorV:
    """``tf.matmul(x, W) + b``: the bias belongs to the weight layer just applied (its init enters σ_b²)."""
    last = tensor.nodes[-1] if tensor.nodes else None
    if (
        isinstance(last, Layer)
        and last.kind in (LayerKind.DENSE, LayerKind.CONV)
        and last.bias is False
        and last.bias_init is None
        and hasattr(last, "_tf_weight")
        and bias.init is not None
    ):
        last.bias = True
        last.bias_init = bias.init
    return tensor


def _reshaped(span: Span, width: int | None, framework: str) -> Layer:
    """A reshape/flatten after layers: same values, but the width on the last axis changes (known only
    when written: ``tf.reshape(h, [-1, 7 * 7 * 64])``)."""
    return Layer(LayerKind.OTHER, "reshape", span, framework, activation="linear", bias=False, fan_out=width)


def _rearranged(leaf: str, args: list[Value], kwargs: dict[str, Value]) -> Value:
    """``tf.reshape`` / ``tf.transpose`` of a tensor with a known init: the same init, the new shape."""
    source = args[0]
    assert isinstance(source, TensorConstV)
    shape: tuple[int, ...] | None = None
    if leaf == "reshape":
        dims = shape_dims(args[1] if len(args) > 1 else kwargs.get("shape"))
        shape = _known(dims)
        if dims is not None and shape is None and source.shape is not None and dims.count(None) == 1:
            rest = math.prod(d for d in dims if d is not None)  # one -1 entry: what the total leaves
            if rest and math.prod(source.shape) % rest == 0:
                shape = tuple(d if d is not None else math.prod(source.shape) // rest for d in dims)
    elif source.shape is not None:
        perm = shape_dims(args[1] if len(args) > 1 else kwargs.get("perm"))
        order = _known(perm) if perm is not None else tuple(reversed(range(len(source.shape))))
        if order is not None and sorted(order) == list(range(len(source.shape))):
            shape = tuple(source.shape[i] for i in order)
    return TensorConstV(source.init, shape)


def _weight_keys(nodes: Sequence[Node]) -> frozenset[int]:
    return frozenset(
        getattr(layer, "_tf_weight", id(layer)) for layer in iter_layers(list(nodes)) if layer.kind in WEIGHT_KINDS
    )


def _weight_count(nodes: Sequence[Node]) -> int:
    return sum(1 for layer in iter_layers(list(nodes)) if layer.kind in WEIGHT_KINDS)


def _first_span(nodes: Sequence[Node]) -> Span:
    for layer in iter_layers(list(nodes)):
        return layer.span
    return Span(1, 0, 1, 0)


def _known(dims: tuple[int | None, ...] | None) -> tuple[int, ...] | None:
    if dims is None or any(d is None for d in dims):
        return None
    return tuple(d for d in dims if d is not None)


def _dim(dims: tuple[int | None, ...] | tuple[int, ...] | None, index: int) -> int | None:
    if dims is None or len(dims) != 2:
        return None
    value = dims[index]
    return value if isinstance(value, int) and value > 0 else None


def _hint_from_shape(dims: tuple[int | None, ...] | None) -> InputHint:
    """``[None, 784]`` -> features (784,); ``[None, 28, 28, 1]`` -> image (28, 28, 1), channels last."""
    if dims is None or len(dims) < 2:
        return InputHint("unknown")
    rest = dims[1:]
    if any(d is None or d == 0 for d in rest):
        last = rest[-1]
        return InputHint("unknown") if last is None else InputHint("unknown", None)
    shape = tuple(d for d in rest if d is not None)
    kind = {1: "features", 2: "sequence", 3: "image"}.get(len(shape), "unknown")
    return InputHint(kind, shape)


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _constant_init(value: float) -> Init:
    if value == 0.0:
        return Init("zeros")
    if value == 1.0:
        return Init("ones")
    return Init("constant", {"value": value})


def _truthy(value: Value | None) -> bool:
    return isinstance(value, Const) and bool(value.value) is True


def _leaf(value: Value) -> str:
    if isinstance(value, Ref):
        return value.leaf
    if isinstance(value, Const) and isinstance(value.value, str):
        return value.value
    if isinstance(value, LayerObj):
        return value.layer.op
    return "activation"


def _variance_scaling(name: str, bound: dict[str, Value], values: dict[str, float]) -> dict[str, float]:
    """Params in gradflow's terms: ``scale`` and a numeric ``mode`` (0 fan_in, 1 fan_out, 2 fan_avg)."""
    modes = {"fan_in": 0.0, "fan_out": 1.0, "fan_avg": 2.0}
    mode = bound.get("mode")
    code = modes.get(mode.value.lower(), 0.0) if isinstance(mode, Const) and isinstance(mode.value, str) else 0.0
    if name.endswith(("uniform_unit_scaling_initializer", "uniform_unit_scaling")):
        factor = values.get("factor", 1.0)
        return {"scale": factor * factor}
    scale = values.get("factor", 2.0) if name.startswith("contrib.layers.") else values.get("scale", 1.0)
    return {"scale": scale, "mode": code} if code else {"scale": scale}


def _uses_tf1(tree: ast.Module) -> bool:
    """TF 1.x graph code (placeholders, sessions, get_variable, contrib, compat.v1): its native
    initializers have TF 1 defaults (``tf.random_normal_initializer()``: stddev 1.0, not 0.05)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in tf_catalog.TF1_MARKERS:
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            )
            if any(n and ("compat.v1" in n or n.startswith("tensorflow.contrib")) for n in names):
                return True
    return False



def dropout_layer(leaf: str, args: Sequence[Value], kwargs: dict[str, Value], span: Span, framework: str,
                  tf1: bool) -> Layer | None:
    """``tf.nn.dropout(x, keep_prob=0.5)`` / ``(x, rate=0.5)``: graph code drops whenever the op runs
    (there is no train/eval mode), so a known rate is a train-mode Dropout (inverted: scaled by
    1/(1 − rate)). The second positional argument is ``keep_prob`` in TF 1.x (``tf.compat.v1``) and
    ``rate`` in TF 2. None: no rate given or not a literal (a keep_prob placeholder) -- read as before,
    as the identity (and alpha_dropout, whose keep_prob scaling differs)."""
    if leaf != "dropout":
        return None
    if "rate" in kwargs:
        rate = dropout_rate(kwargs["rate"], None)
    elif "keep_prob" in kwargs or (len(args) > 1 and tf1):
        keep = dropout_rate(kwargs.get("keep_prob", args[1] if len(args) > 1 else None), None)
        rate = 1.0 - keep if keep is not None else None
    else:
        rate = dropout_rate(args[1], None) if len(args) > 1 else None
    if rate is None or rate <= 0.0:
        return None
    layer = Layer(LayerKind.DROPOUT, "dropout", span, framework, bias=False)
    layer.rate = rate
    return layer
