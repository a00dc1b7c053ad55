"""Which axis of which tensor a forward's ``for`` loop steps over, read from the loop's header: a torch
cell called in such a loop runs once per step of that axis, so a training batch of known shape gives
its sequence length (``recorder._time_steps``)."""

from __future__ import annotations

import ast

from gradlint.extract.state import Scope
from gradlint.extract.values import TensorV


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


def tensor_axis_loop(iterable: ast.expr, scope: Scope) -> tuple[TensorV, int] | None:
    """The tensor and axis a loop steps over, when it says so: ``range(x.size(1))``, ``range(x.shape[1])``,
    ``range(x.size()[1])``, ``range(len(x))`` (axis 0), ``x.unbind(1)`` / ``torch.unbind(x, 1)``,
    ``x.split(1, dim=1)`` / ``torch.split(x, 1, dim=1)`` (chunks of one step),
    ``x.chunk(x.size(1), dim=1)`` / ``torch.chunk(x, x.shape[1], 1)`` (as many chunks as steps), the
    tensor itself (axis 0), and any of these under ``enumerate``; ``x`` a name bound to a tensor.
    None otherwise."""
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
    return (value, dim) if isinstance(value, TensorV) else None
