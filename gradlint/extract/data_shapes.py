"""Training data whose shape a script makes known: a torch batch of known shape tells a recurrent
model's sequence length (``recorder.record_model_call``).

numpy arrays made with a literal shape (``np.random.randn(500, 200, 1)``, ``np.zeros((n, T, F))``,
``np.linspace(0, 1, n)``), elementwise numpy functions of them, ``.reshape(...)`` / ``.astype(...)``,
and ``torch.from_numpy(a)`` / ``torch.tensor(a, dtype=...)`` / ``torch.FloatTensor(a)`` of them are data
tensors of that shape: fixed tensors, never a weight by themselves, but with the init of what numpy
draws (``randn``: N(0, 1), ``uniform(-1, 1, size)``, ``zeros``) for a weight made from one
(``tf.Variable(np.random.randn(n, m).astype(np.float32) * 0.01)``).

``torch.utils.data.TensorDataset(X, y)`` over tensors of known shape and a ``DataLoader`` over it
yield batches of those shapes with dim 0 the loader's ``batch_size`` (1 by default, what the loader
really does); a mini-batch slice ``X[i:i + 32]`` / ``X[:256]`` of such a tensor keeps its other
dims. Conversions that keep the values (``.float()``, ``.to(device)``, ``.cuda()``) keep the shape.
Anything else (a custom Dataset, a sampler, fancy indexing) stays unknown, as before.
"""

from __future__ import annotations

import ast
import math

from gradlint.extract import catalog
from gradlint.extract.api import Args, Core, Kwargs
from gradlint.extract.state import Scope
from gradlint.extract.values import UNKNOWN, Const, ListV, TensorConstV, Value
from gradlint.model import Init

# Tensor methods that convert a tensor without changing its shape.
_SHAPE_KEEPING_METHODS = frozenset({"float", "double", "half", "long", "int", "to", "cuda", "cpu", "contiguous",
                                    "clone", "type", "pin_memory", "astype", "copy"})
# numpy functions that make an array of the shape given by their arguments: where the shape sits.
_NUMPY_SHAPED = {"zeros": 0, "ones": 0, "empty": 0, "full": 0, "rand": None, "randn": None, "random": 0,
                 "random_sample": 0, "normal": 2, "uniform": 2, "randint": 2, "standard_normal": 0}
# Elementwise numpy functions: the shape of their array argument.
_NUMPY_ELEMENTWISE = frozenset({"sin", "cos", "tanh", "exp", "log", "abs", "sqrt", "square", "float32", "float64",
                                "asarray", "array", "copy"})


def torch_call(q: str, leaf: str, args: Args, kwargs: Kwargs) -> Value | None:
    """``torch.from_numpy(a)`` / ``torch.tensor(a)`` of data, ``TensorDataset(...)``, ``DataLoader(...)``;
    None for anything else."""
    if q.count(".") == 1 and (leaf in catalog.TORCH_DATA_COPIES or leaf in catalog.TORCH_DATA_VIEWS):
        return converted(args, kwargs)
    if q == "torch.randint" and len(args) in (2, 3):
        # torch.randint(low, high, size) / randint(high, size): token ids of that shape (a batch's (B, T))
        shape = _dims(kwargs.get("size", args[-1]))
        return _data(shape) if shape is not None and len(shape) > 0 else None
    if not q.startswith("torch.utils.data."):
        return None
    if leaf == "TensorDataset":
        if args and not kwargs and all(isinstance(a, TensorConstV) and a.shape for a in args) \
                and len({a.shape[0] for a in args if isinstance(a, TensorConstV) and a.shape}) == 1:
            return ListV(list(args), is_tuple=True)  # the dataset's tensors, dim 0 the examples
        return UNKNOWN
    if leaf == "DataLoader":
        dataset = args[0] if args else kwargs.get("dataset")
        size = kwargs.get("batch_size", args[1] if len(args) > 1 else Const(1))
        if not (isinstance(dataset, ListV) and dataset.is_tuple and dataset.items and not dataset.partial):
            return UNKNOWN
        if not (isinstance(size, Const) and isinstance(size.value, int) and not isinstance(size.value, bool)
                and size.value > 0) or "batch_sampler" in kwargs or "collate_fn" in kwargs:
            return UNKNOWN
        batch: list[Value] = []
        for tensor in dataset.items:
            assert isinstance(tensor, TensorConstV) and tensor.shape
            batch.append(TensorConstV(tensor.init, (min(size.value, tensor.shape[0]),) + tensor.shape[1:]))
        # A loop over the loader sees batches of this shape (how many is not modelled: one stands for all).
        return ListV([ListV(batch, is_tuple=True)])
    return None


def method(target: TensorConstV, name: str, args: Args, kwargs: Kwargs | None = None) -> Value | None:
    """``X.float()``, ``X.to(device)``, ``a.reshape(n, T, 1)``: the same data, in its shape; ``y.view(-1, 1)``,
    ``y.unsqueeze(1)``, ``y.squeeze(1)``, ``X.sum(dim=1)`` / ``a.mean(axis=0)`` / ``X.argmax(1)``: data of the
    shape they give (values unknown); None for other methods."""
    kwargs = kwargs or {}
    if name in _SHAPE_KEEPING_METHODS and target.shape and not target.trainable:
        return target
    if name in ("reshape", "view") and args and not kwargs:
        return reshaped(target, args)
    shape = target.shape
    if not shape or target.trainable or target.values is not None:
        return None
    axis = kwargs.get("dim", kwargs.get("axis", args[0] if args else None))
    if not (isinstance(axis, Const) and isinstance(axis.value, int) and not isinstance(axis.value, bool)):
        return None
    d = axis.value
    if name == "unsqueeze" and len(args) + len(kwargs) == 1 and -len(shape) - 1 <= d <= len(shape):
        d %= len(shape) + 1
        return _data(shape[:d] + (1,) + shape[d:])
    if not -len(shape) <= d < len(shape):
        return None
    d %= len(shape)
    if name == "squeeze" and len(args) + len(kwargs) == 1:
        return _data(shape[:d] + shape[d + 1:]) if shape[d] == 1 else target
    if name in ("sum", "mean", "argmax", "argmin") and len(args) + len(kwargs) == 1 and len(shape) > 1:
        return _data(shape[:d] + shape[d + 1:])
    return None


def converted(args: Args, kwargs: Kwargs) -> Value | None:
    """``torch.from_numpy(a)`` / ``torch.tensor(a, dtype=torch.float32)`` of a data array: the same data."""
    target = args[0] if len(args) == 1 else None
    if not isinstance(target, TensorConstV):
        return None
    grad = kwargs.get("requires_grad")
    if target.trainable or not target.shape or (grad is not None and not (isinstance(grad, Const)
                                                                            and grad.value is False)):
        return None
    return target


def sliced(interp: Core, target: TensorConstV, node: ast.Subscript, scope: Scope) -> Value:
    """``X[a:b]`` / ``X[i:i + n]`` on dim 0 of a data tensor of known shape: the same tensor with dim 0
    the slice's length (``n`` for ``i:i + n``, bounded by the size); UNKNOWN when that is not known."""
    part = node.slice
    shape = target.shape
    if not isinstance(part, ast.Slice) or part.step is not None or not shape or target.trainable:
        return UNKNOWN
    n = shape[0]
    length: int | None = None
    lower = _const_int(interp, part.lower, scope) if part.lower is not None else 0
    upper = _const_int(interp, part.upper, scope) if part.upper is not None else n
    if lower is not None and upper is not None:
        length = len(range(n)[lower:upper])
    elif part.lower is not None and isinstance(part.upper, ast.BinOp) and isinstance(part.upper.op, ast.Add):
        start = ast.dump(part.lower)
        left, right = part.upper.left, part.upper.right
        other = right if ast.dump(left) == start else left if ast.dump(right) == start else None
        count = _const_int(interp, other, scope) if other is not None else None
        if count is not None and count > 0:
            length = min(count, n)
    if length is None or length <= 0:
        return UNKNOWN
    return TensorConstV(target.init, (length,) + shape[1:])


def _const_int(interp: Core, expr: ast.expr | None, scope: Scope) -> int | None:
    if expr is None:
        return None
    value = interp.eval(expr, scope)
    if isinstance(value, Const) and isinstance(value.value, int) and not isinstance(value.value, bool):
        return value.value
    return None


def numpy_call(q: str, leaf: str, args: Args, kwargs: Kwargs) -> Value | None:
    """A numpy array of known shape (see the module's doc); None when not one."""
    if leaf in _NUMPY_ELEMENTWISE and args and isinstance(args[0], TensorConstV) and not args[0].trainable:
        return args[0]
    if leaf == "linspace" and len(args) >= 3 and _size(args[2]) is not None:
        return _data((_size(args[2]) or 0,))
    where = _NUMPY_SHAPED.get(leaf, -1)
    if where == -1 or (leaf in ("rand", "randn", "random", "normal", "uniform", "randint", "random_sample",
                                 "standard_normal") and not q.startswith("numpy.random.")):
        return None
    if where is None:  # np.random.rand(d0, d1, ...)
        dims = [_size(a) for a in args]
        shaped = tuple(d for d in dims if d is not None) if args and None not in dims and not kwargs else None
        return _data(shaped, _numpy_init(leaf, [], {}))
    shape = kwargs.get("size", kwargs.get("shape", args[where] if len(args) > where else None))
    return _data(_dims(shape), _numpy_init(leaf, args[:where] if where else args[1:], kwargs)) \
        if shape is not None else None


# The distribution numpy draws from (numpy's parameter names and defaults): what a weight made from the
# array starts as (``tf.Variable(np.random.randn(n, m).astype(np.float32))`` is N(0, 1)).
_NUMPY_DRAWS: dict[str, tuple[str, tuple[tuple[str, float], ...]]] = {
    "randn": ("normal", ()), "standard_normal": ("normal", ()),
    "normal": ("normal", (("loc", 0.0), ("scale", 1.0))),
    "rand": ("uniform", ()), "random": ("uniform", ()), "random_sample": ("uniform", ()),
    "uniform": ("uniform", (("low", 0.0), ("high", 1.0))),
    "zeros": ("zeros", ()), "ones": ("ones", ()), "full": ("constant", (("fill_value", math.nan),)),
}


def _numpy_init(leaf: str, args: Args, kwargs: Kwargs) -> Init:
    """The init of a numpy array drawn by ``leaf`` with these (non-shape) arguments; unknown when a
    parameter is not a literal number."""
    draw = _NUMPY_DRAWS.get(leaf)
    if draw is None:
        return Init("unknown")
    scheme, params = draw
    values: dict[str, float] = {}
    for i, (name, default) in enumerate(params):
        given = kwargs.get(name, args[i] if i < len(args) else None)
        if given is None:
            values[name] = default
        elif isinstance(given, Const) and isinstance(given.value, (int, float)) and not isinstance(given.value, bool):
            values[name] = float(given.value)
        else:
            return Init("unknown")
    if any(not math.isfinite(v) or abs(v) > 1e6 for v in values.values()):
        return Init("unknown")
    if scheme == "normal":
        std = values.get("scale", 1.0)
        return Init("normal", {"std": abs(std), "mean": values.get("loc", 0.0)}) if values.get("loc") else \
            Init("normal", {"std": abs(std)})
    if scheme == "uniform":
        a, b = values.get("low", 0.0), values.get("high", 1.0)
        return Init("uniform", {"a": min(a, b), "b": max(a, b)})
    if scheme == "constant":
        return Init("constant", {"value": values["fill_value"]})
    return Init(scheme)


def reshaped(target: TensorConstV, args: Args) -> Value | None:
    """``a.reshape(n, T, 1)`` / ``a.reshape((n, -1, 1))`` of a data array of known size."""
    if not target.shape or target.trainable:
        return None
    dims = _dims(args[0]) if len(args) == 1 else _dims(ListV(list(args)))
    if dims is None:
        return None
    total = 1
    for d in target.shape:
        total *= d
    known = 1
    for d in dims:
        known *= d if d != -1 else 1
    if dims.count(-1) > 1 or any(d == 0 or d < -1 for d in dims) or known == 0:
        return None
    if -1 in dims:
        if total % known:
            return None
        dims = tuple(total // known if d == -1 else d for d in dims)
    elif known != total:
        return None
    return TensorConstV(target.init, dims)


def _data(shape: tuple[int, ...] | None, init: Init | None = None) -> Value | None:
    return TensorConstV(init or Init("unknown"), shape) if shape else None


def _size(value: Value) -> int | None:
    if isinstance(value, Const) and isinstance(value.value, int) and not isinstance(value.value, bool) \
            and value.value > 0:
        return value.value
    return None


def _dims(value: Value) -> tuple[int, ...] | None:
    """A shape argument: an int, a tuple/list of ints (-1 allowed, for reshape)."""
    if _size(value) is not None:
        return (_size(value) or 0,)
    items: list[object] | None = None
    if isinstance(value, Const) and isinstance(value.value, tuple):
        items = list(value.value)
    elif isinstance(value, ListV) and not value.partial:
        items = [i.value if isinstance(i, Const) else None for i in value.items]
    if not items or len(items) > 8 or not all(isinstance(d, int) and not isinstance(d, bool) for d in items):
        return None
    return tuple(d for d in items if isinstance(d, int))
