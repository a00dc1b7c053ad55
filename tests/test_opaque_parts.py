"""A model whose forward cannot be described (a detector returning detections or a dict of losses,
no tensor path) is checked through its parts: the submodules that are models themselves, each
described on its own and named by its attribute path; the root stays opaque (the dynamic check
builds it)."""

from __future__ import annotations

import ast
import importlib.util
import textwrap
from pathlib import Path

import pytest

import gradlint.extract as extraction
from gradlint.engine import LintConfig, lint_file
from gradlint.extract import Extraction, extract

from conftest import run_cli

DETECTOR = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class Head(nn.Module):
    def __init__(self, in_dim, num_classes, depth={depth}):
        super().__init__()
        layers = []
        for _ in range(depth):
            layers += [nn.Linear(in_dim, in_dim), nn.{act}()]
        self.body = nn.Sequential(*layers)
        self.cls = nn.Linear(in_dim, num_classes)

    def forward(self, x):
        return self.cls(self.body(x))


class Detector(nn.Module):
    def __init__(self, num_classes=21):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                      nn.Flatten())
        self.head = Head(64, num_classes)

    def forward(self, images, targets=None):
        logits = self.head(self.backbone(images))
        if targets is not None:
            return {{"loss_cls": F.cross_entropy(logits, targets).item()}}
        scores, labels = logits.softmax(-1).max(-1)
        return [{{"score": s.item(), "label": int(l)}} for s, l in zip(scores, labels)]
"""


def run(src: str) -> Extraction:
    return extract(ast.parse(textwrap.dedent(src)))


def lint(tmp_path: Path, src: str) -> list[tuple[str, int, str | None]]:
    path = tmp_path / "detector.py"
    path.write_text(textwrap.dedent(src))
    return [(d.code, d.line, d.model) for d in lint_file(str(path), LintConfig()).diagnostics]


def test_a_deep_sigmoid_head_of_a_detector_is_reported_at_the_head(tmp_path: Path) -> None:
    src = DETECTOR.format(depth=12, act="Sigmoid")
    found = run(src)
    assert [m.name for m in found.opaque] == ["Detector"]  # the root is still built by the dynamic check
    assert [(m.name, m.span.line) for m in found.models] == [("Detector.head", 7), ("Detector.backbone", 23)]
    layers_line = src.splitlines().index("            layers += [nn.Linear(in_dim, in_dim), nn.Sigmoid()]") + 1
    assert lint(tmp_path, src) == [("GRD001", layers_line, "Detector.head")]


def test_a_healthy_detector_head_is_quiet(tmp_path: Path) -> None:
    src = DETECTOR.format(depth=3, act="ReLU")
    assert [m.name for m in run(src).models] == ["Detector.head", "Detector.backbone"]
    assert lint(tmp_path, src) == []


def test_a_keras_model_returning_no_tensor_is_checked_through_its_layers(tmp_path: Path) -> None:
    src = """
import keras
from keras import layers


class Detector(keras.Model):
    def __init__(self, num_classes=10, act="{act}"):
        super().__init__()
        self.head = keras.Sequential([layers.Dense(64, activation=act) for _ in range(12)]
                                     + [layers.Dense(num_classes)])

    def call(self, x):
        return {{"labels": [int(v) for v in keras.ops.argmax(self.head(x), -1)]}}


model = Detector()
model.build((None, 64))
"""
    found = run(src.format(act="sigmoid"))
    assert [(m.name, m.symbol) for m in found.opaque] == [("Detector", "model")]
    assert [m.name for m in found.models] == ["Detector.head"]
    assert lint(tmp_path, src.format(act="sigmoid")) == [("GRD001", 9, "Detector.head")]
    assert lint(tmp_path, src.format(act="relu")) == []


def test_parts_are_built_by_the_dynamic_check_only_as_they_are() -> None:
    """A part built with its owner's arguments cannot be built from its class on its own; a class
    that takes no arguments can; the opaque root keeps its own build target."""
    found = run(DETECTOR.format(depth=3, act="ReLU") + """

class Stem(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return torch.relu(self.conv(x))


class Counter(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem()
        self.head = Head(8, 2)

    def forward(self, x):
        return len(self.head(self.stem(x)))
""")
    targets = {m.name: (m.symbol, m.build) for m in found.models}
    assert targets["Detector.head"] == (None, None)
    assert targets["Detector.backbone"] == (None, None)
    assert targets["Counter.stem"] == ("Stem", "class")
    assert {m.name: (m.symbol, m.build) for m in found.opaque} == {"Detector": ("Detector", "class"),
                                                                   "Counter": ("Counter", "class")}


def test_opaque_parts_and_module_lists_are_descended_into_and_one_definition_is_one_model() -> None:
    found = run("""
        import torch.nn as nn

        class Level(nn.Module):
            def __init__(self, width):
                super().__init__()
                self.fc = nn.Linear(width, width)
                self.act = nn.Tanh()

            def forward(self, x):
                return self.act(self.fc(x))

        class Heads(nn.Module):
            def __init__(self):
                super().__init__()
                self.levels = nn.ModuleList([Level(32) for _ in range(4)])
                self.extra = nn.ModuleDict({"wide": Level(64)})

            def forward(self, feats):
                return None  # opaque as well

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.heads = Heads()

            def forward(self, x):
                raise NotImplementedError

        def make_a():
            return Net()

        def make_b():
            return Net()
    """)
    # Four equal levels (and two equal nets from two factories) are one definition each; the
    # wider level is another.
    assert sorted(m.name for m in found.models) == ["Net.heads.extra.wide", "Net.heads.levels.0"]


def test_the_descent_is_bounded_and_a_part_out_of_budget_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    src = """
        import torch.nn as nn

        class Leaf(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 8)

            def forward(self, x):
                for _ in range(400):
                    x = x + 0
                return self.fc(x)

        class Inner(nn.Module):
            def __init__(self):
                super().__init__()
                self.leaf = Leaf()
                self.fc = nn.Sequential(nn.Linear(8, 8))

            def forward(self, x):
                return None

        class Outer(nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = Inner()

            def forward(self, x):
                return None
    """
    assert sorted(m.name for m in run(src).models) == ["Outer.inner.fc", "Outer.inner.leaf"]
    assert run(src).unanalysed == []
    cut = [("model Outer past its first 48 parts or 1 levels of parts (its forward could not be described)", 23)]
    monkeypatch.setattr(extraction, "PART_DEPTH", 1)
    found = run(src)
    assert found.models == []  # Outer.inner is opaque and one level deep only
    assert found.unanalysed == cut
    monkeypatch.setattr(extraction, "PART_DEPTH", 4)
    monkeypatch.setattr(extraction, "PARTS_PER_ROOT", 2)  # Outer.inner, Outer.inner.leaf
    found = run(src)
    assert [m.name for m in found.models] == ["Outer.inner.leaf"]
    assert [line for _, line in found.unanalysed] == [23]
    monkeypatch.setattr(extraction, "PARTS_PER_ROOT", 48)
    monkeypatch.setattr(extraction, "PROBE_BUDGET", 500)
    monkeypatch.setattr(extraction, "PER_ROOT_BUDGET", 1000)
    found = run(src)
    assert [m.name for m in found.models] == ["Outer.inner.fc"]
    assert [what for what, _ in found.unanalysed] == ["model Outer.inner.leaf"]


def _torchvision() -> Path | None:
    try:
        spec = importlib.util.find_spec("torchvision")  # finds the package without importing it
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def test_faster_rcnn_heads_are_checked_again() -> None:
    """Its forward (GeneralizedRCNN's, from a sibling module) returns detections or losses; since
    imports are resolved FasterRCNN owns its heads, which were reported as unreached helpers before."""
    root = _torchvision()
    path = root / "models" / "detection" / "faster_rcnn.py" if root is not None else None
    if path is None or not path.is_file():
        pytest.skip("torchvision is not installed (make setup-test installs it)")
    found = extract(ast.parse(path.read_text()), path=str(path))
    assert [m.name for m in found.opaque] == ["FasterRCNN"]
    names = {(m.name, m.span.line) for m in found.models}
    lines = path.read_text().splitlines()
    for cls in ("TwoMLPHead", "FastRCNNConvFCHead", "FastRCNNPredictor"):
        line = next(i for i, text in enumerate(lines, 1) if text.startswith(f"class {cls}("))
        assert any(name.startswith("FasterRCNN.roi_heads.") and at == line for name, at in names), (cls, names)
    assert all(m.symbol is None for m in found.models)  # built with FasterRCNN's arguments
    assert [d for d in lint_file(str(path), LintConfig()).diagnostics if d.severity.value != "info"] == []


def test_inspect_names_a_model_that_could_not_be_described_and_shows_its_parts(tmp_path: Path) -> None:
    path = tmp_path / "detector.py"
    path.write_text(textwrap.dedent(DETECTOR.format(depth=3, act="ReLU")))
    proc = run_cli("inspect", f"{path}:Detector")
    assert proc.returncode == 0, proc.stderr
    assert "Detector.head (torch class)" in proc.stdout and "Detector.backbone (torch sequential)" in proc.stdout
    assert run_cli("inspect", f"{path}:Detector.head").stdout.count("(torch ") == 1
