"""Applying fixes without ever damaging a source tree.

Planning (``plan_fixes``) is pure: bytes in, bytes out. LibCST rewrites only the calls named
by the fixes; the result is kept only if the original bytes round-trip through LibCST exactly,
the result parses, and every comment of the original is still in it (a comment inside a
rewritten call's arguments is moved above the statement, never dropped). The engine runs the
same planning as a dry run, so a finding carries a ``fix`` exactly when ``--fix`` (with
``--unsafe-fixes`` for an unsafe one) applies it.

Writing (``write_fixed``) goes through symlinks to their target, keeps the file's inode when
it has hard links, another owner, a group we cannot keep, or sits in a directory we cannot
write (then it is rewritten in place, after the new bytes were written to a temporary file in
the same directory and read back), and otherwise swaps a verified temporary file in with an
atomic rename that keeps the mode. It refuses read-only files unless told, and refuses any
file whose bytes are no longer the ones that were linted (sha-256). Every refusal or failure
is a ``FixError`` with a message for the user; the caller reports it and goes on.

The engine and the CLI import this module lazily: static linting of files without fixable
findings never pays for importing libcst.
"""

from __future__ import annotations

import ast
import collections
import difflib
import hashlib
import io
import os
import stat
import tempfile
import tokenize
from collections.abc import Callable, Sequence
from dataclasses import field
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from gradlint.diagnostics import Diagnostic, character_columns
from gradlint.records import dataclass
from gradlint.rule import InitFix

_CONSTANT_INITS = {"zeros_", "ones_", "constant_", "zeros", "ones", "constant"}
_INPLACE_CONSTANT = {"fill_", "zero_"}  # w.data.fill_(c), w.data.zero_(), w.fill_(c) ...
_KERAS_CONSTANT = {"zeros", "ones", "constant", "Zeros", "Ones", "Constant"}
# A fixed file is read back at most this large (the engine never lints larger files).
_MAX_BYTES = 64 * 1024 * 1024


class FixError(Exception):
    """A file that was not fixed, and why (said to the user as is)."""


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fix_key(fix: InitFix) -> tuple[int, int]:
    return (fix.span.line, fix.span.col)


@dataclass
class FixPlan:
    original: bytes
    fixed: bytes
    encoding: str
    applied: list[InitFix] = field(default_factory=list)
    # Notebooks: (cell, old source, new source) of each changed cell; the diff is per cell.
    cells: list[tuple[int, str, str]] | None = None
    where: list[str] | None = None  # notebooks: "cell N line L" of each applied fix, for messages

    def diff(self, path: str) -> str:
        if self.cells is not None:
            from gradlint.notebook_fix import cell_diff

            return cell_diff(path, self.cells)

        def lines(data: bytes) -> list[str]:
            return data.decode(self.encoding, errors="replace").splitlines(keepends=True)

        return "".join(difflib.unified_diff(lines(self.original), lines(self.fixed),
                                            fromfile=f"a/{path}", tofile=f"b/{path}"))


# ---------------------------------------------------------------------------- planning


def selected_fixes(diagnostics: Sequence[Diagnostic], unsafe: bool) -> list[InitFix]:
    return [d.fix for d in diagnostics if isinstance(d.fix, InitFix) and (d.fix.safe or unsafe)]


def plan_fixes(data: bytes, fixes: Sequence[InitFix], notebook: bool = False,
               imports_from: bytes | None = None) -> FixPlan | None:
    """The file's bytes with ``fixes`` applied, or None when none of them applies safely.

    ``notebook``: ``data`` is an .ipynb file (gradlint.notebook_fix plans it cell by cell).
    ``imports_from``: the source whose top-level imports say how to name ``torch.nn.init``
    (default: ``data``; a notebook cell uses the whole notebook's)."""
    if not fixes:
        return None
    if notebook:
        from gradlint.notebook_fix import plan_notebook

        planned = plan_notebook(data, fixes, _plan_text)
        return None if planned is None else FixPlan(data, planned[0], "utf-8", planned[1], planned[2], planned[3])
    try:
        module = cst.parse_module(data)
        if module.bytes != data:  # LibCST would not write the untouched parts back byte for byte
            return None
        init_ref = _torch_init_reference(module if imports_from is None else cst.parse_module(imports_from))
        rewriter = _Rewriter(fixes, init_ref, character_columns(module.code))
        fixed_module = MetadataWrapper(module, unsafe_skip_copy=True).visit(rewriter)
        fixed = fixed_module.bytes
    except cst.ParserSyntaxError:
        # An exported notebook's `!pip install` lines: fix with them masked.
        from gradlint.notebook_fix import plan_masked

        masked = plan_masked(data, fixes, _plan_text, imports_from)
        return None if masked is None else FixPlan(data, masked[0], masked[1], masked[2])
    except (RecursionError, ValueError, UnicodeError, MemoryError):
        return None
    if not rewriter.applied or fixed == data:
        return None
    try:
        original_text = data.decode(module.encoding)
        fixed_text = fixed.decode(module.encoding)
        ast.parse(fixed_text)  # a fix never leaves code that does not parse
    except (SyntaxError, ValueError, UnicodeError, RecursionError, MemoryError):
        return None
    if _comments(original_text) != _comments(fixed_text):
        return None  # a comment would be lost: not this fix
    return FixPlan(data, fixed, module.encoding, rewriter.applied)


def _plan_text(data: bytes, fixes: Sequence[InitFix], imports_from: bytes | None) -> tuple[bytes, list[InitFix]] | None:
    """plan_fixes for gradlint.notebook_fix (which cannot import this module: no cycle)."""
    plan = plan_fixes(data, fixes, imports_from=imports_from)
    return None if plan is None else (plan.fixed, plan.applied)


def applicable(data: bytes, diagnostics: Sequence[Diagnostic], notebook: bool = False) -> set[tuple[int, int]]:
    """Keys of the fixes in ``diagnostics`` that ``--fix --unsafe-fixes`` would apply (dry run)."""
    fixes = [d.fix for d in diagnostics if isinstance(d.fix, InitFix)]
    plan = plan_fixes(data, fixes, notebook)
    if plan is None:
        return set()
    applied = {fix_key(f) for f in plan.applied}
    if len(applied) < len(fixes):
        # Fixes are independent edits of different calls; confirm that the ones that applied
        # still make a valid file on their own (what --fix without --unsafe-fixes may write).
        for fix in [f for f in fixes if fix_key(f) in applied]:
            if plan_fixes(data, [fix], notebook) is None:
                applied.discard(fix_key(fix))
    return applied


def _comments(text: str) -> collections.Counter[str]:
    out: collections.Counter[str] = collections.Counter()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                out[token.string.rstrip()] += 1
    except (tokenize.TokenError, SyntaxError):
        out["<untokenizable>"] += 1
    return out


def _torch_init_reference(module: cst.Module) -> str | None:
    """How this file can name ``torch.nn.init`` (from its top-level imports), or None."""
    found: dict[str, str] = {}
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    name = _dotted(alias.name)
                    asname = alias.asname
                    bound = asname.name.value if asname and isinstance(asname.name, cst.Name) else None
                    if name == "torch.nn.init" and bound:
                        found.setdefault("init", bound)
                    elif name == "torch.nn" and bound:
                        found.setdefault("nn", f"{bound}.init")
                    elif name.split(".")[0] == "torch" and not bound:
                        found.setdefault("torch", "torch.nn.init")
                    elif name == "torch" and bound:
                        found.setdefault("torch", f"{bound}.nn.init")
            elif isinstance(small, cst.ImportFrom) and small.module is not None and small.relative == () \
                    and not isinstance(small.names, cst.ImportStar):
                source = _dotted(small.module)
                for alias in small.names:
                    imported = _dotted(alias.name)
                    bound = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) \
                        else imported
                    if (source, imported) == ("torch.nn", "init"):
                        found.setdefault("init", bound)
                    elif (source, imported) == ("torch", "nn"):
                        found.setdefault("nn", f"{bound}.init")
    for kind in ("init", "nn", "torch"):
        if kind in found:
            return found[kind]
    return None


def _dotted(node: Any) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def _callee_name(func: Any) -> str | None:
    if isinstance(func, cst.Attribute):
        return func.attr.value
    if isinstance(func, cst.Name):
        return func.value
    return None


def _is_keras_constant(value: Any) -> bool:
    if isinstance(value, cst.SimpleString):
        try:
            return value.evaluated_value in _KERAS_CONSTANT
        except Exception:  # noqa: BLE001 -- an odd literal is simply not a constant init
            return False
    if isinstance(value, cst.Call):
        return _callee_name(value.func) in _KERAS_CONSTANT
    return False


class _Rewriter(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, fixes: Sequence[InitFix], init_ref: str | None,
                 to_characters: Callable[[int, int], int]) -> None:
        super().__init__()
        # Fix spans count UTF-8 bytes (ast); LibCST positions count characters.
        self.pending = {(f.span.line, to_characters(f.span.line, f.span.col + 1) - 1): f for f in fixes}
        self.keys = {id(f): key for key, f in self.pending.items()}
        self.init_ref = init_ref
        self.applied: list[InitFix] = []
        self.lost: list[list[str]] = []  # per enclosing statement: comments to keep above it

    def start(self, node: cst.CSTNode) -> tuple[int, int]:
        pos = self.get_metadata(PositionProvider, node)
        return (pos.start.line, pos.start.column)

    # Statements collect the comments their rewritten calls would otherwise lose.
    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            self.lost.append([])
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode, updated_node: Any) -> Any:
        result = super().on_leave(original_node, updated_node)
        if isinstance(original_node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            lost = self.lost.pop()
            if lost and isinstance(result, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
                lines = [cst.EmptyLine(indent=True, whitespace=cst.SimpleWhitespace(""), comment=cst.Comment(c))
                         for c in lost]
                result = result.with_changes(leading_lines=[*result.leading_lines, *lines])
        return result

    def _done(self, fix: InitFix, original: cst.CSTNode, new: cst.CSTNode) -> None:
        self.applied.append(fix)
        del self.pending[self.keys[id(fix)]]
        kept = collections.Counter(_comments_under(new))
        for comment in _comments_under(original):
            if kept[comment] > 0:
                kept[comment] -= 1
            elif self.lost:
                self.lost[-1].append(comment)

    def leave_Arg(self, original_node: cst.Arg, updated_node: cst.Arg) -> cst.Arg:
        # Keras: the initializer object itself is reported, e.g. Constant(0.5).
        keyword = original_node.keyword
        if keyword is None or keyword.value != "kernel_initializer":
            return updated_node
        fix = self.pending.get(self.start(original_node.value))
        if fix is None or fix.framework != "keras" or not _is_keras_constant(original_node.value):
            return updated_node
        new = updated_node.with_changes(value=_keras_string(original_node.value, fix.scheme))
        self._done(fix, original_node, new)
        return new

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        fix = self.pending.get(self.start(original_node))
        if fix is None:
            return updated_node
        if fix.framework == "keras":
            new = _rewrite_keras_layer(updated_node, fix)
        else:
            new = _rewrite_torch(updated_node, fix, self.init_ref)
        if new is None:
            return updated_node
        self._done(fix, original_node, new)
        return new


def _comments_under(node: cst.CSTNode) -> list[str]:
    """Comments under a node, in order (LibCST keeps them in its whitespace nodes)."""
    comments: list[str] = []

    class Visitor(cst.CSTVisitor):
        def visit_Comment(self, node: cst.Comment) -> None:
            comments.append(node.value)

    node.visit(Visitor())
    return comments


def _keras_string(old: Any, scheme: str) -> Any:
    quote = '"'
    if isinstance(old, cst.SimpleString) and old.value[-1:] == "'":
        quote = "'"
    return cst.SimpleString(f"{quote}{scheme}{quote}")


def _rewrite_keras_layer(call: Any, fix: InitFix) -> Any:
    """``Dense(..., kernel_initializer="zeros")`` -> ``kernel_initializer="<scheme>"``."""
    new_args = []
    changed = False
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "kernel_initializer" and _is_keras_constant(arg.value):
            new_args.append(arg.with_changes(value=_keras_string(arg.value, fix.scheme)))
            changed = True
        else:
            new_args.append(arg)
    return call.with_changes(args=new_args) if changed else None


def _keyword_args(fix: InitFix) -> list[Any]:
    return [cst.Arg(keyword=cst.Name(key), value=cst.parse_expression(value),
                    equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                          whitespace_after=cst.SimpleWhitespace("")))
            for key, value in fix.keywords]


def _rewrite_torch(call: Any, fix: InitFix, init_ref: str | None) -> Any:
    """``nn.init.zeros_(w)`` / ``constant_(w, 0.5)`` / ``w.data.fill_(0)`` / ``w.zero_()`` ->
    ``<torch.nn.init>.<scheme>(w, **keywords)``. The tensor argument keeps its own formatting;
    a dropped argument's slot is reused by the first new keyword (its comments stay in place)."""
    func = call.func
    name = _callee_name(func)
    if any(arg.star for arg in call.args):
        return None
    if name in _INPLACE_CONSTANT and isinstance(func, cst.Attribute):
        if init_ref is None:
            return None
        tensor = func.value
        if isinstance(tensor, cst.Attribute) and tensor.attr.value == "data":
            tensor = tensor.value  # nn.init works on the parameter itself, under no_grad
        if tensor.lpar or tensor.rpar:
            tensor = tensor.with_changes(lpar=[], rpar=[])
        new_func = cst.parse_expression(f"{init_ref}.{fix.scheme}")
        return call.with_changes(func=new_func, args=_with_keywords([cst.Arg(value=tensor)], [], fix))
    if name not in _CONSTANT_INITS:
        return None
    tensor_args = [a for a in call.args if a.keyword is None][:1] or \
        [a for a in call.args if a.keyword is not None and a.keyword.value == "tensor"]
    if not tensor_args:
        return None
    tensor_arg = tensor_args[0]
    dropped = [a for a in call.args if a is not tensor_arg]
    if isinstance(func, cst.Attribute):
        new_func = func.with_changes(attr=cst.Name(fix.scheme))
    elif init_ref is not None:  # `from torch.nn.init import zeros_`: the new name is not imported
        new_func = cst.parse_expression(f"{init_ref}.{fix.scheme}")
    else:
        return None
    return call.with_changes(func=new_func, args=_with_keywords([tensor_arg], dropped, fix,
                                                               trailing=_has_trailing_comma(call)))


def _has_trailing_comma(call: Any) -> bool:
    return bool(call.args) and isinstance(call.args[-1].comma, cst.Comma)


def _with_keywords(kept: list[Any], dropped: list[Any], fix: InitFix, trailing: bool = False) -> list[Any]:
    keywords = _keyword_args(fix)
    # Reuse the slots (comma and whitespace, comments included) of dropped arguments.
    for index, keyword in enumerate(keywords):
        if index < len(dropped):
            slot = dropped[index]
            keywords[index] = keyword.with_changes(comma=slot.comma, whitespace_after_arg=slot.whitespace_after_arg)
    args = [*kept, *keywords]
    out = []
    for index, arg in enumerate(args):
        last = index == len(args) - 1
        if not last and not isinstance(arg.comma, cst.Comma):
            arg = arg.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        elif last and isinstance(arg.comma, cst.Comma) and not trailing and not _comma_has_comment(arg.comma):
            arg = arg.with_changes(comma=cst.MaybeSentinel.DEFAULT)
        elif last and not isinstance(arg.comma, cst.Comma) and trailing:
            arg = arg.with_changes(comma=cst.Comma())
        out.append(arg)
    return out


def _comma_has_comment(comma: Any) -> bool:
    return bool(_comments_under(comma)) or "\n" in _code_of(comma)


def _code_of(node: Any) -> str:
    return cst.Module(body=[]).code_for_node(node)


# ----------------------------------------------------------------------------- writing


@dataclass
class WriteOutcome:
    target: str  # the file actually written (a symlink's target)
    how: str  # "replaced" (atomic rename) or "in place" (same inode)


def _read_limited(path: str) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read(_MAX_BYTES + 1)
    if len(data) > _MAX_BYTES:
        raise FixError("file grew beyond what gradlint reads since it was linted: not rewritten")
    return data


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


def write_fixed(path: str, expected_digest: str, new: bytes, allow_read_only: bool = False) -> WriteOutcome:
    """Write ``new`` over ``path`` if it still holds the linted bytes; see the module docstring."""
    target = os.path.realpath(path)  # through symlinks: the link stays a link, its target is fixed
    try:
        info = os.stat(target)
    except OSError as exc:
        raise FixError(f"cannot stat: {_describe(exc)}") from None
    if not stat.S_ISREG(info.st_mode):
        raise FixError("not a regular file: not rewritten")
    mode = stat.S_IMODE(info.st_mode)
    read_only = not mode & 0o222
    if read_only and not allow_read_only:
        raise FixError(f"read-only file (mode {mode:04o}): not rewritten; pass --fix-read-only to rewrite it")

    def check_unchanged() -> bytes:
        try:
            current = _read_limited(target)
        except OSError as exc:
            raise FixError(f"cannot read: {_describe(exc)}") from None
        if digest(current) != expected_digest:
            raise FixError("changed on disk since it was linted: not rewritten (run gradlint again)")
        return current

    original = check_unchanged()
    directory = os.path.dirname(target) or "."
    in_place = info.st_nlink > 1 or info.st_uid != os.geteuid() or read_only
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".gradlint-fix-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(new)
            handle.flush()
            os.fsync(handle.fileno())
        if _read_limited(tmp) != new:
            raise FixError("the temporary copy did not read back as written: not rewritten")
        if not in_place:
            os.chmod(tmp, mode)
            if info.st_gid != os.stat(tmp).st_gid:
                try:
                    os.chown(tmp, -1, info.st_gid)
                except OSError:
                    in_place = True  # we cannot give the new file the old group: keep the inode
    except OSError:
        if tmp is not None:
            _unlink_quietly(tmp)
        tmp = None
        in_place = True  # an unwritable directory: the file itself may still be writable
    try:
        if not in_place and tmp is not None:
            check_unchanged()  # as late as possible before the swap
            os.replace(tmp, target)
            tmp = None
        else:
            _write_in_place(target, original, new, mode, read_only, check_unchanged)
        if _read_limited(target) != new:
            raise FixError("the file did not read back as written")
    except OSError as exc:
        raise FixError(f"cannot write: {_describe(exc)}") from None
    finally:
        if tmp is not None:
            _unlink_quietly(tmp)
    return WriteOutcome(target, "in place" if in_place else "replaced")


def _write_in_place(target: str, original: bytes, new: bytes, mode: int, read_only: bool,
                    check_unchanged: Any) -> None:
    """Same inode: hard links, owner, group, mode, ACLs and extended attributes are all kept."""
    made_writable = False
    if read_only and os.geteuid() != 0:
        os.chmod(target, mode | stat.S_IWUSR)  # only the owner may, and only when told to
        made_writable = True
    try:
        check_unchanged()
        with open(target, "r+b") as handle:
            try:
                handle.write(new)
                handle.truncate()
                handle.flush()
                os.fsync(handle.fileno())
            except OSError:
                handle.seek(0)  # put the original back (same size, so the space is there)
                handle.write(original)
                handle.truncate()
                raise
    finally:
        if made_writable:
            os.chmod(target, mode)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# ------------------------------------------------------------------------ whole runs


@dataclass
class FileFix:
    path: str
    applied: list[InitFix] = field(default_factory=list)
    error: str | None = None  # why the file was not fixed (None: fixed, or nothing to do)
    note: str = ""  # e.g. "through the symlink to X", "in place"
    where: list[str] | None = None  # notebooks: where each fix is ("cell 3 line 6"), else lines


@dataclass
class FixRun:
    """What ``--fix``/``--diff`` did to the files of a run."""

    files: list[FileFix] = field(default_factory=list)
    diffs: list[str] = field(default_factory=list)
    hidden_unsafe: int = 0  # fixes that only --unsafe-fixes would apply

    @property
    def changed(self) -> list[FileFix]:
        return [f for f in self.files if f.applied and f.error is None]

    @property
    def failed(self) -> list[FileFix]:
        return [f for f in self.files if f.error is not None]

    @property
    def applied(self) -> int:
        return sum(len(f.applied) for f in self.changed)


def fix_results(results: Sequence[Any], unsafe: bool, diff_only: bool, allow_read_only: bool = False) -> FixRun:
    """Fix (or, with ``diff_only``, preview) each file of ``results`` (objects with ``path``,
    ``diagnostics`` and ``digest``). Never raises for a file: a failure is recorded and the
    next file is fixed."""
    run = FixRun()
    # (device, inode) or real path -> the path it was fixed as: hard links and links to one file
    written: dict[object, str] = {}
    for result in results:
        with_fix = [d for d in result.diagnostics if isinstance(d.fix, InitFix)]
        if not with_fix:
            continue
        chosen = selected_fixes(with_fix, unsafe)
        run.hidden_unsafe += len(with_fix) - len(chosen)
        if not chosen:
            continue
        entry = FileFix(result.path)
        run.files.append(entry)
        if result.digest is None:
            entry.error = "was not read when linted: not rewritten"
            continue
        try:
            target = os.path.realpath(result.path)
            info = os.stat(target)
            identity = (info.st_dev, info.st_ino)
            first = written.get(identity) or written.get(target)
            if first is not None and not diff_only:
                entry.note = f"the same file as {first}, fixed already"
                continue
            data = _read_limited(target)
            if digest(data) != result.digest:
                raise FixError("changed on disk since it was linted: not rewritten (run gradlint again)")
            plan = plan_fixes(data, chosen, notebook=result.path.lower().endswith(".ipynb"))
            if plan is None:
                raise FixError("the fix no longer applies cleanly: not rewritten")
            if diff_only:
                entry.applied, entry.where = plan.applied, plan.where
                run.diffs.append(plan.diff(result.path))
                continue
            outcome = write_fixed(result.path, result.digest, plan.fixed, allow_read_only)
            entry.applied, entry.where = plan.applied, plan.where
            written[identity] = written[target] = result.path
            notes = []
            if outcome.target != os.path.abspath(result.path):
                notes.append(f"written through the symbolic link to {outcome.target}")
            if outcome.how == "in place":
                notes.append("rewritten in place: hard links, owner and mode kept")
            entry.note = "; ".join(notes)
        except FixError as exc:
            entry.error = str(exc)
        except OSError as exc:
            entry.error = f"cannot read: {_describe(exc)}"
    return run


def fix_source(data: bytes, diagnostics: Sequence[Diagnostic], unsafe: bool, notebook: bool = False) -> FixPlan | None:
    """Standard input: the fixed bytes (printed, as ruff does), or None when nothing applies."""
    return plan_fixes(data, selected_fixes(diagnostics, unsafe), notebook)
