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
  A hook the user ran, in a hierarchy read in full, is replayed on the helper's modules instead
  (with the user's instance as ``self``), so its dispatch and what it writes are judged -- a hook
  that zeroes them is still a bug; only one that cannot be replayed leaves them unknown.

A hook defined but never applied in a hierarchy gradlint reads in full is dead code: the inits
written in ``__init__`` stay, and a zero init there is still reported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from gradlint.extract.common import FOREIGN_LINE_BASE, span_of
from gradlint.extract.interpreter import BudgetExceeded, Interpreter
from gradlint.extract.syntax_index import SyntaxIndex, iter_nodes
from gradlint.extract.values import BoundV, ClassInfo, ClassV, DictV, InstanceV, LayerObj, ListV, ParamV, Ref, Value
from gradlint.model import Init

Hook = ast.FunctionDef | ast.AsyncFunctionDef

# The constructor and the methods a framework runs a model through are no hooks (and the
# interpreter runs all of them: reading their bodies would cost more than anything else here).
_NOT_HOOKS = frozenset({"__init__", "forward", "call", "__call__", "build"})


def _is_hook(method: Hook) -> bool:
    """A re-initialisation hook: a method taking a module that dispatches on its type
    (``isinstance(module, ...)``) and rewrites one of its attributes in place -- torch's in-place
    convention, a trailing underscore: ``module.weight.data.normal_(...)``, ``init.zeros_(module.bias)``,
    ``trunc_normal_(m.weight, std=.02)`` -- or assigns it a built value (``module.weight =
    nn.Parameter(...)``). A ``forward`` that checks ``isinstance(cache, ...)`` and calls
    ``cache.update(...)`` is no hook."""
    params = [a.arg for a in method.args.posonlyargs + method.args.args][1:]  # after self
    if not params or method.name in _NOT_HOOKS:
        return False
    dispatched: set[str] = set()
    written: set[str] = set()
    for node in iter_nodes(method):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "isinstance" and node.args \
                    and isinstance(node.args[0], ast.Name):
                dispatched.add(node.args[0].id)
                continue
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if not _in_place(name):
                continue
            if isinstance(func, ast.Attribute):  # module.weight.data.normal_(...)
                written.update(_attribute_root(func.value))
            for arg in node.args[:1]:  # init.normal_(module.weight, ...): the tensor comes first
                written.update(_attribute_root(arg))
        elif isinstance(node, (ast.Assign, ast.AugAssign)) and isinstance(node.value, ast.Call):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:  # module.weight = nn.Parameter(...); module.weight.data = torch.randn(...)
                written.update(_attribute_root(target))
    return any(p in dispatched and p in written for p in params)


def _in_place(name: str) -> bool:
    return name.endswith("_") and not name.startswith("__") and name.strip("_") != ""


def _attribute_root(node: ast.expr) -> Iterable[str]:
    """The name an attribute chain (``m.weight.data``, ``m.weight[0]``) starts from, when it has
    an attribute (a bare name is the module itself, ``m[k]`` an item, neither one of its tensors)."""
    attributes = 0
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        attributes += isinstance(node, ast.Attribute)
        node = node.value
    if isinstance(node, ast.Name) and attributes:  # outputs["image"] = ... is a dict, not a tensor
        yield node.id


# Bases that call no method of their subclasses' on their own (beyond the frameworks' model bases).
_INERT_BASES = frozenset({"object", "builtins.object", "abc.ABC", "typing.Generic", "typing.Protocol"})


def reads_every_base(interp: Interpreter, info: ClassInfo) -> bool:
    """Whether every base in the class's hierarchy is one gradlint reads (a class it interpreted)
    or one that runs no user hook (``nn.Module``, ``keras.Model``, ``abc.ABC``)."""
    for cls in info.mro():
        for base in cls.bases:
            if isinstance(base, ClassV):
                continue
            if isinstance(base, Ref) and (base.qualname in _INERT_BASES
                                          or interp.framework_of_base(base.qualname) is not None):
                continue
            return False
    return True


Found = tuple[ClassInfo, Hook]  # the class defining the hook, the hook
Governing = tuple[ClassInfo, ClassInfo, Hook]  # the class whose hierarchy has it, then Found
# Steps to replay a hook on a helper built on its own: as much as building one class in the first pass.
REPLAY_BUDGET = 25_000


class _Hooks:
    """Which hooks may re-initialise what, computed lazily (most files have none: the costly
    part, reading method bodies, is done only for methods the interpreter ran, or those of a
    hierarchy with an unread base)."""

    def __init__(self, interp: Interpreter, source: str | None = None, index: SyntaxIndex | None = None) -> None:
        self.interp = interp
        self.is_hook: dict[int, bool] = {}
        self.source = source
        self.lines: list[str] | None = None  # the linted file's, split when a method is first asked about
        # governing(): the definitions reached from hooked classes, and what is left to search.
        self.governed: dict[str, Governing] = {}
        self.frontier: list[tuple[str, Governing]] | None = None
        self.expanded: set[str] = set()
        self.definitions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef] = {}
        # orphan_governor(): the file's first hierarchy with an unread base and a hook (False: none;
        # None: not looked for yet), and where the file's syntax says which names it reads
        self.unread_hooked: Governing | bool | None = None
        self.index = index

    def _index(self) -> SyntaxIndex:
        if self.index is None:
            self.index = SyntaxIndex(self.interp.tree, self.source)
        return self.index

    def hook(self, method: Hook) -> bool:
        known = self.is_hook.get(id(method))
        if known is None:
            known = self.is_hook[id(method)] = not self._cannot_dispatch(method) and _is_hook(method)
        return known

    def _cannot_dispatch(self, method: Hook) -> bool:
        """A method of the linted file whose text never spells ``isinstance`` is no hook: its body
        need not be walked (most methods of a model class are not; transformers' classes have many)."""
        if self.source is None or method.lineno >= FOREIGN_LINE_BASE or method.end_lineno is None:
            return False
        if self.lines is None:
            self.lines = self.source.splitlines()
        first = min([method.lineno, *(d.lineno for d in method.decorator_list)])  # the walk reads decorators too
        return not any("isinstance" in line for line in self.lines[first - 1:method.end_lineno])

    def of_class(self, info: ClassInfo, run_counts: bool) -> Found | None:
        """The hook of ``info``'s hierarchy that may re-initialise its modules: one the interpreter
        did not run while the hierarchy has a base it cannot read; with ``run_counts``, also one
        it ran."""
        called = self.interp.called_functions
        unread = not reads_every_base(self.interp, info)
        for cls in info.mro():
            for method in cls.methods.values():
                ran = id(method) in called
                if ((ran and run_counts) or (unread and not ran)) and self.hook(method):
                    return cls, method
        return None

    def governing(self, name: str) -> Governing | None:
        """The hook of a class of this file that (transitively) names the definition ``name`` --
        in the real program the definition lives inside that class's modules -- with that class.
        A search from the hooked classes through the definitions they name, taken only as far as
        the question needs."""
        if self.frontier is None:
            self.definitions = {node.name: node for node in self.interp.tree.body
                                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
            self.frontier = []
            for info in self.interp.classes:
                hooked = self.of_class(info, run_counts=True)
                if hooked is not None:
                    self.frontier.append((info.name, (info, *hooked)))
            self.expanded = {name for name, _ in self.frontier}
        while name not in self.governed and self.frontier:
            current, governing = self.frontier.pop()
            node = self.definitions.get(current)
            for used in _names_read(node) if node is not None else ():
                self.governed.setdefault(used, governing)
                if used not in self.expanded:
                    self.expanded.add(used)
                    self.frontier.append((used, governing))
        return self.governed.get(name)


    def orphan_governor(self, name: str) -> Governing | None:
        """For a helper no statement of the file names (a modular file's replacement for a class its
        unread parent builds: transformers' ``PeAudioEncoderEmbedder``): the hierarchy of the file
        with an unread base and a hook, in which it lives in the real program. None when the file
        has no such hierarchy, or something in the file names the helper (``governing`` decides)."""
        if self.unread_hooked is None:
            self.definitions = self.definitions or {
                node.name: node for node in self.interp.tree.body
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
            self.unread_hooked = False
            for info in self.interp.classes:
                hooked = self.of_class(info, run_counts=False)  # only a hierarchy with an unread base
                if hooked is not None:
                    self.unread_hooked = (info, *hooked)
                    break
        found = self.unread_hooked
        if not isinstance(found, tuple) or not isinstance(self.definitions.get(name), ast.ClassDef) \
                or self._index().is_read_outside_its_definition(name):
            return None  # named in the file, or a factory function (an entry point): built from scratch
        return found


def _names_read(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> set[str]:
    """Names a definition reads, but in the methods a model is run through: what a forward names
    it calls, not a module it holds."""
    roots: list[ast.AST] = [node] if not isinstance(node, ast.ClassDef) else \
        [item for item in node.body if not (isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                                            and item.name in _NOT_HOOKS - {"__init__", "build"})]
    return {inner.id for root in roots for inner in iter_nodes(root)
            if type(inner) is ast.Name and type(inner.ctx) is ast.Load and inner.id != node.name}


def mark_reinitialised(interp: Interpreter, roots: list[Value], fallback: dict[int, str], index: SyntaxIndex,
                       source: str | None = None) -> None:
    """Make the inits of the roots' weights unknown where a hook gradlint cannot follow may
    rewrite them (see the module docstring). ``fallback`` maps a value built on its own as a
    fallback helper (by id) to the name of the definition that built it; ``source``, the linted
    file's text, spares reading the bodies of its methods that cannot be hooks."""
    hooks = _Hooks(interp, source, index)
    for value in roots:
        found = hooks.of_class(value.info, run_counts=False) if isinstance(value, InstanceV) else None
        external = found is not None  # of_class without run_counts: only a hierarchy with an unread base
        name = fallback.get(id(value))
        if found is None and name is not None:
            governing = hooks.governing(name)
            if governing is None and hooks.orphan_governor(name) is not None:
                # Where it lives is inferred, not read: its weights count as the unread base's
                # (cuts.py), the inits written in it stay as they are for the other rules.
                _mark_external(interp, value)
                continue
            if governing is not None:
                user, cls, hook = governing
                found = (cls, hook)
                if _replay(interp, user, found, value):
                    continue
                external = not reads_every_base(interp, user)
        if found is not None:
            _forget_inits(interp, value, found, external)


def _replay(interp: Interpreter, user: ClassInfo, via: Found, root: Value) -> bool:
    """Apply the hook that ``user`` ran on its own modules (``self.apply(self._init_weights)``) to
    a helper built on its own, as it reaches the helper in the real program: its isinstance
    dispatch and what it writes are then read as for the user's other modules. Only when the
    user's hierarchy is read in full (an unread base may do more) and an instance of it was built
    (the hook's ``self``); False when it cannot be done within REPLAY_BUDGET steps."""
    cls, hook = via
    if id(hook) not in interp.called_functions or not reads_every_base(interp, user):
        return False
    owner = next((v for v in interp.built if isinstance(v, InstanceV) and v.info is user), None)
    if owner is None:
        return False
    bound = BoundV(owner, interp.make_function(hook, cls.scope, cls))
    interp.budget = REPLAY_BUDGET
    try:
        for module in interp.walk_modules(root):
            interp.call(bound, [module], {}, hook)
    except (BudgetExceeded, RecursionError):
        return False
    return True


def _mark_external(interp: Interpreter, root: Value) -> None:
    for module in interp.walk_modules(root):
        if isinstance(module, LayerObj):
            module.layer.external_weights = True


def _forget_inits(interp: Interpreter, root: Value, via: Found, external: bool) -> None:
    """Make the inits of ``root``'s weights unknown; ``external``: the hook's hierarchy has a base
    gradlint cannot read, which may also load them (``Layer.external_weights``)."""
    cls, hook = via
    span = span_of(hook) if hook.lineno < FOREIGN_LINE_BASE else None
    reason = f"unknown ({cls.name}.{hook.name} may re-initialise it)"

    def unknown() -> Init:
        return Init("unknown", {}, span, reason)

    for module in interp.walk_modules(root):
        if isinstance(module, LayerObj):
            layer = module.layer
            layer.external_weights = layer.external_weights or external
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
