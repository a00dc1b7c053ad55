"""Initialisation schemes from call arguments (``nn.init.kaiming_normal_(w, a=0.1)``, Keras
initialiser objects), constant tensors scaled by a number, and writing an init onto a parameter."""

from __future__ import annotations

import ast
import math

from gradlint.extract import catalog
from gradlint.extract.api import Args, Kwargs
from gradlint.extract.common import param_size, span_of, unparsed
from gradlint.extract.values import UNKNOWN, Const, ParamV, TensorConstV, TransposedV, Value, layer_birth
from gradlint.gradflow import torch_gain
from gradlint.model import Init, LayerKind


def make_init(scheme: str, names: tuple[str, ...], args: list[Value], kwargs: dict[str, Value],
              node: ast.AST) -> Init | None:
    params: dict[str, float] = {}
    bound = dict(zip(names, args, strict=False))
    bound.update({k: v for k, v in kwargs.items() if k in names or k in ("gain", "std", "mean", "a", "b")})
    for key, value in bound.items():
        if isinstance(value, Const) and isinstance(value.value, (int, float)) and not isinstance(value.value, bool):
            if not math.isfinite(value.value) or abs(value.value) > 1e6:
                return Init("unknown", {}, span_of(node))  # U(-1, 1e308): no number is better than a wrong one
            params[key] = float(value.value)
        elif isinstance(value, Const) and isinstance(value.value, str):
            if key == "mode":  # a code, as params are numbers (gradlint.model.INIT_MODES)
                params["mode"] = {"fan_in": 0.0, "fan_out": 1.0, "fan_avg": 2.0}.get(value.value.lower(), 0.0)
            elif key == "nonlinearity":
                params["gain"] = torch_gain(value.value, params.get("a", 0.0), strict=False)
        elif key in ("value", "std", "gain", "a", "b", "mean"):
            return Init("unknown", {}, span_of(node))
    if scheme.startswith("kaiming") and "gain" not in params:
        params["gain"] = torch_gain("leaky_relu", params.get("a", 0.0))  # torch's default nonlinearity
    return Init(scheme, params, span_of(node), written_as(node))


def written_as(node: ast.AST) -> str | None:
    """A call as the source writes it (normalized by ``ast.unparse``), for messages; kept on the
    node (a model zoo's init helper runs once per layer built)."""
    if not isinstance(node, ast.Call):
        return None
    memo = node.__dict__
    if "_gradlint_written_as" not in memo:
        memo["_gradlint_written_as"] = _written_as(node)
    return memo["_gradlint_written_as"]  # type: ignore[no-any-return]


def _written_as(node: ast.Call, limit: int = 100) -> str | None:
    values = list(node.args[1:] if isinstance(node.func, ast.Attribute) and node.args and node.func.attr.endswith("_")
                  else node.args) + [k.value for k in node.keywords]
    if not all(_literal(v) for v in values):
        return None  # `std=scale`: the numbers (Init.params) say more than the names
    text = unparsed(node)
    return text if len(text) <= limit else None


def _literal(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return isinstance(node, ast.Constant)


def scale_init(op: ast.operator, left: Value, right: Value) -> Value:
    """``torch.ones(d) * 1e-5``, ``torch.randn(n, m) * 0.01``: keep the init, scaled."""
    tensor, scalar = (left, right) if isinstance(left, (TensorConstV, ParamV)) else (right, left)
    init = param_init(tensor) if isinstance(tensor, ParamV) else tensor.init if isinstance(tensor, TensorConstV) \
        else None
    if init is None or not isinstance(scalar, Const) or not isinstance(scalar.value, (int, float)):
        return UNKNOWN
    factor = float(scalar.value)
    if isinstance(op, ast.Div) and tensor is left:
        factor = 1.0 / factor if factor else math.inf
    elif not isinstance(op, ast.Mult):
        return UNKNOWN
    params = dict(init.params)
    scheme = init.scheme
    if scheme in ("zeros",):
        pass
    elif scheme in ("ones", "constant"):
        params["value"] = params.get("value", 1.0) * factor
        scheme = "constant"
    elif scheme == "normal":
        params["std"] = params.get("std", 1.0) * abs(factor)
    elif scheme == "uniform":
        a, b = params.get("a", 0.0) * factor, params.get("b", 1.0) * factor
        params["a"], params["b"] = min(a, b), max(a, b)
    else:
        scaled = rescaled(init, factor)
        if scaled is None:
            return UNKNOWN
        return TensorConstV(scaled, getattr(tensor, "shape", None), _trainable(tensor))
    return TensorConstV(Init(scheme, params), getattr(tensor, "shape", None), _trainable(tensor))


def _trainable(tensor: Value) -> bool:
    """``torch.randn(n, m, requires_grad=True) * 0.01``: the scaled tensor is still the weight its author
    trains (the gradient reaches the leaf through the product)."""
    return isinstance(tensor, ParamV) or isinstance(tensor, TensorConstV) and tensor.trainable


def dense_operand(value: Value, layout: str) -> tuple[ParamV | TensorConstV, Init | None, int | None, int | None] \
        | None:
    """A matrix read as a dense layer's weight: the tensor (a transposed view's base), its init as the
    layer sees it, the layer's fan_in and fan_out. ``layout`` is how the layer reads the matrix as used:
    ``"right"`` for ``x @ w`` / ``x.mm(w)`` / ``torch.matmul(x, w)`` (rows are inputs: (fan_in, fan_out)),
    ``"linear"`` for ``F.linear(x, w)`` ((fan_out, fan_in), the ``nn.Linear`` layout).

    torch's init functions read fan_in from dim 1 of the tensor as created and fan_out from dim 0
    (``_calculate_fan_in_and_fan_out``: the ``nn.Linear`` layout). When the layer reads the created
    tensor the other way round — ``x @ w`` of a ``(fan_in, fan_out)`` tensor, or ``F.linear`` of a
    transposed view — ``kaiming_normal_(w)`` scales by the layer's fan_out: it is the layer's
    ``mode='fan_out'`` (and the reverse). Measured: ``kaiming_normal_`` on a 64 x 128 ``w`` gives
    Var(x @ w) = 1.02 for unit-variance x (the layer's fan_in mode would give 2.0)."""
    transposed = isinstance(value, TransposedV)
    base = value.base if isinstance(value, TransposedV) else value
    if not isinstance(base, (ParamV, TensorConstV)):
        return None
    init = param_init(base) if isinstance(base, ParamV) else base.init
    shape = base.shape
    owner = base.owner if isinstance(base, ParamV) and base.role == "weight" else None
    if shape is None and owner is not None and owner.kind == LayerKind.DENSE \
            and owner.fan_in is not None and owner.fan_out is not None:
        shape = (owner.fan_out, owner.fan_in)  # ``x @ self.fc.weight.t()``: nn.Linear's (out, in)
    fan_in = fan_out = None
    if shape and len(shape) == 2:
        rows, cols = (shape[1], shape[0]) if transposed else shape
        fan_in, fan_out = (rows, cols) if layout == "right" else (cols, rows)
    if (layout == "right") != transposed:
        init = torch_fan_swapped(init)
    return base, init, fan_in, fan_out


def torch_fan_swapped(init: Init | None) -> Init | None:
    """A torch kaiming init whose ``mode`` refers to the other dimension of the layer (see
    ``dense_operand``). Xavier uses fan_in + fan_out and the other schemes no fan: unchanged."""
    if init is None or not init.scheme.startswith("kaiming"):
        return init
    params = dict(init.params)
    mode = params.get("mode", 0.0)  # codes: 0 fan_in (torch's default), 1 fan_out
    if mode not in (0.0, 1.0):
        return init
    params["mode"] = 1.0 - mode
    return Init(init.scheme, params, init.span, init.written)


def param_init(param: ParamV) -> Init | None:
    """The init a parameter has now: its layer's for a layer's weight/bias, its own when free."""
    owner = param.owner
    if owner is None:
        return param.init
    return owner.weight_init if param.role == "weight" else owner.bias_init if param.role == "bias" else \
        owner.recurrent_init if param.role == "recurrent" else None


def rescaled(init: Init, factor: float, node: ast.AST | None = None) -> Init | None:
    """``init`` with every drawn value multiplied by ``factor`` (``w.data.mul_(10)``, ``w *= 5`` under
    ``no_grad``, ``w.data = w.data * s`` after any scheme, the framework default included): the scheme
    stays what it was and ``params["rescale"]`` carries the factor, which σ_w² takes squared
    (``gradflow.init_sigma_w2``). None when nothing can be said (an unknown init, an absurd factor).
    The result is a new Init: one init object may be shared by several parameters."""
    if init.scheme == "unknown" or not math.isfinite(factor) or abs(factor) > 1e6:
        return None
    params = dict(init.params)
    if init.is_constant:
        if init.scheme == "zeros":
            return Init("zeros", params, span_of(node) if node is not None else init.span)
        params["value"] = (init.constant_value or 0.0) * factor
        return Init("constant", params, span_of(node) if node is not None else init.span)
    params["rescale"] = params.get("rescale", 1.0) * factor
    written = f"{init.describe()} scaled by {factor:g}"
    return Init(init.scheme, params, span_of(node) if node is not None else init.span, written)


def rescale_param(param: ParamV, factor: float, node: ast.AST, since: int | None = None) -> bool:
    """``w.mul_(k)`` / ``w.div_(k)`` in place on a parameter whose init is known: scaled (the site is
    now the in-place call: a fix rewriting the first init would change what the scaling does).
    False when the init is unknown or constant (``perturb_param`` handles constants)."""
    current = param_init(param)
    if current is None or current.is_constant:
        return False
    scaled = rescaled(current, factor, node)
    if scaled is None:
        return False
    set_param_init(param, scaled, since)
    return True


def apply_init_value(param: ParamV, value: Value, node: ast.AST, since: int | None = None) -> None:
    init: Init | None = None
    if isinstance(value, TensorConstV):
        init = Init(value.init.scheme, dict(value.init.params), span_of(node), value.init.written)
    elif isinstance(value, ParamV) and value.init is not None:
        init = value.init
    set_param_init(param, init, since)


def set_param_init(param: ParamV, init: Init | None, since: int | None = None) -> None:
    """Write ``init`` onto ``param``. ``since``: the serial at which the innermost undecidable
    condition (an ``if`` on an unresolved value, a loop of unknown length) began, None outside one. A
    write there to a parameter that existed before it may or may not happen: the parameter keeps a
    known init only when the write leaves the one it has, otherwise its init is unknown (both arms
    of the ``if`` run; neither is a guess of which one Python takes)."""
    if since is not None:
        born = layer_birth(param.owner) if param.owner is not None else param.born
        if born is None or born < since:
            current = param_init(param)
            if not _same_init(current, init):
                span = init.span if init is not None else current.span if current is not None else None
                init = Init("unknown", {}, span)
    if param.owner is None:
        param.init = init
        return
    if param.role == "weight":
        param.owner.weight_init = init
    elif param.role == "bias":
        param.owner.bias_init = init
    elif param.role == "recurrent":
        param.owner.recurrent_init = init


def _same_init(a: Init | None, b: Init | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.scheme == b.scheme and a.scheme != "unknown" and a.params == b.params


def perturb_param(param: ParamV, args: list[Value], kwargs: dict[str, Value], node: ast.AST,
                  since: int | None = None) -> None:
    """``w.add_(noise)`` after ``zeros_(w)``: a constant init the code changes afterwards.
    By a tensor or an unknown value it is no longer known to be constant (no finding, no
    fix); by constants it stays constant, but the site is now the in-place call, which no
    fix rewrites (rewriting the first init would change what the second one does)."""
    current = param_init(param)
    if current is None or not current.is_constant:
        return
    values = [*args, *kwargs.values()]
    if all(isinstance(v, Const) and isinstance(v.value, (int, float)) for v in values):
        set_param_init(param, Init("constant", {}, span_of(node)), since)
    else:
        set_param_init(param, Init("unknown", {}, span_of(node)), since)


def forget_scale(param: ParamV, node: ast.AST, since: int | None = None) -> None:
    """``w.mul_(k)`` with ``k`` unresolved after a random init: the init's scale is unknown now
    (constants: ``perturb_param`` says what stays known)."""
    current = param_init(param)
    if current is not None and not current.is_constant:
        set_param_init(param, Init("unknown", {}, span_of(node)), since)


def param_method(target: ParamV, name: str, args: Args, kwargs: Kwargs, node: ast.AST,
                 since: int | None = None) -> Value:
    """``w.normal_(0, 1)``, ``w.copy_(t)``, ``w.mul_(k)`` ... on a parameter (``since``: see
    ``inits.set_param_init``)."""
    spec = catalog.TENSOR_INIT_METHODS.get(name)
    if spec is not None:
        scheme, params = spec
        set_param_init(target, make_init(scheme, params, args, kwargs, node), since)
        return target
    if name == "copy_":
        source = args[0] if args else UNKNOWN
        apply_init_value(target, source, node, since)
        return target
    if name in ("dim", "ndimension"):
        return Const(target.ndim) if target.ndim is not None else UNKNOWN
    if name == "size" and not kwargs:
        return param_size(target, args)
    if name == "requires_grad_":
        flag = args[0] if args else kwargs.get("requires_grad")
        if target.owner is not None and isinstance(flag, Const) and flag.value is False:
            target.owner.frozen = True  # layer.weight.requires_grad_(False): frozen on purpose
        if target.owner is not None:
            target.owner.grad_off = isinstance(flag, Const) and flag.value is False
        return target
    if name in ("detach", "clone", "to"):
        return target
    if name in ("mul_", "div_") and len(args) == 1 and not kwargs and isinstance(args[0], Const) \
            and isinstance(args[0].value, (int, float)) and not isinstance(args[0].value, bool) and args[0].value:
        factor = float(args[0].value)
        if rescale_param(target, factor if name == "mul_" else 1.0 / factor, node, since):
            return target
    elif name in ("mul_", "div_"):
        forget_scale(target, node, since)  # multiplied by something unresolved: the scale is no longer known
    if name in ("mul_", "div_", "clamp_", "add_", "sub_"):
        perturb_param(target, args, kwargs, node, since)
        return target
    return UNKNOWN


def calculate_gain(args: Args, kwargs: Kwargs) -> Value:
    """``nn.init.calculate_gain('tanh')`` as a number, so ``gain=calculate_gain('tanh') * 4`` is one."""
    name = args[0] if args else kwargs.get("nonlinearity", UNKNOWN)
    param = args[1] if len(args) > 1 else kwargs.get("param")
    if not isinstance(name, Const) or not isinstance(name.value, str):
        return UNKNOWN
    slope: float | None = None
    if param is not None and not (isinstance(param, Const) and param.value is None):
        if not isinstance(param, Const) or not isinstance(param.value, (int, float)) or isinstance(param.value, bool):
            return UNKNOWN
        slope = float(param.value)
    try:
        return Const(torch_gain(name.value, slope))
    except ValueError:  # a name torch rejects too
        return UNKNOWN
