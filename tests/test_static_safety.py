"""Static linting never imports or runs the code it lints, nor a heavy framework."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT, run_cli


def test_linted_code_is_never_executed(tmp_path: Path) -> None:
    canary = tmp_path / "canary.txt"
    (tmp_path / "evil.py").write_text(
        "import torch.nn as nn\n"
        f"open({str(canary)!r}, 'w').write('ran')\n"
        "raise SystemExit('imported!')\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        f"        open({str(canary)!r}, 'w').write('ran')\n"
        "        self.fc = nn.Linear(4, 4)\n"
        "    def forward(self, x):\n"
        "        return self.fc(x)\n"
        "model = Net()\n"
    )
    proc = run_cli(str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not canary.exists()


def test_cli_import_does_not_load_torch_keras_tensorflow() -> None:
    code = ("import sys, gradlint.cli, gradlint.engine, gradlint.dynamic\n"
            "heavy = [m for m in ('torch', 'keras', 'tensorflow', 'numpy') if m in sys.modules]\n"
            "print(','.join(heavy))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_linting_a_directory_of_models_does_not_load_torch(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("import torch\nimport torch.nn as nn\nm = nn.Sequential(nn.Linear(2, 2))\n")
    code = ("import sys\nfrom gradlint.engine import lint_paths, LintConfig\n"
            f"list(lint_paths([{str(tmp_path)!r}], LintConfig()))\n"
            "print('torch' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.strip() == "False", proc.stderr
