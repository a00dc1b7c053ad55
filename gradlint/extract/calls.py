"""Calls: argument evaluation, dispatch on what is called, binding, user functions and classes.

External names go to Python's builtins, the training recorder, then the registered framework
handlers by qualified-name prefix (``frameworks.FRAMEWORKS``); the interpreter itself knows no
framework API.
"""

from __future__ import annotations

import ast

from gradlint.extract import catalog, recorder
from gradlint.extract.api import Core, FunctionNode, InvocableV
from gradlint.extract.common import ANCHOR, FOREIGN_LINE_BASE, first_tensor, is_module, source_text, span_of
from gradlint.extract.configs import construct_dataclass, dataclass_fields
from gradlint.extract.invocable import apply_sequential_items
from gradlint.extract.paths import without_gradient
from gradlint.extract.state import (
    MAX_CALL_DEPTH,
    BreakSignal,
    ContinueSignal,
    ReturnSignal,
    Scope,
)
from gradlint.extract.values import (
    UNKNOWN,
    BatchProbe,
    BoundV,
    ClassInfo,
    ClassV,
    Const,
    ContainerV,
    DictV,
    Frame,
    FunctionalModelV,
    FunctionV,
    GradModeV,
    InitV,
    InstanceV,
    LayerObj,
    LazyV,
    ListV,
    LossObjV,
    LossV,
    MethodV,
    OptimizerV,
    Ref,
    TensorV,
    UnknownV,
    Value,
)
from gradlint.model import Init, Layer, LayerKind, Span

#: Decorators that may turn gradient recording off for a whole method.
_GRAD_OFF = frozenset({"no_grad", "inference_mode"})


class CallsMixin(Core):
    """``eval_Call`` and everything a call can reach that is not a builtin or a method of a value."""

    frame: Frame  # set per call by call_function (declared here too: mypy cannot infer it across the mixins)
    budget: int  # steps the current build may still spend (declared here too, as frame is)
    batch_probe: BatchProbe | None  # see Core.batch_probe (declared here too, as frame is)

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
        recorder.note_call(self, node, args, kwargs, func)
        if node is self.deferrable and isinstance(func, FunctionV) and self.project is not None \
                and self.project.plain_data([*args, *kwargs.values()]) and self.project.cannot_build(func):
            # ``default_cfgs = generate_default_cfgs({...})``: a project function that reaches no
            # framework, given plain data, builds nothing a rule judges; run it only if its value is read.
            deferred_func, saved_anchor = func, node
            return LazyV(lambda: self.call(deferred_func, args, kwargs, saved_anchor))
        if node.lineno >= FOREIGN_LINE_BASE:
            return self.call(func, args, kwargs, node)
        saved = ANCHOR.node
        ANCHOR.node = node  # what a project module's code reached from here is reported at
        try:
            return self.call(func, args, kwargs, node)
        finally:
            ANCHOR.node = saved

    def call(self, func: Value, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        kind = type(func)  # the commonest callees first (no class derives from these, so order is free)
        if kind is Ref:
            return self.call_ref(func, args, kwargs, node)  # type: ignore[arg-type]
        if kind is MethodV:
            return self.call_method(func.target, func.name, args, kwargs, node)  # type: ignore[attr-defined]
        if kind is BoundV:
            if recorder.forward_called(self, func):  # model.forward(x) in training code: model(x)
                return self.call_module(func.self_val, args, kwargs, node)  # type: ignore[attr-defined]
            return self.call_function(func.func, [func.self_val] + args, kwargs,  # type: ignore[attr-defined]
                                      self_val=func.self_val)  # type: ignore[attr-defined]
        if isinstance(func, InvocableV):
            return func.invoke(self, args, kwargs, node)
        if isinstance(func, LossObjV):
            return recorder.apply_loss(self, func.spec, args, kwargs, node)
        if isinstance(func, (LossV, OptimizerV)):
            return UNKNOWN
        if isinstance(func, Ref):
            return self.call_ref(func, args, kwargs, node)
        if isinstance(func, FunctionV):
            if func.node.lineno >= FOREIGN_LINE_BASE and func.name != "<lambda>":
                # A project module's copy of a framework helper (``trunc_normal_``) keeps the meaning
                # the frameworks give that name, as it had when the module was not read.
                for framework in self.frameworks:
                    known = framework.call_unprefixed(self, func.name, func.name, args, kwargs, node)
                    if known is not None:
                        return known
            return self.call_function(func, args, kwargs)
        if isinstance(func, BoundV):
            return self.call_function(func.func, [func.self_val] + args, kwargs, self_val=func.self_val)
        if isinstance(func, ClassV):
            return self.instantiate(func.info, args, kwargs, node)
        if isinstance(func, MethodV):
            return self.call_method(func.target, func.name, args, kwargs, node)
        if kind is InstanceV and func.info.framework is None:  # type: ignore[attr-defined]
            # a plain object (a tutorial's hand-made ``class Linear:``): Python calls its ``__call__``
            found = func.info.find_method("__call__")  # type: ignore[attr-defined]
            if found is not None:
                return self.call_function(self.make_function(found[1], found[0].scope, found[0]), [func] + args,
                                          kwargs, self_val=func)
        if isinstance(func, (LayerObj, ContainerV, InstanceV, FunctionalModelV)):
            return self.call_module(func, args, kwargs, node)
        if isinstance(func, InitV):
            return UNKNOWN
        reason = func.reason if isinstance(func, UnknownV) else None
        if reason is None:
            reason = f"unresolved call {source_text(getattr(node, 'func', node))}"
        out = self.unknown_call(args, kwargs, node, "call", reason)
        if isinstance(func, UnknownV) and func.built:
            _unread_module(out)  # an object built by an unresolved call, applied: its weights are set elsewhere
        return out

    def call_ref(self, ref: Ref, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        """A call of a name from outside the file: Python's builtins and stdlib, training objects, then
        the framework whose prefix the name has, then wrappers and helpers known by their leaf name."""
        q = ref.qualname
        leaf = ref.leaf
        if q.startswith("builtins."):
            return self.call_builtin(leaf, args, kwargs, node)
        result = self.call_stdlib(q, leaf, args, kwargs, node)
        if result is None:
            result = recorder.construct(self, q, leaf, node, args, kwargs)
        if result is not None:
            return result
        for framework in self.frameworks:
            if q.startswith(framework.prefixes):
                return framework.call(self, q, leaf, args, kwargs, node)
        if leaf in catalog.MODULE_WRAPPERS and args and is_module(args[0]):
            return args[0]
        for framework in self.frameworks:
            result = framework.call_unprefixed(self, q, leaf, args, kwargs, node)
            if result is not None:
                return result
        if q.startswith("einops."):
            result = _einops(q, leaf, args, kwargs, node)
            if result is not None:
                return result
        return self.unknown_call(args, kwargs, node, leaf, f"unresolved import {q}")

    def unknown_call(self, args: list[Value], kwargs: dict[str, Value], node: ast.AST, name: str,
                     reason: str | None = None) -> Value:
        recorder.note_unfollowed(self, args, kwargs, node)
        tensor = first_tensor(args, kwargs)
        if tensor is None:
            # An object built by an unresolved call (``TanhBlock(20)``) keeps the reason for when it is applied.
            return UnknownV(reason, built=True) if reason else UNKNOWN
        layer = Layer(LayerKind.UNKNOWN, name, span_of(node), "torch", reason=reason)
        return TensorV(tensor.nodes + (layer,), tensor.hint)

    def bind(self, fnode: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, defaults: dict[str, Value],
             args: list[Value], kwargs: dict[str, Value], scope: Scope) -> None:
        a = fnode.args
        positional = [p.arg for p in a.posonlyargs + a.args]
        for name, value in zip(positional, args, strict=False):
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
        for param in a.posonlyargs + a.args + a.kwonlyargs:
            name = param.arg
            found = scope.vars.get(name)
            value = found if found is not None else defaults.get(name, UNKNOWN)
            if found is None:
                scope.vars[name] = value
            if isinstance(value, UnknownV):
                # A value the call site cannot know (args.depth from a config file, a parameter of an
                # unreached train(num_layers)): the definition is judged on what its author wrote as
                # the default. Known call-site values always win.
                if name in defaults:
                    scope.vars[name] = defaults[name]
                elif param.annotation is not None:
                    config = self._default_config(param.annotation, scope, fnode)
                    if config is not None:
                        scope.vars[name] = config

    def _default_config(self, annotation: ast.expr, scope: Scope, node: ast.AST) -> Value | None:
        """``def train(cfg: Config)`` called with an unknown ``cfg``: the dataclass built on its defaults."""
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            found = scope.lookup(annotation.value) if annotation.value.isidentifier() else None
        elif isinstance(annotation, (ast.Name, ast.Attribute)):
            found = self.eval_safe(annotation, scope)
        else:
            return None
        if isinstance(found, ClassV) and found.info.framework is None and dataclass_fields(found.info) is not None:
            return self.instantiate(found.info, [], {}, node)
        return None

    def call_function(self, func: FunctionV, args: list[Value], kwargs: dict[str, Value],
                      self_val: Value | None = None, batch: BatchProbe | None = None) -> Value:
        if self.depth >= MAX_CALL_DEPTH:
            return self.unknown_call(args, kwargs, func.node, func.name)
        foreign = func.node.lineno >= FOREIGN_LINE_BASE
        if foreign and self.entry_configs is not None and func.owner is None:
            # Factories nothing in the file calls (a model zoo: timm registers dozens per file) hand
            # their variants to another module's generic builders and arch decoders; those stay
            # unknown for them, as when the module was not read. Its classes are still built.
            return self.unknown_call(args, kwargs, func.node, func.name)
        if foreign:
            if self.foreign_depth == 0 and self.foreign_budget is not None:
                return self._call_foreign_within_budget(func, args, kwargs, self_val, batch)
            self.foreign_depth += 1
            try:
                return self._call_function(func, args, kwargs, self_val, batch)
            finally:
                self.foreign_depth -= 1
        return self._call_function(func, args, kwargs, self_val, batch)

    def _call_foreign_within_budget(self, func: FunctionV, args: list[Value], kwargs: dict[str, Value],
                                    self_val: Value | None, batch: BatchProbe | None) -> Value:
        """An outermost call of a project module's function while ``foreign_budget`` limits them:
        the steps it spends count against both that and the build's own budget."""
        assert self.foreign_budget is not None
        outer = self.budget
        self.budget = allowed = min(outer, self.foreign_budget)
        self.foreign_depth += 1
        try:
            return self._call_function(func, args, kwargs, self_val, batch)
        finally:
            self.foreign_depth -= 1
            spent = allowed - self.budget
            self.foreign_budget -= spent
            self.budget = outer - spent

    def _call_function(self, func: FunctionV, args: list[Value], kwargs: dict[str, Value],
                       self_val: Value | None, batch: BatchProbe | None = None) -> Value:
        self.called_functions.add(id(func.node))
        scope = Scope(func.scope)
        self.bind(func.node, func.defaults, args, kwargs, scope)
        saved: Frame = self.frame
        bound_self = self_val if self_val is not None else (args[0] if args and func.owner else None)
        self.frame = Frame(cls=func.owner, self_val=bound_self, batch=batch, func=func, scope=scope)
        self.depth += 1
        try:
            if isinstance(func.node, ast.Lambda):
                return self.eval_safe(func.node.body, scope)
            result: Value = Const(None)
            try:
                self.exec_block(func.node.body, scope)
            except ReturnSignal as ret:
                result = ret.value
            except (BreakSignal, ContinueSignal):
                pass
            else:
                if self.frame.returned:
                    result = self.frame.returned[0]
            if func.node.decorator_list:
                off = self._grad_off(func)
                if off is not None:  # @torch.no_grad() def forward(...): what it returns has no gradient
                    result = without_gradient(result, off[0], f"{off[1]}_method")
            self._note_factory(func, result)
            return result
        finally:
            self.depth -= 1
            self.frame = saved

    def _grad_off(self, func: FunctionV) -> tuple[Span, str] | None:
        """Where a decorator turns gradient recording off for the whole method (``@torch.no_grad()``,
        ``@torch.no_grad``, ``@torch.inference_mode()``); None otherwise."""
        assert not isinstance(func.node, ast.Lambda)
        for deco in func.node.decorator_list:
            callee = deco.func if isinstance(deco, ast.Call) else deco
            name = callee.attr if isinstance(callee, ast.Attribute) else callee.id if isinstance(callee, ast.Name) \
                else None
            if name not in _GRAD_OFF:
                continue
            value = self.eval_safe(deco, func.scope)
            if isinstance(value, GradModeV) and not value.enabled or (
                    isinstance(value, Ref) and value.qualname.startswith("torch.") and value.leaf in _GRAD_OFF):
                return span_of(deco), name
        return None

    def _note_factory(self, func: FunctionV, result: Value) -> None:
        """A module-level function that builds a model with all-default arguments is a factory the
        dynamic check can call."""
        if func.scope is not self.module_scope or isinstance(func.node, ast.Lambda) or func.owner is not None:
            return
        if not isinstance(result, (ContainerV, FunctionalModelV, InstanceV)) or result.factory:
            return
        args = func.node.args
        required = len(args.posonlyargs + args.args) - len(args.defaults)
        if required > 0 or any(d is None for d in args.kw_defaults):
            return
        result.factory = func.name

    def instantiate(self, info: ClassInfo, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        return self._instantiate(info, args, kwargs, node)

    def _instantiate(self, info: ClassInfo, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        self.instantiated_classes.add(info.name)
        layer = self._layer_subclass(info, args, kwargs, node)
        if layer is not None:
            return layer
        instance = InstanceV(info, {}, span_of(info.node))
        if info.container_base in ("sequential", "keras_sequential"):
            instance.seq_items = []
        init = info.find_method("__init__")
        fields = dataclass_fields(info) if init is None else None
        if fields is not None:  # the generated __init__ of a dataclass / NamedTuple
            instance.attrs.update(construct_dataclass(self, info, fields, args, kwargs, node))
            post = info.find_method("__post_init__")
            if post is not None:
                cls, fnode = post
                self.call_function(self.make_function(fnode, cls.scope, cls), [instance], {}, self_val=instance)
        elif init is not None:
            cls, fnode = init
            self.call_function(self.make_function(fnode, cls.scope, cls), [instance] + args, kwargs, self_val=instance)
        elif instance.seq_items is not None:
            self.fill_sequential(instance, args, kwargs)
        if info.framework is not None:
            self.built.append(instance)
        return instance

    def _layer_subclass(self, info: ClassInfo, args: list[Value], kwargs: dict[str, Value], node: ast.AST
                        ) -> Value | None:
        """``class WideLinear(nn.Linear)`` overriding only ``reset_parameters``: the torch layer built with
        the same arguments, its weights then set by the override (which torch's constructor calls in place of
        its own). A hierarchy defining ``__init__``, ``forward`` or anything else is not this (None)."""
        if info.framework is not None or info.fields is not None:
            return None
        chain = info.mro()
        bases = [b for cls in chain for b in cls.bases if not isinstance(b, ClassV)]
        if len(bases) != 1 or not isinstance(bases[0], Ref) or not bases[0].qualname.startswith("torch.nn.") \
                or bases[0].qualname.count(".") != 2 or bases[0].leaf not in catalog.TORCH_LAYERS:
            return None
        methods = {name for cls in chain for name in cls.methods}
        if methods != {"reset_parameters"}:
            return None
        built = self.call_ref(bases[0], args, kwargs, node)
        if not isinstance(built, LayerObj) or built.layer.kind not in (LayerKind.DENSE, LayerKind.CONV):
            return None
        # torch's constructor draws nothing itself (torch.empty) and calls the override: what it sets counts.
        built.layer.weight_init = Init("unknown", {})
        built.layer.bias_init = Init("unknown", {}) if built.layer.bias is not False else built.layer.bias_init
        found = info.find_method("reset_parameters")
        assert found is not None
        cls, fnode = found
        self.call_function(self.make_function(fnode, cls.scope, cls), [built], {}, self_val=built)
        return built

    def fill_sequential(self, instance: InstanceV, args: list[Value], kwargs: dict[str, Value]) -> None:
        assert instance.seq_items is not None
        items, _keys, partial = self.sequential_items(args)
        for item in items:
            self.own(item)
        instance.seq_items.extend(items)
        instance.partial = instance.partial or partial

    def sequential_items(self, args: list[Value]) -> tuple[list[Value], list[str] | None, bool]:
        if len(args) == 1 and isinstance(args[0], DictV):
            return list(args[0].items.values()), [str(k) for k in args[0].items], args[0].partial
        if (
            len(args) == 1
            and isinstance(args[0], ListV)
            and args[0].items
            and all(isinstance(i, ListV) and len(i.items) == 2 for i in args[0].items)
        ):  # OrderedDict([(name, m)])
            pairs = [i for i in args[0].items if isinstance(i, ListV)]
            return [p.items[1] for p in pairs], [str(getattr(p.items[0], "value", "?")) for p in pairs], args[0].partial
        partial = any(isinstance(a, UnknownV) for a in args)
        return [a for a in args if not isinstance(a, UnknownV)], None, partial

    def forward(self, instance: InstanceV, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        probe: BatchProbe | None = self.batch_probe  # armed for this call only (see call_module)
        self.batch_probe = None
        for framework in self.frameworks:
            if framework.name == instance.info.framework:
                framework.before_call(self, instance, args, kwargs)
        method_name = "forward" if instance.info.framework != "keras" else "call"
        found = instance.info.find_method(method_name) or instance.info.find_method("__call__")
        if found is None and instance.info.framework == "keras":
            found = instance.info.find_method("forward")
        if found is None:
            if instance.seq_items is not None:
                return apply_sequential_items(self, instance, args, kwargs, node)
            out = self.unknown_call(args, kwargs, node, instance.info.name)
            _unread_module(out)  # its forward is an unread base's: a module gradlint cannot read
            return out
        cls, fnode = found
        func = self.make_function(fnode, cls.scope, cls)
        if probe is not None:
            name = batch_parameter(fnode)
            if name is not None:
                probe.sizes = {name: probe.shape}
        return self.call_function(func, [instance] + list(args), kwargs, self_val=instance, batch=probe)


def _unread_module(out: Value) -> None:
    """Mark the UNKNOWN node ``unknown_call`` just appended as a module gradlint cannot read
    (``Layer.external_weights``: a stop in front of it may freeze a pretrained part, see cuts.py)."""
    last = out.nodes[-1] if isinstance(out, TensorV) and out.nodes else None
    if isinstance(last, Layer) and last.kind == LayerKind.UNKNOWN:
        last.external_weights = True


def batch_parameter(fnode: FunctionNode) -> str | None:
    """The parameter of a ``forward(self, x, ...)`` that receives the batch, when the body never
    rebinds it nor changes it in place (``x = x.view(...)``, ``x.unsqueeze_(1)``): its shape is then
    the batch's wherever the body reads ``x.size(1)`` / ``x.shape``. Only run for a training call on
    a batch of known shape."""
    if isinstance(fnode, ast.Lambda):
        return None
    params = fnode.args.posonlyargs + fnode.args.args
    if len(params) < 2:
        return None
    name = params[1].arg
    for sub in ast.walk(fnode):
        if isinstance(sub, ast.Name) and sub.id == name and not isinstance(sub.ctx, ast.Load):
            return None
        if isinstance(sub, ast.Attribute) and sub.attr.endswith("_") and isinstance(sub.value, ast.Name) \
                and sub.value.id == name:
            return None
        if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and sub is not fnode \
                and name in {a.arg for a in sub.args.posonlyargs + sub.args.args + sub.args.kwonlyargs}:
            return None  # a nested function's own parameter of that name: keep it simple
    return name


#: einops re-arrangements: the same values (``repeat``: copies) in another layout, whatever the backend.
_EINOPS_CALLS = frozenset({"rearrange", "repeat"})
_EINOPS_MODULES = frozenset({"Rearrange", "Repeat"})


def _einops(q: str, leaf: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value | None:
    """``einops.rearrange(x, "b c h w -> b (h w) c")`` / ``repeat``: the tensor passes on (gain 1), as a node
    after which the spatial size is not followed; ``einops.layers.torch.Rearrange(...)`` the same as a
    module. Reductions (``reduce``, ``Reduce``) stay unknown: their effect depends on the pattern."""
    if leaf in _EINOPS_CALLS and args and isinstance(args[0], TensorV):
        layer = Layer(LayerKind.OTHER, leaf, span_of(node), "torch", activation="linear", bias=False)
        return TensorV(args[0].nodes + (layer,), args[0].hint)
    if leaf in _EINOPS_MODULES and q.startswith("einops.layers.torch."):
        return LayerObj(Layer(LayerKind.OTHER, leaf, span_of(node), "torch", activation="linear", bias=False))
    return None
