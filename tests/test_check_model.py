"""gradlint.check_model on live models agrees with --dynamic on the file that builds them, and
renders as text and as HTML with the plot; `import gradlint` stays free of heavy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 on torch, as the dynamic check runs it
pytest.importorskip("torch")
pytest.importorskip("keras")
pytest.importorskip("matplotlib")

MODELS = """\
import keras
import torch.nn as nn

layers = []
for _ in range(10):
    layers += [nn.Linear(64, 64), nn.Sigmoid()]
deep_sigmoid = nn.Sequential(*layers)

shallow_relu = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))

keras_sigmoid = keras.Sequential([keras.Input((32,))] + [keras.layers.Dense(32, activation="sigmoid")
                                                        for _ in range(10)] + [keras.layers.Dense(1)])
"""

LIVE = """\
import json, os, runpy, sys
os.environ["KERAS_BACKEND"] = "torch"
import gradlint
namespace = runpy.run_path(sys.argv[1])
out = {}
for name in ("deep_sigmoid", "shallow_relu", "keras_sigmoid"):
    check = gradlint.check_model(namespace[name])
    html = check._repr_html_()
    out[name] = {"verdict": check.verdict, "ratio": check.ratio, "layers": len(check.layers),
                 "text": str(check), "html_has_plot": '<img src="data:image/png;base64,' in html,
                 "html_has_table": "<table>" in html and "‖∂L/∂W‖" in html}
print(json.dumps(out))
"""


def test_check_model_matches_dynamic_on_the_same_models(tmp_path: Path) -> None:
    models = tmp_path / "models.py"
    models.write_text(MODELS)
    proc = run_cli("--dynamic", "--format", "json", "--no-cache", str(models))
    assert proc.returncode in (0, 1), proc.stderr
    dynamic = {r["model"]: r for r in json.loads(proc.stdout)["dynamic"]}
    assert {name: r["status"] for name, r in dynamic.items()} == dict.fromkeys(
        ("deep_sigmoid", "shallow_relu", "keras_sigmoid"), "measured"), dynamic

    script = tmp_path / "live.py"
    script.write_text(LIVE)
    env = dict(os.environ, KERAS_BACKEND="torch", MPLBACKEND="Agg")
    live_proc = subprocess.run([sys.executable, str(script), str(models)], capture_output=True, text=True,
                               cwd=tmp_path, env=env, timeout=600)
    assert live_proc.returncode == 0, live_proc.stderr[-3000:]
    live = json.loads(live_proc.stdout.splitlines()[-1])
    for name, measured in live.items():
        assert measured["verdict"] == dynamic[name]["verdict"], (name, measured, dynamic[name]["reason"])
        assert measured["layers"] == len(dynamic[name]["layers"])
        assert measured["html_has_plot"] and measured["html_has_table"]
        assert measured["verdict"].upper() in measured["text"]  # the terminal table
    # Not all the same verdict: the comparison can fail.
    assert live["deep_sigmoid"]["verdict"] == "vanishing" and live["shallow_relu"]["verdict"] == "healthy"
    assert live["keras_sigmoid"]["verdict"] == "vanishing"


def test_check_model_leaves_the_model_as_it_was() -> None:
    import torch
    import torch.nn as nn

    import gradlint

    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 1)).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    batch = torch.randn(4, 8)
    rng = torch.get_rng_state()
    check = gradlint.check_model(model, example_input=batch)
    assert check.verdict is not None and check.result.input_kind == "given"
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert not model.training and all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)
    with pytest.raises(TypeError, match="torch.nn.Module or a Keras model"):
        gradlint.check_model(object())


def test_static_imports_stay_light() -> None:
    """`import gradlint` / `gradlint.cli` load none of the optional packages."""
    for module in ("gradlint", "gradlint.cli"):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True,
                              text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == 0, proc.stderr
        imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
        heavy = {name for name in imported
                 if name.split(".")[0] in ("torch", "keras", "matplotlib", "pygls", "lsprotocol", "nbformat",
                                           "numpy", "tensorflow")}
        assert not heavy, f"import {module} pulls in {sorted(heavy)}"
