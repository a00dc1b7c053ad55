"""Issue 14: the dynamic check keeps its promises — through `gradlint --dynamic` as users run it.

One CLI run per scenario group (each starts a fork server: seconds, not minutes)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli

pytest.importorskip("torch")

NET = """\
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 64)
        self.fc2 = nn.Linear(64, 1)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))
"""
FILES = {
    # argparse with defaults: the worker's own argv must not leak into it.
    "argparse_defaults.py": """\
import argparse

import torch.nn as nn

parser = argparse.ArgumentParser()
parser.add_argument("--depth", type=int, default=3)
args = parser.parse_args()
model = nn.Sequential(*[nn.Linear(16, 16) for _ in range(args.depth)], nn.Linear(16, 1))
""",
    # argparse with a required argument: SystemExit while loading, with argparse's message.
    "argparse_required.py": """\
import argparse

import torch.nn as nn

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
args = parser.parse_args()
model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))
""",
    # A module-level object followed by an endless training loop.
    "variable_then_training.py": NET + """

model = Net()
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x = torch.randn(32, 20)
while True:
    opt.zero_grad()
    model(x).pow(2).mean().backward()
    opt.step()
""",
    # A class target whose module trains a list of instances forever.
    "class_then_training.py": NET + """

nets = [Net() for _ in range(2)]
x = torch.randn(32, 20)
while True:
    for net in nets:
        net(x).sum().backward()
""",
}


def _write(tmp_path: Path) -> None:
    for name, source in FILES.items():
        (tmp_path / name).write_text(source, encoding="utf-8")
    (tmp_path / "bom.py").write_bytes(b"\xef\xbb\xbfimport torch.nn as nn\n"
                                      b"model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))\n")
    (tmp_path / "latin1.py").write_bytes(b"# -*- coding: latin-1 -*-\nimport torch.nn as nn\nname = '\xe9t\xe9'\n"
                                         b"model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))\n")


def test_files_load_as_python_loads_them_and_training_code_does_not_run(tmp_path: Path) -> None:
    _write(tmp_path)
    names = [*FILES, "bom.py", "latin1.py"]
    proc = run_cli("--dynamic", "--format", "json", "--seeds", "1", "--timeout", "45", *names, cwd=tmp_path)
    results = {Path(r["path"]).name: r for r in json.loads(proc.stdout)["dynamic"]}
    assert set(results) == set(names), results.keys()
    for name in ("argparse_defaults.py", "variable_then_training.py", "class_then_training.py", "bom.py",
                 "latin1.py"):
        assert results[name]["status"] == "measured", (name, results[name]["reason"])
    failed = results["argparse_required.py"]
    assert failed["status"] == "failed"
    assert failed["reason"].startswith("SystemExit: 2: ")
    assert "the following arguments are required: --data" in failed["reason"], failed["reason"]
    assert "(while loading the file)" in failed["reason"]


def test_text_output_plots_and_unknown_model_args(tmp_path: Path) -> None:
    wide = ["import torch.nn as nn", "model = nn.Sequential("]
    wide += ["    nn.Linear(32, 32), nn.Tanh()," for _ in range(150)] + ["    nn.Linear(32, 1))"]
    (tmp_path / "wide.py").write_text("\n".join(wide) + "\n")
    (tmp_path / "small.py").write_text(NET)
    proc = run_cli("--dynamic", "--seeds", "1", "--plot", "plots", "--model-args", '{"Nett": {"depth": 2}}',
                   "wide.py", "small.py", cwd=tmp_path)
    assert proc.stdout.endswith("\n") and not proc.stdout.endswith("\n\n\n"), repr(proc.stdout[-80:])
    # --model-args naming no model: a warning that lists the models found.
    assert "--model-args names 'Nett'" in proc.stderr and "models found: Net, model" in proc.stderr, proc.stderr
    # --plot DIR: each model says where its PNG went, the last line how many went where.
    for png in ("plots/wide.model.png", "plots/small.Net.png"):
        assert f"  plot: {png}" in proc.stdout, proc.stdout
        assert (tmp_path / png).is_file()
    assert proc.stdout.rstrip().endswith("2 plots written to plots"), proc.stdout[-200:]
    # 151 weight layers: a readable width (not 0.35 in per layer, ~6,000 px).
    width, height = struct.unpack(">II", (tmp_path / "plots/wide.model.png").read_bytes()[16:24])
    assert width <= 1600 and height < 800, (width, height)


def test_wide_plot_has_a_legend(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from gradlint.dynamic import plot
    from gradlint.dynamic.results import DynamicResult, LayerMeasurement

    layers = [LayerMeasurement(f"layers.{i}", "Linear", 10.0 ** (-i / 10), 1.0, 0.1, None, None,
                               is_norm=i % 7 == 3) for i in range(120)]
    result = DynamicResult("net.py", "Net", 1, "measured", "vanishing", 1e-12, layers)
    figures = []
    closing = plot.plt.close

    def keep(fig: object) -> None:
        figures.append(fig)
        closing(fig)

    plot.plt.close = keep  # type: ignore[assignment]
    try:
        plot.plot_result(result, str(tmp_path))
    finally:
        plot.plt.close = closing  # type: ignore[assignment]
    (axes,) = figures[0].axes
    legend = axes.get_legend()
    assert legend is not None
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels == ["weight layer (vanishing)", "normalization layer"]
    assert len(axes.get_xticks()) <= 40


def test_monitor_without_torch_says_how_to_install() -> None:
    code = "import sys; sys.modules['torch'] = None; from gradlint.monitor import GradientMonitor"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: gradlint.monitor.GradientMonitor needs torch"), proc.stderr
    assert "pip install -e '.[dynamic]'" in last
    assert "ModuleNotFoundError" not in proc.stderr
