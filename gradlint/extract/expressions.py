"""Expressions: constants, names, attributes, subscripts, operators, comparisons, comprehensions.

Constant subexpressions fold to real Python values (guarded against inputs that would take the
real operation minutes); operators on tensors combine their layer paths (``paths``).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from gradlint.extract import catalog, enums, hand_norm, numeric_arrays, step_reads, torch_dims
from gradlint.extract.api import AttributedV, Core
from gradlint.extract.common import (
    WIDE_FORMAT,
    const_values,
    is_none,
    is_property,
    layer_attribute,
    method_binding,
    param_attribute,
    prefer,
    span_of,
)
from gradlint.extract.data_shapes import sliced
from gradlint.extract.formulas import activation_formula
from gradlint.extract.inits import scale_init
from gradlint.extract.invocable import SuperMethodV, SuperV
from gradlint.extract.paths import floored, merge_gate, merge_other, merge_residual, stopped
from gradlint.extract.recorder import loss_sum, severed_loss
from gradlint.extract.state import (
    MAX_LIST_ITEMS,
    MAX_LOOP_ITERATIONS,
    MAX_UNROLLED,
    BreakSignal,
    BudgetExceeded,
    ContinueSignal,
    ReturnSignal,
    Scope,
)
from gradlint.extract.time_loops import unknown_count
from gradlint.extract.torch_tensors import matmul_layer, transposed
from gradlint.extract.values import (
    UNKNOWN,
    BoundV,
    ClassV,
    Const,
    ContainerV,
    DictV,
    FunctionalModelV,
    FunctionV,
    GradientTapeV,
    InstanceV,
    LayerObj,
    LazyV,
    ListV,
    LossV,
    MethodV,
    ModulesView,
    OptimizerV,
    ParamV,
    ReadOutV,
    Ref,
    TensorConstV,
    TensorV,
    TransposedV,
    TypeV,
    UnknownV,
    Value,
)
from gradlint.model import Layer, LayerKind

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.LShift: operator.lshift, ast.RShift: operator.rshift, ast.BitOr: operator.or_,
    ast.BitAnd: operator.and_, ast.BitXor: operator.xor,
}
_CMPOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b, ast.Is: operator.is_, ast.IsNot: operator.is_not,
}


class ExpressionsMixin(Core):
    """``eval_<Node>`` handlers, dispatched by ``eval``; attribute and item access on every value kind."""

    unrolled: int

    def eval_safe(self, node: ast.expr, scope: Scope) -> Value:
        try:
            return self.eval(node, scope)
        except (BudgetExceeded, ReturnSignal, BreakSignal, ContinueSignal, RecursionError):
            raise
        except Exception:  # a construct we model wrongly must not take the file down
            return UNKNOWN

    def eval(self, node: ast.expr, scope: Scope) -> Value:
        self.steps -= 1  # self.tick(), inlined (the commonest call there is); tick(0) raises or reads the clock
        if self.steps < 0:
            self.tick(0)
        method = self.eval_methods.get(type(node))
        if method is None:
            return UNKNOWN
        return method(self, node, scope)  # type: ignore[no-any-return]

    def eval_Constant(self, node: ast.Constant, scope: Scope) -> Value:
        return Const(node.value)

    def eval_Name(self, node: ast.Name, scope: Scope) -> Value:
        found = scope.vars.get(node.id)  # the innermost scope, as Scope.lookup would look first
        if found is not None and type(found) is not LazyV:
            return found
        found = scope.lookup(node.id)
        if found is not None:
            return found
        if node.id in catalog.BUILTIN_NAMES:
            return Ref("builtins." + node.id)
        if node.id == "__name__":
            return Const("__main__")  # a script's main block builds models like any other code
        return UNKNOWN

    def eval_Attribute(self, node: ast.Attribute, scope: Scope) -> Value:
        obj = self.eval(node.value, scope)
        return self.get_attribute(obj, node.attr, node)

    def get_attribute(self, obj: Value, attr: str, node: ast.AST | None = None) -> Value:
        kind = type(obj)  # the commonest first (no class derives from these, so order is free)
        if kind is InstanceV:
            return self._instance_attribute(obj, attr)  # type: ignore[arg-type]
        if kind is Ref:
            return self._ref_attribute(obj, attr)  # type: ignore[arg-type]
        if isinstance(obj, AttributedV):
            return obj.attribute(self, attr)
        if isinstance(obj, SuperV):
            return SuperMethodV(obj, attr)
        if isinstance(obj, (LossV, OptimizerV, GradientTapeV)):
            # loss.data: the values, out of the graph
            return severed_loss(obj, attr, node) if attr == "data" else MethodV(obj, attr)
        if isinstance(obj, ClassV):
            found = obj.info.find_method(attr)
            if found is not None:
                cls, fnode = found
                function = self.make_function(fnode, cls.scope, cls)
                return BoundV(obj, function) if method_binding(fnode) == "class" else function
            cattr = obj.info.find_class_attr(attr)
            if cattr is not None:
                return enums.member(obj.info, attr, cattr)  # Act.SIGMOID of an Enum: the member
            if attr == "__name__":
                return Const(obj.info.name)
            return UNKNOWN
        if isinstance(obj, LayerObj):
            return layer_attribute(obj, attr)
        if isinstance(obj, TypeV) and attr == "__name__":
            return self.type_name(obj.of)
        if isinstance(obj, (ParamV, TensorConstV, TransposedV)) and attr in ("T", "mT"):
            view = transposed(obj, attr, [])
            if view is not None:
                return view
        if isinstance(obj, TransposedV):
            return obj if attr == "data" else MethodV(obj, attr)
        if isinstance(obj, ParamV):
            return param_attribute(obj, attr)
        if isinstance(obj, Const):
            value = obj.value
            if isinstance(value, str) and attr in catalog.STR_METHODS:
                return MethodV(obj, attr)
            if attr in ("real", "imag") and isinstance(value, (int, float)):
                return Const(getattr(value, attr))
            return UNKNOWN
        if isinstance(obj, (TensorV, ContainerV, ListV, DictV, FunctionalModelV, TensorConstV)):
            if isinstance(obj, TensorV) and attr in ("T", "mT", "shape", "dtype", "device"):
                if attr == "shape" and self.frame.batch is not None and isinstance(node, ast.Attribute) \
                        and isinstance(node.value, ast.Name) and node.value.id in self.frame.batch.sizes:
                    return ListV([Const(d) for d in self.frame.batch.sizes[node.value.id]], is_tuple=True)
                return torch_dims.forget(obj, step_reads.transposed_attribute(self, obj, attr)) \
                    if attr in ("T", "mT") else UNKNOWN
            if isinstance(obj, TensorV) and attr == "data" and node is not None:
                return stopped(obj, "data", span_of(node), "torch")  # x.data: the values, no gradient
            if isinstance(obj, ContainerV) and obj.kind == "moduledict" and obj.keys and attr in obj.keys:
                return obj.items[obj.keys.index(attr)]
            if isinstance(obj, ContainerV) and obj.keys and attr in obj.keys:
                return obj.items[obj.keys.index(attr)]
            return MethodV(obj, attr)
        return UNKNOWN

    def _ref_attribute(self, obj: Ref, attr: str) -> Value:
        if obj.qualname == "math" and attr in catalog.MATH:
            return Const(catalog.MATH[attr]) if not callable(catalog.MATH[attr]) else Ref(f"math.{attr}")
        return Ref(catalog.fold_name(f"{obj.qualname}.{attr}"))

    def _instance_attribute(self, obj: InstanceV, attr: str) -> Value:
        """Instance attributes, then methods (properties are called), then class attributes."""
        if attr in obj.attrs:
            return obj.attrs[attr]
        found = obj.info.find_method(attr)
        if found is not None:
            cls, fnode = found
            if is_property(fnode):
                return self.call_function(self.make_function(fnode, cls.scope, cls), [obj], {})
            binding = method_binding(fnode)
            function = self.make_function(fnode, cls.scope, cls)
            if binding == "static":
                return function
            return BoundV(ClassV(obj.info) if binding == "class" else obj, function)
        cattr = obj.info.find_class_attr(attr)
        if cattr is not None:
            return cattr
        if attr == "__class__":
            return ClassV(obj.info)
        if attr == "_modules" and obj.info.framework == "torch":
            # nn.Module._modules: the registered submodules by name, in registration order
            # (``self._modules["fc" + str(i)]`` next to ``add_module``)
            return ModulesView(dict(self.children_of(obj)), obj.partial, owner=obj)
        return MethodV(obj, attr)

    def type_name(self, value: Value) -> Value:
        if isinstance(value, LayerObj):
            return Const(value.layer.op)
        if isinstance(value, InstanceV):
            return Const(value.info.name)
        if isinstance(value, ContainerV):
            return Const(catalog.CONTAINER_CLASS_NAMES[value.kind])
        return UNKNOWN

    def eval_Subscript(self, node: ast.Subscript, scope: Scope) -> Value:
        obj = self.eval(node.value, scope)
        if isinstance(obj, TensorConstV) and obj.values is None and isinstance(node.slice, ast.Slice):
            return sliced(self, obj, node, scope)  # a mini-batch X[i:i + 32] of a data tensor of known shape
        key = self.eval(node.slice, scope)
        return self.get_item(obj, key)

    def get_item(self, obj: Value, key: Value) -> Value:
        if isinstance(obj, TensorConstV) and obj.values is not None:
            known = numeric_arrays.item(obj, key)
            return known if known is not None else UNKNOWN
        if isinstance(obj, (ListV, ContainerV)):
            items = obj.items
            partial = obj.partial
            if isinstance(obj, ContainerV) and obj.kind == "moduledict" and isinstance(key, Const) and obj.keys:
                if key.value in obj.keys:
                    return obj.items[obj.keys.index(key.value)]
                return UNKNOWN
            if isinstance(key, Const) and isinstance(key.value, int) and not partial:
                try:
                    return items[key.value]
                except IndexError:
                    return UNKNOWN
            if isinstance(obj, ListV) and unknown_count(self, obj) and not isinstance(key, Const):
                return items[0]  # steps[t] of steps = x.unbind(1): one step of x, whichever
            if isinstance(obj, ListV) and self.step_lists.get(id(obj)) is obj and isinstance(key, Const) \
                    and key.value == -1:
                return items[-1]  # outputs[-1] of outputs.append(h) in a loop over time: the last step's
            if isinstance(key, Const) and isinstance(key.value, slice) and not partial:
                if isinstance(obj, ContainerV):
                    return ContainerV(obj.kind, items[key.value], None, obj.span, obj.framework, owned=True)
                return ListV(items[key.value], is_tuple=obj.is_tuple)
            return UNKNOWN
        if isinstance(obj, DictV) and isinstance(key, Const):
            try:
                return obj.items.get(key.value, UNKNOWN)
            except TypeError:
                return UNKNOWN
        if isinstance(obj, Const) and isinstance(key, Const):
            try:
                return Const(obj.value[key.value])
            except Exception:
                return UNKNOWN
        if isinstance(obj, TensorV):  # x[:, 0] keeps the path; of an RNN's outputs (out[:, -1]) not every step
            return TensorV(obj.nodes, obj.hint, obj.shape) if id(obj) in self.step_outputs else \
                torch_dims.forget(obj, obj)
        return UNKNOWN

    def eval_Slice(self, node: ast.Slice, scope: Scope) -> Value:
        parts: list[int | None] = []
        for part in (node.lower, node.upper, node.step):
            if part is None:
                parts.append(None)
                continue
            value = self.eval(part, scope)
            if not isinstance(value, Const) or not isinstance(value.value, (int, type(None))):
                return UNKNOWN
            parts.append(value.value)
        return Const(slice(*parts))

    def eval_Tuple(self, node: ast.Tuple, scope: Scope) -> Value:
        items = self.eval_elements(node.elts, scope)
        values = const_values(items.items) if items is not None else None
        if values is not None:
            return Const(tuple(values))
        if items is None:
            return UNKNOWN
        items.is_tuple = True
        return items

    def eval_List(self, node: ast.List, scope: Scope) -> Value:
        items = self.eval_elements(node.elts, scope)
        return items if items is not None else ListV([], partial=True)

    eval_Set = eval_List

    def eval_elements(self, elts: list[ast.expr], scope: Scope) -> ListV | None:
        if all(type(elt) is ast.Constant for elt in elts):
            # A table of literals (torchvision's 1,000 ImageNet category names): the same steps
            # and values as evaluating each item, without a dispatch per item.
            if len(elts) > MAX_LIST_ITEMS:
                return None
            self.tick(len(elts))
            return ListV([Const(elt.value) for elt in elts])  # type: ignore[attr-defined]
        if len(elts) > 256 and _large_data_literal(elts):
            return None  # exported weights: "many", without a step per number
        if elts and all(type(elt) is ast.Tuple and _constant_items(elt.elts) for elt in elts):  # type: ignore[attr-defined]
            # A table of literal tuples (transformers' auto mappings, ``("bert", "BertModel")``), as
            # evaluating each tuple would give, with the same steps: one per tuple and per item.
            rows: list[list[ast.expr]] = [elt.elts for elt in elts]  # type: ignore[attr-defined]
            self.tick(len(rows) + sum(map(len, rows)))
            return ListV([Const(tuple([item.value for item in row])) for row in rows])  # type: ignore[attr-defined]
        out = ListV([])
        for elt in elts:
            if isinstance(elt, ast.Starred):
                value = self.eval(elt.value, scope)
                items = self.iterate(value)
                if items is None:
                    out.partial = True
                    continue
                out.items.extend(items)
                if isinstance(value, (ListV, ContainerV)) and value.partial:
                    out.partial = True
            else:
                out.items.append(self.eval(elt, scope))
        return out

    def eval_Dict(self, node: ast.Dict, scope: Scope) -> Value:
        out = DictV({})
        for key, value in zip(node.keys, node.values, strict=False):
            if key is None:
                merged = self.eval(value, scope)
                if isinstance(merged, DictV):
                    out.items.update(merged.items)
                else:
                    out.partial = True
                continue
            k = self.eval(key, scope)
            if isinstance(k, Const):
                try:
                    out.items[k.value] = self.eval(value, scope)
                except TypeError:
                    out.partial = True
            else:
                out.partial = True
        return out

    def eval_JoinedStr(self, node: ast.JoinedStr, scope: Scope) -> Value:
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                inner = self.eval(value.value, scope)
                if not isinstance(inner, Const):
                    return UNKNOWN
                parts.append(str(inner.value))
        return Const("".join(parts))

    def eval_BinOp(self, node: ast.BinOp, scope: Scope) -> Value:
        formula = activation_formula(node)
        if formula is not None:
            name, operand = formula
            inner = self.eval(operand, scope)
            if isinstance(inner, TensorV):
                layer = Layer(LayerKind.ACTIVATION, f"{name} formula", span_of(node), "torch", activation=name,
                              bias=False)
                return TensorV(inner.nodes + (layer,), inner.hint)
        left = self.eval(node.left, scope)
        right = self.eval(node.right, scope)
        return self.binop(node.op, left, right, node)

    def binop(self, op: ast.operator, left: Value, right: Value, node: ast.AST) -> Value:
        if isinstance(left, LossV) or isinstance(right, LossV):
            return loss_sum(self, left, right, isinstance(op, ast.Div))  # total = loss + 0.1 * aux
        if isinstance(left, Const) and isinstance(right, Const):
            fn = _BINOPS.get(type(op))
            if fn is None:
                return UNKNOWN
            try:
                if isinstance(op, ast.Pow) and isinstance(right.value, (int, float)) and abs(right.value) > 64:
                    return UNKNOWN
                if isinstance(op, ast.Mod) and isinstance(left.value, str) and WIDE_FORMAT.search(left.value):
                    return UNKNOWN  # '%0999999999d' % 1 would allocate a gigabyte
                if (
                    isinstance(op, (ast.LShift, ast.RShift))
                    and isinstance(right.value, int)
                    and abs(right.value) > 4096
                ):
                    return UNKNOWN
                for seq_value, count_value in ((left.value, right.value), (right.value, left.value)):
                    if (
                        isinstance(op, ast.Mult)
                        and isinstance(seq_value, (str, tuple, bytes, list))
                        and isinstance(count_value, int)
                        and len(seq_value) * count_value > MAX_LIST_ITEMS
                    ):
                        return UNKNOWN
                if (
                    isinstance(op, (ast.Add, ast.Mult, ast.LShift))
                    and isinstance(left.value, int)
                    and isinstance(right.value, int)
                    and max(abs(left.value), abs(right.value)).bit_length() > 4096
                ):
                    return UNKNOWN
                result = fn(left.value, right.value)
            except Exception:
                return UNKNOWN
            return Const(result)
        # [layers] * n, n * [layers]
        if isinstance(op, ast.Mult):
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, ListV) and isinstance(count, Const) and isinstance(count.value, int):
                    if count.value > MAX_LOOP_ITERATIONS or len(seq.items) * count.value > MAX_LIST_ITEMS:
                        return ListV([], partial=True)
                    self.tick(len(seq.items) * max(count.value, 0) // 32)
                    return ListV(seq.items * max(count.value, 0), seq.partial, seq.is_tuple)
        if isinstance(op, ast.Add) and isinstance(left, ListV) and isinstance(right, ListV):
            if len(left.items) + len(right.items) > MAX_LIST_ITEMS:
                return ListV([], partial=True)
            return ListV(left.items + right.items, left.partial or right.partial)
        if isinstance(op, ast.Add) and isinstance(left, ContainerV) and isinstance(right, ContainerV):
            return ContainerV(
                left.kind, left.items + right.items, None, left.span, left.framework, left.partial or right.partial
            )
        if isinstance(left, ParamV) or isinstance(right, ParamV):
            for framework in self.frameworks:  # x @ W with a tf.Variable, h + b
                result = framework.binop(self, op, left, right, node)
                if result is not None:
                    return result
        if isinstance(left, TensorV) or isinstance(right, TensorV):
            return torch_dims.binop(left, right, self.tensor_binop(op, left, right, node))
        if isinstance(read := left if isinstance(left, ReadOutV) else right, ReadOutV):  # out.detach().numpy() - y
            return ReadOutV(read.tensor, read.op)  # still numbers of the model's values, with no gradient
        if (known := numeric_arrays.arithmetic(type(op).__name__, left, right)) is not None:
            return known  # (np.linspace(1, 0.25, 8) * 256): widths
        if isinstance(left, (TensorConstV, ParamV)) or isinstance(right, (TensorConstV, ParamV)):
            return scale_init(op, left, right)
        return UNKNOWN

    def tensor_binop(self, op: ast.operator, left: Value, right: Value, node: ast.AST) -> Value:
        if (normalizing := hand_norm.binop(op, left, right, node)) is not None:
            return normalizing  # (x - mean) / std written out
        span = span_of(node)
        if isinstance(left, TensorV) and isinstance(right, TensorV):
            if isinstance(op, (ast.Add, ast.Sub)):
                return merge_residual(left, right, span)
            if isinstance(op, ast.Mult):
                return merge_gate(left, right, span)
            return merge_other(left, right)
        tensor = left if isinstance(left, TensorV) else right
        other = right if tensor is left else left
        assert isinstance(tensor, TensorV)
        # c / x, x ** k: a nonlinearity we do not model; never reason across it.
        if ((isinstance(op, (ast.Div, ast.FloorDiv, ast.Mod)) and tensor is right) or isinstance(op, ast.Pow)) and not (
            isinstance(op, ast.Pow) and isinstance(other, Const) and other.value == 1
        ):
            return TensorV(tensor.nodes + (Layer(LayerKind.UNKNOWN, "elementwise", span, "torch"),), tensor.hint)
        if isinstance(op, ast.MatMult) and tensor is left:
            result = matmul_layer(tensor, other, "matmul", span)
            if result is not None:
                return result
        if isinstance(op, ast.MatMult) and isinstance(other, ParamV):
            shape = None  # W @ x: which dimension is the fan-in depends on x's layout
            layer = Layer(
                LayerKind.DENSE,
                "matmul",
                span,
                "torch",
                weight_init=other.init,
                bias=False,
                fan_in=shape[0] if shape and len(shape) == 2 else None,
                fan_out=shape[1] if shape and len(shape) == 2 else None,
            )
            return TensorV(tensor.nodes + (layer,), tensor.hint)
        if isinstance(op, ast.Mult) and isinstance(other, ParamV):
            value = other.init.constant_value if other.init is not None else None
            numel = math.prod(other.shape) if other.shape else 1
            layer = Layer(LayerKind.SCALE, "scale", span, "torch", scale_value=value, weight_init=other.init,
                          scale_params=max(numel, 1))
            return TensorV(tensor.nodes + (layer,), tensor.hint)
        if isinstance(op, (ast.Mult, ast.Div)) and not (isinstance(op, ast.Div) and tensor is right):
            # x * c, c * x, x / c: a scale the propagation follows (a branch scaled by depth ** -0.5 does
            # not compound like an unscaled one). An unresolved factor is a SCALE of unknown value,
            # which the estimate does not reason across.
            value = _scalar(other)
            if value is not None and isinstance(op, ast.Div):
                value = 1.0 / value if value != 0 else None
            if value == 1.0:
                return tensor
            if value is None and not isinstance(other, Const) and _maybe_scalar(other):
                return TensorV(tensor.nodes + (Layer(LayerKind.SCALE, "scale", span, "torch"),), tensor.hint)
            if value is not None:
                layer = Layer(LayerKind.SCALE, "scale", span, "torch", scale_value=value)
                return TensorV(tensor.nodes + (layer,), tensor.hint)
        shift = _scalar(other) if isinstance(op, (ast.Add, ast.Sub)) and isinstance(other, Const) else None
        if shift is not None and (shift != 0.0 or (isinstance(op, ast.Sub) and tensor is right)):
            # x + c, x - c, c - x: the variance is unchanged but not the mean, which the next activation
            # and a gate see (``(1 - t) * x`` in a highway or GRU cell passes 1 − σ, not σ).
            negated = isinstance(op, ast.Sub) and tensor is right
            layer = Layer(LayerKind.SCALE, "shift", span, "torch", scale_value=-1.0 if negated else 1.0,
                          shift_value=-shift if isinstance(op, ast.Sub) and not negated else shift)
            return TensorV(tensor.nodes + (layer,), tensor.hint)
        # x + c with c unresolved: a shift, the variance of the path unchanged (p + eps under a log: a floor)
        return floored(tensor, "shift", span, "torch") if isinstance(op, ast.Add) else tensor

    def eval_UnaryOp(self, node: ast.UnaryOp, scope: Scope) -> Value:
        operand = self.eval(node.operand, scope)
        if isinstance(operand, Const):
            try:
                if isinstance(node.op, ast.USub):
                    return Const(-operand.value)
                if isinstance(node.op, ast.UAdd):
                    return Const(+operand.value)
                if isinstance(node.op, ast.Not):
                    return Const(not operand.value)
                if isinstance(node.op, ast.Invert):
                    return Const(~operand.value)
            except Exception:
                return UNKNOWN
        if isinstance(node.op, ast.Not):
            truth = self.truth(operand)
            return Const(not truth) if truth is not None else UNKNOWN
        if isinstance(operand, (TensorV, LossV)):
            return operand  # -x; -tf.reduce_sum(y * tf.log(p)) is still the loss
        return UNKNOWN

    def eval_BoolOp(self, node: ast.BoolOp, scope: Scope) -> Value:
        is_and = isinstance(node.op, ast.And)
        result: Value = UNKNOWN
        for value_node in node.values:
            value = self.eval(value_node, scope)
            truth = self.truth(value)
            if truth is None:
                return UNKNOWN
            result = value
            if is_and and not truth:
                return value
            if not is_and and truth:
                return value
        return result

    def eval_Compare(self, node: ast.Compare, scope: Scope) -> Value:
        left = self.eval(node.left, scope)
        for op, comparator in zip(node.ops, node.comparators, strict=False):
            right = self.eval(comparator, scope)
            result = self.compare(op, left, right)
            if result is None:
                return UNKNOWN
            if not result:
                return Const(False)
            left = right
        return Const(True)

    def compare(self, op: ast.cmpop, left: Value, right: Value) -> bool | None:
        if isinstance(op, (ast.Is, ast.IsNot)):
            left_none = is_none(left)
            right_none = is_none(right)
            if left_none is None or right_none is None:
                return None
            same = left_none and right_none
            if left_none != right_none:
                same = False
            elif not left_none:
                same = left is right if not isinstance(left, Const) else None  # type: ignore[assignment]
                if same is None:
                    return None
            return same if isinstance(op, ast.Is) else not same
        if isinstance(left, Const) and isinstance(right, Const):
            try:
                return bool(_CMPOPS[type(op)](left.value, right.value))
            except Exception:
                return None
        if isinstance(op, (ast.Eq, ast.NotEq)) and isinstance(left, enums.EnumMemberV) \
                and isinstance(right, enums.EnumMemberV):
            return (left is right) == isinstance(op, ast.Eq)  # members compare by identity
        if isinstance(op, (ast.Eq, ast.NotEq)) and isinstance(left, TypeV):
            match = self.isinstance_check(left.of, right, exact=True)
            if match is None:
                return None
            return match if isinstance(op, ast.Eq) else not match
        if isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (ListV, DictV)) and isinstance(left, Const):
            keys = right.items if isinstance(right, DictV) else [i.value for i in right.items if isinstance(i, Const)]
            if isinstance(right, ListV) and len(keys) != len(right.items):
                return None
            if right.partial:
                return None
            found = left.value in keys
            return found if isinstance(op, ast.In) else not found
        return None

    def truth(self, value: Value) -> bool | None:
        if isinstance(value, Const):
            try:
                return bool(value.value)
            except Exception:
                return None
        if isinstance(value, (LayerObj, ContainerV, InstanceV, ClassV, FunctionV, BoundV)):
            return True
        if isinstance(value, ListV):
            return None if value.partial else bool(value.items)
        if isinstance(value, DictV):
            return None if value.partial else bool(value.items)
        return None

    def eval_IfExp(self, node: ast.IfExp, scope: Scope) -> Value:
        cond = self.truth(self.eval(node.test, scope))
        if cond is True:
            return self.eval(node.body, scope)
        if cond is False:
            return self.eval(node.orelse, scope)
        a = self.eval_safe(node.body, scope)
        b = self.eval_safe(node.orelse, scope)
        return prefer(a, b)

    def eval_Lambda(self, node: ast.Lambda, scope: Scope) -> Value:
        return self.make_function(node, scope)

    def eval_NamedExpr(self, node: ast.NamedExpr, scope: Scope) -> Value:
        value = self.eval(node.value, scope)
        self.assign(node.target, value, scope)
        return value

    def eval_Starred(self, node: ast.Starred, scope: Scope) -> Value:
        return self.eval(node.value, scope)

    def eval_ListComp(self, node: ast.ListComp | ast.GeneratorExp | ast.SetComp, scope: Scope) -> Value:
        out = ListV([])
        self.comprehension(node.generators, 0, Scope(scope), lambda s: out.items.append(self.eval(node.elt, s)), out)
        return out

    eval_GeneratorExp = eval_ListComp

    eval_SetComp = eval_ListComp

    def eval_DictComp(self, node: ast.DictComp, scope: Scope) -> Value:
        out = DictV({})
        holder = ListV([])

        def add(s: Scope) -> None:
            key = self.eval(node.key, s)
            if isinstance(key, Const):
                out.items[key.value] = self.eval(node.value, s)
            else:
                out.partial = True

        self.comprehension(node.generators, 0, Scope(scope), add, holder)
        out.partial = out.partial or holder.partial
        return out

    def comprehension(
        self, gens: list[ast.comprehension], index: int, scope: Scope, emit: Callable[[Scope], None], out: ListV
    ) -> None:
        if index == len(gens):
            emit(scope)
            return
        gen = gens[index]
        iterable = self.eval(gen.iter, scope)
        count = self.trip_count(iterable)
        items = None if count is not None and self.unrolled * count > MAX_UNROLLED else self.iterate(iterable)
        if items is None and count is None:
            out.partial = True
            return
        if items is None or self.unrolled * len(items) > MAX_UNROLLED:
            # Too many iterations in this nest: the element once, with an unknown target, for
            # its side effects (what it adds to becomes partial); the result is partial.
            out.partial = True
            self.assign(gen.target, UNKNOWN, scope)
            self.enter_uncertain()
            try:
                self.comprehension(gens, index + 1, scope, emit, out)
            finally:
                self.leave_uncertain()
            return
        outer = self.unrolled
        self.unrolled = outer * max(1, len(items))
        try:
            self._comprehension_items(gens, index, scope, emit, out, items)
        finally:
            self.unrolled = outer

    def _comprehension_items(
        self,
        gens: list[ast.comprehension],
        index: int,
        scope: Scope,
        emit: Callable[[Scope], None],
        out: ListV,
        items: list[Value],
    ) -> None:
        gen = gens[index]
        for count, item in enumerate(items):
            if count >= MAX_LOOP_ITERATIONS:
                out.partial = True
                break
            self.assign(gen.target, item, scope)
            keep = True
            for cond in gen.ifs:
                truth = self.truth(self.eval(cond, scope))
                if truth is None:
                    out.partial = True
                    keep = False
                    break
                if not truth:
                    keep = False
                    break
            if keep:
                self.comprehension(gens, index + 1, scope, emit, out)

    def trip_count(self, value: Value) -> int | None:
        """How many items a loop over ``value`` would see, when cheap to tell (before building them)."""
        if isinstance(value, Const):
            v = value.value
            if isinstance(v, range):
                return max(0, (v.stop - v.start + (v.step - (1 if v.step > 0 else -1))) // v.step)
            if isinstance(v, (tuple, list, str)):
                return len(v)
        if isinstance(value, ListV):
            return len(value.items)
        if isinstance(value, TensorConstV) and value.values is not None:
            return len(value.values)
        return None

    def iterate(self, value: Value) -> list[Value] | None:
        """The items a ``for`` loop over ``value`` sees, or None when not knowable."""
        items = self._iterate(value)
        if items:
            self.tick(len(items) // 32)  # copying a long list is work too
        return items

    def _iterate(self, value: Value) -> list[Value] | None:
        if isinstance(value, ListV):
            return None if value.partial else list(value.items)
        if isinstance(value, ContainerV):
            if value.partial:
                return None
            if value.kind == "moduledict":
                return [Const(k) for k in (value.keys or [])]
            return list(value.items)
        if isinstance(value, InstanceV) and value.seq_items is not None:
            return list(value.seq_items)
        if isinstance(value, DictV):
            return None if value.partial else [Const(k) for k in value.items]
        if isinstance(value, Const):
            v = value.value
            if isinstance(v, range):
                # len() of a range beyond sys.maxsize items raises OverflowError (range(2**63)).
                if v.start >= v.stop if v.step > 0 else v.start <= v.stop:
                    return []
                if abs((v.stop - v.start) // v.step) > MAX_LOOP_ITERATIONS:
                    return None
                return [Const(i) for i in v]
            if isinstance(v, (tuple, list, str)):
                return [Const(i) for i in v]
        if isinstance(value, TensorConstV) and value.values is not None:
            return [Const(v) for v in value.values]
        return None


_DATA_NODES = (ast.Constant, ast.List, ast.Tuple, ast.UnaryOp, ast.USub, ast.UAdd, ast.Load)


def _constant_items(elts: list[ast.expr]) -> bool:
    """Literal items only, few enough for ``eval_elements`` to list them."""
    return len(elts) <= MAX_LIST_ITEMS and all(type(elt) is ast.Constant for elt in elts)


def _large_data_literal(elts: list[ast.expr]) -> bool:
    """Numbers and strings only, nested lists/tuples, more than MAX_LIST_ITEMS in all."""
    count = 0
    for elt in elts:
        for node in ast.walk(elt):
            if not isinstance(node, _DATA_NODES):
                return False
            count += 1
    return count > MAX_LIST_ITEMS


def _scalar(value: Value) -> float | None:
    """The number a tensor is multiplied by, when it is a known finite constant."""
    if isinstance(value, Const) and isinstance(value.value, (int, float)) and not isinstance(value.value, bool):
        number = float(value.value)
        return number if number == number and abs(number) < 1e300 else None
    if isinstance(value, TensorConstV):
        return value.init.constant_value
    return None


def _maybe_scalar(value: Value) -> bool:
    """An unresolved operand of ``x * other`` (a config value, an imported constant, a noise tensor)."""
    return isinstance(value, (UnknownV, Ref, TensorConstV))
