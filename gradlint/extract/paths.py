"""Path algebra: how the layer paths of two tensors combine at ``a + b`` (a residual), ``a * b``
(a gate), concatenation and other merges, with their size bounded."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gradlint.extract import catalog
from gradlint.extract.values import UNKNOWN, NodeSeq, TensorV, Value
from gradlint.model import Gate, Layer, LayerKind, Node, Residual, Span


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


def merge_residual(left: TensorV, right: TensorV, span: Span) -> TensorV:
    n = _common_prefix(left.nodes, right.nodes)
    a, b = list(left.nodes[n:]), list(right.nodes[n:])
    if not a and not b:
        return left  # x + x
    hint = left.hint or right.hint
    if n == 0 and a and b:
        # Two unrelated inputs (e.g. two model inputs): keep the longer as the main path.
        return left if len(a) >= len(b) else right
    branch, shortcut = (a, b) if _weight_depth(a) >= _weight_depth(b) else (b, a)
    return _bounded(TensorV(left.nodes[:n] + (Residual(branch, shortcut, span),), hint), span)


def merge_gate(left: TensorV, right: TensorV, span: Span) -> TensorV:
    n = _common_prefix(left.nodes, right.nodes)
    a, b = list(left.nodes[n:]), list(right.nodes[n:])
    hint = left.hint or right.hint
    if _ends_in_gate(b) and not _ends_in_gate(a):
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
        else:
            result = merge_other(result, other)
    return result


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
            if node.kind in (LayerKind.DROPOUT, LayerKind.POOLING, LayerKind.OTHER):
                continue
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


_RESHAPES = frozenset({"reshape", "Flatten", "Reshape"})


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
