"""Keras initializers: objects (``RandomNormal(stddev=1.0)``), names (``"he_normal"``), the
serialized form (``{"class_name": ..., "config": ...}``), ``initializers.get``, Keras 1's
``initializations.normal(shape, scale=...)`` and user init functions or ``Initializer`` subclasses
(run on an unknown shape: the tensor they return says the draw). What is not resolved is None
(an unknown init), never a default. Never imports keras.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping

from gradlint.extract import catalog
from gradlint.extract.api import Args, Interp, Kwargs
from gradlint.extract.common import is_none, number, shape_dims, span_of
from gradlint.extract.inits import make_init
from gradlint.extract.invocable import InitializerV
from gradlint.extract.values import UNKNOWN, Const, DictV, InitV, InstanceV, Ref, TensorConstV, Value
from gradlint.model import Init


def make_initializer(leaf: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    # initializers.get("he_normal"); deserialize({"class_name": ..., "config": ...}) is get of the dict
    if leaf in ("get", "deserialize") and args and isinstance(args[0], (Const, InitV, DictV)):
        got = keras_init(args[0], node, Init("glorot_uniform"))
        return InitV(got) if got is not None else UNKNOWN
    spec = catalog.KERAS_INIT_CLASSES.get(leaf)
    if spec is None:
        return UNKNOWN
    scheme, names = spec
    init = make_init(scheme, names, args, {k: v for k, v in kwargs.items() if k in names or k == "seed"}, node)
    if init is not None and init.params.get("seed") is not None:
        init.params.pop("seed", None)
    return InitializerV(init) if init is not None else UNKNOWN


# Keras 1's ``keras.initializations`` functions, ``f(shape, scale=..., name=None)``: the Keras 2 class
# each became and how its ``scale`` maps onto that class (normal: N(0, scale²); uniform: U(±scale);
# orthogonal/identity: the gain). Keras 1 defaults: scale 0.05 (normal, uniform), 1.1 (orthogonal), 1.
_KERAS1_INITIALIZATIONS: dict[str, tuple[str, float | None]] = {
    "normal": ("RandomNormal", 0.05), "uniform": ("RandomUniform", 0.05), "orthogonal": ("Orthogonal", 1.1),
    "identity": ("Identity", 1.0), "zero": ("Zeros", None), "one": ("Ones", None),
    "glorot_uniform": ("GlorotUniform", None), "glorot_normal": ("GlorotNormal", None),
    "he_uniform": ("HeUniform", None), "he_normal": ("HeNormal", None), "lecun_uniform": ("LecunUniform", None),
}


def keras1_initialization(leaf: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    """``initializations.normal(shape, scale=0.01, name=name)`` (Keras 1, in a custom ``init=`` function):
    a tensor drawn as the Keras 2 initializer of the same statistics; a scale that is not a number, or
    a function not in the table, stays UNKNOWN."""
    spec = _KERAS1_INITIALIZATIONS.get(leaf)
    if spec is None:
        return UNKNOWN
    cls, default = spec
    config: Mapping[str, Value] = {}
    if default is not None:
        value = number(kwargs.get("scale", args[1] if len(args) > 1 else Const(default)), math.nan)
        if not math.isfinite(value):
            return UNKNOWN
        config = {"normal": {"stddev": Const(value)}, "uniform": {"minval": Const(-value), "maxval": Const(value)},
                  }.get(leaf, {"gain": Const(value)})
    made = make_initializer(cls, [], dict(config), node)
    if not isinstance(made, InitV) or made.init.scheme == "unknown":
        return UNKNOWN
    shape = shape_dims(kwargs.get("shape", args[0] if args else None))
    known = tuple(d for d in shape if d is not None) if shape is not None and None not in shape else None
    return TensorConstV(made.init, known)


INIT_KEYS = ("kernel_initializer", "init", "embeddings_initializer", "bias_initializer", "recurrent_initializer")


def initializer_function(interp: Interp, function: Value, node: ast.AST) -> Value:
    """``kernel_initializer=my_init`` with ``def my_init(shape, dtype=None): return K.random_normal(shape,
    stddev=1.0)``, or an instance of an ``Initializer`` subclass whose ``__call__(shape, dtype)`` does
    the same: Keras calls it with the weight's shape; run on an unknown shape, the tensor it returns
    says the draw (an init that depends on the shape's numbers stays unknown)."""
    found = function.info.find_method("__call__") if isinstance(function, InstanceV) else None
    if isinstance(function, InstanceV) and found is not None:
        cls, fnode = found
        result = interp.call_function(interp.make_function(fnode, cls.scope, cls), [function, UNKNOWN], {},
                                      self_val=function)
    else:
        result = interp.call(function, [UNKNOWN], {}, node)
    if isinstance(result, TensorConstV) and result.init.scheme != "unknown":
        return InitV(Init(result.init.scheme, dict(result.init.params), span_of(node)))
    return UNKNOWN


def keras_init(value: Value | None, node: ast.AST, default: Init) -> Init | None:
    """A layer's ``kernel_initializer=``: an initialiser object, a name, or the default; None: unknown."""
    if value is None or is_none(value):
        return default
    if isinstance(value, InitV):
        return value.init
    if isinstance(value, Const) and isinstance(value.value, str):
        spec = catalog.KERAS_INIT_CLASSES.get(value.value) or catalog.KERAS_INIT_CLASSES.get(value.value.lower())
        if spec is None:
            return None
        return Init(spec[0], {}, span_of(node), repr(value.value))
    if isinstance(value, Ref):
        spec = catalog.KERAS_INIT_CLASSES.get(value.leaf)
        return Init(spec[0], {}, span_of(node)) if spec else None
    if isinstance(value, DictV):  # the serialized form: {"class_name": "RandomNormal", "config": {"stddev": 1.0}}
        return _serialized_init(value, node)
    return None


def _serialized_init(value: DictV, node: ast.AST) -> Init | None:
    name = value.items.get("class_name")
    config = value.items.get("config", DictV({}))
    if value.partial or not isinstance(name, Const) or not isinstance(name.value, str) \
            or not isinstance(config, DictV) or config.partial or not all(isinstance(k, str) for k in config.items):
        return None
    made = make_initializer(name.value, [], dict(config.items), node)
    return made.init if isinstance(made, InitV) else None
