"""`gradlint inspect PATH[:MODEL]` through the real command line: structure, unknowns with their
reasons, per-layer estimates, model selection, and the JSON schema's keys."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import FIXTURES, run_cli

RESIDUAL_SE = """\
import torch
import torch.nn as nn


class SE(nn.Module):
    def __init__(self, c, r=4):
        super().__init__()
        self.fc1 = nn.Linear(c, c // r)
        self.fc2 = nn.Linear(c // r, c)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(x))))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc = nn.Linear(c, c)
        nn.init.kaiming_normal_(self.fc.weight, mode='fan_out', nonlinearity='relu')
        self.bn = nn.BatchNorm1d(c)
        self.se = SE(c)

    def forward(self, x):
        return x + self.se(torch.relu(self.bn(self.fc(x))))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(16, 64)
        self.blocks = nn.Sequential(Block(64), Block(64))
        self.out = nn.Linear(64, 10)

    def forward(self, x):
        return self.out(self.blocks(torch.relu(self.inp(x))))
"""

UNRESOLVED = """\
import torch.nn as nn
from mylib.blocks import TanhBlock


class Unresolved(nn.Module):
    def __init__(self, depth):
        super().__init__()
        self.fc = nn.Linear(10, 20)
        self.block = TanhBlock(20)
        self.layers = nn.ModuleList([nn.Linear(20, 20) for _ in range(depth)])
        self.out = nn.Linear(20, 1)

    def forward(self, x):
        x = self.block(self.fc(x).relu())
        for layer in self.layers:
            x = layer(x)
        return self.out(x)


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)
"""

MODEL_KEYS = {"name", "framework", "origin", "line", "fully_understood", "unknowns", "nodes", "assumptions"}
LAYER_KEYS = {"type", "kind", "op", "name", "line", "fan_in", "fan_out", "receptive", "activation", "init",
              "normalization", "reason", "estimate", "bias"}
ESTIMATE_KEYS = {"log10_q", "log10_backward", "log10_weight_grad", "alive"}


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _json(*args: str) -> dict:
    proc = run_cli("inspect", "--format", "json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_torch_residual_block_with_se_gate(tmp_path: Path) -> None:
    path = _write(tmp_path, "resnet_se.py", RESIDUAL_SE)
    proc = run_cli("inspect", path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Net (torch class) — fully understood" in out
    assert out.count("residual[") == 2 and out.count("| shortcut: identity") == 2
    assert out.count("gate[") == 2
    assert "init=kaiming_normal(mode='fan_out', gain=1.41)" in out and "norm=BatchNorm1d" in out
    assert "init=PyTorch default" in out and "64 → 16" in out
    # the gate sits inside the residual branch, indented below it
    lines = out.splitlines()
    res = next(i for i, line in enumerate(lines) if "residual[" in line)
    gate = next(i for i, line in enumerate(lines) if "gate[" in line)
    assert gate > res and len(lines[gate]) - len(lines[gate].lstrip()) > len(lines[res]) - len(lines[res].lstrip())

    (model,) = _json(path)["models"]
    top = [n["type"] for n in model["nodes"]]
    assert top == ["layer", "layer", "residual", "residual", "layer"]
    branch = model["nodes"][2]["branch"]
    assert [n["type"] for n in branch] == ["layer", "layer", "layer", "gate"]
    assert branch[0]["normalization"] == "BatchNorm1d" and branch[0]["estimate"] is not None
    assert model["nodes"][2]["shortcut"] == []
    assert branch[3]["path"][-1]["activation"] == "sigmoid"


def test_keras_sequential_estimates_vanishing_per_layer() -> None:
    (model,) = _json(str(FIXTURES / "keras" / "seed_sigmoid_deep.py"))["models"]
    assert model["framework"] == "keras" and model["fully_understood"] and model["unknowns"] == []
    dense = [n for n in model["nodes"] if n["kind"] == "dense"]
    assert len(dense) == 12 and all(n["activation"] == "sigmoid" for n in dense)
    assert (dense[0]["fan_in"], dense[0]["fan_out"]) == (20, 64) and dense[-1]["fan_out"] == 1
    grads = [n["estimate"]["log10_weight_grad"] for n in dense]
    # 12 sigmoid layers: the first layer's weight gradient is ~1e-7.5 of the last one's, decreasing towards the input
    assert grads[-1] == 0.0 and grads[0] < -6 and grads == sorted(grads)


def test_unresolved_import_and_unknown_depth_show_their_reason(tmp_path: Path) -> None:
    path = _write(tmp_path, "unresolved.py", UNRESOLVED)
    proc = run_cli("inspect", f"{path}:Unresolved")
    assert proc.returncode == 0, proc.stderr
    assert "Unresolved (torch class) — not fully understood" in proc.stdout
    assert "unresolved import mylib.blocks.TanhBlock" in proc.stdout
    assert "unknown depth: loop over self.layers" in proc.stdout
    assert "Small" not in proc.stdout
    (model,) = _json(f"{path}:Unresolved")["models"]
    assert not model["fully_understood"]
    assert [u["reason"] for u in model["unknowns"]] == [
        "unresolved import mylib.blocks.TanhBlock", "unknown depth: loop over self.layers of unknown length"]


def test_missing_model_exits_2_and_names_the_models_found(tmp_path: Path) -> None:
    path = _write(tmp_path, "unresolved.py", UNRESOLVED)
    proc = run_cli("inspect", f"{path}:Nope")
    assert proc.returncode == 2
    assert "no model named 'Nope'" in proc.stderr and "Small" in proc.stderr and "Unresolved" in proc.stderr
    assert run_cli("inspect", str(tmp_path / "missing.py")).returncode == 2


def test_json_schema_keys_are_stable(tmp_path: Path) -> None:
    report = _json(_write(tmp_path, "resnet_se.py", RESIDUAL_SE))
    assert set(report) == {"version", "path", "models"} and report["version"] == 1
    (model,) = report["models"]
    assert set(model) == MODEL_KEYS

    def walk(nodes: list[dict]) -> None:
        for node in nodes:
            if node["type"] == "layer":
                assert set(node) == LAYER_KEYS
                if node["estimate"] is not None:
                    assert set(node["estimate"]) == ESTIMATE_KEYS
            elif node["type"] == "residual":
                assert set(node) == {"type", "line", "concat", "branch", "shortcut"}
                walk(node["branch"])
                walk(node["shortcut"])
            else:
                assert set(node) == {"type", "line", "path"}
                walk(node["path"])
    walk(model["nodes"])
    unknowns = _json(_write(tmp_path, "unresolved.py", UNRESOLVED))["models"][0]["unknowns"]
    assert unknowns and all(set(u) == {"line", "op", "reason", "main_path"} for u in unknowns)


def test_notebook_is_inspected() -> None:
    report = _json(str(FIXTURES / "notebooks" / "deep_sigmoid.ipynb"))
    assert report["models"] and any(n["type"] == "layer" for n in report["models"][0]["nodes"])


def test_lint_summary_counts_fully_understood_models(tmp_path: Path) -> None:
    path = _write(tmp_path, "unresolved.py", UNRESOLVED)
    proc = run_cli("--no-cache", path)
    assert proc.returncode == 0, proc.stdout
    assert "All checks passed! (1 file, 2 models, 1 fully understood)" in proc.stdout
    payload = json.loads(run_cli("--no-cache", "--format", "json", path).stdout)
    assert payload["summary"]["models"] == 2 and payload["summary"]["models_understood"] == 1
    # a cached re-run keeps the count (the cache keeps model summaries, not layers)
    cache = tmp_path / "cache"
    for _ in range(2):
        again = json.loads(run_cli("--cache-dir", str(cache), "--format", "json", path).stdout)
        assert again["summary"]["models_understood"] == 1


def test_found_summary_says_how_many_were_understood() -> None:
    proc = run_cli("--no-cache", str(FIXTURES / "keras" / "seed_sigmoid_deep.py"))
    assert proc.returncode == 1
    assert proc.stdout.rstrip().endswith("Found 1 problem (1 error) in 1 file, 1 model (1 fully understood).")


def test_a_constant_bias_and_its_dead_units_are_shown() -> None:
    text = run_cli("inspect", str(FIXTURES / "torch" / "relu_bias_fill_negative.py")).stdout
    assert "bias=-3" in text and "2 % alive" in text and "all units dead" in text


KERAS_CNN = """\
from tensorflow import keras
from tensorflow.keras import layers
model = keras.Sequential([
    keras.Input(shape=(28, 28, 1)),
    layers.Conv2D(32, 3, activation="relu"),
    layers.MaxPooling2D(),
    layers.Conv2D(64, 3, activation="relu"),
    layers.MaxPooling2D(),
    layers.Flatten(),
    layers.Dense(128, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
"""


def test_keras_flatten_shows_the_flattened_width(tmp_path: Path) -> None:
    path = _write(tmp_path, "mnist_cnn.py", KERAS_CNN)
    proc = run_cli("inspect", path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    flatten = next(line for line in lines if "Flatten" in line)
    dense = next(line for line in lines if "Dense" in line)
    assert "→ 1600" in flatten and "1600 → 128" in dense  # 5·5·64, not the 64 channels
    (model,) = _json(path)["models"]
    assert [n["fan_in"] for n in model["nodes"] if n["kind"] == "dense"] == [1600, 128]


UNRESOLVED_ACTIVATION_AND_INIT = """\
import keras
import torch.nn as nn
from keras import layers
from mylib import ACT, INIT, STD


def build_model():
    inputs = keras.Input(shape=(32,))
    x = layers.Dense(64, activation=ACT)(inputs)
    outputs = layers.Dense(1)(x)
    return keras.Model(inputs, outputs)


def build_with_init():
    inputs = keras.Input(shape=(32,))
    x = layers.Dense(64, activation="relu", kernel_initializer=INIT)(inputs)
    outputs = layers.Dense(1)(x)
    return keras.Model(inputs, outputs)


class TorchNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(64, 1)
        nn.init.normal_(self.fc1.weight, std=STD)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu())


def build_resolved():
    inputs = keras.Input(shape=(32,))
    x = layers.Dense(64, activation="relu")(inputs)
    outputs = layers.Dense(1)(x)
    return keras.Model(inputs, outputs)
"""


def test_an_unresolved_activation_or_init_is_not_fully_understood(tmp_path: Path) -> None:
    """Rules never reason across an activation or init gradlint could not resolve, so `inspect` (and the
    summary's "fully understood" count) must not call such a model fully understood."""
    path = _write(tmp_path, "partly.py", UNRESOLVED_ACTIVATION_AND_INIT)
    models = {m["name"]: m for m in _json(str(path))["models"]}
    activation, init = models["build_model"], models["build_with_init"]
    assert not activation["fully_understood"]
    assert [u["reason"] for u in activation["unknowns"]] == ["activation of Dense at line 9 not resolved"]
    assert not init["fully_understood"]
    assert [u["reason"] for u in init["unknowns"]] == ["init of Dense at line 16 unknown"]
    torch_model = next(m for name, m in models.items() if name.startswith("TorchNet"))
    assert not torch_model["fully_understood"] and torch_model["unknowns"][0]["line"] == 24
    assert models["build_resolved"]["fully_understood"] and models["build_resolved"]["unknowns"] == []
    proc = run_cli("inspect", f"{path}:build_model")
    assert "build_model (keras functional) — not fully understood" in proc.stdout
    assert "unknown at line 9: activation of Dense at line 9 not resolved" in proc.stdout
    summary = run_cli("check", "--isolated", "--no-cache", "--format", "json", "--exit-zero", str(path))
    assert json.loads(summary.stdout)["summary"]["models_understood"] == 1
