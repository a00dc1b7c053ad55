"""Issue 14: the rough edges a first-time user trips over, each tried through the CLI as users run it."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from conftest import ROOT, run_cli

SEED = """\
from tensorflow.keras.layers import Dense
from tensorflow.keras.models import Sequential
model = Sequential()
model.add(Dense(64, activation='sigmoid', input_shape=(20,)))
for _ in range(10):
    model.add(Dense(64, activation='sigmoid'))
model.add(Dense(1, activation='sigmoid'))
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


def _project(tmp_path: Path, config: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(config)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "seed.py").write_text(SEED)
    (tmp_path / "models" / "zero.py").write_text(ZERO)
    return tmp_path


def _codes(proc) -> set[str]:  # type: ignore[no-untyped-def]
    return {d["code"] for d in json.loads(proc.stdout)["diagnostics"]}


# ---------------------------------------------------------------------- configuration


def test_malformed_pyproject_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    root = _project(tmp_path, '[tool.gradlint\nignore = ["GRD001"]\n')
    proc = run_cli("models", cwd=root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{root / 'pyproject.toml'}:1:" in proc.stderr and "not valid TOML" in proc.stderr
    assert "Traceback" not in proc.stderr
    (root / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.gradlint]\nignore = ["GRD001"\n')
    proc = run_cli("models", cwd=root)
    assert proc.returncode == 2
    assert "pyproject.toml:5: not valid TOML: Unclosed array" in proc.stderr, proc.stderr
    # --config FILE names the line as well.
    (root / "other.toml").write_text("[tool.gradlint]\nselect = [\n")
    proc = run_cli("--config", "other.toml", "models", cwd=root)
    assert proc.returncode == 2 and "other.toml:2: not valid TOML" in proc.stderr, proc.stderr


def test_rule_names_are_accepted_wherever_codes_are(tmp_path: Path) -> None:
    seed = tmp_path / "seed.py"
    seed.write_text(SEED)
    proc = run_cli("--format", "json", "--select", "saturating-activation-stack", str(seed))
    assert proc.returncode == 1 and _codes(proc) == {"GRD001"}
    assert run_cli("--ignore", "saturating-activation-stack", str(seed)).returncode == 0
    assert run_cli("--select", "constant-weight-init,GRD9", str(seed)).returncode == 0
    noqa = tmp_path / "noqa.py"
    noqa.write_text(ZERO.replace("self.fc2 = nn.Linear(8, 1)", "self.fc2 = nn.Linear(8, 1)  # noqa: GRD001"))
    proc = run_cli("--format", "json", "--extend-select", "unused-suppression", str(noqa))
    assert _codes(proc) == {"GRD002", "GRD100"}
    bad = run_cli("--select", "saturating-activation-stak", str(seed))
    assert bad.returncode == 2 and "saturating-activation-stak" in bad.stderr

    (tmp_path / "p").mkdir()
    root = _project(tmp_path / "p", '[tool.gradlint]\nignore = ["constant-weight-init"]\n'
                                    '[tool.gradlint.per-file-ignores]\n'
                                    '"models/seed.py" = ["saturating-activation-stack"]\n')
    proc = run_cli("--format", "json", "models", cwd=root)
    assert proc.returncode == 0 and _codes(proc) == set(), proc.stdout
    (root / "pyproject.toml").write_text('[tool.gradlint]\nselect = ["saturating-activation-stack"]\n'
                                         'extend-select = ["constant-weight-init"]\n')
    assert _codes(run_cli("--format", "json", "models", cwd=root)) == {"GRD001", "GRD002"}
    (root / "pyproject.toml").write_text('[tool.gradlint.per-file-ignores]\n"models/*" = ["no-such-rule"]\n')
    proc = run_cli("models", cwd=root)
    assert proc.returncode == 2 and "per-file-ignores" in proc.stderr and "no-such-rule" in proc.stderr


# ---------------------------------------------------------------------- output


def test_output_file_problems_are_a_clear_error(tmp_path: Path) -> None:
    seed = tmp_path / "seed.py"
    seed.write_text(SEED)
    for target in (tmp_path / "no" / "such" / "dir" / "report.txt", tmp_path):
        proc = run_cli("-o", str(target), str(seed))
        assert proc.returncode == 2, (target, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr and str(target) in proc.stderr, proc.stderr
    proc = run_cli("-o", str(tmp_path / "no" / "report.txt"), str(seed))
    assert "cannot write the report" in proc.stderr and "does not exist" in proc.stderr


def test_statistics_honours_every_format(tmp_path: Path) -> None:
    (tmp_path / "seed.py").write_text(SEED)
    (tmp_path / "zero.py").write_text(ZERO)
    proc = run_cli("--statistics", "--format", "json", ".", cwd=tmp_path)
    assert proc.returncode == 1
    rows = json.loads(proc.stdout)  # ruff's shape: a list of {code, name, count, fixable}
    assert {(r["code"], r["name"], r["count"]) for r in rows} == {
        ("GRD001", "saturating-activation-stack", 1), ("GRD002", "constant-weight-init", 1)}
    assert all(isinstance(r["fixable"], bool) for r in rows)
    proc = run_cli("--statistics", "--format", "github", ".", cwd=tmp_path)
    assert proc.returncode == 1
    assert all(line.startswith("::notice ") for line in proc.stdout.splitlines()), proc.stdout
    assert "GRD001 (saturating-activation-stack): 1 finding" in proc.stdout
    proc = run_cli("--statistics", "--format", "sarif", ".", cwd=tmp_path)
    assert proc.returncode == 2 and "--statistics" in proc.stderr and "sarif" in proc.stderr
    text = run_cli("--statistics", ".", cwd=tmp_path)
    assert re.search(r"^\s+1\s+GRD001\s+saturating-activation-stack", text.stdout, re.M), text.stdout
    assert text.stdout.rstrip().endswith("Found 2 problems.")


def test_color_forces_colour_into_a_pipe(tmp_path: Path) -> None:
    seed = tmp_path / "seed.py"
    seed.write_text(SEED)
    assert "\033[" in run_cli("--color", str(seed)).stdout
    assert "\033[" not in run_cli(str(seed)).stdout
    assert "\033[" not in run_cli("--no-color", str(seed)).stdout


def test_stdin_shows_the_source_snippet() -> None:
    for args in (("-", "--stdin-filename", "model.py"), ("-",)):
        proc = run_cli(*args, input=SEED.encode())
        assert proc.returncode == 1
        lines = proc.stdout.splitlines()
        assert lines[1] == "    4 | model.add(Dense(64, activation='sigmoid', input_shape=(20,)))", proc.stdout
        assert lines[2].lstrip().startswith("|") and "^" in lines[2]


# ---------------------------------------------------------------------- rules and clean


def test_rules_text_lists_every_code_aligned() -> None:
    proc = run_cli("rules")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    codes = [line.split()[0] for line in lines]
    registry = [r["code"] for r in json.loads(run_cli("rules", "--format", "json").stdout)]
    assert codes == registry, proc.stdout  # every rule, as the registry lists them
    assert {"GRD001", "GRD009", "GRD100", "GRD900", "GRD901", "GRD902", "GRD903"} <= set(codes)
    # Every summary starts in the same column, whatever the name's length.
    starts = {re.match(r"GRD\d{3}  \S+\s+(?:on |off)  (?:fix|   )  ", line).end() for line in lines}  # type: ignore[union-attr]
    assert len(starts) == 1, proc.stdout
    grd100 = next(line for line in lines if line.startswith("GRD100"))
    assert re.match(r"GRD100  unused-suppression\s+off ", grd100)
    table = run_cli("rules", "--format", "markdown").stdout
    assert "| GRD100 | `unused-suppression` | off |" in table
    assert "| GRD100 | `unused-suppression` | off |" in (ROOT / "README.md").read_text(encoding="utf-8")
    rows = json.loads(run_cli("rules", "--format", "json").stdout)
    assert {r["code"]: r["default"] for r in rows}["GRD100"] is False


def test_clean_cache_dir_has_help() -> None:
    proc = run_cli("clean", "--help")
    option = re.search(r"^\s*--cache-dir(?: DIRECTORY)?[ ]+(\S.*)$", proc.stdout, re.M)
    assert option and "cache" in option.group(1), proc.stdout


# ---------------------------------------------------------------------- baselines


def test_baseline_says_what_it_recorded_and_what_it_hid(tmp_path: Path) -> None:
    (tmp_path / "seed.py").write_text(SEED)
    baseline = tmp_path / "base.json"
    first = run_cli("--baseline", str(baseline), ".", cwd=tmp_path)
    assert first.returncode == 0
    assert f"Recorded 1 finding in {baseline}" in first.stdout and "All checks passed" not in first.stdout
    later = run_cli("--baseline", str(baseline), ".", cwd=tmp_path)
    assert later.returncode == 0
    assert f"1 known finding hidden by the baseline {baseline}" in later.stdout, later.stdout
    (tmp_path / "zero.py").write_text(ZERO)
    mixed = run_cli("--baseline", str(baseline), ".", cwd=tmp_path)
    assert mixed.returncode == 1 and "Found 1 problem" in mixed.stdout and "1 known finding hidden" in mixed.stdout
    machine = run_cli("--format", "json", "--baseline", str(baseline), ".", cwd=tmp_path)
    assert json.loads(machine.stdout)["summary"]["baseline"] == {"path": str(baseline), "recorded": None, "hidden": 1}
    assert "1 known finding hidden" in machine.stderr


def test_update_baseline_without_baseline_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "seed.py").write_text(SEED)
    proc = run_cli("--update-baseline", ".", cwd=tmp_path)
    assert proc.returncode == 2 and "--baseline" in proc.stderr


# ---------------------------------------------------------------------- structure (issue 10)


def test_reporters_do_not_import_the_engine() -> None:
    for path in (ROOT / "gradlint" / "reporters").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not any(name and name.startswith("gradlint.engine") for name in imported), path


def _complexity(func: ast.AST) -> int:
    """McCabe's number as ruff's C901 counts it: 1 + branches (if/elif, loops, except, case)."""
    count = 1
    for node in ast.walk(func):
        if isinstance(node, (ast.If, ast.For, ast.AsyncFor, ast.While, ast.ExceptHandler, ast.match_case)):
            count += 1
    return count


def test_cli_functions_stay_small() -> None:
    tree = ast.parse((ROOT / "gradlint" / "cli.py").read_text(encoding="utf-8"))
    worst = {node.name: _complexity(node) for node in ast.walk(tree)
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    assert max(worst.values()) <= 12, sorted(worst.items(), key=lambda kv: -kv[1])[:3]


# ---------------------------------------------------------------------- messages


def test_grd001_names_one_line_once(tmp_path: Path) -> None:
    path = tmp_path / "loop.py"
    path.write_text("import torch.nn as nn\n"
                    "model = nn.Sequential(*[m for _ in range(12) for m in (nn.Linear(64, 64), nn.Sigmoid())],\n"
                    "                      nn.Linear(64, 1))\n")
    proc = run_cli("--format", "json", str(path))
    (diag,) = [d for d in json.loads(proc.stdout)["diagnostics"] if d["code"] == "GRD001"]
    assert "(line 2)" in diag["message"] and "to line" not in diag["message"], diag["message"]


TANH_ZERO = """\
import torch.nn as nn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 16)
        self.fc3 = nn.Linear(16, 1)
        nn.init.zeros_(self.fc2.weight)
    def forward(self, x):
        return self.fc3(self.fc2(self.fc1(x).ACT()).ACT())
"""


def test_grd002_message_follows_the_activation(tmp_path: Path) -> None:
    messages = {}
    for act in ("tanh", "relu"):
        path = tmp_path / f"{act}.py"
        path.write_text(TANH_ZERO.replace("ACT", act))
        proc = run_cli("--format", "json", str(path))
        (diag,) = [d for d in json.loads(proc.stdout)["diagnostics"] if d["code"] == "GRD002"]
        messages[act] = diag["message"]
    assert "ReLU" not in messages["tanh"] and "relu" not in messages["tanh"], messages["tanh"]
    assert "Glorot/xavier init, the scheme for tanh" in messages["tanh"]
    assert "He/kaiming init, the scheme for relu" in messages["relu"]
    # True whatever the activation: zero weights pass no gradient back to the layers before them.
    assert all("no gradient flows back through zero weights" in m for m in messages.values())


def test_explain_grd903_gives_advice() -> None:
    for name in ("GRD903", "too-complex"):
        proc = run_cli("explain", name)
        assert proc.returncode == 0
        assert "## What to do" in proc.stdout and "--dynamic" in proc.stdout and "noqa: GRD903" in proc.stdout


NESTED = """\
import torch.nn as nn
x = nn.Linear(4, 4)
for _ in range(6):
    x = nn.Sequential(*[x] * 8)

model = nn.Sequential(*[m for _ in range(12) for m in (nn.Linear(64, 64), nn.Sigmoid())], nn.Linear(64, 1))
"""
TRAINING_LOOP = """\
import torch
import torch.nn as nn

model = nn.Sequential(*[m for _ in range(12) for m in (nn.Linear(64, 64), nn.Sigmoid())], nn.Linear(64, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x = torch.randn(32, 64)
for epoch in range(500):
    for step in range(500):
        opt.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
"""


def test_grd903_says_precisely_what_was_skipped(tmp_path: Path) -> None:
    path = tmp_path / "nested.py"
    path.write_text(NESTED)  # x: 8**6 Linear layers; model: a deep sigmoid stack
    proc = run_cli("--format", "json", "--no-cache", str(path))
    diags = json.loads(proc.stdout)["diagnostics"]
    (note,) = [d for d in diags if d["code"] == "GRD903"]
    assert note["message"].startswith("model x ") and "not checked" in note["message"], note["message"]
    assert "module body" not in note["message"]
    # The other model in the same module is still checked (and reported).
    assert any(d["code"] == "GRD001" and d["line"] == 6 for d in diags), diags


def test_training_loops_spend_no_budget(tmp_path: Path) -> None:
    """A 250,000-step training loop: one iteration tells the interpreter all there is to know."""
    import time

    head, loop = TRAINING_LOOP.split("for epoch", 1)
    in_function = head + "def main():\n" + "".join(f"    {line}\n" for line in ("for epoch" + loop).splitlines())
    for name, source in (("module_level.py", TRAINING_LOOP), ("in_function.py", in_function)):
        path = tmp_path / name
        path.write_text(source)
        started = time.monotonic()
        proc = run_cli("--format", "json", "--no-cache", str(path))
        seconds = time.monotonic() - started
        codes = [d["code"] for d in json.loads(proc.stdout)["diagnostics"]]
        assert "GRD903" not in codes and "GRD001" in codes, (name, codes)
        assert seconds < 20, seconds


# ---------------------------------------------------------------------- README and Makefile


def test_readme_sample_output_is_what_gradlint_prints() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```\n\$ gradlint (fixtures/keras/seed_sigmoid_deep\.py)\n(.*?)```\n", readme, re.S)
    assert match, "README lacks the sample run"
    proc = run_cli("--no-cache", match.group(1))
    assert proc.stdout == match.group(2)
    assert "12 stacked sigmoid layers" in proc.stdout and "12 sigmoid `Dense` layers" in readme
    assert "11 sigmoid" not in readme


def test_make_demo_does_not_look_like_a_failure() -> None:
    import os
    import shutil
    import subprocess
    import sys

    if shutil.which("make") is None:
        import pytest

        pytest.skip("make is not installed")
    # -o setup: use this interpreter's environment instead of (re)building .venv.
    proc = subprocess.run(["make", "-o", "setup", "demo", f"BIN={Path(sys.executable).parent}"], cwd=ROOT,
                          capture_output=True, text=True, env=dict(os.environ, NO_COLOR="1"), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Error" not in proc.stdout + proc.stderr and "ignored" not in proc.stdout + proc.stderr
    assert "exits 1 (expected)" in proc.stdout and "All checks passed!" in proc.stdout
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    demo = makefile[makefile.index("demo: setup"):].split("\n\n")[0]
    comment = makefile[:makefile.index("demo: setup")].rstrip().splitlines()[-2:]
    assert "torchvision" not in demo + "\n".join(comment)


def test_docs_cite_only_files_in_the_repository() -> None:
    docs = [ROOT / "README.md", ROOT / "fixtures" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    missing = []
    for doc in docs:
        text = doc.read_text(encoding="utf-8")
        for m in re.finditer(r"`([A-Za-z0-9_.][\w./-]*/[\w./-]+\.(?:md|py|json|toml|txt|yaml|expected))"
                             r"(?:::[\w\[\]-]+)?`", text):
            # Fixtures are named by their path under fixtures/ (torch/glu_conv1d.py) in the docs.
            if not any((base / m.group(1)).exists() for base in (ROOT, doc.parent, ROOT / "fixtures")):
                missing.append(f"{doc.name}: {m.group(1)}")
        for m in re.finditer(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            if not (doc.parent / m.group(1)).exists():
                missing.append(f"{doc.name}: {m.group(1)}")
    assert not missing, missing
