"""Statements: the module body, class bodies, functions, control flow and assignment targets.

Undecidable ``if`` conditions run both arms and keep, per variable, the more informative result;
loops with unknown trip counts run once under an "uncertain" mark so that mutations of older
lists and dicts become partial instead of exact.
"""

from __future__ import annotations

import ast
from typing import Any

from gradlint.extract import catalog
from gradlint.extract.api import AttributedV, Core
from gradlint.extract.common import ANCHOR, FOREIGN_LINE_BASE, merge_envs, prefer, source_text, span_of
from gradlint.extract.configs import click_defaults
from gradlint.extract.inits import apply_init_value
from gradlint.extract.paths import without_gradient
from gradlint.extract.state import (
    MAX_LOOP_ITERATIONS,
    MAX_UNROLLED,
    BreakSignal,
    BudgetExceeded,
    ContinueSignal,
    ReturnSignal,
    Scope,
)
from gradlint.extract.time_loops import is_range, tensor_axis_loop
from gradlint.extract.values import (
    UNKNOWN,
    ClassInfo,
    ClassV,
    Const,
    ContainerV,
    DefaultsScopeV,
    DictV,
    FunctionalModelV,
    FunctionV,
    GradModeV,
    InstanceV,
    ItemList,
    LayerObj,
    ListV,
    ModulesView,
    ParamV,
    Ref,
    TensorConstV,
    TensorV,
    UnknownV,
    Value,
)
from gradlint.model import Configuration, Layer, LayerKind


class StatementsMixin(Core):
    """``stmt_<Node>`` handlers, dispatched by ``exec_stmt``; assignment to names, attributes, items."""

    unrolled: int
    deferrable: ast.AST | None

    def exec_block(self, body: list[ast.stmt], scope: Scope) -> None:
        for stmt in body:
            self.exec_stmt(stmt, scope)

    def exec_stmt(self, stmt: ast.stmt, scope: Scope) -> None:
        self.steps -= 1  # self.tick(), inlined (the commonest call there is): see Interpreter.budget
        if self.steps < 0:
            self.tick(0)
        if stmt.lineno < FOREIGN_LINE_BASE:
            ANCHOR.stmt = stmt
        method = self.stmt_methods.get(type(stmt))
        if method is not None:
            method(self, stmt, scope)

    def stmt_Import(self, stmt: ast.Import, scope: Scope) -> None:
        for alias in stmt.names:
            name = alias.asname or alias.name.split(".")[0]
            found = None
            if self.project is not None:  # a module of the file's own project: read, never run
                found = self.project.import_module(stmt, alias.name if alias.asname else name)
            if found is not None:
                scope.vars[name] = found
            elif alias.asname:
                scope.vars[alias.asname] = Ref(catalog.fold_name(alias.name))
            else:
                scope.vars[name] = Ref(name)

    def stmt_ImportFrom(self, stmt: ast.ImportFrom, scope: Scope) -> None:
        module = stmt.module or ""
        project = self.project
        for alias in stmt.names:
            if alias.name == "*":
                if project is None or not project.star_import(stmt, module, stmt.level, scope):
                    self.star_import_framework(module, stmt.level, scope)
                continue
            found = project.import_name(stmt, module, stmt.level, alias.name) if project is not None else None
            if found is None:  # not a project module (or not found in the project): an external name
                found = Ref(catalog.fold_name(f"{'.' * stmt.level}{module}.{alias.name}"))
            scope.vars[alias.asname or alias.name] = found

    @staticmethod
    def star_import_framework(module: str, level: int, scope: Scope) -> None:
        """``from keras.layers import *`` (not a project module): binds the names the catalog knows the
        framework module exports (``catalog.STAR_EXPORTS``), each as its explicit import would; the
        module's other names stay unbound, so what uses them is UNKNOWN, never guessed."""
        if level:
            return
        folded = catalog.fold_name(module)
        for name in catalog.STAR_EXPORTS.get(folded, ()):
            scope.vars[name] = Ref(catalog.fold_name(f"{folded}.{name}"))

    def stmt_FunctionDef(self, stmt: ast.FunctionDef, scope: Scope) -> None:
        func = self.make_function(stmt, scope)
        if stmt.decorator_list:  # @click.option("--depth", default=20): main() runs with depth=20
            for name, value in click_defaults([self.eval_safe(d, scope) for d in stmt.decorator_list]).items():
                func.defaults.setdefault(name, value)
        scope.vars[stmt.name] = func
        if scope is self.module_scope:
            self.functions.append(func)

    stmt_AsyncFunctionDef = stmt_FunctionDef

    def make_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, scope: Scope,
                      owner: ClassInfo | None = None) -> FunctionV:
        args = node.args
        defaults: dict[str, Value] = {}
        positional = args.posonlyargs + args.args
        for arg, default in zip(positional[len(positional) - len(args.defaults):], args.defaults, strict=False):
            defaults[arg.arg] = self.eval_safe(default, scope)
        for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=False):
            if kw_default is not None:
                defaults[arg.arg] = self.eval_safe(kw_default, scope)
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
        decorators = [self.eval_safe(d.func if isinstance(d, ast.Call) else d, scope) for d in stmt.decorator_list]
        if _is_config_class(bases, decorators):
            info.fields = [item.target.id for item in stmt.body if isinstance(item, ast.AnnAssign)
                           and isinstance(item.target, ast.Name) and not _is_classvar(item.annotation)]
        info.framework, info.container_base = self._class_framework(info)
        scope.vars[stmt.name] = ClassV(info)
        if stmt.lineno < FOREIGN_LINE_BASE:  # a project module's classes are judged where they are linted
            self.classes.append(info)

    def _class_framework(self, info: ClassInfo) -> tuple[str | None, str | None]:
        for base in info.bases:
            if isinstance(base, Ref):
                found = self.framework_of_base(base.qualname)
                if found is not None:
                    return found
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
        raise ReturnSignal(self.eval(stmt.value, scope) if stmt.value is not None else Const(None))

    def stmt_Expr(self, stmt: ast.Expr, scope: Scope) -> None:
        self.eval_safe(stmt.value, scope)

    def stmt_Assign(self, stmt: ast.Assign, scope: Scope) -> None:
        if scope is self.module_scope and self.project is not None and isinstance(stmt.value, ast.Call) \
                and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            self.deferrable = stmt.value  # a project function's plain-data result may be computed when read
            try:
                value = self.eval_safe(stmt.value, scope)
            finally:
                self.deferrable = None
        else:
            value = self.eval_safe(stmt.value, scope)
        for target in stmt.targets:
            self.assign(target, value, scope)

    def stmt_AnnAssign(self, stmt: ast.AnnAssign, scope: Scope) -> None:
        if stmt.value is not None:
            self.assign(stmt.target, self.eval_safe(stmt.value, scope), scope)

    def stmt_AugAssign(self, stmt: ast.AugAssign, scope: Scope) -> None:
        current = self.eval_safe(stmt.target, scope)
        right = self.eval_safe(stmt.value, scope)
        sequences = (ListV, ContainerV)
        if isinstance(stmt.op, ast.Add) and isinstance(current, sequences) and isinstance(right, sequences):
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
            except ReturnSignal as ret:
                returned = ret.value
            except (BreakSignal, ContinueSignal):
                pass
            finally:
                self.leave_uncertain()
            results.append((scope.vars, self_val.attrs if isinstance(self_val, InstanceV) else None, returned))
        (vars_a, attrs_a, ret_a), (vars_b, attrs_b, ret_b) = results
        scope.vars = merge_envs(vars_a, vars_b)
        if isinstance(self_val, InstanceV) and attrs_a is not None and attrs_b is not None:
            self_val.attrs = merge_envs(attrs_a, attrs_b)
        # An early return in an undecidable branch: keep it as a candidate unless the flow continues.
        for early in (ret_a, ret_b):
            if early is not None:
                self.frame.returned.append(early)

    def stmt_For(self, stmt: ast.For, scope: Scope) -> None:
        self.loops += 1
        try:
            self._stmt_for(stmt, scope)
        finally:
            self.loops -= 1

    def _stmt_for(self, stmt: ast.For, scope: Scope) -> None:
        iterable = self.eval_safe(stmt.iter, scope)
        count = self.trip_count(iterable)  # before building the items: an inner loop of a big nest
        items = None if count is not None and self.unrolled * count > MAX_UNROLLED else self.iterate(iterable)
        probe = self.frame.batch
        if probe is None:
            self._run_for(stmt, scope, items)
            return
        probe.loops.append(count if count is not None else len(items) if items is not None else None)
        try:
            self._run_for(stmt, scope, items)
        finally:
            probe.loops.pop()

    def _run_for(self, stmt: ast.For, scope: Scope, items: list[Value] | None) -> None:
        if items is None or self.unrolled * len(items) > MAX_UNROLLED:
            self.exec_loop_once_uncertain(stmt, scope)
            return
        outer = self.unrolled
        self.unrolled = outer * max(1, len(items))
        labels: list[str] | None = None  # computed once an iteration builds a model
        # x.unbind(1) / x.split(1, dim=1) read as a few slices: still a loop over that axis of x.
        over = None if is_range(stmt.iter) else tensor_axis_loop(stmt.iter, scope, self)
        if over is not None:
            self.time_loops.append(over)
        try:
            for count, item in enumerate(items):
                if count >= MAX_LOOP_ITERATIONS:
                    break
                before = _model_state(self) if count == 0 and len(items) > 1 else None
                if before is not None:
                    # The first iteration runs as one would on its own: a training loop's first step (the
                    # one that tells all, below) unrolls the forward's loops as a single step would.
                    self.unrolled = outer
                start = len(self.built)
                self.assign(stmt.target, item, scope)
                try:
                    self.exec_block(stmt.body, scope)
                except ContinueSignal:
                    pass
                except BreakSignal:
                    labels = _tag_configuration(self, start, labels, count, stmt, items)
                    raise
                finally:
                    self.unrolled = outer * max(1, len(items))
                labels = _tag_configuration(self, start, labels, count, stmt, items)
                if before is not None and _trained_only(self, before):
                    _forget_loop_names(stmt, scope)  # a training loop: one iteration tells all
                    self.exec_block(stmt.orelse, scope)
                    break
            else:
                self.exec_block(stmt.orelse, scope)
        except BreakSignal:
            pass
        finally:
            self.unrolled = outer
            if over is not None:
                self.time_loops.pop()

    stmt_AsyncFor = stmt_For

    def exec_loop_once_uncertain(self, stmt: ast.For | ast.While, scope: Scope) -> None:
        over = tensor_axis_loop(stmt.iter, scope, self) if isinstance(stmt, ast.For) else None
        if isinstance(stmt, ast.For):
            target = stmt.target
            counted = over is not None and isinstance(target, ast.Tuple) and len(target.elts) == 2 \
                and isinstance(stmt.iter, ast.Call) and isinstance(stmt.iter.func, ast.Name) \
                and stmt.iter.func.id == "enumerate"
            if counted:  # for t, x_t in enumerate(seq): the count unknown, the item as below
                assert isinstance(target, ast.Tuple)
                self.assign(target.elts[0], UNKNOWN, scope)
                target = target.elts[1]
            slices = over is not None and not is_range(stmt.iter) and isinstance(target, ast.Name)
            # Iterating a tensor's slices (``for x_t in x.unbind(1)``): each is x's path, one step of it.
            self.assign(target, TensorV(over[0].nodes, None) if over is not None and slices else
                        UnknownV(f"unknown depth: loop over {source_text(stmt.iter)} of unknown length"), scope)
        if over is not None:
            self.time_loops.append(over)
        before: dict[str, Value] = {name: value for name, value in scope.vars.items()
                                    if type(value) is TensorV or isinstance(value, UnknownV)}
        self.enter_uncertain()
        try:
            self.exec_block(stmt.body, scope)
        except (BreakSignal, ContinueSignal):
            pass
        except ReturnSignal as ret:
            self.frame.returned.append(ret.value)
        finally:
            self.leave_uncertain()
            if over is not None:
                self.time_loops.pop()
        if over is None:
            _mark_unknown_depth(stmt, scope, before)

    def stmt_While(self, stmt: ast.While, scope: Scope) -> None:
        probe = self.frame.batch
        self.loops += 1
        if probe is not None:
            probe.loops.append(None)  # steps a cell takes in a while loop: not read
        try:
            self._run_while(stmt, scope)
        finally:
            self.loops -= 1
            if probe is not None:
                probe.loops.pop()

    def _run_while(self, stmt: ast.While, scope: Scope) -> None:
        outer = self.unrolled
        try:
            for count in range(MAX_LOOP_ITERATIONS):
                cond = self.truth(self.eval_safe(stmt.test, scope))
                if cond is False:
                    return
                if cond is None or outer * (count + 1) > MAX_UNROLLED:
                    self.unrolled = outer
                    self.exec_loop_once_uncertain(stmt, scope)
                    return
                self.unrolled = outer * (count + 1)
                before = _model_state(self) if count == 0 else None
                try:
                    self.exec_block(stmt.body, scope)
                except ContinueSignal:
                    pass
                except BreakSignal:
                    return
                if before is not None and _trained_only(self, before):
                    _forget_loop_names(stmt, scope)  # a training loop: one iteration tells all
                    return
        finally:
            self.unrolled = outer

    def stmt_With(self, stmt: ast.With, scope: Scope) -> None:
        no_grad = False
        pushed: list[DefaultsScopeV] = []
        for item in stmt.items:
            value = self.eval_safe(item.context_expr, scope)
            no_grad |= isinstance(value, GradModeV) and not value.enabled
            if isinstance(value, DefaultsScopeV):
                value.stack.append(value)
                pushed.append(value)
            if item.optional_vars is not None:
                self.assign(item.optional_vars, value, scope)
        try:
            self._with_body(stmt, scope, no_grad)
        finally:
            for value in reversed(pushed):
                if value.stack and value.stack[-1] is value:
                    value.stack.pop()

    def _with_body(self, stmt: ast.With, scope: Scope, no_grad: bool) -> None:
        if not no_grad:
            self.exec_block(stmt.body, scope)
            return
        # ``with torch.no_grad():`` -- what the block computes carries no gradient: the tensors it binds
        # to names (and returns) leave it stopped.
        before = dict(scope.vars)
        span = span_of(stmt.items[0].context_expr)
        try:
            self.exec_block(stmt.body, scope)
        except ReturnSignal as signal:
            signal.value = without_gradient(signal.value, span)
            raise
        finally:
            for name, value in list(scope.vars.items()):
                if before.get(name) is not value:
                    scope.vars[name] = without_gradient(value, span)

    stmt_AsyncWith = stmt_With

    def stmt_Try(self, stmt: ast.Try, scope: Scope) -> None:
        try:
            self.exec_block(stmt.body, scope)
            self.exec_block(stmt.orelse, scope)
        finally:
            self.exec_block(stmt.finalbody, scope)

    stmt_TryStar = stmt_Try

    def stmt_Break(self, stmt: ast.Break, scope: Scope) -> None:
        raise BreakSignal()

    def stmt_Continue(self, stmt: ast.Continue, scope: Scope) -> None:
        raise ContinueSignal()

    def stmt_Raise(self, stmt: ast.Raise, scope: Scope) -> None:
        raise ReturnSignal(UNKNOWN)

    def stmt_Global(self, stmt: ast.Global, scope: Scope) -> None:
        pass

    def stmt_Delete(self, stmt: ast.Delete, scope: Scope) -> None:
        for target in stmt.targets:
            if isinstance(target, ast.Name):
                scope.vars.pop(target.id, None)

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
                middle = items[i : len(items) - tail] if tail else items[i:]
                items = items[:i] + [ListV(list(middle))] + (items[len(items) - tail :] if tail else [])
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
        if isinstance(value, ContainerV) and value.kind in ("sequential", "modulelist") and not value.partial:
            return list(value.items)  # *hidden, last = self.layers
        return None

    def set_attribute(self, obj: Value, attr: str, value: Value, node: ast.AST) -> None:
        if attr == "trainable" and isinstance(value, Const) and value.value is False \
                and isinstance(obj, (LayerObj, InstanceV, ContainerV)):
            self.freeze(obj)  # Keras: layer.trainable = False / base_model.trainable = False
        if isinstance(obj, AttributedV):
            obj.set_attribute(self, attr, value)
        elif isinstance(obj, InstanceV):
            obj.attrs[attr] = value
            if isinstance(value, TensorV) and obj.info.framework is not None:
                self.escaped.append(value)  # self.aux = h: a tensor the training code may read
            if obj.info.framework is not None:
                # A model's attribute is its submodule. A plain object holding a model (a trainer, a
                # wrapper class building ``self.model = Sequential()`` in a method) is no model itself:
                # what it holds stays a model of its own.
                self.own(value)
            if isinstance(value, LayerObj) and value.layer.name is None:
                value.layer.name = f"self.{attr}"
        elif isinstance(obj, ParamV) and attr == "data":
            apply_init_value(obj, value, node, self.uncertain_since[-1] if self.uncertain_since else None)
        elif isinstance(obj, ParamV) and attr == "requires_grad":
            if obj.owner is not None and isinstance(value, Const) and value.value is False:
                obj.owner.frozen = True  # for p in self.encoder.parameters(): p.requires_grad = False
            if obj.owner is not None:  # p.requires_grad = True after a freeze turns it back on
                obj.owner.grad_off = isinstance(value, Const) and value.value is False
        elif isinstance(obj, (TensorConstV, TensorV)) and attr == "requires_grad":
            for framework in self.frameworks:  # ``w.requires_grad = True``: as ``w.requires_grad_()``
                if framework.method(self, obj, "requires_grad_", [value], {}, node) is not None:
                    break
        elif isinstance(obj, LayerObj) and attr in ("weight", "bias"):
            apply_init_value(ParamV(obj.layer, attr), value, node,
                             self.uncertain_since[-1] if self.uncertain_since else None)
        elif isinstance(obj, LayerObj):
            # A flag an init hook reads back (``getattr(m, "is_last", False)``); set under an
            # undecidable condition it may or may not be there.
            self.layer_flags.add(attr)
            obj.attrs[attr] = UNKNOWN if self.uncertain_since else value
        elif isinstance(obj, ClassV):
            obj.info.class_attrs[attr] = value

    def set_item(self, obj: Value, key: Value, value: Value) -> None:
        if isinstance(obj, ModulesView) and isinstance(obj.owner, InstanceV) and isinstance(key, Const):
            obj.items[key.value] = value  # as add_module(name, value)
            obj.owner.attrs[str(key.value)] = value
            self.own(value)
            if obj.owner.seq_items is not None:
                obj.owner.seq_items.append(value)
        elif isinstance(obj, ListV) and isinstance(key, Const) and isinstance(key.value, int):
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
                    obj.items[key.value] = prefer(obj.items[key.value], value)
                return
            obj.items[key.value] = value
        elif isinstance(obj, ContainerV) and obj.kind == "moduledict" and isinstance(key, Const):
            self.own(value)
            if obj.keys is not None and str(key.value) in obj.keys:  # replaces the module of that key
                obj.items[obj.keys.index(str(key.value))] = value
                return
            if obj.keys is not None:
                obj.keys.append(str(key.value))
            obj.items.append(value)
        elif isinstance(obj, ContainerV) and obj.kind in ("sequential", "modulelist") and isinstance(key, Const) \
                and type(key.value) is int:
            # model[i] = nn.Sigmoid(): the module at that index is replaced (swapping a net's activations)
            self.own(value)
            if self.mutating_uncertainly(obj) or obj.partial or not -len(obj.items) <= key.value < len(obj.items):
                obj.partial = True
                return
            obj.items[key.value] = value

    def own(self, value: Value) -> None:
        if isinstance(value, (LayerObj, ContainerV, InstanceV, FunctionalModelV)):
            value.owned = True
        elif isinstance(value, ListV):
            for item in value.items:
                self.own(item)
        elif isinstance(value, DictV):
            for item in value.items.values():
                self.own(item)


_CONFIG_DECORATORS = frozenset(
    {"dataclasses.dataclass", "attr.s", "attr.define", "attrs.define", "attr.attrs", "attrs.frozen", "attr.frozen"}
)
_CONFIG_BASES = frozenset({"typing.NamedTuple"})


def _is_config_class(bases: list[Value], decorators: list[Value]) -> bool:
    """A dataclass (or attrs class, or ``typing.NamedTuple``): its annotated fields are its constructor.
    ``decorators`` are the decorators' callees (``dataclass`` of ``@dataclass(frozen=True)``)."""
    if any(isinstance(d, Ref) and d.qualname in _CONFIG_DECORATORS for d in decorators):
        return True
    return any(isinstance(b, Ref) and b.qualname in _CONFIG_BASES for b in bases)


def _is_classvar(annotation: ast.expr) -> bool:
    target = annotation.value if isinstance(annotation, ast.Subscript) else annotation
    return (isinstance(target, ast.Name) and target.id == "ClassVar") or (
        isinstance(target, ast.Attribute) and target.attr == "ClassVar"
    )


# ---------------------------------------------------------------------- training loops
#
# A training loop (`for step in range(10_000): loss = model(x)...; loss.backward(); opt.step()`)
# repeats the same facts every iteration and builds nothing: after its first iteration the
# interpreter stops, and the names the loop sets become UNKNOWN (their values after N
# iterations are not known). This keeps the budget for the models.


def configuration_labels(target: ast.expr, items: list[Value]) -> list[str] | None:
    """``name='zero', init='zero'`` per item of a loop over literal configurations (constants, or
    tuples of constants unpacked into names); only the variables whose values differ are named.
    None for any other loop."""
    if len(items) < 2:
        return None
    names = (
        [target.id]
        if isinstance(target, ast.Name)
        else [e.id if isinstance(e, ast.Name) else "" for e in target.elts]
        if isinstance(target, ast.Tuple)
        else []
    )
    if not names or "" in names:
        return None
    rows: list[list[Any]] = []
    for item in items:
        parts: list[Value] | None = (
            [item]
            if len(names) == 1
            else item.items
            if isinstance(item, ListV)
            else [Const(v) for v in item.value]
            if isinstance(item, Const) and isinstance(item.value, tuple)
            else None
        )
        if parts is None or len(parts) != len(names):
            return None
        row: list[str] = []
        for part in parts:  # a constant as Python writes it; a framework name by its own name (nn.Tanh)
            if isinstance(part, Const) and (part.value is None or isinstance(part.value, (str, int, float, bool))):
                row.append(repr(part.value)[:40])
            elif isinstance(part, Ref):
                row.append(".".join(part.qualname.split(".")[-2:]))
            else:
                return None
        rows.append(row)
    varying = [i for i in range(len(names)) if len({row[i] for row in rows}) > 1]
    if not varying:
        return None
    return [", ".join(f"{names[i]}={row[i]}" for i in varying) for row in rows]


def _tag_configuration(
    core: Core, start: int, labels: list[str] | None, index: int, stmt: ast.For | ast.AsyncFor, items: list[Value]
) -> list[str] | None:
    """Models built by iteration ``index`` carry its configuration (an inner loop's label comes
    after). Returns the loop's labels, computed on the first iteration that built a model."""
    if len(core.built) == start or len(items) < 2:
        return labels
    if labels is None:
        labels = configuration_labels(stmt.target, items) or []
    if not labels:
        return labels
    group, label, count = str(stmt.lineno), labels[index], len(labels)
    for value in core.built[start:]:
        if isinstance(value, (InstanceV, ContainerV, FunctionalModelV)):
            inner = value.configuration
            value.configuration = (
                Configuration(label, group, count)
                if inner is None
                else Configuration(f"{label}, {inner.label}", f"{group}/{inner.group}", count * inner.count)
            )
    return labels


def _model_state(core: Core) -> tuple[int, int, int]:
    """(training facts recorded, models built, items ever added to containers) — what an iteration changes."""
    facts = core.facts
    recorded = len(facts.model_calls) + len(facts.backwards) + len(facts.steps) + len(facts.fits)
    return recorded, len(core.built), ItemList.added


def _trained_only(core: Core, before: tuple[int, int, int]) -> bool:
    """The first iteration ran training code (a model called outside model code, backward(),
    an optimizer step, fit) and built no model and grew no model container."""
    after = _model_state(core)
    return after[0] > before[0] and after[1:] == before[1:]


def _forget_loop_names(stmt: ast.For | ast.AsyncFor | ast.While, scope: Scope) -> None:
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            scope.vars[node.id] = UNKNOWN


def _mark_unknown_depth(stmt: ast.For | ast.AsyncFor | ast.While, scope: Scope, before: dict[str, Value]) -> None:
    """A tensor a loop of unknown length extended (``for units in params["hidden"]: x = dense(x, units)``)
    passed through the body an unknown number of times: its path says so, so that no rule reads the
    one iteration that ran as the whole stack (or adds it to the layers around it). So does one the
    body made out of an unknown (TensorFlow graph code: ``net = features`` before the loop)."""
    header = stmt.iter if isinstance(stmt, (ast.For, ast.AsyncFor)) else stmt.test
    for name, old in before.items():
        new = scope.vars.get(name)
        if type(new) is not TensorV or new is old:
            continue
        if isinstance(old, TensorV) and len(new.nodes) <= len(old.nodes):
            continue
        added = new.nodes[len(old.nodes):] if isinstance(old, TensorV) else new.nodes
        if any(isinstance(node, Layer) and node.kind == LayerKind.UNKNOWN for node in added):
            continue  # the loop already says what it could not read (a container of unknown length)
        last = new.nodes[-1]
        framework = last.framework if isinstance(last, Layer) else "torch"
        reason = f"unknown depth: loop over {source_text(header)} of unknown length"
        marker = Layer(LayerKind.UNKNOWN, "loop", span_of(header), framework, reason=reason)
        scope.vars[name] = TensorV(new.nodes + (marker,), new.hint)


