"""TensorFlow layer functions applied to a tensor at once: ``tf.layers.dense``/``conv2d`` (TF 1.x,
``tf.compat.v1``), ``tf.contrib.layers`` / slim (``fully_connected``, ``conv2d``), and slim's
``stack``/``repeat`` that call one of them several times. Their defaults are TF's: a Glorot
kernel, a zero bias, no activation for ``tf.layers`` and ReLU for contrib; a ``with
slim.arg_scope([ops...], **defaults):`` block gives the ops it lists those defaults while it runs, and any
other use of ``arg_scope`` in the file makes contrib's defaults unknown. Nothing is imported or run.
"""

from __future__ import annotations

import ast
import math
from typing import Protocol

from gradlint.extract import tf_catalog
from gradlint.extract.api import Interp
from gradlint.extract.common import activation_of, is_none, longest_tensor, positive_int, span_of
from gradlint.extract.paths import current_width
from gradlint.extract.tf_helpers import _leaf
from gradlint.extract.values import UNKNOWN, Const, ListV, TensorV, Value
from gradlint.model import Init, Layer, LayerKind, Span


class LayerGraph(Protocol):
    """What the layer functions need of the file's graph (``tensorflow.TFGraph``)."""

    @property
    def interp(self) -> Interp: ...

    @property
    def framework(self) -> str: ...

    @property
    def arg_scope(self) -> bool: ...

    def scoped_defaults(self, name: str) -> dict[str, Value] | None: ...

    def init_of(self, value: Value, node: ast.AST) -> tuple[Init | None, tuple[int | None, ...] | None]: ...

    def root(self, width: int | None) -> TensorV: ...

    def record(self, value: Value) -> Value: ...


def layer_function(graph: LayerGraph, name: str, args: list[Value], kwargs: dict[str, Value],
                   node: ast.AST) -> Value | None:
    """``tf.layers.dense(x, 64, activation=tf.nn.relu, kernel_initializer=...)`` and contrib/slim."""
    spec = tf_catalog.LAYER_FUNCTIONS[name]
    span = span_of(node)
    source = args[0] if args else kwargs.get("inputs", UNKNOWN)
    scoped_defaults = graph.scoped_defaults(name) if spec.contrib else {}
    bound: dict[str, Value] = dict(scoped_defaults or {})  # what open arg_scope blocks set; the call wins
    bound.update(zip(spec.params, args[1:], strict=False))
    bound.update(kwargs)
    kind = LayerKind.DENSE if spec.kind == "dense" else LayerKind.CONV
    layer = Layer(kind, name.rsplit(".", 1)[-1], span, graph.framework)
    units = positive_int(bound.get(spec.units))
    receptive = None
    if kind == LayerKind.CONV:
        kernel = bound.get("kernel_size")
        if isinstance(kernel, Const) and isinstance(kernel.value, int) and not isinstance(kernel.value, bool):
            receptive = kernel.value**spec.dims
        elif (
            isinstance(kernel, Const)
            and isinstance(kernel.value, tuple)
            and all(isinstance(k, int) for k in kernel.value)
        ):
            receptive = math.prod(kernel.value)
        elif isinstance(kernel, ListV):
            sizes = [i.value for i in kernel.items if isinstance(i, Const) and isinstance(i.value, int)]
            receptive = math.prod(sizes) if len(sizes) == len(kernel.items) else None
    tensor = source if isinstance(source, TensorV) else graph.root(None)
    width = current_width(tensor)
    layer.receptive = receptive
    if kind == LayerKind.DENSE:
        layer.fan_in = width
        layer.fan_out = units
    else:
        layer.fan_in = width * receptive if width is not None and receptive is not None else None
        layer.fan_out = units * receptive if units is not None and receptive is not None else None
    init_value = bound.get(spec.kernel_initializer)
    scoped = spec.contrib and (graph.arg_scope or scoped_defaults is None)  # defaults set by an arg_scope not read
    if init_value is None and scoped:
        layer.weight_init = Init("unknown")
    elif init_value is None or is_none(init_value) is True:
        layer.weight_init = Init("glorot_uniform")
    else:
        layer.weight_init = graph.init_of(init_value, node)[0]
    bias_value = bound.get(spec.bias_initializer)
    use_bias = bound.get(spec.use_bias)
    if (isinstance(use_bias, Const) and use_bias.value is False) or (
        spec.contrib and bias_value is not None and is_none(bias_value) is True
    ):
        layer.bias = False
    else:
        layer.bias = True
        layer.bias_init = (
            Init("zeros")
            if bias_value is None or is_none(bias_value) is True
            else graph.init_of(bias_value, node)[0]
        )
    out = TensorV(tensor.nodes + (layer,), tensor.hint)
    if spec.contrib:
        norm = bound.get("normalizer_fn")
        if norm is not None and is_none(norm) is False:
            layer.bias = False  # contrib drops the bias when a normalizer follows
            out = TensorV(
                out.nodes + (Layer(LayerKind.NORMALIZATION, _leaf(norm), span, graph.framework, bias=False),),
                out.hint,
            )
    act_value = bound.get(spec.activation)
    if act_value is None and scoped:
        out = TensorV(out.nodes + (Layer(LayerKind.UNKNOWN, "arg_scope", span, graph.framework),), out.hint)
    elif act_value is None and spec.default_activation is not None:
        out = TensorV(
            out.nodes
            + (
                Layer(
                    LayerKind.ACTIVATION,
                    spec.default_activation,
                    span,
                    graph.framework,
                    activation=spec.default_activation,
                    bias=False,
                ),
            ),
            out.hint,
        )
    elif act_value is not None and is_none(act_value) is False:
        out = _apply_activation(graph, out, act_value, span, node)
    return graph.record(out)

def _apply_activation(graph: LayerGraph, tensor: TensorV, value: Value, span: Span, node: ast.AST) -> TensorV:
    act = activation_of(value)
    if act is not None:
        return TensorV(
            tensor.nodes
            + (
                Layer(
                    LayerKind.ACTIVATION,
                    _leaf(value),
                    span,
                    graph.framework,
                    activation=act,
                    bias=False,
                    act_param=tf_catalog.LEAKY_RELU_DEFAULT if act == "leaky_relu" else None,
                ),
            ),
            tensor.hint,
        )
    result = longest_tensor(graph.interp.call(value, [tensor], {}, node))  # activation=lambda x: ...
    if result is not None and result.nodes[: len(tensor.nodes)] == tensor.nodes:
        return result
    return TensorV(tensor.nodes + (Layer(LayerKind.UNKNOWN, "activation", span, graph.framework),), tensor.hint)



# slim's layer combinators (slim is aliased to contrib.layers by ``TFGraph.call_ref``).
COMBINATORS = frozenset({"contrib.layers.stack", "contrib.layers.repeat"})
MAX_REPEAT = 1000  # slim.repeat counts beyond this are not unrolled


def combinator(graph: LayerGraph, name: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
    """``slim.stack(x, slim.fully_connected, [64, 64, 32], activation_fn=...)`` calls the layer once per
    entry, a tuple entry giving several positional arguments (``[(32, [3, 3]), (64, [3, 3])]``);
    ``slim.repeat(x, 3, slim.conv2d, 64, [3, 3])`` calls it that many times with the same arguments.
    Extra keyword arguments go to every call (``scope`` is slim's naming only). Entries or a count
    it cannot enumerate leave the result UNKNOWN."""
    interp = graph.interp
    extra = {k: v for k, v in kwargs.items() if k not in ("inputs", "layer", "stack_args", "repetitions", "scope")}
    current = args[0] if args else kwargs.get("inputs", UNKNOWN)
    calls: list[list[Value]] = []
    if name.endswith("stack"):
        layer = args[1] if len(args) > 1 else kwargs.get("layer", UNKNOWN)
        entries = interp.iterate(args[2] if len(args) > 2 else kwargs.get("stack_args", UNKNOWN))
        if entries is not None:
            calls = [list(e.items) if isinstance(e, ListV) and not e.partial else [e] for e in entries]
    else:
        count = args[1] if len(args) > 1 else kwargs.get("repetitions", UNKNOWN)
        layer = args[2] if len(args) > 2 else kwargs.get("layer", UNKNOWN)
        times = positive_int(count)
        if times is not None and times <= MAX_REPEAT:
            calls = [list(args[3:])] * times
    if not calls or any(isinstance(a, ListV) and a.partial for c in calls for a in c):
        tensor = current if isinstance(current, TensorV) else graph.root(None)
        unknown = Layer(LayerKind.UNKNOWN, name.rsplit(".", 1)[-1], span_of(node), graph.framework)
        return graph.record(TensorV(tensor.nodes + (unknown,), tensor.hint))
    for call_args in calls:
        interp.tick()
        current = interp.call(layer, [current, *call_args], dict(extra), node)
    return current


def unresolved_arg_scopes(tree: ast.Module) -> bool:
    """Whether the file uses ``arg_scope`` other than as ``with arg_scope([op, ...], key=value):`` (a
    literal list of the ops, no ``as``): a scope saved and re-opened elsewhere, or passed around, may be
    open around any call, so contrib's defaults are then not known anywhere in the file."""
    literal: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                call = item.context_expr
                if (isinstance(call, ast.Call) and item.optional_vars is None and call.args
                        and isinstance(call.args[0], (ast.List, ast.Tuple)) and len(call.args) == 1
                        and all(k.arg is not None for k in call.keywords)):
                    literal.add(id(call.func))
    for node in ast.walk(tree):
        named = (isinstance(node, ast.Attribute) and node.attr == "arg_scope"
                 or isinstance(node, ast.Name) and node.id == "arg_scope")
        if named and id(node) not in literal:
            return True
    return False
