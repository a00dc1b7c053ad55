"""Weights that a re-initialisation hook the extractor cannot run may overwrite.

Model code often sets its final init in one method applied to every submodule:
``def _init_weights(self, module): if isinstance(module, nn.Linear): module.weight.data.normal_(...)``,
applied by ``self.apply(self._init_weights)`` -- which the interpreter runs -- or by a base class
gradlint does not read (Hugging Face's ``PreTrainedModel.post_init()``; loading a checkpoint).
What such a hook writes cannot be known without running it, so the inits written before it are
not the model's inits at all: they become an explicit unknown (``Init("unknown")``) that no rule
guesses across. Two cases:

- an instance of a class whose hierarchy defines such a hook and derives from a base gradlint
  cannot read, when nothing the interpreter ran called the hook: the unread base may;
- a helper built on its own as a fallback (``_build_unreached``: its users' layer count comes from
  a config) whose users -- the definitions naming it, transitively -- belong to such a hierarchy,
  or run such a hook: in the real program it lives inside them and their hook re-initialises it.

A hook defined but never applied in a hierarchy gradlint reads in full is dead code: the inits
written in ``__init__`` stay, and a zero init there is still reported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from gradlint.extract.common import FOREIGN_LINE_BASE, span_of
from gradlint.extract.interpreter import Interpreter
from gradlint.extract.values import ClassInfo, ClassV, DictV, InstanceV, LayerObj, ListV, ParamV, Ref, Value
from gradlint.model import Init

Hook = ast.FunctionDef | ast.AsyncFunctionDef


def reinit_hooks(info: ClassInfo, cache: dict[int, list[tuple[ClassInfo, Hook]]]) -> list[tuple[ClassInfo, Hook]]:
    """The re-initialisation hooks of a class's hierarchy (as far as gradlint reads it): methods
    taking a module that dispatch on its type (``isinstance(module, ...)``) and write to it
    (call a method of one of its attributes, pass one to a function, or assign a built value)."""
    found = cache.get(id(info.node))
    if found is None:
        found = [(cls, method) for cls in info.mro() for method in cls.methods.values() if _is_hook(method)]
        cache[id(info.node)] = found
    return found


def _is_hook(method: Hook) -> bool:
    params = [a.arg for a in method.args.posonlyargs + method.args.args][1:]  # after self
    if not params:
        return False
    dispatched: set[str] = set()
    written: set[str] = set()
    for node in ast.walk(method):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "isinstance" and node.args \
                    and isinstance(node.args[0], ast.Name):
                dispatched.add(node.args[0].id)
                continue
            # module.weight.data.normal_(...), module.reset_parameters(), init.zeros_(module.bias)
            if isinstance(node.func, ast.Attribute):
                written.update(_attribute_root(node.func.value, allow_bare=True))
            for arg in node.args:
                written.update(_attribute_root(arg, allow_bare=False))
        elif isinstance(node, (ast.Assign, ast.AugAssign)) and isinstance(node.value, ast.Call):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:  # module.weight = nn.Parameter(...); module.weight.data = torch.randn(...)
                written.update(_attribute_root(target, allow_bare=False))
    return any(p in dispatched and p in written for p in params)


def _attribute_root(node: ast.expr, allow_bare: bool) -> Iterable[str]:
    """The name an attribute chain (``m.weight.data``, ``m.weight[0]``) starts from; a bare name
    only when ``allow_bare`` (``m.reset_parameters()`` calls a method of ``m`` itself)."""
    depth = 0
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
        depth += 1
    if isinstance(node, ast.Name) and (depth > 0 or allow_bare):
        yield node.id


def reads_every_base(interp: Interpreter, info: ClassInfo) -> bool:
    """Whether every base in the class's hierarchy is one gradlint reads (a class it interpreted)
    or a framework base that runs no user hook (``nn.Module``, ``keras.Model``)."""
    for cls in info.mro():
        for base in cls.bases:
            if isinstance(base, ClassV):
                continue
            if isinstance(base, Ref) and (interp.framework_of_base(base.qualname) is not None
                                          or base.qualname in ("object", "builtins.object")):
                continue
            return False
    return True


def _reinitialises(interp: Interpreter, info: ClassInfo, cache: dict[int, list[tuple[ClassInfo, Hook]]],
                   run_counts: bool) -> tuple[ClassInfo, Hook] | None:
    """The hook of ``info``'s hierarchy that may re-initialise its modules: one the interpreter did
    not run while the hierarchy has a base it cannot read; with ``run_counts``, one it ran too."""
    hooks = reinit_hooks(info, cache)
    if not hooks:
        return None
    for cls, hook in hooks:
        if run_counts and id(hook) in interp.called_functions:
            return cls, hook
    if reads_every_base(interp, info):
        return None
    for cls, hook in hooks:
        if id(hook) not in interp.called_functions:
            return cls, hook
    return None


def _users(tree: ast.Module) -> dict[str, set[str]]:
    """For each top-level definition's name, the top-level definitions whose bodies name it."""
    users: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Load) and inner.id != node.name:
                    users.setdefault(inner.id, set()).add(node.name)
    return users


def _transitive_users(name: str, users: dict[str, set[str]]) -> list[str]:
    seen: list[str] = []
    stack = [name]
    while stack:
        for user in users.get(stack.pop(), ()):
            if user not in seen and user != name:
                seen.append(user)
                stack.append(user)
    return seen


def mark_reinitialised(interp: Interpreter, roots: list[Value], fallback: dict[int, str]) -> None:
    """Make the inits of the roots' weights unknown where a hook gradlint cannot follow may
    rewrite them (see the module docstring). ``fallback`` maps a value built on its own as a
    fallback helper (by id) to the name of the definition that built it."""
    cache: dict[int, list[tuple[ClassInfo, Hook]]] = {}
    classes = {info.name: info for info in interp.classes}
    users: dict[str, set[str]] | None = None
    for value in roots:
        found = None
        if isinstance(value, InstanceV):
            found = _reinitialises(interp, value.info, cache, run_counts=False)
        name = fallback.get(id(value))
        if found is None and name is not None:
            if users is None:
                users = _users(interp.tree)
            for user in _transitive_users(name, users):
                info = classes.get(user)
                if info is not None:
                    found = _reinitialises(interp, info, cache, run_counts=True)
                    if found is not None:
                        break
        if found is not None:
            _forget_inits(interp, value, found)


def _forget_inits(interp: Interpreter, root: Value, via: tuple[ClassInfo, Hook]) -> None:
    cls, hook = via
    span = span_of(hook) if hook.lineno < FOREIGN_LINE_BASE else None
    reason = f"unknown: {cls.name}.{hook.name} may re-initialise it"

    def unknown() -> Init:
        return Init("unknown", {}, span, reason)

    for module in interp.walk_modules(root):
        if isinstance(module, LayerObj):
            layer = module.layer
            if layer.weight_init is not None:
                layer.weight_init = unknown()
            if layer.bias_init is not None:
                layer.bias_init = unknown()
        elif isinstance(module, InstanceV):
            for attr in module.attrs.values():
                items = attr.items if isinstance(attr, ListV) else list(attr.items.values()) \
                    if isinstance(attr, DictV) else [attr]
                for item in items:
                    if isinstance(item, ParamV) and item.owner is None and item.init is not None:
                        item.init = unknown()
