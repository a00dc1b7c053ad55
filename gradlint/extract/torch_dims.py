"""The shape a torch training batch of known shape takes on its way through a model and into a loss
(``TensorV.dims``): what tells a softmax's ``dim=0`` over a (N, C) batch from one over a 1-D vector,
and a (N, 1) prediction from the (N,) target it is compared with.

The batch a training call hands a model (``model(X)`` with ``X = torch.randn(500, 8)``, a
``DataLoader`` over a ``TensorDataset`` of known shapes, a slice ``X[i:i + 64]``) starts with its
shape; only what is modelled here passes a shape on: a torch ``Linear`` (the last axis becomes its
``out_features``), activations (softmax included), dropout, normalization, a gradient stop, a constant
scale or shift, conversions (``.float()``, ``.to(device)``), ``view``/``reshape`` with their arguments
counted (``x.view(-1, 784)`` is 2-D whatever the batch), ``flatten(1)`` / ``nn.Flatten()``, and
``squeeze``/``unsqueeze`` of a literal dim. Everything else leaves a tensor of unknown shape: a new
tensor starts with none, and an operation that hands back the very tensor it was given
(``x[:, 0]``, ``x.permute(...)``, ``x + y``) makes that tensor's shape unknown from then on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gradlint.extract.api import Interp, Kwargs
from gradlint.extract.values import Const, ListV, TensorConstV, TensorV, Value
from gradlint.model import Layer, LayerKind

Dims = tuple[int | None, ...]

# Tensor methods and torch functions whose result has the shape of the tensor they are given.
_SAME_SHAPE = frozenset({
    "float", "double", "half", "bfloat16", "to", "cuda", "cpu", "contiguous", "clone", "type", "type_as",
    "detach", "detach_", "requires_grad_", "clamp", "clip", "clamp_", "clip_", "clamp_min", "clamp_min_",
    "clamp_max", "nan_to_num", "abs", "neg", "exp", "log", "log1p", "sqrt", "relu", "sigmoid", "tanh",
    "softmax", "log_softmax", "masked_fill", "masked_fill_", "dropout", "identity",
})
# Kinds of layer whose output has the shape of their input.
_SAME_SHAPE_KINDS = frozenset({LayerKind.ACTIVATION, LayerKind.DROPOUT, LayerKind.NORMALIZATION, LayerKind.STOP})
_LINEAR_OPS = frozenset({"Linear", "LazyLinear", "linear"})


def start(batch: Value) -> Dims | None:
    """The dims of a data batch a training call hands a model: a data tensor of known shape."""
    if isinstance(batch, TensorConstV) and batch.shape and not batch.trainable and batch.values is None:
        return tuple(batch.shape)
    return None


def of(value: Value) -> Dims | None:
    """The known shape of a tensor value (a model's tensor or a data tensor)."""
    if isinstance(value, TensorV):
        return value.dims
    return start(value)


def follow(interp: Interp, before: TensorV, result: Value, op: str | Layer, args: Sequence[Value] = (),
           kwargs: Kwargs | None = None, in_place: bool = False) -> Value:
    """``result`` of ``op`` applied to ``before``, with the shape it has when ``before``'s is known (see
    the module's doc); a tensor handed back as it was given loses its shape when ``op`` changes it."""
    dims = before.dims
    if dims is None or not isinstance(result, TensorV):
        return result
    new = after(interp, before, result, op, args, kwargs or {})
    if result is before:
        if new == dims:
            return result
        if new is None or in_place:
            before.dims = new  # in place, or changed unseen: every name bound to it sees it
            return before
        return TensorV(result.nodes, result.hint, result.shape, dims=new)
    if result.dims is None and new is not None:
        result.dims = new
    return result


def after(interp: Interp, before: TensorV, result: TensorV, op: str | Layer, args: Sequence[Value],
          kwargs: Kwargs) -> Dims | None:
    """The shape of ``result`` (``op`` of ``before``, whose shape is known), None when not known."""
    dims = before.dims
    assert dims is not None
    added = result.nodes[len(before.nodes):]
    if len(result.nodes) >= len(before.nodes) and all(a is b for a, b in zip(result.nodes, before.nodes,
                                                                             strict=False)):
        if len(added) == 1 and isinstance(added[0], Layer):
            return _layer(interp, added[0], dims)
        if not added:
            if isinstance(op, Layer):
                return _passthrough_layer(op, dims)
            return _method(op, dims, list(args), kwargs)
    return None


def _layer(interp: Interp, layer: Layer, dims: Dims) -> Dims | None:
    if layer.framework != "torch":
        return None
    if layer.kind in _SAME_SHAPE_KINDS:
        if layer.activation in ("softmax", "log_softmax"):
            _seen_softmax(interp, layer, dims)
        return dims
    if layer.kind == LayerKind.SCALE and layer.scale_params is None and layer.scale_value is not None:
        return dims  # x * c, x + c
    if layer.kind == LayerKind.DENSE and layer.op in _LINEAR_OPS and layer.fan_out and dims:
        if layer.fan_in is not None and dims[-1] is not None and dims[-1] != layer.fan_in:
            return None
        return dims[:-1] + (layer.fan_out,)
    return None


def _seen_softmax(interp: Interp, layer: Layer, dims: Dims) -> None:
    """The shape a softmax normalizes, as its training calls run it (``TrainingFacts.softmax_inputs``):
    runs that disagree leave it unknown."""
    seen = interp.facts.softmax_inputs
    key = id(layer)
    if key not in seen:
        seen[key] = (layer, dims)
        return
    known = seen[key][1]
    # the same rank: the sizes that differ (a training batch, the whole set at evaluation) unknown
    seen[key] = (layer, tuple(a if a == b else None for a, b in zip(known, dims, strict=True))
                 if known is not None and len(known) == len(dims) else None)


def _passthrough_layer(layer: Layer, dims: Dims) -> Dims | None:
    if layer.op == "Identity":
        return dims
    if layer.op == "Flatten" and layer.axis == 1 and len(dims) >= 2:  # nn.Flatten(): (N, everything else)
        return (dims[0], _product(dims[1:]))
    return None


def _method(name: str, dims: Dims, args: list[Value], kwargs: Kwargs) -> Dims | None:
    if name in _SAME_SHAPE:
        return dims
    if name in ("view", "reshape"):
        return _view(dims, args[1:] if args and isinstance(args[0], TensorV) else args)
    if name == "flatten":
        start_dim = _int(kwargs.get("start_dim", args[0] if args else Const(0)))
        end = _int(kwargs.get("end_dim", args[1] if len(args) > 1 else Const(-1)))
        if start_dim is None or end != -1 or not -len(dims) <= start_dim < len(dims):
            return None
        start_dim %= len(dims)
        return dims[:start_dim] + (_product(dims[start_dim:]),)
    if name in ("squeeze", "unsqueeze"):
        axis = _int(kwargs.get("dim", args[0] if args else None))
        if axis is None:
            return None
        if name == "unsqueeze" and -len(dims) - 1 <= axis <= len(dims):
            axis %= len(dims) + 1
            return dims[:axis] + (1,) + dims[axis:]
        if name == "squeeze" and -len(dims) <= axis < len(dims):
            axis %= len(dims)
            if dims[axis] is None:
                return None
            return dims[:axis] + dims[axis + 1:] if dims[axis] == 1 else dims
    return None


def _view(dims: Dims, args: Sequence[Value]) -> Dims | None:
    """``x.view(-1, 784)``, ``x.reshape(x.size(0), -1)``, ``x.view((n, 1))``: as many dims as given, each
    known when a literal (a -1 when the others and the input's size are)."""
    if len(args) == 1:
        single = args[0]
        if isinstance(single, Const) and isinstance(single.value, tuple):
            args = [Const(v) for v in single.value]
        elif isinstance(single, ListV) and not single.partial:
            args = single.items
        elif _int(single) is None:
            return None  # x.view(shape): a size of unknown length
    if not args or len(args) > 8:
        return None
    out: list[int | None] = []
    for arg in args:
        value = _int(arg)
        out.append(value if value is not None and value > 0 else None if value in (None, -1) else -2)
    if -2 in out:
        return None
    ints = [_int(a) for a in args]
    total = _product(dims)
    if ints.count(-1) == 1 and None not in ints and total is not None:
        rest = math.prod(i for i in ints if i is not None and i != -1)
        if rest and total % rest == 0:
            out = [total // rest if i == -1 else i for i in ints]
    return tuple(out)


def _product(dims: Sequence[int | None]) -> int | None:
    if any(d is None for d in dims):
        return None
    return math.prod(d for d in dims if d is not None)


def _int(value: Value | None) -> int | None:
    if isinstance(value, Const) and isinstance(value.value, int) and not isinstance(value.value, bool):
        return int(value.value)
    return None


def binop(left: Value, right: Value, result: Value) -> Value:
    """``x * 0.5``, ``x + 1``: the tensor's shape; with another tensor or an unknown operand (which may
    broadcast) unknown."""
    for tensor, other in ((left, right), (right, left)):
        if not isinstance(tensor, TensorV) or tensor.dims is None:
            continue
        scalar = isinstance(other, Const) and isinstance(other.value, (int, float)) and not isinstance(other.value,
                                                                                                      bool)
        if not isinstance(result, TensorV):
            return result
        if scalar:
            if result is not tensor and result.dims is None and len(result.nodes) >= len(tensor.nodes) \
                    and all(a is b for a, b in zip(result.nodes, tensor.nodes, strict=False)):
                result.dims = tensor.dims
            return result
        if result is tensor:
            tensor.dims = None
    return result


def unmodelled(result: Value, given: Sequence[Value]) -> Value:
    """``result`` of a call not modelled here that hands back one of the tensors it was ``given``
    (``torch.cat([a, b], 1)`` returning ``a``'s path): its shape unknown from then on."""
    if isinstance(result, TensorV) and result.dims is not None:
        for value in given:
            if value is result or isinstance(value, ListV) and any(item is result for item in value.items):
                result.dims = None
                break
    return result


def forget(tensor: Value, result: Value) -> Value:
    """``x[:, 0]``, ``x.T``: ``result``; when it is the tensor itself, with its shape unknown."""
    if isinstance(tensor, TensorV) and result is tensor:
        tensor.dims = None
    return result
