"""The language server end to end: `gradlint server` runs as a subprocess and a real LSP
client (pytest-lsp) talks to it over stdio."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytest_lsp = pytest.importorskip("pytest_lsp")
lsp = pytest.importorskip("lsprotocol.types")

from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

DEEP = """\
import torch.nn as nn
layers = []
for _ in range(10):
    layers += [nn.Linear(64, 64), nn.Sigmoid()]
model = nn.Sequential(*layers)
"""
ZERO = """\
import torch.nn as nn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 1)
        nn.init.zeros_(self.fc1.weight)
    def forward(self, x):
        return self.fc2(self.fc1(x).relu())
"""
CLEAN = "import torch.nn as nn\nmodel = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))\n"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "gradlint", "server"]))
async def client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("workspace")
    await lsp_client.initialize_session(lsp.InitializeParams(
        capabilities=pytest_lsp.client_capabilities("visual-studio-code"),
        root_uri=root.as_uri(), workspace_folders=[lsp.WorkspaceFolder(uri=root.as_uri(), name="ws")]))
    lsp_client.root = root  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def _diagnostics(client: LanguageClient, uri: str, timeout: float = 60) -> list:
    """Wait for diagnostics of ``uri`` (the server lints off the request path)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while uri not in client.diagnostics:
        remaining = deadline - loop.time()
        assert remaining > 0, f"no diagnostics for {uri}; got {list(client.diagnostics)}"
        try:
            await asyncio.wait_for(client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), remaining)
        except asyncio.TimeoutError:
            pass
    return list(client.diagnostics[uri])


def _open(client: LanguageClient, name: str, text: str) -> str:
    path = client.root / name  # type: ignore[attr-defined]
    path.write_text(text)
    uri = path.as_uri()
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        text_document=lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    return uri


def _apply(text: str, edit: lsp.TextEdit) -> str:
    lines = text.splitlines(keepends=True)

    def offset(pos: lsp.Position) -> int:
        return sum(len(line) for line in lines[:pos.line]) + pos.character

    return text[:offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end):]


@pytest.mark.asyncio
async def test_python_file_diagnostics_and_hover(client: LanguageClient) -> None:
    uri = _open(client, "deep.py", DEEP)
    diagnostics = await _diagnostics(client, uri)
    assert [(d.code, d.range.start.line, d.range.start.character) for d in diagnostics] == [("GRD001", 3, 15)]
    assert diagnostics[0].source == "gradlint" and diagnostics[0].severity == lsp.DiagnosticSeverity.Error

    hover = await client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=3, character=20)))
    assert hover is not None
    text = hover.contents.value
    assert "**GRD001**" in text and "10 stacked sigmoid layers" in text
    assert "weight-gradient ratio first/last ≈ 10^-" in text  # the estimate, not only the message
    assert "**Per layer**" in text and "act=sigmoid" in text and "∂W" in text  # as gradlint inspect prints it
    nothing = await client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=0, character=0)))
    assert nothing is None


@pytest.mark.asyncio
async def test_change_is_linted_again(client: LanguageClient) -> None:
    uri = _open(client, "edit.py", DEEP)
    assert await _diagnostics(client, uri)
    del client.diagnostics[uri]
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=CLEAN)]))
    assert await _diagnostics(client, uri) == []
    # Saving lints again (a save without a change republishes the same result).
    del client.diagnostics[uri]
    client.text_document_did_save(lsp.DidSaveTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=uri)))
    assert await _diagnostics(client, uri) == []


@pytest.mark.asyncio
async def test_code_actions_fix_and_noqa(client: LanguageClient) -> None:
    uri = _open(client, "zero.py", ZERO)
    diagnostics = await _diagnostics(client, uri)
    (diag,) = [d for d in diagnostics if d.code == "GRD002"]
    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), range=diag.range,
        context=lsp.CodeActionContext(diagnostics=[diag])))
    assert actions is not None
    by_title = {a.title: a for a in actions}
    fix = next(a for t, a in by_title.items() if "kaiming" in t)
    (edit,) = fix.edit.changes[uri]
    fixed = _apply(ZERO, edit)
    assert fixed == ZERO.replace("nn.init.zeros_(self.fc1.weight)",
                                 'nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="relu")')
    noqa = next(a for t, a in by_title.items() if "noqa" in t)
    (edit,) = noqa.edit.changes[uri]
    assert "        nn.init.zeros_(self.fc1.weight)  # noqa: GRD002\n" in _apply(ZERO, edit)

    # The fixed text, sent back as the editor would after applying the action, is clean.
    del client.diagnostics[uri]
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=fixed)]))
    assert [d.code for d in await _diagnostics(client, uri)] == []


@pytest.mark.asyncio
async def test_notebook_cells_get_their_own_diagnostics(client: LanguageClient) -> None:
    root: Path = client.root  # type: ignore[attr-defined]
    notebook_uri = (root / "model.ipynb").as_uri()
    sources = ["# A deep sigmoid MLP", "!pip install torch\nimport torch.nn as nn", DEEP.split("\n", 1)[1],
               "model?"]
    kinds = [lsp.NotebookCellKind.Markup, lsp.NotebookCellKind.Code, lsp.NotebookCellKind.Code,
             lsp.NotebookCellKind.Code]
    cell_uris = [f"vscode-notebook-cell:{root / 'model.ipynb'}#cell{i}" for i in range(len(sources))]
    client.notebook_document_did_open(lsp.DidOpenNotebookDocumentParams(
        notebook_document=lsp.NotebookDocument(
            uri=notebook_uri, notebook_type="jupyter-notebook", version=1,
            cells=[lsp.NotebookCell(kind=k, document=u) for k, u in zip(kinds, cell_uris, strict=True)]),
        cell_text_documents=[
            lsp.TextDocumentItem(uri=u, language_id="markdown" if k == lsp.NotebookCellKind.Markup else "python",
                                 version=1, text=s)
            for k, u, s in zip(kinds, cell_uris, sources, strict=True)]))
    third = await _diagnostics(client, cell_uris[2])
    # Cell 3 (markdown counts, as in the CLI); line 3 of the cell, 0-based 2 in LSP.
    assert [(d.code, d.range.start.line, d.range.start.character) for d in third] == [("GRD001", 2, 15)]
    assert await _diagnostics(client, cell_uris[1]) == []
    assert await _diagnostics(client, cell_uris[3]) == []
    hover = await client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=cell_uris[2]), position=lsp.Position(line=2, character=16)))
    assert hover is not None and "GRD001" in hover.contents.value


@pytest.mark.asyncio
async def test_notebook_cell_code_action_fixes_the_cell(client: LanguageClient) -> None:
    root: Path = client.root  # type: ignore[attr-defined]
    notebook_uri = (root / "zero.ipynb").as_uri()
    imports, body = ZERO.split("\n", 1)
    sources = [f"%matplotlib inline\n{imports}", body]
    cell_uris = [f"vscode-notebook-cell:{root / 'zero.ipynb'}#c{i}" for i in range(2)]
    client.notebook_document_did_open(lsp.DidOpenNotebookDocumentParams(
        notebook_document=lsp.NotebookDocument(
            uri=notebook_uri, notebook_type="jupyter-notebook", version=1,
            cells=[lsp.NotebookCell(kind=lsp.NotebookCellKind.Code, document=u) for u in cell_uris]),
        cell_text_documents=[lsp.TextDocumentItem(uri=u, language_id="python", version=1, text=s)
                             for u, s in zip(cell_uris, sources, strict=True)]))
    (diag,) = await _diagnostics(client, cell_uris[1])
    assert diag.code == "GRD002" and diag.range.start.line == 5
    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri=cell_uris[1]), range=diag.range,
        context=lsp.CodeActionContext(diagnostics=[diag])))
    fix = next(a for a in actions or [] if "kaiming" in a.title)
    (edit,) = fix.edit.changes[cell_uris[1]]
    assert _apply(body, edit) == body.replace("nn.init.zeros_(self.fc1.weight)",
                                              'nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="relu")')


def test_server_without_pygls_prints_an_install_hint(tmp_path: Path) -> None:
    """The static install has no pygls: one line saying how to get it, exit 2."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('pygls', 'lsprotocol'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, _Block())\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "gradlint", "server"], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120, input="")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "pip install 'pygls>=2'" in proc.stderr


def _utf16_apply(text: str, edit: lsp.TextEdit) -> str:
    """Apply an edit whose positions count UTF-16 code units, as an editor does."""
    lines = text.splitlines(keepends=True)

    def offset(pos: lsp.Position) -> int:
        line = lines[pos.line] if pos.line < len(lines) else ""
        units, chars = 0, 0
        while units < pos.character and chars < len(line):
            units += 2 if ord(line[chars]) > 0xFFFF else 1
            chars += 1
        return sum(len(line) for line in lines[:pos.line]) + chars

    return text[:offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end):]


WIDE = """\
import torch.nn as nn
tag = "ünï😋"; model = nn.Sequential(*[m for _ in range(10) for m in (nn.Linear(64, 64), nn.Sigmoid())])
"""


@pytest.mark.asyncio
async def test_columns_are_utf16_code_units(client: LanguageClient) -> None:
    """LSP positions count UTF-16 code units: '😋' is two of them, 'ü' one; gradlint counts code points."""
    uri = _open(client, "wide.py", WIDE)
    (diag,) = await _diagnostics(client, uri)
    line = WIDE.splitlines()[1]
    start = len(line[:line.index("nn.Linear")].encode("utf-16-le")) // 2
    assert (diag.code, diag.range.start.line, diag.range.start.character) == ("GRD001", 1, start)
    assert diag.range.start.character == line.index("nn.Linear") + 1  # one more than the code-point column
    hover = await client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=1, character=start)))
    assert hover is not None and "**GRD001**" in hover.contents.value
    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), range=diag.range,
        context=lsp.CodeActionContext(diagnostics=[diag])))
    noqa = next(a for a in actions or [] if "noqa" in a.title)
    (edit,) = noqa.edit.changes[uri]
    assert _utf16_apply(WIDE, edit) == WIDE.replace("])\n", "])  # noqa: GRD001\n")
