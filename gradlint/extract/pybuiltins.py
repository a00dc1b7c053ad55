"""Python's builtins and the few stdlib calls model code uses (``math``, ``OrderedDict``, ``partial``).

Calls on constants fold with the real function, after ``common.foldable`` has refused inputs that
would take it minutes; calls on symbolic values (``len(self.layers)``, ``isinstance(m, nn.Conv2d)``,
``getattr(self, name)``) answer from the abstract value, or UNKNOWN.
"""

from __future__ import annotations

import ast
import importlib
import json
import math
from collections.abc import Callable
from typing import Any

from gradlint.extract import catalog, numeric_arrays, yaml_literal
from gradlint.extract.api import Args, Core, Kwargs
from gradlint.extract.common import const_values, foldable
from gradlint.extract.configs import call_config, lift, namespace_dict
from gradlint.extract.copies import DeepCopier
from gradlint.extract.data_shapes import numpy_call
from gradlint.extract.invocable import PartialV, SuperV
from gradlint.extract.time_loops import unknown_count
from gradlint.extract.values import (
    UNKNOWN,
    BoundV,
    ClassV,
    Const,
    ContainerV,
    DictV,
    FunctionV,
    InstanceV,
    LayerObj,
    ListV,
    MethodV,
    ParamV,
    ReadOutV,
    Ref,
    TensorV,
    TypeV,
    UnknownV,
    Value,
)
from gradlint.model import Layer, LayerKind

# Builtins folded on all-constant arguments.
_FOLDED: dict[str, Callable[..., Any]] = {
    "int": int, "float": float, "bool": bool, "str": str, "abs": abs, "round": round,
    "min": min, "max": max, "sum": sum, "pow": pow, "divmod": divmod,
}
_BUILTIN_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool, "tuple": tuple,
                                   "list": list, "dict": dict}
_PARAMETERLESS = (LayerKind.ACTIVATION, LayerKind.DROPOUT, LayerKind.POOLING)

Handler = Callable[["BuiltinsMixin", str, Args, Kwargs, ast.AST], Value]


class BuiltinsMixin(Core):
    """``call_builtin`` (one handler per builtin), ``isinstance_check`` and ``call_stdlib``."""

    def call_builtin(self, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        if name in ("range", "xrange"):
            consts = [a.value for a in args if isinstance(a, Const)]
            if len(consts) == len(args) and all(isinstance(c, int) for c in consts) and consts:
                return Const(range(*consts))
            return UNKNOWN
        if name == "len":
            if args and unknown_count(self, args[0]):
                return UNKNOWN  # len(x.unbind(1)): the sequence length, not known here
            items = self.iterate(args[0]) if args else None
            return Const(len(items)) if items is not None else UNKNOWN
        if name in ("float", "int") and len(args) == 1 and isinstance(args[0], TensorV):
            return ReadOutV(args[0], name)  # float(x): a number read out of the tensor
        consts = [a.value for a in args if isinstance(a, Const)]
        if not foldable(consts) or (name == "pow" and len(consts) >= 2 and isinstance(consts[1], (int, float))
                                    and abs(consts[1]) > 64):
            return UNKNOWN
        if name in _FOLDED and len(consts) == len(args) and args:
            try:
                return Const(_FOLDED[name](*consts))
            except Exception:
                return UNKNOWN
        handler = _HANDLERS.get(name)
        return handler(self, name, args, kwargs, node) if handler is not None else UNKNOWN

    # ---- isinstance / type(x) == C

    def isinstance_check(self, value: Value, classes: Value, exact: bool) -> bool | None:
        if isinstance(classes, ListV):
            results = [self.isinstance_check(value, c, exact) for c in classes.items]
            if any(r is True for r in results):
                return True
            if any(r is None for r in results):
                return None
            return False
        if isinstance(classes, Const) and isinstance(classes.value, tuple):
            return None
        if isinstance(value, LayerObj):
            return _layer_isinstance(value, classes, exact)
        if isinstance(value, InstanceV):
            return _instance_isinstance(value, classes, exact)
        if isinstance(value, ContainerV):
            if isinstance(classes, Ref):
                if classes.leaf == "Module" and not exact:
                    return True
                return catalog.CONTAINER_CLASS_NAMES[value.kind] == classes.leaf
            return False if isinstance(classes, ClassV) else None
        if isinstance(value, Const):
            if isinstance(classes, Ref) and classes.qualname.startswith("builtins."):
                typ = _BUILTIN_TYPES.get(classes.leaf)
                if typ is not None:
                    return isinstance(value.value, typ)
            if isinstance(classes, Ref) and classes.qualname.startswith("torch.nn."):
                return False
            return None
        if isinstance(value, ListV) and isinstance(classes, Ref) and classes.qualname.startswith("builtins."):
            return classes.leaf in (("tuple",) if value.is_tuple else ("list",))
        if isinstance(value, ParamV) and isinstance(classes, Ref):
            if classes.leaf in ("Parameter", "Tensor"):
                return True
            if classes.qualname.startswith("torch.nn."):
                return False
        return None

    # ---- stdlib

    def call_stdlib(self, q: str, leaf: str, args: Args, kwargs: Kwargs, node: ast.AST | None = None) -> Value | None:
        """``math.*`` on constants, ``OrderedDict(...)``, ``functools.partial(...)``, ``functools.reduce``,
        ``itertools.chain``; None for other names."""
        if q == "itertools.chain" and not kwargs:
            return _concatenated(self, list(args))
        if q == "itertools.pairwise" and len(args) == 1 and not kwargs:  # pairwise(sizes): (a, b), (b, c), ...
            seq = self.iterate(args[0])
            if seq is None:
                return ListV([], partial=True)
            return ListV([ListV([a, b], is_tuple=True) for a, b in zip(seq, seq[1:], strict=False)])
        if q == "itertools.chain.from_iterable" and len(args) == 1:
            outer = self.iterate(args[0])
            return _concatenated(self, outer) if outer is not None else ListV([], partial=True)
        if q == "functools.reduce" and node is not None and 2 <= len(args) <= 3 and not kwargs:
            # reduce(lambda h, layer: torch.sigmoid(layer(h)), self.layers, x): the fold, step by step
            items = self.iterate(args[1])
            if items is None or (len(args) == 2 and not items):
                return UNKNOWN
            acc, rest = (args[2], items) if len(args) == 3 else (items[0], items[1:])
            for item in rest:
                acc = self.call(args[0], [acc, item], {}, node)
            return acc
        if q.startswith("math.") and leaf in catalog.MATH and callable(catalog.MATH[leaf]):
            values = const_values(args)
            if values is not None and foldable(values) and \
                    not (leaf == "pow" and any(isinstance(v, (int, float)) and abs(v) > 64 for v in values[1:])):
                try:
                    return Const(catalog.MATH[leaf](*values))  # type: ignore[operator]
                except Exception:
                    return UNKNOWN
            return UNKNOWN
        if q.startswith("numpy.") and q.count(".") == 1 and \
                (known := numeric_arrays.numpy_function(leaf, args, kwargs)) is not None:
            return known  # np.linspace(256, 32, 12): layer widths, number by number
        if q.startswith("numpy."):
            read = next((a for a in args if isinstance(a, ReadOutV)), None)
            if read is not None:  # np.mean((out.detach().numpy() - y) ** 2): numbers of the model's values
                return ReadOutV(read.tensor, read.op)
            array = numpy_call(q, leaf, args, kwargs)  # data of known shape: np.random.randn(500, 200, 1)
            return array if array is not None else _numpy_number(leaf, args)
        if q == "json.loads" and len(args) == 1 and isinstance(args[0], Const) and isinstance(args[0].value, str):
            return _json_literal(args[0].value)
        if q in _YAML_LOADERS and len(args) == 1 and isinstance(args[0], Const) and isinstance(args[0].value, str) \
                and set(kwargs) <= {"Loader"}:
            return _yaml_literal(args[0].value)  # a YAML config kept as text in the file
        if q in ("tomllib.loads", "tomli.loads", "toml.loads") and len(args) == 1 and not kwargs \
                and isinstance(args[0], Const) and isinstance(args[0].value, str):
            return _toml_literal(args[0].value)
        if q in ("collections.OrderedDict", "typing.OrderedDict"):
            return _ordered_dict(args, kwargs)
        if q == "copy.deepcopy" and len(args) == 1 and not kwargs:
            copier = DeepCopier()
            copied = copier.copy(args[0])
            self.built.extend(copier.built)
            return copied
        if q in ("functools.partial",) and args:
            return PartialV(args[0], args[1:], kwargs)
        return call_config(self, q, leaf, args, kwargs, node)


_YAML_LOADERS = frozenset({"yaml.safe_load", "yaml.load", "yaml.full_load", "yaml.unsafe_load"})


def _json_literal(text: str) -> Value:
    """``json.loads('{"depth": 12}')`` of a literal string: its data (a file's contents stay unknown)."""
    if len(text) > 100_000:
        return UNKNOWN
    try:
        return lift(json.loads(text))
    except ValueError:
        return UNKNOWN


def _toml_literal(text: str) -> Value:
    """``tomllib.loads("[model]\\ndepth = 12")`` of a literal string, read by the standard library's
    tomllib (Python 3.11+; unknown on 3.10, which has none)."""
    if len(text) > 100_000:
        return UNKNOWN
    try:
        tomllib: Any = importlib.import_module("tomllib")  # the standard library's, from Python 3.11
    except ImportError:
        return UNKNOWN
    try:
        return lift(tomllib.loads(text))
    except ValueError:  # TOMLDecodeError is a ValueError
        return UNKNOWN


def _yaml_literal(text: str) -> Value:
    """``yaml.safe_load("depth: 12")`` of a literal string, read as PyYAML reads it (yaml_literal)."""
    try:
        return lift(yaml_literal.load(text))
    except ValueError:
        return UNKNOWN




def _layer_isinstance(value: LayerObj, classes: Value, exact: bool) -> bool | None:
    if isinstance(classes, Ref):
        leaf = classes.leaf
        if not (classes.qualname.startswith("torch.nn.") or classes.qualname.startswith("keras.")):
            return None if not exact else False
        if leaf in catalog.TORCH_ABSTRACT_BASES:
            group = catalog.TORCH_ABSTRACT_BASES[leaf]
            return True if group is None and not exact else (value.layer.op in group if group else exact is False)
        if leaf == "Layer" and classes.qualname.startswith("keras."):
            return not exact
        return value.layer.op == leaf
    if isinstance(classes, ClassV):
        return False
    return None


def _instance_isinstance(value: InstanceV, classes: Value, exact: bool) -> bool | None:
    if isinstance(classes, ClassV):
        if exact:
            return value.info is classes.info
        return classes.info in value.info.mro()
    if isinstance(classes, Ref):
        if classes.leaf in ("Module", "Layer", "Model") and not exact:
            return value.info.framework is not None
        if classes.leaf == "Sequential" and value.seq_items is not None:
            return True
        return False if classes.qualname.startswith(("torch.nn.", "keras.")) else None
    return None


def _ordered_dict(args: Args, kwargs: Kwargs) -> Value:
    if args and isinstance(args[0], ListV):
        out = DictV({}, args[0].partial)
        for pair in args[0].items:
            if isinstance(pair, ListV) and len(pair.items) == 2 and isinstance(pair.items[0], Const):
                out.items[pair.items[0].value] = pair.items[1]
            else:
                out.partial = True
        return out
    if args and isinstance(args[0], DictV):
        return DictV(dict(args[0].items), args[0].partial)
    return DictV(dict(kwargs))


def _reduce(interp: BuiltinsMixin, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    """min/max/sum over one iterable of constants; ``sum(lists, [])`` concatenates lists of layers."""
    if name == "sum" and len(args) == 2 and isinstance(args[1], ListV):
        return _concatenated(interp, [args[1], *(interp.iterate(args[0]) or [UNKNOWN])])
    if len(args) != 1:
        return UNKNOWN
    items = interp.iterate(args[0])
    numeric = (int, float)
    if name == "sum" and items and any(isinstance(i, TensorV) for i in items) \
            and all(isinstance(i, TensorV) or isinstance(i, Const) and isinstance(i.value, numeric) for i in items):
        # sum(torch.relu(b(x)) for b in self.branches): the branches added up, as ``+`` adds them
        acc = items[0]
        for item in items[1:]:
            acc = interp.binop(ast.Add(), acc, item, node)
        return acc
    values = const_values(items) if items is not None else None
    if values:
        try:
            return Const(_FOLDED[name](values))
        except Exception:
            return UNKNOWN
    return UNKNOWN

def _concatenated(interp: BuiltinsMixin, parts: list[Value]) -> Value:
    """The items of iterables one after the other (``sum(blocks, [])``, ``itertools.chain``); a part
    that cannot be iterated leaves the result partial."""
    items: list[Value] = []
    partial = False
    for part in parts:
        found = interp.iterate(part)
        if found is None or isinstance(part, (ListV, ContainerV)) and part.partial:
            partial = True
        items.extend(found or [])
    return ListV(items, partial=partial)


def _sequence(interp: BuiltinsMixin, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    """list/tuple/set/sorted/reversed of an iterable."""
    if not args:
        return ListV([])
    items = interp.iterate(args[0])
    if items is None:
        if isinstance(args[0], TensorV):
            return args[0]
        return ListV([], partial=True)
    if name == "reversed":
        items = items[::-1]
    values = const_values(items) if name == "sorted" else None
    if values is not None:
        try:
            items = [Const(v) for v in sorted(values)]
        except Exception:
            pass
    return ListV(items, is_tuple=name == "tuple")

def _enumerate(interp: BuiltinsMixin, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    items = interp.iterate(args[0]) if args else None
    if items is None:
        return UNKNOWN
    consts = [a.value for a in args if isinstance(a, Const)]
    start = consts[1] if len(consts) > 1 else 0
    return ListV([ListV([Const(i + start), v], is_tuple=True) for i, v in enumerate(items)])

def _zip(interp: BuiltinsMixin, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    lists = [interp.iterate(a) for a in args]
    if any(item is None for item in lists):
        return UNKNOWN
    return ListV([ListV(list(group), is_tuple=True) for group in zip(*lists, strict=False)])  # type: ignore[arg-type]

def _map(interp: BuiltinsMixin, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    """``map(f, xs)`` / ``map(f, xs, ys)``: ``f`` called on each item (the shortest iterable's length)."""
    if len(args) < 2 or kwargs:
        return UNKNOWN
    lists = [interp.iterate(a) for a in args[1:]]
    if any(items is None for items in lists):
        return UNKNOWN
    return ListV([interp.call(args[0], list(group), {}, node) for group in zip(*lists, strict=False)])

def _getattr(interp: BuiltinsMixin, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    if not (len(args) >= 2 and isinstance(args[1], Const) and isinstance(args[1].value, str)):
        return UNKNOWN
    if isinstance(args[0], LayerObj) and len(args) == 3:
        flag = _layer_flag(interp, args[0], args[1].value)
        if flag is not None:
            return flag if flag is not _ABSENT else args[2]
    value = interp.get_attribute(args[0], args[1].value)
    if isinstance(value, (UnknownV, MethodV)) and len(args) == 3 and not isinstance(args[0], InstanceV):
        return args[2] if isinstance(value, UnknownV) else value
    if isinstance(value, MethodV) and isinstance(args[0], InstanceV) and len(args) == 3:
        return args[2]
    return value

_ABSENT = UnknownV("attribute not set on this layer")


def _layer_flag(interp: BuiltinsMixin, obj: LayerObj, attr: str) -> Value | None:
    """What ``getattr(layer, attr, default)`` / ``hasattr(layer, attr)`` find beyond the layer's own
    parameters: a flag the file set on it (``fc2.is_last = True``); ``_ABSENT`` for a flag the file
    sets on other layers but not on this one (the hook's ``else``); UNKNOWN for a name the file never
    sets that is no layer method gradlint knows (it may be any framework attribute: never guessed
    present); None: answer as for any attribute (parameters, sizes, methods)."""
    if attr in obj.attrs:
        return obj.attrs[attr]
    value = interp.get_attribute(obj, attr)
    if not isinstance(value, MethodV):
        return None
    if attr in interp.layer_flags:
        return _ABSENT
    return None if attr in catalog.LAYER_METHODS else UNKNOWN


def _setattr(interp: BuiltinsMixin, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    if len(args) == 3 and isinstance(args[1], Const) and isinstance(args[1].value, str):
        interp.set_attribute(args[0], args[1].value, args[2], node)
    return Const(None)

def _hasattr(interp: BuiltinsMixin, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    if not (len(args) == 2 and isinstance(args[1], Const)):
        return UNKNOWN
    obj, attr = args[0], args[1].value
    if isinstance(obj, LayerObj) and isinstance(attr, str):
        flag = _layer_flag(interp, obj, attr)
        if flag is _ABSENT:
            return Const(False)
        if flag is not None:
            return UNKNOWN if isinstance(flag, UnknownV) else Const(True)
    if isinstance(obj, LayerObj):
        return _layer_hasattr(obj.layer, attr)
    if isinstance(obj, InstanceV) and (attr in obj.attrs or obj.info.find_method(attr)):
        return Const(True)
    return UNKNOWN


#: torch modules with a ``weight`` attribute (a tensor, or None when not affine): weight layers, norms but
#: the local-response ones, PReLU. A recurrent layer has ``weight_ih_l0``/``weight_hh_l0``, attention
#: ``in_proj_weight``, a pass-through (Identity, Flatten, Upsample) or a GLU none.
_TORCH_WEIGHTED = (LayerKind.DENSE, LayerKind.CONV, LayerKind.EMBEDDING)
_NO_WEIGHT_NORMS = frozenset({"LocalResponseNorm", "CrossMapLRN2d"})


def _layer_hasattr(layer: Layer, attr: object) -> Value:
    """``hasattr(module, attr)`` on a layer object, as the framework's class answers it."""
    kind = layer.kind
    if kind == LayerKind.UNKNOWN or not isinstance(attr, str):
        return UNKNOWN
    if layer.framework == "keras":  # Keras layers: kernel / bias / recurrent_kernel, never weight
        if attr == "weight":
            return Const(False)
        if attr == "kernel" and kind in (LayerKind.DENSE, LayerKind.CONV):
            return Const(True)
        if attr == "bias" and kind in (LayerKind.DENSE, LayerKind.CONV):
            return Const(layer.bias is not False)
        return UNKNOWN
    if attr == "weight":
        if kind == LayerKind.NORMALIZATION:
            return Const(layer.op not in _NO_WEIGHT_NORMS)
        return Const(kind in _TORCH_WEIGHTED or (kind == LayerKind.ACTIVATION and layer.op == "PReLU"))
    if attr == "bias":
        if kind in _PARAMETERLESS or kind in (LayerKind.ATTENTION, LayerKind.OTHER):
            return Const(False)
        if kind == LayerKind.NORMALIZATION and layer.op in _NO_WEIGHT_NORMS:
            return Const(False)
        return Const(layer.bias is not False)  # a recurrent layer's bias is its constructor flag
    if kind == LayerKind.RECURRENT and attr.startswith(("weight_ih_l", "weight_hh_l")):
        return Const(True)
    if kind == LayerKind.RECURRENT and attr.startswith(("bias_ih_l", "bias_hh_l")):
        return Const(layer.bias is not False)
    if attr == "reset_parameters":
        return Const(kind in _TORCH_WEIGHTED or kind in (LayerKind.NORMALIZATION, LayerKind.RECURRENT)
                     or layer.op == "PReLU")
    return UNKNOWN


def _dict(interp: BuiltinsMixin, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    if args and isinstance(args[0], DictV):
        return DictV(dict(args[0].items) | {k: v for k, v in kwargs.items()}, args[0].partial)
    return DictV(dict(kwargs))


def _isinstance(interp: BuiltinsMixin, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    if len(args) != 2:
        return UNKNOWN
    result = interp.isinstance_check(args[0], args[1], exact=False)
    return Const(result) if result is not None else UNKNOWN


def _type(interp: BuiltinsMixin, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    return TypeV(args[0]) if len(args) == 1 else UNKNOWN


def _super(interp: BuiltinsMixin, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    return SuperV(interp.frame.cls, interp.frame.self_val)


def _none(interp: BuiltinsMixin, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    return Const(None)


def _staticmethod(interp: BuiltinsMixin, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    """``act = staticmethod(torch.sigmoid)`` in a class body: ``self.act`` is the function itself."""
    return args[0] if len(args) == 1 and not kwargs else UNKNOWN


def _vars(interp: BuiltinsMixin, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    found = namespace_dict(args[0]) if len(args) == 1 else None
    return found if found is not None else UNKNOWN


def _callable(interp: BuiltinsMixin, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    if not args:
        return UNKNOWN
    return Const(isinstance(args[0], (FunctionV, BoundV, Ref, ClassV, LayerObj, ContainerV, InstanceV)))


_HANDLERS: dict[str, Handler] = {
    "min": _reduce, "max": _reduce, "sum": _reduce,
    "list": _sequence, "tuple": _sequence, "set": _sequence, "sorted": _sequence, "reversed": _sequence,
    "dict": _dict, "enumerate": _enumerate, "zip": _zip, "map": _map, "isinstance": _isinstance, "type": _type,
    "getattr": _getattr, "setattr": _setattr, "hasattr": _hasattr, "super": _super,
    "print": _none, "delattr": _none, "callable": _callable, "vars": _vars, "staticmethod": _staticmethod,
}


_NUMPY_SCALAR = {"sqrt": math.sqrt, "exp": math.exp, "log": math.log, "square": lambda v: v * v, "abs": abs,
                 "float32": float, "float64": float, "int32": int, "int64": int}


def _numpy_number(name: str, args: Args) -> Value | None:
    """``np.sqrt(2.0 / n)``, ``np.prod(shape[:-1])``: numbers that set init scales (TF code computes its
    stddevs with numpy); None for everything else numpy does."""
    if name == "prod" and len(args) == 1:
        source = args[0]
        raw: list[object] | None = None
        if isinstance(source, Const) and isinstance(source.value, tuple):
            raw = list(source.value)
        elif isinstance(source, ListV) and not source.partial:
            raw = [i.value if isinstance(i, Const) else None for i in source.items]
        numeric = raw is not None and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw)
        if raw is None or len(raw) > 64 or not numeric:
            return None
        return Const(math.prod(raw))  # type: ignore[arg-type]
    fn = _NUMPY_SCALAR.get(name)
    if fn is None or len(args) != 1 or not isinstance(args[0], Const):
        return None
    value = args[0].value
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or abs(value) > 1e12:
        return None
    try:
        result = fn(value)  # type: ignore[operator]
    except (ValueError, OverflowError):
        return None
    return Const(result) if isinstance(result, (int, float)) and math.isfinite(result) else None
