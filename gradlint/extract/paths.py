"""Path algebra: how the layer paths of two tensors combine at ``a + b`` (a residual), ``a * b``
(a gate), concatenation and other merges, with their size bounded."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from gradlint.extract import catalog
from gradlint.extract.values import UNKNOWN, Geometry, LayerObj, ListV, LossV, NodeSeq, TensorV, Value
from gradlint.model import (
    RESHAPE_OPS,
    Gate,
    Layer,
    LayerKind,
    Node,
    Residual,
    Span,
    gradient_blocked,
    output_activation,
)


def _common_prefix(a: Sequence[Node], b: Sequence[Node]) -> int:
    if isinstance(a, NodeSeq):
        known = a.common_prefix(b)
        if known is not None:
            return known  # two views of one path list: O(1)
    n = 0
    for x, y in zip(a, b, strict=False):
        if x is not y:
            break
        n += 1
    return n


class _Stops:
    """How many gradient stops the current file's interpretation made: while none, no path can be
    stopped and merges skip the check (reset per file by ``gradlint.extract.extract``)."""

    made = 0


def reset_stops() -> None:
    _Stops.made = 0


def stops_made() -> bool:
    return bool(_Stops.made)


def blocked(nodes: Sequence[Node]) -> bool:
    """``gradient_blocked``, free while the file made no gradient stop."""
    return bool(_Stops.made) and gradient_blocked(nodes)


def stopped(tensor: TensorV, op: str, span: Span, framework: str) -> TensorV:
    """``tensor`` with its gradient stopped at ``op`` (``x.detach()``, ``tf.stop_gradient(x)``): the
    same values and shape, and a STOP node that no gradient flows back through. A new value (an
    in-place ``detach_()`` rebinds the tensor to it)."""
    nodes = tensor.nodes
    if nodes and isinstance(nodes[-1], Layer) and nodes[-1].kind == LayerKind.STOP:
        return TensorV(nodes, tensor.hint, tensor.shape)  # x.detach().cpu().numpy(): one stop
    _Stops.made += 1
    return TensorV(nodes + (Layer(LayerKind.STOP, op, span, framework, bias=False),), tensor.hint, tensor.shape)


def floored(tensor: TensorV, op: str, span: Span, framework: str) -> TensorV:
    """A bound put under a probability before its log: ``p.clamp(1e-7, 1 - 1e-7)``, ``tf.clip_by_value(p, 1e-10,
    1.0)``, ``tf.maximum(p, eps)``, ``p + K.epsilon()`` (a shift not a literal). When ``p`` is a probability (its
    path ends in sigmoid/softmax) or a fresh input (the ``y_pred`` a Keras loss is probed with), an OTHER layer
    ``op`` marks the bound, which every analysis passes through and a log of it reads (GRD018); elsewhere the
    path goes on unchanged, as before (a clip is not modelled)."""
    if tensor.nodes and output_activation(tensor.nodes) not in ("sigmoid", "softmax"):
        return tensor
    return TensorV(tensor.nodes + (Layer(LayerKind.OTHER, op, span, framework, bias=False),), tensor.hint, tensor.shape)


def without_gradient(value: Value, span: Span, op: str = "no_grad") -> Value:
    """A value computed with gradient recording off (a ``torch.no_grad()`` block, a method decorated with
    ``@torch.no_grad()``): its tensors (also in a tuple or list) stopped."""
    if isinstance(value, TensorV):
        return stopped(value, op, span, "torch")
    if isinstance(value, LossV) and value.severed is None:
        # a loss computed with recording off: its backward() has no graph to any model
        return LossV(value.use, value.pending, (span, op))
    if isinstance(value, ListV) and any(isinstance(item, TensorV) for item in value.items):
        return ListV([without_gradient(item, span, op) for item in value.items], partial=value.partial,
                     is_tuple=value.is_tuple)
    return value


def _live_first(a: Sequence[Node], b: Sequence[Node]) -> bool | None:
    """Which of two paths a merge that keeps one should keep for the gradient: True for ``a``, False
    for ``b`` when exactly one of them is stopped (the merged value is live through the other);
    None when that does not decide it."""
    if not _Stops.made:
        return None
    blocked_a, blocked_b = gradient_blocked(a), gradient_blocked(b)
    if blocked_a == blocked_b:
        return None
    return blocked_b


def merge_residual(left: TensorV, right: TensorV, span: Span) -> TensorV:
    n = _common_prefix(left.nodes, right.nodes)
    a, b = list(left.nodes[n:]), list(right.nodes[n:])
    if not a and not b:
        return left  # x + x
    hint = left.hint or right.hint
    if n == 0 and a and b:
        # Two unrelated inputs (e.g. two model inputs): keep the longer as the main path (the live
        # one when the other's gradient is stopped).
        live = _live_first(a, b)
        if live is not None:
            return left if live else right
        return left if len(a) >= len(b) else right
    branch, shortcut = (a, b) if _weight_depth(a) >= _weight_depth(b) else (b, a)
    return _bounded(TensorV(left.nodes[:n] + (Residual(branch, shortcut, span),), hint), span)


def merge_gate(left: TensorV, right: TensorV, span: Span) -> TensorV:
    n = _common_prefix(left.nodes, right.nodes)
    a, b = list(left.nodes[n:]), list(right.nodes[n:])
    hint = left.hint or right.hint
    live = _live_first(a, b)
    if live is not None and n == 0:
        return left if live else right
    if live is not None:  # ``x * mask.detach()``: the stopped factor is the gate, the live one the path
        main, gate = (a, b) if live else (b, a)
    elif _ends_in_gate(b) and not _ends_in_gate(a):
        main, gate = a, b
    elif _ends_in_gate(a) and not _ends_in_gate(b):
        main, gate = b, a
    elif n == 0:
        return left if len(a) >= len(b) else right
    else:
        main, gate = (a, b) if _weight_depth(a) >= _weight_depth(b) else (b, a)
    base = left.nodes[:n]
    return _bounded(TensorV(base + tuple(main) + ((Gate(gate, span),) if gate else ()), hint), span)


def merge_other(left: TensorV, right: TensorV) -> TensorV:
    n = _common_prefix(left.nodes, right.nodes)
    a, b = left.nodes[n:], right.nodes[n:]
    live = _live_first(a, b)  # q @ k.detach(): the gradient reaches the shared layers through q
    if live is not None:
        return left if live else right
    return left if _weight_depth(list(a)) >= _weight_depth(list(b)) else right


def merge_many(tensors: list[TensorV], span: Span, concat: bool) -> TensorV:
    result = tensors[0]
    for other in tensors[1:]:
        n = _common_prefix(result.nodes, other.nodes)
        a, b = list(result.nodes[n:]), list(other.nodes[n:])
        if n and concat and (a or b):
            branch, shortcut = (a, b) if _weight_depth(a) >= _weight_depth(b) else (b, a)
            result = _bounded(TensorV(result.nodes[:n] + (Residual(branch, shortcut, span, concat=True),),
                                      result.hint or other.hint), span)
            if _too_complex(result):
                # Nothing merged after it makes the structure known again; folding on costs O(length)
                # per tensor: ``torch.stack(steps)`` in each of a 512-step decoding loop took minutes.
                break
        else:
            result = merge_other(result, other)
    return result


def _too_complex(tensor: TensorV) -> bool:
    last = tensor.nodes[-1] if tensor.nodes else None
    return isinstance(last, Layer) and last.kind == LayerKind.UNKNOWN and last.op == "too-complex"


MAX_STRUCTURE = 20_000  # nodes in one merged structure; beyond it the path becomes UNKNOWN


def _weight_depth(nodes: list[Node] | tuple[Node, ...]) -> int:
    depth = 0
    for node in nodes:
        if isinstance(node, Layer):
            depth += node.kind in (LayerKind.DENSE, LayerKind.CONV, LayerKind.RECURRENT, LayerKind.ATTENTION,
                                   LayerKind.EMBEDDING, LayerKind.UNKNOWN)
        else:
            depth += _cached(node)[0]
    return depth


def _size(nodes: list[Node] | tuple[Node, ...]) -> int:
    return sum(1 if isinstance(n, Layer) else _cached(n)[1] for n in nodes)


def _cached(node: Node) -> tuple[int, int]:
    """(weight depth, node count) of a Residual/Gate, computed once: paths are DAGs that a
    recurrent loop (RAFT, unrolled RNNs) can make exponentially large as trees."""
    cached = getattr(node, "_metrics", None)
    if cached is None:
        if isinstance(node, Residual):
            cached = (max(_weight_depth(node.branch), _weight_depth(node.shortcut)),
                      1 + _size(node.branch) + _size(node.shortcut))
        else:
            assert isinstance(node, Gate)
            cached = (0, 1 + _size(node.path))
        node._metrics = cached  # type: ignore[union-attr]
    return cached


def _bounded(result: TensorV, span: Span) -> TensorV:
    if result.nodes and not isinstance(result.nodes[-1], Layer) and _cached(result.nodes[-1])[1] > MAX_STRUCTURE:
        return TensorV(result.nodes[:-1] + (Layer(LayerKind.UNKNOWN, "too-complex", span, "torch"),), result.hint)
    return result


def _ends_in_gate(nodes: list[Node]) -> bool:
    for node in reversed(nodes):
        if isinstance(node, Layer):
            if node.kind == LayerKind.ACTIVATION:
                return node.activation in catalog.GATE_ACTIVATIONS
            if node.kind in (LayerKind.DROPOUT, LayerKind.POOLING, LayerKind.OTHER, LayerKind.STOP, LayerKind.SCALE):
                continue  # a scaled or shifted gate (``1 - t``) still gates
            return node.activation in catalog.GATE_ACTIVATIONS if node.activation else False
        return False
    return False


def merge_all(tensors: list[TensorV], span: Span,
              merge: Callable[[TensorV, TensorV, Span], TensorV] | None) -> Value:
    """Fold ``merge`` over several tensors (a Keras ``Add()([a, b, c])``); None merges by concatenation."""
    if not tensors:
        return UNKNOWN
    if merge is None:
        return merge_many(tensors, span, concat=True)
    result = tensors[0]
    for other in tensors[1:]:
        result = merge(result, other, span)
    return result


_RESHAPES = RESHAPE_OPS


def current_width(tensor: TensorV | None) -> int | None:
    """Features on ``tensor``'s last axis: the last weight layer's output width, or the model input's
    (channels last, as in Keras and TensorFlow); None when a barrier, a concatenation or an unknown
    width sits in between. Keras passes this to ``build(input_shape)``; TF layer functions use it."""
    if tensor is None:
        return None
    width = _path_width(list(tensor.nodes))
    if width is not None:
        return width or _input_width(tensor)
    return None


def _input_width(tensor: TensorV) -> int | None:
    hint = tensor.hint
    if hint is None or not hint.shape or hint.kind not in ("features", "image", "sequence"):
        return None
    last = hint.shape[-1]
    return last if isinstance(last, int) and last > 0 else None


def _path_width(nodes: list[Node]) -> int | None:
    """The width after ``nodes``; 0: no weight layer on the path (the input's width applies)."""
    for node in reversed(nodes):
        if isinstance(node, Layer):
            if node.kind in (LayerKind.DENSE, LayerKind.CONV, LayerKind.EMBEDDING, LayerKind.RECURRENT):
                if node.fan_out is None:
                    return None
                return node.fan_out // (node.receptive or 1) if node.kind == LayerKind.CONV else node.fan_out
            if node.kind in (LayerKind.UNKNOWN, LayerKind.ATTENTION):
                return None
            if node.kind == LayerKind.OTHER and node.op in _RESHAPES:  # flattening: width as written, or unknown
                return node.fan_out
        elif isinstance(node, Residual):
            if node.concat:
                return None
            width = _path_width(node.branch)
            if width:
                return width
            if width is None:
                return None
    return 0


# ----------------------------------------------------------------------------- Keras shapes

#: Layer kinds that keep the per-example shape as it is.
_SAME_SHAPE_KINDS = (LayerKind.ACTIVATION, LayerKind.NORMALIZATION, LayerKind.DROPOUT, LayerKind.SCALE)
#: Keras pass-through layers that keep the shape (the others — Permute, RepeatVector, Resizing,
#: crops, paddings, up-sampling — change it in ways not tracked: the shape becomes unknown).
_SAME_SHAPE_PASSTHROUGH = frozenset({
    "InputLayer", "Rescaling", "Normalization", "RandomFlip", "RandomRotation", "RandomZoom",
    "RandomTranslation", "RandomContrast", "Identity", "Masking",
})
_MAX_ELEMENTS = 1 << 40  # a flattened width beyond this is a typo, not a model


def input_shape(tensor: TensorV) -> tuple[int, ...] | None:
    """``tensor``'s per-example shape: tracked, or the model input's (Keras: channels last) when no
    layer has acted on it yet."""
    if tensor.shape is not None:
        return tensor.shape or None  # (): known to be unknown, even before the first layer
    hint = tensor.hint
    if tensor.nodes or hint is None or not hint.shape or hint.kind not in ("features", "image", "sequence"):
        return None
    dims = tuple(hint.shape)
    return dims if all(isinstance(d, int) and d > 0 for d in dims) else None


def output_shape(obj: LayerObj, shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """The per-example shape after the Keras layer ``obj`` on an input of ``shape``; None: unknown
    (an unknown input, or a layer whose effect on the shape is not understood)."""
    if not shape:
        return None
    layer, geometry = obj.layer, obj.geometry
    if geometry is None:
        if layer.kind in _SAME_SHAPE_KINDS or (layer.kind == LayerKind.OTHER and layer.op in _SAME_SHAPE_PASSTHROUGH):
            return shape
        if layer.kind == LayerKind.DENSE and layer.op == "Dense" and layer.fan_out:
            return shape[:-1] + (layer.fan_out,)  # Dense maps the last axis
        if layer.kind == LayerKind.EMBEDDING and layer.fan_out:
            return shape + (layer.fan_out,)
        return None
    if geometry.op == "flatten":
        return _checked((math.prod(shape),))
    if geometry.op == "reshape":
        return _reshaped(shape, geometry.target)
    if geometry.op == "global":
        if geometry.channels_first:
            return shape[:1] + (1,) * (len(shape) - 1) if geometry.keepdims else shape[:1]
        return (1,) * (len(shape) - 1) + shape[-1:] if geometry.keepdims else shape[-1:]
    if geometry.op == "resize":
        spatial = shape[1:] if geometry.channels_first else shape[:-1]
        if len(spatial) != len(geometry.kernel):
            return None
        sized = tuple(n * m + a for n, m, a in zip(spatial, geometry.strides, geometry.kernel, strict=True))
        if any(d <= 0 for d in sized):
            return None
        return _checked(shape[:1] + sized if geometry.channels_first else sized + shape[-1:])
    if geometry.channels_first:  # (C, *spatial): the same rule on the spatial axes, channels first again
        moved = _windowed(layer, geometry, shape[1:] + shape[:1])
        return moved[-1:] + moved[:-1] if moved is not None else None
    return _windowed(layer, geometry, shape)


def _windowed(layer: Layer, g: Geometry, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """A sliding window over the spatial axes (Keras' conv/pooling output-size rule)."""
    axes = len(g.kernel)
    if len(shape) != axes + 1 or len(g.strides) != axes or len(g.dilation) != axes:
        return None
    spatial: list[int] = []
    for n, k, s, d in zip(shape[:-1], g.kernel, g.strides, g.dilation, strict=True):
        if g.op == "transpose":  # Keras' deconv_output_length (no output_padding)
            span = k + (k - 1) * (d - 1)
            size = n * s if g.padding == "same" else n * s + max(span - s, 0)
        elif g.padding == "same":
            size = -(-n // s)
        elif g.padding == "valid":
            size = (n - d * (k - 1) - 1) // s + 1
        else:
            return None
        if size <= 0:
            return None
        spatial.append(size)
    if layer.kind == LayerKind.CONV:
        if layer.fan_out is None or not layer.receptive:
            return None
        channels = layer.fan_out // layer.receptive  # Keras' fan_out counts the kernel area
    else:
        channels = shape[-1]
    return (*spatial, channels)


def _reshaped(shape: tuple[int, ...], target: tuple[int, ...]) -> tuple[int, ...] | None:
    if not target:
        return None
    total = math.prod(shape)
    known = math.prod(t for t in target if t != -1)
    if target.count(-1) == 1:
        if known <= 0 or total % known:
            return None
        return _checked(tuple(total // known if t == -1 else t for t in target))
    if -1 in target or known != total:
        return None
    return target


def merged_shape(tensors: Sequence[TensorV], concat: bool, axis: int | None) -> tuple[int, ...] | None:
    """The per-example shape after a Keras merge: the common shape of an element-wise merge (``Add``,
    ``Multiply``, ...), or a ``Concatenate`` along the last axis (``axis`` counts the batch axis, as
    Keras does); None when an input's shape is unknown or they do not line up."""
    shapes = [input_shape(t) for t in tensors]
    if not shapes or any(s is None for s in shapes):
        return None
    first = shapes[0]
    assert first is not None
    if not concat:
        return first if all(s == first for s in shapes) else None
    if axis not in (-1, len(first)) or any(s is None or s[:-1] != first[:-1] for s in shapes):
        return None
    return _checked((*first[:-1], sum(s[-1] for s in shapes if s is not None)))


def _checked(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    return shape if all(0 < d <= _MAX_ELEMENTS for d in shape) else None


def applied(obj: LayerObj, tensor: TensorV) -> TensorV:
    """A Keras layer object applied to ``tensor``: the tensor after it, with its per-example shape.
    A Flatten/Reshape goes on the path (a copy per call) with the width after it as ``fan_out``:
    computed from the tracked shape, the last axis as written (``Reshape((7, 7, 64))``), or unknown."""
    layer = obj.layer
    before = input_shape(tensor)
    shape = output_shape(obj, before)
    if layer.kind == LayerKind.CONV and obj.geometry is not None and obj.geometry.channels_first and before \
            and layer.fan_in is None and layer.receptive:
        layer.fan_in = before[0] * layer.receptive  # channels first: the path's last axis is not the channels
    if layer.kind == LayerKind.OTHER and layer.op in _RESHAPES:
        width = shape[-1] if shape else layer.fan_out
        return TensorV(tensor.nodes + (Layer(LayerKind.OTHER, layer.op, layer.span, layer.framework, name=layer.name,
                                             activation="linear", bias=False, fan_out=width, window=layer.window),),
                       tensor.hint, shape or ())
    if layer.kind == LayerKind.OTHER and layer.op in catalog.PASSTHROUGH_LAYERS:
        # a resampling (UpSampling2D, ZeroPadding2D) stays on the path: the spatial size after it
        nodes = tensor.nodes if layer.window is None else tensor.nodes + (layer,)
        return tensor if shape is not None and shape == input_shape(tensor) and nodes is tensor.nodes else \
            TensorV(nodes, tensor.hint, shape or ())
    return TensorV(tensor.nodes + (layer,), tensor.hint, shape or ())
