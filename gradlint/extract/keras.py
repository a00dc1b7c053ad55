"""Keras knowledge: layers, ``Input`` / ``Sequential`` / functional ``Model``, initialisers,
activations, merge layers (``Add``, ``Multiply``, ``Concatenate``), losses and optimizers.

Names arrive folded to ``keras.*`` whatever the spelling (``tf.keras``, ``keras.src``, keras 2
submodules; see ``catalog.fold_name``). Never imports keras or tensorflow.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import replace

from gradlint.extract import catalog, optimizers
from gradlint.extract.api import Args, Interp, InvocableV, Kwargs
from gradlint.extract.common import (
    activation_of,
    all_tensors,
    const_values,
    dropout_rate,
    first_tensor,
    group_norm_stats,
    is_none,
    longest_tensor,
    number,
    positive_int,
    relu_family_member,
    shape_dims,
    span_of,
    stride_area,
)
from gradlint.extract.keras_inits import (
    INIT_KEYS,
    initializer_function,
    keras1_initialization,
    keras_init,
    make_initializer,
)
from gradlint.extract.keras_merges import Keras1MergeV, keras1_merge, keras1_merge_layer, keras_merge
from gradlint.extract.paths import current_width, merge_gate, merge_residual, stopped
from gradlint.extract.values import (
    UNKNOWN,
    Const,
    ContainerV,
    DictV,
    FunctionalModelV,
    FunctionV,
    Geometry,
    InstanceV,
    LayerObj,
    ListV,
    LossObjV,
    NodeSeq,
    OptimizerV,
    Ref,
    TensorV,
    Value,
    VariableV,
)
from gradlint.model import Init, InputHint, Layer, LayerKind, Span, Window
from gradlint.training import LossSpec

_WEIGHTED = (LayerKind.DENSE, LayerKind.CONV, LayerKind.EMBEDDING, LayerKind.RECURRENT)
# Layers TimeDistributed applies step by step without changing what the path sees: on the last axis.
_PER_STEP_KINDS = (LayerKind.DENSE, LayerKind.ACTIVATION, LayerKind.DROPOUT)
_OPTIMIZER_CLIP_KWARGS = ("clipnorm", "clipvalue", "global_clipnorm")


class KerasFramework:
    """The ``Framework`` handler for Keras (2 and 3, ``tf.keras``)."""

    name = "keras"
    prefixes = ("keras.",)
    model_bases: Mapping[str, str | None] = {q: "keras_sequential" if q.endswith("Sequential") else None
                                             for q in catalog.KERAS_MODEL_BASES}
    model_base_suffixes: tuple[str, ...] = ()

    def call(self, interp: Interp, q: str, leaf: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        return call_keras(interp, q, leaf, args, kwargs, node)

    def call_unprefixed(self, interp: Interp, q: str, leaf: str, args: Args, kwargs: Kwargs,
                        node: ast.AST) -> Value | None:
        if q.startswith("scikeras.wrappers.") and leaf in SKLEARN_WRAPPERS:
            return build_wrapped_model(interp, kwargs.get("model", args[0] if args else UNKNOWN), kwargs,
                                       routed_prefix="model__")
        return None

    def method(self, interp: Interp, target: Value, name: str, args: Args, kwargs: Kwargs,
               node: ast.AST) -> Value | None:
        if (
            isinstance(target, InstanceV)
            and target.info.framework == "keras"
            and name in ("add_weight", "add_variable")
        ):
            return add_weight(args, kwargs, node)
        return None

    def binop(self, interp: Interp, op: ast.operator, left: Value, right: Value, node: ast.AST) -> Value | None:
        return None

    def before_call(self, interp: Interp, instance: InstanceV, args: Args, kwargs: Kwargs) -> None:
        build_on_first_call(interp, instance, args, kwargs)

    def finish(self, interp: Interp) -> None:
        return None


KERAS = KerasFramework()


def add_weight(args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    """``self.add_weight(shape=..., initializer=...)`` in a custom layer: Keras 3 puts ``shape`` first,
    Keras 2 ``name``; no initializer means glorot_uniform (zeros for integer weights), as in Keras."""
    keras2 = bool(args) and isinstance(args[0], Const) and isinstance(args[0].value, str)
    order = ("name", "shape", "dtype", "initializer") if keras2 else ("shape", "initializer", "dtype")
    bound = dict(zip(order, args, strict=False))
    bound.update(kwargs)
    dtype = bound.get("dtype")
    integer = isinstance(dtype, Const) and isinstance(dtype.value, str) and "int" in dtype.value
    init = keras_init(bound.get("initializer"), node, Init("zeros") if integer else Init("glorot_uniform"))
    dims = shape_dims(bound.get("shape"))
    span = span_of(node)
    init = Init(init.scheme, dict(init.params), span) if init is not None else Init("unknown", {}, span)
    known = tuple(d for d in dims if d is not None) if dims is not None and None not in dims else None
    return VariableV(
        None,
        "param",
        init=init,
        ndim=len(dims) if dims is not None else None,
        shape=known,
        dims=dims,
        framework="keras",
    )


def build_on_first_call(interp: Interp, instance: InstanceV, args: Args, kwargs: Kwargs) -> None:
    """Keras runs ``build(input_shape)`` on a layer's first call: do the same, with the width of the
    tensor it is called on (and once more if the first call did not know the width)."""
    found = instance.info.find_method("build")
    if found is None:
        return
    tensor = first_tensor(args, kwargs)
    width = current_width(tensor)
    if instance.built and (instance.built_width is not None or width is None):
        return
    instance.built, instance.built_width = True, width
    shape: Value = UNKNOWN
    hint = tensor.hint if tensor is not None else None
    if tensor is not None and not tensor.nodes and hint is not None and hint.shape and hint.kind != "unknown":
        shape = Const((None, *hint.shape))
    elif width is not None:
        shape = Const((None, width))
    cls, fnode = found
    interp.call_function(interp.make_function(fnode, cls.scope, cls), [instance, shape], {}, self_val=instance)


class LambdaLayerV(InvocableV):
    """keras ``Lambda(function, arguments={...})``: applying it runs ``function`` on the tensor, read
    like any user function (``lambda t: K.sigmoid(t)`` is a sigmoid); what it does not resolve to a
    tensor stays an UNKNOWN layer."""

    def __init__(self, function: Value, arguments: Value | None, span: Span) -> None:
        self.function = function
        self.arguments = arguments
        self.span = span
        self.owned = False

    def invoke(self, interp: Interp, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        extra = dict(self.arguments.items) if isinstance(self.arguments, DictV) and not self.arguments.partial else {}
        if self.arguments is not None and not extra or not all(isinstance(k, str) for k in extra):
            return interp.unknown_call(args, kwargs, node, "Lambda")
        result = interp.call(self.function, args[:1], extra, node) if args else UNKNOWN
        if isinstance(result, TensorV):
            return result
        return interp.unknown_call(args, kwargs, node, "Lambda")


# scikit-learn wrappers of a model-building function: keras.wrappers.scikit_learn (Keras 2,
# ``build_fn=``) and scikeras (``model=``).
SKLEARN_WRAPPERS = frozenset({"KerasClassifier", "KerasRegressor"})


def build_wrapped_model(interp: Interp, build: Value, kwargs: Kwargs, routed_prefix: str | None = None) -> Value:
    """``KerasClassifier(build_fn=create_model, epochs=100, depth=14)``: the wrapper calls the function
    with the keyword arguments its signature names (``sk_params`` in Keras 2; scikeras also routes
    ``model__depth=`` to ``depth``), the others (``epochs``, ``batch_size``) being the wrapper's own.
    The model is built here as the wrapper builds it; the wrapper itself stays unknown. A build
    function that is not a function of the file (a class, an unresolved name) is not called."""
    if not isinstance(build, FunctionV) or isinstance(build.node, ast.Lambda):
        return UNKNOWN
    fargs = build.node.args
    names = {a.arg for a in fargs.posonlyargs + fargs.args + fargs.kwonlyargs}
    passed = {k: v for k, v in kwargs.items() if k in names}
    if routed_prefix is not None:
        passed.update({k[len(routed_prefix):]: v for k, v in kwargs.items()
                       if k.startswith(routed_prefix) and k[len(routed_prefix):] in names})
    interp.call_function(build, [], passed)
    return UNKNOWN


_CUSTOM_OBJECTS = "keras.custom_objects"  # key of the file's registry in ``interp.framework_state``


def custom_objects(interp: Interp) -> DictV:
    """What ``keras.utils.get_custom_objects()`` returns: one dict for the whole file, so that
    ``get_custom_objects().update({"my_act": Activation(f)})`` is seen by ``Dense(activation="my_act")``."""
    registry = interp.framework_state.get(_CUSTOM_OBJECTS)
    if not isinstance(registry, DictV):
        registry = interp.framework_state[_CUSTOM_OBJECTS] = DictV({})
    return registry


def resolve_activation(interp: Interp, value: Value, node: ast.AST, depth: int = 0,
                       params: dict[str, float] | None = None) -> str | None:
    """The activation ``value`` names: a known name or object, a name registered in the custom objects,
    or a function of the file that applies exactly one known activation to its input
    (``def act(x): return K.sigmoid(x)``, read by running it on a fresh tensor). None otherwise.
    ``params`` receives the function's activation parameter as ``act_param`` (``lambda x:
    keras.activations.relu(x, threshold=1.5)``): a caller that drops it would give the default instead."""
    act = activation_of(value)
    if act is not None or depth > 3:
        return act
    if isinstance(value, Const) and isinstance(value.value, str):
        registry = interp.framework_state.get(_CUSTOM_OBJECTS)
        found = registry.items.get(value.value) if isinstance(registry, DictV) else None
        return resolve_activation(interp, found, node, depth + 1, params) if found is not None else None
    if isinstance(value, FunctionV):
        # The probe input carries a marker layer, so that what the function combines with its input
        # (x * sigmoid(x), sigmoid(x) + tanh(x)) shares it and shows as a gate or a residual.
        marker = Layer(LayerKind.OTHER, "activation-probe", span_of(node), "keras", activation="linear", bias=False)
        result = interp.call(value, [TensorV(NodeSeq((marker,)), None)], {}, node)
        if isinstance(result, TensorV) and len(result.nodes) == 2 and result.nodes[0] is marker:
            only = result.nodes[1]
            known = only.activation not in (None, "unknown") if isinstance(only, Layer) else False
            if isinstance(only, Layer) and only.kind == LayerKind.ACTIVATION and known:
                if params is not None and only.act_param is not None:
                    params["act_param"] = only.act_param
                return only.activation
    return None


def _activation_lookup(interp: Interp, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    """``keras.activations.get("sigmoid")`` / ``deserialize("tanh")``: the activation function the name
    (or a function, returned as is) stands for; ``get(None)`` is the linear activation. Anything it
    does not resolve stays UNKNOWN (a layer given it then has an unknown activation)."""
    value = args[0] if args else kwargs.get("identifier", kwargs.get("config", UNKNOWN))
    if is_none(value):
        return Ref("keras.activations.linear")
    if isinstance(value, (FunctionV, Ref, LayerObj)):  # a callable: returned as it is
        return value
    act = resolve_activation(interp, value, node)
    if act is not None:
        return Ref(f"keras.activations.{act}")
    return UNKNOWN


def _activation_call(q: str, leaf: str, args: Args, kwargs: Kwargs, span: Span) -> Value:
    """``keras.activations.relu(x, threshold=θ)``, ``K.sigmoid(x)`` on a tensor: its activation node (the
    function itself, uncalled on a tensor, stays a reference)."""
    act = catalog.canonical_activation(leaf)
    tensor = first_tensor(args, kwargs)
    if tensor is None or not act:
        return Ref(q)
    layer = Layer(LayerKind.ACTIVATION, leaf, span, "keras", activation=act, bias=False)
    spec = catalog.RELU_FAMILY_ARGS.get(("keras", leaf))
    member = relu_family_member("keras", leaf, dict(zip(spec, args[1:], strict=False)) | kwargs) \
        if spec is not None and q.startswith("keras.activations.") else None
    if member is not None:  # keras.activations.relu(x, threshold=θ) / (x, max_value=6.0)
        layer.activation, layer.act_param = member
    return TensorV(tensor.nodes + (layer,), tensor.hint)


def call_keras(interp: Interp, q: str, leaf: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    span = span_of(node)
    if leaf == "get_custom_objects" and q.startswith(("keras.utils.", "keras.saving.")):
        return custom_objects(interp)
    if q in _KERAS_RANDOM:  # TensorFlow's factory of the same signature, through the core's dispatch
        return interp.call(Ref("tensorflow." + _KERAS_RANDOM[q]), args, kwargs, node)
    if q.startswith("keras.wrappers.") and leaf in SKLEARN_WRAPPERS:
        return build_wrapped_model(interp, kwargs.get("build_fn", args[0] if args else UNKNOWN), kwargs)
    if q in ("keras.Input", "keras.layers.Input") or leaf == "Input":
        shape = kwargs.get("shape", args[0] if args else UNKNOWN)
        return TensorV(NodeSeq(), _keras_hint(shape))
    if q in ("keras.Sequential", "keras.models.Sequential") or leaf == "Sequential" and q.startswith("keras."):
        return _sequential(interp, args, kwargs, span)
    if q in ("keras.Model", "keras.models.Model") or (leaf in ("Model", "Functional") and q.startswith("keras.")):
        return _functional_model(interp, args, kwargs, span)
    if q.startswith(("keras.losses.", "keras.optimizers.")):
        return _loss_or_optimizer(q, leaf, args, kwargs, span)
    if q.startswith("keras.initializations."):
        return keras1_initialization(leaf, args, kwargs, node)
    if q.startswith("keras.initializers.") or (
        q.startswith("keras.")
        and leaf in catalog.KERAS_INIT_CLASSES
        and leaf[0].isupper()
        and leaf not in catalog.KERAS_LAYERS
    ):
        return make_initializer(leaf, args, kwargs, node)
    if leaf == "stop_gradient" and q.startswith(("keras.backend.", "keras.ops.")):  # K.stop_gradient(x)
        tensor = first_tensor(args, kwargs)
        return stopped(tensor, leaf, span, "keras") if tensor is not None else UNKNOWN
    if leaf == "Lambda" and q.startswith("keras.layers."):
        function = kwargs.get("function", args[0] if args else UNKNOWN)
        return LambdaLayerV(function, kwargs.get("arguments"), span)
    if q in ("keras.activations.get", "keras.activations.deserialize"):
        return _activation_lookup(interp, args, kwargs, node)
    if q.startswith("keras.activations.") or q in ("keras.ops.sigmoid", "keras.ops.tanh", "keras.ops.relu") \
            or q.startswith("keras.backend.") and catalog.canonical_activation(leaf):  # K.sigmoid(x)
        return _activation_call(q, leaf, args, kwargs, span)
    if leaf == "merge" and q.startswith("keras.layers."):
        return keras1_merge(interp, args, kwargs, node)
    if leaf == "Merge" and q.startswith("keras.layers."):
        return keras1_merge_layer(interp, args, kwargs, node)
    if leaf in catalog.KERAS_MERGE_ADD:
        return keras_merge(leaf, args, kwargs, span, merge_residual)
    if leaf in catalog.KERAS_MERGE_MULTIPLY:
        return keras_merge(leaf, args, kwargs, span, merge_gate)
    if leaf in catalog.KERAS_MERGE_CONCAT:
        return keras_merge(leaf, args, kwargs, span, None)
    if leaf == "Rescaling":
        rescaled = _rescaling(args, kwargs, span)
        if rescaled is not None:
            return rescaled
    if leaf in catalog.KERAS_PASSTHROUGH:
        layer = Layer(LayerKind.OTHER, leaf, span, "keras", activation="linear", bias=False)
        geometry = _reshape_geometry(leaf, args, kwargs)
        if geometry is None and leaf.startswith(("ZeroPadding", "Cropping", "UpSampling")) and leaf[-2].isdigit():
            geometry = _resize_geometry(leaf, args, kwargs, layer)
        if geometry is not None and geometry.target and geometry.target[-1] > 0:
            _reshape_target(layer, geometry.target)
        stated = kwargs.get("input_shape", kwargs.get("shape") if leaf == "InputLayer" else None)  # Keras 3: shape=
        hint = _keras_hint(stated) if stated is not None else None  # Flatten(input_shape=), InputLayer(...)
        return LayerObj(layer, input_hint=hint, geometry=geometry)
    return _layer(interp, leaf, args, kwargs, node)


def _reshape_geometry(leaf: str, args: Args, kwargs: Kwargs) -> Geometry | None:
    if leaf == "Flatten":
        return Geometry("flatten")
    if leaf == "Reshape":
        target = kwargs.get("target_shape", args[0] if args else UNKNOWN)
        items: list[object] = list(target.value) if isinstance(target, Const) and isinstance(target.value, tuple) \
            else [i.value if isinstance(i, Const) else None for i in target.items] \
            if isinstance(target, ListV) and not target.partial else []
        dims = [d for d in items if isinstance(d, int) and not isinstance(d, bool) and (d > 0 or d == -1)]
        if items and len(dims) == len(items):
            return Geometry("reshape", target=tuple(dims))
        return Geometry("reshape")  # target not known: the width after it is unknown
    return None


def _rescaling(args: Args, kwargs: Kwargs, span: Span) -> Value | None:
    """``Rescaling(scale)`` without an offset: a constant multiplier (a scaled residual branch);
    None (a pass-through) with an offset, which shifts pixel ranges rather than scaling a stream."""
    offset = kwargs.get("offset", args[1] if len(args) > 1 else None)
    if offset is not None and number(offset, math.nan) != 0.0:
        return None
    scale = kwargs.get("scale", args[0] if args else None)
    value = number(scale, math.nan, limit=1e300)
    known = value if math.isfinite(value) else None
    return LayerObj(
        Layer(LayerKind.SCALE, "Rescaling", span, "keras", activation="linear", bias=False, scale_value=known)
    )


def _sequential(interp: Interp, args: Args, kwargs: Kwargs, span: Span) -> Value:
    layers_arg = args[0] if args else kwargs.get("layers", ListV([]))
    items = interp.iterate(layers_arg)
    inputs = [i for i in items or [] if isinstance(i, TensorV) and not i.nodes]  # keras.Input(shape=...) first
    value = ContainerV(
        "keras_sequential",
        [i for i in items or [] if not any(i is t for t in inputs)],
        None,
        span,
        "keras",
        partial=items is None or (isinstance(layers_arg, ListV) and layers_arg.partial),
    )
    for item in value.items:
        interp.own(item)
    value.input_hint = next((t.hint for t in inputs if t.hint is not None), None) or next(
        (h for h in (layer_input_hint(i) for i in value.items[:2]) if h), None
    )
    interp.built.append(value)
    return value


def _functional_model(interp: Interp, args: Args, kwargs: Kwargs, span: Span) -> Value:
    # Keras 1 (and Keras 2, deprecated) spell them ``Model(input=..., output=...)``.
    outputs = kwargs.get("outputs", kwargs.get("output", args[1] if len(args) > 1 else UNKNOWN))
    inputs = kwargs.get("inputs", kwargs.get("input", args[0] if args else UNKNOWN))
    out = longest_tensor(outputs)
    if out is None:
        return UNKNOWN
    hint = out.hint
    if isinstance(inputs, TensorV) and inputs.hint is not None:
        hint = inputs.hint
    value = FunctionalModelV(TensorV(out.nodes, hint), span,
                             others=tuple(t for t in all_tensors(outputs) if t is not out))
    interp.built.append(value)
    return value


def _loss_or_optimizer(q: str, leaf: str, args: Args, kwargs: Kwargs, span: Span) -> Value:
    if q.startswith("keras.optimizers.") and leaf[:1].isupper():
        clips = any(
            k in kwargs and not (isinstance(kwargs[k], Const) and kwargs[k].value in (None, 0))  # type: ignore[attr-defined]
            for k in _OPTIMIZER_CLIP_KWARGS
        )
        lr, momentum = optimizers.settings("keras", leaf, args, kwargs)
        return OptimizerV(span, clips, leaf, lr, momentum)
    if q.startswith("keras.losses.") and leaf[:1].isupper():
        flag = kwargs.get("from_logits")
        from_logits = isinstance(flag, Const) and flag.value is True
        return LossObjV(LossSpec(leaf, "keras", from_logits, span, explicit_from_logits=flag is not None))
    return Ref(q)


def _layer(interp: Interp, leaf: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    inner = args[0] if args else kwargs.get("layer")
    if leaf == "Bidirectional" and isinstance(inner, LayerObj) and inner.layer.kind == LayerKind.RECURRENT:
        # Bidirectional(SimpleRNN(32)): the wrapped recurrence, run both ways (its kind and init are the inner
        # layer's; the default concat merge doubles the width).
        wrapped = replace(inner.layer, span=span_of(node))
        merge = kwargs.get("merge_mode", Const("concat"))
        if wrapped.fan_out is not None:
            wrapped.fan_out = 2 * wrapped.fan_out if isinstance(merge, Const) and merge.value == "concat" else None
        inner.owned = True
        return LayerObj(wrapped, input_hint=_hint_from_arguments(wrapped, kwargs))
    if leaf == "TimeDistributed" and isinstance(inner, LayerObj) and inner.geometry is None \
            and inner.layer.kind in _PER_STEP_KINDS:
        # TimeDistributed(Dense(64)): the inner layer applied to every step alike, on the last axis (the
        # same fan-in, fan-out and init); a wrapped layer with a spatial geometry (Conv2D, Flatten) would
        # see per-frame shapes the path does not follow, and stays unknown.
        inner.owned = True
        return LayerObj(replace(inner.layer, span=span_of(node)), input_hint=_hint_from_arguments(inner.layer, kwargs))
    spec = catalog.KERAS_LAYERS.get(leaf)
    if spec is None:
        return interp.unknown_call(args, kwargs, node, leaf) if first_tensor(args, kwargs) else UNKNOWN
    bound = dict(zip(spec.params, args, strict=False))
    bound.update(kwargs)
    layer = Layer(spec.kind, leaf, span_of(node), "keras", activation=spec.activation)
    trainable = kwargs.get("trainable")
    if isinstance(trainable, Const) and trainable.value is False:
        layer.frozen = True  # Dense(64, trainable=False): as layer.trainable = False (passes the gradient on)
    act_value = bound.get("activation")
    if act_value is not None:
        found: dict[str, float] = {}
        act = resolve_activation(interp, act_value, node, params=found)
        layer.activation = act if act is not None else ("unknown" if not is_none(act_value) else spec.activation)
        layer.act_param = found.get("act_param", layer.act_param)
    if leaf in ("LeakyReLU",):
        layer.act_param = number(bound.get("negative_slope", bound.get("alpha")), 0.3)
    if leaf == "ELU":
        layer.act_param = number(bound.get("alpha"), 1.0)
    member = relu_family_member("keras", leaf, bound)
    if member is not None:  # ReLU(max_value=6) is ReLU6, ReLU(threshold=θ) / ThresholdedReLU(θ) thresholded
        layer.activation, layer.act_param = member
    if spec.params == ("rate",):  # Keras 1 spelled it p=
        layer.rate = dropout_rate(bound.get("rate", bound.get("p")), None)
    if spec.kind in _WEIGHTED:
        for key in INIT_KEYS:
            value = bound.get(key)
            if isinstance(value, FunctionV) or (isinstance(value, InstanceV)
                                                and value.info.find_method("__call__") is not None):
                bound[key] = initializer_function(interp, value, node)
        if leaf.startswith("Convolution") and len(args) > 2 and "nb_row" not in bound:
            bound["nb_row"], bound["nb_col"] = args[1], args[2]  # Keras 1: Convolution2D(32, 3, 3)
        _weighted_layer(layer, leaf, bound, node)
    elif spec.kind == LayerKind.NORMALIZATION:
        layer.weight_init = keras_init(bound.get("gamma_initializer"), node, Init("ones"))
        layer.bias = True
        groups = bound.get("groups")
        if leaf == "GroupNormalization" and isinstance(groups, Const) and groups.value == -1:
            layer.norm_stats = "batch"  # groups=-1: one group per channel, InstanceNorm
        elif leaf == "GroupNormalization":
            layer.norm_stats = group_norm_stats(positive_int(bound.get("groups", Const(32))), None)
    elif spec.kind == LayerKind.POOLING and leaf.startswith("MaxPool"):
        layer.bias = False
        layer.receptive = _pool_window(bound.get("pool_size"), int(leaf[-2]))
    else:
        layer.bias = False
    geometry = _geometry(leaf, spec, *_keras2_geometry_arguments(leaf, spec, args, kwargs))
    layer.window = _window_of(leaf, geometry)
    return LayerObj(layer, input_hint=_hint_from_arguments(layer, bound), geometry=geometry)


def _reshape_target(layer: Layer, target: tuple[int, ...]) -> None:
    """``Reshape((7, 7, 64))``: the width as written and, for a map, the spatial size after it (channels last)."""
    layer.fan_out = target[-1]
    if len(target) > 1 and all(d > 0 for d in target):
        layer.window = Window(output=target[:-1])


def _window_of(leaf: str, geometry: Geometry | None) -> Window | None:
    """The model description's spatial window of a channels-last Keras conv/pooling layer."""
    if geometry is None or geometry.channels_first:
        return None
    if geometry.op == "global":
        digit = leaf[-2]
        return Window(output=(1,) * int(digit)) if digit.isdigit() else None
    if geometry.op not in ("window", "transpose"):
        return None
    return Window(geometry.kernel, geometry.strides, geometry.padding, geometry.dilation,
                  transposed=geometry.op == "transpose")


# Keras 1 spellings of the arguments that decide a conv/pooling layer's output size.
_KERAS1_GEOMETRY = frozenset({"nb_filter", "nb_row", "nb_col", "border_mode", "subsample", "filter_length",
                              "subsample_length", "dim_ordering"})


def _keras2_geometry_arguments(leaf: str, spec: catalog.LayerSpec, args: Args, kwargs: Kwargs) -> tuple[Args, Kwargs]:
    """Keras 1's ``Convolution2D(32, 3, 3, border_mode='same', subsample=(2, 2))`` /
    ``Convolution1D(nb_filter, filter_length, subsample_length=)`` / ``MaxPooling2D(border_mode=)``
    and ``dim_ordering='th'`` as the Keras 2 arguments they became (``kernel_size``, ``padding``,
    ``strides``, ``data_format``); Keras 2 calls unchanged."""
    keras1_positional = spec.kind == LayerKind.CONV and leaf.startswith("Convolution") and len(args) > 2
    if not keras1_positional and not _KERAS1_GEOMETRY & set(kwargs):
        return args, kwargs
    out = {k: v for k, v in kwargs.items() if k not in _KERAS1_GEOMETRY}
    if "border_mode" in kwargs:
        out["padding"] = kwargs["border_mode"]
    ordering = kwargs.get("dim_ordering")
    if isinstance(ordering, Const) and ordering.value in ("th", "tf"):
        out["data_format"] = Const("channels_first" if ordering.value == "th" else "channels_last")
    elif ordering is not None:
        out["data_format"] = UNKNOWN
    if spec.kind != LayerKind.CONV:
        return args, out
    filters = kwargs.get("nb_filter", args[0] if args else UNKNOWN)
    if leaf.startswith("Convolution1D"):
        out["kernel_size"] = kwargs.get("filter_length", args[1] if len(args) > 1 else UNKNOWN)
        if "subsample_length" in kwargs:
            out["strides"] = kwargs["subsample_length"]
    elif leaf.startswith("Convolution2D") and (keras1_positional or {"nb_row", "nb_col"} & set(kwargs)):
        rows = kwargs.get("nb_row", args[1] if len(args) > 1 else UNKNOWN)
        cols = kwargs.get("nb_col", args[2] if len(args) > 2 else UNKNOWN)
        out["kernel_size"] = Const((rows.value, cols.value)) if isinstance(rows, Const) and isinstance(cols, Const) \
            else UNKNOWN
    elif len(args) > 1:
        out.setdefault("kernel_size", args[1])
    if "subsample" in kwargs:
        out["strides"] = kwargs["subsample"]
    return [filters], out


# Keras' random tensors (``K.random_normal(shape, mean, stddev)``, Keras 3 ``keras.random.normal``):
# TensorFlow's factories of the same names and signatures.
_KERAS_RANDOM = {"keras.backend.random_normal": "random_normal", "keras.backend.random_uniform": "random_uniform",
                 "keras.backend.truncated_normal": "truncated_normal", "keras.random.normal": "random.normal",
                 "keras.random.uniform": "random.uniform", "keras.random.truncated_normal": "random.truncated_normal"}


_POOL_PARAMS = ("pool_size", "strides", "padding", "data_format")
_CONV_GEOMETRY = ("Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "Convolution3D",
                  "SeparableConv1D", "SeparableConv2D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")


def _resize_geometry(leaf: str, args: Args, kwargs: Kwargs, layer: Layer) -> Geometry | None:
    """ZeroPadding/Cropping/UpSampling{1,2,3}D: each spatial size n becomes n·size + added, from literal
    arguments (``padding=1``, ``(1, 2)``, ``((1, 1), (2, 2))``; ``size=2``); None otherwise. The layer's
    window says the same for the estimate's spatial terms (channels last)."""
    geometry = _resize_geometry_of(leaf, args, kwargs)
    if geometry is not None and not geometry.channels_first:
        layer.window = Window(scale=tuple(float(s) for s in geometry.strides), added=geometry.kernel)
    return geometry


def _resize_geometry_of(leaf: str, args: Args, kwargs: Kwargs) -> Geometry | None:
    axes = int(leaf[-2])
    name = "size" if leaf.startswith("UpSampling") else "cropping" if leaf.startswith("Cropping") else "padding"
    default = {"size": 2, "cropping": 0, "padding": 1}[name]
    value = args[0] if args else kwargs.get(name, Const(default))
    data_format = kwargs.get("data_format", args[1] if len(args) > 1 else None)
    channels_first = isinstance(data_format, Const) and data_format.value == "channels_first"
    if data_format is not None and not (is_none(data_format) or channels_first or (
            isinstance(data_format, Const) and data_format.value == "channels_last")):
        return None
    if not isinstance(value, Const):
        return None
    raw = value.value
    per_axis: list[tuple[int, int]] = []
    if isinstance(raw, int) and not isinstance(raw, bool):
        per_axis = [(raw, raw)] * axes
    elif isinstance(raw, tuple) and axes == 1 and len(raw) == 2 and all(isinstance(v, int) for v in raw):
        per_axis = [(raw[0], raw[1])]  # 1D: (left, right)
    elif isinstance(raw, tuple) and len(raw) == axes and all(isinstance(v, int) for v in raw):
        per_axis = [(v, v) for v in raw]
    elif isinstance(raw, tuple) and len(raw) == axes and all(
            isinstance(v, tuple) and len(v) == 2 and all(isinstance(i, int) for i in v) for v in raw):
        per_axis = [(v[0], v[1]) for v in raw]
    else:
        return None
    if any(a < 0 or b < 0 for a, b in per_axis):
        return None
    if name == "size":
        if any(a != b or a <= 0 for a, b in per_axis):
            return None
        return Geometry("resize", kernel=(0,) * axes, strides=tuple(a for a, _ in per_axis),
                        channels_first=channels_first)
    sign = -1 if name == "cropping" else 1
    return Geometry("resize", kernel=tuple(sign * (a + b) for a, b in per_axis), strides=(1,) * axes,
                    channels_first=channels_first)


def _geometry(leaf: str, spec: catalog.LayerSpec, args: Args, kwargs: Kwargs) -> Geometry | None:
    """How a Keras conv/pooling layer maps spatial sizes, when every argument that decides it is a
    literal; None otherwise (Keras 1 spellings, output_padding, causal padding)."""
    if spec.kind not in (LayerKind.CONV, LayerKind.POOLING):
        return None
    conv = spec.kind == LayerKind.CONV
    bound: dict[str, Value] = dict(zip(spec.params if conv else _POOL_PARAMS, args, strict=False))
    bound.update(kwargs)
    data_format = bound.get("data_format")
    channels_first = isinstance(data_format, Const) and data_format.value == "channels_first"
    if data_format is not None and not (is_none(data_format) or channels_first or (
            isinstance(data_format, Const) and data_format.value == "channels_last")):
        return None
    if "Global" in leaf:
        keepdims = bound.get("keepdims")
        if keepdims is not None and not (isinstance(keepdims, Const) and isinstance(keepdims.value, bool)):
            return None
        return Geometry("global", keepdims=bool(keepdims.value) if isinstance(keepdims, Const) else False,
                        channels_first=channels_first)
    digit = leaf[-2] if "Transpose" not in leaf else leaf[-len("DTranspose") - 1]  # Conv2DTranspose: 2
    if not digit.isdigit() or (conv and leaf not in _CONV_GEOMETRY):
        return None
    axes = int(digit)
    kernel = _per_axis(bound.get("kernel_size") if conv else bound.get("pool_size", Const(2)), axes)
    default_strides = Const(1) if conv else bound.get("pool_size", Const(2))  # pooling: strides=None is pool_size
    strides_value = bound.get("strides")
    strides = _per_axis(default_strides if strides_value is None or is_none(strides_value) else strides_value, axes)
    dilation = _per_axis(bound.get("dilation_rate", Const(1)), axes)
    padding = bound.get("padding", Const("valid"))
    if kernel is None or strides is None or dilation is None or not isinstance(padding, Const) \
            or not isinstance(padding.value, str) or padding.value.lower() not in ("valid", "same"):
        return None
    transposed = "Transpose" in leaf
    if transposed and not is_none(bound.get("output_padding", Const(None))):
        return None  # output_padding changes the output size: not modelled
    return Geometry("transpose" if transposed else "window", kernel, strides, dilation, padding.value.lower(),
                    channels_first=channels_first)


def _per_axis(value: Value | None, axes: int) -> tuple[int, ...] | None:
    """An int or a tuple of ints (``kernel_size=3``, ``strides=(2, 2)``), one per spatial axis."""
    if isinstance(value, Const) and isinstance(value.value, int) and not isinstance(value.value, bool):
        return (value.value,) * axes if value.value > 0 else None
    dims = shape_dims(value) if value is not None else None
    if dims is not None and len(dims) == axes and all(isinstance(d, int) and d > 0 for d in dims):
        return tuple(d for d in dims if d is not None)
    return None


def _weighted_layer(layer: Layer, leaf: str, bound: dict[str, Value], node: ast.AST) -> None:
    use_bias = bound.get("use_bias", bound.get("bias"))  # Keras 1: bias=False
    layer.bias = not (isinstance(use_bias, Const) and use_bias.value is False)
    embedding = layer.kind == LayerKind.EMBEDDING
    init_key = "embeddings_initializer" if embedding else "kernel_initializer"
    default = Init("random_uniform") if embedding else Init("glorot_uniform")
    layer.weight_init = keras_init(bound.get(init_key, bound.get("init")), node, default)  # Keras 1: init='uniform'
    layer.bias_init = keras_init(bound.get("bias_initializer"), node, Init("zeros"))
    if layer.kind == LayerKind.DENSE:
        layer.fan_out = positive_int(bound.get("units", bound.get("output_dim")))  # Keras 1: output_dim
        dim = positive_int(bound.get("input_dim"))
        if dim is not None:
            layer.fan_in = dim
        shape = bound.get("input_shape")
        if (
            isinstance(shape, Const)
            and isinstance(shape.value, tuple)
            and shape.value
            and isinstance(shape.value[-1], int)
        ):
            layer.fan_in = shape.value[-1]
    elif layer.kind == LayerKind.CONV:
        layer.fan_out = positive_int(bound.get("filters", bound.get("nb_filter")))  # Keras 1: nb_filter
        kernel = bound.get("kernel_size")
        digit = leaf[-len("DTranspose") - 1] if "Transpose" in leaf else leaf[-2]  # Conv1DTranspose: 1
        dims = int(digit) if digit.isdigit() else 2
        rows, cols = positive_int(bound.get("nb_row")), positive_int(bound.get("nb_col"))
        if dims == 2 and rows and cols:  # Keras 1: Convolution2D(32, 3, 3) / nb_row=, nb_col=
            kernel = Const((rows, cols))
        if isinstance(kernel, Const):
            k = kernel.value
            if isinstance(k, int):
                layer.receptive = k**dims
            elif isinstance(k, tuple) and all(isinstance(i, int) for i in k):
                layer.receptive = math.prod(k)
        if layer.fan_out is not None and layer.receptive is not None:
            layer.fan_out *= layer.receptive  # Keras' fan_out counts the kernel area too
        if "Transpose" in leaf:
            layer.stride_area = stride_area(bound.get("strides"), dims)
    elif embedding:
        layer.fan_in = positive_int(bound.get("input_dim"))
        layer.fan_out = positive_int(bound.get("output_dim"))
    elif layer.kind == LayerKind.RECURRENT:
        layer.recurrent_init = keras_init(bound.get("recurrent_initializer", bound.get("inner_init")), node,
                                          Init("orthogonal"))  # Keras 1: inner_init=
        if leaf.startswith(("LSTM", "ConvLSTM")):
            layer.forget_bias = _forget_bias(layer, bound.get("unit_forget_bias", bound.get("forget_bias_init")))
        returns = bound.get("return_sequences")
        layer.returns_sequences = isinstance(returns, Const) and returns.value is True
        if not leaf.startswith("ConvLSTM"):
            layer.fan_out = layer.units = positive_int(bound.get("units", bound.get("output_dim")))  # Keras 1
        dim = positive_int(bound.get("input_dim"))
        shape = bound.get("input_shape")
        if dim is not None:
            layer.fan_in = dim
        elif isinstance(shape, Const) and isinstance(shape.value, tuple) and shape.value \
                and isinstance(shape.value[-1], int) and shape.value[-1] > 0:
            layer.fan_in = shape.value[-1]


def _forget_bias(layer: Layer, flag: Value | None) -> float | None:
    """An LSTM's forget-gate bias at init: Keras sets that block of the bias to ones when
    ``unit_forget_bias`` is True (the default), to the bias initializer's values otherwise."""
    if layer.bias is False:
        return 0.0
    if flag is None or (isinstance(flag, Const) and flag.value is True):
        return 1.0
    if isinstance(flag, Const) and isinstance(flag.value, str):  # Keras 1: forget_bias_init='one'
        return {"one": 1.0, "ones": 1.0, "zero": 0.0, "zeros": 0.0}.get(flag.value.lower())
    if isinstance(flag, Const) and flag.value is False:
        init = layer.bias_init
        if init is None or init.scheme == "unknown":
            return None
        if init.is_constant:
            return init.constant_value
        return init.params.get("mean", 0.0)
    return None


def layer_input_hint(value: Value) -> InputHint | None:
    """The input a model starting with ``value`` expects, when the layer states it."""
    return value.input_hint if isinstance(value, (LayerObj, Keras1MergeV)) else None


def _hint_from_arguments(layer: Layer, bound: dict[str, Value]) -> InputHint | None:
    """``Dense(4, input_shape=(8,))``, ``Embedding(input_dim=1000, ...)``."""
    if "input_shape" in bound:
        return _keras_hint(bound["input_shape"])
    dim = bound.get("input_dim")
    if isinstance(dim, Const):
        if layer.kind == LayerKind.EMBEDDING:
            length = positive_int(bound.get("input_length", UNKNOWN))  # Keras 2: the padded sequence length
            return InputHint("tokens", (length,) if length else None, vocab=positive_int(dim))
        return InputHint("features", (dim.value,))
    return None


def _keras_hint(shape: Value) -> InputHint | None:
    """The input a shape as written declares: ``(784,)``, ``[20]`` (a list literal reads the same), ``(T, F)``."""
    if isinstance(shape, ListV) and not shape.partial:
        written = const_values(shape.items)
        shape = Const(tuple(written)) if written is not None else shape
    if (
        isinstance(shape, Const)
        and isinstance(shape.value, tuple)
        and all(isinstance(s, (int, type(None))) and not isinstance(s, bool) for s in shape.value)
    ):
        dims = shape.value
        if any(d is None for d in dims):
            return InputHint("unknown", None)
        if len(dims) == 1:
            return InputHint("features", tuple(dims))
        if len(dims) == 3:
            return InputHint("image", tuple(dims))
        if len(dims) == 2:
            return InputHint("sequence", tuple(dims))
    return None


def _pool_window(value: Value | None, dims: int) -> int | None:
    """A Keras max-pooling window's area (``pool_size`` defaults to 2 per axis)."""
    if value is None:
        return 2**dims
    if isinstance(value, Const) and isinstance(value.value, int) and not isinstance(value.value, bool):
        return int(value.value) ** dims if value.value > 0 else None
    if (
        isinstance(value, Const)
        and isinstance(value.value, tuple)
        and len(value.value) == dims
        and all(isinstance(v, int) and v > 0 for v in value.value)
    ):
        return math.prod(value.value)
    return None
