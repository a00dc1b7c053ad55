"""Applying fixes: LibCST keeps formatting and comments; writes are atomic; a result that does
not parse is never written. Only files with applicable fixes are parsed with LibCST, so the
cost of its metadata (positions) is paid only where something changes."""

from __future__ import annotations

import ast
import difflib
import os
import tempfile
from dataclasses import dataclass
from typing import Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from gradlint.diagnostics import Diagnostic
from gradlint.rule import InitFix

_CONSTANT_INITS = {"zeros_", "ones_", "constant_", "zeros", "ones", "constant"}
_KERAS_CONSTANT = {"zeros", "ones", "constant", "Zeros", "Ones", "Constant"}


@dataclass
class FixResult:
    path: str
    applied: int
    original: str
    fixed: str

    def diff(self) -> str:
        return "".join(difflib.unified_diff(self.original.splitlines(keepends=True), self.fixed.splitlines(keepends=True),
                                            fromfile=f"a/{self.path}", tofile=f"b/{self.path}"))


class _InitRewriter(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, fixes: Sequence[InitFix]) -> None:
        super().__init__()
        self.by_start = {(f.span.line, f.span.col): f for f in fixes}
        self.applied = 0

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        pos = self.get_metadata(PositionProvider, original)
        fix = self.by_start.get((pos.start.line, pos.start.column))
        if fix is None:
            return updated
        new = _rewrite_torch(updated, fix) if fix.framework == "torch" else _rewrite_keras(updated, fix)
        if new is not None:
            self.applied += 1
            return new
        return updated


def _rewrite_torch(call: cst.Call, fix: InitFix) -> cst.Call | None:
    """``nn.init.zeros_(w)`` / ``constant_(w, 0.5)`` -> ``nn.init.<scheme>(w, **keywords)``."""
    func = call.func
    name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else None
    if name not in _CONSTANT_INITS or not call.args:
        return None
    new_func = func.with_changes(attr=cst.Name(fix.scheme)) if isinstance(func, cst.Attribute) else cst.Name(fix.scheme)
    args = [call.args[0].with_changes(comma=cst.MaybeSentinel.DEFAULT)]
    for key, value in fix.keywords:
        args.append(cst.Arg(keyword=cst.Name(key), value=cst.parse_expression(value),
                            equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                                  whitespace_after=cst.SimpleWhitespace(""))))
    return call.with_changes(func=new_func, args=args)


def _rewrite_keras(call: cst.Call, fix: InitFix) -> cst.Call | None:
    """``Dense(..., kernel_initializer="zeros")`` -> ``kernel_initializer="<scheme>"``."""
    new_args = []
    changed = False
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "kernel_initializer" and _is_keras_constant(arg.value):
            new_args.append(arg.with_changes(value=cst.SimpleString(f'"{fix.scheme}"')))
            changed = True
        else:
            new_args.append(arg)
    return call.with_changes(args=new_args) if changed else None


def _is_keras_constant(value: cst.BaseExpression) -> bool:
    if isinstance(value, cst.SimpleString):
        return value.evaluated_value in _KERAS_CONSTANT
    if isinstance(value, cst.Call):
        func = value.func
        name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
        return name in _KERAS_CONSTANT
    return False


def fix_file(path: str, diagnostics: Sequence[Diagnostic], unsafe: bool) -> FixResult | None:
    fixes = [d.fix for d in diagnostics if isinstance(d.fix, InitFix) and (d.fix.safe or unsafe)]
    if not fixes:
        return None
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        module = cst.parse_module(data)
        rewriter = _InitRewriter(fixes)
        fixed_module = MetadataWrapper(module).visit(rewriter)
    except (cst.ParserSyntaxError, RecursionError, ValueError):
        return None
    if not rewriter.applied:
        return None
    original = module.code
    fixed = fixed_module.code
    try:
        ast.parse(fixed)  # a fix never leaves code that does not parse
    except SyntaxError:
        return None
    return FixResult(path, rewriter.applied, original, fixed)


def write_atomically(result: FixResult, encoding: str) -> None:
    directory = os.path.dirname(os.path.abspath(result.path))
    mode = os.stat(result.path).st_mode
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".gradlint-fix-")
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as handle:
            handle.write(result.fixed)
        os.chmod(tmp, mode)
        os.replace(tmp, result.path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
