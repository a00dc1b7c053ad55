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
import gc
import hashlib
import io
import os
import re
import sys
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass, field

from gradlint.extract import common
from gradlint.extract.api import AttributedV, Core, Interp
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

_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
# The engine's default read limit: a module larger than this is not read (its names are UNKNOWN).
_MAX_MODULE_BYTES = 2 * 1024 * 1024
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ()))
_REACH_LIMIT = 2_000  # definitions followed for one question before answering "may reach a framework"


@dataclass
class ParsedModule:
    """A project module as read once per process: which top-level statements bind which names,
    their source lines, and the digest of the bytes read (for the result cache).

    Only the statements a linted file asks for are kept as syntax (parsed again from their own
    lines, shifted into this module's line range): a whole module's tree kept for the process would
    be tens of thousands of objects for the garbage collector to walk on every full collection
    (measured on timm/models: 226k tracked objects, gen-2 collections 1.9 s instead of 0.4 s)."""

    path: str
    readable: bool  # False: unreadable, too large or not valid Python (every name is UNKNOWN)
    digest: str
    index: dict[str, list[int]] = field(default_factory=dict)  # name -> top-level statement indices
    star_imports: list[int] = field(default_factory=list)
    public: list[str] = field(default_factory=list)  # what ``from m import *`` binds
    offset: int = 0  # added to the line numbers of a statement's syntax
    # the source, newline-normalized, by line (see ``source_lines``); empty for a module seeded
    # from a linted file's parse until one of its statements is asked for
    lines: list[str] = field(default_factory=list)
    # per top-level statement: (first line including decorators, last line, its line, its column)
    ranges: list[tuple[int, int, int, int]] = field(default_factory=list)
    statements: dict[int, ast.stmt] = field(default_factory=dict)

    def statement(self, index: int) -> ast.stmt:
        """A top-level statement, parsed from its own lines on first use (most of a module's
        definitions are never asked for)."""
        found = self.statements.get(index)
        if found is not None:
            return found
        first, last, line, col = self.ranges[index]
        lines = self.source_lines()
        if len(lines) < last:  # edited on disk since it was linted: nothing is bound here
            return ast.Pass(lineno=line + self.offset, col_offset=col, end_lineno=line + self.offset,
                            end_col_offset=col)
        try:
            body = _parse("".join(lines[first - 1:last]), self.path).body
            # statements sharing a line (``a = 1; b = 2``) come out together: pick ours by position
            stmt = next(s for s in body if (s.lineno + first - 1, s.col_offset) == (line, col))
            shift = first - 1
        except (SyntaxError, StopIteration):  # its first line ends another statement (``f(1,\n 2); g()``)
            stmt, shift = _parse("".join(lines), self.path).body[index], 0
        _shift_lines(stmt, self.offset + shift)
        self.statements[index] = stmt
        return stmt

    def source_lines(self) -> list[str]:
        """The module's lines. A module seeded from a linted file's own parse (``ProjectFiles.seed``)
        reads them from disk on first use: most linted files are never imported, and keeping every
        linted file's text would hold the whole corpus in memory (45 MB for transformers/models).
        Bytes that no longer match the digest (edited in between) read as no lines."""
        if not self.lines and self.readable:
            text = _read_text(self.path, self.digest)
            self.lines = _split_lines(text) if text is not None else []
        return self.lines

    @property
    def is_package(self) -> bool:
        return os.path.basename(self.path) == "__init__.py"


class ProjectFiles:
    """Process-wide memo of parsed project modules (``--jobs`` workers each keep their own; a
    module whose size or mtime changed is parsed again) and, for one linted file, of lookups."""

    def __init__(self) -> None:
        self._parsed: dict[str, tuple[tuple[int, int], ParsedModule]] = {}
        self._found: dict[tuple[str, str], str | None] = {}
        self._roots: dict[str, str | None] = {}
        self._isdir: dict[str, bool] = {}
        self._import_roots: dict[tuple[str, tuple[str, ...]], str] = {}

    def forget_lookups(self) -> None:
        """Drop what was found (or not) on disk; parsed modules stay, re-read when their size or
        mtime changes. The engine calls this per linted file, so a long-lived process (the language
        server, a watch loop) sees a module created or deleted since the last lint."""
        self._found.clear()
        self._roots.clear()
        self._isdir.clear()
        self._import_roots.clear()

    def isdir(self, path: str) -> bool:
        found = self._isdir.get(path)
        if found is None:
            found = self._isdir[path] = os.path.isdir(path)
        return found

    def project_root(self, directory: str) -> str | None:
        """The nearest directory at or above ``directory`` holding a project marker; None when a
        virtualenv (``pyvenv.cfg``) or the filesystem root comes first."""
        if directory in self._roots:
            return self._roots[directory]
        found: str | None = None
        if not os.path.exists(os.path.join(directory, "pyvenv.cfg")):
            if any(os.path.exists(os.path.join(directory, m)) for m in _MARKERS):
                found = directory
            else:
                parent = os.path.dirname(directory)
                found = self.project_root(parent) if parent != directory else None
        self._roots[directory] = found
        return found

    def import_root(self, directory: str, roots: tuple[str, ...]) -> str:
        """See the module function ``import_root``; memoized, as every import of a file asks (and
        pre-commit passes hundreds of ``roots``)."""
        key = (directory, roots)
        found = self._import_roots.get(key)
        if found is None:
            found = self.project_root(directory)
            if found is None:
                given = [os.path.abspath(r) for r in roots]
                inside = [r for r in given if directory == r or directory.startswith(r.rstrip(os.sep) + os.sep)]
                found = max(inside, key=len) if inside else directory
            self._import_roots[key] = found
        return found

    def module_file(self, base: str, dotted: str) -> str | None:
        """``base/a/b.py`` or ``base/a/b/__init__.py`` for ``a.b``; a directory (namespace package)
        path when only that exists; None when neither does."""
        key = (base, dotted)
        if key in self._found:
            return self._found[key]
        stem = os.path.join(base, *dotted.split("."))
        found: str | None = None
        if os.path.isfile(stem + ".py"):
            found = stem + ".py"
        elif self.isdir(stem):
            init = os.path.join(stem, "__init__.py")
            found = init if os.path.isfile(init) else stem
        self._found[key] = found
        return found

    def parse(self, path: str) -> ParsedModule:
        stamp = file_stamp(path)
        cached = self._parsed.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        parsed = _parse_module(path)
        self._parsed[path] = (stamp, parsed)
        return parsed

    def seed(self, path: str, stamp: tuple[int, int], digest: str, text: str, tree: ast.Module) -> None:
        """Remember a linted file's own parse, so that a later file importing it does not parse it
        again (transformers' configuration modules are linted, then imported by their modeling
        modules: 440 parses of 787 on transformers/models). ``stamp`` is the file's (size, mtime)
        taken *before* its bytes were read: if it changed since, ``parse`` reads it again. Call
        before the tree is interpreted (interpretation annotates nodes)."""
        path = os.path.abspath(path)
        cached = self._parsed.get(path)
        if cached is not None and cached[0] == stamp:
            return
        if not 0 <= stamp[0] <= _MAX_MODULE_BYTES or text.startswith("\ufeff"):  # read as _parse_module would
            return
        self._parsed[path] = (stamp, _module_from_tree(path, digest, tree, lines=[]))


FILES = ProjectFiles()


def file_stamp(path: str) -> tuple[int, int]:
    """(size, mtime) of a file, the memo's test that it is unchanged; (-1, -1) when unreadable."""
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)
    return (st.st_size, st.st_mtime_ns)


def import_root(path: str, roots: tuple[str, ...] = ()) -> str:
    """The directory imports of ``path`` resolve within: its project root, else the longest of
    ``roots`` holding it, else its own directory."""
    return FILES.import_root(os.path.dirname(os.path.abspath(path)), roots)


def _parse(text: str, path: str) -> ast.Module:
    """``ast.parse`` with the cyclic garbage collector paused: a syntax tree holds no reference
    cycles (it is freed by reference counting), yet allocating one triggers collections that walk
    everything the linted file's interpretation holds (on timm/models the collector's time was
    2.5 × main's with the collector running during these parses)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(text, filename=path)
    finally:
        if enabled:
            gc.enable()


def _read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(_MAX_MODULE_BYTES + 1)
    except OSError:
        return None


def _decode(data: bytes) -> str:
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding).lstrip("\ufeff")


def _read_text(path: str, digest: str) -> str | None:
    """The module's text, None when its bytes no longer have ``digest``."""
    data = _read_bytes(path)
    if data is None or hashlib.sha256(data).hexdigest() != digest:
        return None
    try:
        return _decode(data)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return None


def _split_lines(text: str) -> list[str]:
    # Line numbers as the tokenizer counts them: \r\n, \r and \n end a line (not \f or \x1c).
    return [line + "\n" for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]


def _parse_module(path: str) -> ParsedModule:
    data = _read_bytes(path)
    if data is None:
        return ParsedModule(path, False, "")
    digest = hashlib.sha256(data).hexdigest()
    if len(data) > _MAX_MODULE_BYTES:
        return ParsedModule(path, False, digest)
    try:
        text = _decode(data)
        tree = _parse(text, path)
    except (SyntaxError, ValueError, UnicodeDecodeError, LookupError, RecursionError, MemoryError):
        return ParsedModule(path, False, digest)
    return _module_from_tree(path, digest, tree, _split_lines(text))


def _module_from_tree(path: str, digest: str, tree: ast.Module, lines: list[str]) -> ParsedModule:
    module = ParsedModule(path, True, digest, offset=common.register_foreign_file(path) * common.FOREIGN_LINE_BASE,
                          lines=lines)
    for i, stmt in enumerate(tree.body):
        decorators = getattr(stmt, "decorator_list", None)
        first = min([stmt.lineno] + [d.lineno for d in decorators or ()])
        module.ranges.append((first, stmt.end_lineno or stmt.lineno, stmt.lineno, stmt.col_offset))
        if isinstance(stmt, ast.ImportFrom) and any(a.name == "*" for a in stmt.names):
            module.star_imports.append(i)
        for name in _bound_names(stmt):
            module.index.setdefault(name, []).append(i)
    module.public = _public_names(tree, module.index)
    return module


def _shift_lines(root: ast.AST, offset: int) -> None:
    """``ast.increment_lineno`` for one subtree (a plain stack walk: this runs on every definition
    of a project module that gets used)."""
    stack = [root]
    while stack:
        node = stack.pop()
        if "lineno" in node._attributes:
            node.lineno += offset  # type: ignore[attr-defined]
            end = getattr(node, "end_lineno", None)
            if end is not None:
                node.end_lineno = end + offset  # type: ignore[attr-defined]
        for name in node._fields:
            child = getattr(node, name, None)
            if isinstance(child, list):
                stack.extend(c for c in child if isinstance(c, ast.AST))
            elif isinstance(child, ast.AST):
                stack.append(child)


def _bound_names(stmt: ast.stmt) -> Iterable[str]:
    """Names a top-level statement binds (in its nested blocks too: ``try: import x``)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield stmt.name
    elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
        for alias in stmt.names:
            if alias.name != "*":
                yield alias.asname or alias.name.split(".")[0]
    elif isinstance(stmt, ast.Assign):
        for target in stmt.targets:
            yield from _target_names(target)
    elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        yield from _target_names(stmt.target)
    elif isinstance(stmt, (ast.For, ast.AsyncFor)):
        yield from _target_names(stmt.target)
    if isinstance(stmt, (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try)):
        blocks = [stmt.body, getattr(stmt, "orelse", [])]
        if isinstance(stmt, ast.Try):
            blocks += [h.body for h in stmt.handlers] + [stmt.finalbody]
        for block in blocks:
            for inner in block:
                yield from _bound_names(inner)


def _target_names(target: ast.expr) -> Iterable[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for elt in target.elts:
            yield from _target_names(elt)
    elif isinstance(target, ast.Starred):
        yield from _target_names(target.value)


def _public_names(tree: ast.Module, index: dict[str, list[int]]) -> list[str]:
    for stmt in tree.body:  # a literal __all__ decides, as for Python
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets) \
                and isinstance(stmt.value, (ast.List, ast.Tuple)):
            names = [e.value for e in stmt.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if len(names) == len(stmt.value.elts):
                return names
    return [name for name in index if not name.startswith("_")]


_IMPORT_LINE = re.compile(rb"^[ \t]*(?:from[ \t]+(\.*)([\w.]*)[ \t]+import|import[ \t]+([\w.]+))", re.MULTILINE)


def imports_project_module(path: str, data: bytes, roots: tuple[str, ...] = ()) -> bool:
    """Whether a file that mentions no framework may still build a model from its own project
    (``from models import Net; net = Net()``): one of its imports names a project module."""
    if not os.path.isfile(path):
        return False
    directory = os.path.dirname(os.path.abspath(path))
    root = import_root(path, roots)
    for match in _IMPORT_LINE.finditer(data):
        dots, module, plain = match.group(1), match.group(2), match.group(3)
        if dots:
            return True  # relative: always the project's
        name = (module or plain or b"").decode("ascii", "replace").split(".")[0]
        if not name or name in _STDLIB:
            continue
        base = directory
        while True:
            if FILES.module_file(base, name) is not None:
                return True
            if base == root or not base.startswith(root):
                break
            parent = os.path.dirname(base)
            if parent == base:
                break
            base = parent
    return False


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

    # ---- resolution

    def _root_of(self, directory: str) -> str:
        return import_root(os.path.join(directory, "_"), self.roots)

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
        if top in self.external or top in _STDLIB:
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
        if not level and top in _STDLIB:
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
