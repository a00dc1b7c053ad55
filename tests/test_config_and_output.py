"""pyproject configuration, suppressions, SARIF / GitHub output and statistics — via the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import SEED, run_cli

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


def _codes(proc) -> set[str]:
    return {d["code"] for d in json.loads(proc.stdout)["diagnostics"]}


def test_config_is_discovered_upward_and_applied(tmp_path: Path) -> None:
    root = _project(tmp_path, '[tool.gradlint]\nignore = ["GRD001"]\n')
    proc = run_cli("--format", "json", "models", cwd=root)
    assert _codes(proc) == {"GRD002"}
    proc = run_cli("--format", "json", "seed.py", "zero.py", cwd=root / "models")
    assert _codes(proc) == {"GRD002"}
    assert _codes(run_cli("--format", "json", "--isolated", "models", cwd=root)) == {"GRD001", "GRD002"}


def test_per_file_ignores_exclude_and_select(tmp_path: Path) -> None:
    root = _project(tmp_path, '[tool.gradlint]\nselect = ["GRD0"]\nextend-exclude = ["models/zero.py"]\n'
                              '[tool.gradlint.per-file-ignores]\n"models/seed.py" = ["GRD001"]\n')
    proc = run_cli("--format", "json", "models", cwd=root)
    assert proc.returncode == 0 and _codes(proc) == set()


def test_rule_thresholds_are_configurable(tmp_path: Path) -> None:
    root = _project(tmp_path, "[tool.gradlint.rules]\nvanishing-log10 = -9.0\nfrozen-log10 = -12.0\n")
    assert "GRD001" not in _codes(run_cli("--format", "json", "models", cwd=root))
    # The seed's first layer is frozen too (‖∂W‖/‖W‖ ≈ 1e-8): the ratio threshold alone keeps GRD001.
    (tmp_path / "ratio-only").mkdir()
    root = _project(tmp_path / "ratio-only", "[tool.gradlint.rules]\nvanishing-log10 = -9.0\n")
    assert "GRD001" in _codes(run_cli("--format", "json", "models", cwd=root))


def test_config_errors_name_the_key_and_the_file(tmp_path: Path) -> None:
    root = _project(tmp_path, '[tool.gradlint]\nselct = ["GRD001"]\n')
    proc = run_cli("models", cwd=root)
    assert proc.returncode == 2
    assert "selct" in proc.stderr and "pyproject.toml" in proc.stderr
    (root / "pyproject.toml").write_text("[tool.gradlint.rules]\nvanishing-log10 = 'low'\n")
    proc = run_cli("models", cwd=root)
    assert proc.returncode == 2 and "vanishing-log10" in proc.stderr
    (root / "pyproject.toml").write_text('[tool.gradlint]\nselect = ["NOPE1"]\n')
    assert run_cli("models", cwd=root).returncode == 2


def test_explicit_config_file(tmp_path: Path) -> None:
    root = _project(tmp_path, "")
    (root / "other.toml").write_text('[tool.gradlint]\nignore = ["GRD002"]\n')
    assert _codes(run_cli("--format", "json", "--config", "other.toml", "models", cwd=root)) == {"GRD001"}


def test_gradlint_ignore_comment_and_unused_suppressions(tmp_path: Path) -> None:
    path = tmp_path / "zero.py"
    path.write_text(ZERO.replace("nn.init.zeros_(self.fc1.weight)",
                                 "nn.init.zeros_(self.fc1.weight)  # gradlint: ignore[GRD002]"))
    assert run_cli(str(path)).returncode == 0
    path.write_text(ZERO.replace("class Net(nn.Module):", "class Net(nn.Module):  # noqa: GRD002"))
    assert run_cli(str(path)).returncode == 0  # a model's finding is silenced at its definition
    path.write_text(ZERO.replace("self.fc2 = nn.Linear(8, 1)", "self.fc2 = nn.Linear(8, 1)  # noqa: GRD001"))
    proc = run_cli("--format", "json", "--extend-select", "GRD100", str(path))
    assert {(d["code"], d["line"]) for d in json.loads(proc.stdout)["diagnostics"]} == {("GRD002", 7), ("GRD100", 6)}


def test_file_level_noqa(tmp_path: Path) -> None:
    path = tmp_path / "zero.py"
    path.write_text("# gradlint: noqa\n" + ZERO)
    assert run_cli(str(path)).returncode == 0


def test_sarif_output(tmp_path: Path) -> None:
    path = tmp_path / "seed.py"
    path.write_text(SEED)
    proc = run_cli("--format", "sarif", "seed.py", cwd=tmp_path)
    assert proc.returncode == 1
    sarif = json.loads(proc.stdout)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    (result,) = run["results"]
    assert result["ruleId"] == "GRD001" and rule_ids[result["ruleIndex"]] == "GRD001"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "seed.py"
    assert location["region"]["startLine"] == 4
    assert "help" in run["tool"]["driver"]["rules"][0]


def test_github_output(tmp_path: Path) -> None:
    path = tmp_path / "seed.py"
    path.write_text(SEED)
    proc = run_cli("--format", "github", "seed.py", cwd=tmp_path)
    assert proc.stdout.startswith("::error file=seed.py,line=4,col=11,endLine=7,")
    assert "title=GRD001 (saturating-activation-stack)::GRD001 " in proc.stdout


def test_statistics_and_output_file(tmp_path: Path) -> None:
    (tmp_path / "seed.py").write_text(SEED)
    (tmp_path / "zero.py").write_text(ZERO)
    proc = run_cli("--statistics", ".", cwd=tmp_path)
    assert "GRD001" in proc.stdout and "GRD002" in proc.stdout
    out = tmp_path / "report.json"
    proc = run_cli("--format", "json", "-o", str(out), ".", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(json.loads(out.read_text())["diagnostics"]) == 2


def test_baseline_reports_only_new_findings(tmp_path: Path) -> None:
    (tmp_path / "seed.py").write_text(SEED)
    baseline = tmp_path / "gradlint-baseline.json"
    first = run_cli("--baseline", str(baseline), ".", cwd=tmp_path)
    assert first.returncode == 0 and baseline.exists()
    # The report says what happened (not "All checks passed!" while it recorded a finding).
    assert f"Recorded 1 finding in {baseline}" in first.stdout and "All checks passed" not in first.stdout
    # Unrelated edits move the finding down two lines: still known.
    (tmp_path / "seed.py").write_text("# a comment\n# another\n" + SEED)
    assert run_cli("--baseline", str(baseline), ".", cwd=tmp_path).returncode == 0
    # A new problem is reported.
    (tmp_path / "zero.py").write_text(ZERO)
    proc = run_cli("--format", "json", "--baseline", str(baseline), ".", cwd=tmp_path)
    assert proc.returncode == 1 and _codes(proc) == {"GRD002"}
    assert run_cli("--baseline", str(baseline), "--update-baseline", ".", cwd=tmp_path).returncode == 0
    assert run_cli("--baseline", str(baseline), ".", cwd=tmp_path).returncode == 0


def test_unsafe_fix_rewrites_zero_init_atomically_and_idempotently(tmp_path: Path) -> None:
    path = tmp_path / "zero.py"
    source = ZERO.replace("nn.init.zeros_(self.fc1.weight)", "nn.init.zeros_(self.fc1.weight)  # keep me")
    path.write_text(source)
    diff = run_cli("--diff", "--unsafe-fixes", str(path))
    assert '-        nn.init.zeros_(self.fc1.weight)  # keep me' in diff.stdout
    assert '+        nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="relu")  # keep me' in diff.stdout
    assert path.read_text() == source  # --diff changes nothing
    assert run_cli("--fix", str(path)).returncode == 1  # the only fix is unsafe: nothing applied
    assert path.read_text() == source
    proc = run_cli("--fix", "--unsafe-fixes", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fixed = path.read_text()
    assert 'nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="relu")  # keep me' in fixed
    assert run_cli("--fix", "--unsafe-fixes", str(path)).returncode == 0
    assert path.read_text() == fixed  # a second run changes nothing


def test_keras_zero_init_fix(tmp_path: Path) -> None:
    path = tmp_path / "k.py"
    path.write_text("from keras import layers, Sequential\n"
                    "model = Sequential([layers.Dense(64, activation='tanh', kernel_initializer='zeros', "
                    "input_shape=(8,)),\n"
                    "                    layers.Dense(1)])\n")
    assert run_cli("--fix", "--unsafe-fixes", str(path)).returncode == 0
    assert "kernel_initializer='glorot_uniform'" in path.read_text()  # the file's own quote style


def test_sarif_validates_against_the_official_schema(tmp_path: Path) -> None:
    import importlib.util
    import sys

    import pytest

    from conftest import FIXTURES, ROOT

    schema_path = ROOT / ".venv" / "share" / "sarif" / "sarif-2.1.0-rtm.5.json"
    if not schema_path.exists():
        schema_path = Path(sys.prefix) / "share" / "sarif" / "sarif-2.1.0-rtm.5.json"
    if not schema_path.exists() or importlib.util.find_spec("jsonschema") is None:
        pytest.skip("the official SARIF schema is fetched by `make setup-test` (npm) and needs jsonschema")
    import jsonschema

    schema = json.loads(schema_path.read_text())
    proc = run_cli("--format", "sarif", str(FIXTURES))
    sarif = json.loads(proc.stdout)
    assert sarif["runs"][0]["results"], "the fixtures should produce findings to validate"
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(sarif), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


WIDE_ZERO = """\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 1)
        note = "ü😋"; nn.init.zeros_(self.fc1.weight)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu())
"""


def test_columns_count_characters_and_fixes_apply_after_non_ascii(tmp_path: Path) -> None:
    """ast counts columns in UTF-8 bytes; a finding after "ü😋" is at the character column (as ruff
    reports it, as SARIF and editors expect), and its fix still finds the call it rewrites."""
    path = tmp_path / "wide.py"
    path.write_text(WIDE_ZERO, encoding="utf-8")
    line = WIDE_ZERO.splitlines()[8]
    proc = run_cli("--no-cache", "--format", "json", str(path))
    (diag,) = json.loads(proc.stdout)["diagnostics"]
    assert (diag["code"], diag["line"], diag["column"]) == ("GRD002", 9, line.index("nn.init") + 1)
    assert diag["end_column"] == line.index(")") + 2
    proc = run_cli("--no-cache", "--fix", "--unsafe-fixes", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert path.read_text(encoding="utf-8") == WIDE_ZERO.replace(
        "nn.init.zeros_(self.fc1.weight)", 'nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="relu")')
