"""PyTorch knowledge: ``torch.nn`` constructors, ``torch`` / ``torch.nn.functional`` functions,
``torch.nn.init``, tensor methods and parameter (``nn.Parameter``, ``layer.weight``) methods.

Never imports torch: names arrive as qualified strings (``torch.nn.Conv2d``) from the interpreter,
which hands over every call under the ``torch.`` prefix (see ``frameworks``).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping

from gradlint.extract import (
    catalog,
    data_shapes,
    hand_norm,
    numeric_arrays,
    recorder,
    step_reads,
    torch_dims,
    torch_tensors,
)
from gradlint.extract.api import Args, Interp, Kwargs
from gradlint.extract.common import (
    dropout_rate,
    first_tensor,
    flatten_args,
    group_norm_stats,
    number,
    positive_int,
    relu_family_member,
    shape_of,
    span_of,
    stride_area,
)
from gradlint.extract.inits import (
    calculate_gain,
    dense_operand,
    make_init,
    param_init,
    param_method,
    set_param_init,
)
from gradlint.extract.paths import floored, merge_gate, merge_many, merge_other, merge_residual, stopped
from gradlint.extract.torch_reads import (
    batch_size,
    functional_conv,
    functional_dropout,
    in_place,
    tensor_of_tensor,
    variable,
)
from gradlint.extract.values import (
    UNKNOWN,
    Const,
    ContainerV,
    DictV,
    GradModeV,
    InstanceV,
    LayerObj,
    ListV,
    LossObjV,
    LossV,
    ParamV,
    ReadOutV,
    TensorConstV,
    TensorV,
    Value,
    read_out_of,
)
from gradlint.extract.windows import (
    RESAMPLE_PARAMS,
    conv_window,
    literal_axis,
    pool_window,
    reduced_axes,
    resample_window,
    view_window,
    window_area,
)
from gradlint.model import Gate, Init, Layer, LayerKind, Span, Window, gradient_blocked
from gradlint.training import TORCH_LOGIT_LOSSES, TORCH_PROBABILITY_LOSSES, LossSpec

# torch.zeros(...), torch.randn(...): tensors with a known init, used for parameters.
_TENSOR_FACTORIES = frozenset({"zeros", "zeros_like", "ones", "ones_like", "full", "full_like", "randn", "rand",
                               "empty", "tensor", "eye", "normal", "randn_like", "empty_like", "Tensor",
                               "FloatTensor"})
_FACTORY_INITS: dict[str, Init] = {
    "zeros": Init("zeros"), "zeros_like": Init("zeros"), "ones": Init("ones"), "ones_like": Init("ones"),
    "randn": Init("normal", {"std": 1.0}), "randn_like": Init("normal", {"std": 1.0}),
    "rand": Init("uniform", {"a": 0.0, "b": 1.0}), "eye": Init("eye"),
    "empty": Init("unknown"), "empty_like": Init("unknown"),
    # torch.Tensor(n, m) / torch.FloatTensor(n, m): uninitialised memory, like torch.empty (then .uniform_())
    "Tensor": Init("unknown"), "FloatTensor": Init("unknown"),
}
# Functions that combine several tensors (found inside a list argument when no argument is a tensor).
_MULTI_TENSOR = frozenset({"cat", "stack", "concat", "add", "mul", "matmul", "bmm", "einsum", "where"})
_MATMULS = frozenset({"matmul", "bmm", "einsum", "baddbmm", "addmm", "mm"})
_OTHER_LOSSES = frozenset({"mse_loss", "nll_loss", "l1_loss"})
# Tensor methods that keep the path (or leave it for a number: .size(), .item()).
_TENSOR_KEEPS = frozenset({"div", "div_", "sub", "sub_", "neg", "pow", "sqrt", "norm", "softmax", "log_softmax",
                           "masked_fill_", "clamp_", "item", "size", "dim", "chunk", "split",
                           "select"})  # x.select(1, t) is x[:, t]: one step of an RNN's out (step_reads)
# timm and other libraries' copies of torch.nn.init functions, found by their leaf name.
_INIT_HELPERS = {"trunc_normal_": "trunc_normal_", "lecun_normal_": "lecun_normal_",
                 "variance_scaling_": "variance_scaling_", "trunc_normal_tf_": "trunc_normal_"}


class TorchFramework:
    """The ``Framework`` handler for PyTorch (and Lightning modules, which are torch modules)."""

    name = "torch"
    prefixes = ("torch.", "F.")
    model_bases: Mapping[str, str | None] = {q: catalog.TORCH_CONTAINER_KINDS.get(q)
                                             for q in catalog.TORCH_MODULE_BASES}
    model_base_suffixes = ("LightningModule",)

    def call(self, interp: Interp, q: str, leaf: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        if q.startswith("torch.nn.init."):
            return call_torch_init(interp, leaf, args, kwargs, node)
        if q.startswith("torch.nn.") and leaf.endswith("Loss") and q.count(".") == 2:
            return LossObjV(LossSpec(leaf, "torch", leaf in TORCH_LOGIT_LOSSES, span_of(node)))
        if q.startswith("torch.nn.functional.") and (leaf in TORCH_LOGIT_LOSSES or leaf in TORCH_PROBABILITY_LOSSES
                                                     or leaf in _OTHER_LOSSES):
            spec = LossSpec(leaf, "torch", leaf in TORCH_LOGIT_LOSSES, span_of(node))
            return recorder.apply_loss(interp, spec, args, kwargs, node)
        if q.startswith("torch.nn.") and q.count(".") == 2:
            return construct_torch(interp, leaf, args, kwargs, node)
        if args and isinstance(args[0], LossV) and (q.count(".") == 1 and leaf in catalog.TORCH_DATA_COPIES
                                                    or q.startswith("torch.autograd.") and leaf == "Variable"):
            return recorder.severed_loss(args[0], leaf, node)  # torch.tensor(loss, requires_grad=True): a new leaf
        if q in ("torch.autograd.Variable", "torch.autograd.variable.Variable"):
            return variable(interp, args, kwargs, node)
        if q.count(".") == 1 and (known := numeric_arrays.torch_spaced(leaf, args, kwargs)) is not None:
            return known  # torch.linspace(256, 32, 12).long().tolist(): layer widths
        if (data := data_shapes.torch_call(q, leaf, args, kwargs)) is not None:  # DataLoader, from_numpy(a)
            return data
        result = hand_norm.seen(leaf, args, kwargs, call_torch_function(interp, q, leaf, args, kwargs, node))
        result = step_reads.carry(interp, args[0] if args else None, leaf, args[1:], kwargs, result)
        if args and isinstance(args[0], TensorV) and args[0].dims is not None:
            return torch_dims.follow(interp, args[0], result, leaf, args[1:], kwargs)  # F.softmax(x, dim=0)
        return torch_dims.unmodelled(result, [*args, *kwargs.values()])  # torch.cat([a, b]) is not a's shape

    def call_unprefixed(self, interp: Interp, q: str, leaf: str, args: Args, kwargs: Kwargs,
                        node: ast.AST) -> Value | None:
        if leaf in _INIT_HELPERS:
            return call_torch_init(interp, _INIT_HELPERS[leaf], args, kwargs, node)
        return None

    def method(self, interp: Interp, target: Value, name: str, args: Args, kwargs: Kwargs,
               node: ast.AST) -> Value | None:
        view = torch_tensors.transposed(target, name, args) if not kwargs else None
        if view is not None:
            return view
        if isinstance(target, TensorConstV):
            made = _tensor_init_method(interp, target, name, args, kwargs, node)
            if made is not None:
                return made
        raw = torch_tensors.existing(interp)
        if raw is not None and isinstance(target, (TensorV, TensorConstV)):
            result = raw.method(target, name, args, kwargs, node)
            if result is not None:
                return result
        if isinstance(target, TensorV):
            result = tensor_method(interp, target, name, args, kwargs, node)
            result = hand_norm.seen(name, [target, *args], kwargs, result)
            result = step_reads.carry(interp, target, name, args, kwargs, result)
            if target.dims is None:
                return in_place(target, name, torch_dims.unmodelled(result, [*args, *kwargs.values()]))
            followed = torch_dims.follow(interp, target, result, name, args, kwargs)  # x.view(-1, 784)
            done = in_place(target, name, followed)
            if done is target and followed is not target:  # in place: the tensor now holds the result
                target.dims = followed.dims if isinstance(followed, TensorV) else None
            return done
        if isinstance(target, ParamV):
            return param_method(target, name, args, kwargs, node, uncertain_start(interp))
        if isinstance(target, TensorConstV):
            return data_shapes.method(target, name, args, kwargs)
        return None

    def binop(self, interp: Interp, op: ast.operator, left: Value, right: Value, node: ast.AST) -> Value | None:
        raw = torch_tensors.existing(interp)
        return raw.binop(op, left, right, node) if raw is not None else None

    def before_call(self, interp: Interp, instance: InstanceV, args: Args, kwargs: Kwargs) -> None:
        return None

    def finish(self, interp: Interp) -> None:
        raw = torch_tensors.existing(interp)
        if raw is not None:
            raw.finish()


TORCH = TorchFramework()


def _tensor_init_method(interp: Interp, target: TensorConstV, name: str, args: Args, kwargs: Kwargs,
                        node: ast.AST) -> Value | None:
    """In-place methods of a tensor with a known init: ``torch.empty(n, m).normal_(0, 1)`` draws (the same
    tensor, a new init), ``.requires_grad_()`` makes it a weight (outside a class: a raw-tensor model's;
    inside one: a module attribute its forward trains, ``x @ self.w``)."""
    if name == "requires_grad_":
        if args and not (isinstance(args[0], Const) and args[0].value is True):
            return None
        if not torch_tensors.in_model_class(interp):
            return torch_tensors.state_of(interp).method(target, name, args, kwargs, node)
        target.trainable = True
        return target
    spec = catalog.TENSOR_INIT_METHODS.get(name)
    if spec is None:
        return None
    scheme, params = spec
    target.init = make_init(scheme, params, args, kwargs, node) or Init("unknown", {}, span_of(node))
    return target


# ---------------------------------------------------------------------- torch.nn.init


def uncertain_start(interp: Interp) -> int | None:
    """The serial at which the innermost undecidable condition began; None outside one."""
    return interp.uncertain_since[-1] if interp.uncertain_since else None


def call_torch_init(interp: Interp, leaf: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    if leaf == "calculate_gain":
        return calculate_gain(args, kwargs)
    spec = catalog.TORCH_INIT_FUNCTIONS.get(leaf)
    if spec is None:
        return UNKNOWN
    scheme, names = spec
    target = args[0] if args else kwargs.get("tensor", UNKNOWN)
    init = make_init(scheme, names, args[1:], kwargs, node)
    since = uncertain_start(interp)
    if isinstance(target, ParamV):
        set_param_init(target, init, since)
    elif isinstance(target, TensorConstV):  # torch.empty(n, m) initialised before nn.Parameter(...) wraps it
        target.init = init or Init("unknown", {}, span_of(node))
    elif isinstance(target, ListV):
        for item in target.items:
            if isinstance(item, ParamV):
                set_param_init(item, init, since)
    return target


# ---------------------------------------------------------------------- torch.nn constructors


def construct_torch(interp: Interp, leaf: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    span = span_of(node)
    container = catalog.TORCH_CONTAINER_KINDS.get(f"torch.nn.{leaf}")
    if container is not None:
        return _container(interp, container, args, span)
    if leaf == "ParameterList":
        items = interp.iterate(args[0]) if args else []
        return ListV(list(items or []), partial=items is None)
    if leaf == "ParameterDict":
        source = args[0] if args else DictV({})
        return DictV(dict(source.items), source.partial) if isinstance(source, DictV) else DictV({}, partial=True)
    if leaf in catalog.TORCH_PASSTHROUGH:
        layer = Layer(LayerKind.OTHER, leaf, span, "torch", activation="linear", bias=False)
        params = RESAMPLE_PARAMS.get(leaf)
        if params is not None:  # Upsample, PixelShuffle, ZeroPad2d ...: the spatial size after it
            bound = dict(zip(params, args, strict=False))
            bound.update(kwargs)
            layer.window = resample_window(leaf, bound)
        elif leaf == "Flatten":  # its start_dim, when a literal (1 by default)
            layer.axis = literal_axis(kwargs.get("start_dim", args[0] if args else Const(1))) \
                if "end_dim" not in kwargs and len(args) < 2 else None
        elif leaf == "Unflatten" and len(args) == 2 and isinstance(args[0], Const) and args[0].value == 1:
            layer.window = view_window([UNKNOWN, *(args[1].items if isinstance(args[1], ListV) else [
                Const(v) for v in args[1].value] if isinstance(args[1], Const) and isinstance(args[1].value, tuple)
                else [])])  # nn.Unflatten(1, (256, 4, 4)) after a Linear: a feature map
        return LayerObj(layer)
    if leaf == "Parameter":
        source = args[0] if args else kwargs.get("data", UNKNOWN)
        init = source.init if isinstance(source, TensorConstV) else param_init(source) \
            if isinstance(source, ParamV) else None
        shape = source.shape if isinstance(source, (TensorConstV, ParamV)) else None
        param = ParamV(None, "param", init=init, ndim=len(shape) if shape else None, shape=shape)
        if not torch_tensors.in_model_class(interp) and isinstance(source, TensorConstV):
            # outside any class: maybe a raw-tensor model's weight (a Module's parameters are its attributes)
            torch_tensors.state_of(interp).register(param)
        return param
    spec = catalog.TORCH_LAYERS.get(leaf)
    if spec is None:
        return interp.unknown_call(args, kwargs, node, leaf) if first_tensor(args, kwargs) else UNKNOWN
    bound = dict(zip(spec.params, args, strict=False))
    bound.update(kwargs)
    layer = Layer(spec.kind, leaf, span, "torch", activation=spec.activation)
    if spec.kind == LayerKind.DROPOUT:
        layer.rate = dropout_rate(bound.get("p"), 0.5)
    if spec.kind == LayerKind.POOLING and leaf.startswith("MaxPool"):
        layer.receptive = window_area(bound.get("kernel_size"), int(leaf[-2]))
    if spec.kind == LayerKind.POOLING and leaf[-2].isdigit():
        layer.window = pool_window(leaf, bound, int(leaf[-2]))
    if spec.kind == LayerKind.ACTIVATION:
        _activation_module(layer, leaf, bound)
    elif spec.kind in (LayerKind.DENSE, LayerKind.CONV):
        _torch_weight_layer(layer, leaf, bound)
    elif spec.kind == LayerKind.EMBEDDING:
        layer.fan_in = positive_int(bound.get("num_embeddings"))
        layer.fan_out = positive_int(bound.get("embedding_dim"))
        layer.weight_init = Init("normal", {"std": 1.0})
        layer.bias = False
    elif spec.kind == LayerKind.RECURRENT:
        layer.fan_in = positive_int(bound.get("input_size"))
        layer.fan_out = positive_int(bound.get("hidden_size"))
        layer.weight_init = Init("torch_rnn_default")
        layer.recurrent_init = Init("torch_rnn_default")
        layer.units = layer.fan_out
        if leaf in ("RNN", "RNNCell"):  # nonlinearity is the 4th parameter of both
            nonlinearity = kwargs.get("nonlinearity", args[3] if len(args) > 3 else Const("tanh"))
            if isinstance(nonlinearity, Const) and nonlinearity.value in ("tanh", "relu"):
                layer.activation = None if nonlinearity.value == "tanh" else "relu"  # None: the tanh default
            else:
                layer.activation = "unknown"
        if leaf in ("RNN", "LSTM", "GRU") and len(args) <= len(spec.params):  # batch_first is the 6th
            batch_first = bound.get("batch_first", Const(False))
            if isinstance(batch_first, Const) and isinstance(batch_first.value, bool):
                return LayerObj(layer, time_axis=1 if batch_first.value else 0)
    elif spec.kind == LayerKind.NORMALIZATION:
        affine = bound.get("affine", bound.get("elementwise_affine"))
        layer.bias = not (isinstance(affine, Const) and affine.value is False)
        layer.weight_init = Init("ones")
        if leaf == "GroupNorm":
            groups, channels = positive_int(bound.get("num_groups")), positive_int(bound.get("num_channels"))
            layer.norm_stats = group_norm_stats(groups, channels)
            if groups and channels and 1 < groups < channels and channels % groups == 0:
                layer.norm_group = channels // groups
    else:
        layer.bias = False
    return LayerObj(layer)


def _container(interp: Interp, kind: str, args: Args, span: Span) -> Value:
    """nn.Sequential / nn.ModuleList / nn.ModuleDict."""
    if kind == "moduledict":
        source = args[0] if args else DictV({})
        if isinstance(source, DictV):
            value = ContainerV("moduledict", list(source.items.values()), [str(k) for k in source.items],
                               span, "torch", source.partial)
        else:
            value = ContainerV("moduledict", [], [], span, "torch", partial=True)
    elif kind == "modulelist":
        source = args[0] if args else ListV([])
        items = interp.iterate(source)
        value = ContainerV("modulelist", list(items or []), None, span, "torch", items is None or
                           (isinstance(source, (ListV, ContainerV)) and source.partial))
    else:
        items, keys, partial = interp.sequential_items(args)
        value = ContainerV("sequential", items, keys, span, "torch", partial)
    for item in value.items:
        interp.own(item)
    interp.built.append(value)
    return value


def _activation_module(layer: Layer, leaf: str, bound: dict[str, Value]) -> None:
    if leaf == "LeakyReLU":
        layer.act_param = number(bound.get("negative_slope"), 0.01)
    elif leaf in ("ELU", "CELU"):
        layer.act_param = number(bound.get("alpha"), 1.0)
    elif leaf == "PReLU":
        layer.act_param = 0.25
    member = relu_family_member("torch", leaf, bound)
    if member is not None:  # nn.Threshold(θ, 0): u if u > θ else 0
        layer.activation, layer.act_param = member
    elif leaf in ("Softmax", "LogSoftmax"):
        layer.axis = literal_axis(bound.get("dim"))
    elif leaf == "GELU":
        approx = bound.get("approximate")
        if isinstance(approx, Const) and approx.value == "tanh":
            layer.activation = "gelu_tanh"
    layer.bias = False


def _torch_weight_layer(layer: Layer, leaf: str, bound: dict[str, Value]) -> None:
    bias = bound.get("bias")
    layer.bias = not (isinstance(bias, Const) and bias.value is False)
    layer.weight_init = Init("torch_default")
    layer.bias_init = Init("torch_default_bias")
    if layer.kind == LayerKind.DENSE:
        if leaf == "LazyLinear":
            layer.fan_out = positive_int(bound.get("out_features"))
        elif leaf == "Bilinear":
            layer.fan_in = positive_int(bound.get("in1_features"))
            layer.fan_out = positive_int(bound.get("out_features"))
        else:
            layer.fan_in = positive_int(bound.get("in_features"))
            layer.fan_out = positive_int(bound.get("out_features"))
        return
    in_ch = positive_int(bound.get("in_channels"))
    out_ch = positive_int(bound.get("out_channels"))
    kernel = bound.get("kernel_size")
    groups = positive_int(bound.get("groups")) or 1
    area = None
    dims = int(leaf[-2]) if leaf[-2].isdigit() else 2
    if isinstance(kernel, Const):
        k = kernel.value
        if isinstance(k, int):
            area = k ** dims
        elif isinstance(k, tuple) and all(isinstance(i, int) for i in k):
            area = math.prod(k)
    transpose = "Transpose" in leaf
    if transpose:
        layer.stride_area = stride_area(bound.get("stride"), dims)
    layer.window = conv_window(bound, dims, transpose)
    if area is not None:
        # Transposed too: the forward fan (input channels × kernel); the init's own fans (torch reads
        # fan_in from weight.size(1), the output channels) are swapped in analysis.inits.
        if in_ch is not None:
            layer.fan_in = in_ch // groups * area
        if out_ch is not None:
            layer.fan_out = out_ch * area
    layer.receptive = area


# ---------------------------------------------------------------------- torch / torch.nn.functional


def call_torch_function(interp: Interp, q: str, leaf: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    data = args[0] if args else kwargs.get("data")
    if isinstance(data, TensorV) and q.count(".") == 1:
        copied = tensor_of_tensor(leaf, data, node, _in_model_class(interp))
        if copied is not None:
            return copied
    number = read_out_of(data) if data is not None and q.count(".") == 1 and (
        leaf in catalog.TORCH_DATA_COPIES or leaf in catalog.TORCH_DATA_VIEWS) else None
    if number is not None:  # torch.tensor([h.item()]), torch.tensor(float(h)): the values, no gradient
        if _in_model_class(interp):
            return stopped(number.tensor, number.op, span_of(node), "torch")
        # training code: a model's output made a tensor again (torch.tensor(z.detach().numpy())) is that
        # output, cut from its graph; any other number stays unknown
        return number.tensor if recorder.model_of(interp, number.tensor) is not None and \
            gradient_blocked(number.tensor.nodes) else UNKNOWN
    if leaf in _TENSOR_FACTORIES:
        made = _tensor_factory(leaf, args or [kwargs[k] for k in ("size",) if k in kwargs])  # randn(size=(b, t, f))
        grad = kwargs.get("requires_grad")
        if isinstance(made, TensorConstV) and isinstance(grad, Const) and grad.value is True:
            if not torch_tensors.in_model_class(interp):  # outside a model class: a raw-tensor model's weight
                return torch_tensors.state_of(interp).weight(made.init, made.shape, span_of(node))
            made.trainable = True  # a module attribute its forward trains (``x @ self.w``)
        return made
    if leaf in ("t", "transpose", "swapaxes", "swapdims", "permute") and args and not kwargs:
        view = torch_tensors.transposed(args[0], leaf, args[1:])
        if view is not None:
            return view
    if leaf in ("mm", "matmul") and len(args) >= 2:
        raw = torch_tensors.existing(interp)
        result = raw.matmul(args[0], args[1], node) if raw is not None else None
        if result is not None:
            return result
    tensor = first_tensor(args, kwargs)
    if tensor is None:
        loss = next((a for a in list(flatten_args(args)) + list(kwargs.values()) if isinstance(a, LossV)), None)
        if loss is not None:  # torch.sum(y * torch.log(p)), torch.mean(...): still the hand-written loss
            return recorder.reduced(loss, leaf, args[1:], kwargs) if args and args[0] is loss else loss
        if leaf in ("no_grad", "enable_grad", "inference_mode", "set_grad_enabled"):
            return _grad_mode(leaf, args, kwargs)
        if q.startswith("torch.nn.functional.") or leaf not in _MULTI_TENSOR:
            return UNKNOWN
        tensors = [a for a in flatten_args(args) if isinstance(a, TensorV)]
        if not tensors:
            return UNKNOWN
        args = [ListV(list(tensors))] + args[1:]
        tensor = tensors[0]
    span = span_of(node)
    handler = _FUNCTIONS.get(leaf)
    if handler is not None:
        return handler(interp, leaf, tensor, args, kwargs, node)
    act = catalog.FUNCTIONAL_ACTIVATIONS.get(leaf)
    if act is not None:
        return _functional_activation(leaf, act, tensor, args, kwargs, span)
    if leaf in catalog.FUNCTIONAL_NORMALIZATION:
        return TensorV(tensor.nodes + (Layer(LayerKind.NORMALIZATION, leaf, span, "torch", bias=False),), tensor.hint)
    if leaf in catalog.FUNCTIONAL_POOLING:
        return _functional_pool(leaf, tensor, args[1:], kwargs, span)
    if leaf in RESAMPLE_PARAMS:
        return resampled(leaf, tensor, args[1:] if args and args[0] is tensor else args, kwargs, span)
    if leaf in catalog.FUNCTIONAL_DROPOUT and leaf != "drop_path":
        return functional_dropout(leaf, tensor, args, kwargs, node)
    if leaf in catalog.FUNCTIONAL_DROPOUT or leaf in catalog.PASSTHROUGH_CALLS:
        return tensor
    return interp.unknown_call(args, kwargs, node, leaf)


def resampled(leaf: str, tensor: TensorV, args: Args, kwargs: Kwargs, span: Span) -> TensorV:
    """``F.interpolate`` / ``F.pixel_shuffle`` / ``F.pad`` ...: the values passed on (gain 1: a copy, a
    re-arrangement, an interpolation or added zeros), as a node that says how the spatial size changes
    (unknown after it when its arguments are not literal)."""
    bound = dict(zip(RESAMPLE_PARAMS[leaf], args, strict=False))
    bound.update(kwargs)
    window = resample_window(leaf, bound)
    if window is None and leaf in catalog.PASSTHROUGH_CALLS:
        # ``F.interpolate(x, size=skip.shape[-2:])``: most often back to a size the path had; read as before
        return tensor
    layer = Layer(LayerKind.OTHER, leaf, span, "torch", activation="linear", bias=False, window=window)
    return TensorV(tensor.nodes + (layer,), tensor.hint)


def _grad_mode(leaf: str, args: Args, kwargs: Kwargs) -> Value:
    """``torch.no_grad()``, ``inference_mode()``, ``set_grad_enabled(False)``: a context turning gradients
    off; ``enable_grad()`` and a mode that is not literally off change nothing gradlint models."""
    flag = args[0] if args else kwargs.get("mode")
    if leaf == "no_grad" or leaf == "inference_mode" and (flag is None or isinstance(flag, Const) and flag.value):
        return GradModeV(False)
    if leaf == "set_grad_enabled" and isinstance(flag, Const) and flag.value is False:
        return GradModeV(False)
    return GradModeV(True)


#: F.max_pool2d(input, kernel_size, stride, padding, dilation) / F.avg_pool2d(input, kernel_size, stride,
#: padding) / F.adaptive_avg_pool2d(input, output_size), after the input.
_POOL_PARAMS = {"max": ("kernel_size", "stride", "padding", "dilation"), "avg": ("kernel_size", "stride", "padding"),
                "adaptive": ("output_size",)}


def _functional_pool(leaf: str, tensor: TensorV, args: Args, kwargs: Kwargs, span: Span) -> Value:
    """A functional pooling or a mean or sum over literal axes: a pooling node with its window (what
    the spatial estimate and a head reducing the output features need); other reductions (max over
    an axis) pass the tensor on as before."""
    if leaf in ("mean", "sum"):
        axes = reduced_axes(args[0] if args else kwargs.get("dim"))
        if axes is None:
            return tensor
        layer = Layer(LayerKind.POOLING, leaf, span, "torch", bias=False, window=Window(reduce=axes))
        return TensorV(tensor.nodes + (layer,), tensor.hint)
    kind = "adaptive" if leaf.startswith("adaptive") else leaf.split("_")[0]
    params = _POOL_PARAMS.get(kind)
    if params is None or not leaf[-2].isdigit():
        return tensor
    bound = dict(zip(params, args, strict=False))
    bound.update(kwargs)
    layer = Layer(LayerKind.POOLING, leaf, span, "torch", bias=False, window=pool_window(leaf, bound, int(leaf[-2])))
    if kind == "max":
        layer.receptive = window_area(bound.get("kernel_size"), int(leaf[-2]))
    return TensorV(tensor.nodes + (layer,), tensor.hint)


def _view(interp: Interp, leaf: str, tensor: TensorV, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    """``x.view(-1, 256, 4, 4)`` / ``torch.reshape(x, (b, c, 8, 8))``: the values passed on; to a feature map
    of literal size, a node that says its spatial size (a generator's projection, then convs)."""
    window = view_window(args[1:])
    if window is None:
        return tensor
    layer = Layer(LayerKind.OTHER, "view", span_of(node), "torch", activation="linear", bias=False, window=window)
    return TensorV(tensor.nodes + (layer,), tensor.hint)


def _tensor_factory(leaf: str, args: Args) -> Value:
    shape = shape_of(args if leaf not in ("full", "full_like") else args[:1])
    init = _FACTORY_INITS.get(leaf)
    if leaf in ("full", "full_like") and len(args) >= 2 and isinstance(args[1], Const):
        init = Init("constant", {"value": float(args[1].value)})
    elif leaf == "tensor" and args and isinstance(args[0], Const) and isinstance(args[0].value, (int, float)):
        init = Init("constant", {"value": float(args[0].value)})
    # A fresh Init per call: callers scale and re-span it.
    return TensorConstV(Init(init.scheme, dict(init.params)), shape) if init is not None else UNKNOWN


def _functional_activation(leaf: str, act: str, tensor: TensorV, args: Args, kwargs: Kwargs, span: Span) -> Value:
    layer = Layer(LayerKind.ACTIVATION, leaf, span, "torch", activation=act, bias=False)
    if act in ("softmax", "log_softmax"):  # F.softmax(x, dim), torch.softmax(x, dim), F.log_softmax(x, dim)
        layer.axis = literal_axis(args[1] if len(args) > 1 else kwargs.get("dim"))
    if act == "leaky_relu":
        layer.act_param = number(args[1] if len(args) > 1 else kwargs.get("negative_slope"), 0.01)
    spec = catalog.RELU_FAMILY_ARGS.get(("torch", leaf.rstrip("_")))
    if spec is not None:  # F.threshold(x, θ, 0)
        member = relu_family_member("torch", leaf, dict(zip(spec, args[1:], strict=False)) | kwargs)
        if member is not None:
            layer.activation, layer.act_param = member
    elif act == "gelu":
        approx = kwargs.get("approximate")
        if isinstance(approx, Const) and approx.value == "tanh":
            layer.activation = "gelu_tanh"
    return TensorV(tensor.nodes + (layer,), tensor.hint)


def _pieces(interp: Interp, leaf: str, tensor: TensorV, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    """``torch.chunk(x, 3)``: the pieces, as ``x.chunk(3)`` gives them."""
    return step_reads.pieces(tensor, leaf, args[1:] if args and args[0] is tensor else args, kwargs)


def _glu(interp: Interp, leaf: str, tensor: TensorV, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    span = span_of(node)
    gate = Gate([Layer(LayerKind.ACTIVATION, "glu", span, "torch", activation="sigmoid")], span)
    return TensorV(tensor.nodes + (gate,), tensor.hint)


def _concat(interp: Interp, leaf: str, tensor: TensorV, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    tensors = [a for a in flatten_args(args[:1]) if isinstance(a, TensorV)]
    step_reads.note_stacked(interp, args[0] if args else None, tensors)
    return merge_many(tensors, span_of(node), concat=True) if tensors else tensor


def _add(interp: Interp, leaf: str, tensor: TensorV, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    tensors = [a for a in args if isinstance(a, TensorV)]
    return merge_residual(tensors[0], tensors[1], span_of(node)) if len(tensors) >= 2 else tensor


def _mul(interp: Interp, leaf: str, tensor: TensorV, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    tensors = [a for a in args if isinstance(a, TensorV)]
    return merge_gate(tensors[0], tensors[1], span_of(node)) if len(tensors) >= 2 else tensor


def _matmul(interp: Interp, leaf: str, tensor: TensorV, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    """x @ y of two tensors merges paths; x @ W with a free parameter is a dense layer."""
    span = span_of(node)
    tensors = [a for a in flatten_args(args) if isinstance(a, TensorV)]
    params = [a for a in args if isinstance(a, ParamV)]
    if len(tensors) >= 2:
        return merge_many(tensors, span, concat=False)
    if leaf in ("matmul", "mm") and len(args) == 2 and args[0] is tensor:
        made = torch_tensors.matmul_layer(tensor, args[1], leaf, span)
        if made is not None:
            return made
    if leaf == "addmm" and len(args) >= 3 and args[1] is tensor:  # torch.addmm(b, x, w) = b + x @ w
        made = torch_tensors.matmul_layer(tensor, args[2], leaf, span)
        last = made.nodes[-1] if made is not None and made.nodes else None
        if isinstance(last, Layer) and last.kind == LayerKind.DENSE:
            bias = args[0]
            init = param_init(bias) if isinstance(bias, ParamV) else bias.init \
                if isinstance(bias, TensorConstV) else None
            last.bias, last.bias_init = init is not None, init
        if made is not None:
            return made
    if params:
        shape = params[0].shape
        layer = Layer(LayerKind.DENSE, leaf, span, "torch", weight_init=params[0].init, bias=False,
                      fan_in=shape[0] if shape and len(shape) == 2 else None,
                      fan_out=shape[1] if shape and len(shape) == 2 else None)
        return TensorV(tensor.nodes + (layer,), tensor.hint)
    return tensor


def _linear(interp: Interp, leaf: str, tensor: TensorV, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    """F.linear(x, weight, bias): the layer owning ``weight``, or a dense layer of free parameters."""
    weight = args[1] if len(args) > 1 else kwargs.get("weight", UNKNOWN)
    init = weight.init if isinstance(weight, ParamV) else None
    owner = weight.owner if isinstance(weight, ParamV) else None
    if owner is not None:
        return TensorV(tensor.nodes + (owner,), tensor.hint)
    found = dense_operand(weight, "linear")
    if found is not None and isinstance(found[0], TensorConstV) and not found[0].trainable:
        # a fixed tensor as the weight: not a layer gradlint can read as one
        return TensorV(tensor.nodes + (Layer(LayerKind.UNKNOWN, "linear with a fixed tensor", span_of(node),
                                             "torch"),), tensor.hint)
    fan_in = fan_out = None
    if found is not None:
        _, init, fan_in, fan_out = found
    bias_arg = args[2] if len(args) > 2 else kwargs.get("bias")
    bias_init = bias_arg.init if isinstance(bias_arg, (ParamV, TensorConstV)) else None
    layer = Layer(LayerKind.DENSE, "linear", span_of(node), "torch", weight_init=init, fan_in=fan_in, fan_out=fan_out,
                  bias=isinstance(bias_arg, (ParamV, TensorConstV)))
    if bias_init is not None:
        layer.bias_init = bias_init
    return TensorV(tensor.nodes + (layer,), tensor.hint)


def _attention(interp: Interp, leaf: str, tensor: TensorV, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    return TensorV(tensor.nodes + (Layer(LayerKind.ATTENTION, leaf, span_of(node), "torch", bias=False),), tensor.hint)


def _same(interp: Interp, leaf: str, tensor: TensorV, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    return tensor


def _log(interp: Interp, leaf: str, tensor: TensorV, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    """torch.log(p): a hand-written cross-entropy on a model's output in training code; otherwise
    an elementwise op gradlint does not model."""
    loss = recorder.hand_written_log(interp, "torch", tensor, node)
    return loss if loss is not None else interp.unknown_call(args, kwargs, node, leaf)


def _checkpoint(interp: Interp, leaf: str, tensor: TensorV, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    """torch.utils.checkpoint(fn, *args): fn(*args)."""
    if not args:
        return interp.unknown_call(args, kwargs, node, leaf)
    return interp.call(args[0], args[1:], {}, node)


def _clamp(interp: Interp, leaf: str, tensor: TensorV, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    """torch.clamp(x, min, max) / torch.clip: see ``clamped``."""
    return clamped(tensor, args[1:], kwargs, node)


# clamp bounds that are an activation: (min, max) -> its name
_CLAMP_ACTIVATIONS = {(0.0, None): "relu", (0.0, 6.0): "relu6", (-1.0, 1.0): "hardtanh"}


def clamped(tensor: TensorV, bounds: Args, kwargs: Kwargs, node: ast.AST, floor_only: bool = False) -> Value:
    """``x.clamp(0, 6)``, ``x.clamp(min=0)``, ``torch.clip(x, -1, 1)``, ``x.clamp_min(0)``: the ReLU6 / ReLU /
    hardtanh these bounds are; other bounds (``clamp(p, 1e-7, 1 - 1e-7)`` before a log) pass the path on."""
    names = ("min",) if floor_only else ("min", "max")
    values: list[float | None] = []
    for i, key in enumerate(names):
        given = bounds[i] if i < len(bounds) else kwargs.get(key)
        if given is None or isinstance(given, Const) and given.value is None:
            values.append(None)
        elif isinstance(given, Const) and isinstance(given.value, (int, float)) and not isinstance(given.value, bool):
            values.append(float(given.value))
        else:
            return floored(tensor, "clamp", span_of(node), "torch")
    low, high = values[0], values[1] if len(values) > 1 else None
    act = _CLAMP_ACTIVATIONS.get((low, high)) if low is not None else None
    if act is None:
        return floored(tensor, "clamp", span_of(node), "torch") if low is not None and low > 0 else tensor
    layer = Layer(LayerKind.ACTIVATION, "clamp", span_of(node), "torch", activation=act, bias=False)
    return TensorV(tensor.nodes + (layer,), tensor.hint)


_FunctionHandler = Callable[[Interp, str, TensorV, Args, Kwargs, ast.AST], Value]
# Functions with their own semantics; checked before the activation / normalisation / plumbing tables
# (``stack`` is plumbing and a merge: the merge wins).
_FUNCTIONS: dict[str, _FunctionHandler] = {
    "glu": _glu, "cat": _concat, "concat": _concat, "stack": _concat, "add": _add, "mul": _mul,
    **{name: _matmul for name in _MATMULS}, "linear": _linear,
    "conv1d": functional_conv, "conv2d": functional_conv, "conv3d": functional_conv,
    "scaled_dot_product_attention": _attention, "multi_head_attention_forward": _attention,
    "embedding": _same, "one_hot": _same, "log": _log,
    "checkpoint": _checkpoint, "checkpoint_sequential": _checkpoint, "checkpoint_seq": _checkpoint,
    "clamp": _clamp, "clip": _clamp, "reshape": _view,
    **{name: _pieces for name in ("chunk", "split", "unbind")},
}


# ---------------------------------------------------------------------- tensor and parameter methods


def tensor_method(interp: Interp, tensor: TensorV, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    span = span_of(node)
    act = catalog.FUNCTIONAL_ACTIVATIONS.get(name)
    if act is not None:
        layer = Layer(LayerKind.ACTIVATION, name, span, "torch", activation=act, bias=False)
        if act in ("softmax", "log_softmax"):  # x.softmax(dim)
            layer.axis = literal_axis(args[0] if args else kwargs.get("dim"))
        return TensorV(tensor.nodes + (layer,), tensor.hint)
    if name in ("clamp", "clip", "clamp_", "clip_", "clamp_min", "clamp_min_"):
        return clamped(tensor, args, kwargs, node, floor_only=name.startswith("clamp_min"))
    other = args[0] if args else UNKNOWN
    if name in ("add", "add_", "__add__"):
        return merge_residual(tensor, other, span) if isinstance(other, TensorV) else tensor
    if name in ("mul", "mul_", "__mul__"):
        if isinstance(other, TensorV):
            return merge_gate(tensor, other, span)
        return interp.tensor_binop(ast.Mult(), tensor, other, node)
    if name in ("matmul", "bmm", "mm"):
        if isinstance(other, TensorV):
            return merge_other(tensor, other)
        return interp.tensor_binop(ast.MatMult(), tensor, other, node)
    if name == "log":
        loss = recorder.hand_written_log(interp, "torch", tensor, node)
        if loss is not None:
            return loss
    if name in catalog.TORCH_GRADIENT_STOPS or name == "requires_grad_":
        return _stop_method(interp, tensor, name, args, kwargs, span)
    if name in catalog.TORCH_INDEX_OPS and not _in_model_class(interp):
        # training code: integer indices of a model's output (a prediction, a metric), no gradient to it
        return stopped(tensor, name, span, "torch")
    if name in ("mean", "sum"):
        return _functional_pool(name, tensor, args, kwargs, span)
    if name in RESAMPLE_PARAMS:
        return resampled(name, tensor, args, kwargs, span)
    if name in ("view", "reshape"):
        return _view(interp, name, tensor, [tensor] + args, kwargs, node)
    if name in catalog.FUNCTIONAL_POOLING or name in catalog.PASSTHROUGH_CALLS or name in _TENSOR_KEEPS:
        if name in ("softmax", "log_softmax"):
            layer = Layer(LayerKind.ACTIVATION, name, span, "torch", activation=name, bias=False)
            layer.axis = literal_axis(args[0] if args else kwargs.get("dim"))
            return TensorV(tensor.nodes + (layer,), tensor.hint)
        if name == "item":
            return ReadOutV(tensor, "item")
        if name == "size":
            return batch_size(interp, node, args, kwargs)
        if name == "dim":
            return UNKNOWN
        if name in ("chunk", "split", "unbind"):
            return step_reads.pieces(tensor, name, args, kwargs)
        return tensor
    return interp.unknown_call([tensor] + args, kwargs, node, name)


def _stop_method(interp: Interp, tensor: TensorV, name: str, args: Args, kwargs: Kwargs, span: Span) -> Value:
    """``x.detach()``, in place ``x.detach_()`` / ``x.requires_grad_(False)``, and inside a model's
    methods ``x.numpy()`` / ``x.tolist()`` (values a ``torch.tensor(...)`` makes a tensor again)."""
    if name == "requires_grad_":
        flag = args[0] if args else kwargs.get("requires_grad", Const(True))
        if not (isinstance(flag, Const) and flag.value is False):
            return tensor
    if name in ("numpy", "tolist") and not _in_model_class(interp):
        # training code's numbers (metrics: unknown as before); made a tensor again, see call_torch_function
        return ReadOutV(stopped(tensor, name, span, "torch"), name)
    result = stopped(tensor, name, span, "torch")
    if name in ("detach_", "requires_grad_"):  # in place: every name bound to the tensor sees it
        tensor.nodes, tensor.shape = result.nodes, result.shape
        return tensor
    return result


def _in_model_class(interp: Interp) -> bool:
    cls = interp.frame.cls
    return cls is not None and cls.framework is not None
