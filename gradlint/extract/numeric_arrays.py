"""Short 1-D numpy arrays whose numbers are known: layer widths a script computes with numpy.

``sizes = np.linspace(256, 32, 12).astype(int)``, ``np.geomspace(512, 16, num=8)``,
``np.arange(64, 512, 64)`` and ``np.logspace(...)`` on literal numbers are arrays of up to
``MAX_VALUES`` numbers that ``for`` loops, ``zip``, ``itertools.pairwise``, indexing and slicing read
one by one, as they read a list: the widths of the layers built from them. ``.astype(int)``,
``.tolist()``, ``np.round`` / ``np.floor`` / ``np.ceil``, ``np.array([...])`` of literal numbers and
arithmetic with a number keep them known. Any other use of the array sees the data tensor of its
shape (``data_shapes``), as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from gradlint.extract.api import Args, Kwargs
from gradlint.extract.values import Const, ListV, Ref, TensorConstV, Value
from gradlint.model import Init

# Longer arrays are data (a time axis, a grid of inputs), not layer widths: their numbers stay unread.
MAX_VALUES = 512

Number = int | float

_INT_DTYPES = frozenset({"int", "int8", "int16", "int32", "int64", "int_", "intc", "intp", "uint8", "uint16",
                         "uint32", "uint64", "long", "short"})
_FLOAT_DTYPES = frozenset({"float", "float16", "float32", "float64", "float_", "double", "half", "single"})
_ROUNDING: dict[str, Callable[[float], Number]] = {
    "round": round, "rint": round, "around": round, "floor": math.floor, "ceil": math.ceil,
             "trunc": math.trunc, "fix": math.trunc}


def array(values: list[Number]) -> TensorConstV | None:
    """The array of these numbers; None when too long or a number is not finite or huge."""
    if len(values) > MAX_VALUES or not all(abs(v) < 1e15 for v in values):  # abs(nan) < x is False too
        return None
    return TensorConstV(Init("unknown"), (len(values),), values=tuple(values))


def _number(value: Value | None) -> Number | None:
    if isinstance(value, Const) and isinstance(value.value, (int, float)) and not isinstance(value.value, bool):
        return value.value
    return None


def _dtype(value: Value | None) -> type | None:
    """int / float for a numpy or builtin dtype argument (``dtype=int``, ``np.int32``, ``"int64"``); None
    when absent or another type."""
    name: str | None = None
    if isinstance(value, Ref):
        name = value.qualname.rsplit(".", 1)[-1]
    elif isinstance(value, Const) and isinstance(value.value, str):
        name = value.value
    if name in _INT_DTYPES:
        return int
    if name in _FLOAT_DTYPES:
        return float
    return None


def spaced(leaf: str, args: Args, kwargs: Kwargs) -> TensorConstV | None:
    """``np.linspace`` / ``np.geomspace`` / ``np.logspace`` / ``np.arange`` on literal numbers, computed as
    numpy computes them; None when an argument is not a literal or the array is long."""
    names = {"linspace": ("start", "stop", "num", "endpoint"), "geomspace": ("start", "stop", "num", "endpoint"),
             "logspace": ("start", "stop", "num", "endpoint", "base"), "arange": ("start", "stop", "step")}.get(leaf)
    if names is None or len(args) > len(names):
        return None
    given = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key not in names and key != "dtype":
            return None
        given[key] = value
    params = {key: value for key, value in given.items() if key != "dtype"}
    flag = params.pop("endpoint", None)
    endpoint = True
    if flag is not None:
        if leaf == "arange" or not (isinstance(flag, Const) and isinstance(flag.value, bool)):
            return None
        endpoint = flag.value
    numbers = {key: _number(value) for key, value in params.items()}
    if any(v is None for v in numbers.values()):
        return None
    dtype = _dtype(kwargs.get("dtype")) if "dtype" in kwargs else None
    if "dtype" in kwargs and dtype is None:
        return None
    try:
        values = _arange(numbers, len(args)) if leaf == "arange" else _spaced(leaf, numbers, bool(endpoint))
    except (ValueError, OverflowError, ZeroDivisionError):
        return None
    if values is None:
        return None
    if dtype is int:
        # numpy rounds linspace towards -inf for an integer dtype; the others are cast (towards 0)
        values = [math.floor(v) if leaf == "linspace" else math.trunc(v) for v in values]
    elif dtype is float:
        values = [float(v) for v in values]
    return array(values)


def _arange(n: dict[str, Number | None], positional: int) -> list[Number] | None:
    if positional == 1 and "stop" not in n:  # np.arange(stop)
        n = {"start": 0, "stop": n.get("start"), "step": n.get("step", 1)}
    start, stop, step = n.get("start", 0), n.get("stop"), n.get("step", 1)
    if start is None or stop is None or step is None or step == 0:
        return None
    count = math.ceil((stop - start) / step)
    if count <= 0 or count > MAX_VALUES:
        return None
    return [start + i * step for i in range(count)]


def _spaced(leaf: str, n: dict[str, Number | None], endpoint: bool) -> list[Number] | None:
    start, stop, num = n.get("start"), n.get("stop"), n.get("num", 50)
    if start is None or stop is None or not isinstance(num, int) or num <= 0 or num > MAX_VALUES:
        return None
    div = (num - 1) if endpoint else num
    if leaf == "geomspace":
        if start == 0 or stop == 0 or (start < 0) != (stop < 0):
            return None
        sign = -1.0 if start < 0 else 1.0
        lo, hi = math.log10(abs(start)), math.log10(abs(stop))
        out = [sign * 10 ** (lo + i * (hi - lo) / div) if div else sign * abs(start) for i in range(num)]
        out[0] = float(start)
        if endpoint and num > 1:
            out[-1] = float(stop)
        return out
    step = (stop - start) / div if div else 0.0
    out = [start + i * step for i in range(num)]
    if endpoint and num > 1:
        out[-1] = stop
    if leaf == "logspace":
        base = n.get("base", 10.0)
        if base is None or base <= 0:
            return None
        return [float(base) ** v for v in out]
    return [float(v) for v in out]


# torch's names for numpy's parameters (torch.linspace(start, end, steps), torch.arange(start, end, step))
_TORCH_PARAMS = {"end": "stop", "steps": "num"}
_TORCH_EXTRA = frozenset({"device", "requires_grad", "layout", "out"})


def torch_spaced(leaf: str, args: Args, kwargs: Kwargs) -> TensorConstV | None:
    """``torch.linspace`` / ``torch.logspace`` / ``torch.arange`` on literal numbers (float32 in torch: a
    width within a unit of numpy's); None otherwise."""
    if leaf not in ("linspace", "logspace", "arange"):
        return None
    grad = kwargs.get("requires_grad")
    if grad is not None and not (isinstance(grad, Const) and grad.value is False):
        return None
    renamed = {_TORCH_PARAMS.get(k, k): v for k, v in kwargs.items() if k not in _TORCH_EXTRA}
    if "dtype" in renamed and _dtype(renamed["dtype"]) is None:
        return None
    return spaced(leaf, args, renamed)


def numpy_function(leaf: str, args: Args, kwargs: Kwargs) -> TensorConstV | None:
    """``np.round(a)`` / ``np.floor(a)`` / ``np.array(a)`` / ``np.int32(a)`` of an array of known numbers, and
    ``np.array([64, 32, 16])`` of literal numbers; None otherwise."""
    if (made := spaced(leaf, args, kwargs)) is not None:
        return made
    if len(args) != 1:
        return None
    source = args[0]
    if leaf in ("array", "asarray") and isinstance(source, ListV) and not source.partial:
        numbers = [_number(item) for item in source.items]
        if any(v is None for v in numbers):
            return None
        made = array([v for v in numbers if v is not None])
        return cast(made, kwargs.get("dtype")) if made is not None and "dtype" in kwargs else made
    if not isinstance(source, TensorConstV) or source.values is None:
        return None
    if leaf in ("array", "asarray", "copy"):
        return cast(source, kwargs.get("dtype")) if "dtype" in kwargs else source
    if leaf in _ROUNDING and not kwargs:
        rounding = _ROUNDING[leaf]
        return array([rounding(v) if leaf in ("floor", "ceil", "trunc", "fix") else float(round(v))
                      for v in source.values])
    if leaf in _INT_DTYPES or leaf in _FLOAT_DTYPES:
        return cast(source, Const(leaf))
    return None


def cast(source: TensorConstV, dtype: Value | None) -> TensorConstV | None:
    kind = _dtype(dtype)
    if kind is None or source.values is None:
        return None
    return array([kind(v) for v in source.values])


def method(target: TensorConstV, name: str, args: Args, kwargs: Kwargs) -> Value | None:
    """``a.astype(int)``, ``a.tolist()``, ``a.round()``, ``a.copy()`` of an array of known numbers; None
    for other methods (and arrays of unknown numbers)."""
    if target.values is None:
        return None
    if name == "astype" and len(args) == 1:
        return cast(target, args[0])
    if name == "tolist" and not args:
        return ListV([Const(v) for v in target.values])
    if name in ("copy", "flatten", "ravel", "squeeze", "numpy", "cpu", "detach", "clone", "contiguous") and not args:
        return target
    if name in _TORCH_CASTS and not args:  # torch: t.long(), t.int(), t.float()
        return cast(target, Const(_TORCH_CASTS[name]))
    if name == "round" and not args and not kwargs:
        return array([float(round(v)) for v in target.values])
    return None


def item(target: TensorConstV, key: Value) -> Value | None:
    """``a[i]`` (a number) and ``a[1:]`` (an array) of an array of known numbers; None otherwise."""
    if target.values is None or not isinstance(key, Const):
        return None
    if isinstance(key.value, int) and not isinstance(key.value, bool):
        if -len(target.values) <= key.value < len(target.values):
            return Const(target.values[key.value])
        return None
    if isinstance(key.value, slice):
        return array(list(target.values[key.value]))
    return None


def arithmetic(op: str, left: Value, right: Value) -> TensorConstV | None:
    """``a * 64``, ``2 ** a``, ``a // 2``: an array of known numbers with a number, elementwise."""
    array_side = left if isinstance(left, TensorConstV) and left.values is not None else right
    other = right if array_side is left else left
    number = _number(other)
    if not isinstance(array_side, TensorConstV) or array_side.values is None or number is None:
        return None
    fn = _OPS.get(op)
    if fn is None:
        return None
    try:
        values = [fn(v, number) if array_side is left else fn(number, v) for v in array_side.values]
    except (ZeroDivisionError, OverflowError, ValueError):
        return None
    return array(values)


_TORCH_CASTS = {"long": "int64", "int": "int32", "short": "int16", "float": "float32", "double": "float64",
                "half": "float16"}
_OPS = {"Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Mult": lambda a, b: a * b,
        "Div": lambda a, b: a / b, "FloorDiv": lambda a, b: a // b,
        "Pow": lambda a, b: a ** b if abs(b) <= 64 else math.nan}
