"""A small abstract interpreter for model-building Python code.

It runs a file's module body, classes and functions symbolically — never importing or
executing the user's code — so that loops with constant trip counts, comprehensions,
``[...] * n``, default arguments, module constants, helper functions and block classes
resolve to the layers they really build. Anything it cannot know becomes ``UNKNOWN``
and later turns into an explicit UNKNOWN layer that rules do not reason across.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from typing import Any, Callable, Iterable, Iterator

from gradlint.extract import catalog
from gradlint.gradflow import torch_gain
from gradlint.extract.values import (
    next_serial, UNKNOWN, BoundV, ClassInfo, ClassV, Const, ContainerV, DictV, Frame, FunctionalModelV,
    FunctionV, InitV, InstanceV, LayerObj, ListV, MethodV, ParamV, Ref, TensorConstV, TensorV,
    TypeV, UnknownV, Value,
)
from gradlint.extract.values import LossObjV, LossV, OptimizerV
from gradlint.model import Gate, Init, InputHint, Layer, LayerKind, Node, Residual, Span
from gradlint.training import (
    TORCH_LOGIT_LOSSES, TORCH_PROBABILITY_LOSSES, LossSpec, LossUse, ModelCall,
    TrainingFacts,
)

_CLIP_CALLS = frozenset({"clip_grad_norm_", "clip_grad_value_", "clip_grad_norm", "clip_grad_value",
                         "clip_by_global_norm", "clip_by_norm", "clip_by_value", "clip_gradients"})
_CLIP_KWARGS = frozenset({"gradient_clip_val", "clipnorm", "clipvalue", "global_clipnorm", "max_grad_norm",
                          "grad_clip", "clip_grad", "gradient_clipping", "clip_grad_norm", "max_norm"})
_OPTIMIZERS = frozenset({"SGD", "Adam", "AdamW", "Adamax", "RMSprop", "Adagrad", "Adadelta", "NAdam", "RAdam",
                         "LBFGS", "SparseAdam", "ASGD", "Rprop", "Lion", "Adafactor", "LAMB", "Lamb", "Nadam",
                         "Ftrl", "Adamw", "Muon"})

MAX_CALL_DEPTH = 24
MAX_LOOP_ITERATIONS = 512
MAX_LIST_ITEMS = 20_000  # beyond this a symbolic list stands for "many": partial
DEFAULT_BUDGET = 400_000


class BudgetExceeded(Exception):
    """The file needs more symbolic steps than we allow; its models stay unresolved."""


class _Return(Exception):
    def __init__(self, value: Value) -> None:
        self.value = value


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Scope:
    __slots__ = ("vars", "parent")

    def __init__(self, parent: "Scope | None" = None) -> None:
        self.vars: dict[str, Value] = {}
        self.parent = parent

    def lookup(self, name: str) -> Value | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.vars:
                return scope.vars[name]
            scope = scope.parent
        return None


def span_of(node: ast.AST) -> Span:
    line = getattr(node, "lineno", 1)
    col = getattr(node, "col_offset", 0)
    return Span(line, col, getattr(node, "end_lineno", None) or line, getattr(node, "end_col_offset", None) or col)


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
_SAFE_CONST_TYPES = (int, float, str, bool, type(None), tuple, complex, bytes)
_MATH = {"sqrt": math.sqrt, "log": math.log, "log2": math.log2, "exp": math.exp, "ceil": math.ceil,
         "floor": math.floor, "pow": math.pow, "prod": math.prod, "pi": math.pi, "e": math.e, "inf": math.inf}
_STR_METHODS = frozenset({"find", "startswith", "endswith", "lower", "upper", "split", "replace", "format",
                          "join", "strip", "rstrip", "lstrip", "count", "index", "rfind", "title"})
_ABSTRACT_TORCH_BASES = {
    "_ConvNd": ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"),
    "_ConvTransposeNd": ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"),
    "_BatchNorm": ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm"),
    "_NormBase": ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "InstanceNorm1d",
                  "InstanceNorm2d", "InstanceNorm3d"),
    "_InstanceNorm": ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"),
    "RNNBase": ("RNN", "LSTM", "GRU"),
    "_RNNBase": ("RNN", "LSTM", "GRU"),
    "Module": None,  # matches every module
}
_TORCH_MODULE_BASES = frozenset({"torch.nn.Module", "torch.nn.Sequential", "torch.nn.ModuleList",
                                 "torch.nn.ModuleDict", "lightning.LightningModule",
                                 "pytorch_lightning.LightningModule", "lightning.pytorch.LightningModule"})
_KERAS_MODEL_BASES = frozenset({"keras.Model", "keras.models.Model", "keras.layers.Layer", "keras.Layer",
                                "keras.Sequential", "keras.models.Sequential"})


def _is_container_leaf(qualname: str) -> str | None:
    if qualname in ("torch.nn.Sequential",):
        return "sequential"
    if qualname == "torch.nn.ModuleList":
        return "modulelist"
    if qualname == "torch.nn.ModuleDict":
        return "moduledict"
    return None


class Interpreter:
    """Interprets one file. ``run_module`` first; then ``forward`` / ``apply_path`` on roots."""

    def __init__(self, tree: ast.Module, budget: int = DEFAULT_BUDGET, file_budget: int = 1_000_000) -> None:
        self.tree = tree
        self.budget = budget  # per root model; reset by the caller for each root
        self.file_budget = file_budget  # all roots together: a huge file cannot take minutes
        self.module_scope = Scope()
        self.depth = 0
        self.uncertain = 0
        self.uncertain_since: list[int] = []  # serial at which each open uncertain region began
        self.classes: list[ClassInfo] = []
        self.functions: list[FunctionV] = []
        # Everything model-like that got built, in creation order; roots are those never owned.
        self.built: list[Value] = []
        self.instantiated_classes: set[str] = set()
        self.called_functions: set[int] = set()
        self.frame = Frame()
        self.facts = TrainingFacts()

    # ------------------------------------------------------------------ bookkeeping

    def tick(self, n: int = 1) -> None:
        self.budget -= n
        self.file_budget -= n
        if self.budget < 0 or self.file_budget < 0:
            raise BudgetExceeded()

    def enter_uncertain(self) -> None:
        self.uncertain += 1
        self.uncertain_since.append(next_serial())

    def leave_uncertain(self) -> None:
        self.uncertain -= 1
        self.uncertain_since.pop()

    def mutating_uncertainly(self, target: Value) -> bool:
        """True when ``target`` existed before the innermost undecidable branch or loop began."""
        if not self.uncertain_since:
            return False
        serial = getattr(target, "serial", None)
        return serial is None or serial < self.uncertain_since[-1]

    def run_module(self) -> None:
        try:
            self.exec_block(self.tree.body, self.module_scope)
        except (_Return, _Break, _Continue):
            pass

    # ------------------------------------------------------------------ statements

    def exec_block(self, body: list[ast.stmt], scope: Scope) -> None:
        for stmt in body:
            self.exec_stmt(stmt, scope)

    def exec_stmt(self, stmt: ast.stmt, scope: Scope) -> None:
        self.tick()
        method = getattr(self, "stmt_" + type(stmt).__name__, None)
        if method is not None:
            method(stmt, scope)

    def stmt_Import(self, stmt: ast.Import, scope: Scope) -> None:
        for alias in stmt.names:
            if alias.asname:
                scope.vars[alias.asname] = Ref(catalog.fold_name(alias.name))
            else:
                top = alias.name.split(".")[0]
                scope.vars[top] = Ref(top)

    def stmt_ImportFrom(self, stmt: ast.ImportFrom, scope: Scope) -> None:
        module = stmt.module or ""
        if stmt.level:  # relative import: a project module we do not read
            module = "." * stmt.level + module
        for alias in stmt.names:
            if alias.name == "*":
                continue
            scope.vars[alias.asname or alias.name] = Ref(catalog.fold_name(f"{module}.{alias.name}"))

    def stmt_FunctionDef(self, stmt: ast.FunctionDef, scope: Scope) -> None:
        func = self.make_function(stmt, scope)
        scope.vars[stmt.name] = func
        if scope is self.module_scope:
            self.functions.append(func)

    stmt_AsyncFunctionDef = stmt_FunctionDef

    def make_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, scope: Scope,
                      owner: ClassInfo | None = None) -> FunctionV:
        args = node.args
        defaults: dict[str, Value] = {}
        positional = args.posonlyargs + args.args
        for arg, default in zip(positional[len(positional) - len(args.defaults):], args.defaults):
            defaults[arg.arg] = self.eval_safe(default, scope)
        for arg, default in zip(args.kwonlyargs, args.kw_defaults):
            if default is not None:
                defaults[arg.arg] = self.eval_safe(default, scope)
        name = getattr(node, "name", "<lambda>")
        return FunctionV(node, scope, defaults, owner, name)

    def stmt_ClassDef(self, stmt: ast.ClassDef, scope: Scope) -> None:
        bases = [self.eval_safe(b, scope) for b in stmt.bases]
        methods: dict[str, Any] = {}
        info = ClassInfo(stmt.name, stmt, bases, methods, {}, None, scope=scope)
        class_scope = Scope(scope)
        for item in stmt.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                methods[item.name] = item
            elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                try:
                    self.exec_stmt(item, class_scope)
                except (BudgetExceeded, RecursionError):
                    raise
                except Exception:
                    pass
        info.class_attrs.update(class_scope.vars)
        info.framework, info.container_base = self._class_framework(info)
        scope.vars[stmt.name] = ClassV(info)
        self.classes.append(info)

    def _class_framework(self, info: ClassInfo) -> tuple[str | None, str | None]:
        for base in info.bases:
            if isinstance(base, Ref):
                name = base.qualname
                if name in _TORCH_MODULE_BASES or name.endswith("LightningModule"):
                    return "torch", _is_container_leaf(name)
                if name in _KERAS_MODEL_BASES:
                    return "keras", ("keras_sequential" if name.endswith("Sequential") else None)
            elif isinstance(base, ClassV) and base.info.framework:
                return base.info.framework, base.info.container_base
        # A base class imported from elsewhere: judge by the methods it defines.
        if any(not isinstance(b, (ClassV,)) for b in info.bases) and info.bases:
            if "forward" in info.methods:
                return "torch", None
            if "call" in info.methods:
                return "keras", None
        return None, None

    def stmt_Return(self, stmt: ast.Return, scope: Scope) -> None:
        raise _Return(self.eval(stmt.value, scope) if stmt.value is not None else Const(None))

    def stmt_Expr(self, stmt: ast.Expr, scope: Scope) -> None:
        self.eval_safe(stmt.value, scope)

    def stmt_Assign(self, stmt: ast.Assign, scope: Scope) -> None:
        value = self.eval_safe(stmt.value, scope)
        for target in stmt.targets:
            self.assign(target, value, scope)

    def stmt_AnnAssign(self, stmt: ast.AnnAssign, scope: Scope) -> None:
        if stmt.value is not None:
            self.assign(stmt.target, self.eval_safe(stmt.value, scope), scope)

    def stmt_AugAssign(self, stmt: ast.AugAssign, scope: Scope) -> None:
        current = self.eval_safe(stmt.target, scope)
        right = self.eval_safe(stmt.value, scope)
        if isinstance(stmt.op, ast.Add) and isinstance(current, (ListV, ContainerV)) and isinstance(right, (ListV, ContainerV)):
            self.list_extend(current, right)  # in place, like list.__iadd__
            return
        result = self.binop(stmt.op, current, right, stmt)
        self.assign(stmt.target, result, scope)

    def stmt_If(self, stmt: ast.If, scope: Scope) -> None:
        cond = self.truth(self.eval_safe(stmt.test, scope))
        if cond is True:
            self.exec_block(stmt.body, scope)
        elif cond is False:
            self.exec_block(stmt.orelse, scope)
        else:
            self.exec_uncertain_branches(stmt.body, stmt.orelse, scope)

    def exec_uncertain_branches(self, then: list[ast.stmt], orelse: list[ast.stmt], scope: Scope) -> None:
        """Run both arms of an ``if`` we cannot decide and keep, per variable, the more informative result."""
        self_val = self.frame.self_val
        before_vars = dict(scope.vars)
        before_attrs = dict(self_val.attrs) if isinstance(self_val, InstanceV) else None
        results = []
        for body in (then, orelse):
            scope.vars = dict(before_vars)
            if before_attrs is not None and isinstance(self_val, InstanceV):
                self_val.attrs = dict(before_attrs)
            returned = None
            self.enter_uncertain()
            try:
                self.exec_block(body, scope)
            except _Return as ret:
                returned = ret.value
            except (_Break, _Continue):
                pass
            finally:
                self.leave_uncertain()
            results.append((scope.vars, self_val.attrs if isinstance(self_val, InstanceV) else None, returned))
        (vars_a, attrs_a, ret_a), (vars_b, attrs_b, ret_b) = results
        scope.vars = _merge_envs(vars_a, vars_b)
        if isinstance(self_val, InstanceV) and attrs_a is not None and attrs_b is not None:
            self_val.attrs = _merge_envs(attrs_a, attrs_b)
        # An early return in an undecidable branch: keep it as a candidate unless the flow continues.
        for ret in (ret_a, ret_b):
            if ret is not None:
                self.frame.returned.append(ret)

    def stmt_For(self, stmt: ast.For, scope: Scope) -> None:
        iterable = self.eval_safe(stmt.iter, scope)
        items = self.iterate(iterable)
        if items is None:
            self.exec_loop_once_uncertain(stmt, scope)
            return
        try:
            for count, item in enumerate(items):
                if count >= MAX_LOOP_ITERATIONS:
                    break
                self.assign(stmt.target, item, scope)
                try:
                    self.exec_block(stmt.body, scope)
                except _Continue:
                    continue
            else:
                self.exec_block(stmt.orelse, scope)
        except _Break:
            pass

    stmt_AsyncFor = stmt_For

    def exec_loop_once_uncertain(self, stmt: ast.For | ast.While, scope: Scope) -> None:
        if isinstance(stmt, ast.For):
            self.assign(stmt.target, UNKNOWN, scope)
        self.enter_uncertain()
        try:
            self.exec_block(stmt.body, scope)
        except (_Break, _Continue):
            pass
        except _Return as ret:
            self.frame.returned.append(ret.value)
        finally:
            self.leave_uncertain()

    def stmt_While(self, stmt: ast.While, scope: Scope) -> None:
        for _ in range(MAX_LOOP_ITERATIONS):
            cond = self.truth(self.eval_safe(stmt.test, scope))
            if cond is False:
                return
            if cond is None:
                self.exec_loop_once_uncertain(stmt, scope)
                return
            try:
                self.exec_block(stmt.body, scope)
            except _Continue:
                continue
            except _Break:
                return

    def stmt_With(self, stmt: ast.With, scope: Scope) -> None:
        for item in stmt.items:
            value = self.eval_safe(item.context_expr, scope)
            if item.optional_vars is not None:
                self.assign(item.optional_vars, value, scope)
        self.exec_block(stmt.body, scope)

    stmt_AsyncWith = stmt_With

    def stmt_Try(self, stmt: ast.Try, scope: Scope) -> None:
        try:
            self.exec_block(stmt.body, scope)
            self.exec_block(stmt.orelse, scope)
        finally:
            self.exec_block(stmt.finalbody, scope)

    stmt_TryStar = stmt_Try

    def stmt_Break(self, stmt: ast.Break, scope: Scope) -> None:
        raise _Break()

    def stmt_Continue(self, stmt: ast.Continue, scope: Scope) -> None:
        raise _Continue()

    def stmt_Raise(self, stmt: ast.Raise, scope: Scope) -> None:
        raise _Return(UNKNOWN)

    def stmt_Global(self, stmt: ast.Global, scope: Scope) -> None:
        pass

    def stmt_Delete(self, stmt: ast.Delete, scope: Scope) -> None:
        for target in stmt.targets:
            if isinstance(target, ast.Name):
                scope.vars.pop(target.id, None)

    # ------------------------------------------------------------------ assignment

    def assign(self, target: ast.expr, value: Value, scope: Scope) -> None:
        if isinstance(target, ast.Name):
            scope.vars[target.id] = value
            if isinstance(value, (ContainerV, FunctionalModelV)) and value.name is None:
                value.name = target.id
        elif isinstance(target, (ast.Tuple, ast.List)):
            items = self.unpack(value, len(target.elts))
            starred = [i for i, t in enumerate(target.elts) if isinstance(t, ast.Starred)]
            if starred and items is not None:
                i = starred[0]
                tail = len(target.elts) - i - 1
                middle = items[i:len(items) - tail] if tail else items[i:]
                items = items[:i] + [ListV(list(middle))] + (items[len(items) - tail:] if tail else [])
            for i, elt in enumerate(target.elts):
                item = items[i] if items is not None and i < len(items) else UNKNOWN
                if isinstance(elt, ast.Starred):
                    elt = elt.value
                self.assign(elt, item, scope)
        elif isinstance(target, ast.Attribute):
            obj = self.eval_safe(target.value, scope)
            self.set_attribute(obj, target.attr, value, target)
        elif isinstance(target, ast.Subscript):
            obj = self.eval_safe(target.value, scope)
            key = self.eval_safe(target.slice, scope)
            self.set_item(obj, key, value)
        elif isinstance(target, ast.Starred):
            self.assign(target.value, value, scope)

    def unpack(self, value: Value, n: int) -> list[Value] | None:
        if isinstance(value, ListV) and not value.partial:
            return list(value.items)
        if isinstance(value, Const) and isinstance(value.value, (tuple, list)):
            return [Const(v) for v in value.value]
        if isinstance(value, TensorV):
            return [value] * n  # q, k, v = x.chunk(3): each carries the same path
        return None

    def set_attribute(self, obj: Value, attr: str, value: Value, node: ast.AST) -> None:
        if isinstance(obj, InstanceV):
            obj.attrs[attr] = value
            self.own(value)
            if isinstance(value, LayerObj) and value.layer.name is None:
                value.layer.name = f"self.{attr}"
            if obj.info.container_base == "sequential" and isinstance(value, (LayerObj, ContainerV, InstanceV)):
                pass  # attributes of a Sequential subclass are not in its run order
        elif isinstance(obj, ParamV) and attr == "data":
            self.apply_init_value(obj, value, node)
        elif isinstance(obj, LayerObj) and attr in ("weight", "bias"):
            self.apply_init_value(ParamV(obj.layer, attr), value, node)
        elif isinstance(obj, ClassV):
            obj.info.class_attrs[attr] = value

    def set_item(self, obj: Value, key: Value, value: Value) -> None:
        if isinstance(obj, ListV) and isinstance(key, Const) and isinstance(key.value, int):
            try:
                obj.items[key.value] = value
            except IndexError:
                obj.partial = True
        elif isinstance(obj, DictV) and isinstance(key, Const):
            if self.mutating_uncertainly(obj):
                # A write under an undecidable condition (``if weights is not None: kwargs[k] = v``)
                # must not override what the certain flow would see.
                obj.partial = True
                if key.value in obj.items:
                    obj.items[key.value] = _prefer(obj.items[key.value], value)
                return
            obj.items[key.value] = value
        elif isinstance(obj, ContainerV) and obj.kind == "moduledict" and isinstance(key, Const):
            self.own(value)
            if obj.keys is not None:
                obj.keys.append(str(key.value))
            obj.items.append(value)

    def apply_init_value(self, param: ParamV, value: Value, node: ast.AST) -> None:
        init: Init | None = None
        if isinstance(value, TensorConstV):
            init = Init(value.init.scheme, dict(value.init.params), span_of(node))
        elif isinstance(value, ParamV) and value.init is not None:
            init = value.init
        self.set_param_init(param, init)

    def perturb_param(self, param: ParamV, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> None:
        """``w.add_(noise)`` after ``zeros_(w)``: a constant init the code changes afterwards.
        By a tensor or an unknown value it is no longer known to be constant (no finding, no
        fix); by constants it stays constant, but the site is now the in-place call, which no
        fix rewrites (rewriting the first init would change what the second one does)."""
        owner = param.owner
        current = param.init if owner is None else owner.weight_init if param.role == "weight" else \
            owner.bias_init if param.role == "bias" else None
        if current is None or not current.is_constant:
            return
        values = [*args, *kwargs.values()]
        if all(isinstance(v, Const) and isinstance(v.value, (int, float)) for v in values):
            self.set_param_init(param, Init("constant", {}, span_of(node)))
        else:
            self.set_param_init(param, Init("unknown", {}, span_of(node)))

    def set_param_init(self, param: ParamV, init: Init | None) -> None:
        if param.owner is None:
            param.init = init
            return
        if param.role == "weight":
            param.owner.weight_init = init
        elif param.role == "bias":
            param.owner.bias_init = init

    def own(self, value: Value) -> None:
        if isinstance(value, (LayerObj, ContainerV, InstanceV, FunctionalModelV)):
            value.owned = True
        elif isinstance(value, ListV):
            for item in value.items:
                self.own(item)
        elif isinstance(value, DictV):
            for item in value.items.values():
                self.own(item)

    # ------------------------------------------------------------------ expressions

    def eval_safe(self, node: ast.expr, scope: Scope) -> Value:
        try:
            return self.eval(node, scope)
        except (BudgetExceeded, _Return, _Break, _Continue, RecursionError):
            raise
        except Exception:  # a construct we model wrongly must not take the file down
            return UNKNOWN

    def eval(self, node: ast.expr, scope: Scope) -> Value:
        self.tick()
        method = getattr(self, "eval_" + type(node).__name__, None)
        if method is None:
            return UNKNOWN
        return method(node, scope)

    def eval_Constant(self, node: ast.Constant, scope: Scope) -> Value:
        return Const(node.value)

    def eval_Name(self, node: ast.Name, scope: Scope) -> Value:
        found = scope.lookup(node.id)
        if found is not None:
            return found
        if node.id in _BUILTINS:
            return Ref("builtins." + node.id)
        if node.id == "__name__":
            return Const("__main__")  # a script's main block builds models like any other code
        return UNKNOWN

    def eval_Attribute(self, node: ast.Attribute, scope: Scope) -> Value:
        obj = self.eval(node.value, scope)
        return self.get_attribute(obj, node.attr, node)

    def get_attribute(self, obj: Value, attr: str, node: ast.AST | None = None) -> Value:
        if isinstance(obj, (LossV, OptimizerV)):
            return MethodV(obj, attr)
        if isinstance(obj, Ref):
            if obj.qualname == "math" and attr in _MATH:
                return Const(_MATH[attr]) if not callable(_MATH[attr]) else Ref(f"math.{attr}")
            return Ref(catalog.fold_name(f"{obj.qualname}.{attr}"))
        if isinstance(obj, InstanceV):
            if attr in obj.attrs:
                return obj.attrs[attr]
            found = obj.info.find_method(attr)
            if found is not None:
                cls, fnode = found
                if _is_property(fnode):
                    return self.call_function(self.make_function(fnode, cls.scope, cls), [obj], {})
                return BoundV(obj, self.make_function(fnode, cls.scope, cls))
            cattr = obj.info.find_class_attr(attr)
            if cattr is not None:
                return cattr
            if attr == "__class__":
                return ClassV(obj.info)
            return MethodV(obj, attr)
        if isinstance(obj, ClassV):
            if attr in obj.info.methods:
                return self.make_function(obj.info.methods[attr], obj.info.scope, obj.info)
            cattr = obj.info.find_class_attr(attr)
            if cattr is not None:
                return cattr
            if attr == "__name__":
                return Const(obj.info.name)
            return UNKNOWN
        if isinstance(obj, LayerObj):
            if attr in ("weight", "bias"):
                return ParamV(obj.layer, attr, ndim=_param_ndim(obj.layer, attr))
            if attr == "__class__":
                return TypeV(obj)
            if attr in ("in_features", "in_channels") and obj.layer.fan_in is not None:
                return Const(obj.layer.fan_in // (obj.layer.receptive or 1))
            if attr in ("out_features", "out_channels", "units", "filters", "embedding_dim"):
                return Const(obj.layer.fan_out) if obj.layer.fan_out is not None else UNKNOWN
            return MethodV(obj, attr)
        if isinstance(obj, TypeV) and attr == "__name__":
            return self.type_name(obj.of)
        if isinstance(obj, ParamV):
            if attr == "data":
                return obj
            if attr in ("ndim",):
                return Const(obj.ndim) if obj.ndim is not None else UNKNOWN
            if attr == "shape":
                return UNKNOWN
            return MethodV(obj, attr)
        if isinstance(obj, Const):
            value = obj.value
            if isinstance(value, str) and attr in _STR_METHODS:
                return MethodV(obj, attr)
            if attr in ("real", "imag") and isinstance(value, (int, float)):
                return Const(getattr(value, attr))
            return UNKNOWN
        if isinstance(obj, (TensorV, ContainerV, ListV, DictV, FunctionalModelV, TensorConstV)):
            if isinstance(obj, TensorV) and attr in ("T", "mT", "shape", "dtype", "device"):
                return obj if attr in ("T", "mT") else UNKNOWN
            if isinstance(obj, ContainerV) and obj.kind == "moduledict" and obj.keys and attr in obj.keys:
                return obj.items[obj.keys.index(attr)]
            if isinstance(obj, ContainerV) and obj.keys and attr in obj.keys:
                return obj.items[obj.keys.index(attr)]
            return MethodV(obj, attr)
        if isinstance(obj, TypeV):
            return UNKNOWN
        return UNKNOWN

    def type_name(self, value: Value) -> Value:
        if isinstance(value, LayerObj):
            return Const(value.layer.op)
        if isinstance(value, InstanceV):
            return Const(value.info.name)
        if isinstance(value, ContainerV):
            return Const({"sequential": "Sequential", "modulelist": "ModuleList", "moduledict": "ModuleDict",
                          "keras_sequential": "Sequential"}[value.kind])
        return UNKNOWN

    def eval_Subscript(self, node: ast.Subscript, scope: Scope) -> Value:
        obj = self.eval(node.value, scope)
        key = self.eval(node.slice, scope)
        return self.get_item(obj, key)

    def get_item(self, obj: Value, key: Value) -> Value:
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
        if isinstance(obj, TensorV):
            return obj  # x[:, 0] keeps the path
        return UNKNOWN

    def eval_Slice(self, node: ast.Slice, scope: Scope) -> Value:
        parts = []
        for part in (node.lower, node.upper, node.step):
            if part is None:
                parts.append(None)
                continue
            value = self.eval(part, scope)
            if not isinstance(value, Const) or not isinstance(value.value, (int, type(None))):
                return UNKNOWN
            parts.append(value.value)
        return Const(slice(*parts))

    def eval_Index(self, node: Any, scope: Scope) -> Value:  # pragma: no cover - py<3.9
        return self.eval(node.value, scope)

    def eval_Tuple(self, node: ast.Tuple, scope: Scope) -> Value:
        items = self.eval_elements(node.elts, scope)
        if items is not None and all(isinstance(i, Const) for i in items.items):
            return Const(tuple(i.value for i in items.items))  # type: ignore[union-attr]
        if items is None:
            return UNKNOWN
        items.is_tuple = True
        return items

    def eval_List(self, node: ast.List, scope: Scope) -> Value:
        items = self.eval_elements(node.elts, scope)
        return items if items is not None else ListV([], partial=True)

    eval_Set = eval_List

    def eval_elements(self, elts: list[ast.expr], scope: Scope) -> ListV | None:
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
        for key, value in zip(node.keys, node.values):
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
        formula = _activation_formula(node)
        if formula is not None:
            name, operand = formula
            inner = self.eval(operand, scope)
            if isinstance(inner, TensorV):
                layer = Layer(LayerKind.ACTIVATION, f"{name} formula", span_of(node), "torch", activation=name, bias=False)
                return TensorV(inner.nodes + (layer,), inner.hint)
        left = self.eval(node.left, scope)
        right = self.eval(node.right, scope)
        return self.binop(node.op, left, right, node)

    def binop(self, op: ast.operator, left: Value, right: Value, node: ast.AST) -> Value:
        if isinstance(left, LossV) or isinstance(right, LossV):
            return left if isinstance(left, LossV) else right  # total = loss + 0.1 * aux
        if isinstance(left, Const) and isinstance(right, Const):
            fn = _BINOPS.get(type(op))
            if fn is None:
                return UNKNOWN
            try:
                if isinstance(op, ast.Pow) and isinstance(right.value, (int, float)) and abs(right.value) > 64:
                    return UNKNOWN
                if isinstance(op, ast.Mod) and isinstance(left.value, str) and _WIDE_FORMAT.search(left.value):
                    return UNKNOWN  # '%0999999999d' % 1 would allocate a gigabyte
                if isinstance(op, (ast.LShift, ast.RShift)) and isinstance(right.value, int) and abs(right.value) > 4096:
                    return UNKNOWN
                for seq_value, count_value in ((left.value, right.value), (right.value, left.value)):
                    if isinstance(op, ast.Mult) and isinstance(seq_value, (str, tuple, bytes, list)) and \
                            isinstance(count_value, int) and len(seq_value) * count_value > MAX_LIST_ITEMS:
                        return UNKNOWN
                if isinstance(op, (ast.Add, ast.Mult, ast.LShift)) and isinstance(left.value, int) and \
                        isinstance(right.value, int) and max(abs(left.value), abs(right.value)).bit_length() > 4096:
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
            return ContainerV(left.kind, left.items + right.items, None, left.span, left.framework,
                              left.partial or right.partial)
        if isinstance(left, TensorV) or isinstance(right, TensorV):
            return self.tensor_binop(op, left, right, node)
        if isinstance(left, (TensorConstV, ParamV)) or isinstance(right, (TensorConstV, ParamV)):
            return self.scale_const(op, left, right)
        return UNKNOWN

    def scale_const(self, op: ast.operator, left: Value, right: Value) -> Value:
        """``torch.ones(d) * 1e-5``, ``torch.randn(n, m) * 0.01``: keep the init, scaled."""
        tensor, scalar = (left, right) if isinstance(left, (TensorConstV, ParamV)) else (right, left)
        init = tensor.init if isinstance(tensor, (TensorConstV, ParamV)) else None
        if init is None or not isinstance(scalar, Const) or not isinstance(scalar.value, (int, float)):
            return UNKNOWN
        factor = float(scalar.value)
        if isinstance(op, ast.Div) and tensor is left:
            factor = 1.0 / factor if factor else math.inf
        elif not isinstance(op, ast.Mult):
            return UNKNOWN
        params = dict(init.params)
        scheme = init.scheme
        if scheme in ("zeros",):
            pass
        elif scheme in ("ones", "constant"):
            params["value"] = params.get("value", 1.0) * factor
            scheme = "constant"
        elif scheme == "normal":
            params["std"] = params.get("std", 1.0) * abs(factor)
        elif scheme == "uniform":
            a, b = params.get("a", 0.0) * factor, params.get("b", 1.0) * factor
            params["a"], params["b"] = min(a, b), max(a, b)
        else:
            return UNKNOWN
        return TensorConstV(Init(scheme, params), getattr(tensor, "shape", None))

    def tensor_binop(self, op: ast.operator, left: Value, right: Value, node: ast.AST) -> Value:
        span = span_of(node)
        if isinstance(left, TensorV) and isinstance(right, TensorV):
            if isinstance(op, ast.Add) or isinstance(op, ast.Sub):
                return merge_residual(left, right, span)
            if isinstance(op, ast.Mult):
                return merge_gate(left, right, span)
            if isinstance(op, ast.MatMult):
                return merge_other(left, right)
            return merge_other(left, right)
        tensor = left if isinstance(left, TensorV) else right
        other = right if tensor is left else left
        assert isinstance(tensor, TensorV)
        if (isinstance(op, (ast.Div, ast.FloorDiv, ast.Mod)) and tensor is right) or isinstance(op, ast.Pow):
            # c / x, x ** k: a nonlinearity we do not model; never reason across it.
            if not (isinstance(op, ast.Pow) and isinstance(other, Const) and other.value == 1):
                return TensorV(tensor.nodes + (Layer(LayerKind.UNKNOWN, "elementwise", span, "torch"),), tensor.hint)
        if isinstance(op, ast.MatMult) and isinstance(other, ParamV):
            shape = other.shape if tensor is left else None
            layer = Layer(LayerKind.DENSE, "matmul", span, "torch", weight_init=other.init, bias=False,
                          fan_in=shape[0] if shape and len(shape) == 2 else None,
                          fan_out=shape[1] if shape and len(shape) == 2 else None)
            return TensorV(tensor.nodes + (layer,), tensor.hint)
        if isinstance(op, ast.Mult) and isinstance(other, ParamV):
            value = other.init.constant_value if other.init is not None else None
            layer = Layer(LayerKind.SCALE, "scale", span, "torch", scale_value=value, weight_init=other.init)
            return TensorV(tensor.nodes + (layer,), tensor.hint)
        if isinstance(op, ast.Mult) and isinstance(other, Const) and isinstance(other.value, (int, float)) \
                and other.value == 0:
            layer = Layer(LayerKind.SCALE, "scale", span, "torch", scale_value=0.0)
            return TensorV(tensor.nodes + (layer,), tensor.hint)
        return tensor  # scaling by a constant or an unknown scalar: same path

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
        if isinstance(operand, TensorV):
            return operand
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
        for op, comparator in zip(node.ops, node.comparators):
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
            left_none = _is_none(left)
            right_none = _is_none(right)
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
        return _prefer(a, b)

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

    def comprehension(self, gens: list[ast.comprehension], index: int, scope: Scope,
                      emit: Callable[[Scope], None], out: ListV) -> None:
        if index == len(gens):
            emit(scope)
            return
        gen = gens[index]
        items = self.iterate(self.eval(gen.iter, scope))
        if items is None:
            out.partial = True
            return
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
                if len(v) > MAX_LOOP_ITERATIONS:
                    return None
                return [Const(i) for i in v]
            if isinstance(v, (tuple, list, str)):
                return [Const(i) for i in v]
        return None

    # ------------------------------------------------------------------ calls

    def eval_Call(self, node: ast.Call, scope: Scope) -> Value:
        func = self.eval(node.func, scope)
        args: list[Value] = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                items = self.iterate(self.eval(arg.value, scope))
                if items is None:
                    args.append(UNKNOWN)
                    continue
                args.extend(items)
            else:
                args.append(self.eval(arg, scope))
        kwargs: dict[str, Value] = {}
        for kw in node.keywords:
            if kw.arg is None:
                extra = self.eval(kw.value, scope)
                if isinstance(extra, DictV):
                    kwargs.update({str(k): v for k, v in extra.items.items()})
                continue
            kwargs[kw.arg] = self.eval(kw.value, scope)
        self._training_notes(node, args, kwargs)
        return self.call(func, args, kwargs, node)

    def _training_notes(self, node: ast.Call, args: list[Value], kwargs: dict[str, Value]) -> None:
        """Gradient clipping however it is spelled: a clip call, or a clipping argument."""
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in _CLIP_CALLS:
            self.facts.clips.append(span_of(node))
            return
        for key in _CLIP_KWARGS & kwargs.keys():
            value = kwargs[key]
            if not (isinstance(value, Const) and value.value in (None, 0, 0.0, False)):
                self.facts.clips.append(span_of(node))
                return
        if name == "fit" and isinstance(func, ast.Attribute):
            # trainer.fit(model): Lightning / HF-style trainers train the model they are given.
            for value in list(args) + list(kwargs.values()):
                if self._is_model(value):
                    self.facts.fits.append((span_of(node), id(value)))
                    break

    def call(self, func: Value, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        if isinstance(func, LossObjV):
            return self.apply_loss(func.spec, args, kwargs, node)
        if isinstance(func, LossV) or isinstance(func, OptimizerV):
            return UNKNOWN
        if isinstance(func, Ref):
            return self.call_ref(func, args, kwargs, node)
        if isinstance(func, FunctionV):
            return self.call_function(func, args, kwargs)
        if isinstance(func, BoundV):
            return self.call_function(func.func, [func.self_val] + args, kwargs, self_val=func.self_val)
        if isinstance(func, ClassV):
            return self.instantiate(func.info, args, kwargs, node)
        if isinstance(func, MethodV):
            return self.call_method(func.target, func.name, args, kwargs, node)
        if isinstance(func, (LayerObj, ContainerV, InstanceV, FunctionalModelV)):
            return self.call_module(func, args, kwargs, node)
        if isinstance(func, InitV):
            return UNKNOWN
        return self.unknown_call(args, kwargs, node, "call")

    def unknown_call(self, args: list[Value], kwargs: dict[str, Value], node: ast.AST, name: str) -> Value:
        tensor = _first_tensor(args, kwargs)
        if tensor is None:
            return UNKNOWN
        layer = Layer(LayerKind.UNKNOWN, name, span_of(node), "torch")
        return TensorV(tensor.nodes + (layer,), tensor.hint)

    def bind(self, fnode: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, defaults: dict[str, Value],
             args: list[Value], kwargs: dict[str, Value], scope: Scope) -> None:
        a = fnode.args
        positional = [p.arg for p in a.posonlyargs + a.args]
        for name, value in zip(positional, args):
            scope.vars[name] = value
        if a.vararg is not None:
            scope.vars[a.vararg.arg] = ListV(list(args[len(positional):]), is_tuple=True)
        extra: dict[str, Value] = {}
        known = set(positional) | {p.arg for p in a.kwonlyargs}
        for name, value in kwargs.items():
            if name in known:
                scope.vars[name] = value
            else:
                extra[name] = value
        if a.kwarg is not None:
            scope.vars[a.kwarg.arg] = DictV(dict(extra))
        for name in positional + [p.arg for p in a.kwonlyargs]:
            if name not in scope.vars:
                scope.vars[name] = defaults.get(name, UNKNOWN)

    def call_function(self, func: FunctionV, args: list[Value], kwargs: dict[str, Value],
                      self_val: Value | None = None) -> Value:
        if self.depth >= MAX_CALL_DEPTH:
            return self.unknown_call(args, kwargs, func.node, func.name)
        self.called_functions.add(id(func.node))
        scope = Scope(func.scope)
        self.bind(func.node, func.defaults, args, kwargs, scope)
        saved = self.frame
        self.frame = Frame(cls=func.owner, self_val=self_val if self_val is not None else (args[0] if args and func.owner else None))
        self.depth += 1
        try:
            if isinstance(func.node, ast.Lambda):
                return self.eval_safe(func.node.body, scope)
            result: Value = Const(None)
            try:
                self.exec_block(func.node.body, scope)
            except _Return as ret:
                result = ret.value
            except (_Break, _Continue):
                pass
            else:
                if self.frame.returned:
                    result = self.frame.returned[0]
            self._note_factory(func, result)
            return result
        finally:
            self.depth -= 1
            self.frame = saved

    def _note_factory(self, func: FunctionV, result: Value) -> None:
        """A module-level function that builds a model with all-default arguments is a factory the
        dynamic check can call."""
        if func.scope is not self.module_scope or isinstance(func.node, ast.Lambda) or func.owner is not None:
            return
        if not isinstance(result, (ContainerV, FunctionalModelV, InstanceV)) or getattr(result, "factory", None):
            return
        args = func.node.args
        required = len(args.posonlyargs + args.args) - len(args.defaults)
        if required > 0 or any(d is None for d in args.kw_defaults):
            return
        result.factory = func.name  # type: ignore[union-attr]

    def instantiate(self, info: ClassInfo, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        self.instantiated_classes.add(info.name)
        instance = InstanceV(info, {}, span_of(info.node))
        if info.container_base in ("sequential", "keras_sequential"):
            instance.seq_items = []
        init = info.find_method("__init__")
        if init is not None:
            cls, fnode = init
            self.call_function(self.make_function(fnode, cls.scope, cls), [instance] + args, kwargs, self_val=instance)
        elif instance.seq_items is not None:
            self._fill_sequential(instance, args, kwargs)
        if info.framework is not None:
            self.built.append(instance)
        return instance

    def _fill_sequential(self, instance: InstanceV, args: list[Value], kwargs: dict[str, Value]) -> None:
        assert instance.seq_items is not None
        items, keys, partial = self._sequential_items(args)
        for item in items:
            self.own(item)
        instance.seq_items.extend(items)
        instance.partial = instance.partial or partial

    def _sequential_items(self, args: list[Value]) -> tuple[list[Value], list[str] | None, bool]:
        if len(args) == 1 and isinstance(args[0], DictV):
            return list(args[0].items.values()), [str(k) for k in args[0].items], args[0].partial
        if len(args) == 1 and isinstance(args[0], ListV) and args[0].items and all(
                isinstance(i, ListV) and len(i.items) == 2 for i in args[0].items):  # OrderedDict([(name, m)])
            pairs = [i for i in args[0].items if isinstance(i, ListV)]
            return [p.items[1] for p in pairs], [str(getattr(p.items[0], "value", "?")) for p in pairs], args[0].partial
        partial = any(isinstance(a, UnknownV) for a in args)
        return [a for a in args if not isinstance(a, UnknownV)], None, partial

    # ---- method calls on values that are not user functions

    def call_method(self, target: Value, name: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        if isinstance(target, LossV):
            if name == "backward":
                self.facts.backwards.append((span_of(node), target.use))
                return Const(None)
            return target if name in ("mean", "sum", "__add__", "float", "to") else UNKNOWN
        if isinstance(target, OptimizerV):
            if name == "step":
                self.facts.steps.append(span_of(node))
            return Const(None)
        if name in ("fit", "fit_generator", "train_on_batch") and self._is_model(target):
            self.facts.fits.append((span_of(node), id(target)))
            return UNKNOWN
        if name == "compile" and self._is_model(target):
            self._keras_compile(target, args, kwargs, node)
            return Const(None)
        if name == "fit" and isinstance(target, UnknownV):
            return UNKNOWN
        if isinstance(target, TensorV):
            return self.tensor_method(target, name, args, kwargs, node)
        if isinstance(target, (ListV,)):
            return self.list_method(target, name, args)
        if isinstance(target, DictV):
            if name in ("items",):
                return ListV([ListV([Const(k), v], is_tuple=True) for k, v in target.items.items()], target.partial)
            if name == "values":
                return ListV(list(target.items.values()), target.partial)
            if name == "keys":
                return ListV([Const(k) for k in target.items], target.partial)
            if name in ("get", "pop"):
                if args and isinstance(args[0], Const):
                    default = args[1] if len(args) > 1 else Const(None)
                    value = target.items.get(args[0].value, default)
                    if name == "pop":
                        target.items.pop(args[0].value, None)
                    return value if not target.partial or args[0].value in target.items else UNKNOWN
                return UNKNOWN
            if name in ("update", "setdefault"):
                target.partial = True
            return UNKNOWN
        if isinstance(target, Const) and isinstance(target.value, str):
            if not _safe_string_call(target.value, name, [a.value for a in args if isinstance(a, Const)]):
                return UNKNOWN
            try:
                if all(isinstance(a, Const) for a in args):
                    return Const(getattr(target.value, name)(*[a.value for a in args]))  # type: ignore[union-attr]
            except Exception:
                return UNKNOWN
            return UNKNOWN
        if isinstance(target, ParamV):
            return self.param_method(target, name, args, kwargs, node)
        if isinstance(target, ContainerV):
            return self.container_method(target, name, args, kwargs, node)
        if isinstance(target, InstanceV):
            return self.instance_builtin_method(target, name, args, kwargs, node)
        if isinstance(target, LayerObj):
            if name in ("reset_parameters", "_reset_parameters"):
                return Const(None)
            if name == "apply" and args:
                self.call(args[0], [target], {}, node)
                return target
            if name in ("parameters", "named_parameters"):
                params = self.layer_params(target.layer, "")
                if name == "parameters":
                    return ListV([p for _, p in params])
                return ListV([ListV([Const(n), p], is_tuple=True) for n, p in params])
            if name in ("modules", "children"):
                return ListV([target])
            if name in ("forward", "__call__"):
                return self.call_module(target, args, kwargs, node)
            if name in ("to", "cuda", "cpu", "float", "double", "half", "train", "eval", "requires_grad_"):
                return target
            return UNKNOWN
        if isinstance(target, FunctionalModelV):
            if name in ("to", "cuda", "cpu", "summary", "compile", "build"):
                return Const(None) if name in ("summary", "compile", "build") else target
            return UNKNOWN
        return UNKNOWN

    def list_method(self, target: ListV, name: str, args: list[Value]) -> Value:
        if name == "append" and args:
            if len(target.items) >= MAX_LIST_ITEMS:
                target.partial = True
                return Const(None)
            target.items.append(args[0])
            if self.mutating_uncertainly(target):
                target.partial = True
            return Const(None)
        if name == "extend" and args:
            self.list_extend(target, args[0])
            return Const(None)
        if name == "insert" and len(args) == 2 and isinstance(args[0], Const):
            try:
                target.items.insert(args[0].value, args[1])
            except TypeError:
                target.partial = True
            if self.mutating_uncertainly(target):
                target.partial = True
            return Const(None)
        if name == "pop":
            if target.items and not args:
                return target.items.pop()
            target.partial = True
            return UNKNOWN
        if name == "copy":
            return ListV(list(target.items), target.partial)
        if name == "index" and args:
            return UNKNOWN
        if name == "reverse":
            target.items.reverse()
            return Const(None)
        return UNKNOWN

    def list_extend(self, target: ListV | ContainerV, source: Value) -> None:
        items = self.iterate(source)
        if items is None:
            target.partial = True
            return
        if isinstance(target, ContainerV):
            for item in items:
                self.own(item)
        if len(target.items) + len(items) > MAX_LIST_ITEMS:
            target.partial = True
            return
        target.items.extend(items)
        if self.mutating_uncertainly(target) or (isinstance(source, (ListV, ContainerV)) and source.partial):
            target.partial = True

    def container_method(self, target: ContainerV, name: str, args: list[Value], kwargs: dict[str, Value],
                         node: ast.AST) -> Value:
        if name in ("append", "add") and args:
            self.own(args[0])
            if target.kind == "moduledict":
                return UNKNOWN
            target.items.append(args[0])
            if self.mutating_uncertainly(target):
                target.partial = True
            if target.kind == "keras_sequential" and target.input_hint is None:
                target.input_hint = _keras_hint_from_layer(args[0])
            return Const(None) if name == "add" else target
        if name == "extend" and args:
            self.list_extend(target, args[0])
            return target
        if name == "insert" and len(args) == 2 and isinstance(args[0], Const):
            self.own(args[1])
            target.items.insert(args[0].value, args[1])
            return Const(None)
        if name == "add_module" and len(args) == 2:
            self.own(args[1])
            target.items.append(args[1])
            if target.keys is not None and isinstance(args[0], Const):
                target.keys.append(str(args[0].value))
            if self.mutating_uncertainly(target):
                target.partial = True
            return Const(None)
        if name in ("items",) and target.kind == "moduledict":
            return ListV([ListV([Const(k), v], is_tuple=True) for k, v in zip(target.keys or [], target.items)],
                         target.partial)
        if name in ("values", "children") or (name == "modules" and False):
            return ListV(list(target.items), target.partial)
        if name == "keys":
            return ListV([Const(k) for k in (target.keys or [])], target.partial)
        if name == "apply" and args:
            for module in self.walk_modules(target):
                self.call(args[0], [module], {}, node)
            return target
        if name in ("modules", "named_modules", "parameters", "named_parameters", "named_children"):
            return self.module_listing(target, name)
        if name in ("forward", "__call__"):
            return self.call_module(target, args, kwargs, node)
        if name in ("to", "cuda", "cpu", "float", "double", "half", "train", "eval", "requires_grad_"):
            return target
        if name in ("compile", "summary", "build", "fit", "save"):
            return Const(None)
        return UNKNOWN

    def instance_builtin_method(self, target: InstanceV, name: str, args: list[Value], kwargs: dict[str, Value],
                                node: ast.AST) -> Value:
        """nn.Module / keras.Model methods the user did not override."""
        if name in ("add_module", "register_module") and len(args) == 2:
            if isinstance(args[0], Const):
                target.attrs[str(args[0].value)] = args[1]
                self.own(args[1])
            if target.seq_items is not None:
                target.seq_items.append(args[1])
                if self.mutating_uncertainly(target):
                    target.partial = True
            return Const(None)
        if name == "add" and target.seq_items is not None and args:  # keras Sequential subclass
            self.own(args[0])
            target.seq_items.append(args[0])
            return Const(None)
        if name == "append" and target.seq_items is not None and args:
            self.own(args[0])
            target.seq_items.append(args[0])
            return target
        if name == "apply" and args:
            for module in self.walk_modules(target):
                self.call(args[0], [module], {}, node)
            return target
        if name in ("modules", "named_modules", "parameters", "named_parameters", "children", "named_children"):
            return self.module_listing(target, name)
        if name == "state_dict":
            pairs = self.module_listing(target, "named_parameters")
            assert isinstance(pairs, ListV)
            return DictV({p.items[0].value: p.items[1] for p in pairs.items  # type: ignore[union-attr]
                          if isinstance(p, ListV) and isinstance(p.items[0], Const)})
        if name in ("forward", "__call__", "call"):
            return self.call_module(target, args, kwargs, node)
        if name in ("register_buffer", "register_parameter", "compile", "summary", "build", "fit",
                    "init_weights", "initialize", "post_init", "tie_weights"):
            return Const(None)
        if name in ("to", "cuda", "cpu", "float", "double", "half", "train", "eval", "requires_grad_"):
            return target
        return UNKNOWN

    # ---- walking module trees (apply, modules(), named_parameters())

    def children_of(self, value: Value) -> list[tuple[str, Value]]:
        out: list[tuple[str, Value]] = []
        if isinstance(value, InstanceV):
            seen: set[int] = set()
            if value.seq_items is not None:
                for i, item in enumerate(value.seq_items):
                    if _is_module(item):
                        out.append((str(i), item))
                        seen.add(id(item))
            for key, item in value.attrs.items():
                if _is_module(item) and id(item) not in seen:
                    out.append((key, item))
                    seen.add(id(item))
                elif isinstance(item, ListV):  # keras subclassed models track lists of layers
                    for i, sub in enumerate(item.items):
                        if _is_module(sub) and id(sub) not in seen:
                            out.append((f"{key}.{i}", sub))
                            seen.add(id(sub))
        elif isinstance(value, ContainerV):
            keys = value.keys if value.keys and len(value.keys) == len(value.items) else [str(i) for i in range(len(value.items))]
            for key, item in zip(keys, value.items):
                if _is_module(item):
                    out.append((key, item))
        return out

    def walk_modules(self, root: Value) -> list[Value]:
        """Like nn.Module.apply's order: children first, then the module itself; shared modules once."""
        seen: set[int] = set()
        order: list[Value] = []

        def visit(value: Value, depth: int) -> None:
            if id(value) in seen or depth > 64:
                return
            seen.add(id(value))
            for _, child in self.children_of(value):
                visit(child, depth + 1)
            order.append(value)

        visit(root, 0)
        return order

    def named_modules(self, root: Value) -> list[tuple[str, Value]]:
        seen: set[int] = set()
        out: list[tuple[str, Value]] = []

        def visit(prefix: str, value: Value, depth: int) -> None:
            if id(value) in seen or depth > 64:
                return
            seen.add(id(value))
            out.append((prefix, value))
            for name, child in self.children_of(value):
                visit(f"{prefix}.{name}" if prefix else name, child, depth + 1)

        visit("", root, 0)
        return out

    def layer_params(self, layer: Layer, prefix: str) -> list[tuple[str, ParamV]]:
        dot = f"{prefix}." if prefix else ""
        params = []
        if layer.kind in (LayerKind.DENSE, LayerKind.CONV, LayerKind.EMBEDDING, LayerKind.RECURRENT,
                          LayerKind.NORMALIZATION, LayerKind.ATTENTION):
            params.append((f"{dot}weight", ParamV(layer, "weight", ndim=_param_ndim(layer, "weight"))))
            if layer.bias is not False and layer.kind != LayerKind.EMBEDDING:
                params.append((f"{dot}bias", ParamV(layer, "bias", ndim=1)))
        return params

    def module_listing(self, root: Value, name: str) -> Value:
        named = self.named_modules(root)
        if name == "modules":
            return ListV([m for _, m in named])
        if name == "named_modules":
            return ListV([ListV([Const(n), m], is_tuple=True) for n, m in named])
        if name in ("children", "named_children"):
            kids = self.children_of(root)
            if name == "children":
                return ListV([m for _, m in kids])
            return ListV([ListV([Const(n), m], is_tuple=True) for n, m in kids])
        params: list[tuple[str, Value]] = []
        for prefix, module in named:
            if isinstance(module, LayerObj):
                params.extend(self.layer_params(module.layer, prefix))
            elif isinstance(module, InstanceV):
                for key, value in module.attrs.items():
                    name_ = f"{prefix}.{key}" if prefix else key
                    if isinstance(value, ParamV) and value.owner is None:
                        params.append((name_, value))
                    elif isinstance(value, ListV):
                        params.extend((f"{name_}.{i}", v) for i, v in enumerate(value.items)
                                      if isinstance(v, ParamV) and v.owner is None)
                    elif isinstance(value, DictV):
                        params.extend((f"{name_}.{k}", v) for k, v in value.items.items()
                                      if isinstance(v, ParamV) and v.owner is None)
        if name == "parameters":
            return ListV([p for _, p in params])
        return ListV([ListV([Const(n), p], is_tuple=True) for n, p in params])

    # ---- parameters and init

    def param_method(self, target: ParamV, name: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        spec = catalog.TENSOR_INIT_METHODS.get(name)
        if spec is not None:
            scheme, params = spec
            self.set_param_init(target, self.make_init(scheme, params, args, kwargs, node))
            return target
        if name == "copy_":
            source = args[0] if args else UNKNOWN
            self.apply_init_value(target, source, node)
            return target
        if name in ("dim", "ndimension"):
            return Const(target.ndim) if target.ndim is not None else UNKNOWN
        if name in ("size",):
            return UNKNOWN
        if name in ("requires_grad_", "detach", "clone", "to"):
            return target
        if name in ("mul_", "div_", "clamp_", "add_", "sub_"):
            self.perturb_param(target, args, kwargs, node)
            return target
        return UNKNOWN

    def make_init(self, scheme: str, names: tuple[str, ...], args: list[Value], kwargs: dict[str, Value],
                  node: ast.AST) -> Init | None:
        params: dict[str, float] = {}
        bound = dict(zip(names, args))
        bound.update({k: v for k, v in kwargs.items() if k in names or k in ("gain", "std", "mean", "a", "b")})
        for key, value in bound.items():
            if isinstance(value, Const) and isinstance(value.value, (int, float)) and not isinstance(value.value, bool):
                if not math.isfinite(value.value) or abs(value.value) > 1e6:
                    return Init("unknown", {}, span_of(node))  # U(-1, 1e308): no number is better than a wrong one
                params[key] = float(value.value)
            elif isinstance(value, Const) and isinstance(value.value, str):
                if key == "mode":
                    params["fan_out_mode"] = 1.0 if value.value == "fan_out" else 0.0
                elif key == "nonlinearity":
                    params["gain"] = torch_gain(value.value, params.get("a", 0.0), strict=False)
            elif key in ("value", "std", "gain", "a", "b", "mean"):
                return Init("unknown", {}, span_of(node))
        if scheme.startswith("kaiming") and "gain" not in params:
            params["gain"] = torch_gain("leaky_relu", params.get("a", 0.0))  # torch's default nonlinearity
        return Init(scheme, params, span_of(node))

    # ---- calls to external names: torch/keras API

    def call_ref(self, ref: Ref, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        q = ref.qualname
        leaf = ref.leaf
        if q.startswith("builtins."):
            return self.call_builtin(leaf, args, kwargs, node)
        if q.startswith("math.") and leaf in _MATH and callable(_MATH[leaf]):
            if all(isinstance(a, Const) for a in args) and _foldable([a.value for a in args]) and \
                    not (leaf == "pow" and any(isinstance(a.value, (int, float)) and abs(a.value) > 64 for a in args[1:])):
                try:
                    return Const(_MATH[leaf](*[a.value for a in args]))  # type: ignore[union-attr,operator]
                except Exception:
                    return UNKNOWN
            return UNKNOWN
        if q in ("collections.OrderedDict", "typing.OrderedDict"):
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
        if q in ("functools.partial",) and args:
            return _Partial(args[0], args[1:], kwargs)  # type: ignore[return-value]
        # ---- torch
        if q.startswith("torch.nn.init."):
            return self.call_torch_init(leaf, args, kwargs, node)
        if q.startswith("transformers.") and leaf == "Trainer":
            self.facts.clips.append(span_of(node))  # TrainingArguments.max_grad_norm defaults to 1.0
        if (q.startswith("torch.optim.") and ".lr_scheduler" not in q and leaf[:1].isupper()) or leaf in _OPTIMIZERS:
            return OptimizerV(span_of(node))
        if q.startswith("torch.nn.") and leaf.endswith("Loss") and q.count(".") == 2:
            return LossObjV(LossSpec(leaf, "torch", leaf in TORCH_LOGIT_LOSSES, span_of(node)))
        if q.startswith("torch.nn.functional.") and (leaf in TORCH_LOGIT_LOSSES or leaf in TORCH_PROBABILITY_LOSSES
                                                     or leaf in ("mse_loss", "nll_loss", "l1_loss")):
            return self.apply_loss(LossSpec(leaf, "torch", leaf in TORCH_LOGIT_LOSSES, span_of(node)), args, kwargs, node)
        if q.startswith("torch.nn.") and q.count(".") == 2:
            return self.construct_torch(leaf, args, kwargs, node)
        if q.startswith("torch.nn.functional.") or q.startswith("torch.") or q.startswith("F."):
            return self.call_torch_function(q, leaf, args, kwargs, node)
        # ---- keras
        if q.startswith("keras."):
            return self.call_keras(q, leaf, args, kwargs, node)
        # Wrappers that return the module they were given (same weights at init).
        if leaf in _MODULE_WRAPPERS and args and _is_module(args[0]):
            return args[0]
        # timm / other libraries' well-known init helpers
        if leaf in ("trunc_normal_", "lecun_normal_", "variance_scaling_", "trunc_normal_tf_"):
            return self.call_torch_init(leaf if leaf != "trunc_normal_tf_" else "trunc_normal_", args, kwargs, node)
        return self.unknown_call(args, kwargs, node, leaf)

    def call_builtin(self, name: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        consts = [a.value for a in args if isinstance(a, Const)]
        all_const = len(consts) == len(args)
        if name == "range":
            if all_const and all(isinstance(c, int) for c in consts) and consts:
                return Const(range(*consts))
            return UNKNOWN
        if name == "len":
            if args:
                items = self.iterate(args[0])
                if items is not None:
                    return Const(len(items))
            return UNKNOWN
        if not _foldable(consts) or (name == "pow" and len(consts) >= 2 and isinstance(consts[1], (int, float))
                                     and abs(consts[1]) > 64):
            return UNKNOWN
        if name in ("int", "float", "bool", "str", "abs", "round", "min", "max", "sum", "pow", "divmod") and all_const and args:
            try:
                fn = {"int": int, "float": float, "bool": bool, "str": str, "abs": abs, "round": round,
                      "min": min, "max": max, "sum": sum, "pow": pow, "divmod": divmod}[name]
                return Const(fn(*consts))
            except Exception:
                return UNKNOWN
        if name in ("min", "max", "sum") and len(args) == 1:
            items = self.iterate(args[0])
            if items is not None and all(isinstance(i, Const) for i in items) and items:
                try:
                    return Const({"min": min, "max": max, "sum": sum}[name](i.value for i in items))  # type: ignore[union-attr]
                except Exception:
                    return UNKNOWN
            return UNKNOWN
        if name in ("list", "tuple", "set", "sorted", "reversed"):
            if not args:
                return ListV([])
            items = self.iterate(args[0])
            if items is None:
                if isinstance(args[0], TensorV):
                    return args[0]
                return ListV([], partial=True)
            if name == "reversed":
                items = items[::-1]
            if name == "sorted" and all(isinstance(i, Const) for i in items):
                try:
                    items = [Const(v) for v in sorted(i.value for i in items)]  # type: ignore[union-attr]
                except Exception:
                    pass
            return ListV(items, is_tuple=name == "tuple")
        if name == "dict":
            if args and isinstance(args[0], DictV):
                return DictV(dict(args[0].items) | {k: v for k, v in kwargs.items()}, args[0].partial)
            return DictV(dict(kwargs))
        if name == "enumerate":
            items = self.iterate(args[0]) if args else None
            if items is None:
                return UNKNOWN
            start = consts[1] if len(consts) > 1 else 0
            return ListV([ListV([Const(i + start), v], is_tuple=True) for i, v in enumerate(items)])
        if name == "zip":
            lists = [self.iterate(a) for a in args]
            if any(item is None for item in lists):
                return UNKNOWN
            return ListV([ListV(list(group), is_tuple=True) for group in zip(*lists)])  # type: ignore[arg-type]
        if name == "isinstance" and len(args) == 2:
            result = self.isinstance_check(args[0], args[1], exact=False)
            return Const(result) if result is not None else UNKNOWN
        if name == "type" and len(args) == 1:
            return TypeV(args[0])
        if name == "getattr" and len(args) >= 2 and isinstance(args[1], Const) and isinstance(args[1].value, str):
            value = self.get_attribute(args[0], args[1].value)
            if isinstance(value, (UnknownV, MethodV)) and len(args) == 3 and not isinstance(args[0], InstanceV):
                return args[2] if isinstance(value, UnknownV) else value
            if isinstance(value, MethodV) and isinstance(args[0], InstanceV) and len(args) == 3:
                return args[2]
            return value
        if name == "setattr" and len(args) == 3 and isinstance(args[1], Const) and isinstance(args[1].value, str):
            self.set_attribute(args[0], args[1].value, args[2], node)
            return Const(None)
        if name == "hasattr" and len(args) == 2 and isinstance(args[1], Const):
            obj = args[0]
            if isinstance(obj, LayerObj):
                attr = args[1].value
                if attr == "weight":
                    return Const(obj.layer.kind not in (LayerKind.ACTIVATION, LayerKind.DROPOUT, LayerKind.POOLING))
                if attr == "bias":
                    return Const(obj.layer.kind not in (LayerKind.ACTIVATION, LayerKind.DROPOUT, LayerKind.POOLING)
                                 and obj.layer.bias is not False)
                if attr in ("reset_parameters",):
                    return Const(True)
            if isinstance(obj, InstanceV):
                attr = args[1].value
                if attr in obj.attrs or obj.info.find_method(attr):
                    return Const(True)
            return UNKNOWN
        if name == "super":
            return _Super(self.frame.cls, self.frame.self_val)  # type: ignore[return-value]
        if name in ("print", "setattr", "delattr"):
            return Const(None)
        if name == "callable" and args:
            return Const(isinstance(args[0], (FunctionV, BoundV, Ref, ClassV, LayerObj, ContainerV, InstanceV)))
        return UNKNOWN

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
            if isinstance(classes, Ref):
                leaf = classes.leaf
                if not (classes.qualname.startswith("torch.nn.") or classes.qualname.startswith("keras.")):
                    return None if not exact else False
                if leaf in _ABSTRACT_TORCH_BASES:
                    group = _ABSTRACT_TORCH_BASES[leaf]
                    return True if group is None and not exact else (value.layer.op in group if group else exact is False)
                if leaf == "Layer" and classes.qualname.startswith("keras."):
                    return not exact
                return value.layer.op == leaf
            if isinstance(classes, ClassV):
                return False
            return None
        if isinstance(value, InstanceV):
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
        if isinstance(value, ContainerV):
            if isinstance(classes, Ref):
                names = {"sequential": "Sequential", "modulelist": "ModuleList", "moduledict": "ModuleDict",
                         "keras_sequential": "Sequential"}
                if classes.leaf == "Module" and not exact:
                    return True
                return names[value.kind] == classes.leaf
            if isinstance(classes, ClassV):
                return False
            return None
        if isinstance(value, Const):
            if isinstance(classes, Ref) and classes.qualname.startswith("builtins."):
                typ = {"int": int, "float": float, "str": str, "bool": bool, "tuple": tuple, "list": list,
                       "dict": dict}.get(classes.leaf)
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

    def call_torch_init(self, leaf: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        spec = catalog.TORCH_INIT_FUNCTIONS.get(leaf)
        if spec is None:
            return UNKNOWN
        scheme, names = spec
        target = args[0] if args else kwargs.get("tensor", UNKNOWN)
        init = self.make_init(scheme, names, args[1:], kwargs, node)
        if isinstance(target, ParamV):
            self.set_param_init(target, init)
        elif isinstance(target, ListV):
            for item in target.items:
                if isinstance(item, ParamV):
                    self.set_param_init(item, init)
        return target

    def construct_torch(self, leaf: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        span = span_of(node)
        container = _is_container_leaf(f"torch.nn.{leaf}")
        if container is not None:
            if container == "moduledict":
                source = args[0] if args else DictV({})
                if isinstance(source, DictV):
                    value = ContainerV("moduledict", list(source.items.values()), [str(k) for k in source.items],
                                       span, "torch", source.partial)
                else:
                    value = ContainerV("moduledict", [], [], span, "torch", partial=True)
            elif container == "modulelist":
                source = args[0] if args else ListV([])
                items = self.iterate(source)
                value = ContainerV("modulelist", list(items or []), None, span, "torch", items is None or
                                   (isinstance(source, (ListV, ContainerV)) and source.partial))
            else:
                items, keys, partial = self._sequential_items(args)
                value = ContainerV("sequential", items, keys, span, "torch", partial)
            for item in value.items:
                self.own(item)
            self.built.append(value)
            return value
        if leaf == "ParameterList":
            items = self.iterate(args[0]) if args else []
            return ListV(list(items or []), partial=items is None)
        if leaf == "ParameterDict":
            source = args[0] if args else DictV({})
            return DictV(dict(source.items), source.partial) if isinstance(source, DictV) else DictV({}, partial=True)
        if leaf in catalog.TORCH_PASSTHROUGH:
            return LayerObj(Layer(LayerKind.OTHER, leaf, span, "torch", activation="linear", bias=False))
        if leaf == "Parameter":
            source = args[0] if args else kwargs.get("data", UNKNOWN)
            init = source.init if isinstance(source, TensorConstV) else None
            shape = source.shape if isinstance(source, TensorConstV) else None
            return ParamV(None, "param", init=init, ndim=len(shape) if shape else None, shape=shape)
        spec = catalog.TORCH_LAYERS.get(leaf)
        if spec is None:
            return self.unknown_call(args, kwargs, node, leaf) if _first_tensor(args, kwargs) else UNKNOWN
        bound = dict(zip(spec.params, args))
        bound.update(kwargs)
        layer = Layer(spec.kind, leaf, span, "torch", activation=spec.activation)
        if spec.kind == LayerKind.ACTIVATION:
            if leaf == "LeakyReLU":
                layer.act_param = _num(bound.get("negative_slope"), 0.01)
            elif leaf in ("ELU", "CELU"):
                layer.act_param = _num(bound.get("alpha"), 1.0)
            elif leaf == "PReLU":
                layer.act_param = 0.25
            elif leaf == "GELU":
                approx = bound.get("approximate")
                if isinstance(approx, Const) and approx.value == "tanh":
                    layer.activation = "gelu_tanh"
            layer.bias = False
            return LayerObj(layer)
        if spec.kind in (LayerKind.DENSE, LayerKind.CONV):
            self._torch_weight_layer(layer, leaf, bound)
        elif spec.kind == LayerKind.EMBEDDING:
            layer.fan_in = _int(bound.get("num_embeddings"))
            layer.fan_out = _int(bound.get("embedding_dim"))
            layer.weight_init = Init("normal", {"std": 1.0})
            layer.bias = False
        elif spec.kind == LayerKind.RECURRENT:
            layer.fan_in = _int(bound.get("input_size"))
            layer.fan_out = _int(bound.get("hidden_size"))
            layer.weight_init = Init("torch_rnn_default")
        elif spec.kind == LayerKind.NORMALIZATION:
            affine = bound.get("affine", bound.get("elementwise_affine"))
            layer.bias = not (isinstance(affine, Const) and affine.value is False)
            layer.weight_init = Init("ones")
        else:
            layer.bias = False
        return LayerObj(layer)

    def _torch_weight_layer(self, layer: Layer, leaf: str, bound: dict[str, Value]) -> None:
        bias = bound.get("bias")
        layer.bias = not (isinstance(bias, Const) and bias.value is False)
        layer.weight_init = Init("torch_default")
        layer.bias_init = Init("torch_default_bias")
        if layer.kind == LayerKind.DENSE:
            if leaf == "LazyLinear":
                layer.fan_out = _int(bound.get("out_features"))
            elif leaf == "Bilinear":
                layer.fan_in = _int(bound.get("in1_features"))
                layer.fan_out = _int(bound.get("out_features"))
            else:
                layer.fan_in = _int(bound.get("in_features"))
                layer.fan_out = _int(bound.get("out_features"))
            return
        in_ch = _int(bound.get("in_channels"))
        out_ch = _int(bound.get("out_channels"))
        kernel = bound.get("kernel_size")
        groups = _int(bound.get("groups")) or 1
        area = None
        dims = int(leaf[-2]) if leaf[-2].isdigit() else 2
        if isinstance(kernel, Const):
            k = kernel.value
            if isinstance(k, int):
                area = k ** dims
            elif isinstance(k, tuple) and all(isinstance(i, int) for i in k):
                area = math.prod(k)
        transpose = "Transpose" in leaf
        if area is not None:
            if transpose and out_ch is not None:
                layer.fan_in = out_ch // groups * area  # torch computes fan_in from weight.size(1)
            elif in_ch is not None:
                layer.fan_in = in_ch // groups * area
            if out_ch is not None:
                layer.fan_out = out_ch * area // (1 if transpose else 1)
        layer.receptive = area

    def call_torch_function(self, q: str, leaf: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        span = span_of(node)
        tensor = _first_tensor(args, kwargs)
        # tensor factories used for parameters and init
        if leaf in ("zeros", "zeros_like", "ones", "ones_like", "full", "full_like", "randn", "rand", "empty",
                    "tensor", "eye", "normal", "randn_like", "empty_like"):
            shape = _shape_of(args if leaf not in ("full", "full_like") else args[:1])
            init: Init | None = None
            if leaf in ("zeros", "zeros_like"):
                init = Init("zeros")
            elif leaf in ("ones", "ones_like"):
                init = Init("ones")
            elif leaf in ("full", "full_like") and len(args) >= 2 and isinstance(args[1], Const):
                init = Init("constant", {"value": float(args[1].value)})
            elif leaf in ("randn", "randn_like"):
                init = Init("normal", {"std": 1.0})
            elif leaf == "rand":
                init = Init("uniform", {"a": 0.0, "b": 1.0})
            elif leaf == "eye":
                init = Init("eye")
            elif leaf == "tensor" and args and isinstance(args[0], Const) and isinstance(args[0].value, (int, float)):
                init = Init("constant", {"value": float(args[0].value)})
            elif leaf in ("empty", "empty_like"):
                init = Init("unknown")
            return TensorConstV(init, shape) if init is not None else UNKNOWN
        if tensor is None:
            if leaf in ("no_grad", "enable_grad", "inference_mode"):
                return Const(None)
            if q.startswith("torch.nn.functional."):
                return UNKNOWN
            if leaf in ("cat", "stack", "concat", "add", "mul", "matmul", "bmm", "einsum", "where"):
                tensors = [a for a in _flatten_args(args) if isinstance(a, TensorV)]
                if not tensors:
                    return UNKNOWN
                args = [ListV(list(tensors))] + args[1:]
                tensor = tensors[0]
            else:
                return UNKNOWN
        act = catalog.FUNCTIONAL_ACTIVATIONS.get(leaf)
        if act is not None:
            layer = Layer(LayerKind.ACTIVATION, leaf, span, "torch", activation=act, bias=False)
            if act == "leaky_relu":
                layer.act_param = _num(args[1] if len(args) > 1 else kwargs.get("negative_slope"), 0.01)
            elif act == "gelu":
                approx = kwargs.get("approximate")
                if isinstance(approx, Const) and approx.value == "tanh":
                    layer.activation = "gelu_tanh"
            return TensorV(tensor.nodes + (layer,), tensor.hint)
        if leaf == "glu":
            return TensorV(tensor.nodes + (Gate([Layer(LayerKind.ACTIVATION, "glu", span, "torch", activation="sigmoid")], span),),
                           tensor.hint)
        if leaf in catalog.FUNCTIONAL_NORMALIZATION:
            return TensorV(tensor.nodes + (Layer(LayerKind.NORMALIZATION, leaf, span, "torch", bias=False),), tensor.hint)
        if leaf in catalog.FUNCTIONAL_POOLING:
            return tensor
        if leaf in catalog.FUNCTIONAL_DROPOUT or leaf in catalog.PASSTHROUGH_CALLS:
            if leaf in ("cat", "stack"):
                pass
            else:
                return tensor
        if leaf in ("cat", "concat", "stack"):
            tensors = [a for a in _flatten_args(args[:1]) if isinstance(a, TensorV)]
            return merge_many(tensors, span, concat=True) if tensors else tensor
        if leaf == "add":
            tensors = [a for a in args if isinstance(a, TensorV)]
            if len(tensors) >= 2:
                return merge_residual(tensors[0], tensors[1], span)
            return tensor
        if leaf == "mul":
            tensors = [a for a in args if isinstance(a, TensorV)]
            if len(tensors) >= 2:
                return merge_gate(tensors[0], tensors[1], span)
            return tensor
        if leaf in ("matmul", "bmm", "einsum", "baddbmm", "addmm", "mm"):
            tensors = [a for a in _flatten_args(args) if isinstance(a, TensorV)]
            params = [a for a in args if isinstance(a, ParamV)]
            if len(tensors) >= 2:
                return merge_many(tensors, span, concat=False)
            if params:
                shape = params[0].shape
                layer = Layer(LayerKind.DENSE, leaf, span, "torch", weight_init=params[0].init, bias=False,
                              fan_in=shape[0] if shape and len(shape) == 2 else None,
                              fan_out=shape[1] if shape and len(shape) == 2 else None)
                return TensorV(tensor.nodes + (layer,), tensor.hint)
            return tensor
        if leaf == "linear":
            weight = args[1] if len(args) > 1 else kwargs.get("weight", UNKNOWN)
            init = weight.init if isinstance(weight, ParamV) else None
            owner = weight.owner if isinstance(weight, ParamV) else None
            if owner is not None:
                return TensorV(tensor.nodes + (owner,), tensor.hint)
            shape = weight.shape if isinstance(weight, ParamV) else None
            bias_arg = args[2] if len(args) > 2 else kwargs.get("bias")
            layer = Layer(LayerKind.DENSE, "linear", span, "torch", weight_init=init,
                          fan_in=shape[1] if shape and len(shape) == 2 else None,
                          fan_out=shape[0] if shape and len(shape) == 2 else None,
                          bias=isinstance(bias_arg, ParamV))
            if isinstance(bias_arg, ParamV) and bias_arg.init is not None:
                layer.bias_init = bias_arg.init
            return TensorV(tensor.nodes + (layer,), tensor.hint)
        if leaf in ("scaled_dot_product_attention", "multi_head_attention_forward"):
            return TensorV(tensor.nodes + (Layer(LayerKind.ATTENTION, leaf, span, "torch", bias=False),), tensor.hint)
        if leaf in ("embedding", "one_hot"):
            return tensor
        if leaf in ("checkpoint", "checkpoint_sequential", "checkpoint_seq") and args:
            return self.call(args[0], args[1:], {}, node)
        return self.unknown_call(args, kwargs, node, leaf)

    def tensor_method(self, tensor: TensorV, name: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        span = span_of(node)
        act = catalog.FUNCTIONAL_ACTIVATIONS.get(name)
        if act is not None and name not in ("exp",) or name == "exp":
            act = catalog.FUNCTIONAL_ACTIVATIONS.get(name)
            if act is not None:
                return TensorV(tensor.nodes + (Layer(LayerKind.ACTIVATION, name, span, "torch", activation=act, bias=False),),
                               tensor.hint)
        if name in ("add", "add_", "__add__"):
            other = args[0] if args else UNKNOWN
            if isinstance(other, TensorV):
                return merge_residual(tensor, other, span)
            return tensor
        if name in ("mul", "mul_", "__mul__"):
            other = args[0] if args else UNKNOWN
            if isinstance(other, TensorV):
                return merge_gate(tensor, other, span)
            return self.tensor_binop(ast.Mult(), tensor, other, node)
        if name in ("matmul", "bmm", "mm"):
            other = args[0] if args else UNKNOWN
            if isinstance(other, TensorV):
                return merge_other(tensor, other)
            return self.tensor_binop(ast.MatMult(), tensor, other, node)
        if name in catalog.FUNCTIONAL_POOLING or name in catalog.PASSTHROUGH_CALLS or name in (
                "div", "div_", "sub", "sub_", "neg", "pow", "sqrt", "norm", "softmax", "log_softmax",
                "masked_fill_", "clamp_", "detach", "item", "numpy", "size", "dim", "chunk", "split", "tolist"):
            if name in ("softmax", "log_softmax"):
                layer = Layer(LayerKind.ACTIVATION, name, span, "torch", activation=name, bias=False)
                return TensorV(tensor.nodes + (layer,), tensor.hint)
            if name in ("size", "dim", "item", "tolist", "numpy"):
                return UNKNOWN
            if name in ("chunk", "split", "unbind"):
                return ListV([tensor, tensor], partial=False, is_tuple=True)
            return tensor
        return self.unknown_call([tensor] + args, kwargs, node, name)

    def _keras_compile(self, model: Value, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> None:
        optimizer = kwargs.get("optimizer", args[0] if args else UNKNOWN)
        loss = kwargs.get("loss", args[1] if len(args) > 1 else UNKNOWN)
        spec: LossSpec | None = None
        if isinstance(loss, LossObjV):
            spec = loss.spec
        elif isinstance(loss, Const) and isinstance(loss.value, str):
            spec = LossSpec(loss.value, "keras", False, span_of(node))
        elif isinstance(loss, Ref):
            spec = LossSpec(loss.leaf, "keras", False, span_of(node))
        clips = isinstance(optimizer, OptimizerV) and optimizer.clips
        if clips:
            self.facts.clips.append(span_of(node))
        self.facts.compiled[id(model)] = (spec, clips, span_of(node))

    # ---- keras

    def call_keras(self, q: str, leaf: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        span = span_of(node)
        if q in ("keras.Input", "keras.layers.Input") or leaf == "Input":
            shape = kwargs.get("shape", args[0] if args else UNKNOWN)
            return TensorV((), _keras_hint(shape, kwargs))
        if q in ("keras.Sequential", "keras.models.Sequential") or leaf == "Sequential" and q.startswith("keras."):
            layers_arg = args[0] if args else kwargs.get("layers", ListV([]))
            items = self.iterate(layers_arg)
            value = ContainerV("keras_sequential", list(items or []), None, span, "keras",
                               partial=items is None or (isinstance(layers_arg, ListV) and layers_arg.partial))
            for item in value.items:
                self.own(item)
            value.input_hint = next((h for h in (_keras_hint_from_layer(i) for i in value.items[:2]) if h), None)
            self.built.append(value)
            return value
        if q in ("keras.Model", "keras.models.Model") or (leaf in ("Model", "Functional") and q.startswith("keras.")):
            outputs = kwargs.get("outputs", args[1] if len(args) > 1 else UNKNOWN)
            inputs = kwargs.get("inputs", args[0] if args else UNKNOWN)
            out = _longest_tensor(outputs)
            if out is None:
                return UNKNOWN
            hint = out.hint
            if isinstance(inputs, TensorV) and inputs.hint is not None:
                hint = inputs.hint
            value = FunctionalModelV(TensorV(out.nodes, hint), span)
            self.built.append(value)
            return value
        if q.startswith("keras.losses.") or q.startswith("keras.optimizers."):
            if q.startswith("keras.optimizers.") and leaf[:1].isupper():
                clips = any(k in kwargs and not (isinstance(kwargs[k], Const) and kwargs[k].value in (None, 0))
                            for k in ("clipnorm", "clipvalue", "global_clipnorm"))
                return OptimizerV(span, clips)
            if q.startswith("keras.losses.") and leaf[:1].isupper():
                flag = kwargs.get("from_logits")
                from_logits = isinstance(flag, Const) and flag.value is True
                return LossObjV(LossSpec(leaf, "keras", from_logits, span, explicit_from_logits=flag is not None))
            return Ref(q)
        if q.startswith("keras.initializers.") or (q.startswith("keras.") and leaf in catalog.KERAS_INIT_CLASSES
                                                   and leaf[0].isupper() and leaf not in catalog.KERAS_LAYERS):
            spec = catalog.KERAS_INIT_CLASSES.get(leaf)
            if spec is None:
                return UNKNOWN
            scheme, names = spec
            init = self.make_init(scheme, names, args, {k: v for k, v in kwargs.items() if k in names or k == "seed"}, node)
            if init is not None and init.params.get("seed") is not None:
                init.params.pop("seed", None)
            return InitV(init) if init is not None else UNKNOWN
        if q.startswith("keras.activations.") or q in ("keras.ops.sigmoid", "keras.ops.tanh", "keras.ops.relu"):
            act = catalog.canonical_activation(leaf)
            tensor = _first_tensor(args, kwargs)
            if tensor is not None and act:
                return TensorV(tensor.nodes + (Layer(LayerKind.ACTIVATION, leaf, span, "keras", activation=act, bias=False),),
                               tensor.hint)
            return Ref(q)
        if leaf in catalog.KERAS_MERGE_ADD:
            return self.keras_merge(leaf, args, kwargs, span, merge_residual)
        if leaf in catalog.KERAS_MERGE_MULTIPLY:
            return self.keras_merge(leaf, args, kwargs, span, merge_gate)
        if leaf in catalog.KERAS_MERGE_CONCAT:
            return self.keras_merge(leaf, args, kwargs, span, None)
        if leaf in catalog.KERAS_PASSTHROUGH:
            return LayerObj(Layer(LayerKind.OTHER, leaf, span, "keras", activation="linear", bias=False))
        spec = catalog.KERAS_LAYERS.get(leaf)
        if spec is None:
            return self.unknown_call(args, kwargs, node, leaf) if _first_tensor(args, kwargs) else UNKNOWN
        bound = dict(zip(spec.params, args))
        bound.update(kwargs)
        layer = Layer(spec.kind, leaf, span, "keras", activation=spec.activation)
        act_value = bound.get("activation")
        if act_value is not None:
            act = _activation_of(act_value)
            layer.activation = act if act is not None else ("unknown" if not _is_none(act_value) else spec.activation)
        if leaf in ("LeakyReLU",):
            layer.act_param = _num(bound.get("negative_slope", bound.get("alpha")), 0.3)
        if leaf == "ELU":
            layer.act_param = _num(bound.get("alpha"), 1.0)
        if spec.kind in (LayerKind.DENSE, LayerKind.CONV, LayerKind.EMBEDDING, LayerKind.RECURRENT):
            use_bias = bound.get("use_bias")
            layer.bias = not (isinstance(use_bias, Const) and use_bias.value is False)
            init_key = "embeddings_initializer" if spec.kind == LayerKind.EMBEDDING else "kernel_initializer"
            default = Init("random_uniform") if spec.kind == LayerKind.EMBEDDING else Init("glorot_uniform")
            layer.weight_init = self.keras_init(bound.get(init_key), node, default)
            layer.bias_init = self.keras_init(bound.get("bias_initializer"), node, Init("zeros"))
            if spec.kind == LayerKind.DENSE:
                layer.fan_out = _int(bound.get("units"))
                dim = _int(bound.get("input_dim"))
                if dim is not None:
                    layer.fan_in = dim
                shape = bound.get("input_shape")
                if isinstance(shape, Const) and isinstance(shape.value, tuple) and shape.value and isinstance(shape.value[-1], int):
                    layer.fan_in = shape.value[-1]
            elif spec.kind == LayerKind.CONV:
                layer.fan_out = _int(bound.get("filters"))
                kernel = bound.get("kernel_size")
                dims = int(leaf[-2]) if leaf[-2].isdigit() else 2
                if isinstance(kernel, Const):
                    k = kernel.value
                    if isinstance(k, int):
                        layer.receptive = k ** dims
                    elif isinstance(k, tuple) and all(isinstance(i, int) for i in k):
                        layer.receptive = math.prod(k)
                if layer.fan_out is not None and layer.receptive is not None:
                    layer.fan_out *= layer.receptive  # Keras' fan_out counts the kernel area too
            elif spec.kind == LayerKind.EMBEDDING:
                layer.fan_in = _int(bound.get("input_dim"))
                layer.fan_out = _int(bound.get("output_dim"))
        elif spec.kind == LayerKind.NORMALIZATION:
            layer.weight_init = self.keras_init(bound.get("gamma_initializer"), node, Init("ones"))
            layer.bias = True
        else:
            layer.bias = False
        obj = LayerObj(layer)
        obj.keras_kwargs = bound  # type: ignore[attr-defined]
        return obj

    def keras_init(self, value: Value | None, node: ast.AST, default: Init) -> Init | None:
        if value is None or _is_none(value):
            return default
        if isinstance(value, InitV):
            return value.init
        if isinstance(value, Const) and isinstance(value.value, str):
            spec = catalog.KERAS_INIT_CLASSES.get(value.value) or catalog.KERAS_INIT_CLASSES.get(value.value.lower())
            if spec is None:
                return None
            return Init(spec[0], {}, span_of(node))
        if isinstance(value, Ref):
            spec = catalog.KERAS_INIT_CLASSES.get(value.leaf)
            return Init(spec[0], {}, span_of(node)) if spec else None
        return None

    def keras_merge(self, leaf: str, args: list[Value], kwargs: dict[str, Value], span: Span,
                    merge: Callable[[TensorV, TensorV, Span], TensorV] | None) -> Value:
        if leaf[0].islower():  # functional form: add([a, b])
            tensors = [a for a in _flatten_args(args) if isinstance(a, TensorV)]
            return self._merge_tensors(tensors, span, merge)
        return _MergeLayer(leaf, span, merge)  # type: ignore[return-value]

    def _merge_tensors(self, tensors: list[TensorV], span: Span,
                       merge: Callable[[TensorV, TensorV, Span], TensorV] | None) -> Value:
        if not tensors:
            return UNKNOWN
        if merge is None:
            return merge_many(tensors, span, concat=True)
        result = tensors[0]
        for other in tensors[1:]:
            result = merge(result, other, span)
        return result

    # ---- calling modules on tensors

    def call_module(self, module: Value, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        if isinstance(module, _MergeLayer):  # type: ignore[misc]
            tensors = [a for a in _flatten_args(args) if isinstance(a, TensorV)]
            return self._merge_tensors(tensors, module.span, module.merge)
        tensor = _first_tensor(args, kwargs)
        training_call = self._is_model(module) and not self._inside_model_code()
        if tensor is None:
            if not training_call:
                return UNKNOWN
            tensor = TensorV((), None)  # a batch from a data loader
        result = self.apply_module(module, tensor, [tensor] + list(args[1:]) if args else [tensor], kwargs, node)
        if training_call:
            out = _longest_tensor(result)
            if out is not None:
                self.facts.model_calls.append(ModelCall(id(module), out.nodes[len(tensor.nodes):], span_of(node)))
                result = TensorV(out.nodes[len(tensor.nodes):], out.hint) if out is result else result
        return result

    def _is_model(self, value: Value) -> bool:
        if isinstance(value, InstanceV):
            return value.info.framework is not None
        if isinstance(value, ContainerV):
            return value.kind in ("sequential", "keras_sequential")
        return isinstance(value, FunctionalModelV)

    def _inside_model_code(self) -> bool:
        cls = self.frame.cls
        return cls is not None and cls.framework is not None and not any(
            m in cls.methods for m in ("training_step", "train_step"))

    def apply_loss(self, spec: LossSpec, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        prediction = args[0] if args else kwargs.get("input", kwargs.get("y_pred", UNKNOWN))
        tensor = _longest_tensor(prediction)
        if tensor is None:
            return UNKNOWN
        model_id = None
        for call in reversed(self.facts.model_calls):
            # The prediction is this call's output, possibly with more applied (e.g. a sigmoid).
            n = len(call.output)
            if n and len(tensor.nodes) >= n and all(a is b for a, b in zip(tensor.nodes, call.output)):
                model_id = call.model_id
                break
        use = LossUse(spec, tensor.nodes, span_of(node), model_id)
        self.facts.losses.append(use)
        return LossV(use)

    def apply_module(self, module: Value, tensor: TensorV, args: list[Value], kwargs: dict[str, Value],
                     node: ast.AST) -> Value:
        self.tick()
        if isinstance(module, LayerObj):
            layer = module.layer
            if layer.kind == LayerKind.OTHER and layer.op in catalog.TORCH_PASSTHROUGH | catalog.KERAS_PASSTHROUGH:
                return tensor
            if layer.op == "GLU":
                gate = Gate([Layer(LayerKind.ACTIVATION, "GLU", layer.span, layer.framework, activation="sigmoid")], layer.span)
                return TensorV(tensor.nodes + (gate,), tensor.hint)
            if layer.kind == LayerKind.RECURRENT or layer.kind == LayerKind.ATTENTION:
                out = TensorV(tensor.nodes + (layer,), tensor.hint)
                if layer.framework == "torch" and layer.op in ("RNN", "LSTM", "GRU", "MultiheadAttention"):
                    # (output, hidden) — the hidden state (or (h, c)) carries the same path
                    return ListV([out, out], is_tuple=True)
                return out
            return TensorV(tensor.nodes + (layer,), tensor.hint)
        if isinstance(module, ContainerV):
            if module.kind in ("modulelist", "moduledict"):
                return self.unknown_call([tensor], {}, node, "ModuleList")
            current: Value = tensor
            for item in module.items:
                if not isinstance(current, TensorV):
                    current = _longest_tensor(current) or UNKNOWN
                    if not isinstance(current, TensorV):
                        return UNKNOWN
                current = self.apply_module(item, current, [current], {}, node) if _is_module(item) else \
                    self.call(item, [current], {}, node)
            if module.partial and isinstance(current, TensorV):
                current = TensorV(current.nodes + (Layer(LayerKind.UNKNOWN, "partial", module.span, module.framework),),
                                  current.hint)
            return current
        if isinstance(module, FunctionalModelV):
            return TensorV(tensor.nodes + module.output.nodes, tensor.hint)
        if isinstance(module, InstanceV):
            return self.forward(module, args if args else [tensor], kwargs, node)
        return self.call(module, args, kwargs, node)

    def forward(self, instance: InstanceV, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        method_name = "forward" if instance.info.framework != "keras" else "call"
        found = instance.info.find_method(method_name) or instance.info.find_method("__call__")
        if found is None and instance.info.framework == "keras":
            found = instance.info.find_method("forward")
        if found is None:
            if instance.seq_items is not None:
                seq = ContainerV("sequential", instance.seq_items, None, instance.span, instance.info.framework or "torch",
                                 instance.partial, owned=True)
                tensor = _first_tensor(args, kwargs)
                return self.apply_module(seq, tensor, [tensor], {}, node) if tensor else UNKNOWN
            return self.unknown_call(args, kwargs, node, instance.info.name)
        cls, fnode = found
        func = self.make_function(fnode, cls.scope, cls)
        return self.call_function(func, [instance] + list(args), kwargs, self_val=instance)


# ---------------------------------------------------------------------- helper values


class _Super(Value):
    """``super()`` inside a method: attribute lookup starts after the current class."""

    def __init__(self, cls: ClassInfo | None, self_val: Value | None) -> None:
        self.cls = cls
        self.self_val = self_val


class _Partial(Value):
    def __init__(self, func: Value, args: list[Value], kwargs: dict[str, Value]) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs


class _MergeLayer(Value):
    """keras ``Add()`` / ``Multiply()`` / ``Concatenate()`` layer objects, called on a list."""

    def __init__(self, name: str, span: Span, merge: Callable[[TensorV, TensorV, Span], TensorV] | None) -> None:
        self.name = name
        self.span = span
        self.merge = merge
        self.owned = False


def _install_special_calls() -> None:
    original_call = Interpreter.call
    original_get_attribute = Interpreter.get_attribute

    def call(self: Interpreter, func: Value, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        if isinstance(func, _SuperMethod):
            return func.invoke(self, args, kwargs, node)
        if isinstance(func, _Partial):
            return self.call(func.func, func.args + args, {**func.kwargs, **kwargs}, node)
        if isinstance(func, _MergeLayer):
            return self.call_module(func, args, kwargs, node)
        return original_call(self, func, args, kwargs, node)

    def get_attribute(self: Interpreter, obj: Value, attr: str, node: ast.AST | None = None) -> Value:
        if isinstance(obj, _Super):
            return _SuperMethod(obj, attr)
        return original_get_attribute(self, obj, attr, node)

    Interpreter.call = call  # type: ignore[method-assign]
    Interpreter.get_attribute = get_attribute  # type: ignore[method-assign]


class _SuperMethod(Value):
    def __init__(self, sup: _Super, name: str) -> None:
        self.sup = sup
        self.name = name

    def invoke(self, interp: Interpreter, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        sup = self.sup
        instance = sup.self_val
        if sup.cls is None or not isinstance(instance, InstanceV):
            return UNKNOWN
        found = instance.info.find_method(self.name, after=sup.cls)
        if found is not None:
            cls, fnode = found
            return interp.call_function(interp.make_function(fnode, cls.scope, cls), [instance] + args, kwargs,
                                        self_val=instance)
        # Reached the framework base class.
        if self.name == "__init__" and instance.seq_items is not None:
            interp._fill_sequential(instance, args, kwargs)
            return Const(None)
        if self.name in ("forward", "call", "__call__"):
            if instance.seq_items is not None:
                seq = ContainerV("sequential", instance.seq_items, None, instance.span, instance.info.framework or "torch",
                                 instance.partial, owned=True)
                tensor = _first_tensor(args, kwargs)
                return interp.apply_module(seq, tensor, [tensor], {}, node) if tensor else UNKNOWN
            return interp.unknown_call(args, kwargs, node, "super." + self.name)
        if self.name == "__init__":
            if any(not isinstance(b, ClassV) and not (isinstance(b, Ref) and (
                    b.qualname in _TORCH_MODULE_BASES or b.qualname in _KERAS_MODEL_BASES)) for b in sup.cls.bases):
                instance.partial = True  # an unknown base class may build layers we cannot see
            return Const(None)
        return UNKNOWN


_install_special_calls()


# ---------------------------------------------------------------------- tensor path merging


def _common_prefix(a: tuple[Node, ...], b: tuple[Node, ...]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x is not y:
            break
        n += 1
    return n


def merge_residual(left: TensorV, right: TensorV, span: Span) -> TensorV:
    n = _common_prefix(left.nodes, right.nodes)
    a, b = list(left.nodes[n:]), list(right.nodes[n:])
    if not a and not b:
        return left  # x + x
    hint = left.hint or right.hint
    if n == 0 and a and b:
        # Two unrelated inputs (e.g. two model inputs): keep the longer as the main path.
        return left if len(a) >= len(b) else right
    branch, shortcut = (a, b) if _weight_depth(a) >= _weight_depth(b) else (b, a)
    return _bounded(TensorV(left.nodes[:n] + (Residual(branch, shortcut, span),), hint), span)


def merge_gate(left: TensorV, right: TensorV, span: Span) -> TensorV:
    n = _common_prefix(left.nodes, right.nodes)
    a, b = list(left.nodes[n:]), list(right.nodes[n:])
    hint = left.hint or right.hint
    if _ends_in_gate(b) and not _ends_in_gate(a):
        main, gate = a, b
    elif _ends_in_gate(a) and not _ends_in_gate(b):
        main, gate = b, a
    elif n == 0:
        return left if len(a) >= len(b) else right
    else:
        main, gate = (a, b) if _weight_depth(a) >= _weight_depth(b) else (b, a)
    base = left.nodes[:n]
    return _bounded(TensorV(base + tuple(main) + ((Gate(gate, span),) if gate else ()), hint), span)


def merge_other(left: TensorV, right: TensorV) -> TensorV:
    n = _common_prefix(left.nodes, right.nodes)
    a, b = left.nodes[n:], right.nodes[n:]
    return left if _weight_depth(list(a)) >= _weight_depth(list(b)) else right


def merge_many(tensors: list[TensorV], span: Span, concat: bool) -> TensorV:
    result = tensors[0]
    for other in tensors[1:]:
        n = _common_prefix(result.nodes, other.nodes)
        a, b = list(result.nodes[n:]), list(other.nodes[n:])
        if n and concat and (a or b):
            branch, shortcut = (a, b) if _weight_depth(a) >= _weight_depth(b) else (b, a)
            result = _bounded(TensorV(result.nodes[:n] + (Residual(branch, shortcut, span, concat=True),),
                                      result.hint or other.hint), span)
        else:
            result = merge_other(result, other)
    return result


MAX_STRUCTURE = 20_000  # nodes in one merged structure; beyond it the path becomes UNKNOWN


def _weight_depth(nodes: "list[Node] | tuple[Node, ...]") -> int:
    depth = 0
    for node in nodes:
        if isinstance(node, Layer):
            depth += node.kind in (LayerKind.DENSE, LayerKind.CONV, LayerKind.RECURRENT, LayerKind.ATTENTION,
                                   LayerKind.EMBEDDING, LayerKind.UNKNOWN)
        else:
            depth += _cached(node)[0]
    return depth


def _size(nodes: "list[Node] | tuple[Node, ...]") -> int:
    return sum(1 if isinstance(n, Layer) else _cached(n)[1] for n in nodes)


def _cached(node: Node) -> tuple[int, int]:
    """(weight depth, node count) of a Residual/Gate, computed once: paths are DAGs that a
    recurrent loop (RAFT, unrolled RNNs) can make exponentially large as trees."""
    cached = getattr(node, "_metrics", None)
    if cached is None:
        if isinstance(node, Residual):
            cached = (max(_weight_depth(node.branch), _weight_depth(node.shortcut)),
                      1 + _size(node.branch) + _size(node.shortcut))
        else:
            assert isinstance(node, Gate)
            cached = (0, 1 + _size(node.path))
        node._metrics = cached  # type: ignore[union-attr]
    return cached


def _bounded(result: TensorV, span: Span) -> TensorV:
    if result.nodes and not isinstance(result.nodes[-1], Layer) and _cached(result.nodes[-1])[1] > MAX_STRUCTURE:
        return TensorV(result.nodes[:-1] + (Layer(LayerKind.UNKNOWN, "too-complex", span, "torch"),), result.hint)
    return result


def _ends_in_gate(nodes: list[Node]) -> bool:
    for node in reversed(nodes):
        if isinstance(node, Layer):
            if node.kind == LayerKind.ACTIVATION:
                return node.activation in catalog.GATE_ACTIVATIONS
            if node.kind in (LayerKind.DROPOUT, LayerKind.POOLING, LayerKind.OTHER):
                continue
            return node.activation in catalog.GATE_ACTIVATIONS if node.activation else False
        return False
    return False


# ---------------------------------------------------------------------- small helpers

_MODULE_WRAPPERS = frozenset({
    "weight_norm", "spectral_norm", "DataParallel", "DistributedDataParallel", "compile", "script", "trace",
    "checkpoint_wrapper", "remove_weight_norm", "remove_spectral_norm", "convert_sync_batchnorm",
})

_BUILTINS = frozenset({
    "range", "len", "int", "float", "bool", "str", "list", "tuple", "dict", "set", "enumerate", "zip",
    "isinstance", "type", "getattr", "setattr", "hasattr", "super", "print", "min", "max", "sum", "abs",
    "round", "sorted", "reversed", "pow", "divmod", "callable", "delattr",
})


def _merge_envs(a: dict[str, Value], b: dict[str, Value]) -> dict[str, Value]:
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
        elif out[key] is not value:
            out[key] = _prefer(out[key], value)
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


def _prefer(a: Value, b: Value) -> Value:
    """Of two values an undecidable condition could produce, the more informative (then-branch on ties)."""
    return a if _informative(a) >= _informative(b) else b


def _is_none(value: Value) -> bool | None:
    if isinstance(value, Const):
        return value.value is None
    if isinstance(value, UnknownV):
        return None
    return False


def _is_module(value: Value) -> bool:
    return isinstance(value, (LayerObj, ContainerV, InstanceV))


def _first_tensor(args: list[Value], kwargs: dict[str, Value]) -> TensorV | None:
    for value in list(args) + list(kwargs.values()):
        if isinstance(value, TensorV):
            return value
        if isinstance(value, ListV):
            for item in value.items:
                if isinstance(item, TensorV):
                    return item
    return None


def _flatten_args(args: Iterable[Value]) -> Iterator[Value]:
    for arg in args:
        if isinstance(arg, ListV):
            yield from arg.items
        else:
            yield arg


def _longest_tensor(value: Value) -> TensorV | None:
    if isinstance(value, TensorV):
        return value
    if isinstance(value, (ListV, DictV)):
        items = value.items if isinstance(value, ListV) else list(value.items.values())
        tensors = [t for t in (_longest_tensor(i) for i in items) if t is not None]
        if tensors:
            # Path length, not weight depth: O(1) per candidate (an RNN's (out, hidden) inside a long
            # loop made this quadratic).
            return max(tensors, key=lambda t: len(t.nodes))
    return None


def _shape_of(args: list[Value]) -> tuple[int, ...] | None:
    dims: list[int] = []
    for arg in args:
        if isinstance(arg, Const) and isinstance(arg.value, int) and not isinstance(arg.value, bool):
            dims.append(arg.value)
        elif isinstance(arg, Const) and isinstance(arg.value, tuple) and all(isinstance(d, int) for d in arg.value):
            dims.extend(arg.value)
        elif isinstance(arg, ListV) and all(isinstance(i, Const) and isinstance(i.value, int) for i in arg.items):
            dims.extend(i.value for i in arg.items)  # type: ignore[union-attr]
        else:
            return None
    return tuple(dims) or None


def _int(value: Value | None) -> int | None:
    """A positive integer size (a width of 0 or less is no width at all)."""
    if isinstance(value, Const) and isinstance(value.value, int) and not isinstance(value.value, bool) \
            and value.value > 0:
        return value.value
    return None


_WIDE_FORMAT = re.compile(r"\d{5,}")


def _safe_string_call(text: str, method: str, args: list[Any]) -> bool:
    """String methods whose result could be huge are not folded."""
    if method == "format" and _WIDE_FORMAT.search(text):
        return False
    if method == "replace" and len(args) >= 2 and isinstance(args[1], str):
        return len(text) * max(1, len(args[1])) <= MAX_LIST_ITEMS * 10
    return _foldable(args)


def _foldable(args: list[Any]) -> bool:
    """Constant folding calls the real function: refuse inputs that would take it minutes."""
    for arg in args:
        if isinstance(arg, range) and len(arg) > MAX_LIST_ITEMS:
            return False
        if isinstance(arg, int) and arg.bit_length() > 256:
            return False
        if isinstance(arg, (str, bytes, tuple, list)) and len(arg) > MAX_LIST_ITEMS:
            return False
    return True


def _num(value: Value | None, default: float, limit: float = 1e6) -> float:
    if isinstance(value, Const) and isinstance(value.value, (int, float)) and not isinstance(value.value, bool) \
            and math.isfinite(value.value) and abs(value.value) <= limit:
        return float(value.value)
    return default


def _param_ndim(layer: Layer, role: str) -> int:
    if role == "bias" or layer.kind == LayerKind.NORMALIZATION:
        return 1
    return 2


def _activation_of(value: Value) -> str | None:
    if isinstance(value, Const) and isinstance(value.value, str):
        return catalog.canonical_activation(value.value)
    if isinstance(value, Ref):
        return catalog.canonical_activation(value.leaf)
    if isinstance(value, LayerObj) and value.layer.kind == LayerKind.ACTIVATION:
        return value.layer.activation
    return None


def _keras_hint(shape: Value, kwargs: dict[str, Value]) -> InputHint | None:
    if isinstance(shape, Const) and isinstance(shape.value, tuple) and all(isinstance(s, (int, type(None))) for s in shape.value):
        dims = shape.value
        if any(d is None for d in dims):
            return InputHint("unknown", None)
        if len(dims) == 1:
            return InputHint("features", tuple(dims))
        if len(dims) == 3:
            return InputHint("image", tuple(dims))
        if len(dims) == 2:
            return InputHint("sequence", tuple(dims))
    return None


def _keras_hint_from_layer(value: Value) -> InputHint | None:
    if isinstance(value, LayerObj):
        kwargs = getattr(value, "keras_kwargs", {})
        if "input_shape" in kwargs:
            return _keras_hint(kwargs["input_shape"], {})
        if "input_dim" in kwargs and isinstance(kwargs["input_dim"], Const):
            if value.layer.kind == LayerKind.EMBEDDING:
                return InputHint("tokens", None, vocab=_int(kwargs["input_dim"]))
            return InputHint("features", (kwargs["input_dim"].value,))
    return None


def _is_exp_call(node: ast.expr) -> ast.expr | None:
    """``torch.exp(e)`` / ``np.exp(e)`` / ``math.exp(e)`` / ``e.exp()`` -> e."""
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "exp":
            if node.args and isinstance(func.value, ast.Name):
                return node.args[0]
            if not node.args:
                return func.value
        if isinstance(func, ast.Name) and func.id == "exp" and node.args:
            return node.args[0]
    return None


def _is_one(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value in (1, 1.0)


def _negated(node: ast.expr) -> ast.expr | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return node.operand
    return None


def _activation_formula(node: ast.BinOp) -> tuple[str, ast.expr] | None:
    """Hand-written sigmoid and tanh: ``1 / (1 + exp(-x))``, ``exp(x) / (1 + exp(x))``,
    ``(exp(x) - exp(-x)) / (exp(x) + exp(-x))``."""
    if not isinstance(node.op, ast.Div):
        return None
    num, den = node.left, node.right
    if isinstance(den, ast.BinOp) and isinstance(den.op, ast.Add):
        terms = (den.left, den.right)
        one = next((t for t in terms if _is_one(t)), None)
        exp_arg = next((_is_exp_call(t) for t in terms if _is_exp_call(t) is not None), None)
        if one is not None and exp_arg is not None:
            inner = _negated(exp_arg)
            if _is_one(num) and inner is not None:
                return "sigmoid", inner
            num_arg = _is_exp_call(num)
            if num_arg is not None and ast.dump(num_arg) == ast.dump(exp_arg):
                return "sigmoid", exp_arg
        if isinstance(num, ast.BinOp) and isinstance(num.op, ast.Sub):
            a, b = _is_exp_call(num.left), _is_exp_call(num.right)
            if a is not None and b is not None and _negated(b) is not None and ast.dump(_negated(b)) == ast.dump(a):
                return "tanh", a
    return None


def _is_property(fnode: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id in ("property", "cached_property") for d in fnode.decorator_list)
