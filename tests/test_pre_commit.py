"""The real pre-commit runs gradlint from this checkout's .pre-commit-hooks.yaml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

BAD = """\
import torch.nn as nn
layers = []
for _ in range(10):
    layers += [nn.Linear(64, 64), nn.Sigmoid()]
model = nn.Sequential(*layers)
"""
GOOD = "import torch.nn as nn\nmodel = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))\n"


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_pre_commit_hook_blocks_bad_model_and_passes_good(tmp_path: Path) -> None:
    pre_commit = Path(sys.executable).with_name("pre-commit")
    if not pre_commit.exists():
        pytest.skip("pre-commit is not installed (make setup-test installs it)")
    repo = tmp_path / "project"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "dev@example.com")
    _git(repo, "config", "user.name", "dev")
    env = dict(os.environ, PRE_COMMIT_HOME=str(tmp_path / "cache"), NO_COLOR="1")
    env.pop("VIRTUAL_ENV", None)

    def try_repo(name: str) -> subprocess.CompletedProcess[str]:
        _git(repo, "add", name)
        return subprocess.run([str(pre_commit), "try-repo", str(ROOT), "gradlint", "--files", name],
                              cwd=repo, capture_output=True, text=True, env=env, timeout=900)

    (repo / "bad_model.py").write_text(BAD)
    bad = try_repo("bad_model.py")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "GRD001" in bad.stdout and "bad_model.py:4:" in bad.stdout

    (repo / "good_model.py").write_text(GOOD)
    good = try_repo("good_model.py")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_pre_commit_hook_lints_notebooks(tmp_path: Path) -> None:
    """types_or includes jupyter: a staged notebook is linted, reported at its cell."""
    pre_commit = Path(sys.executable).with_name("pre-commit")
    if not pre_commit.exists():
        pytest.skip("pre-commit is not installed (make setup-test installs it)")
    repo = tmp_path / "project"
    (repo / "notebooks").mkdir(parents=True)
    _git(repo, "init", "-q")
    env = dict(os.environ, PRE_COMMIT_HOME=str(tmp_path / "cache"), NO_COLOR="1")
    env.pop("VIRTUAL_ENV", None)
    shutil.copy(ROOT / "fixtures" / "notebooks" / "deep_sigmoid.ipynb", repo / "notebooks" / "bad.ipynb")
    shutil.copy(ROOT / "fixtures" / "notebooks" / "clean_relu.ipynb", repo / "notebooks" / "good.ipynb")
    _git(repo, "add", ".")

    def run(*files: str) -> subprocess.CompletedProcess[str]:
        # No --files: pre-commit picks the staged files whose type matches the hook's types_or.
        args = ["--files", *files] if files else ["--all-files"]
        return subprocess.run([str(pre_commit), "try-repo", str(ROOT), "gradlint", *args],
                              cwd=repo, capture_output=True, text=True, env=env, timeout=900)

    both = run()
    assert both.returncode == 1, both.stdout + both.stderr
    assert "notebooks/bad.ipynb:cell 3:3:16: GRD001" in both.stdout
    assert "good.ipynb:" not in both.stdout  # passed to the hook, nothing to report
    good = run("notebooks/good.ipynb")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout
