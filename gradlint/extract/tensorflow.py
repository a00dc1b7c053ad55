"""TensorFlow graph code (TF 1.x, ``tf.compat.v1``, low-level TF 2 ops), ``keras.ops`` and Keras
custom layers (``build``/``add_weight``/``call``), for the extraction interpreter.

Graph code has no model object: the model is the graph from a ``tf.placeholder`` to the tensor a
loss consumes (or, without a loss, the largest graph built). Each ``tf.matmul``/``tf.nn.conv2d``
with a ``tf.Variable``/``tf.get_variable`` weight is a weight layer whose fan-in/fan-out come from
the variable's shape and whose init comes from the initial value or initializer (TF's own
defaults: ``tf.random_normal`` has stddev 1.0); ``+ b``/``tf.nn.bias_add`` set the bias init;
``tf.nn.*`` are activations; ``tf.layers.dense``/``conv2d`` and ``tf.contrib.layers`` are layers
applied at once. Losses and optimizers become training facts, so GRD009 sees softmax
probabilities passed as logits. Nothing is imported or run: this reads the syntax tree only.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping

from gradlint.extract import catalog, optimizers, recorder, tf_catalog, tf_estimator, tf_layers, tf_recurrent
from gradlint.extract.api import Args, Interp, Kwargs
from gradlint.extract.common import (
    first_tensor,
    flatten_args,
    is_none,
    longest_tensor,
    shape_dims,
    span_of,
)
from gradlint.extract.frameworks import TENSORFLOW as DECLARED
from gradlint.extract.invocable import InitializerV
from gradlint.extract.keras import call_keras
from gradlint.extract.keras_inits import keras_init
from gradlint.extract.paths import floored, merge_gate, merge_many, merge_residual, stopped
from gradlint.extract.tf_helpers import (
    _constant_init,
    _dim,
    _first_span,
    _hint_from_shape,
    _known,
    _number,
    _rearranged,
    _reshaped,
    _truthy,
    _uses_tf1,
    _variance_scaling,
    _weight_count,
    _weight_keys,
    attach_bias,
    dropout_layer,
)
from gradlint.extract.values import (
    UNKNOWN,
    ClassInfo,
    Const,
    DefaultsScopeV,
    FunctionalModelV,
    InitV,
    InstanceV,
    ListV,
    LossV,
    NodeSeq,
    OptimizerV,
    ParamV,
    Ref,
    TensorConstV,
    TensorV,
    UnknownV,
    Value,
    VariableV,
)
from gradlint.model import WEIGHT_KINDS, Init, InputHint, Layer, LayerKind, Span, iter_layers, output_activation
from gradlint.training import LossSpec, LossUse

MAX_CANDIDATES = 4096  # graph tensors remembered as possible model outputs (a generated file can build millions)


class TensorFlowFramework:
    """The ``Framework`` handler for TensorFlow graph code and ``keras.ops``; its per-file state is a
    ``TFGraph`` in ``interp.framework_state``."""

    # Stated where the lazy registration is (the interpreter reads them before importing this module).
    name = DECLARED.name
    prefixes = DECLARED.prefixes
    model_bases: Mapping[str, str | None] = DECLARED.model_bases
    model_base_suffixes: tuple[str, ...] = DECLARED.model_base_suffixes

    def call(self, interp: Interp, q: str, leaf: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        result = graph_of(interp).call_ref(q, args, kwargs, node)
        if result is not None:
            return result
        if q.startswith("keras."):  # keras.ops names this module does not model: Keras' own handling
            return call_keras(interp, q, leaf, args, kwargs, node)
        tensor = first_tensor(args, kwargs)
        if tensor is None:
            return UNKNOWN
        return TensorV(tensor.nodes + (Layer(LayerKind.UNKNOWN, leaf, span_of(node), "tensorflow"),), tensor.hint)

    def call_unprefixed(self, interp: Interp, q: str, leaf: str, args: Args, kwargs: Kwargs,
                        node: ast.AST) -> Value | None:
        return None

    def method(self, interp: Interp, target: Value, name: str, args: Args, kwargs: Kwargs,
               node: ast.AST) -> Value | None:
        return None

    def binop(self, interp: Interp, op: ast.operator, left: Value, right: Value, node: ast.AST) -> Value | None:
        return graph_of(interp).binop(op, left, right, node)

    def before_call(self, interp: Interp, instance: InstanceV, args: Args, kwargs: Kwargs) -> None:
        return None

    def finish(self, interp: Interp) -> None:
        state = interp.framework_state.get(self.name)
        if isinstance(state, TFGraph):
            state.finish()


TENSORFLOW = TensorFlowFramework()


def tf_name(q: str) -> str | None:
    """A qualified name's TensorFlow name, aliases resolved (``tensorflow.contrib.slim.fully_connected``
    -> ``contrib.layers.fully_connected``, ``keras.ops.x`` -> ``ops.x``); None outside TensorFlow."""
    if q.startswith("keras.ops."):
        return "ops." + q[len("keras.ops."):]
    if not q.startswith("tensorflow."):
        return None
    name = q[len("tensorflow."):]
    for alias, real in (("contrib.slim.", "contrib.layers."), ("contrib.framework.", "contrib.layers."),
                        ("compat.v1.", ""), ("compat.v2.", "")):
        if name.startswith(alias):
            name = real + name[len(alias):]
    return name


def graph_of(interp: Interp) -> TFGraph:
    state = interp.framework_state.get(TENSORFLOW.name)
    if not isinstance(state, TFGraph):
        state = interp.framework_state[TENSORFLOW.name] = TFGraph(interp)
    return state


class TFGraph:
    """Per-file state: the graph's placeholders, the tensors that may be model outputs, and the graph
    models made so far."""

    def __init__(self, interp: Interp) -> None:
        self.interp = interp
        self._tf1: bool | None = None
        self._arg_scope: bool | None = None
        self.roots: dict[int, tuple[InputHint, Span]] = {}  # id(hint) -> placeholder's hint (kept alive), span
        self.candidates: list[TensorV] = []
        self.models: list[tuple[FunctionalModelV, frozenset[int]]] = []
        self.scope_initializer = False  # a variable_scope(initializer=...) changes get_variable's default
        self.scope_stack: list[DefaultsScopeV] = []  # the arg_scope blocks open, outermost first
        self.var_scopes: list[DefaultsScopeV] = []  # and the variable_scope(initializer=...) ones

    @property
    def arg_scope(self) -> bool:
        """``slim.arg_scope(...)`` in the file may change contrib layers' defaults (activation,
        initializer, normalizer) for any call: then those defaults are unknown, not contrib's -- unless
        every use is a ``with arg_scope([ops...], ...):`` statement, whose defaults ``scope_stack``
        holds while its block runs (``scoped_defaults``)."""
        if self._arg_scope is None:
            self._arg_scope = tf_layers.unresolved_arg_scopes(self.interp.tree)
        return self._arg_scope

    def scoped_defaults(self, name: str) -> dict[str, Value] | None:
        """The defaults the open ``arg_scope`` blocks give the layer function ``name`` (outer first,
        inner ones win); None when one of them applies to functions not known."""
        merged: dict[str, Value] = {}
        for frame in self.scope_stack:
            if frame.ops is None:
                return None
            if name in frame.ops:
                merged.update(frame.kwargs)
        return merged

    def open_arg_scope(self, args: list[Value], kwargs: dict[str, Value]) -> Value:
        """``arg_scope([slim.fully_connected, slim.conv2d], activation_fn=...)``: the scope a ``with``
        opens; an existing scope (``arg_scope(sc)``) re-opened as it was."""
        source = args[0] if args else kwargs.get("list_ops_or_scope", UNKNOWN)
        if isinstance(source, DefaultsScopeV):
            return DefaultsScopeV(source.ops, dict(source.kwargs), self.scope_stack)
        ops: set[str] | None = set()
        items = source.items if isinstance(source, ListV) and not source.partial else [UNKNOWN]
        for item in items:
            name = tf_name(item.qualname) if isinstance(item, Ref) else None
            if name is None or ops is None:
                ops = None
                break
            ops.add(name)
        defaults = {k: v for k, v in kwargs.items() if k != "list_ops_or_scope"}
        return DefaultsScopeV(frozenset(ops) if ops is not None else None, defaults, self.scope_stack)

    @property
    def tf1(self) -> bool:
        if self._tf1 is None:  # one walk of the tree, only for files that call a TF initializer
            self._tf1 = _uses_tf1(self.interp.tree)
        return self._tf1

    # ------------------------------------------------------------------ entry points

    def call_ref(self, q: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value | None:
        """A call of a ``tensorflow.*`` / ``keras.ops.*`` name; None when this module does not model it."""
        name = tf_name(q)
        if name is None:
            return None
        return self.dispatch(name, args, kwargs, node)

    def dispatch(self, name: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value | None:
        leaf = name.rsplit(".", 1)[-1]
        namespace = name[:len(name) - len(leaf)]
        interp = self.interp
        if name in ("placeholder", "placeholder_with_default", "sparse_placeholder"):
            return self.placeholder(name, args, kwargs, node)
        if name in ("Variable", "get_variable", "get_local_variable", "ops.Variable"):
            return self.variable(name, args, kwargs, node)
        if name == "variable_scope" or name == "name_scope":
            if kwargs.get("initializer") is not None and not is_none(kwargs["initializer"]):
                self.scope_initializer = True  # a frame the ``with`` pushes on var_scopes for its block
                return DefaultsScopeV(frozenset({"get_variable"}), {"initializer": kwargs["initializer"]},
                                      self.var_scopes)
            return Const(None)
        if name in tf_catalog.INITIALIZERS:
            return self.initializer(name, args, kwargs, node)
        if namespace in ("initializers.", "keras.initializers.") and leaf[:1].isupper():
            return call_keras(interp, f"keras.initializers.{leaf}", leaf, args, kwargs, node)
        if namespace == "layers." and leaf[:1].isupper():  # tf.layers.Dense: the Keras layer
            return call_keras(interp, f"keras.layers.{leaf}", leaf, args, kwargs, node)
        if name == "contrib.layers.arg_scope":
            return self.open_arg_scope(args, kwargs)
        if name in tf_estimator.NAMES:
            return tf_estimator.build_model_fn(self.interp, args, kwargs)
        if tf_recurrent.is_cell_name(name):
            return tf_recurrent.make_cell(self, name, args, kwargs, node)
        if name in tf_recurrent.RUNNERS:
            return tf_recurrent.run_cell(self, name, args, kwargs, node)
        if name in tf_layers.COMBINATORS:
            return tf_layers.combinator(self, name, args, kwargs, node)
        if name in tf_catalog.LAYER_FUNCTIONS:
            return self.layer_function(name, args, kwargs, node)
        if name in tf_catalog.LAYER_NORMALIZATION:
            return self._append(args, kwargs, Layer(LayerKind.NORMALIZATION, leaf, span_of(node), self.framework,
                                                    bias=False))
        if name in tf_catalog.LAYER_DROPOUT or name in tf_catalog.LAYER_PASSTHROUGH:
            tensor = first_tensor(args, kwargs)
            if tensor is not None and leaf == "flatten" and tensor.nodes:
                return TensorV(tensor.nodes + (_reshaped(span_of(node), None, self.framework),), tensor.hint)
            return tensor or UNKNOWN
        if name in tf_catalog.LOSSES:
            return self.loss(name, args, kwargs, node)
        if any(name.startswith(ns) for ns in tf_catalog.OPTIMIZER_NAMESPACES) and leaf.endswith("Optimizer"):
            lr, momentum = optimizers.settings("tensorflow", leaf, args, kwargs)
            return OptimizerV(span_of(node), kind=leaf, lr=lr, momentum=momentum)
        if name == "gradients":
            recorder.backward(interp, args[0] if args else kwargs.get("ys", UNKNOWN), node)
            return UNKNOWN
        if namespace not in tf_catalog.OP_NAMESPACES:
            return None
        if name in tf_catalog.TENSOR_FACTORIES and first_tensor(args, kwargs) is None:
            return self.tensor_factory(name, args, kwargs)
        if leaf == "constant" and first_tensor(args, kwargs) is None:
            value = args[0] if args else kwargs.get("value", UNKNOWN)
            shape = shape_dims(kwargs.get("shape", args[2] if len(args) > 2 else None))
            if isinstance(value, Const) and _number(value.value) is not None:
                return TensorConstV(_constant_init(float(value.value)), _known(shape))
            return UNKNOWN
        return self.stop_gradient(args, kwargs, node) if leaf == "stop_gradient" else self.op(leaf, args, kwargs, node)

    def stop_gradient(self, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value | None:
        """``tf.stop_gradient(x)``, ``keras.ops.stop_gradient(x)``: the values, no gradient back to ``x``."""
        tensor = first_tensor(args, kwargs)
        return self.record(stopped(tensor, "stop_gradient", span_of(node), self.framework)) if tensor else None

    # ------------------------------------------------------------------ graph inputs and weights

    @property
    def framework(self) -> str:
        """Layers built by TF ops inside a Keras class belong to that Keras model."""
        cls: ClassInfo | None = self.interp.frame.cls
        return "keras" if cls is not None and cls.framework == "keras" else "tensorflow"

    def _in_model_class(self) -> bool:
        cls: ClassInfo | None = self.interp.frame.cls
        return cls is not None and cls.framework is not None

    def placeholder(self, name: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        shape = kwargs.get("shape", args[1] if len(args) > 1 else UNKNOWN)  # placeholder_with_default too
        hint = _hint_from_shape(shape_dims(shape))
        self.roots[id(hint)] = (hint, span_of(node))
        return TensorV(NodeSeq(), hint)

    def variable(self, name: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        span = span_of(node)
        dims: tuple[int | None, ...] | None
        if name.endswith("get_variable"):
            dims = shape_dims(kwargs.get("shape", args[1] if len(args) > 1 else None))
            source = kwargs.get("initializer", args[3] if len(args) > 3 else None)
            if source is None or is_none(source) is True:
                init: Init | None = self.default_initializer(node)
            else:
                init, value_dims = self.init_of(source, node)
                dims = dims or value_dims
        else:
            source = kwargs.get("initial_value", args[0] if args else UNKNOWN)
            init, dims = self.init_of(source, node)
        return self.make_variable(init, dims, span)

    def default_initializer(self, node: ast.AST) -> Init | None:
        """get_variable's init if none is given: the innermost open variable_scope block's; else
        glorot_uniform, or unknown once a scope with an initializer was made (entered another way)."""
        if self.var_scopes:
            return self.init_of(self.var_scopes[-1].kwargs["initializer"], node)[0] or Init("unknown")
        return Init("unknown") if self.scope_initializer else Init("glorot_uniform")

    def make_variable(self, init: Init | None, dims: tuple[int | None, ...] | None, span: Span) -> VariableV:
        init = Init(init.scheme, dict(init.params), span) if init is not None else Init("unknown", {}, span)
        known = _known(dims)
        return VariableV(None, "param", init=init, ndim=len(dims) if dims is not None else None, shape=known, dims=dims)

    def init_of(self, value: Value, node: ast.AST) -> tuple[Init | None, tuple[int | None, ...] | None]:
        """The init a variable's initial value or initializer stands for, and the shape it states."""
        if isinstance(value, TensorConstV):
            return value.init, value.shape
        if isinstance(value, InitV):
            return value.init, None
        if isinstance(value, ParamV) and value.init is not None:
            return value.init, value.shape
        if isinstance(value, Const):
            number = _number(value.value)
            if number is not None:
                return _constant_init(number), ()
            if isinstance(value.value, str):
                return keras_init(value, node, Init("glorot_uniform")), None
            return None, None
        if isinstance(value, Ref):
            q = value.qualname
            if q.startswith("tensorflow."):  # an initializer class passed uncalled: its defaults
                made = self.call_ref(q, [], {}, node)
                if isinstance(made, InitV):
                    return made.init, None
            return keras_init(value, node, Init("glorot_uniform")), None
        return None, None

    def initializer(self, name: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        spec = tf_catalog.INITIALIZERS[name]
        defaults = dict(spec.tf1_defaults if self.tf1 and spec.tf1_defaults is not None else spec.defaults)
        bound: dict[str, Value] = dict(zip(spec.params, args, strict=False))
        scales = ("stddev", "mean", "minval", "maxval")
        bound.update({k: v for k, v in kwargs.items() if k in spec.params or k in scales})
        values: dict[str, float] = dict(defaults)
        for key, value in bound.items():
            if isinstance(value, Const) and _number(value.value) is not None:
                values[key] = float(value.value)
            elif (
                isinstance(value, Const)
                and isinstance(value.value, (str, bool))
                or isinstance(value, Const)
                and value.value is None
            ):
                continue
            elif key in ("stddev", "minval", "maxval", "value", "gain", "scale", "factor"):
                return InitializerV(Init("unknown", {}, span_of(node)))
        scheme = spec.scheme
        params: dict[str, float] = {}
        if scheme == "normal":
            params["std"] = values.get("stddev", 1.0)
        elif scheme == "truncated_normal":
            params["stddev"] = values.get("stddev", 1.0)
        elif scheme == "uniform":
            params["a"], params["b"] = values.get("minval", 0.0), values.get("maxval", 1.0)
        elif scheme == "constant":
            init = _constant_init(values.get("value", 0.0))
            return InitializerV(Init(init.scheme, init.params, span_of(node)))
        elif scheme in ("orthogonal", "eye"):
            if "gain" in values:
                params["gain"] = values["gain"]
        elif scheme == "variance_scaling":
            params.update(_variance_scaling(name, bound, values))
        elif scheme == "glorot_uniform" and name.startswith("contrib.layers.xavier"):
            uniform = kwargs.get("uniform", args[0] if args else None)
            if isinstance(uniform, Const) and uniform.value is False:
                scheme = "glorot_normal"
        for key in ("stddev", "std", "a", "b", "scale"):
            if key in params and not (math.isfinite(params[key]) and abs(params[key]) <= 1e6):
                return InitializerV(Init("unknown", {}, span_of(node)))
        return InitializerV(Init(scheme, params, span_of(node)))

    def tensor_factory(self, name: str, args: list[Value], kwargs: dict[str, Value]) -> Value:
        spec = tf_catalog.TENSOR_FACTORIES[name]
        shape = shape_dims(args[0] if args else kwargs.get("shape", kwargs.get("dims")))
        values = dict(spec.defaults)
        bound = dict(zip(spec.params, args[1:], strict=False))
        bound.update({k: v for k, v in kwargs.items() if k in spec.params})
        for key, value in bound.items():
            if isinstance(value, Const) and _number(value.value) is not None:
                values[key] = float(value.value)
            elif not (isinstance(value, Const) and value.value is None):
                return TensorConstV(Init("unknown"), _known(shape))
        if spec.scheme == "normal":
            init = Init("normal", {"std": values["stddev"]})
        elif spec.scheme == "truncated_normal":
            init = Init("truncated_normal", {"stddev": values["stddev"]})
        elif spec.scheme == "uniform":
            init = Init("uniform", {"a": values["minval"], "b": values["maxval"]})
        elif spec.scheme == "constant":
            init = _constant_init(values["value"]) if "value" in values else Init("unknown")
        else:
            init = Init(spec.scheme)
        if any(not (math.isfinite(v) and abs(v) <= 1e6) for v in init.params.values()):
            init = Init("unknown")
        return TensorConstV(init, _known(shape))

    # ------------------------------------------------------------------ ops on tensors

    def _dense_op(self, leaf: str, args: list[Value], span: Span) -> Value | None:
        """``tf.nn.xw_plus_b(x, w, b)`` / ``tf.nn.relu_layer(x, w, b)``: a dense layer in one op."""
        out = self.matmul(args[0], args[1], span)
        if isinstance(out, TensorV) and len(args) > 2 and isinstance(args[2], ParamV):
            out = attach_bias(out, args[2])
        if isinstance(out, TensorV) and leaf == "relu_layer":
            out = self.record(
                TensorV(
                    out.nodes
                    + (Layer(LayerKind.ACTIVATION, leaf, span, self.framework, activation="relu", bias=False),),
                    out.hint,
                )
            )
        return out

    def _embedding_lookup(self, args: list[Value], kwargs: dict[str, Value], span: Span) -> Value | None:
        """``tf.nn.embedding_lookup(params, ids)``: an embedding layer whose weight is ``params``."""
        params = args[0] if args else kwargs.get("params", UNKNOWN)
        ids = args[1] if len(args) > 1 else kwargs.get("ids", UNKNOWN)
        if isinstance(params, ParamV):
            dims = params.dims if isinstance(params, VariableV) else params.shape
            layer = Layer(
                LayerKind.EMBEDDING,
                "embedding_lookup",
                span,
                self.framework,
                bias=False,
                weight_init=params.init,
                fan_in=_dim(dims, 0),
                fan_out=_dim(dims, 1),
            )
            layer._tf_weight = id(params)  # type: ignore[attr-defined]
            layer._tf_weight_ref = params  # type: ignore[attr-defined]  # keeps the id unique (see below)
            root = ids if isinstance(ids, TensorV) else self.root(None)
            return self.record(TensorV(root.nodes + (layer,), root.hint))
        return None

    def _activation_op(self, leaf: str, args: list[Value], kwargs: dict[str, Value], span: Span,
                       tensor: TensorV) -> Value:
        """``tf.nn.relu(x)``, ``tf.nn.leaky_relu(x, alpha)``, ``tf.nn.gelu(x, approximate=True)``..."""
        act = "other" if leaf == "crelu" else catalog.canonical_activation(leaf) or "other"
        layer = Layer(LayerKind.ACTIVATION, leaf, span, self.framework, activation=act, bias=False)
        if act == "leaky_relu":
            alpha = kwargs.get("alpha", kwargs.get("negative_slope", args[1] if len(args) > 1 else None))
            number = _number(alpha.value) if isinstance(alpha, Const) else None
            layer.act_param = (
                number
                if number is not None and abs(number) <= 1e6
                else (tf_catalog.LEAKY_RELU_DEFAULT if alpha is None else 0.2)
            )
        if act == "gelu" and _truthy(kwargs.get("approximate", args[1] if len(args) > 1 else None)):
            layer.activation = "gelu_tanh"
        return tf_recurrent.carry_steps(self.interp, tensor, self.record(TensorV(tensor.nodes + (layer,), tensor.hint)))

    def op(self, leaf: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value | None:
        span = span_of(node)
        if leaf in tf_catalog.MATMUL_OPS:
            a = args[0] if args else kwargs.get("a", kwargs.get("x1", UNKNOWN))
            b = args[1] if len(args) > 1 else kwargs.get("b", kwargs.get("x2", UNKNOWN))
            transpose_b = _truthy(kwargs.get("transpose_b"))
            return self.matmul(a, b, span, transpose_b)
        if leaf in tf_catalog.CONV_OPS:
            return self.conv(leaf, args, kwargs, span)
        if leaf in ("xw_plus_b", "relu_layer") and len(args) >= 2:  # matmul + bias (+ relu) in one op
            return self._dense_op(leaf, args, span)
        if leaf == "embedding_lookup":
            return self._embedding_lookup(args, kwargs, span)
        tensor = first_tensor(args, kwargs)
        if tensor is None and leaf in ("reshape", "transpose") and args and isinstance(args[0], TensorConstV):
            return _rearranged(leaf, args, kwargs)  # tf.Variable(tf.transpose(tf.reshape(tf.random_uniform(...))))
        loss = next((a for a in list(args) + list(kwargs.values()) if isinstance(a, LossV)), None)
        if loss is not None and tensor is None:  # tf.reduce_mean(-tf.reduce_sum(y * tf.log(p))), tf.add(l1, l2)
            return recorder.reduced(loss, leaf, args[1:], kwargs)
        if leaf in tf_catalog.ADD_OPS:
            return self.add(args, kwargs, span)
        if leaf in tf_catalog.MULTIPLY_OPS:
            tensors = [a for a in args if isinstance(a, TensorV)]
            if len(tensors) >= 2:
                return self.record(merge_gate(tensors[0], tensors[1], span))
            if tensors and len(args) >= 2:
                other = args[1] if args[0] is tensors[0] else args[0]
                return self.interp.tensor_binop(ast.Mult(), tensors[0], other, node)
            return tensors[0] if tensors else None
        if tensor is None:
            return None
        if leaf in tf_catalog.ACTIVATION_OPS:
            return self._activation_op(leaf, args, kwargs, span, tensor)
        if leaf in tf_catalog.NORMALIZATION_OPS:
            return self.record(
                TensorV(
                    tensor.nodes + (Layer(LayerKind.NORMALIZATION, leaf, span, self.framework, bias=False),),
                    tensor.hint,
                )
            )
        if leaf in tf_catalog.DROPOUT_OPS:
            drop = dropout_layer(leaf, args, kwargs, span, self.framework, self.tf1)
            return tensor if drop is None else self.record(TensorV(tensor.nodes + (drop,), tensor.hint))
        if leaf == "reshape":
            return self.reshape(tensor, args, kwargs, node)
        if leaf in tf_catalog.PASSTHROUGH_OPS:
            return floored(tensor, leaf, span, self.framework) if leaf in tf_catalog.FLOOR_OPS else tensor
        if leaf in tf_catalog.CONCAT_OPS:
            tensors = [a for a in flatten_args(args[:1] or list(kwargs.values())) if isinstance(a, TensorV)]
            if not tensors:
                return tensor
            if leaf == "add_n":
                result = tensors[0]
                for other in tensors[1:]:
                    result = merge_residual(result, other, span)
                return self.record(result)
            return self.record(merge_many(tensors, span, concat=True))
        if leaf in tf_catalog.SPLIT_OPS:
            return ListV([tensor, tensor], is_tuple=True)
        if leaf in tf_catalog.BARRIER_OPS:
            return TensorV(tensor.nodes + (Layer(LayerKind.UNKNOWN, leaf, span, self.framework),), tensor.hint)
        if leaf in tf_catalog.RNN_OPS:
            # The cell (LSTM/GRU/basic RNN, its gates and size) is not resolved: an explicit unknown.
            out = TensorV(tensor.nodes + (Layer(LayerKind.UNKNOWN, leaf, span, self.framework),), tensor.hint)
            return ListV([out, out], is_tuple=True)
        if leaf in tf_catalog.LOG_OPS:
            return self.log(tensor, node)
        return None

    def matmul(self, a: Value, b: Value, span: Span, transpose_b: bool = False) -> Value | None:
        if isinstance(a, TensorV) and isinstance(b, TensorV):
            return self.record(merge_many([a, b], span, concat=False))
        if isinstance(b, ParamV) and not isinstance(a, ParamV):
            dims = b.dims if isinstance(b, VariableV) else b.shape
            if transpose_b and dims is not None and len(dims) == 2:
                dims = (dims[1], dims[0])
            return self._weight_layer(a, b, LayerKind.DENSE, "matmul", span, _dim(dims, 0), _dim(dims, 1), None)
        if isinstance(a, ParamV) and isinstance(b, TensorV):  # tf.matmul(W, x): W is [out, in]
            dims = a.dims if isinstance(a, VariableV) else a.shape
            return self._weight_layer(b, a, LayerKind.DENSE, "matmul", span, _dim(dims, 1), _dim(dims, 0), None)
        return None

    def conv(self, leaf: str, args: list[Value], kwargs: dict[str, Value], span: Span) -> Value | None:
        spec = tf_catalog.CONV_OPS[leaf]
        source = args[0] if args else kwargs.get("input", kwargs.get("inputs", kwargs.get("value", UNKNOWN)))
        weight = args[1] if len(args) > 1 else next((kwargs[k] for k in spec.filter_names if k in kwargs), UNKNOWN)
        if not isinstance(weight, ParamV):
            return None
        dims = weight.dims if isinstance(weight, VariableV) else weight.shape
        fan_in = fan_out = receptive = None
        if dims is not None and len(dims) >= 3 and all(isinstance(d, int) for d in dims[:-2]):
            receptive = math.prod(d for d in dims[:-2] if isinstance(d, int))
            cin, cout = dims[-2], dims[-1]
            if spec.transpose:
                cin, cout = cout, cin
            if spec.depthwise:
                fan_in = receptive
                fan_out = receptive * cin * cout if isinstance(cin, int) and isinstance(cout, int) else None
            else:
                fan_in = receptive * cin if isinstance(cin, int) else None
                fan_out = receptive * cout if isinstance(cout, int) else None
        return self._weight_layer(source, weight, LayerKind.CONV, leaf, span, fan_in, fan_out, receptive)

    def _weight_layer(
        self,
        source: Value,
        weight: ParamV,
        kind: LayerKind,
        op: str,
        span: Span,
        fan_in: int | None,
        fan_out: int | None,
        receptive: int | None,
    ) -> Value:
        tensor = source if isinstance(source, TensorV) else self.root(fan_in if kind == LayerKind.DENSE else None)
        if any(getattr(seen, "_tf_weight", None) == id(weight) for seen in iter_layers(list(tensor.nodes))):
            # The same variable again on one path: a hand-unrolled recurrence (h = tanh(x W + h U)), whose
            # gradient through time is not a plain stack's; an explicit unknown rather than a guess.
            return TensorV(tensor.nodes + (Layer(LayerKind.UNKNOWN, "recurrence", span, self.framework),), tensor.hint)
        layer = Layer(
            kind,
            op,
            span,
            self.framework,
            weight_init=weight.init,
            bias=False,
            fan_in=fan_in,
            fan_out=fan_out,
            receptive=receptive,
        )
        layer._tf_weight = id(weight)  # type: ignore[attr-defined]  # layers sharing a variable: one network
        # The variable must outlive the layer: a helper's local tf.Variable is freed when the helper
        # returns, and the next helper call's variable could reuse its id -- two different weights
        # then looked like one (a "recurrence"), at random.
        layer._tf_weight_ref = weight  # type: ignore[attr-defined]
        out = self.record(TensorV(tensor.nodes + (layer,), tensor.hint))
        return tf_recurrent.carry_steps(self.interp, tensor, out) if kind == LayerKind.DENSE else out

    def root(self, width: int | None) -> TensorV:
        """A weight op on something that is not a tensor (a batch from a dataset loop, an argument of an
        uncalled function): the graph starts here."""
        hint = InputHint("features", (width,)) if width else InputHint("unknown")
        return TensorV(NodeSeq(), hint)

    def add(self, args: list[Value], kwargs: dict[str, Value], span: Span) -> Value | None:
        values = list(args[:2]) or [kwargs.get(k, UNKNOWN) for k in ("x", "value", "y", "bias")]
        tensors = [v for v in values if isinstance(v, TensorV)]
        if len(tensors) >= 2:
            return self.record(merge_residual(tensors[0], tensors[1], span))
        if not tensors:
            return None
        other = next((v for v in values + list(kwargs.values()) if isinstance(v, ParamV)), None)
        if other is not None:
            return tf_recurrent.carry_steps(self.interp, tensors[0], attach_bias(tensors[0], other))
        return tensors[0]

    def reshape(self, tensor: TensorV, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        """``tf.reshape(x, [-1, 28, 28, 1])`` before any layer tells the input's real shape; after layers,
        ``tf.reshape(h, [-1, 7 * 7 * 64])`` tells the width the next layer sees (unknown when not written)."""
        dims = shape_dims(args[1] if len(args) > 1 else kwargs.get("shape"))
        if tensor.nodes:
            last = dims[-1] if dims else None
            return tf_recurrent.carry_steps(self.interp, tensor, TensorV(
                tensor.nodes + (_reshaped(span_of(node), last if last else None, self.framework),), tensor.hint
            ))
        if tensor.hint is None or id(tensor.hint) not in self.roots:
            return tensor
        if dims is None or len(dims) < 2:
            return tensor
        hint = _hint_from_shape(dims)
        self.roots[id(hint)] = (hint, self.roots[id(tensor.hint)][1])
        return TensorV(NodeSeq(), hint)

    def layer_function(self, name: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value | None:
        out = tf_layers.layer_function(self, name, args, kwargs, node)
        if tf_catalog.LAYER_FUNCTIONS[name].kind == "dense":  # applied to every step alike
            source = args[0] if args else kwargs.get("inputs", UNKNOWN)
            return tf_recurrent.carry_steps(self.interp, source, out) if out else out
        return out

    def _append(self, args: list[Value], kwargs: dict[str, Value], layer: Layer) -> Value:
        tensor = first_tensor(args, kwargs)
        if tensor is None:
            return UNKNOWN
        return self.record(TensorV(tensor.nodes + (layer,), tensor.hint))

    # ------------------------------------------------------------------ losses and training

    def loss(self, name: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        spec = tf_catalog.LOSSES[name]
        prediction: Value = next((kwargs[k] for k in spec.prediction if k in kwargs), UNKNOWN)
        if isinstance(prediction, UnknownV) and len(args) > spec.position:
            prediction = args[spec.position]
            # TF 0.x took (logits, labels) positionally, TF 1.x/2 (labels, logits): the model output is
            # the one of the two that went through weight layers (labels come from a placeholder).
            through_layers = [a for a in args[:2] if (t := longest_tensor(a)) is not None and _weight_count(t.nodes)]
            if len(through_layers) == 1:
                prediction = through_layers[0]
        tensor = longest_tensor(prediction)
        if tensor is None:
            return UNKNOWN
        leaf = name.rsplit(".", 1)[-1]
        result = recorder.apply_loss(
            self.interp, LossSpec(leaf, "tensorflow", spec.from_logits, span_of(node)), [tensor], {}, node
        )
        if isinstance(result, LossV) and result.use.model_id is None:
            model = self.graph_model(tensor)
            if model is not None:
                result.use.model_id = id(model)
        return result

    def log(self, tensor: TensorV, node: ast.AST) -> Value:
        """``tf.log(p)``: the start of a hand-written cross-entropy when p is a model's output (ends in
        softmax/sigmoid or in a bare weight layer); inside a model, an op gradlint does not model."""
        last = output_activation(tensor.nodes)
        if last in ("softmax", "sigmoid", "linear") and self._graph_tensor(tensor):
            model = self.graph_model(tensor)
            use = LossUse(
                LossSpec("log", "tensorflow", False, span_of(node)),
                tensor.nodes,
                span_of(node),
                id(model) if model is not None else None,
            )
            return LossV(use, pending=True)  # recorded once minimized (recorder.backward)
        # TF 2: the log of a Keras model's output in a GradientTape loop (recorded at tape.gradient)
        loss = recorder.hand_written_log(self.interp, "tensorflow", tensor, node) if last is not None else None
        if loss is not None:
            return loss
        return TensorV(tensor.nodes + (Layer(LayerKind.UNKNOWN, "log", span_of(node), self.framework),), tensor.hint)

    def binop(self, op: ast.operator, left: Value, right: Value, node: ast.AST) -> Value | None:
        """``x @ W`` with a TF/Keras variable (``x`` possibly a batch the interpreter cannot see),
        ``h + b`` with a bias variable; None: not ours."""
        if isinstance(op, ast.MatMult) and (isinstance(left, VariableV) or isinstance(right, VariableV)):
            return self.matmul(left, right, span_of(node))
        if isinstance(op, ast.Add):
            tensor = left if isinstance(left, TensorV) else right if isinstance(right, TensorV) else None
            other = right if tensor is left else left
            if tensor is not None and isinstance(other, ParamV):
                return attach_bias(tensor, other)
        return None

    # ------------------------------------------------------------------ graph models

    def record(self, value: Value) -> Value:
        """Remember a graph tensor as a possible model output (outside Keras/torch classes only)."""
        if (
            isinstance(value, TensorV)
            and not self._in_model_class()
            and len(self.candidates) < MAX_CANDIDATES
            and self._graph_tensor(value)
        ):
            self.candidates.append(value)
        return value

    def _graph_tensor(self, tensor: TensorV) -> bool:
        """Rooted at a placeholder, or built with TF weight ops outside any Keras/torch class."""
        if tensor.hint is not None and id(tensor.hint) in self.roots:
            return True
        return any(
            layer.framework == "tensorflow" and layer.kind in WEIGHT_KINDS for layer in iter_layers(list(tensor.nodes))
        )

    def graph_model(self, tensor: TensorV) -> FunctionalModelV | None:
        """The model a loss's prediction belongs to: an existing graph sharing its weights, or a new one."""
        if self._in_model_class() or not self._graph_tensor(tensor):
            return None
        keys = _weight_keys(tensor.nodes)
        if not keys:
            return None
        for model, existing in self.models:
            if keys & existing:
                return model
        return self._new_model(tensor, keys)

    def _new_model(self, tensor: TensorV, keys: frozenset[int]) -> FunctionalModelV:
        root = self.roots.get(id(tensor.hint)) if tensor.hint is not None else None
        span = root[1] if root is not None else _first_span(tensor.nodes)
        output = tf_recurrent.carry_steps(self.interp, tensor, TensorV(tensor.nodes, tensor.hint))
        model = FunctionalModelV(output, span)  # type: ignore[arg-type]
        model.tf_output = tensor  # type: ignore[attr-defined]
        self.models.append((model, keys))
        self.interp.built.append(model)
        return model

    def finish(self) -> None:
        """After the whole file ran: graphs no loss named become models too (largest first), and every
        graph model gets a name from the variables holding its input and output."""
        scope_tensors = [
            v for v in self.interp.module_scope.vars.values() if isinstance(v, TensorV) and self._graph_tensor(v)
        ]
        pool = sorted(self.candidates + scope_tensors, key=lambda t: -_weight_count(t.nodes))
        for tensor in pool:
            keys = _weight_keys(tensor.nodes)
            if not keys or any(keys & existing for _, existing in self.models):
                continue
            self._new_model(tensor, keys)
        names: dict[int, str] = {}
        for var, value in self.interp.module_scope.vars.items():
            if isinstance(value, TensorV):
                names.setdefault(id(value), var)
                if value.hint is not None and not value.nodes:
                    names.setdefault(id(value.hint), var)
        for model, _ in self.models:
            if model.name is not None:
                continue
            out = getattr(model, "tf_output", model.output)
            out_name = names.get(id(out)) or next(
                (
                    var
                    for var, value in self.interp.module_scope.vars.items()
                    if isinstance(value, TensorV) and value.nodes == out.nodes
                ),
                None,
            )
            in_name = names.get(id(out.hint)) if out.hint is not None else None
            if in_name and out_name:
                model.name = f"graph({in_name} -> {out_name})"
            elif out_name or in_name:
                model.name = f"graph({out_name or in_name})"
            else:
                model.name = f"graph@{model.span.line}"


__all__ = ["TENSORFLOW", "TFGraph", "TensorFlowFramework", "attach_bias"]
