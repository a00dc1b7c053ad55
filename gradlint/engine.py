"""The engine: files in, diagnostics out. Reads and parses files, runs extraction and rules.

Static linting never imports or runs the linted code: files are parsed with ``ast`` and
interpreted symbolically by ``gradlint.extract``.
"""

from __future__ import annotations

import ast
import fnmatch
import gc
import io
import os
import stat
import sys
import tokenize
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import field, replace
from typing import TYPE_CHECKING

from gradlint.cache import ResultCache, cache_key, summarize
from gradlint.diagnostics import Diagnostic, character_columns
from gradlint.extract import extract
from gradlint.extract.framework_reach import may_build_a_model
from gradlint.extract.project_files import FILES as PROJECT_FILES
from gradlint.extract.project_files import file_stamp, import_root
from gradlint.model import Configuration, Model
from gradlint.records import dataclass
from gradlint.rule import SYSTEM_CODES, Rule, RuleContext, RuleOptions, Severity, all_rules
from gradlint.stack_room import with_stack_room
from gradlint.suppress import Suppressions

if TYPE_CHECKING:
    from gradlint.notebook import VirtualSource
    from gradlint.py2 import Reading

DEFAULT_EXCLUDES = (
    ".git", ".hg", ".svn", ".venv", "venv", ".env", "env", "__pycache__", ".tox", ".nox", "build", "dist",
    "node_modules", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".gradlint_cache", ".eggs", "*.egg-info",
    ".ipynb_checkpoints",
)
# Python's syntax tree costs ~200 bytes of memory per byte of source (measured: 1 MiB of
# source -> 130-220 MiB peak for ast.parse alone, 10 MiB -> 1.5-2.1 GB for a whole lint). The
# largest .py file in torch, torchvision, timm, transformers and keras is 1.4 MiB (a torch test
# file; no model file is above 0.5 MiB): 2 MiB keeps one file under ~0.5 GB. Larger files are
# reported (GRD900) with their size, never read whole; GRADLINT_MAX_FILE_MB raises the limit.
DEFAULT_MAX_FILE_MB = 2.0


def max_file_bytes() -> int:
    raw = os.environ.get("GRADLINT_MAX_FILE_MB", "")
    try:
        mb = float(raw) if raw else DEFAULT_MAX_FILE_MB
    except ValueError:
        mb = DEFAULT_MAX_FILE_MB
    if not (mb > 0 and mb < 1e6):
        mb = DEFAULT_MAX_FILE_MB
    return int(mb * 1024 * 1024)


MAX_FILE_BYTES = max_file_bytes()
PARALLEL_THRESHOLD = 24  # below this many files, process start-up costs more than it saves


@dataclass(frozen=True)
class Selection:
    """Which codes are on: ruff semantics, a code or prefix; ``ALL`` selects everything."""

    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def enabled(self, code: str, default: bool = True) -> bool:
        def matches(prefixes: Iterable[str]) -> int:
            best = -1
            for prefix in prefixes:
                p = prefix.upper()
                if p == "ALL":
                    best = max(best, 0)
                elif code.startswith(p):
                    best = max(best, len(p))
            return best

        chosen = matches(self.select)
        dropped = matches(self.ignore)
        if chosen < 0 and dropped < 0:
            return default if not self.select else False
        return chosen > dropped if chosen >= 0 else False


@dataclass
class LintConfig:
    selection: Selection = field(default_factory=Selection)
    options: RuleOptions = field(default_factory=RuleOptions)
    exclude: tuple[str, ...] = ()
    # path -> codes switched off for it (per-file-ignores); None: no per-file ignores
    per_file_ignores: Callable[[str], tuple[str, ...]] | None = None
    project_root: str | None = None  # exclude patterns are relative to it (the config's directory)
    # Where project imports are resolved when a file has no project marker (pyproject.toml, .git,
    # ...) above it: the paths given to lint_paths (set there when empty).
    search_roots: tuple[str, ...] = ()

    def selection_for(self, path: str) -> Selection:
        extra = self.per_file_ignores(path) if self.per_file_ignores else ()
        if not extra:
            return self.selection
        return Selection(self.selection.select, self.selection.ignore + tuple(extra))


@dataclass
class FileResult:
    path: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    models: list[Model] = field(default_factory=list)
    skipped: bool = False  # no model marker: not parsed
    digest: str | None = None  # sha-256 of the bytes linted: --fix writes only over these bytes
    # Models no rule could see (forward always raises, returns None ...): for --dynamic only.
    opaque: list[Model] = field(default_factory=list)
    # Project modules the file's imports were resolved to (path -> sha-256), and files whose
    # absence mattered: the cached result is valid while both hold.
    dependencies: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------- discovery


def _excluded(name: str, rel: str, patterns: Sequence[str], full: str | None = None, root: str | None = None) -> bool:
    """Patterns match a file or directory name, its path below the linted root, or its path
    relative to the project root (the directory holding the configuration, else the cwd)."""
    candidates = [name, rel]
    if full is not None:
        candidates.append(os.path.relpath(full, root or os.getcwd()))
    for pattern in patterns:
        for candidate in candidates:
            if fnmatch.fnmatch(candidate, pattern) or fnmatch.fnmatch(candidate, pattern.rstrip("/") + "/*"):
                return True
    return False


def _irregular_reason(path: str) -> str | None:
    """Why a path cannot be read as a source file, or None when it can."""
    import errno

    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop: not read"
        if exc.errno == errno.ENOENT:
            return "broken symbolic link: not read"
        return f"cannot stat: {exc.strerror}"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO, not a regular file: not read"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a device or special file, not a regular file: not read"


def _is_regular(path: str) -> bool:
    return _irregular_reason(path) is None


def too_large(size: int, limit: int) -> SourceError:
    what = f"file is {size / 1048576:.1f} MiB" if size > limit + 1 else "input is"
    return SourceError("GRD900", f"{what}, larger than the {limit / 1048576:g} MiB "
                                 f"gradlint reads (its syntax tree alone would take ~{size * 200 / 1e9:.1f} GB); "
                                 f"not checked: exclude it, or raise the limit with GRADLINT_MAX_FILE_MB")


def read_bounded(path: str) -> bytes:
    """The file's bytes, refusing more than MAX_FILE_BYTES whatever the size the file claims."""
    reason = _irregular_reason(path)
    if reason is not None:
        raise SourceError("GRD900", reason)
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_FILE_BYTES:
            raise too_large(size, MAX_FILE_BYTES)
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise too_large(max(size, len(data)), MAX_FILE_BYTES)
    return data


def discover(paths: Sequence[str], exclude: Sequence[str] = (),
             root: str | None = None) -> tuple[list[str], list[Diagnostic]]:
    """Python files under ``paths`` (sorted, de-duplicated) and diagnostics for bad paths."""
    project_root = root
    found: list[str] = []
    problems: list[Diagnostic] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            found.append(path)

    for raw in paths:
        if os.path.isdir(raw):
            visited: set[str] = set()

            def unreadable(exc: OSError, top: str = raw) -> None:  # a directory os.walk cannot list: say so
                where = exc.filename if isinstance(exc.filename, str) else top
                problems.append(_system_diagnostic(where, "GRD900", f"cannot read directory: {exc.strerror or exc}"))

            for root, dirs, files in os.walk(raw, followlinks=True, onerror=unreadable):
                real_root = os.path.realpath(root)
                if real_root in visited:  # symlink loop
                    dirs[:] = []
                    continue
                visited.add(real_root)
                rel_root = os.path.relpath(root, raw)
                keep = []
                for d in sorted(dirs):
                    rel = os.path.normpath(os.path.join(rel_root, d))
                    # Built-in excludes match directory names only: a root the user names
                    # explicitly (even inside a virtualenv's site-packages) is linted.
                    if _excluded(d, d, DEFAULT_EXCLUDES) or (exclude and _excluded(
                            d, rel, tuple(exclude), os.path.join(root, d), project_root)) or \
                            os.path.exists(os.path.join(root, d, "pyvenv.cfg")):
                        continue
                    keep.append(d)
                dirs[:] = keep
                for name in sorted(files):
                    if not name.endswith((".py", ".pyi", ".ipynb")):
                        continue
                    rel = os.path.normpath(os.path.join(rel_root, name))
                    full = os.path.join(root, name)
                    if _excluded(name, rel, tuple(exclude), full, project_root):
                        continue
                    reason = _irregular_reason(full)
                    if reason is not None:
                        # A FIFO or a link to /dev/zero would block or never end: report, do not read.
                        problems.append(_system_diagnostic(full, "GRD900", reason))
                        continue
                    add(full)
        elif os.path.isfile(raw):
            # Explicitly named files are linted whatever their extension, unless excluded (as
            # pre-commit passes every staged file by name).
            if not (exclude and _excluded(os.path.basename(raw), raw, tuple(exclude), raw, project_root)):
                add(raw)
        else:
            problems.append(_system_diagnostic(raw, "GRD900", "no such file or directory" if not os.path.lexists(raw)
                                               else "not a regular file (broken symlink?)"))
    return found, problems


# ---------------------------------------------------------------------- reading


class SourceError(Exception):
    def __init__(self, code: str, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line
        self.column = column


def decode_source(data: bytes) -> str:
    """Decode honouring a PEP 263 coding cookie and a UTF-8 BOM; raise SourceError otherwise."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise SourceError("GRD900", f"cannot determine the encoding: {exc}") from None
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        line = data[: getattr(exc, "start", 0)].count(b"\n") + 1
        raise SourceError("GRD900", f"cannot decode as {encoding}: {exc}", line) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def parse_source(text: str, path: str) -> ast.Module:
    try:
        return ast.parse(text, filename=path)
    except SyntaxError as exc:
        raise SourceError("GRD901", f"syntax error: {exc.msg}", exc.lineno or 1, (exc.offset or 1)) from None
    except ValueError as exc:  # NUL bytes
        raise SourceError("GRD901", f"cannot parse: {exc}") from None
    except (RecursionError, MemoryError):
        raise SourceError("GRD901", "cannot parse: nesting too deep for the Python parser") from None


# ---------------------------------------------------------------------- linting


def lint_file(path: str, config: LintConfig, data: bytes | None = None,
              stamp: tuple[int, int] | None = None) -> FileResult:
    """Lint one file. Never raises: every failure becomes a diagnostic of the file.

    ``data``: the bytes to lint instead of the file's (an editor's unsaved buffer); when they were
    read from disk, ``stamp`` is the file's ``file_stamp`` taken before reading them, and a later
    file importing this one reuses its parse."""
    PROJECT_FILES.forget_lookups()  # a sibling module created or deleted since the last lint counts
    result = FileResult(path)
    try:
        if data is None:
            stamp = file_stamp(path)
            data = read_bounded(path)
        elif len(data) > MAX_FILE_BYTES:
            raise too_large(len(data), MAX_FILE_BYTES)
        result.digest = content_digest(data)
        if data[:2] in (b"\xff\xfe", b"\xfe\xff") or data[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
            raise SourceError("GRD900", "UTF-16/UTF-32 encoded: Python source must be UTF-8 or declare an "
                                        "ASCII-compatible encoding (PEP 263)")
        reach = may_build_a_model(path, data, config.search_roots)
        if not reach.may:  # no framework in it or in the project modules it imports: skip it unparsed
            result.skipped = True
            result.dependencies, result.missing = reach.dependencies, reach.missing
            return result
        if path.lower().endswith(".ipynb"):
            source = notebook_source(data)
            if source is None:  # a notebook of another language (R, Julia...)
                result.skipped = True
                return result
            cells = lint_virtual(source, path, config)
            result.diagnostics, result.models = cells.diagnostics, cells.models
            result.dependencies, result.missing = cells.dependencies, cells.missing
            _keep_applicable_fixes(data, result.diagnostics, notebook=True)
            return result
        _lint_text(result, decode_source(data), path, config, stamp)
        if result.diagnostics:
            _keep_applicable_fixes(data, result.diagnostics)
    except SourceError as exc:
        result.diagnostics = _keep_selected([_system_diagnostic(path, exc.code, exc.message, exc.line, exc.column)],
                                            config)
    except OSError as exc:
        result.diagnostics = _keep_selected([_system_diagnostic(path, "GRD900", exc.strerror or str(exc))], config)
    except Exception as exc:  # a bug in gradlint: report it, lint the other files
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        result.diagnostics = [_system_diagnostic(
            path, "GRD902", f"internal error ({detail}); please report it at the gradlint issue tracker "
                            f"with this file")]
    return result


def _lint_text(result: FileResult, text: str, path: str, config: LintConfig,
               stamp: tuple[int, int] | None = None) -> None:
    suppressions = Suppressions(text)
    if suppressions.file_level:
        return
    reading: Reading | None = None
    seeded = False
    try:
        held = PROJECT_FILES.take_tree(path, stamp, result.digest) \
            if stamp is not None and result.digest is not None and not text.startswith("\ufeff") else None
        tree = held if held is not None else parse_source(text, path)
        if stamp is not None and result.digest is not None:  # the file as on disk: importers reuse it
            PROJECT_FILES.seed(path, stamp, result.digest, text, tree)
            seeded = True
    except SourceError as exc:
        # A file exported from a notebook keeps its `!pip install` / `%cd` lines: lint the rest
        # (lines are masked one for one, so locations do not move). Valid Python is never masked.
        # imported only when a file does not parse
        from gradlint.notebook import mask_python
        from gradlint.py2 import python3_reading

        masked = mask_python(text) if exc.code == "GRD901" else text
        reading = python3_reading(masked) if exc.code == "GRD901" else None
        if reading is not None:
            try:
                tree = parse_source(reading.text, path)
            except SourceError:
                raise exc from None  # not (only) Python 2: the file's own error
        elif masked is text:
            raise
        else:
            tree = parse_source(masked, path)  # still invalid: the error past the IPython lines
    result.diagnostics, result.models = lint_tree(tree, suppressions, path, config, result, text)
    if seeded and stamp is not None:  # done with it: the next files importing this one take its statements
        PROJECT_FILES.donate(path, stamp, tree)
    if reading is not None and config.selection_for(path).enabled("GRD904") \
            and not suppressions.suppresses("GRD904", {reading.rewritten[0][0]}):
        result.diagnostics.append(_python2_note(path, reading))
        result.diagnostics.sort(key=Diagnostic.sort_key)
    if result.diagnostics:
        to_characters = character_columns(text)  # ast's columns count UTF-8 bytes
        for diag in result.diagnostics:
            diag.column, diag.end_column = to_characters(diag.line, diag.column), to_characters(diag.end_line,
                                                                                                diag.end_column)
        lines = text.splitlines()
        for diag in result.diagnostics:
            diag.fingerprint = fingerprint(diag, lines)


def _python2_note(path: str, reading: Reading) -> Diagnostic:
    """GRD904 at the first rewritten statement: the file was read as Python 3 reads it rewritten."""
    kinds: dict[str, list[int]] = {}
    for line, what in reading.rewritten:
        kinds.setdefault(what, []).append(line)
    parts = []
    for what, lines in kinds.items():
        shown = ", ".join(str(n) for n in lines[:3]) + (", ..." if len(lines) > 3 else "")
        parts.append(f"{len(lines)} {what}{'s' if len(lines) > 1 and what.endswith('statement') else ''} "
                     f"(line{'s' if len(lines) > 1 else ''} {shown})")
    line = reading.rewritten[0][0]
    return Diagnostic(path, line, 1, line, 1, "GRD904", SYSTEM_CODES["GRD904"][0], Severity.INFO,
                      f"Python 2 syntax, read as Python 3 with these statements rewritten in place: "
                      f"{'; '.join(parts)}. The models were checked; Python 2's integer division is not modelled")


def notebook_source(data: bytes) -> VirtualSource | None:
    """A notebook's code cells as one Python text (None: not a Python notebook)."""
    from gradlint.notebook import NotebookError, load_notebook

    try:
        notebook = load_notebook(data)
    except NotebookError as exc:
        raise SourceError("GRD900", exc.message, exc.line, exc.column) from None
    return notebook.source() if notebook.language == "python" else None


def lint_virtual(source: VirtualSource, path: str, config: LintConfig) -> FileResult:
    """Lint notebook cells (``gradlint.notebook.virtual_source``): every location is given
    as a cell and a line within it. Never raises."""
    PROJECT_FILES.forget_lookups()
    result = FileResult(path)
    try:
        _lint_text(result, source.text, path, config)
    except SourceError as exc:
        result.diagnostics = _keep_selected([_system_diagnostic(path, exc.code, exc.message, exc.line, exc.column)],
                                            config)
    except Exception as exc:  # noqa: BLE001 -- a bug in gradlint: report it, lint the other files
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        result.diagnostics = [_system_diagnostic(
            path, "GRD902", f"internal error ({detail}); please report it at the gradlint issue tracker "
                            f"with this file")]
    for diag in result.diagnostics:
        diag.message = source.relocate_message(diag.message, source.locate(diag.line)[0])
        diag.cell, diag.line = source.locate(diag.line)
        end_cell, end_line = source.locate(diag.end_line)
        diag.end_line = end_line if end_cell == diag.cell else diag.line
    return result


def lint_tree(tree: ast.Module, suppressions: Suppressions, path: str, config: LintConfig,
              sink: FileResult | None = None, source: str | None = None) -> tuple[list[Diagnostic], list[Model]]:
    return with_stack_room(_lint_tree, tree, suppressions, path, config, sink, source)


def _lint_tree(tree: ast.Module, suppressions: Suppressions, path: str, config: LintConfig,
               sink: FileResult | None, source: str | None) -> tuple[list[Diagnostic], list[Model]]:
    extraction = extract(tree, path=path if os.path.isfile(path) else None, roots=config.search_roots, source=source)
    models = extraction.models
    if sink is not None:
        sink.opaque = extraction.opaque
        sink.dependencies, sink.missing = extraction.dependencies, extraction.missing
    selection = config.selection_for(path)
    rules = [rule_cls() for code, rule_cls in all_rules().items()
             if selection.enabled(code, rule_cls.default_enabled)]
    context = RuleContext(config.options, models, extraction.training, frozenset(rule.code for rule in rules))
    # (code, line, column, configuration label): one finding per code and place, the worse kept;
    # models of a configuration loop keep one per configuration that reports something different
    diagnostics: dict[tuple[str, int, int, str], Diagnostic] = {}
    found: list[tuple[Diagnostic, Configuration | None]] = []
    for model in models:
        for rule in rules:
            for finding in rule.check(model, context):
                diag = _to_diagnostic(path, rule, finding, model)
                # A finding about a whole model can be silenced where the model is defined.
                if suppressions.suppresses(diag.code, {diag.line, model.span.line}):
                    continue
                found.append((diag, model.configuration))
    for diag, label in _name_configurations(found):
        key = (diag.code, diag.line, diag.column, label)
        previous = diagnostics.get(key)
        if previous is None or _worse(diag, previous):
            diagnostics[key] = diag
    for rule in rules:
        for finding, trained in rule.check_training(context):  # trained: the model concerned, if known
            diag = _to_diagnostic(path, rule, finding, trained)
            lines_to_check = {diag.line} | ({trained.span.line} if trained is not None else set())
            if suppressions.suppresses(diag.code, lines_to_check):
                continue
            diagnostics.setdefault((diag.code, diag.line, diag.column, ""), diag)
    if selection.enabled("GRD903"):
        shown = extraction.unanalysed[:5]
        for index, (what, line) in enumerate(shown):
            more = len(extraction.unanalysed) - len(shown)
            tail = ""
            if more and index == len(shown) - 1:
                lines = ", ".join(str(ln) for _, ln in extraction.unanalysed[5:25])
                tail = f" (and {more} more not checked, at line{'s' if more > 1 else ''} {lines}" + \
                    (", ..." if more > 20 else "") + ")"
            diagnostics[("GRD903", line, 1, "")] = Diagnostic(
                path, line, 1, line, 1, "GRD903", SYSTEM_CODES["GRD903"][0], Severity.INFO,
                f"{what} is too large to analyse within gradlint's budget; it was not checked{tail}")
    if selection.enabled("GRD100", default=False):
        for directive in suppressions.unused():
            codes = ", ".join(sorted(directive.codes)) if directive.codes else "all codes"
            diagnostics[("GRD100", directive.line, directive.column, "")] = Diagnostic(
                path, directive.line, directive.column, directive.line, directive.column, "GRD100",
                SYSTEM_CODES["GRD100"][0], Severity.WARNING, f"unused suppression ({codes}): nothing to silence here")
    return sorted(diagnostics.values(), key=Diagnostic.sort_key), models


def _name_configurations(found: list[tuple[Diagnostic, Configuration | None]]) -> list[tuple[Diagnostic, str]]:
    """Findings of models built by a configuration loop name the configurations they hold for
    (``(configuration init='zero')``), unless every configuration of the loop, or a model built
    outside it, gives the same finding. Returned with the label that tells them apart ("" none)."""
    groups: dict[tuple[str, int, int, str], list[tuple[Diagnostic, Configuration | None]]] = {}
    for diag, configuration in found:
        groups.setdefault((diag.code, diag.line, diag.column, diag.message), []).append((diag, configuration))
    out: list[tuple[Diagnostic, str]] = []
    for members in groups.values():
        diag = members[0][0]
        configurations = [c for _, c in members]
        known = [c for c in configurations if c is not None]
        loops = {c.group for c in known}
        labels = list(dict.fromkeys(c.label for c in known))
        if len(known) < len(configurations) or (len(loops) == 1 and len(labels) == known[0].count):
            out.append((diag, ""))
            continue
        label = "; ".join(labels)
        diag.message = f"{diag.message} (configuration{'s' if len(labels) > 1 else ''} {label})"
        out.append((diag, label))
    return out


def content_digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _keep_applicable_fixes(data: bytes, diagnostics: list[Diagnostic], notebook: bool = False) -> None:
    """A finding carries a fix only if ``--fix --unsafe-fixes`` applies it: a dry run of the
    fixer on the same bytes (LibCST is imported only for files that have a fix to offer)."""
    if not any(d.fix is not None for d in diagnostics):
        return
    try:
        from gradlint.fixes import applicable, fix_key

        keep = applicable(data, diagnostics, notebook)
    except Exception:  # noqa: BLE001 -- offering no fix is always safe
        keep = set()
    for diag in diagnostics:
        if diag.fix is not None and fix_key(diag.fix) not in keep:  # type: ignore[arg-type]
            diag.fix = None


def fingerprint(diag: Diagnostic, lines: list[str]) -> str:
    """Identity of a finding that survives edits elsewhere in the file (for baselines and SARIF)."""
    import hashlib

    text = lines[diag.line - 1].strip() if 1 <= diag.line <= len(lines) else ""
    return hashlib.sha1(f"{diag.code}|{diag.model or ''}|{' '.join(text.split())}".encode()).hexdigest()[:16]


def _worse(a: Diagnostic, b: Diagnostic) -> bool:
    order = {Severity.ERROR: 2, Severity.WARNING: 1, Severity.INFO: 0}
    if order[a.severity] != order[b.severity]:
        return order[a.severity] > order[b.severity]
    ea = abs(a.estimate.log10_weight_ratio) if a.estimate else 0.0
    eb = abs(b.estimate.log10_weight_ratio) if b.estimate else 0.0
    return ea > eb


def _to_diagnostic(path: str, rule: Rule, finding: object, model: Model | None) -> Diagnostic:
    from gradlint.rule import Finding

    assert isinstance(finding, Finding)
    span = finding.span
    message, fix = finding.message, finding.fix
    if span.origin is not None:
        # About a definition imported from another project file: reported at the line of this
        # file that uses it, naming where the definition is. A fix would edit the other file: none.
        where, line = span.origin
        try:
            where = os.path.relpath(where, os.path.dirname(os.path.abspath(path)))
        except ValueError:
            pass
        message = f"{message} (in {where}:{line})"
        fix = None
    if fix is not None and getattr(getattr(fix, "span", None), "origin", None) is not None:
        fix = None
    return Diagnostic(path, span.line, span.col + 1, span.end_line, span.end_col + 1, rule.code, rule.name,
                      finding.severity, message, model.name if model else None, finding.estimate, fix=fix)


def _system_diagnostic(path: str, code: str, message: str, line: int = 1, column: int = 1) -> Diagnostic:
    name, _ = SYSTEM_CODES[code]
    return Diagnostic(path, line, column, line, column, code, name, Severity.ERROR, message)


def _keep_selected(diags: list[Diagnostic], config: LintConfig) -> list[Diagnostic]:
    return [d for d in diags if config.selection_for(d.path).enabled(d.code)]


def config_fingerprint(config: LintConfig, path: str) -> str:
    """Everything of the configuration that changes a file's result (the project root decides
    which imports resolve; the contents of what they resolved to are checked on load)."""
    selection = config.selection_for(path)
    return repr((sorted(selection.select), sorted(selection.ignore), config.options,
                 import_root(path, config.search_roots)))


def _lint_cached(path: str, config: LintConfig, cache: ResultCache | None) -> FileResult:
    if cache is None:
        return _summarized(lint_file(path, config))
    stamp = file_stamp(path)
    try:
        data = read_bounded(path)
    except (OSError, SourceError):
        return lint_file(path, config)  # reports the problem as a diagnostic
    key = cache_key(data, config_fingerprint(config, path))
    hit = cache.load(key, path)
    if hit is not None:
        diagnostics, models, skipped = hit
        return FileResult(path, diagnostics, models, skipped, digest=content_digest(data))
    result = _summarized(lint_file(path, config, data=data, stamp=stamp))
    if not any(d.code == "GRD902" for d in result.diagnostics):  # never cache our own crash
        cache.store(key, result.diagnostics, result.models, result.skipped, result.dependencies, result.missing)
    return result


def _summarized(result: FileResult) -> FileResult:
    """Drop the layer structure (rules already ran): cheap to send between processes."""
    result.models = [summarize(m) for m in result.models]
    result.opaque = [summarize(m) for m in result.opaque]
    return result


_POOL_CONFIG: tuple[LintConfig, ResultCache | None] | None = None
_COLLECT_BETWEEN_FILES = False


def collect_between_files(enabled: bool = True) -> None:
    """Collect cyclic garbage once per linted file, then freeze what survived it.

    One file's interpretation is a graph of reference cycles (scopes, values, the syntax they
    point into) that dies as a whole when the file is done. The generational collector instead
    walks it many times while it is alive, and walks everything that outlived earlier files (the
    results, the parsed-module memo) on each older-generation collection. Collected right after
    the file and frozen, the survivors are never walked again (and ``Interpreter.release`` leaves
    most of a file's state to reference counting): the collector's time on a cold lint of a
    quarter of transformers/models went from 2.6 s to 0.7 s (of 13 s), and the peak memory from
    93 to 58 MB. Only for a process gradlint owns (its command line and the workers it forks):
    frozen objects that later become cyclic garbage are never freed."""
    global _COLLECT_BETWEEN_FILES
    _COLLECT_BETWEEN_FILES = enabled


def _after_file() -> None:
    if _COLLECT_BETWEEN_FILES:
        gc.collect()
        gc.freeze()


def _pool_init(config: LintConfig, cache: ResultCache | None) -> None:
    global _POOL_CONFIG
    _POOL_CONFIG = (config, cache)
    PROJECT_FILES.keep_lookups = True  # a worker lints one batch of one run


def _pool_lint(paths: list[str]) -> list[FileResult]:
    assert _POOL_CONFIG is not None
    results = []
    for path in paths:
        results.append(_lint_cached(path, *_POOL_CONFIG))
        _after_file()
    return results


def balanced_batches(files: Sequence[str], workers: int) -> list[list[int]]:
    """Indices of ``files`` in batches for the workers, largest first (a file's size is what its
    lint costs, roughly): the big ones start at once, and small ones, batched so that each batch is
    about 1/(16·workers) of the bytes, fill in behind. In discovery order a model zoo's largest
    file could start last and keep one worker busy while the other idles (on timm/models the two
    workers' CPU differed by a fifth).

    A directory whose files together fit in one batch stays together, in discovery order: its
    files import each other (a model's configuration, then the modeling module importing it), and
    one worker then reads each such module once, reusing the parse of a file it already linted
    (on transformers/models: 787 module parses in all the workers instead of ~1,600)."""
    sizes = []
    for path in files:
        try:
            sizes.append(os.stat(path).st_size)
        except OSError:
            sizes.append(0)
    target = max(1, sum(sizes) // (16 * max(1, workers)))
    by_directory: dict[str, list[int]] = {}
    for i, path in enumerate(files):
        by_directory.setdefault(os.path.dirname(path), []).append(i)
    units: list[list[int]] = []  # each kept in one batch, in discovery order
    for members in by_directory.values():
        if sum(sizes[i] for i in members) <= target:
            units.append(members)
        else:  # a big directory (a flat model zoo): its files are spread, largest first
            units.extend([i] for i in members)
    units.sort(key=lambda unit: (-sum(sizes[i] for i in unit), unit[0]))
    batches: list[list[int]] = []
    current: list[int] = []
    weight = 0
    for unit in units:
        current.extend(unit)
        weight += sum(sizes[i] for i in unit)
        if weight >= target or len(current) >= 32:
            batches.append(current)
            current, weight = [], 0
    if current:
        batches.append(current)
    return batches


def lint_paths(paths: Sequence[str], config: LintConfig, jobs: int | None = None,
               cache: ResultCache | None = None,
               on_progress: Callable[[int, int], None] | None = None) -> Iterator[FileResult]:
    """Lint files and directories; in parallel processes when there are many files.

    Results come in a stable order (discovery order), whatever the parallelism.
    ``on_progress(done, total)`` is called after each file."""
    files, problems = discover(paths, config.exclude, config.project_root)
    if not config.search_roots:
        # once each: pre-commit passes every changed file, often hundreds in a few directories
        roots = tuple(dict.fromkeys(os.path.abspath(p if os.path.isdir(p) else os.path.dirname(p) or ".")
                                    for p in paths))
        config = replace(config, search_roots=roots)
    for problem in problems:
        yield FileResult(problem.path, [problem])
    total = len(files)
    for done, result in enumerate(_lint_files(files, config, jobs, cache), start=1):
        if on_progress is not None:
            on_progress(done, total)
        yield result


def _lint_files(files: list[str], config: LintConfig, jobs: int | None,
                cache: ResultCache | None) -> Iterator[FileResult]:
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    PROJECT_FILES.forget_lookups()  # once for the run: the disk as it is now (the workers fork after)
    if workers <= 1 or len(files) < PARALLEL_THRESHOLD:
        PROJECT_FILES.keep_lookups = True
        try:
            for path in files:
                result = _lint_cached(path, config, cache)
                _after_file()
                yield result
        finally:
            PROJECT_FILES.keep_lookups = False
        return
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_pool_init,
                                                initargs=(config, cache)) as pool:
        batches = balanced_batches(files, workers)
        futures = [pool.submit(_pool_lint, [files[i] for i in batch]) for batch in batches]
        where = {i: (b, k) for b, batch in enumerate(batches) for k, i in enumerate(batch)}
        for i in range(len(files)):  # results in discovery order, whatever order they finish in
            b, k = where[i]
            yield futures[b].result()[k]


def lint_source(text: str, path: str = "<stdin>", config: LintConfig | None = None) -> FileResult:
    """Lint source text (stdin, tests, editor integrations). Never raises: text that cannot be
    UTF-8 (a lone surrogate such as ``"\\ud800"``) is reported as GRD900."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = text[: exc.start].count("\n") + 1
        return FileResult(path, _keep_selected([_system_diagnostic(
            path, "GRD900", f"text cannot be encoded as UTF-8 ({exc.reason} at character {exc.start})", line)],
            config or LintConfig()))
    return lint_file(path, config or LintConfig(), data=data)


__all__ = ["LintConfig", "Selection", "FileResult", "collect_between_files", "lint_file", "lint_paths", "lint_source",
           "lint_virtual", "discover"]
