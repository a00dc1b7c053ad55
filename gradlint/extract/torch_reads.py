"""PyTorch calls read on their own: functional dropout as the protocol's train mode runs it, the
size of a training batch a forward reads (``x.size(1)``; see ``values.BatchProbe``), tensor
methods that work in place, ``F.conv2d`` over a module's own weight tensor, and PyTorch 0.3's
``Variable``."""

from __future__ import annotations

import ast
import math

from gradlint.extract import catalog, torch_tensors
from gradlint.extract.api import Args, Interp, Kwargs
from gradlint.extract.common import dropout_rate, span_of
from gradlint.extract.inits import param_init
from gradlint.extract.paths import stopped
from gradlint.extract.values import UNKNOWN, Const, ListV, ParamV, TensorConstV, TensorV, Value
from gradlint.extract.windows import conv_window
from gradlint.model import Layer, LayerKind


def functional_dropout(leaf: str, tensor: TensorV, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    """``F.dropout(x, p, training=self.training)`` (``dropout1d/2d/3d``, ``alpha_dropout``,
    ``torch.dropout(x, p, train)``): a dropout layer as ``nn.Dropout(p)`` is, when it drops in train
    mode — the protocol's, so ``training=self.training`` (any ``*.training``), ``True`` and the default
    of ``F.dropout`` do; ``False``, the alpha dropouts' default, and a flag gradlint cannot read leave
    the tensor as it is (as every functional dropout did before)."""
    given: Value | None = args[2] if len(args) > 2 else kwargs.get("training", kwargs.get("train"))
    flag = None  # the flag as written
    if isinstance(node, ast.Call):
        flag = node.args[2] if len(node.args) > 2 else next(
            (k.value for k in node.keywords if k.arg in ("training", "train")), None)
    if given is None:
        drops = "alpha" not in leaf
    elif isinstance(given, Const) and isinstance(given.value, bool):
        drops = given.value
    else:
        drops = isinstance(flag, ast.Attribute) and flag.attr == "training"
    if not drops:
        return tensor
    layer = Layer(LayerKind.DROPOUT, leaf, span_of(node), "torch", bias=False)
    layer.rate = dropout_rate(args[1] if len(args) > 1 else kwargs.get("p"), 0.5)
    return TensorV(tensor.nodes + (layer,), tensor.hint)


def batch_size(interp: Interp, node: ast.AST, args: Args, kwargs: Kwargs) -> Value:
    """``x.size()`` / ``x.size(1)`` / ``x.size(dim=-1)`` where ``x`` is a forward's parameter bound to
    a training batch of known shape (``BatchProbe``); UNKNOWN elsewhere."""
    probe = interp.frame.batch
    if probe is None or not probe.sizes or not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return UNKNOWN
    shape = probe.sizes.get(node.func.value.id) if isinstance(node.func.value, ast.Name) else None
    if shape is None:
        return UNKNOWN
    dim = args[0] if args else kwargs.get("dim")
    if dim is None and not args and not kwargs:
        return ListV([Const(d) for d in shape], is_tuple=True)
    if isinstance(dim, Const) and isinstance(dim.value, int) and not isinstance(dim.value, bool) \
            and -len(shape) <= dim.value < len(shape) and len(args) + len(kwargs) == 1:
        return Const(shape[dim.value])
    return UNKNOWN


# Tensor methods that change the tensor they are called on (and return it): ``x.sigmoid_()`` as a
# statement of its own applies the sigmoid to ``x`` as ``x = x.sigmoid()`` would.
_IN_PLACE = frozenset(name for name in catalog.FUNCTIONAL_ACTIVATIONS if name.endswith("_")) | frozenset(
    {"clamp_", "clip_", "clamp_min_", "add_", "mul_"})


def in_place(tensor: TensorV, name: str, result: Value) -> Value:
    """The result of ``tensor.name(...)``; an in-place method's is ``tensor`` itself, now holding it (any
    name bound to the tensor sees the change, as in torch)."""
    if name in _IN_PLACE and isinstance(result, TensorV) and result is not tensor:
        tensor.nodes, tensor.hint, tensor.shape = result.nodes, result.hint, result.shape
        return tensor
    return result


_CONV_PARAMS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")


def functional_conv(interp: Interp, leaf: str, tensor: TensorV, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    """``F.conv1d/2d/3d(x, w, b, stride, padding, dilation, groups)``: the conv layer owning ``w``
    (``F.conv2d(x, self.conv.weight)``), or a conv layer of a free weight tensor of known shape
    ``(out, in / groups, *kernel)`` and init (``nn.Parameter(torch.randn(16, 3, 3, 3))``), its fans as
    torch's init reads them (``in / groups × kernel area``); anything else (a weight computed in the
    forward, weight standardization) stays an explicit unknown."""
    bound: dict[str, Value] = dict(zip(_CONV_PARAMS, args, strict=False))
    bound.update(kwargs)
    weight = bound.get("weight", UNKNOWN)
    span = span_of(node)
    if isinstance(weight, ParamV) and weight.owner is not None and weight.role == "weight" \
            and weight.owner.kind == LayerKind.CONV:
        return TensorV(tensor.nodes + (weight.owner,), tensor.hint)
    dims = int(leaf[-2])
    trainable = isinstance(weight, ParamV) and weight.owner is None \
        or isinstance(weight, TensorConstV) and weight.trainable
    shape = weight.shape if isinstance(weight, (ParamV, TensorConstV)) else None
    if not trainable or shape is None or len(shape) != dims + 2:
        return interp.unknown_call([tensor], {}, node, leaf)
    init = param_init(weight) if isinstance(weight, ParamV) else weight.init if isinstance(weight, TensorConstV) \
        else None
    area = math.prod(shape[2:])
    bias = bound.get("bias")
    layer = Layer(LayerKind.CONV, leaf, span, "torch", weight_init=init, fan_in=shape[1] * area,
                  fan_out=shape[0] * area, bias=isinstance(bias, (ParamV, TensorConstV)))
    if isinstance(bias, (ParamV, TensorConstV)):
        layer.bias_init = param_init(bias) if isinstance(bias, ParamV) else bias.init
    layer.receptive = area
    layer.window = conv_window({**bound, "kernel_size": Const(tuple(shape[2:]))}, dims, False)
    return TensorV(tensor.nodes + (layer,), tensor.hint)


def variable(interp: Interp, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    """``torch.autograd.Variable(t, requires_grad=True)`` (PyTorch 0.3 tutorials): ``t`` made a weight, as
    ``t.requires_grad_()``; without the flag (data, ``Variable(x)``) ``t`` itself, which is what a
    Variable has been since torch 0.4."""
    data = args[0] if args else kwargs.get("data", UNKNOWN)
    flag = kwargs.get("requires_grad", args[1] if len(args) > 1 else Const(False))
    if isinstance(data, TensorConstV) and isinstance(flag, Const) and flag.value is True:
        if not torch_tensors.in_model_class(interp):  # a raw-tensor script's weight
            return torch_tensors.state_of(interp).method(data, "requires_grad_", [], {}, node) or data
        data.trainable = True  # a module attribute its forward trains
    return data


def tensor_of_tensor(leaf: str, data: TensorV, node: ast.AST, in_model: bool) -> Value | None:
    """``torch.<leaf>(x)`` of a tensor when it copies, views or indexes it; None for other functions."""
    if leaf in catalog.TORCH_DATA_COPIES or leaf == "detach":  # torch.tensor(x): a new leaf, no gradient to x
        return stopped(data, leaf, span_of(node), "torch")
    if leaf in catalog.TORCH_DATA_VIEWS:  # torch.as_tensor(x) is x; from_numpy(x.numpy()) is stopped already
        return data
    if leaf in catalog.TORCH_INDEX_OPS and not in_model:  # training code: torch.argmax(out, 1), as out.argmax(1)
        return stopped(data, leaf, span_of(node), "torch")
    return None
