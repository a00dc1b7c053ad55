"""The project's modules as read from disk, once per process: which top-level statements bind
which names, their lines, and the digest of the bytes read (``ProjectFiles``, ``FILES``); where
imports resolve (the project root); and whether a file without framework markers imports one of
its project's modules. Reading only: interpreting what is read is ``project``'s."""

from __future__ import annotations

import ast
import gc
import hashlib
import io
import os
import sys
import tokenize
from collections.abc import Iterable
from dataclasses import field

from gradlint.extract import common
from gradlint.records import dataclass

_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
# The engine's default read limit: a module larger than this is not read (its names are UNKNOWN).
MAX_MODULE_BYTES = 2 * 1024 * 1024
# Lines of whole-module parses kept at hand for the statements importers ask for next (``held``).
HELD_LINES = 20_000
STDLIB_MODULES = frozenset(getattr(sys, "stdlib_module_names", ()))


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
    # The top-level statements of a whole parse of this module that is still at hand (``ProjectFiles``
    # holds a few recent ones): the parse that read it for an importer, or a linted file's own parse
    # once its lint is done. Its statements are taken from there instead of being parsed again
    # from their lines (timm/layers: 280 parses -> 131; transformers' configuration modules are
    # linted just before the modeling modules that import them).
    held: list[ast.stmt] | None = None

    def statement(self, index: int) -> ast.stmt:
        """A top-level statement, parsed from its own lines on first use (most of a module's
        definitions are never asked for)."""
        found = self.statements.get(index)
        if found is not None:
            return found
        if self.held is not None:
            stmt = self.held[index]
            _shift_lines(stmt, self.offset)
            self.statements[index] = stmt
            return stmt
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
        # modules whose whole parse is ``held``, oldest first, with their line counts (bounded by
        # HELD_LINES: syntax trees are ~1 KB a line, and most of a module is never asked for)
        self._holding: dict[str, tuple[ParsedModule, int]] = {}
        self._held_lines = 0
        # True while the engine lints a batch of files (one command line): what was found on disk
        # holds for the whole run, as the files were listed once (per file, re-checking each
        # directory's project markers and candidate modules was ~40 stat calls a file).
        self.keep_lookups = False

    def forget_lookups(self) -> None:
        """Drop what was found (or not) on disk; parsed modules stay, re-read when their size or
        mtime changes. The engine calls this per linted file, so a long-lived process (the language
        server, a watch loop) sees a module created or deleted since the last lint; not within
        one batch (``keep_lookups``)."""
        if self.keep_lookups:
            return
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
        parsed, body = _parse_module(path)
        self._parsed[path] = (stamp, parsed)
        if body is not None:
            self._hold(parsed, body)
        return parsed

    def donate(self, path: str, stamp: tuple[int, int], tree: ast.Module) -> None:
        """A linted file's own parse, once its lint is done (nothing reads it any more), for the
        files that import it next: only when it is the parse ``seed`` recorded (same size and
        mtime). The interpretation left only memos on it that depend on the syntax alone, and spans
        of foreign lines are never memoized (``common.span_of``), so the statements it hands out
        read exactly as parsed anew."""
        cached = self._parsed.get(os.path.abspath(path))
        if cached is None or cached[0] != stamp or not cached[1].readable or cached[1].held is not None \
                or len(cached[1].ranges) != len(tree.body):
            return
        self._hold(cached[1], tree.body)

    def take_tree(self, path: str, stamp: tuple[int, int], digest: str) -> ast.Module | None:
        """The whole parse of a file about to be linted, when one is held from reading it for an
        importer (a directory walk reaches a package's helpers after the modules importing them):
        the same bytes (``stamp`` and ``digest``), its statements back at their own lines. The lint
        then owns it; ``donate`` gives it back when done."""
        cached = self._parsed.get(os.path.abspath(path))
        if cached is None or cached[0] != stamp:
            return None
        module = cached[1]
        body = module.held
        if body is None or module.digest != digest:
            return None
        for index in [i for i, stmt in module.statements.items() if stmt is body[i]]:
            _shift_lines(module.statements.pop(index), -module.offset)
        self._release(module.path)
        return ast.Module(body=body, type_ignores=[])

    def _hold(self, module: ParsedModule, body: list[ast.stmt]) -> None:
        lines = module.ranges[-1][1] if module.ranges else 0
        if lines > HELD_LINES:
            return
        self._release(module.path)  # an earlier parse of the same path (edited since) is dropped
        module.held = body
        self._holding[module.path] = (module, lines)
        self._held_lines += lines
        while self._held_lines > HELD_LINES:
            self._release(next(iter(self._holding)))

    def _release(self, path: str) -> None:
        """Stop holding the whole parse of the module at ``path``, if one is held."""
        found = self._holding.pop(path, None)
        if found is not None:
            found[0].held = None
            self._held_lines -= found[1]

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
        if not 0 <= stamp[0] <= MAX_MODULE_BYTES or text.startswith("\ufeff"):  # read as _parse_module would
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
            return handle.read(MAX_MODULE_BYTES + 1)
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


def _parse_module(path: str) -> tuple[ParsedModule, list[ast.stmt] | None]:
    """The module and its top-level statements (None when it could not be parsed)."""
    data = _read_bytes(path)
    if data is None:
        return ParsedModule(path, False, ""), None
    digest = hashlib.sha256(data).hexdigest()
    if len(data) > MAX_MODULE_BYTES:
        return ParsedModule(path, False, digest), None
    try:
        text = _decode(data)
        tree = _parse(text, path)
    except (SyntaxError, ValueError, UnicodeDecodeError, LookupError, RecursionError, MemoryError):
        return ParsedModule(path, False, digest), None
    return _module_from_tree(path, digest, tree, _split_lines(text)), tree.body


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


# Fields that never hold a syntax node (names, flags, contexts and operators, which have no lines).
_SCALAR_FIELDS = frozenset({"ctx", "op", "id", "name", "attr", "arg", "asname", "module", "level", "kind",
                            "type_comment", "conversion", "is_async", "simple"})
_SHIFT_PLANS: dict[type, tuple[bool, bool, tuple[str, ...]]] = {}


def _shift_plan(kind: type) -> tuple[bool, bool, tuple[str, ...]]:
    attributes = kind._attributes  # type: ignore[attr-defined]
    plan = _SHIFT_PLANS[kind] = ("lineno" in attributes, "end_lineno" in attributes,
                                 tuple(f for f in kind._fields if f not in _SCALAR_FIELDS))  # type: ignore[attr-defined]
    return plan


def _shift_lines(root: ast.AST, offset: int) -> None:
    """``ast.increment_lineno`` for one subtree: a plain stack walk with each node kind's fields
    looked up once (this runs on every definition of a project module that gets used)."""
    stack = [root]
    pop, push, extend, plans, node_type = stack.pop, stack.append, stack.extend, _SHIFT_PLANS, ast.AST
    while stack:
        node = pop()
        kind = type(node)
        plan = plans.get(kind)
        if plan is None:
            plan = _shift_plan(kind)
        lines, ends, fields = plan
        if lines:
            node.lineno += offset  # type: ignore[attr-defined]
            if ends:
                end = node.end_lineno  # type: ignore[attr-defined]
                if end is not None:
                    node.end_lineno = end + offset  # type: ignore[attr-defined]
        for name in fields:
            child = getattr(node, name, None)
            if type(child) is list:
                extend([c for c in child if isinstance(c, node_type)])
            elif isinstance(child, node_type):
                push(child)


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
