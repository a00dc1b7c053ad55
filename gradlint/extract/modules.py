"""The module and container protocol: methods of lists, dicts, strings, nn.Module / keras Model
instances, containers and layers that user code did not define; walking module trees (``apply``,
``modules()``, ``named_parameters()``); and applying a module to a tensor (``forward``).
"""

from __future__ import annotations

import ast

from gradlint.extract import catalog, numeric_arrays, paths, recorder, torch_dims
from gradlint.extract.api import Core
from gradlint.extract.common import (
    const_values,
    first_tensor,
    is_module,
    longest_tensor,
    param_ndim,
    safe_string_call,
)
from gradlint.extract.configs import saved_hyperparameters
from gradlint.extract.state import MAX_LIST_ITEMS
from gradlint.extract.values import (
    UNKNOWN,
    BatchProbe,
    Const,
    ContainerV,
    DictV,
    FunctionalModelV,
    InstanceV,
    LayerObj,
    ListV,
    NodeSeq,
    ParamV,
    TensorConstV,
    TensorV,
    Value,
)
from gradlint.model import Gate, Layer, LayerKind

# Methods that return the module itself (device and mode changes do not change the init).
_SAME_MODULE = frozenset({"to", "cuda", "cpu", "float", "double", "half", "train", "eval", "requires_grad_"})


# Layers that map each time step of a sequence on its own (on the feature axis, or elementwise).
_PER_STEP = frozenset({LayerKind.DENSE, LayerKind.DROPOUT, LayerKind.ACTIVATION, LayerKind.NORMALIZATION})


def _freezes(name: str, args: list[Value], kwargs: dict[str, Value]) -> bool:
    """A module method call that freezes the module's parameters or loads them from a checkpoint."""
    if name in ("load_state_dict", "load_weights", "freeze"):
        return True
    if name == "requires_grad_":
        flag = args[0] if args else kwargs.get("requires_grad")
        return isinstance(flag, Const) and flag.value is False
    return False


def _grad_flag(name: str, args: list[Value], kwargs: dict[str, Value]) -> bool | None:
    """``module.requires_grad_(flag)`` with a literal flag (True when not given); None otherwise."""
    if name != "requires_grad_":
        return None
    flag = args[0] if args else kwargs.get("requires_grad", Const(True))
    return flag.value if isinstance(flag, Const) and isinstance(flag.value, bool) else None


class ModulesMixin(Core):
    """Method calls on values that are not user functions, and module application."""

    batch_probe: BatchProbe | None  # see Core.batch_probe (declared here too: mypy cannot infer it across the mixins)

    def call_method(
        self, target: Value, name: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST
    ) -> Value:
        recorded = recorder.method(self, target, name, args, kwargs, node)
        if recorded is not None:
            return recorded
        if isinstance(target, (TensorV, ParamV)):
            for framework in self.frameworks:
                result = framework.method(self, target, name, args, kwargs, node)
                if result is not None:
                    return result
            return self.unknown_call([target] + args, kwargs, node, name) if isinstance(target, TensorV) else UNKNOWN
        if isinstance(target, TensorConstV) and target.values is not None and \
                (known := numeric_arrays.method(target, name, args, kwargs)) is not None:
            return known  # np.linspace(...).astype(int): the widths, still known
        if isinstance(target, TensorConstV):  # torch.randn(n, m).requires_grad_(), x.mm(w): raw-tensor models
            for framework in self.frameworks:
                if framework.name == "torch":  # only torch makes these (and a lazy handler stays unloaded)
                    result = framework.method(self, target, name, args, kwargs, node)
                    if result is not None:
                        return result
            return UNKNOWN
        if isinstance(target, ListV):
            return self.list_method(target, name, args)
        if isinstance(target, DictV):
            if name == "update" and len(args) == 1 and not kwargs and isinstance(args[0], DictV) \
                    and not args[0].partial and not self.mutating_uncertainly(target):
                target.items.update(args[0].items)  # registry.update({"my_act": f}): the entries are known
                return Const(None)
            return _dict_method(target, name, args)
        if isinstance(target, Const) and isinstance(target.value, str):
            return _str_method(target.value, name, args)
        if isinstance(target, ContainerV):
            return self.container_method(target, name, args, kwargs, node)
        if isinstance(target, InstanceV):
            return self.instance_builtin_method(target, name, args, kwargs, node)
        if isinstance(target, LayerObj):
            return self.layer_method(target, name, args, kwargs, node)
        if isinstance(target, FunctionalModelV):
            if name in ("to", "cuda", "cpu", "summary", "compile", "build"):
                return Const(None) if name in ("summary", "compile", "build") else target
            return UNKNOWN
        return UNKNOWN

    def layer_method(
        self, target: LayerObj, name: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST
    ) -> Value:
        """nn.Module / keras Layer methods on a framework layer."""
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
        if _freezes(name, args, kwargs):
            target.layer.frozen = True
        if (flag := _grad_flag(name, args, kwargs)) is not None:
            target.layer.grad_off = not flag
        if name in _SAME_MODULE:
            return target
        return UNKNOWN

    def _set_grad_off(self, target: Value, off: bool) -> None:
        for module in self.walk_modules(target):
            if isinstance(module, LayerObj):
                module.layer.grad_off = off

    def freeze(self, target: Value) -> None:
        """``module.requires_grad_(False)``, ``module.load_state_dict(...)``, Keras ``model.trainable =
        False``: every layer of the module is frozen (not meant to learn from the model's gradient)."""
        for module in self.walk_modules(target):
            if isinstance(module, LayerObj):
                module.layer.frozen = True

    def list_method(self, target: ListV, name: str, args: list[Value]) -> Value:
        if name == "append" and args:
            if len(target.items) >= MAX_LIST_ITEMS:
                target.partial = True
                return Const(None)
            target.items.append(args[0])
            if self.mutating_uncertainly(target):
                target.partial = True
                if self.time_loops:
                    self.step_lists[id(target)] = target  # one item a step of a loop over time
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

    def container_method(
        self, target: ContainerV, name: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST
    ) -> Value:
        if name in ("append", "add") and args:
            if target.kind == "keras_sequential" and isinstance(args[0], TensorV) and not args[0].nodes:
                target.input_hint = target.input_hint or args[0].hint  # model.add(keras.Input(shape=...))
                return Const(None)
            self.own(args[0])
            if target.kind == "moduledict":
                return UNKNOWN
            target.items.append(args[0])
            if self.mutating_uncertainly(target):
                target.partial = True
            if target.kind == "keras_sequential" and target.input_hint is None:
                target.input_hint = args[0].input_hint if isinstance(args[0], LayerObj) else None
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
            return ListV(
                [ListV([Const(k), v], is_tuple=True) for k, v in zip(target.keys or [], target.items, strict=False)],
                target.partial,
            )
        if name in ("values", "children"):
            return ListV(list(target.items), target.partial)
        if name == "keys":
            return ListV([Const(k) for k in (target.keys or [])], target.partial)
        if name == "apply" and args:
            for module in self.walk_modules(target):
                self.call(args[0], [module], {}, node)
            return target
        if name in ("modules", "named_modules", "parameters", "named_parameters", "named_children"):
            return self.module_listing(target, name)
        if name == "state_dict" and target.framework == "torch":
            return self.state_dict(target)
        if name in ("forward", "__call__"):
            return self.call_module(target, args, kwargs, node)
        if _freezes(name, args, kwargs):
            self.freeze(target)
        if (flag := _grad_flag(name, args, kwargs)) is not None:
            self._set_grad_off(target, not flag)
        if name in _SAME_MODULE:
            return target
        if name in ("compile", "summary", "build", "fit", "save"):
            return Const(None)
        return UNKNOWN

    def state_dict(self, target: InstanceV | ContainerV) -> Value:
        """``module.state_dict()``: its parameters by name (the tensors share the parameters' storage, so
        ``value.normal_(0, 1)`` over its items initialises them; buffers are not modelled)."""
        pairs = self.module_listing(target, "named_parameters")
        if not isinstance(pairs, ListV):
            return UNKNOWN
        return DictV(
            {
                p.items[0].value: p.items[1]
                for p in pairs.items
                if isinstance(p, ListV) and isinstance(p.items[0], Const)
            },
            pairs.partial,
        )

    def instance_builtin_method(
        self, target: InstanceV, name: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST
    ) -> Value:
        """nn.Module / keras.Model methods the user did not override."""
        if name == "register_parameter" and len(args) == 2 and isinstance(args[0], Const) \
                and isinstance(args[0].value, str) and isinstance(args[1], ParamV):
            # self.register_parameter("W%d" % i, nn.Parameter(...)): as setattr, read back with getattr
            self.set_attribute(target, args[0].value, args[1], node)
            return Const(None)
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
            return self.state_dict(target)
        if name == "save_hyperparameters" and target.info.framework == "torch":  # Lightning
            target.attrs["hparams"] = saved_hyperparameters(self, self.frame.func, self.frame.scope, args, kwargs)
            return Const(None)
        if name in ("forward", "__call__", "call"):
            return self.call_module(target, args, kwargs, node)
        if _freezes(name, args, kwargs):
            self.freeze(target)
        if (flag := _grad_flag(name, args, kwargs)) is not None:
            self._set_grad_off(target, not flag)
        if name in ("add_loss", "add_metric", "log"):  # Keras self.add_loss(t), Lightning self.log(...)
            self.escaped.extend(a for a in list(args) + list(kwargs.values()) if isinstance(a, TensorV))
        if name in (
            "register_buffer",
            "register_parameter",
            "compile",
            "summary",
            "build",
            "fit",
            "init_weights",
            "initialize",
            "post_init",
            "tie_weights",
        ):
            return Const(None)
        if name in _SAME_MODULE:
            return target
        for framework in self.frameworks:  # Keras: self.add_weight(...)
            result = framework.method(self, target, name, args, kwargs, node)
            if result is not None:
                return result
        return UNKNOWN

    def children_of(self, value: Value) -> list[tuple[str, Value]]:
        out: list[tuple[str, Value]] = []
        if isinstance(value, InstanceV):
            seen: set[int] = set()
            if value.seq_items is not None:
                for i, item in enumerate(value.seq_items):
                    if is_module(item):
                        out.append((str(i), item))
                        seen.add(id(item))
            for key, item in value.attrs.items():
                if is_module(item) and id(item) not in seen:
                    out.append((key, item))
                    seen.add(id(item))
                elif isinstance(item, ListV):  # keras subclassed models track lists of layers
                    for i, sub in enumerate(item.items):
                        if is_module(sub) and id(sub) not in seen:
                            out.append((f"{key}.{i}", sub))
                            seen.add(id(sub))
        elif isinstance(value, ContainerV):
            keys = (
                value.keys
                if value.keys and len(value.keys) == len(value.items)
                else [str(i) for i in range(len(value.items))]
            )
            for key, item in zip(keys, value.items, strict=False):
                if is_module(item):
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
        if layer.kind in (
            LayerKind.DENSE,
            LayerKind.CONV,
            LayerKind.EMBEDDING,
            LayerKind.RECURRENT,
            LayerKind.NORMALIZATION,
            LayerKind.ATTENTION,
        ):
            if layer.kind == LayerKind.RECURRENT and layer.framework == "torch":
                # torch's own names, which init loops test (``if "weight_hh" in name: orthogonal_(p)``)
                params.append((f"{dot}weight_ih_l0", ParamV(layer, "weight", ndim=2)))
                params.append((f"{dot}weight_hh_l0", ParamV(layer, "recurrent", ndim=2)))
                if layer.bias is not False:
                    params += [(f"{dot}bias_ih_l0", ParamV(layer, "bias", ndim=1)),
                               (f"{dot}bias_hh_l0", ParamV(layer, "bias", ndim=1))]
                return params
            params.append((f"{dot}weight", ParamV(layer, "weight", ndim=param_ndim(layer, "weight"))))
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
                        params.extend(
                            (f"{name_}.{i}", v)
                            for i, v in enumerate(value.items)
                            if isinstance(v, ParamV) and v.owner is None
                        )
                    elif isinstance(value, DictV):
                        params.extend(
                            (f"{name_}.{k}", v)
                            for k, v in value.items.items()
                            if isinstance(v, ParamV) and v.owner is None
                        )
        if name == "parameters":
            return ListV([p for _, p in params])
        return ListV([ListV([Const(n), p], is_tuple=True) for n, p in params])

    def call_module(self, module: Value, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
        tensor = first_tensor(args, kwargs)
        training_call = recorder.is_model(module) and not recorder.inside_model_code(self.frame)
        if tensor is not None and isinstance(module, InstanceV) and recorder.is_layer_class(module.info):
            self.own(module)  # a custom Keras layer called in a functional graph is part of that graph
        if tensor is None:
            if not training_call:
                return UNKNOWN
            tensor = TensorV(NodeSeq(), None)  # a batch from a data loader
            if args:
                tensor.dims = torch_dims.start(args[0])  # a data tensor of known shape
        batch = args[0] if args else None
        probe: BatchProbe | None = None
        if training_call and isinstance(module, InstanceV) and module.info.framework == "torch" \
                and isinstance(batch, TensorConstV) and batch.shape:
            probe = BatchProbe(batch.shape)
        args = [tensor] + list(args[1:]) if args else [tensor]
        self.batch_probe = probe  # taken by its forward
        if probe is None:
            result = self.apply_module(module, tensor, args, kwargs, node)
        else:
            try:
                result = self.apply_module(module, tensor, args, kwargs, node)
            finally:
                self.batch_probe = None
        if training_call:
            result = recorder.record_model_call(self, module, tensor, result, node, batch, probe)
        return result

    def apply_module(
        self, module: Value, tensor: TensorV, args: list[Value], kwargs: dict[str, Value], node: ast.AST
    ) -> Value:
        result = self._apply_module(module, tensor, args, kwargs, node)
        if isinstance(module, LayerObj) and tensor.dims is not None:
            return torch_dims.follow(self, tensor, result, module.layer)
        return result

    def _apply_module(
        self, module: Value, tensor: TensorV, args: list[Value], kwargs: dict[str, Value], node: ast.AST
    ) -> Value:
        self.tick()
        if isinstance(module, LayerObj):
            layer = module.layer
            if layer.framework == "keras" and layer.kind not in (LayerKind.RECURRENT, LayerKind.ATTENTION):
                return paths.applied(module, tensor)  # with its shape: the width after a Flatten
            if layer.kind == LayerKind.OTHER and layer.op in catalog.PASSTHROUGH_LAYERS:
                # a resampling (Upsample, PixelShuffle, ZeroPad2d) stays on the path: the spatial size after it
                return tensor if layer.window is None else TensorV(tensor.nodes + (layer,), tensor.hint)
            if layer.op == "GLU":
                gate = Gate(
                    [Layer(LayerKind.ACTIVATION, "GLU", layer.span, layer.framework, activation="sigmoid")], layer.span
                )
                return TensorV(tensor.nodes + (gate,), tensor.hint)
            if layer.kind == LayerKind.RECURRENT or layer.kind == LayerKind.ATTENTION:
                if layer.framework == "torch" and layer.op in catalog.TORCH_CELLS and self.time_loops \
                        and module.time_axis is None:
                    module.time_input, module.time_axis = self.time_loops[-1]  # stepped over that axis
                if self.frame.batch is not None and layer.op in catalog.TORCH_CELLS:
                    self.frame.batch.step_cell(layer)  # one time step of a loop in a forward
                out = TensorV(tensor.nodes + (layer,), tensor.hint)
                if layer.framework == "torch" and layer.op in catalog.TORCH_TUPLE_OUTPUT:
                    # (output, hidden) — the hidden state (or (h, c)) carries the same path; the output
                    # holds every step (a tensor of its own, so what is made of it can be followed)
                    steps = TensorV(tensor.nodes + (layer,), tensor.hint)
                    if layer.kind == LayerKind.RECURRENT:
                        self.step_outputs[id(steps)] = (steps, layer)
                    return ListV([steps, out], is_tuple=True)
                return out
            out = TensorV(tensor.nodes + (layer,), tensor.hint)
            stepped = self.step_outputs.get(id(tensor))
            if stepped is not None and stepped[0] is tensor and layer.kind in _PER_STEP:
                self.step_outputs[id(out)] = (out, stepped[1])  # self.fc(out): still one value per step
            return out
        if isinstance(module, ContainerV):
            if module.kind in ("modulelist", "moduledict"):
                return self.unknown_call([tensor], {}, node, "ModuleList")
            current: Value = tensor
            for item in module.items:
                if not isinstance(current, TensorV):
                    current = longest_tensor(current) or UNKNOWN
                    if not isinstance(current, TensorV):
                        return UNKNOWN
                current = (
                    self.apply_module(item, current, [current], {}, node)
                    if is_module(item)
                    else self.call(item, [current], {}, node)
                )
            if module.partial and isinstance(current, TensorV):
                current = TensorV(
                    current.nodes + (Layer(LayerKind.UNKNOWN, "partial", module.span, module.framework),), current.hint
                )
            return current
        if isinstance(module, FunctionalModelV):
            return TensorV(tensor.nodes + module.output.nodes, tensor.hint)
        if isinstance(module, InstanceV):
            return self.forward(module, args if args else [tensor], kwargs, node)
        return self.call(module, args, kwargs, node)


def _dict_method(target: DictV, name: str, args: list[Value]) -> Value:
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


def _str_method(text: str, name: str, args: list[Value]) -> Value:
    if not safe_string_call(text, name, [a.value for a in args if isinstance(a, Const)]):
        return UNKNOWN
    values = const_values(args)
    try:
        if values is not None:
            return Const(getattr(text, name)(*values))
    except Exception:
        return UNKNOWN
    return UNKNOWN
