"""The wheel ships the rules as gradlint.rules, never as a top-level `rules` package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT


def test_wheel_contents(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(ROOT), "-w", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {proc.stderr.strip().splitlines()[-1:]}")
    (wheel,) = tmp_path.glob("gradlint-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert "rules" not in top
    assert {n for n in top if not n.endswith(".dist-info")} == {"gradlint"}
    for module in ("gradlint/rules/grd001_saturating_stack.py", "gradlint/monitor/torch_monitor.py",
                   "gradlint/dynamic/worker.py", "gradlint/extract/interpreter.py", "gradlint/reporters/sarif.py"):
        assert module in names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    # On Python >= 3.11 (what this suite runs on) the static install is libcst + click; tomli is the
    # stdlib tomllib's backport, required only on 3.10.
    current = [r for r in requires if "python_version" not in r]
    assert sorted(r.split()[1].split(">")[0].split("=")[0] for r in current) == ["click", "libcst"]
    assert [r for r in requires if "python_version" in r] == ["Requires-Dist: tomli>=1.1; python_version < \"3.11\""]
