"""GRD015 on the ways a learning rate is written: keywords, positions, framework defaults, Keras'
optimizer strings, a variable, a value gradlint cannot resolve, momentum, TF 1 ``minimize``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli

TORCH = """
import sys
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(20, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 2))
for layer in model:
    if isinstance(layer, nn.Linear):
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
X, y = torch.randn(1024, 20), torch.randint(0, 2, (1024,))
{optimizer}
for epoch in range(50):
    optimizer.zero_grad()
    loss = {loss}
    loss.backward()
    optimizer.step()
"""

KERAS = """
import numpy as np
import keras
from keras import layers

model = keras.Sequential([keras.Input(shape=(32,)), layers.Dense(64, activation="relu"),
                          layers.Dense(1, activation="sigmoid")])
model.compile(optimizer={optimizer}, loss="binary_crossentropy")
model.fit(np.random.randn(1000, 32), np.random.randint(0, 2, 1000), epochs=5)
"""

TF1 = """
import tensorflow as tf

x = tf.placeholder(tf.float32, [None, 20])
y = tf.placeholder(tf.int64, [None])
h = tf.layers.dense(x, 128, activation=tf.nn.relu, kernel_initializer=tf.variance_scaling_initializer())
h = tf.layers.dense(h, 128, activation=tf.nn.relu, kernel_initializer=tf.variance_scaling_initializer())
logits = tf.layers.dense(h, 2, kernel_initializer=tf.variance_scaling_initializer())
loss = tf.losses.sparse_softmax_cross_entropy(labels=y, logits=logits)
train_op = {optimizer}.minimize(loss)
"""


def _findings(tmp_path: Path, source: str) -> list[dict[str, object]]:
    path = tmp_path / "prog.py"
    path.write_text(source, encoding="utf-8")
    proc = run_cli("--no-cache", "--isolated", "--format", "json", "--select", "GRD015", str(path))
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)["diagnostics"]  # type: ignore[no-any-return]


CE = "nn.functional.cross_entropy(model(X), y)"


@pytest.mark.parametrize("optimizer,loss,reported", [
    ("optimizer = torch.optim.SGD(model.parameters(), lr=10)", CE, True),
    ("optimizer = torch.optim.SGD(model.parameters(), 10)", CE, True),  # lr by position
    ("lr = 10\noptimizer = torch.optim.SGD(model.parameters(), lr=lr)", CE, True),  # a constant variable
    ("optimizer = torch.optim.SGD(model.parameters(), lr=1, momentum=0.9)", CE, True),  # 10× with momentum
    ("optimizer = torch.optim.SGD(model.parameters(), lr=1)", CE, False),
    ("optimizer = torch.optim.SGD(model.parameters())", CE, False),  # torch's default 1e-3
    ("optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)", CE, False),
    ("optimizer = torch.optim.SGD(model.parameters(), lr=float(sys.argv[1]))", CE, False),  # unknown
    ("optimizer = torch.optim.Adam(model.parameters(), lr=10)", CE, False),  # adaptive: not judged
    ("optimizer = torch.optim.SGD(model.parameters(), lr=10)", "((model(X) - y[:, None]) ** 2).mean()", False),
    # a rate set after the optimizer is made: a warm-up scheduler, param_groups, an optimizer's .lr
    ("optimizer = torch.optim.SGD(model.parameters(), lr=10)\n"
     "warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, step / 1000) * 0.001)", CE, False),
    ("optimizer = torch.optim.SGD(model.parameters(), lr=10)\nfor group in optimizer.param_groups:\n"
     "    group['lr'] = 0.01", CE, False),
    # StepLR lowers the rate later: the first steps are at lr=10
    ("optimizer = torch.optim.SGD(model.parameters(), lr=10)\n"
     "scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30)", CE, True),
])
def test_torch(tmp_path: Path, optimizer: str, loss: str, reported: bool) -> None:
    found = _findings(tmp_path, TORCH.format(optimizer=optimizer, loss=loss))
    assert bool(found) == reported, [d["message"] for d in found]


@pytest.mark.parametrize("optimizer,reported", [
    ('keras.optimizers.SGD(learning_rate=100.0)', True),
    ('keras.optimizers.SGD(100.0)', True),
    ('keras.optimizers.SGD(learning_rate=10.0, momentum=0.9)', True),
    ('keras.optimizers.SGD(learning_rate=0.1)', False),
    ('"sgd"', False),  # Keras' default 0.01
    ('keras.optimizers.SGD()', False),
    ('keras.optimizers.Adam(learning_rate=100.0)', False),
])
def test_keras(tmp_path: Path, optimizer: str, reported: bool) -> None:
    found = _findings(tmp_path, KERAS.format(optimizer=optimizer))
    assert bool(found) == reported, [d["message"] for d in found]


@pytest.mark.parametrize("optimizer,reported", [
    ("tf.train.GradientDescentOptimizer(10.0)", True),
    ("tf.train.MomentumOptimizer(1.0, 0.9)", True),
    ("tf.train.GradientDescentOptimizer(0.05)", False),
    ("tf.train.AdamOptimizer(10.0)", False),
])
def test_tensorflow1(tmp_path: Path, optimizer: str, reported: bool) -> None:
    found = _findings(tmp_path, TF1.format(optimizer=optimizer))
    assert bool(found) == reported, [d["message"] for d in found]


def test_message_and_json(tmp_path: Path) -> None:
    (diag,) = _findings(tmp_path, TORCH.format(optimizer="optimizer = torch.optim.SGD(model.parameters(), lr=10)",
                                              loss=CE))
    assert diag["line"] == 11 and diag["column"] == 13
    message = str(diag["message"])
    assert message.startswith("SGD(lr=10): the first step is ≈ ") and "Lower the learning rate to ≈ 0.0" in message
    estimate = diag["estimate"]
    assert isinstance(estimate, dict) and estimate["criterion"] == "update" and estimate["verdict"] is None
    assert 1.0 < estimate["log10_update"] < 1.5  # ≈ 17
