"""Normalizations written out in a forward: ``(x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) +
eps)`` is a LayerNorm, ``(x - x.mean(0)) / torch.sqrt(x.var(0) + eps)`` a BatchNorm, ``x *
torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)`` an RMSNorm — as tutorials (the Annotated
Transformer's ``LayerNorm``, hand-made ``BatchNorm1d`` classes) and LLaMA re-implementations write them.

Read by what the values are, not by how the text looks: a statistic of a tensor (its mean, variance,
standard deviation or mean square over some dims, and the square root or reciprocal square root of
one, with a constant ``eps`` added) remembers the tensor and the dims it was taken over; the tensor
minus its own mean is *centred*; a centred tensor divided by (or times the reciprocal of) its own
spread over the same dims is normalized, and so is a tensor divided by its own root mean square. The
dims say which kind: statistics over dim 0 (the batch) are a BatchNorm's, over the other dims a
LayerNorm's. Anything else keeps the meaning it had (the statistic is the pooled tensor the
interpreter made of it; a product or quotient that is no normalization is merged as before).
"""

from __future__ import annotations

import ast

from gradlint.extract.common import span_of
from gradlint.extract.values import Const, ListV, ParamV, TensorConstV, TensorV, Value
from gradlint.model import Layer, LayerKind, Span
from gradlint.records import dataclass

_STATS = {"mean": "mean", "var": "var", "std": "std"}
_ROOTS = {"sqrt": {"var": "std", "ms": "rms"}, "rsqrt": {"var": "rstd", "ms": "rrms"}}
_SQUARES = frozenset({"square", "pow"})
WATCHED = frozenset(_STATS) | frozenset(_ROOTS) | _SQUARES


@dataclass(eq=False)
class StatV(TensorV):
    """A statistic of ``source`` over ``axes``: mean | var | std | rstd | ms (mean square) | rms | rrms."""

    source: TensorV | None = None
    stat: str = ""
    axes: tuple[int, ...] = ()


@dataclass(eq=False)
class CenteredV(TensorV):
    """``source`` minus its own mean over ``axes``."""

    source: TensorV | None = None
    axes: tuple[int, ...] = ()


@dataclass(eq=False)
class SquaredV(TensorV):
    """``source`` squared (``x ** 2``, ``x.pow(2)``, ``x * x``): its mean is a mean square (or, of a centred
    tensor, a variance)."""

    source: TensorV | None = None


def _axes(args: list[Value], kwargs: dict[str, Value]) -> tuple[int, ...] | None:
    dim = kwargs.get("dim", kwargs.get("axis", args[0] if args else None))
    if isinstance(dim, Const) and type(dim.value) is int:
        return (dim.value,)
    if isinstance(dim, Const) and isinstance(dim.value, tuple) and dim.value \
            and all(type(d) is int for d in dim.value):
        return tuple(dim.value)
    if isinstance(dim, ListV) and dim.items and all(isinstance(d, Const) and type(d.value) is int for d in dim.items):
        return tuple(d.value for d in dim.items if isinstance(d, Const))
    return None


def seen(name: str, args: list[Value], kwargs: dict[str, Value], result: Value) -> Value:
    """``result`` of ``torch.<name>(x, ...)`` / ``x.<name>(...)`` (``args[0]`` is ``x``), remembered as a
    statistic or a square when it is one."""
    if name not in WATCHED or not args or not isinstance(args[0], TensorV) or not isinstance(result, TensorV) \
            or isinstance(result, (StatV, CenteredV, SquaredV)):
        return result
    x, rest = args[0], args[1:]
    nodes, hint = result.nodes, result.hint
    if name in _SQUARES:
        power = rest[0] if rest else kwargs.get("exponent", Const(2))
        if name == "square" or isinstance(power, Const) and power.value == 2:
            return SquaredV(nodes, hint, source=x)
        return result
    if name in _ROOTS:
        stat = _ROOTS[name].get(x.stat) if isinstance(x, StatV) else None
        return StatV(nodes, hint, source=x.source, stat=stat, axes=x.axes) \
            if isinstance(x, StatV) and stat is not None else result
    axes = _axes(rest, kwargs)
    if axes is None:
        return result
    if name == "mean" and isinstance(x, SquaredV) and x.source is not None:
        inner = x.source
        if isinstance(inner, CenteredV) and inner.axes == axes and inner.source is not None:
            return StatV(nodes, hint, source=inner.source, stat="var", axes=axes)  # ((x - mean) ** 2).mean()
        return StatV(nodes, hint, source=inner, stat="ms", axes=axes)
    if isinstance(x, (StatV, SquaredV)):
        return result
    return StatV(nodes, hint, source=x, stat=_STATS[name], axes=axes)


def binop(op: ast.operator, left: Value, right: Value, node: ast.AST) -> TensorV | None:
    """The arithmetic of a written-out normalization; None when this is not part of one."""
    if isinstance(left, StatV) and not isinstance(right, TensorV):
        if isinstance(op, (ast.Add, ast.Sub)) and _number(right) is not None:
            return left  # var + eps, std + eps
        if isinstance(op, ast.Pow) and _number(right) in (0.5, -0.5):
            stat = _ROOTS["sqrt" if _number(right) == 0.5 else "rsqrt"].get(left.stat)
            return StatV(left.nodes, left.hint, source=left.source, stat=stat, axes=left.axes) if stat else None
        return None
    if isinstance(op, ast.Sub) and isinstance(right, StatV) and right.stat == "mean" and right.source is left:
        assert isinstance(left, TensorV)
        return CenteredV(left.nodes, left.hint, source=left, axes=right.axes)
    if isinstance(op, ast.Pow) and isinstance(left, TensorV) and _number(right) == 2:
        return SquaredV(left.nodes, left.hint, source=left)
    if isinstance(op, ast.Mult) and isinstance(left, TensorV) and left is right:
        return SquaredV(left.nodes, left.hint, source=left)
    if isinstance(op, ast.Mult):
        for a, b in ((left, right), (right, left)):
            if isinstance(a, CenteredV) and _unit_gain(b):
                return a  # gamma * (x - mean) with gamma = ones: still the centred tensor at init
            if isinstance(a, CenteredV) and isinstance(b, StatV) and b.stat == "rstd":
                return _normalized(a.source, a.axes, b, span_of(node), "norm")
            if isinstance(a, TensorV) and not isinstance(a, (StatV, CenteredV)) and isinstance(b, StatV) \
                    and b.stat == "rrms":
                return _normalized(a, None, b, span_of(node), "rms_norm")
    if isinstance(op, ast.Div) and isinstance(right, StatV):
        if isinstance(left, CenteredV) and right.stat == "std":
            return _normalized(left.source, left.axes, right, span_of(node), "norm")
        if isinstance(left, TensorV) and not isinstance(left, (StatV, CenteredV)) and right.stat == "rms":
            return _normalized(left, None, right, span_of(node), "rms_norm")
    return None


def _normalized(source: TensorV | None, axes: tuple[int, ...] | None, spread: StatV, span: Span,
                kind: str) -> TensorV | None:
    if source is None or spread.source is not source or (axes is not None and axes != spread.axes):
        return None
    if kind == "norm":
        kind = "batch_norm" if 0 in spread.axes else "layer_norm"
    layer = Layer(LayerKind.NORMALIZATION, kind, span, "torch", bias=False)
    return TensorV(source.nodes + (layer,), source.hint)


def _number(value: Value) -> float | None:
    if isinstance(value, Const) and isinstance(value.value, (int, float)) and not isinstance(value.value, bool):
        return float(value.value)
    return None


def _unit_gain(value: Value) -> bool:
    init = value.init if isinstance(value, (ParamV, TensorConstV)) else None
    return _number(value) == 1.0 or init is not None and init.constant_value == 1.0
