"""Small pure helpers over abstract values: spans, numbers, tensors among call arguments, and
how two values an undecidable condition could produce are merged."""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from gradlint.extract import catalog
from gradlint.extract.paths import blocked, stops_made
from gradlint.extract.state import MAX_LIST_ITEMS
from gradlint.extract.values import (
    UNKNOWN,
    Const,
    ContainerV,
    DictV,
    InstanceV,
    LayerObj,
    ListV,
    MethodV,
    ParamV,
    Ref,
    TensorV,
    TypeV,
    UnknownV,
    Value,
)
from gradlint.gradflow import relu_family
from gradlint.model import Layer, LayerKind, Node, Span

# Project modules read for a linted file have their line numbers shifted by file_id × this base
# (``gradlint.extract.project``): any span made from their syntax is recognised as foreign.
FOREIGN_LINE_BASE = 1 << 24
_FOREIGN_FILES: list[str] = [""]  # file id -> path (id 0: the linted file itself)


def register_foreign_file(path: str) -> int:
    _FOREIGN_FILES.append(path)
    return len(_FOREIGN_FILES) - 1


def foreign_file_of(node: ast.AST) -> str | None:
    line = getattr(node, "lineno", 1)
    return _FOREIGN_FILES[line // FOREIGN_LINE_BASE] if line >= FOREIGN_LINE_BASE else None


class Anchor:
    """Where in the linted file the code being interpreted was reached from: the innermost call
    of the linted file under evaluation (else its current statement, or a model's own span while
    its forward runs). Spans of a project module's syntax are placed there."""

    __slots__ = ("node", "stmt", "span")

    def __init__(self) -> None:
        self.node: ast.AST | None = None
        self.stmt: ast.AST | None = None
        self.span: Span | None = None

    def reset(self) -> None:
        self.node = self.stmt = self.span = None

    def here(self) -> Span:
        if self.span is not None:
            return self.span
        node = self.node if self.node is not None else self.stmt
        return _local_span(node) if node is not None else Span(1, 0, 1, 0)


ANCHOR = Anchor()


def _local_span(node: ast.AST) -> Span:
    line = getattr(node, "lineno", 1)
    col = getattr(node, "col_offset", 0)
    return Span(line, col, getattr(node, "end_lineno", None) or line, getattr(node, "end_col_offset", None) or col)


def unparsed(node: ast.AST) -> str:
    """``ast.unparse(node)``, kept on the node: the interpreter evaluates the same call once per
    model built from it (a model zoo's init helper, thousands of times per file)."""
    text = node.__dict__.get("_gradlint_unparsed")
    if text is None:
        text = node.__dict__["_gradlint_unparsed"] = ast.unparse(node)
    return text


def source_text(node: ast.AST, limit: int = 48) -> str:
    """The expression as written, shortened, to say which call an UNKNOWN came from."""
    try:
        text = unparsed(node)
    except (ValueError, TypeError, RecursionError):
        return "?"
    return text if len(text) <= limit else text[: limit - 3] + "..."
def span_of(node: ast.AST) -> Span:
    line = getattr(node, "lineno", 1)
    if line < FOREIGN_LINE_BASE:  # kept on the node: a Span is immutable, and a loop asks for one per iteration
        memo = getattr(node, "__dict__", None)
        found = memo.get("_gradlint_span") if memo is not None else None
        if found is None:
            col = getattr(node, "col_offset", 0)
            end_line = getattr(node, "end_lineno", None) or line
            found = Span(line, col, end_line, getattr(node, "end_col_offset", None) or col)
            if memo is not None:
                memo["_gradlint_span"] = found
        return found  # type: ignore[no-any-return]
    file_id, real = divmod(line, FOREIGN_LINE_BASE)
    here = ANCHOR.here()
    return Span(here.line, here.col, here.end_line, here.end_col, origin=(_FOREIGN_FILES[file_id], real))


def merge_envs(a: dict[str, Value], b: dict[str, Value]) -> dict[str, Value]:
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
        elif out[key] is not value:
            out[key] = prefer(out[key], value)
    return out


def _informative(value: Value) -> int:
    if isinstance(value, UnknownV):
        return 0
    if isinstance(value, Const) and value.value is None:
        return 1
    if isinstance(value, TensorV):
        unknown = any(isinstance(n, Layer) and n.kind == LayerKind.UNKNOWN for n in value.nodes[-1:])
        return 2 if unknown else 4
    if isinstance(value, LayerObj) and value.layer.kind == LayerKind.OTHER and value.layer.op == "Identity":
        return 2
    return 3


def prefer(a: Value, b: Value) -> Value:
    """Of two values an undecidable condition could produce, the more informative (then-branch on ties)."""
    return a if _informative(a) >= _informative(b) else b


def is_none(value: Value) -> bool | None:
    if isinstance(value, Const):
        return value.value is None
    if isinstance(value, UnknownV):
        return None
    return False


def is_module(value: Value) -> bool:
    return isinstance(value, (LayerObj, ContainerV, InstanceV))


def first_tensor(args: list[Value], kwargs: dict[str, Value]) -> TensorV | None:
    """The first tensor among the arguments (inside a list argument too). When several are given and
    the first one's gradient is stopped, the first live one: a call that keeps one path keeps a
    route the gradient takes (``f(x.detach(), h)`` still trains what ``h`` comes from)."""
    found: TensorV | None = None
    for value in list(args) + list(kwargs.values()):
        items = value.items if isinstance(value, ListV) else (value,)
        for item in items:
            if not isinstance(item, TensorV):
                continue
            if found is None:
                found = item
                if not blocked(found.nodes):  # free while the file made no gradient stop
                    return found
            elif not blocked(item.nodes):
                return item
    return found


def flatten_args(args: Iterable[Value]) -> Iterator[Value]:
    for arg in args:
        if isinstance(arg, ListV):
            yield from arg.items
        else:
            yield arg


def all_tensors(value: Value, depth: int = 0) -> list[TensorV]:
    """Every tensor in a value (a tuple, list or dict of outputs, nested)."""
    if isinstance(value, TensorV):
        return [value]
    if depth < 8 and isinstance(value, (ListV, DictV)):
        items = value.items if isinstance(value, ListV) else list(value.items.values())
        return [t for item in items for t in all_tensors(item, depth + 1)]
    return []


def side_routes(result: Value, main: TensorV | None, escaped: list[TensorV]) -> list[Sequence[Node]]:
    """The paths of the other tensors a forward returns, stores or hands to a loss, when a gradient
    stop makes them matter (otherwise none: they change nothing the rules read)."""
    if main is None or not stops_made():
        return []
    seen = {id(main)}
    routes: list[Sequence[Node]] = []
    for other in all_tensors(result) + escaped:
        if id(other) not in seen and other.nodes:
            seen.add(id(other))
            routes.append(other.nodes)
    return routes


def longest_tensor(value: Value) -> TensorV | None:
    if isinstance(value, TensorV):
        return value
    if isinstance(value, (ListV, DictV)):
        items = value.items if isinstance(value, ListV) else list(value.items.values())
        tensors = [t for t in (longest_tensor(i) for i in items) if t is not None]
        if tensors:
            # Path length, not weight depth: O(1) per candidate (an RNN's (out, hidden) inside a long
            # loop made this quadratic).
            # A live output before a stopped one (``return p, z.detach()``): the main path is one the
            # gradient takes.
            return max(tensors, key=lambda t: (not blocked(t.nodes), len(t.nodes)))
    return None


def shape_of(args: list[Value]) -> tuple[int, ...] | None:
    dims: list[int] = []
    for arg in args:
        if isinstance(arg, Const) and isinstance(arg.value, int) and not isinstance(arg.value, bool):
            dims.append(arg.value)
        elif isinstance(arg, Const) and isinstance(arg.value, tuple) and all(isinstance(d, int) for d in arg.value):
            dims.extend(arg.value)
        elif isinstance(arg, ListV) and (ints := const_values(arg.items)) is not None and \
                all(isinstance(d, int) for d in ints):
            dims.extend(ints)
        else:
            return None
    return tuple(dims) or None


def group_norm_stats(groups: int | None, channels: int | None) -> str | None:
    """What a group norm's statistics are over, from its literal group and channel counts: one channel
    per group is InstanceNorm (per example and channel: the per-channel offsets a sigmoid or ReLU
    input leaves go, as under BatchNorm), one group is LayerNorm over every channel (they stay);
    None for the groups in between (read as LayerNorm from the op) or counts not known."""
    if groups is not None and channels is not None and groups == channels:
        return "batch"
    if groups == 1:
        return "layer"
    return None


def positive_int(value: Value | None) -> int | None:
    """A positive integer size (a width of 0 or less is no width at all)."""
    if isinstance(value, Const) and isinstance(value.value, int) and not isinstance(value.value, bool) \
            and value.value > 0:
        return value.value
    return None


WIDE_FORMAT = re.compile(r"\d{5,}")


def safe_string_call(text: str, method: str, args: list[Any]) -> bool:
    """String methods whose result could be huge are not folded."""
    if method == "format" and WIDE_FORMAT.search(text):
        return False
    if method == "replace" and len(args) >= 2 and isinstance(args[1], str):
        return len(text) * max(1, len(args[1])) <= MAX_LIST_ITEMS * 10
    return foldable(args)


def foldable(args: list[Any]) -> bool:
    """Constant folding calls the real function: refuse inputs that would take it minutes."""
    for arg in args:
        if isinstance(arg, range) and (arg.stop - arg.start) // (arg.step or 1) > MAX_LIST_ITEMS:
            return False  # (not len(): it raises OverflowError beyond sys.maxsize items)
        if isinstance(arg, int) and arg.bit_length() > 256:
            return False
        if isinstance(arg, (str, bytes, tuple, list)) and len(arg) > MAX_LIST_ITEMS:
            return False
    return True


def number(value: Value | None, default: float, limit: float = 1e6) -> float:
    if isinstance(value, Const) and isinstance(value.value, (int, float)) and not isinstance(value.value, bool) \
            and math.isfinite(value.value) and abs(value.value) <= limit:
        return float(value.value)
    return default


def param_dims(param: ParamV) -> tuple[int | None, ...] | None:
    """The leading dimensions of a parameter's tensor as torch lays it out, where known: a free
    parameter's stated shape; ``nn.Linear``'s weight (out_features, in_features) and bias (out_features,);
    a (non-transposed) conv weight's (out_channels, in_channels / groups), its kernel dims left out
    (``receptive`` keeps only their product). None: not known."""
    layer = param.owner
    if layer is None:
        return param.shape
    if layer.framework != "torch" or param.role not in ("weight", "bias"):
        return None
    if layer.op == "Linear":
        return (layer.fan_out, layer.fan_in) if param.role == "weight" else (layer.fan_out,)
    if layer.kind == LayerKind.CONV and layer.receptive and "Transpose" not in layer.op and param.role == "weight":
        area = layer.receptive
        return (layer.fan_out // area if layer.fan_out else None, layer.fan_in // area if layer.fan_in else None)
    return None


def param_size(param: ParamV, args: Sequence[Value]) -> Value:
    """``w.size()`` / ``w.size(i)`` (and ``w.shape``: no ``args``) from ``param_dims``; UNKNOWN where
    not known (a conv's kernel dims, a negative index into them)."""
    dims = param_dims(param)
    if dims is None:
        return UNKNOWN
    complete = param.owner is None or param.owner.op == "Linear"
    if not args:
        return ListV([Const(d) for d in dims], is_tuple=True) if complete and all(dims) else UNKNOWN
    index = args[0]
    if not isinstance(index, Const) or not isinstance(index.value, int) or isinstance(index.value, bool):
        return UNKNOWN
    i = index.value
    if not (0 <= i < len(dims) or (complete and -len(dims) <= i < 0)):
        return UNKNOWN
    found = dims[i]
    return Const(found) if found else UNKNOWN


def dropout_rate(value: Value | None, default: float | None) -> float | None:
    """A dropout layer's drop probability: a literal in [0, 1] (1 drops everything: a beginner's bug the
    estimate reports), ``default`` when not given, else None."""
    if value is None:
        return default
    rate = number(value, math.nan)
    return rate if 0.0 <= rate <= 1.0 else None


_TORCH_RECURRENT_PARAM = re.compile(r"(weight|bias)_(ih|hh)(_l\d+)?(_reverse)?")


def recurrent_param_role(layer: Layer, attr: str) -> str | None:
    """The role of a torch RNN/LSTM/GRU(Cell) parameter named ``attr``: ``weight`` for the input
    kernels (weight_ih_l*), ``recurrent`` for the hidden-to-hidden ones (weight_hh_l*), ``bias``
    for either bias; None for any other name. All layers of a stack share the layer's inits."""
    if layer.kind != LayerKind.RECURRENT or layer.framework != "torch":
        return None
    match = _TORCH_RECURRENT_PARAM.fullmatch(attr)
    if match is None:
        return None
    if match.group(1) == "bias":
        return "bias"
    return "recurrent" if match.group(2) == "hh" else "weight"


def stride_area(value: Value | None, dims: int) -> int | None:
    """∏ strides of a conv (``stride=2``, ``stride=(2, 1)``; 1 when not given); None when not literal."""
    if value is None or is_none(value):
        return 1
    if isinstance(value, Const) and isinstance(value.value, int) and not isinstance(value.value, bool):
        return value.value ** dims if value.value > 0 else None
    if isinstance(value, Const) and isinstance(value.value, tuple) and len(value.value) == dims \
            and all(isinstance(v, int) and v > 0 for v in value.value):
        return math.prod(value.value)
    return None


def param_ndim(layer: Layer, role: str) -> int:
    if role == "bias" or layer.kind == LayerKind.NORMALIZATION:
        return 1
    return 2


def activation_of(value: Value) -> str | None:
    if isinstance(value, Const) and isinstance(value.value, str):
        return catalog.canonical_activation(value.value)
    if isinstance(value, Ref):
        return catalog.canonical_activation(value.leaf)
    if isinstance(value, LayerObj) and value.layer.kind == LayerKind.ACTIVATION:
        return value.layer.activation
    return None


def is_property(fnode: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id in ("property", "cached_property") for d in fnode.decorator_list)


def method_binding(fnode: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """``"static"`` (``@staticmethod``: called without ``self``), ``"class"`` (``@classmethod``: the
    class comes first) or ``"instance"``."""
    for d in fnode.decorator_list:
        if isinstance(d, ast.Name) and d.id in ("staticmethod", "classmethod"):
            return d.id[:-len("method")]
    return "instance"


def const_values(values: Iterable[Value]) -> list[Any] | None:
    """The Python values of ``values`` when every one is a constant, else None."""
    out = []
    for value in values:
        if not isinstance(value, Const):
            return None
        out.append(value.value)
    return out


def shape_dims(value: Value | None) -> tuple[int | None, ...] | None:
    """A shape as written: ``[None, 784]``, ``(n_in, n_out)``, ``[3, 3, c, 16]``; unknown entries None."""
    if isinstance(value, Const):
        if isinstance(value.value, tuple):
            return tuple(d if isinstance(d, int) and not isinstance(d, bool) and d >= 0 else None for d in value.value)
        if isinstance(value.value, int) and not isinstance(value.value, bool):
            return (value.value,) if value.value >= 0 else (None,)
        return None
    if isinstance(value, ListV) and not value.partial:
        return tuple(i.value if isinstance(i, Const) and isinstance(i.value, int) and not isinstance(i.value, bool)
                     and i.value >= 0 else None for i in value.items)
    return None


def relu_family_member(framework: str, name: str, bound: dict[str, Value]) -> tuple[str, float | None] | None:
    """(activation, parameter) that the arguments ``bound`` (by name) of a ReLU-family spelling pick
    (``catalog.RELU_FAMILY_ARGS``); None when ``name`` is no such spelling. An argument that is not a
    literal number, or a member the estimator does not model, gives ("unknown", None): no guess."""
    spec = catalog.RELU_FAMILY_ARGS.get((framework, name.rstrip("_")))
    if spec is None:
        return None
    roles: dict[str, float | None] = {}
    for arg, (role, default) in spec.items():
        value = bound.get(arg)
        if value is None or isinstance(value, Const) and value.value is None and role == "cap":
            if default is None and role != "cap":
                return "unknown", None
            roles[role] = default
        elif isinstance(value, Const) and isinstance(value.value, (int, float)) and not isinstance(value.value, bool):
            roles[role] = float(value.value)
        else:
            return "unknown", None
    member = relu_family(threshold=roles.get("threshold") or 0.0, cap=roles.get("cap"),
                         slope=roles.get("slope") or 0.0, below=roles.get("below"))
    return member if member is not None else ("unknown", None)


def layer_attribute(obj: LayerObj, attr: str) -> Value:
    """``layer.weight``, ``layer.in_features``, ``lstm.weight_hh_l0``: what a framework layer's attribute is."""
    if attr in obj.attrs:
        return obj.attrs[attr]
    if attr in ("weight", "bias"):
        return ParamV(obj.layer, attr, ndim=param_ndim(obj.layer, attr))
    role = recurrent_param_role(obj.layer, attr)
    if role is not None:  # lstm.weight_hh_l0, rnn.weight_ih_l1_reverse, cell.bias_hh
        return ParamV(obj.layer, role, ndim=param_ndim(obj.layer, role))
    if attr == "__class__":
        return TypeV(obj)
    if attr in ("in_features", "in_channels") and obj.layer.fan_in is not None:
        return Const(obj.layer.fan_in // (obj.layer.receptive or 1))
    if attr in ("out_features", "out_channels", "units", "filters", "embedding_dim"):
        if obj.layer.fan_out is None:
            return UNKNOWN
        # a conv's fan_out is out_channels × its kernel area (``receptive``)
        return Const(obj.layer.fan_out // (obj.layer.receptive or 1) if obj.layer.kind == LayerKind.CONV
                     else obj.layer.fan_out)
    if attr == "kernel_size" and obj.layer.kind == LayerKind.CONV and obj.layer.framework == "torch" \
            and obj.layer.window is not None and obj.layer.window.kernel:
        return ListV([Const(k) for k in obj.layer.window.kernel], is_tuple=True)  # torch keeps it as a tuple
    return MethodV(obj, attr)


def param_attribute(obj: ParamV, attr: str) -> Value:
    """``w.data``, ``w.ndim``, ``w.shape`` of a parameter; other names are its methods."""
    if attr == "data":
        return obj
    if attr in ("ndim",):
        return Const(obj.ndim) if obj.ndim is not None else UNKNOWN
    if attr == "shape":
        return param_size(obj, ())
    return MethodV(obj, attr)
