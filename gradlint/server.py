"""``gradlint server``: a language server over stdio (LSP 3.17, pygls 2).

Diagnostics for open Python files and for the code cells of open notebooks (notebook
document sync), published on open, on change (debounced) and on save; hover on a finding
shows its message and gradient-flow estimate; code actions apply a finding's fix and add
``# noqa: CODE``. Linting is the engine's, with the configuration ``gradlint check`` would
read for the file (the nearest pyproject.toml with ``[tool.gradlint]``).

pygls is an optional dependency (the ``server`` extra): this module is imported only by
``gradlint server``, never by the static path.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Sequence
from dataclasses import field, replace
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path
from pygls.workspace import PositionCodec

from gradlint import __version__
from gradlint.config import ConfigError, FileConfig, find_config, load_config
from gradlint.diagnostics import Diagnostic
from gradlint.engine import LintConfig, Selection, lint_file, lint_virtual
from gradlint.model import Model, Span
from gradlint.notebook import split_lines, virtual_source
from gradlint.records import dataclass
from gradlint.rule import SYSTEM_CODES, InitFix, Severity, all_rules

DEBOUNCE_SECONDS = 0.3  # after the last keystroke, before linting a changed document
SOURCE = "gradlint"
_SEVERITY = {Severity.ERROR: lsp.DiagnosticSeverity.Error, Severity.WARNING: lsp.DiagnosticSeverity.Warning,
             Severity.INFO: lsp.DiagnosticSeverity.Information}


@dataclass
class _Published:
    """What was last published for one document (a file or a notebook cell)."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    text: str = ""  # the text that was linted (a cell's own text for notebook cells)
    # Notebook cells: the notebook's virtual source, where fix spans live, and where this
    # cell starts in it (1-based line).
    notebook_source: str | None = None
    cell_start: int = 1
    path: str = ""
    models: list[Model] = field(default_factory=list)  # for hover: per-layer figures (gradlint inspect)


class GradlintServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            "gradlint", __version__,
            text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental,
            notebook_document_sync=lsp.NotebookDocumentSyncOptions(
                notebook_selector=[lsp.NotebookDocumentFilterWithCells(
                    cells=[lsp.NotebookCellLanguage(language="python")], notebook="*")],
                save=True),
        )
        self.published: dict[str, _Published] = {}  # document uri -> last result
        self.pending: dict[str, asyncio.TimerHandle] = {}  # uri (file or notebook) -> debounced lint

    # ------------------------------------------------------------------ linting

    def lint_text_document(self, uri: str) -> None:
        document = self.workspace.get_text_document(uri)
        if self.workspace.get_notebook_document(cell_uri=uri) is not None:
            notebook = self.workspace.get_notebook_document(cell_uri=uri)
            assert notebook is not None
            self.lint_notebook(notebook.uri)
            return
        path = _path_of(uri)
        result = lint_file(path, _config_for(path), data=document.source.encode("utf-8"))
        self.published[uri] = _Published(result.diagnostics, document.source, path=path, models=result.models)
        columns = self.columns(document.source)
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri=uri, version=document.version, diagnostics=[_to_lsp(d, columns) for d in result.diagnostics]))

    def lint_notebook(self, notebook_uri: str) -> None:
        notebook = self.workspace.get_notebook_document(notebook_uri=notebook_uri)
        if notebook is None:
            return
        path = _path_of(notebook_uri)
        cells: list[tuple[int, str]] = []
        uris: dict[int, str] = {}
        texts: dict[int, str] = {}
        for number, cell in enumerate(notebook.cells, start=1):  # numbered over all cells, as the CLI does
            if cell.kind != lsp.NotebookCellKind.Code:
                continue
            document = self.workspace.get_text_document(cell.document)
            if document.language_id not in (None, "python"):
                continue
            cells.append((number, document.source))
            uris[number] = cell.document
            texts[number] = document.source
        source = virtual_source(cells)
        result = lint_virtual(source, path, _config_for(path))
        by_cell: dict[int, list[Diagnostic]] = {number: [] for number in uris}
        for diag in result.diagnostics:
            by_cell.setdefault(diag.cell or 0, []).append(diag)
        for number, uri in uris.items():
            span = source.cell(number)
            diags = by_cell.get(number, [])
            self.published[uri] = _Published(diags, texts[number], source.text, span.start if span else 1, path,
                                             result.models)
            columns = self.columns(texts[number])
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
                uri=uri, diagnostics=[_to_lsp(d, columns) for d in diags]))

    def columns(self, text: str) -> Columns:
        return Columns(text, self.workspace.position_codec)

    def schedule(self, key: str, action: str) -> None:
        """Lint ``key`` (a document or notebook uri) once edits pause."""
        previous = self.pending.pop(key, None)
        if previous is not None:
            previous.cancel()
        loop = asyncio.get_running_loop()

        def run() -> None:
            self.pending.pop(key, None)
            self._lint_now(key, action)

        self.pending[key] = loop.call_later(DEBOUNCE_SECONDS, run)

    def _lint_now(self, key: str, action: str) -> None:
        try:
            if action == "notebook":
                self.lint_notebook(key)
            else:
                self.lint_text_document(key)
        except Exception as exc:  # noqa: BLE001 -- a bug must not take the editor's server down
            self.window_log_message(lsp.LogMessageParams(type=lsp.MessageType.Error,
                                                         message=f"gradlint: cannot lint {key}: {exc!r}"))


def _path_of(uri: str) -> str:
    return to_fs_path(uri) or uri


def _config_for(path: str) -> LintConfig:
    """The configuration `gradlint check` reads for this file, without command-line codes."""
    try:
        found = find_config(Path(path).resolve().parent) if os.path.isabs(path) or os.path.exists(path) else None
        file_config = load_config(found) if found else FileConfig()
    except (ConfigError, OSError):
        file_config = FileConfig()
    selected, extended, ignored = file_config.select, file_config.extend_select, file_config.ignore
    if selected:
        selection = Selection(selected + extended, ignored)
    elif extended:
        defaults = tuple(code for code, rule in all_rules().items() if rule.default_enabled) + tuple(
            code for code in SYSTEM_CODES if code != "GRD100")
        selection = Selection(defaults + extended, ignored)
    else:
        selection = Selection((), ignored)
    return LintConfig(selection=selection, options=file_config.options,
                      per_file_ignores=file_config.ignored_for if file_config.per_file_ignores else None,
                      project_root=str(file_config.root))


class Columns:
    """Columns as the client counts them. gradlint counts code points; an LSP position counts
    UTF-16 code units unless the client negotiated UTF-8 or UTF-32 (``position_codec``), so a
    line with a non-ASCII character before the finding would otherwise be off."""

    def __init__(self, text: str, codec: PositionCodec | None = None) -> None:
        self.lines = [line.rstrip("\r\n") for line in split_lines(text)]
        self.codec = codec or PositionCodec()

    def client(self, line: int, column: int) -> int:
        """0-based ``line``, code-point ``column`` -> the client's units."""
        if 0 <= line < len(self.lines):
            text = self.lines[line]
            return int(self.codec.client_num_units(text[:column])) + max(column - len(text), 0)
        return column


def _range(diag: Diagnostic, columns: Columns | None = None) -> lsp.Range:
    line, end_line = max(diag.line - 1, 0), max(diag.end_line - 1, 0)
    column, end_column = max(diag.column - 1, 0), max(diag.end_column - 1, 0)
    if columns is not None:
        column, end_column = columns.client(line, column), columns.client(end_line, end_column)
    start = lsp.Position(line=line, character=column)
    end = lsp.Position(line=end_line, character=end_column)
    if (end.line, end.character) < (start.line, start.character):
        end = start
    return lsp.Range(start=start, end=end)


def _to_lsp(diag: Diagnostic, columns: Columns | None = None) -> lsp.Diagnostic:
    return lsp.Diagnostic(range=_range(diag, columns), message=diag.message, severity=_SEVERITY[diag.severity],
                          code=diag.code, source=SOURCE,
                          data={"fixable": diag.fix is not None, "model": diag.model})


def _contains(diag: Diagnostic, position: lsp.Position, columns: Columns | None = None) -> bool:
    r = _range(diag, columns)
    here = (position.line, position.character)
    return (r.start.line, r.start.character) <= here <= (r.end.line, max(r.end.character, r.start.character + 1))


def _overlaps(diag: Diagnostic, wanted: lsp.Range, columns: Columns | None = None) -> bool:
    r = _range(diag, columns)
    return (r.start.line, r.start.character) <= (wanted.end.line, wanted.end.character) and \
        (wanted.start.line, wanted.start.character) <= (r.end.line, r.end.character)


def per_layer_text(published: _Published, diag: Diagnostic) -> str | None:
    """The finding's model as `gradlint inspect` prints it (per-layer forward scale and gradient)."""
    models = [m for m in published.models if m.name == diag.model]
    if not models:
        return None
    try:
        from gradlint.inspection import describe_file, render_text

        return render_text(describe_file(published.path, models[:1])).rstrip("\n")
    except Exception:  # noqa: BLE001 -- the per-layer view is extra: the hover shows the finding anyway
        return None


def hover_text(diag: Diagnostic, per_layer: str | None = None) -> str:
    """Markdown for a finding: code, name, message, the estimate behind it, and the per-layer
    figures of its model when known."""
    lines = [f"**{diag.code}** `{diag.name}`" + (f" — model `{diag.model}`" if diag.model else ""), "",
             diag.message]
    estimate = diag.estimate
    if estimate is not None:
        lines += ["", "**Estimate** (at initialization):"]
        ratio = estimate.log10_weight_ratio
        if not math.isfinite(ratio):
            lines.append(f"- weight-gradient ratio first/last: no gradient reaches the first layer "
                         f"({estimate.layers} layers)")
        else:
            value = f" ({10 ** ratio:.1e})" if abs(ratio) < 300 else ""
            lines.append(f"- weight-gradient ratio first/last ≈ 10^{ratio:.1f}{value} across {estimate.layers} layers")
        if math.isfinite(estimate.log10_backward_ratio):
            lines.append(f"- backward (activation-gradient) ratio ≈ 10^{estimate.log10_backward_ratio:.1f}")
        if estimate.per_layer_gain is not None:
            lines.append(f"- each layer passes on ≈ {estimate.per_layer_gain:.2f} of the gradient")
        lines.append("- exact for this architecture" if estimate.exact else "- approximate")
        for assumption in estimate.assumptions:
            lines.append(f"- assumes {assumption}")
    if per_layer:
        lines += ["", "**Per layer** (as `gradlint inspect` prints it; log10 of the estimates):", "", "```",
                  per_layer, "```"]
    if diag.fix is not None:
        lines += ["", "A fix is available (code action)."]
    lines += ["", f"`gradlint explain {diag.code}` for the rule's documentation."]
    return "\n".join(lines)


# ---------------------------------------------------------------------- code actions


def _plan_text(data: bytes, fixes: Sequence[InitFix], imports_from: bytes | None) -> tuple[bytes, list[InitFix]] | None:
    from gradlint.fixes import plan_fixes

    plan = plan_fixes(data, fixes, imports_from=imports_from)
    return None if plan is None else (plan.fixed, plan.applied)


def fixed_text(published: _Published, diag: Diagnostic) -> str | None:
    """The document's (or cell's) text with the finding's fix applied, None if it does not apply."""
    fix = diag.fix
    if not isinstance(fix, InitFix):
        return None
    if published.notebook_source is None:
        planned = _plan_text(published.text.encode("utf-8"), [fix], None)
        return None if planned is None else planned[0].decode("utf-8")
    from gradlint.notebook_fix import fix_masked_text

    shift = published.cell_start - 1
    s = fix.span
    relative = replace(fix, span=Span(s.line - shift, s.col, s.end_line - shift, s.end_col))
    result = fix_masked_text(published.text, [relative], True, _plan_text, published.notebook_source.encode("utf-8"))
    return None if result is None or result[0] == published.text else result[0]


def _replace_edit(old: str, new: str, columns: Columns | None = None) -> lsp.TextEdit:
    """One edit replacing the lines that differ (the common head and tail are kept)."""
    a, b = split_lines(old), split_lines(new)
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    start = lsp.Position(line=head, character=0)
    end_line = len(a) - tail
    if end_line < len(a) or (a and a[-1].endswith(("\n", "\r"))):
        end = lsp.Position(line=end_line, character=0)
    else:  # the last line has no line ending: end at its end
        last = max(end_line - 1, 0)
        character = len(a[-1]) if a else 0
        end = lsp.Position(line=last, character=columns.client(last, character) if columns else character)
        if end_line - 1 < head:
            end = start
    return lsp.TextEdit(range=lsp.Range(start=start, end=end), new_text="".join(b[head:len(b) - tail]))


def noqa_edit(text: str, diag: Diagnostic, columns: Columns | None = None) -> lsp.TextEdit | None:
    """Append ``# noqa: CODE`` to the finding's line (or add the code to a noqa already there)."""
    import re

    lines = split_lines(text)
    if not 1 <= diag.line <= len(lines):
        return None
    line = lines[diag.line - 1].rstrip("\r\n")
    existing = re.search(r"#\s*noqa(:\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", line, re.IGNORECASE)
    if existing is not None and existing.group("codes") is None:
        return None  # a bare noqa silences everything already
    def client(column: int) -> int:
        return columns.client(diag.line - 1, column) if columns else column

    if existing is not None:
        end = client(existing.end("codes"))
        return lsp.TextEdit(range=lsp.Range(start=lsp.Position(line=diag.line - 1, character=end),
                                            end=lsp.Position(line=diag.line - 1, character=end)),
                            new_text=f", {diag.code}")
    at = client(len(line))
    return lsp.TextEdit(range=lsp.Range(start=lsp.Position(line=diag.line - 1, character=at),
                                        end=lsp.Position(line=diag.line - 1, character=at)),
                        new_text=f"  # noqa: {diag.code}")


def build_server() -> GradlintServer:
    server = GradlintServer()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: GradlintServer, params: lsp.DidOpenTextDocumentParams) -> None:
        if ls.workspace.get_notebook_document(cell_uri=params.text_document.uri) is None:
            ls._lint_now(params.text_document.uri, "text")

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: GradlintServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, "text")

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: GradlintServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls._lint_now(params.text_document.uri, "text")

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(ls: GradlintServer, params: lsp.DidCloseTextDocumentParams) -> None:
        ls.published.pop(params.text_document.uri, None)
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=params.text_document.uri,
                                                                           diagnostics=[]))

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_OPEN)
    async def notebook_open(ls: GradlintServer, params: lsp.DidOpenNotebookDocumentParams) -> None:
        ls._lint_now(params.notebook_document.uri, "notebook")

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_CHANGE)
    async def notebook_change(ls: GradlintServer, params: lsp.DidChangeNotebookDocumentParams) -> None:
        ls.schedule(params.notebook_document.uri, "notebook")

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_SAVE)
    async def notebook_save(ls: GradlintServer, params: lsp.DidSaveNotebookDocumentParams) -> None:
        ls._lint_now(params.notebook_document.uri, "notebook")

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_CLOSE)
    async def notebook_close(ls: GradlintServer, params: lsp.DidCloseNotebookDocumentParams) -> None:
        for cell in params.cell_text_documents:
            ls.published.pop(cell.uri, None)
            ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=cell.uri, diagnostics=[]))

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: GradlintServer, params: lsp.HoverParams) -> lsp.Hover | None:
        published = ls.published.get(params.text_document.uri)
        if published is None:
            return None
        columns = ls.columns(published.text)
        found = [d for d in published.diagnostics if _contains(d, params.position, columns)]
        if not found:
            return None
        return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown,
                                                    value="\n\n---\n\n".join(
                                                        hover_text(d, per_layer_text(published, d)) for d in found)),
                         range=_range(found[0], columns))

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION, lsp.CodeActionOptions(
        code_action_kinds=[lsp.CodeActionKind.QuickFix]))
    def code_action(ls: GradlintServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        uri = params.text_document.uri
        published = ls.published.get(uri)
        if published is None:
            return []
        document = ls.workspace.get_text_document(uri)
        if document.source != published.text:
            return []  # edited since the last lint: the next publish brings fresh actions
        actions: list[lsp.CodeAction] = []
        columns = ls.columns(published.text)
        for diag in published.diagnostics:
            if not _overlaps(diag, params.range, columns):
                continue
            lsp_diag = _to_lsp(diag, columns)
            new = fixed_text(published, diag)
            if new is not None:
                description = getattr(diag.fix, "description", "") or "apply the fix"
                actions.append(lsp.CodeAction(
                    title=f"gradlint: {description} ({diag.code})", kind=lsp.CodeActionKind.QuickFix,
                    diagnostics=[lsp_diag], is_preferred=True,
                    edit=lsp.WorkspaceEdit(changes={uri: [_replace_edit(published.text, new, columns)]})))
            edit = noqa_edit(published.text, diag, columns)
            if edit is not None:
                actions.append(lsp.CodeAction(
                    title=f"gradlint: silence {diag.code} on this line (# noqa: {diag.code})",
                    kind=lsp.CodeActionKind.QuickFix, diagnostics=[lsp_diag],
                    edit=lsp.WorkspaceEdit(changes={uri: [edit]})))
        return actions

    return server


def serve() -> None:
    build_server().start_io()
