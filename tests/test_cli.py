"""The command line as users run it: exit codes, formats, selection, stdin, bad input."""

from __future__ import annotations

import json
from pathlib import Path

from gradlint.rule import all_rules

from conftest import SEED, run_cli


def test_findings_exit_1_and_text_format(tmp_path: Path) -> None:
    path = tmp_path / "seed.py"
    path.write_text(SEED)
    proc = run_cli(str(path))
    assert proc.returncode == 1, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith(f"{path}:4:")
    assert " GRD001 " in first
    assert "Found 1 problem" in proc.stdout


def test_clean_exit_0(tmp_path: Path) -> None:
    path = tmp_path / "ok.py"
    path.write_text("import torch.nn as nn\nmodel = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))\n")
    proc = run_cli(str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "All checks passed" in proc.stdout


def test_json_shape(tmp_path: Path) -> None:
    path = tmp_path / "seed.py"
    path.write_text(SEED)
    proc = run_cli("--format", "json", str(path))
    assert proc.returncode == 1
    payload = json.loads(proc.stdout)
    (diag,) = payload["diagnostics"]
    assert {"path", "line", "column", "end_line", "end_column", "code", "name", "severity", "message",
            "model"} <= diag.keys()
    assert diag["code"] == "GRD001" and diag["model"] == "model"
    assert diag["severity"] in ("warning", "error")
    assert diag["estimate"]["layers"] == 12 and diag["estimate"]["log10_gain"] < -3
    assert payload["summary"]["diagnostics"] == 1


def test_select_and_ignore(tmp_path: Path) -> None:
    path = tmp_path / "seed.py"
    path.write_text(SEED)
    assert run_cli("--ignore", "GRD001", str(path)).returncode == 0
    assert run_cli("--select", "GRD002", str(path)).returncode == 0
    assert run_cli("--select", "GRD", str(path)).returncode == 1
    # As in ruff, the more specific code wins over the prefix.
    assert run_cli("--ignore", "GRD", "--extend-select", "GRD001", str(path)).returncode == 1
    assert run_cli("--select", "GRD", "--ignore", "GRD001", str(path)).returncode == 0
    bad = run_cli("--select", "XYZ123", str(path))
    assert bad.returncode == 2 and "unknown rule code" in bad.stderr


def test_noqa(tmp_path: Path) -> None:
    path = tmp_path / "seed.py"
    path.write_text(SEED.replace("input_shape=(20,)))", "input_shape=(20,)))  # noqa: GRD001"))
    assert run_cli(str(path)).returncode == 0
    path.write_text(SEED.replace("model = Sequential()", "model = Sequential()  # noqa"))
    assert run_cli(str(path)).returncode == 0
    path.write_text(SEED.replace("input_shape=(20,)))", "input_shape=(20,)))  # noqa: E501"))
    assert run_cli(str(path)).returncode == 1


def test_stdin(tmp_path: Path) -> None:
    proc = run_cli("-", "--stdin-filename", "model.py", input=SEED.encode())
    assert proc.returncode == 1
    assert proc.stdout.startswith("model.py:4:")


def test_unparsable_and_missing_files_are_reported_and_the_rest_is_linted(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import torch\nclass X(:\n")
    (tmp_path / "latin.py").write_bytes(b"import torch\nx = '\xff\xfe'\n")
    (tmp_path / "nul.py").write_bytes(b"import torch\x00\n")
    (tmp_path / "seed.py").write_text(SEED)
    proc = run_cli("--format", "json", str(tmp_path), str(tmp_path / "missing.py"))
    assert proc.returncode == 1
    codes = {(Path(d["path"]).name, d["code"]) for d in json.loads(proc.stdout)["diagnostics"]}
    assert ("broken.py", "GRD901") in codes
    assert ("latin.py", "GRD900") in codes
    assert ("nul.py", "GRD901") in codes
    assert ("missing.py", "GRD900") in codes
    assert ("seed.py", "GRD001") in codes


def test_pep263_cookie_is_honoured(tmp_path: Path) -> None:
    path = tmp_path / "latin1.py"
    path.write_bytes(b"# -*- coding: latin-1 -*-\nimport torch.nn as nn\nname = '\xe9'\n"
                     b"model = nn.Sequential(nn.Linear(4, 4))\n")
    assert run_cli(str(path)).returncode == 0


def test_skips_virtualenvs_and_excluded(tmp_path: Path) -> None:
    venv = tmp_path / "env1"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text("home = /usr\n")
    (venv / "seed.py").write_text(SEED)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "seed.py").write_text(SEED)
    (tmp_path / "skipme").mkdir()
    (tmp_path / "skipme" / "seed.py").write_text(SEED)
    assert run_cli(str(tmp_path), "--exclude", "skipme").returncode == 0
    assert run_cli(str(tmp_path)).returncode == 1


def test_rules_and_explain() -> None:
    proc = run_cli("rules")
    assert proc.returncode == 0 and "GRD001" in proc.stdout and "saturating-activation-stack" in proc.stdout
    # explain prints the rule's rendered docs (their content is tested in test_rule_examples.py), by code or name.
    docs = all_rules()["GRD001"].docs()
    for key in ("GRD001", "grd001", "saturating-activation-stack"):
        proc = run_cli("explain", key)
        assert proc.returncode == 0 and proc.stdout == docs + "\n", key
    proc = run_cli("explain", "NOPE999")
    assert proc.returncode == 2 and "unknown rule" in proc.stderr and not proc.stdout


def test_exit_zero(tmp_path: Path) -> None:
    path = tmp_path / "seed.py"
    path.write_text(SEED)
    assert run_cli("--exit-zero", str(path)).returncode == 0
