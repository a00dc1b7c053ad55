"""Gradient stops as a property of the tensor-path algebra (gradlint/analysis/cuts.py, GRD012):
a stopped value is cut off from the gradient, a sum of a stopped and a live value is live, and
only layers that no route from an output reaches are reported. Static: nothing is imported."""

from __future__ import annotations

import ast
import textwrap

import pytest

from gradlint.analysis.cuts import gradient_cuts
from gradlint.extract import extract
from gradlint.model import LayerKind, Model


def _models(source: str) -> list[Model]:
    return extract(ast.parse(textwrap.dedent(source))).models


def _dead(source: str) -> list[str]:
    """Names (or ops) of the weight layers no gradient reaches, over every model of the source."""
    out = []
    for model in _models(source):
        for cut in gradient_cuts(model):
            out += [layer.name or f"{layer.op}@{layer.span.line}" for layer in cut.layers]
    return out


TORCH = """
import numpy as np
import torch
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 16)
        self.fc3 = nn.Linear(16, 2)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        {cut}
        return self.fc3(torch.relu(self.fc2(h)))
"""


@pytest.mark.parametrize("cut", [
    "h = h.detach()",
    "h.detach_()",
    "h = h.data",
    "h.requires_grad_(False)",
    "h.requires_grad = False",
    "h = torch.tensor(h)",
    "h = torch.from_numpy(h.detach().numpy())",
    "h = torch.tensor(h.tolist())",
    "h = torch.as_tensor(np.clip(h.detach().cpu().numpy(), 0, 1))",
    "h = torch.tensor([[h.sum().item()] * 16])",  # numbers read out of the tensor, a tensor again
    "h = torch.tensor(float(h.mean())) * torch.ones(4, 16)",
    "h = torch.FloatTensor([h.max().item(), h.min().item()]).repeat(4, 8)",
])
def test_each_torch_spelling_cuts_the_first_layer(cut: str) -> None:
    assert _dead(TORCH.replace("{cut}", cut)) == ["self.fc1"]


@pytest.mark.parametrize("live", [
    "h = h + (torch.round(h) - h).detach()",  # straight-through estimator
    "h = torch.as_tensor(h)",  # the same tensor
    "h = h * (h.detach() > 0).float()",  # a mask from a detached copy
    "self.cache = h.detach()",  # a copy for logging
    "n = h.detach().norm().item()",
    "h = h.clone().float().cpu()",
    "h = h / (h.norm().item() + 1e-6)",  # a number read out scales the live tensor
    "h = h * float(h.detach().abs().max())",
    "steps = int(h.size(0))",
])
def test_live_spellings_cut_nothing(live: str) -> None:
    assert _dead(TORCH.replace("{cut}", live)) == []


def test_a_no_grad_block_stops_what_it_binds_and_returns() -> None:
    binds = TORCH.replace("        {cut}\n        return self.fc3(torch.relu(self.fc2(h)))",
                          "        with torch.no_grad():\n            h = self.fc2(h)\n        return self.fc3(h)")
    assert _dead(binds) == ["self.fc1", "self.fc2"]
    returns = TORCH.replace("        {cut}\n        return self.fc3(torch.relu(self.fc2(h)))",
                            "        with torch.no_grad():\n            return self.fc3(h)")
    assert _dead(returns) == ["self.fc1", "self.fc3"]
    enabled = TORCH.replace("        {cut}\n", "        with torch.enable_grad():\n            h = self.fc2(h)\n")
    assert _dead(enabled) == []


@pytest.mark.parametrize("decorator", ["@torch.no_grad()", "@torch.no_grad", "@torch.inference_mode()"])
def test_a_forward_decorated_to_record_no_gradient_stops_what_it_returns(decorator: str) -> None:
    inner = f"""
import torch
import torch.nn as nn

class Features(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 16)

    {decorator}
    def forward(self, x):
        return torch.relu(self.fc(x))

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = Features()
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        return self.head(self.features(x))
"""
    assert _dead(inner) == ["self.fc"]
    assert _dead(inner.replace(decorator, "@torch.inference_mode(False)")) == []
    # on another method only (inference helpers): the forward records gradients
    other = inner.replace(f"    {decorator}\n    def forward(self, x):\n        return torch.relu(self.fc(x))",
                          f"    def forward(self, x):\n        return torch.relu(self.fc(x))\n\n    {decorator}\n"
                          "    def embed(self, x):\n        return self.forward(x)")
    assert "def embed" in other and _dead(other) == []


def test_detached_tensors_collected_in_a_list_cut_only_when_the_list_feeds_the_path() -> None:
    head = """
import torch
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(16, 16) for _ in range(3)])
        self.head = nn.Linear(48, 2)
        self.head1 = nn.Linear(16, 2)

    def forward(self, x):
        feats = []
        for blk in self.blocks:
            x = torch.relu(blk(x))
"""
    assert len(_dead(head + "            feats.append(x.detach())\n"
                            "        return self.head(torch.cat(feats, dim=1))\n")) == 3
    assert len(_dead(head + "            feats.append(x.detach())\n"
                            "        return self.head1(torch.stack(feats).mean(0))\n")) == 3
    assert _dead(head + "            feats.append(x)\n        return self.head(torch.cat(feats, dim=1))\n") == []
    assert _dead(head + "            feats.append(x.detach())\n        self.feats = feats\n"
                        "        return self.head1(x)\n") == []
    assert _dead(head + "            feats.append(x.detach())\n        return self.head1(x), feats\n") == []


def test_the_stop_is_a_node_on_the_path_and_the_estimate_skips_what_is_behind_it() -> None:
    from gradlint.analysis.flow import model_segments

    (model,) = _models(TORCH.replace("{cut}", "h = h.detach()"))
    assert [n.kind for n in model.path].count(LayerKind.STOP) == 1
    segments = model_segments(model)
    assert [s.behind_cut for s in segments] == [True, False]


def test_side_routes_keep_layers_live() -> None:
    """Another returned tensor, a tensor stored on self, a loss in the forward: each is a route back."""
    returned = TORCH.replace("        {cut}\n        return self.fc3(torch.relu(self.fc2(h)))",
                             "        return self.fc3(torch.relu(self.fc2(h.detach()))), h")
    stored = TORCH.replace("{cut}", "self.aux = self.fc2(h)\n        h = h.detach()")
    loss = TORCH.replace("{cut}", "self.loss = torch.nn.functional.mse_loss(h, torch.zeros(4, 16))\n"
                                  "        h = h.detach()")
    assert _dead(returned) == _dead(stored) == _dead(loss) == []


def test_frozen_or_loaded_layers_are_not_reported() -> None:
    for freeze in ("self.fc1.requires_grad_(False)", "self.fc1.weight.requires_grad = False",
                   "self.fc1.load_state_dict(torch.load('fc1.pt'))"):
        source = TORCH.replace("        self.fc3 = nn.Linear(16, 2)\n",
                               f"        self.fc3 = nn.Linear(16, 2)\n        {freeze}\n")
        assert _dead(source.replace("{cut}", "h = h.detach()")) == [], freeze


def test_a_detached_tensor_is_never_kept_over_a_live_one_by_a_merge() -> None:
    # q @ k.detach(): matmul of two tensors keeps one path; attention still trains what q comes from.
    source = TORCH.replace("{cut}", "h = torch.softmax(h @ h.detach().t(), -1) @ h")
    assert _dead(source) == []


def test_a_residual_whose_both_sides_are_stopped_cuts_what_is_before_it() -> None:
    source = TORCH.replace("{cut}\n        return self.fc3(torch.relu(self.fc2(h)))",
                           "h = self.fc2(h).detach() + h.detach()\n        return self.fc3(h)")
    (model,) = _models(source)
    (cut,) = gradient_cuts(model)
    assert [layer.name for layer in cut.layers] == ["self.fc1", "self.fc2"] and len(cut.stops) == 2


KERAS = """
import keras
from keras import layers, ops
import tensorflow as tf
from tensorflow.keras import backend as K

inputs = keras.Input(shape=(8,))
x = layers.Dense(16, activation="relu")(inputs)
x = {cut}
outputs = layers.Dense(2)(layers.Dense(16, activation="relu")(x))
model = keras.Model(inputs, outputs)
"""


@pytest.mark.parametrize("cut", ["ops.stop_gradient(x)", "tf.stop_gradient(x)", "K.stop_gradient(x)",
                                 "layers.Lambda(lambda t: K.stop_gradient(t))(x)",
                                 "layers.Lambda(lambda t: tf.stop_gradient(t))(x)"])
def test_each_keras_spelling_cuts_the_first_layer(cut: str) -> None:
    assert len(_dead(KERAS.replace("{cut}", cut))) == 1


def test_keras_straight_through_and_other_outputs_are_live() -> None:
    assert _dead(KERAS.replace("{cut}", "layers.Lambda(lambda t: t + ops.stop_gradient(ops.sign(t) - t))(x)")) == []
    two_outputs = KERAS.replace("{cut}", "x").replace(
        'outputs = layers.Dense(2)(layers.Dense(16, activation="relu")(x))',
        "outputs = [layers.Dense(2)(ops.stop_gradient(x)), layers.Dense(2)(x)]")
    assert _dead(two_outputs) == []


def test_a_keras_layer_frozen_by_its_constructor_is_frozen_not_a_stop() -> None:
    """Dense(..., trainable=False) is layer.trainable = False: it passes the gradient on to the layers
    before it, and behind a stop it is frozen by design (not reported)."""
    frozen_after = KERAS.replace("{cut}", "x").replace(
        'layers.Dense(16, activation="relu")(x))', 'layers.Dense(16, activation="relu", trainable=False)(x))')
    assert _dead(frozen_after) == []
    frozen_first = KERAS.replace('x = layers.Dense(16, activation="relu")(inputs)',
                                 'x = layers.Dense(16, activation="relu", trainable=False)(inputs)')
    assert _dead(frozen_first.replace("{cut}", "ops.stop_gradient(x)")) == []
    assert len(_dead(frozen_first.replace("trainable=False", "trainable=True").replace(
        "{cut}", "ops.stop_gradient(x)"))) == 1
