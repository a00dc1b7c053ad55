"""Jupyter notebooks through the command line: discovery, cell locations in every format,
IPython magics, noqa, --fix/--diff byte for byte, cache, baselines, malformed files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES, run_cli

nbformat = pytest.importorskip("nbformat")  # test dependency only: gradlint reads notebooks with json
new_code_cell = nbformat.v4.new_code_cell
new_markdown_cell = nbformat.v4.new_markdown_cell
new_notebook = nbformat.v4.new_notebook

NOTEBOOKS = FIXTURES / "notebooks"
DEEP = NOTEBOOKS / "deep_sigmoid.ipynb"
ZERO_CELL = """\
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 1)
        nn.init.zeros_(self.fc1.weight)  # keep me
    def forward(self, x):
        return self.fc2(self.fc1(x).relu())"""


def _write(path: Path, *cells: object, **metadata: object) -> Path:
    nb = new_notebook(cells=list(cells))
    nb.metadata.update(metadata or {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                   "language": "python"}})
    nbformat.write(nb, str(path))
    return path


def _json(*args: str, cwd: Path | None = None) -> tuple[int, dict]:
    proc = run_cli("--format", "json", "--no-cache", *args, cwd=cwd)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_deep_sigmoid_is_reported_at_cell_3_in_text() -> None:
    proc = run_cli("--no-cache", str(DEEP))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith(f"{DEEP}:cell 3:3:16: GRD001 12 stacked sigmoid layers"), first
    # The snippet is the cell's own line, and line references in the message are cell lines.
    assert "    3 |     layers += [nn.Linear(64, 64), nn.Sigmoid()]" in proc.stdout
    assert "(line 3)" in first  # the cell-relative line (one line: named once)


def test_deep_sigmoid_json_has_cell_and_cell_relative_line() -> None:
    code, report = _json(str(DEEP))
    assert code == 1
    (diag,) = report["diagnostics"]
    assert (diag["code"], diag["cell"], diag["line"], diag["column"]) == ("GRD001", 3, 3, 16)


def test_deep_sigmoid_sarif_and_github_name_cell_3() -> None:
    raw_lines = DEEP.read_text().splitlines()
    sarif = run_cli("--format", "sarif", "--no-cache", str(DEEP))
    (result,) = json.loads(sarif.stdout)["runs"][0]["results"]
    assert result["properties"]["cell"] == 3 and result["properties"]["cellLine"] == 3
    location = result["locations"][0]
    assert location["logicalLocations"][0]["name"] == "cell 3"
    assert "[notebook cell 3, line 3]" in result["message"]["text"]
    # The region points into the .ipynb as stored: the JSON string holding the flagged line.
    region = location["physicalLocation"]["region"]
    raw = raw_lines[region["startLine"] - 1]
    assert '"    layers += [nn.Linear(64, 64), nn.Sigmoid()]\\n"' in raw
    assert raw[region["startColumn"] - 1:region["endColumn"] - 1] == "nn.Linear(64, 64)"

    github = run_cli("--format", "github", "--no-cache", str(DEEP))
    assert github.returncode == 1
    line = github.stdout.splitlines()[0]
    assert line.startswith("::error file=") and f"line={region['startLine']}," in line
    assert f"col={region['startColumn']}," in line and "[notebook cell 3, line 3]" in line


def test_clean_notebook_exits_0() -> None:
    proc = run_cli("--no-cache", str(NOTEBOOKS / "clean_relu.ipynb"))
    assert proc.returncode == 0, proc.stdout
    assert "All checks passed! (1 file, 1 model, 1 fully understood)" in proc.stdout


def test_magics_and_shell_escapes_lint() -> None:
    code, report = _json(str(NOTEBOOKS / "magics.ipynb"))
    assert code == 0 and report["diagnostics"] == [] and report["summary"]["models"] == 1


def test_magics_keep_locations_of_the_code_around_them(tmp_path: Path) -> None:
    path = _write(tmp_path / "nb.ipynb",
                  new_code_cell("!pip install torch\n%load_ext autoreload\nimport torch.nn as nn"),
                  new_code_cell("%%bash\necho this is not python (\n"),
                  new_code_cell("out = !ls\nx = %env HOME\nnn.Module??\n"
                                "layers = []\nfor _ in range(10):\n    !echo building\n"
                                "    layers += [nn.Linear(8, 8), nn.Sigmoid()]\nmodel = nn.Sequential(*layers)"))
    code, report = _json(str(path))
    assert code == 1
    assert [(d["code"], d["cell"], d["line"], d["column"]) for d in report["diagnostics"]] == [("GRD001", 3, 7, 16)]


def test_cell_magics_that_run_python_have_their_body_linted(tmp_path: Path) -> None:
    """%%time / %%capture run their body as Python: a model built there is linted (only the
    magic line is masked); %%bash's body is not Python and stays unlinted; autocall lines are masked."""
    path = _write(tmp_path / "nb.ipynb",
                  new_code_cell("import torch.nn as nn\n/print building\n,print a b\n;print"),
                  new_code_cell("%%time\nlayers = []\nfor _ in range(10):\n"
                                "    layers += [nn.Linear(8, 8), nn.Sigmoid()]\nmodel = nn.Sequential(*layers)"),
                  new_code_cell("%%capture out\n%matplotlib inline\n"
                                "net = nn.Sequential(*[m for _ in range(12) "
                                "for m in (nn.Linear(64, 64), nn.Sigmoid())])"),
                  new_code_cell("%%bash\nfor i in 1 2; do echo nn.Sigmoid ($i); done"))
    code, report = _json(str(path))
    assert code == 1
    assert [(d["code"], d["cell"], d["line"], d["column"]) for d in report["diagnostics"]] == [
        ("GRD001", 2, 4, 16), ("GRD001", 3, 3, 54)], report["diagnostics"]
    assert report["summary"]["models"] == 2


def test_directory_scan_finds_notebooks_and_exclude_applies(tmp_path: Path) -> None:
    shutil.copy(DEEP, tmp_path / "deep.ipynb")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    shutil.copy(DEEP, tmp_path / ".ipynb_checkpoints" / "deep-checkpoint.ipynb")
    code, report = _json(".", cwd=tmp_path)
    assert code == 1 and {d["path"] for d in report["diagnostics"]} == {"./deep.ipynb"}
    code, report = _json("--exclude", "*.ipynb", ".", cwd=tmp_path)
    assert code == 0 and report["summary"]["files"] == 0


def test_noqa_in_a_cell(tmp_path: Path) -> None:
    source = DEEP.read_text().replace("nn.Sigmoid()]\\n", "nn.Sigmoid()]  # noqa: GRD001\\n")
    assert source != DEEP.read_text()
    (tmp_path / "nb.ipynb").write_text(source)
    code, report = _json(str(tmp_path / "nb.ipynb"))
    assert code == 0 and report["diagnostics"] == []


def test_non_python_notebook_is_skipped(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.ipynb", new_code_cell("library(torch)\nnn_linear(3, 4)"),
                  kernelspec={"name": "ir", "display_name": "R", "language": "R"}, language_info={"name": "R"})
    code, report = _json(str(path))
    assert code == 0 and report["diagnostics"] == []


@pytest.mark.parametrize("content, message", [
    (b'{"cells": ["torch"', "invalid JSON"),
    (b'["torch"]', "no `cells` list"),
    (b'{"cells": [{"cell_type": "code", "source": 3}], "nbformat": 4, "x": "torch"}', "cell 1 has no valid"),
    (b'{"cells": [], "nbformat": 3, "x": "torch"}', "nbformat 3"),
    ('{"cells": [], "x": "torch"}'.encode("utf-16"), "UTF-16"),
    (b'{"cells": "torch \xff"}', "not UTF-8"),
])
def test_malformed_notebook_is_a_per_file_error(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "bad.ipynb").write_bytes(content)
    shutil.copy(DEEP, tmp_path / "good.ipynb")
    proc = run_cli("--format", "json", "--no-cache", str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    diags = json.loads(proc.stdout)["diagnostics"]
    assert ("good.ipynb", "GRD001") in {(Path(d["path"]).name, d["code"]) for d in diags}  # still linted
    bad = [d for d in diags if Path(d["path"]).name == "bad.ipynb"]
    assert [d["code"] for d in bad] == ["GRD900"] and message in bad[0]["message"], bad


def test_syntax_error_in_a_cell_is_reported_in_that_cell(tmp_path: Path) -> None:
    path = _write(tmp_path / "nb.ipynb", new_code_cell("import torch.nn as nn"), new_markdown_cell("text"),
                  new_code_cell("x = 1\nmodel = nn.Sequential(nn.Linear(2, 2)"))
    code, report = _json(str(path))
    (diag,) = report["diagnostics"]
    assert (code, diag["code"], diag["cell"]) == (1, "GRD901", 3)


def test_exported_py_with_shell_escapes_lints(tmp_path: Path) -> None:
    path = tmp_path / "exported.py"
    path.write_text("!pip install torch\n%cd /tmp\nimport torch.nn as nn\nlayers = []\nfor _ in range(10):\n"
                    "    layers += [nn.Linear(8, 8), nn.Sigmoid()]\nmodel = nn.Sequential(*layers)\n"
                    "x = (5\n     % 2)\n")
    code, report = _json(str(path))
    assert [(d["code"], d["line"], d["column"]) for d in report["diagnostics"]] == [("GRD001", 6, 16)]
    assert "cell" not in report["diagnostics"][0]
    # Python that is only a syntax error stays one.
    path.write_text("import torch.nn as nn\n!pip install torch\nmodel = nn.Sequential(\n")
    code, report = _json(str(path))
    assert code == 1 and [d["code"] for d in report["diagnostics"]] == ["GRD901"]


def _fixable_notebook(path: Path) -> Path:
    return _write(path, new_markdown_cell("# Zero init"),
                  new_code_cell("%matplotlib inline\nimport torch\nimport torch.nn as nn", execution_count=1),
                  new_code_cell(ZERO_CELL, execution_count=2),
                  new_code_cell("!nvidia-smi\nnet = Net()\nnet(torch.randn(2, 8))", execution_count=3,
                                outputs=[nbformat.v4.new_output("stream", name="stdout", text="tensor(...)\n")]))


def test_fix_changes_only_the_fixed_cell_byte_for_byte(tmp_path: Path) -> None:
    path = _fixable_notebook(tmp_path / "nb.ipynb")
    before = path.read_bytes()
    diff = run_cli("--diff", "--unsafe-fixes", "--no-cache", str(path))
    assert f"--- a/{path}:cell 3" in diff.stdout and f"+++ b/{path}:cell 3" in diff.stdout
    assert '+        nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="relu")  # keep me' in diff.stdout
    assert path.read_bytes() == before  # --diff changes nothing

    proc = run_cli("--fix", "--unsafe-fixes", "--no-cache", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"fixed 1 problem in {path}, cell 3 line 6" in proc.stderr
    after = path.read_bytes()
    old_line = b'"        nn.init.zeros_(self.fc1.weight)  # keep me\\n",'
    new_line = b'"        nn.init.kaiming_normal_(self.fc1.weight, nonlinearity=\\"relu\\")  # keep me\\n",'
    assert before.count(old_line) == 1
    assert after == before.replace(old_line, new_line)  # every other byte as it was
    assert run_cli("--fix", "--unsafe-fixes", "--no-cache", str(path)).returncode == 0
    assert path.read_bytes() == after


def test_fix_keeps_a_hand_formatted_notebook_layout(tmp_path: Path) -> None:
    path = _fixable_notebook(tmp_path / "nb.ipynb")
    raw = json.loads(path.read_text())
    raw["metadata"] = {"z_last": 1, "a_first": {"nested": [1, 2]}}  # key order is not sorted
    text = json.dumps(raw, indent=2, ensure_ascii=True)  # another indentation
    path.write_text(text)
    assert run_cli("--fix", "--unsafe-fixes", "--no-cache", str(path)).returncode == 0
    fixed = path.read_text()
    assert fixed == text.replace('nn.init.zeros_(self.fc1.weight)', 'nn.init.kaiming_normal_(self.fc1.weight, '
                                                                    'nonlinearity=\\"relu\\")')


def test_cache_returns_the_same_notebook_result(tmp_path: Path) -> None:
    shutil.copy(DEEP, tmp_path / "deep.ipynb")
    cache = tmp_path / "cache"
    cold = run_cli("--format", "json", "--cache-dir", str(cache), "deep.ipynb", cwd=tmp_path)
    warm = run_cli("--format", "json", "--cache-dir", str(cache), "deep.ipynb", cwd=tmp_path)
    assert any(cache.rglob("*.json"))
    assert json.loads(cold.stdout) == json.loads(warm.stdout)
    assert json.loads(warm.stdout)["diagnostics"][0]["cell"] == 3
    text = run_cli("--cache-dir", str(cache), "deep.ipynb", cwd=tmp_path)
    assert "deep.ipynb:cell 3:3:16: GRD001" in text.stdout


def test_baseline_keeps_notebook_findings_matched(tmp_path: Path) -> None:
    shutil.copy(DEEP, tmp_path / "deep.ipynb")
    baseline = tmp_path / "baseline.json"
    first = run_cli("--baseline", str(baseline), ".", cwd=tmp_path)
    assert first.returncode == 0 and "recorded 1 finding" in (first.stdout + first.stderr).lower()
    # A new cell above moves the model to cell 4: still the known finding.
    raw = json.loads((tmp_path / "deep.ipynb").read_text())
    raw["cells"].insert(1, {"cell_type": "code", "execution_count": None, "id": "new", "metadata": {},
                            "outputs": [], "source": ["print('hello')"]})
    (tmp_path / "deep.ipynb").write_text(json.dumps(raw, indent=1))
    assert run_cli("--baseline", str(baseline), ".", cwd=tmp_path).returncode == 0
    assert ":cell 4:3:16: GRD001" in run_cli("--no-cache", ".", cwd=tmp_path).stdout


def test_fix_in_an_exported_py_keeps_its_shell_escapes(tmp_path: Path) -> None:
    path = tmp_path / "exported.py"
    source = "!pip install torch\nimport torch.nn as nn\n" + ZERO_CELL.replace(
        "        nn.init.zeros_", "        %time\n        nn.init.zeros_") + "\n"
    path.write_text(source)
    proc = run_cli("--fix", "--unsafe-fixes", "--no-cache", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert path.read_text() == source.replace("nn.init.zeros_(self.fc1.weight)",
                                              'nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="relu")')


def test_dynamic_check_builds_a_notebook_model(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    path = _write(tmp_path / "nb.ipynb", new_code_cell("!pip install torch\nimport torch.nn as nn"),
                  new_markdown_cell("The model:"),
                  new_code_cell("layers = []\nfor _ in range(10):\n    layers += [nn.Linear(32, 32), nn.Sigmoid()]\n"
                                "model = nn.Sequential(*layers)\n%time model"),
                  new_code_cell("raise RuntimeError('cells after the model are not run')"))
    proc = run_cli("--dynamic", "--format", "json", "--seeds", "1", "--no-cache", str(path))
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    (result,) = report["dynamic"]
    assert (result["status"], result["verdict"]) == ("measured", "vanishing"), result
    (diag,) = report["diagnostics"]
    assert diag["cell"] == 3 and diag["dynamic"]["status"] == "confirmed"
