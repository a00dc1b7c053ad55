"""PyTorch models written with raw tensors (the "learning PyTorch with examples" style).

There is no ``nn.Module``: the weights are tensors created with ``requires_grad=True`` (or
``.requires_grad_()``, or ``nn.Parameter`` outside any class), the input is a data tensor such as
``x = torch.randn(N, D_in)``, and the forward is a chain ``x.mm(w1).clamp(min=0).mm(w2)`` /
``torch.sigmoid(x @ w1 + b1) @ w2``, often inside a training loop. The torch counterpart of
``tensorflow.TFGraph``: a matmul of a data tensor with a weight starts a chain (the data tensor is
the model's input), each matmul with a weight is a dense layer whose fan-in is the weight's first
dimension, ``+ b`` sets its bias, and once the whole file ran every chain becomes one model per set
of weights (a loop that runs the forward each iteration gives one model). Only weights created in
this file count, and only chains rooted at a data tensor of this file: library code doing tensor
arithmetic on its arguments builds nothing. Nothing is imported or run.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from gradlint.extract.api import Args, Interp, Kwargs
from gradlint.extract.common import span_of
from gradlint.extract.inits import dense_operand, scale_init
from gradlint.extract.values import (
    Const,
    FunctionalModelV,
    NodeSeq,
    ParamV,
    TensorConstV,
    TensorV,
    TransposedV,
    Value,
    next_serial,
)
from gradlint.model import WEIGHT_KINDS, Init, InputHint, Layer, LayerKind, Node, Span, iter_layers

STATE = "torch_tensors"
MAX_CANDIDATES = 4096  # chains remembered as possible model outputs
_MATMUL_METHODS = frozenset({"mm", "matmul", "__matmul__"})


def in_model_class(interp: Interp) -> bool:
    """Code of a model class (an ``nn.Module``) runs now: its tensors are module attributes its forward
    trains. Outside one — at module level, in a function, or in a plain Python class (a tutorial's
    hand-made ``class Linear:`` with ``__call__``) — a tensor made a weight is a raw-tensor model's."""
    cls = interp.frame.cls
    return cls is not None and cls.framework is not None


class RawTensors:
    """Per-file state: the raw weights created in this file, the data tensors that became chain roots,
    the chains built, and the models made of them."""

    def __init__(self, interp: Interp) -> None:
        self.interp = interp
        self.weights: dict[int, ParamV] = {}  # id -> weight (kept alive so ids stay unique)
        self.roots: dict[int, tuple[InputHint, Span]] = {}  # id(hint) -> the data tensor's hint, span
        self.data: dict[int, TensorConstV] = {}  # data tensors already made roots (one hint each)
        self.candidates: list[TensorV] = []
        self.models: list[tuple[FunctionalModelV, frozenset[int]]] = []
        self._parameters: set[int] | None = None  # ids of Name nodes reading a function's own parameter
        self._parameter_hints: dict[int, InputHint] = {}
        self.made_in: dict[int, object] = {}  # id(weight) -> the call frame that created it

    # ------------------------------------------------------------------ weights and roots

    def weight(self, init: Init | None, shape: tuple[int, ...] | None, span: Span) -> ParamV:
        init = Init(init.scheme, dict(init.params), span) if init is not None else Init("unknown", {}, span)
        return self.register(ParamV(None, "param", init=init, ndim=len(shape) if shape else None, shape=shape))

    def register(self, param: ParamV) -> ParamV:
        self.weights[id(param)] = param
        self.made_in[id(param)] = self.interp.frame
        return param

    def make_weight(self, tensor: TensorConstV, span: Span) -> ParamV:
        """``w.requires_grad_()`` works in place (its result is often dropped): the very object every
        name holding the tensor sees becomes the weight, as the torch tensor becomes a leaf parameter."""
        init = tensor.init
        shape = tensor.shape
        param: Value = tensor
        param.__class__ = ParamV  # the same attributes plus owner/role/ndim, set here
        assert isinstance(param, ParamV)
        param.owner, param.role = None, "param"
        param.init = Init(init.scheme, dict(init.params), span)
        param.ndim, param.shape = (len(shape) if shape else None), shape
        param.born = next_serial()  # a free parameter's birth (inits.set_param_init reads it)
        self.register(param)
        return param

    def is_weight(self, value: Value) -> bool:
        return isinstance(value, ParamV) and self.weights.get(id(value)) is value

    def root(self, data: TensorConstV, span: Span) -> TensorV:
        """The data tensor ``torch.randn(N, D)`` as a model input: features of its last dimension."""
        hint = getattr(data, "_raw_root", None)
        if not isinstance(hint, InputHint):
            shape = data.shape
            hint = InputHint("features", (shape[-1],)) if shape and len(shape) == 2 else InputHint("unknown")
            data._raw_root = hint  # type: ignore[attr-defined]  # every use of one data tensor: one input
            self.roots[id(hint)] = (hint, span)
            self.data[id(data)] = data
        return TensorV(NodeSeq(), hint)

    def parameter_root(self, node: ast.AST) -> ast.Name | None:
        """The left operand of ``xb @ w`` / ``xb.mm(w)`` / ``torch.mm(xb, w)`` when it is, as written, a
        parameter of the function the expression is in (``def model(xb): return xb @ weights``, called
        with a batch gradlint cannot see): the model's input, like a data tensor."""
        if isinstance(node, ast.BinOp):
            operand: ast.AST = node.left
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            operand = node.func.value if node.func.attr in _MATMUL_METHODS else (node.args[0] if node.args else node)
        elif isinstance(node, ast.Call) and node.args:
            operand = node.args[0]
        else:
            return None
        if not isinstance(operand, ast.Name):
            return None
        if self._parameters is None:
            self._parameters = _parameter_names(self.interp.tree)
        return operand if id(operand) in self._parameters else None

    def parameter_input(self, node: ast.AST, features: int | None) -> TensorV:
        name = self.parameter_root(node)
        assert name is not None
        hint = self._parameter_hints.get(id(name))
        if hint is None:
            hint = InputHint("features", (features,)) if features is not None else InputHint("unknown")
            self._parameter_hints[id(name)] = hint
            self.roots[id(hint)] = (hint, span_of(name))
        return TensorV(NodeSeq(), hint)

    def rooted(self, tensor: TensorV) -> bool:
        return tensor.hint is not None and id(tensor.hint) in self.roots

    # ------------------------------------------------------------------ operations

    def matmul(self, left: Value, right: Value, node: ast.AST) -> TensorV | None:
        """``x @ w`` / ``x.mm(w)`` / ``torch.matmul(x, w)`` (or ``x.mm(w.t())``) with a weight of this
        file: a dense layer."""
        operand = dense_operand(right, "right")
        if operand is None or not self.is_weight(operand[0]) or self.is_weight(left) \
                or isinstance(left, TransposedV):
            return None
        weight, init, fan_in, fan_out = operand
        assert isinstance(weight, ParamV)
        right = weight
        span = span_of(node)
        if isinstance(left, TensorConstV) and not isinstance(left, ParamV):
            tensor = self.root(left, span)
        elif isinstance(left, TensorV) and self.rooted(left):
            tensor = left
        elif not isinstance(left, (TensorV, ParamV, TensorConstV)) and not in_model_class(self.interp) \
                and self.made_in.get(id(right)) is not self.interp.frame and self.parameter_root(node) is not None:
            # a function's argument times a weight made outside that call (at module level, by an
            # init function); a weight made by the call itself is a library's arithmetic, not a model
            tensor = self.parameter_input(node, fan_in)
        else:
            return None
        if any(getattr(seen, "_raw_weight", None) == id(right) for seen in iter_layers(list(tensor.nodes))):
            # The same weight twice on one path: a hand-unrolled recurrence, not a stack; unknown.
            return TensorV(tensor.nodes + (Layer(LayerKind.UNKNOWN, "recurrence", span, "torch"),), tensor.hint)
        layer = Layer(LayerKind.DENSE, "matmul", span, "torch", weight_init=init, bias=False,
                      fan_in=fan_in, fan_out=fan_out)
        layer._raw_weight = id(right)  # type: ignore[attr-defined]
        layer._raw_weight_ref = right  # type: ignore[attr-defined]  # keeps the id unique
        return self.record(TensorV(tensor.nodes + (layer,), tensor.hint))

    def add_bias(self, tensor: TensorV, bias: ParamV) -> TensorV:
        """``x @ w + b``: the bias belongs to the dense layer just applied (its init enters σ_b²)."""
        last = tensor.nodes[-1] if tensor.nodes else None
        if isinstance(last, Layer) and hasattr(last, "_raw_weight") and last.bias is False and bias.init is not None:
            last.bias = True
            last.bias_init = bias.init
        return tensor

    def binop(self, op: ast.operator, left: Value, right: Value, node: ast.AST) -> Value | None:
        if isinstance(op, ast.MatMult):
            return self.matmul(left, right, node)
        if isinstance(op, ast.Add):
            for tensor, other in ((left, right), (right, left)):
                if isinstance(tensor, TensorV) and self.rooted(tensor) and self.is_weight(other):
                    assert isinstance(other, ParamV)
                    return self.add_bias(tensor, other)
        if self.is_weight(left) and not isinstance(right, (TensorV, ParamV)):
            assert isinstance(left, ParamV)
            if isinstance(op, (ast.Mult, ast.Div)) and _number(right):
                return self.scaled(left, op, right, node)
            if isinstance(op, (ast.Add, ast.Sub)) and isinstance(node, ast.AugAssign) \
                    and not isinstance(right, TensorConstV):
                return left  # ``w1 -= lr * w1.grad``: the training step keeps the weight (its init is what counts)
        if isinstance(op, ast.Mult) and self.is_weight(right) and _number(left):
            assert isinstance(right, ParamV)
            return self.scaled(right, op, left, node)
        return None

    def scaled(self, weight: ParamV, op: ast.operator, scalar: Value, node: ast.AST) -> Value:
        """``torch.randn(n, m, requires_grad=True) * 0.01``: the tensor the forward uses has the scaled init."""
        made = scale_init(op, TensorConstV(weight.init or Init("unknown"), weight.shape), scalar)
        init = made.init if isinstance(made, TensorConstV) else Init("unknown")
        return self.weight(init, weight.shape, span_of(node))

    def method(self, target: Value, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value | None:
        if isinstance(target, TensorConstV):
            if name == "requires_grad_" and (not args or _true(args[0])):
                return self.make_weight(target, span_of(node))
            if name in _MATMUL_METHODS and args:
                return self.matmul(target, args[0], node)
            return None
        if isinstance(target, TensorV) and name in _MATMUL_METHODS and args:
            return self.matmul(target, args[0], node)
        if isinstance(target, TensorV) and name in ("clamp", "clamp_", "clip") and self.rooted(target):
            low = args[0] if args else kwargs.get("min")
            high = args[1] if len(args) > 1 else kwargs.get("max")
            if isinstance(low, Const) and low.value == 0 and (high is None or isinstance(high, Const)
                                                               and high.value is None):
                layer = Layer(LayerKind.ACTIVATION, name, span_of(node), "torch", activation="relu", bias=False)
                return TensorV(target.nodes + (layer,), target.hint)
        return None

    def record(self, tensor: TensorV) -> TensorV:
        if len(self.candidates) < MAX_CANDIDATES:
            self.candidates.append(tensor)
        return tensor

    # ------------------------------------------------------------------ models

    def finish(self) -> None:
        """After the whole file ran: one model per set of weights (the longest chain through them)."""
        interp = self.interp
        scope = interp.module_scope.vars
        pool = self.candidates + [v for v in scope.values() if isinstance(v, TensorV) and self.rooted(v)]
        best: dict[frozenset[int], TensorV] = {}
        order: list[frozenset[int]] = []
        for tensor in pool:
            keys = _weight_keys(tensor.nodes)
            if not keys:
                continue
            trimmed = _trim(tensor)
            known = next((k for k in order if k >= keys or k <= keys), None)
            if known is None:
                order.append(keys)
                best[keys] = trimmed
            elif keys > known:  # a longer chain through the same weights and more
                order[order.index(known)] = keys
                del best[known]
                best[keys] = trimmed
            elif keys == known and len(trimmed.nodes) > len(best[known].nodes):
                best[known] = trimmed
        names: dict[int, str] = {}
        for var, value in scope.items():
            if isinstance(value, TensorConstV) and id(value) in self.data:
                names.setdefault(id(value._raw_root), var)  # type: ignore[attr-defined]
        for keys in order:
            tensor = best[keys]
            root = self.roots[id(tensor.hint)] if tensor.hint is not None else None
            span = root[1] if root is not None else _first_span(tensor.nodes)
            model = FunctionalModelV(TensorV(tensor.nodes, tensor.hint), span)
            out_name = next((var for var, value in scope.items() if isinstance(value, TensorV)
                             and self.rooted(value) and _weight_keys(value.nodes) == keys
                             and _trim(value) is value), None)
            in_name = names.get(id(tensor.hint)) if tensor.hint is not None else None
            if in_name and out_name:
                model.name = f"tensors({in_name} -> {out_name})"
            else:
                model.name = f"tensors@{span.line}"
            model.script_output = out_name  # what the dynamic check reads after running the script
            self.models.append((model, keys))
            interp.built.append(model)


def matmul_layer(tensor: TensorV, operand: Value, name: str, span: Span) -> TensorV | None:
    """``x @ w`` / ``x.mm(w.t())`` / ``torch.matmul(x, w)`` inside a model (the forward's symbolic
    tensor times a module's matrix): a dense layer when ``w`` is a weight (an ``nn.Parameter``, a
    tensor created with ``requires_grad``); an explicit unknown when it is a fixed tensor or anything
    unresolved, which the model must not be read as fully understood across. None: ``operand`` is a
    tensor of the model's own path (``q @ k.T``, merged by the caller)."""
    if isinstance(operand, TensorV):
        return None
    found = dense_operand(operand, "right")
    if found is None or isinstance(found[0], TensorConstV) and not found[0].trainable:
        what = "a fixed tensor" if found is not None else "an unresolved matrix"
        return TensorV(tensor.nodes + (Layer(LayerKind.UNKNOWN, f"{name} with {what}", span, "torch"),),
                       tensor.hint)
    _, init, fan_in, fan_out = found
    layer = Layer(LayerKind.DENSE, name, span, "torch", weight_init=init, bias=False, fan_in=fan_in, fan_out=fan_out)
    return TensorV(tensor.nodes + (layer,), tensor.hint)


def _parameter_names(tree: ast.AST) -> set[int]:
    """Name nodes that read a parameter of their own function which the function never rebinds, or
    a name that starts as such a parameter and is only ever rebound to an expression of itself
    (``h = xb`` then ``h = torch.sigmoid(h @ w)`` in a loop: the chain from the parameter)."""
    out: set[int] = set()
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        a = fn.args
        params = {p.arg for p in a.posonlyargs + a.args + a.kwonlyargs}
        body = fn.body if isinstance(fn.body, list) else [fn.body]
        nodes = [n for stmt in body for n in ast.walk(stmt)]
        names = [n for n in nodes if isinstance(n, ast.Name)]
        stored = {n.id for n in names if isinstance(n.ctx, ast.Store)}
        params -= stored
        assigns: dict[str, list[ast.expr]] = {}
        plain = set()  # names bound by a plain ``name = value`` only
        for n in nodes:
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
                assigns.setdefault(n.targets[0].id, []).append(n.value)
                plain.add(id(n.targets[0]))
        unplain = {n.id for n in names if isinstance(n.ctx, ast.Store) and id(n) not in plain}
        for var, values in assigns.items():
            if var in unplain or var in params:
                continue
            starts = [v for v in values if isinstance(v, ast.Name) and v.id in params]
            rest = [v for v in values if v not in starts]
            if len(starts) == 1 and all(any(isinstance(m, ast.Name) and m.id == var for m in ast.walk(v))
                                        for v in rest):
                params.add(var)
        out.update(id(n) for n in names if n.id in params and isinstance(n.ctx, ast.Load))
    return out


_SWAPS = frozenset({(0, 1), (1, 0), (-1, -2), (-2, -1), (0, -1), (-1, 0), (1, -2), (-2, 1)})


def transposed(value: Value, name: str, args: Args) -> Value | None:
    """``w.t()``, ``w.T``, ``w.mT``, ``w.transpose(0, 1)``, ``w.permute(1, 0)``, ``torch.t(w)`` of a weight
    or a tensor with a known init: the same matrix read the other way round (a view of a 2-D tensor;
    a 1-D one is itself). ``.contiguous()`` keeps the view. None: not such a call."""
    if not isinstance(value, (ParamV, TensorConstV, TransposedV)):
        return None
    if name == "contiguous" and not args and isinstance(value, TransposedV):
        return value
    if name in ("t", "T", "mT") and not args:
        pass
    elif name in ("transpose", "swapaxes", "swapdims", "permute") and len(args) == 2 \
            and all(isinstance(a, Const) and isinstance(a.value, int) for a in args):
        if (args[0].value, args[1].value) not in _SWAPS:  # type: ignore[attr-defined]
            return None
        if name == "permute" and {args[0].value, args[1].value} != {0, 1}:  # type: ignore[attr-defined]
            return None
    else:
        return None
    if isinstance(value, TransposedV):
        return value.base
    shape = value.shape
    if shape is not None and len(shape) != 2:
        return value if len(shape) < 2 and name in ("t", "T") else None
    return TransposedV(value)


def _number(value: Value) -> bool:
    """A literal scale (``w * 0.01``); a weight times data (``b * x``) is not a rescaled weight."""
    return isinstance(value, Const) and isinstance(value.value, (int, float)) and not isinstance(value.value, bool)


def _true(value: Value) -> bool:
    return isinstance(value, Const) and value.value is True


def _weight_keys(nodes: Sequence[Node]) -> frozenset[int]:
    return frozenset(getattr(layer, "_raw_weight", id(layer)) for layer in iter_layers(list(nodes))
                     if layer.kind in WEIGHT_KINDS)


def _trim(tensor: TensorV) -> TensorV:
    """Drop what follows the chain's last known layer when it is an op gradlint does not model (the
    loss's ``(y_pred - y) ** 2``): the model ends where the loss begins."""
    nodes = list(tensor.nodes)
    end = len(nodes)
    while end and isinstance(nodes[end - 1], Layer) and nodes[end - 1].kind == LayerKind.UNKNOWN:  # type: ignore[union-attr]
        end -= 1
    return tensor if end == len(nodes) else TensorV(NodeSeq(nodes[:end]), tensor.hint)


def _first_span(nodes: Sequence[Node]) -> Span:
    for layer in iter_layers(list(nodes)):
        return layer.span
    return Span(1, 0, 1, 0)


def state_of(interp: Interp) -> RawTensors:
    state = interp.framework_state.get(STATE)
    if not isinstance(state, RawTensors):
        state = interp.framework_state[STATE] = RawTensors(interp)
    return state


def existing(interp: Interp) -> RawTensors | None:
    """The file's state when it made any raw weight (no state: nothing of this module can apply)."""
    state = interp.framework_state.get(STATE)
    return state if isinstance(state, RawTensors) and state.weights else None


__all__ = ["RawTensors", "existing", "matmul_layer", "state_of", "transposed"]
