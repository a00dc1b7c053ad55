"""Project-wide resolution: imports of the linted file's own project, read and interpreted like
same-file definitions — never imported, never run.

``from .blocks import TanhBlock``, ``from models.layers import ConvBlock`` and
``import models.layers as L`` resolve to files under the project root (the nearest directory
holding ``pyproject.toml``, ``setup.py``, ``setup.cfg`` or ``.git``, not crossing into a
virtualenv; else the path given on the command line). Such a module is parsed once per process
(``ProjectFiles``) and its names are *demand-driven*: asking for ``TanhBlock`` runs only the
top-level statements that bind that name (its ``class`` statement, an import re-exporting it),
whose own free names are resolved the same way. Import cycles end in UNKNOWN (a name asked for
while it is being defined), a missing module or name is UNKNOWN, never a guess.

Where things are reported: a foreign module's lines are shifted by a per-file offset
(``common.FOREIGN_LINE_BASE``), so every span made from its syntax is recognised and placed at
the innermost call of the *linted* file that reached it (the line that builds the model or
block), with the definition's own file and line kept in ``Span.origin``. A user sees findings in
the file being linted, at the line where the imported definition is used (as ruff reports in
the file it checks); the definition file reports its own definitions when it is linted.
"""

from __future__ import annotations

import ast
import builtins
import os
from collections.abc import Iterable

from gradlint.extract import common
from gradlint.extract.api import AttributedV, Core, Interp
from gradlint.extract.project_files import FILES, STDLIB_MODULES, ParsedModule, import_root
from gradlint.extract.state import BreakSignal, ContinueSignal, ReturnSignal, Scope
from gradlint.extract.syntax_index import child_fields
from gradlint.extract.values import (
    UNKNOWN,
    Const,
    ContainerV,
    DictV,
    Frame,
    FunctionalModelV,
    FunctionV,
    InstanceV,
    LazyV,
    ListV,
    Ref,
    Value,
)

_REACH_LIMIT = 2_000  # definitions followed for one question before answering "may reach a framework"


# ---------------------------------------------------------------- what a definition can reach

# Builtins through which a function could reach code gradlint does not see by name.
_OPAQUE_BUILTINS = frozenset({"__import__", "eval", "exec", "compile", "globals", "locals", "vars", "open",
                              "input", "breakpoint", "memoryview"})
_SAFE_BUILTINS = frozenset(n for n in dir(builtins) if not n.startswith("_")) - _OPAQUE_BUILTINS
_PYTHON_BUILTINS = frozenset(dir(builtins))
# Standard-library modules through which a function could import or run anything.
_OPAQUE_STDLIB = frozenset({"importlib", "builtins", "runpy", "pickle", "copyreg", "ctypes", "types", "pkgutil",
                            "code", "codeop", "multiprocessing", "subprocess", "marshal", "sys", "inspect"})
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp,
           ast.DictComp, ast.GeneratorExp)
_SCOPE_KINDS = frozenset(_SCOPES)
_NAMED_DEFINITIONS = frozenset({ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef})


class _Uses:
    """What a top-level statement reads from its module: free names and the import statements
    (at any depth) it executes."""

    def __init__(self) -> None:
        self.free: set[str] = set()
        self.imports: list[ast.Import | ast.ImportFrom] = []

    def statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, _SCOPES):
            self.free |= self._scope(stmt)
        else:  # module level: its stores are module names, its loads are looked up there
            self.free |= self._loads(stmt)[0]

    def _loads(self, root: ast.AST) -> tuple[set[str], set[str]]:
        """(loads, stores) of ``root``'s own scope; nested scopes add their free names to the loads."""
        loads: set[str] = set()
        stores: set[str] = set()
        stack: list[object] = [root]
        pop, push, extend = stack.pop, stack.append, stack.extend
        while stack:
            node = pop()
            kind = type(node)
            if kind is ast.Name:  # the commonest node, and it holds no other
                (loads if type(node.ctx) is ast.Load else stores).add(node.id)  # type: ignore[attr-defined]
                continue
            if not isinstance(node, ast.AST):
                continue  # None in Dict.keys
            if node is not root and kind in _SCOPE_KINDS:
                loads |= self._outer_parts(node)
                loads |= self._scope(node)
                if kind in _NAMED_DEFINITIONS:
                    stores.add(node.name)  # type: ignore[attr-defined]
                continue
            if kind is ast.Import or kind is ast.ImportFrom:
                self.imports.append(node)  # type: ignore[arg-type]
                stores.update((a.asname or a.name.split(".")[0]) for a in node.names if a.name != "*")  # type: ignore[attr-defined]
            elif kind is ast.ExceptHandler and node.name:  # type: ignore[attr-defined]
                stores.add(node.name)  # type: ignore[attr-defined]
            elif kind is ast.arg:
                stores.add(node.arg)  # type: ignore[attr-defined]
            elif kind is ast.Global or kind is ast.Nonlocal:
                loads.update(node.names)  # type: ignore[attr-defined]
            elif (kind is ast.MatchAs or kind is ast.MatchStar) and node.name:  # type: ignore[attr-defined]
                stores.add(node.name)  # type: ignore[attr-defined]
            for name in child_fields(kind):  # what can hold a name (not an alias, a context, a constant)
                value = getattr(node, name, None)
                if type(value) is list:
                    extend(value)
                elif value is not None:
                    push(value)
        return loads, stores

    def _outer_parts(self, node: ast.AST) -> set[str]:
        """Names a nested definition evaluates in the enclosing scope (decorators, defaults,
        bases, the first iterable of a comprehension)."""
        parts: list[ast.AST] = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            parts = [*node.decorator_list, *node.args.defaults, *(d for d in node.args.kw_defaults if d)]
        elif isinstance(node, ast.Lambda):
            parts = [*node.args.defaults, *(d for d in node.args.kw_defaults if d)]
        elif isinstance(node, ast.ClassDef):
            parts = [*node.decorator_list, *node.bases, *node.keywords]
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            parts = [node.generators[0].iter]
        out: set[str] = set()
        for part in parts:
            out |= self._loads(part)[0]
        return out

    def _scope(self, node: ast.AST) -> set[str]:
        """Free names of a function, lambda, class or comprehension body."""
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inner: list[ast.AST] = [node.args, *(node.body if isinstance(node.body, list) else [node.body])]
            if not isinstance(node, ast.Lambda) and node.returns is not None:
                inner.append(node.returns)
        elif isinstance(node, ast.ClassDef):
            # its body's own names are local to it; its methods' free names skip it (Python's rule)
            direct: set[str] = set()
            local: set[str] = set()
            methods: set[str] = set()
            for part in node.body:
                if isinstance(part, _SCOPES):
                    direct |= self._outer_parts(part)
                    methods |= self._scope(part)
                    if isinstance(part, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        local.add(part.name)
                else:
                    found_loads, found_stores = self._loads(part)
                    direct |= found_loads
                    local |= found_stores
            return (direct - local) | methods
        else:  # a comprehension: its targets are its own; the first iterable belongs outside
            assert isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp))
            first, *rest = node.generators
            inner = [first.target, *first.ifs, *rest]
            inner += [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        loads: set[str] = set()
        stores: set[str] = set()
        for part in inner:  # type: ignore[assignment]  # the function branch bound part to its statements
            if isinstance(part, ast.arguments):
                for arg in [*part.posonlyargs, *part.args, *part.kwonlyargs, part.vararg, part.kwarg]:
                    if arg is not None:
                        stores.add(arg.arg)
                        if arg.annotation is not None:
                            loads |= self._loads(arg.annotation)[0]
                continue
            found_loads, found_stores = self._loads(part)
            loads |= found_loads
            stores |= found_stores
        return loads - stores


class ModuleV(AttributedV):
    """A project module (or namespace package directory) bound by ``import``: attributes are its
    names, then its submodules."""

    def __init__(self, project: ProjectView, path: str, dotted: str) -> None:
        self.project = project
        self.path = path  # a .py file, or a namespace package's directory
        self.dotted = dotted

    def attribute(self, interp: Interp, name: str) -> Value:
        found = self.project.module_attribute(self, name)
        return found if found is not None else UNKNOWN


class ForeignModule:
    """A project module as seen by one linted file: its module scope, filled on demand."""

    def __init__(self, project: ProjectView, parsed: ParsedModule, dotted: str) -> None:
        self.project = project
        self.parsed = parsed
        self.scope = Scope()
        self.scope.vars["__name__"] = Const(dotted)  # never "__main__": its main block does not run
        self.scope.loader = self.load
        self.executed: set[int] = set()
        self.loading: set[str] = set()
        self.missing: set[str] = set()

    def load(self, name: str) -> Value | None:
        """The value of a top-level ``name`` (None: the module does not define it)."""
        if name in self.missing or name in self.loading or not self.parsed.readable:
            return None
        self.loading.add(name)
        try:
            self._run(self.parsed.index.get(name, ()))
            if name not in self.scope.vars and self.parsed.star_imports:
                self._run(self.parsed.star_imports)
                found = self.project.star_lookup(self.scope, name)
                if found is not None:
                    return found
        finally:
            self.loading.discard(name)
        if name in self.scope.vars:
            return self.scope.vars[name] if type(self.scope.vars[name]) is not LazyV else self.scope.lookup(name)
        self.missing.add(name)
        return None

    def _run(self, indices: Iterable[int]) -> None:
        interp = self.project.interp
        pending = [i for i in indices if i not in self.executed]
        if not pending:
            return
        self.executed.update(pending)
        saved_frame, built = interp.frame, len(interp.built)
        interp.frame = Frame()
        try:
            for i in pending:
                try:
                    interp.exec_stmt(self.parsed.statement(i), self.scope)
                except (ReturnSignal, BreakSignal, ContinueSignal):
                    pass
        finally:
            interp.frame = saved_frame
            # Models a foreign module builds at its top level are that module's roots, not ours.
            for value in interp.built[built:]:
                if isinstance(value, (InstanceV, ContainerV, FunctionalModelV)):
                    value.owned = True


class ProjectView:
    """Import resolution for one linted file: which project modules it reached (and their digests,
    for the result cache), and the module scopes it filled."""

    def __init__(self, interp: Core, path: str, roots: tuple[str, ...], external: tuple[str, ...]) -> None:
        self.interp = interp
        self.path = os.path.abspath(path)
        self.roots = tuple(os.path.abspath(r) for r in roots)
        self.external = external  # top-level names that are framework APIs, never project files
        self.modules: dict[str, ForeignModule] = {}
        self.dependencies: dict[str, str] = {}  # path -> sha-256 of the bytes read
        self.missing: set[str] = set()  # candidate files whose absence decided a resolution
        self._stars: dict[int, list[ModuleV]] = {}  # scope -> modules it star-imports, in order
        self._reach_memo: dict[tuple[str, str], bool] = {}  # (path, name) -> may reach a framework
        self._roots_memo: dict[str, str] = {}  # directory -> its import root (``_root_of``)

    # ---- resolution

    def _root_of(self, directory: str) -> str:
        found = self._roots_memo.get(directory)
        if found is None:  # asked per import: abspath's normalization was 2 % of a cold lint of transformers
            found = self._roots_memo[directory] = import_root(os.path.join(directory, "_"), self.roots)
        return found

    def importer(self, node: ast.AST) -> str:
        """The file a statement belongs to: the linted file, or a project module it reached."""
        found = common.foreign_file_of(node)
        return found if found is not None else self.path

    def _bases(self, importer: str) -> list[str]:
        """Where absolute imports are looked for: the importer's directory (a script's sys.path[0])
        and each directory above it up to its project root (and the root's src/)."""
        directory = os.path.dirname(importer)
        root = self._root_of(directory)
        bases = [directory]
        while directory != root and directory.startswith(root):
            parent = os.path.dirname(directory)
            if parent == directory:
                break
            directory = parent
            bases.append(directory)
        src = os.path.join(root, "src")
        if FILES.isdir(src):
            bases.append(src)
        return bases

    def _find(self, importer: str, dotted: str, level: int) -> tuple[str, str] | None:
        """(path, dotted name) of a module the importer's project defines; None: not ours."""
        if level:
            directory = os.path.dirname(importer)
            for _ in range(level - 1):
                directory = os.path.dirname(directory)
            root = self._root_of(os.path.dirname(importer))
            if not (directory == root or directory.startswith(root.rstrip(os.sep) + os.sep)):
                return None  # above the project root (or the given paths): not the project's code
            if not dotted:
                init = os.path.join(directory, "__init__.py")
                found = init if os.path.isfile(init) else directory
                return found, os.path.basename(directory)
            found_rel = FILES.module_file(directory, dotted)
            if found_rel is None:
                self.missing.add(os.path.join(directory, *dotted.split(".")) + ".py")
                return None
            return found_rel, dotted
        top = dotted.split(".")[0]
        if top in self.external or top in STDLIB_MODULES:
            return None
        for base in self._bases(importer):
            found_abs = FILES.module_file(base, top)
            if found_abs is None:
                continue
            if top == dotted:
                return found_abs, dotted
            inner = FILES.module_file(base, dotted)
            if inner is None:
                self.missing.add(os.path.join(base, *dotted.split(".")) + ".py")
                return None
            return inner, dotted
        return None

    def _module(self, path: str, dotted: str) -> ForeignModule | None:
        if not path.endswith(".py"):
            return None  # a namespace package directory has no names of its own
        module = self.modules.get(path)
        if module is None:
            parsed = FILES.parse(path)
            self.dependencies[path] = parsed.digest
            module = self.modules[path] = ForeignModule(self, parsed, dotted)
        return module

    # ---- project functions that cannot build a model

    def plain_data(self, values: Iterable[Value], depth: int = 0) -> bool:
        """Constants, literal containers of them, and names from outside the project that are no
        framework's (``timm.data.IMAGENET_DEFAULT_MEAN``): nothing a call could build a layer from
        or change a model through."""
        for value in values:
            if isinstance(value, Const):
                continue
            if isinstance(value, Ref) and value.qualname.split(".")[0] not in self.external:
                continue
            if depth < 8 and isinstance(value, ListV) and self.plain_data(value.items, depth + 1):
                continue
            if depth < 8 and isinstance(value, DictV) and self.plain_data(value.items.values(), depth + 1):
                continue
            return False
        return True

    def cannot_build(self, func: FunctionV) -> bool:
        """Whether a top-level function of a project module provably reaches no framework: every
        name it reads is a builtin, a standard-library import, or a definition of the project
        that is itself such (followed through its module and the project modules it imports).
        Called with plain data only, it can return no layer, model or initializer: its value
        matters only if read (timm's ``default_cfgs = generate_default_cfgs({...})`` is not)."""
        path = common.foreign_file_of(func.node)
        if path is None or func.owner is not None or func.name == "<lambda>":
            return False
        seen: set[tuple[str, str]] = set()
        if self._reaches(path, func.name, seen):
            return False
        self._reach_memo.update(dict.fromkeys(seen, False))  # nothing in a clean closure reaches out
        return True

    def _reaches(self, path: str, name: str, seen: set[tuple[str, str]]) -> bool:
        key = (path, name)
        found = self._reach_memo.get(key)
        if found is not None:
            return found
        if key in seen:
            return False  # already being followed: a cycle adds no name of its own
        seen.add(key)
        if len(seen) > _REACH_LIMIT or self._reaches_uncached(path, name, seen):
            self._reach_memo[key] = True
            return True
        return False

    def _reaches_uncached(self, path: str, name: str, seen: set[tuple[str, str]]) -> bool:
        parsed = FILES.parse(path)
        if not parsed.readable:
            return True
        indices = parsed.index.get(name)
        if not indices:
            if parsed.star_imports:
                return True
            return not (name in _SAFE_BUILTINS or (name.startswith("__") and name.endswith("__")))
        for i in indices:
            stmt = parsed.statement(i)
            uses = _Uses()
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                uses.imports.append(stmt)
            else:
                uses.statement(stmt)
            for imp in uses.imports:
                for alias in imp.names:
                    if imp is stmt and (alias.asname or alias.name.split(".")[0]) != name:
                        continue  # a top-level import of other names
                    if self._import_reaches(path, imp, alias.name, seen):
                        return True
            for used in uses.free:
                if self._reaches(path, used, seen):
                    return True
        return False

    def _import_reaches(self, path: str, imp: ast.Import | ast.ImportFrom, alias: str,
                        seen: set[tuple[str, str]]) -> bool:
        module = imp.module or "" if isinstance(imp, ast.ImportFrom) else alias
        level = imp.level if isinstance(imp, ast.ImportFrom) else 0
        top = module.split(".")[0]
        if not level and top in STDLIB_MODULES:
            return top in _OPAQUE_STDLIB
        if not isinstance(imp, ast.ImportFrom) or alias == "*":
            return True  # a project or third-party module object: not followed
        found = self._find(path, module, level)
        if found is None or not found[0].endswith(".py"):
            return True  # third party, a framework, or missing
        return self._reaches(found[0], alias, seen)

    # ---- what import statements bind

    def import_module(self, node: ast.AST, dotted: str) -> Value | None:
        """``import a.b.c`` / ``import a.b as x``: the module value, or None when not a project module."""
        found = self._find(self.importer(node), dotted, 0)
        if found is None:
            return None
        return ModuleV(self, *found)

    def import_name(self, node: ast.AST, module: str, level: int, name: str) -> Value | None:
        """``from module import name``: a lazy value, or None when ``module`` is not a project module."""
        importer = self.importer(node)
        found = self._find(importer, module, level)
        if found is None:
            return None
        target = ModuleV(self, *found)
        return LazyV(lambda: self.module_attribute(target, name) or UNKNOWN)

    def star_import(self, node: ast.AST, module: str, level: int, scope: Scope) -> bool:
        """``from module import *`` into ``scope``: the module is read only when a name the scope
        does not define is asked for (a package ``__init__`` star-importing fifty modules costs
        nothing until then). False when ``module`` is not a project module."""
        found = self._find(self.importer(node), module, level)
        if found is None:
            return False
        sources = self._stars.setdefault(id(scope), [])
        sources.append(ModuleV(self, *found))
        if scope.loader is None:
            scope.loader = lambda name: self.star_lookup(scope, name)
        return True

    def star_lookup(self, scope: Scope, name: str) -> Value | None:
        # A star import is not read for a builtin's name (``globals()["__file__"]`` in a package
        # __init__ star-importing its modules would parse every one of them): no module exports one.
        if name in _PYTHON_BUILTINS or name.startswith("__"):
            return None
        for target in reversed(self._stars.get(id(scope), ())):  # the last star import wins
            foreign = self._module(target.path, target.dotted)
            if foreign is None:
                continue
            parsed = foreign.parsed
            if name not in parsed.public and not parsed.star_imports:
                continue
            value = foreign.load(name)
            if value is not None:
                scope.vars[name] = value
                return value
        return None

    def module_attribute(self, module: ModuleV, name: str) -> Value | None:
        foreign = self._module(module.path, module.dotted)
        if foreign is not None:
            value = foreign.load(name)
            if value is not None:
                return value
            if not foreign.parsed.is_package:
                return None
        directory = module.path if not module.path.endswith(".py") else os.path.dirname(module.path)
        sub = FILES.module_file(directory, name)
        if sub is None:
            self.missing.add(os.path.join(directory, name + ".py"))
            return None
        return ModuleV(self, sub, f"{module.dotted}.{name}")


__all__ = ["FILES", "ModuleV", "ProjectView"]
