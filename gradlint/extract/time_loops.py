"""Which axis of which tensor a forward's ``for`` loop steps over, read from the loop's header: a torch
cell called in such a loop runs once per step of that axis, so a training batch of known shape gives
its sequence length (``recorder._time_steps``).

Axis moves are followed (``moved``): ``x.transpose(0, 1)``, ``x.permute(1, 0, 2)``, ``x.swapaxes(0, 1)``,
``x.movedim(1, 0)`` of a tensor are a new tensor (never the same value, so a loop over one is never read
as a loop over the other's axes), and with literal axes a view whose axis 0 is the base's axis 1
(``Interp.axis_views``): ``for x_t in x.transpose(0, 1)`` steps over ``x``'s axis 1. The pieces
``x.unbind(1)`` / ``x.split(1, dim=1)`` bound to a name are one step each along that axis
(``Interp.time_pieces``), of a count the code does not say: ``steps = x.unbind(1)`` then
``for t in range(len(steps))`` steps over ``x``'s axis 1 too.
"""

from __future__ import annotations

import ast

from gradlint.extract.api import Args, Interp, Kwargs
from gradlint.extract.state import Scope
from gradlint.extract.values import UNKNOWN, Const, ListV, TensorV, Value

_SWAPS = frozenset({"transpose", "swapaxes", "swapdims", "t"})
_MOVES = frozenset({"movedim", "moveaxis"})
AXIS_MOVES = _SWAPS | _MOVES | {"permute", "T", "mT"}
_MAX_AXES = 8


def _ints(values: Args) -> list[int] | None:
    found = [v.value for v in values if isinstance(v, Const) and type(v.value) is int and 0 <= v.value < _MAX_AXES]
    return found if len(found) == len(values) else None


def _literal(node: ast.expr) -> Value:
    try:
        return Const(ast.literal_eval(node))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return UNKNOWN


def _order(name: str, args: Args, kwargs: Kwargs) -> tuple[int, ...] | None:
    """For each leading axis of the view, the base's axis it is (axes beyond: the same); None when the
    axes are not literal non-negative numbers (``x.transpose(-1, -2)``: the rank is not known)."""
    if kwargs:
        return None
    if name == "t" and not args:
        return (1, 0)
    if name == "permute" and len(args) == 1 and isinstance(args[0], (Const, ListV)):
        given = args[0]  # x.permute((1, 0, 2))
        args = list(given.items) if isinstance(given, ListV) else \
            [Const(v) for v in given.value] if isinstance(given.value, (tuple, list)) else []
    axes = _ints(args)
    if axes is None:
        return None
    if name == "permute":
        return tuple(axes) if sorted(axes) == list(range(len(axes))) and axes else None
    if len(axes) != 2:
        return None
    a, b = axes
    order = list(range(max(a, b) + 1))
    if name in _SWAPS:
        order[a], order[b] = b, a
    else:  # movedim(source, destination)
        order.remove(a)
        order.insert(b, a)
    return tuple(order)


def moved(interp: Interp, tensor: Value | None, name: str, args: Args, kwargs: Kwargs, result: Value) -> Value:
    """``result`` of ``name`` applied to the torch tensor ``tensor`` (first argument or target; ``args``
    after it): an axis move a fresh tensor on the same path (a view of ``tensor`` when its axes are
    literal); the step pieces of ``x.unbind(d)`` / ``x.split(1, dim=d)`` noted. Anything else as it is."""
    if type(tensor) is not TensorV:
        return result
    if name in AXIS_MOVES and (result is tensor or type(result) is TensorV):
        view = TensorV(tensor.nodes, tensor.hint, tensor.shape)
        order = _order(name, args, kwargs) if name not in ("T", "mT") else None
        if order is not None:
            interp.axis_views[id(view)] = (view, tensor, order)
        return view
    if isinstance(result, ListV) and result.items and all(item is tensor for item in result.items):
        dim = kwargs.get("dim", args[0] if name == "unbind" and args else args[1] if len(args) > 1 else None)
        one = name == "unbind" or (name == "split" and args and isinstance(args[0], Const) and args[0].value == 1)
        axis = _ints([dim]) if isinstance(dim, Const) else [0] if dim is None else None
        if one and axis is not None:
            interp.time_pieces[id(result)] = (result, tensor, axis[0])
    return result


def resolve(interp: Interp, value: Value, dim: int) -> tuple[TensorV, int] | None:
    """The tensor and axis that axis ``dim`` of ``value`` is, through the axis moves and step pieces it
    was made by; None when ``value`` is not a tensor (or known pieces)."""
    pieces = interp.time_pieces.get(id(value))
    if pieces is not None and pieces[0] is value:
        if dim != 0:
            return None
        value, dim = pieces[1], pieces[2]
    for _ in range(_MAX_AXES):
        view = interp.axis_views.get(id(value))
        if view is None or view[0] is not value:
            break
        value, dim = view[1], view[2][dim] if dim < len(view[2]) else dim
    return (value, dim) if isinstance(value, TensorV) else None


def unknown_count(interp: Interp, value: Value) -> bool:
    """Whether ``value`` is step pieces whose count the code does not say (``len(x.unbind(1))``)."""
    pieces = interp.time_pieces.get(id(value))
    return pieces is not None and pieces[0] is value


def is_range(iterable: ast.expr) -> bool:
    return isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Name) and iterable.func.id == "range"


def _axis(node: ast.expr | None) -> int | None:
    return node.value if isinstance(node, ast.Constant) and type(node.value) is int and node.value >= 0 else None


def _size_of(node: ast.expr) -> tuple[ast.expr, int | None] | None:
    """``x.size(1)`` / ``x.shape[1]`` / ``x.size()[1]``: (``x``, 1); None for anything else."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "size" \
            and len(node.args) == 1 and not node.keywords:
        return node.func.value, _axis(node.args[0])  # x.size(1)
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "shape":
        return node.value.value, _axis(node.slice)  # x.shape[1]
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Call) \
            and isinstance(node.value.func, ast.Attribute) and node.value.func.attr == "size" \
            and not node.value.args:
        return node.value.func.value, _axis(node.slice)  # x.size()[1]
    return None


def _tensor_and_rest(call: ast.Call) -> tuple[ast.expr | None, list[ast.expr]]:
    """``torch.f(x, a, b)`` -> (x, [a, b]); ``x.f(a, b)`` -> (x, [a, b])."""
    func = call.func
    assert isinstance(func, ast.Attribute)
    if isinstance(func.value, ast.Name) and func.value.id == "torch":
        return (call.args[0] if call.args else None), list(call.args[1:])
    return func.value, list(call.args)


def _dim(rest: list[ast.expr], call: ast.Call, position: int) -> int | None:
    """The ``dim`` of a split-like call: its positional argument at ``position`` of ``rest``, or the
    keyword; 0 (torch's default) when neither is given."""
    dims = [k.value for k in call.keywords if k.arg == "dim"]
    return _axis(rest[position]) if len(rest) > position else _axis(dims[0]) if dims else 0


def tensor_axis_loop(iterable: ast.expr, scope: Scope, interp: Interp) -> tuple[TensorV, int] | None:
    """The tensor and axis a loop steps over, when it says so: ``range(x.size(1))``, ``range(x.shape[1])``,
    ``range(x.size()[1])``, ``range(len(x))`` (axis 0), ``x.unbind(1)`` / ``torch.unbind(x, 1)``,
    ``x.split(1, dim=1)`` / ``torch.split(x, 1, dim=1)`` (chunks of one step),
    ``x.chunk(x.size(1), dim=1)`` / ``torch.chunk(x, x.shape[1], 1)`` (as many chunks as steps), the
    tensor itself (axis 0), and any of these under ``enumerate``; ``x`` a name bound to a tensor (an axis
    move of one: ``x.transpose(0, 1)``, see ``moved``), or to step pieces (``len(steps)``, ``steps``: their
    axis). None otherwise."""
    if isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Name) and iterable.func.id == "enumerate" \
            and len(iterable.args) == 1 and not iterable.keywords:
        iterable = iterable.args[0]  # for t, x_t in enumerate(x.unbind(1)): the same steps, counted
    name: ast.expr | None = None
    dim: int | None = None
    if is_range(iterable):
        assert isinstance(iterable, ast.Call)
        if len(iterable.args) == 1 and not iterable.keywords:
            size = iterable.args[0]
            read = _size_of(size)
            if read is not None:
                name, dim = read
            elif isinstance(size, ast.Call) and isinstance(size.func, ast.Name) and size.func.id == "len" \
                    and len(size.args) == 1:
                name, dim = size.args[0], 0  # len(x)
    elif isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Attribute) \
            and iterable.func.attr in AXIS_MOVES and isinstance(iterable.func.value, ast.Name):
        value = scope.vars.get(iterable.func.value.id)
        literal: Args = [_literal(arg) for arg in iterable.args]
        order = _order(iterable.func.attr, literal, {}) if not iterable.keywords and type(value) is TensorV else None
        if order is None:
            return None
        return resolve(interp, value, order[0]) if value is not None else None  # for x_t in x.transpose(0, 1)
    elif isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Attribute) \
            and iterable.func.attr in ("unbind", "split", "chunk"):
        name, rest = _tensor_and_rest(iterable)
        if iterable.func.attr == "unbind":
            dim = _dim(rest, iterable, 0)
        elif iterable.func.attr == "split":
            dim = _dim(rest, iterable, 1) if rest and _axis(rest[0]) == 1 else None  # one step a chunk
        else:
            dim = _dim(rest, iterable, 1)
            read = _size_of(rest[0]) if rest else None
            # as many chunks as the axis has steps: one step a chunk (other counts hold several)
            if read is None or not (isinstance(read[0], ast.Name) and isinstance(name, ast.Name)
                                    and read[0].id == name.id and read[1] == dim):
                dim = None
    elif isinstance(iterable, ast.Name):
        name, dim = iterable, 0
    if not isinstance(name, ast.Name) or dim is None:
        return None
    value = scope.vars.get(name.id)
    return resolve(interp, value, dim) if value is not None else None
