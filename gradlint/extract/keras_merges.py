"""Keras merges: ``Add``/``Multiply``/``Concatenate`` layer objects and their functional forms
(``add([a, b])``), Keras 1's ``merge(inputs, mode=...)`` function and ``Merge([models], mode=...)``
layer. An add is a residual, a multiply a gate; the merged tensor carries its per-example shape
when the inputs' are known (for a ``Flatten`` after it). Never imports keras.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from gradlint.extract.api import Args, Interp, InvocableV, Kwargs
from gradlint.extract.common import first_tensor, flatten_args, is_none, span_of
from gradlint.extract.paths import merge_all, merge_gate, merge_residual, merged_shape
from gradlint.extract.values import (
    UNKNOWN,
    Const,
    ContainerV,
    FunctionalModelV,
    InstanceV,
    LayerObj,
    ListV,
    TensorV,
    Value,
)
from gradlint.model import Span

Merge = Callable[[TensorV, TensorV, Span], TensorV]


class MergeLayerV(InvocableV):
    """keras ``Add()`` / ``Multiply()`` / ``Concatenate()`` layer objects, called on a list."""

    def __init__(self, name: str, span: Span, merge: Merge | None, axis: Value | None = None) -> None:
        self.name = name
        self.span = span
        self.merge = merge
        self.owned = False
        self.axis = axis  # Concatenate(axis=...)

    def invoke(self, interp: Interp, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        tensors = [a for a in flatten_args(args) if isinstance(a, TensorV)]
        return _with_shape(merge_all(tensors, self.span, self.merge), self.name, tensors, self.axis)


def _with_shape(result: Value, leaf: str, tensors: list[TensorV], axis: Value | None) -> Value:
    """A merge's result with its per-example shape (for a Flatten after it), when the inputs' are known."""
    if not isinstance(result, TensorV) or leaf.lower() == "dot":
        return result
    concat = leaf.lower() == "concatenate"
    written = axis.value if isinstance(axis, Const) and isinstance(axis.value, int) else -1 if axis is None else None
    return TensorV(result.nodes, result.hint, merged_shape(tensors, concat, written) or ())


# Keras 1's ``merge(inputs, mode=...)``: the Keras 2 function each mode became.
_KERAS1_MERGE_MODES = {"sum": "add", "mul": "multiply", "concat": "concatenate", "ave": "average", "max": "maximum",
                       "dot": "dot", "cos": "dot"}


def keras1_merge(interp: Interp, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    """``merge([x, y], mode='sum')`` (Keras 1): read as the Keras 2 merge of that mode (``add``: a
    residual); a mode given as a function, or unknown, is an UNKNOWN merge."""
    inputs = kwargs.get("inputs", args[0] if args else UNKNOWN)
    mode = kwargs.get("mode", args[1] if len(args) > 1 else Const("sum"))
    leaf = _KERAS1_MERGE_MODES.get(mode.value) if isinstance(mode, Const) and isinstance(mode.value, str) else None
    if leaf is None:
        return interp.unknown_call([inputs], {}, node, "merge")
    merge = merge_residual if leaf == "add" else merge_gate if leaf == "multiply" else None
    axis = kwargs.get("concat_axis", Const(-1)) if leaf == "concatenate" else None
    return keras_merge(leaf, [inputs], {"axis": axis} if axis is not None else {}, span_of(node), merge)


class Keras1MergeV(InvocableV):
    """Keras 1's ``Merge`` layer. ``Merge([left, right], mode='concat')`` as the first layer of a
    ``Sequential`` runs each branch model on the input and merges their outputs; ``Merge(mode='sum')``
    without branches is called on a list of tensors. A mode it does not know is an UNKNOWN merge."""

    def __init__(self, branches: list[Value] | None, leaf: str | None, axis: Value | None, span: Span) -> None:
        self.branches = branches
        self.leaf = leaf
        self.axis = axis
        self.span = span
        self.owned = False
        self.input_hint = next((h for h in (getattr(b, "input_hint", None) for b in branches or []) if h), None)

    def invoke(self, interp: Interp, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        tensor = first_tensor(args, kwargs)
        if self.branches is not None and tensor is not None:
            outputs: list[Value] = [interp.apply_module(b, tensor, [tensor], {}, node) for b in self.branches]
        else:
            outputs = list(flatten_args(args[:1]))
        if self.leaf is None or not outputs or not all(isinstance(o, TensorV) for o in outputs):
            return interp.unknown_call(outputs or list(args), {}, node, "Merge")
        merge = merge_residual if self.leaf == "add" else merge_gate if self.leaf == "multiply" else None
        extra = {"axis": self.axis} if self.axis is not None else {}
        return keras_merge(self.leaf, [ListV(outputs)], extra, self.span, merge)


def keras1_merge_layer(interp: Interp, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    branches_value = kwargs.get("layers", args[0] if args else None)
    mode = kwargs.get("mode", args[1] if len(args) > 1 else Const("sum"))
    leaf = _KERAS1_MERGE_MODES.get(mode.value) if isinstance(mode, Const) and isinstance(mode.value, str) else None
    branches: list[Value] | None = None
    if branches_value is not None and not is_none(branches_value):
        items = interp.iterate(branches_value)
        branches = items if items and all(isinstance(b, (ContainerV, FunctionalModelV, InstanceV, LayerObj))
                                          for b in items) else None
        if branches is None:
            leaf = None  # branches it cannot run: the merge is unknown
        for branch in branches or []:
            interp.own(branch)  # a branch is part of the merged model, not a model of its own
    axis = kwargs.get("concat_axis", Const(-1)) if leaf == "concatenate" else None
    return Keras1MergeV(branches, leaf, axis, span_of(node))


def keras_merge(leaf: str, args: Args, kwargs: Kwargs, span: Span, merge: Merge | None) -> Value:
    axis = kwargs.get("axis", args[1] if leaf == "concatenate" and len(args) > 1 else None)
    if leaf[0].islower():  # functional form: add([a, b])
        tensors = [a for a in flatten_args(args[:1]) if isinstance(a, TensorV)]
        return _with_shape(merge_all(tensors, span, merge), leaf, tensors, axis)
    return MergeLayerV(leaf, span, merge, kwargs.get("axis", args[0] if leaf == "Concatenate" and args else None))
