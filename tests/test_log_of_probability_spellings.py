"""GRD018 on the ways a log of a probability, its bound and the loss's reduction are written: boundaries the
programs4_numerics fixtures do not pin down (each source linted as a file, every rule on)."""

from __future__ import annotations

import pytest

from gradlint.engine import LintConfig, Selection, lint_source

TF1 = """
import tensorflow as tf
x = tf.placeholder(tf.float32, [None, 20])
y_ = tf.placeholder(tf.float32, [None, {k}])
W = tf.Variable(tf.zeros([20, {k}]))
b = tf.Variable(tf.zeros([{k}]))
y = tf.nn.{squash}(tf.matmul(x, W) + b)
loss = {loss}
train_step = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
"""

TORCH = """
import torch
import torch.nn as nn
import torch.nn.functional as F

model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, {k}), {head})
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
eps = 1e-7
for x, y in loader:
    p = model(x)
    loss = {loss}
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
"""

KERAS = """
from tensorflow import keras
from tensorflow.keras import backend as K


def custom(y_true, y_pred):
    {body}


model = keras.Sequential([keras.layers.Dense(64, activation="relu", input_shape=(20,)),
                          keras.layers.Dense({k}, activation="{act}")])
model.compile(optimizer="adam", loss=custom)
"""

TF2_TAPE = """
import tensorflow as tf
from tensorflow import keras

model = keras.Sequential([keras.layers.Dense(64, activation="relu", input_shape=(20,)),
                          keras.layers.Dense({k}, activation="{act}")])
optimizer = keras.optimizers.Adam(1e-3)
for x, y in dataset:
    with tf.GradientTape() as tape:
        p = model(x, training=True)
        loss = {loss}
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
"""

REPORTED = {
    "tf2 tape sigmoid": TF2_TAPE.format(k=1, act="sigmoid",
                                        loss="-tf.reduce_mean(y * tf.math.log(p) + (1 - y) * tf.math.log(1 - p))"),
    "tf1 softmax summed": TF1.format(k=10, squash="softmax", loss="-tf.reduce_sum(y_ * tf.log(y))"),
    "tf1 softmax summed twice": TF1.format(k=10, squash="softmax",
                                           loss="tf.reduce_sum(-tf.reduce_sum(y_ * tf.log(y), axis=1))"),
    "tf1 sigmoid log(1 - p)": TF1.format(k=1, squash="sigmoid",
                                         loss="-tf.reduce_mean(y_ * tf.log(y) + (1 - y_) * tf.log(1 - y))"),
    "tf1 sigmoid log(p) alone": TF1.format(k=1, squash="sigmoid", loss="-tf.reduce_mean(y_ * tf.log(y))"),
    "torch sigmoid module, log methods": TORCH.format(
        k=1, head="nn.Sigmoid()", loss="-(y * p.log() + (1 - y) * (1 - p).log()).mean()"),
    "torch sigmoid, only the second log unbounded": TORCH.format(
        k=1, head="nn.Sigmoid()", loss="-(y * torch.log(p + eps) + (1 - y) * torch.log(1 - p)).mean()"),
    "torch softmax summed": TORCH.format(k=10, head="nn.Softmax(dim=1)",
                                         loss="-(F.one_hot(y, 10) * torch.log(p)).sum()"),
    "keras sigmoid log(1 - y_pred)": KERAS.format(
        k=1, act="sigmoid", body="return -K.mean(y_true * K.log(y_pred) + (1 - y_true) * K.log(1 - y_pred))"),
}

CLEAN = {
    "tf2 tape softmax averaged": TF2_TAPE.format(k=10, act="softmax",
                                                 loss="-tf.reduce_mean(tf.reduce_sum(y * tf.math.log(p), axis=1))"),
    "tf2 tape sigmoid clipped": TF2_TAPE.format(
        k=1, act="sigmoid", loss="-tf.reduce_mean(y * tf.math.log(tf.clip_by_value(p, 1e-7, 1.0))"
                                 " + (1 - y) * tf.math.log(tf.clip_by_value(1 - p, 1e-7, 1.0)))"),
    "tf1 clip_by_value": TF1.format(k=10, squash="softmax",
                                    loss="-tf.reduce_sum(y_ * tf.log(tf.clip_by_value(y, 1e-10, 1.0)))"),
    "tf1 maximum": TF1.format(k=10, squash="softmax", loss="-tf.reduce_sum(y_ * tf.log(tf.maximum(y, 1e-10)))"),
    "tf1 literal epsilon": TF1.format(k=10, squash="softmax", loss="-tf.reduce_sum(y_ * tf.log(y + 1e-10))"),
    "tf1 softmax averaged": TF1.format(k=10, squash="softmax",
                                       loss="tf.reduce_mean(-tf.reduce_sum(y_ * tf.log(y), axis=1))"),
    "tf1 softmax summed per example only": TF1.format(k=10, squash="softmax",
                                                      loss="-tf.reduce_sum(y_ * tf.log(y), axis=1)"),
    "tf1 sigmoid both logs bounded": TF1.format(
        k=1, squash="sigmoid", loss="-tf.reduce_mean(y_ * tf.log(y + 1e-7) + (1 - y_) * tf.log(1 - y + 1e-7))"),
    "torch epsilon variable": TORCH.format(
        k=1, head="nn.Sigmoid()", loss="-(y * torch.log(p + eps) + (1 - y) * torch.log(1 - p + eps)).mean()"),
    "torch clamp": TORCH.format(
        k=1, head="nn.Sigmoid()",
        loss="-(y * torch.log(p.clamp(min=1e-7)) + (1 - y) * torch.log((1 - p).clamp(min=1e-7))).mean()"),
    "torch clamp both ends first": TORCH.format(
        k=1, head="nn.Sigmoid()",
        loss="-(y * torch.log(torch.clamp(p, 1e-7, 1 - 1e-7))"
             " + (1 - y) * torch.log(1 - torch.clamp(p, 1e-7, 1 - 1e-7))).mean()"),
    "torch softmax divided by the batch": TORCH.format(
        k=10, head="nn.Softmax(dim=1)", loss="-torch.sum(F.one_hot(y, 10) * torch.log(p)) / x.size(0)"),
    "torch softmax averaged": TORCH.format(k=10, head="nn.Softmax(dim=1)",
                                           loss="-(F.one_hot(y, 10) * torch.log(p)).sum(1).mean()"),
    "torch log_softmax summed": TORCH.format(k=10, head="nn.LogSoftmax(dim=1)",
                                             loss="-(F.one_hot(y, 10) * p).sum()"),
    "keras clip": KERAS.format(k=1, act="sigmoid", body=(
        "y_pred = K.clip(y_pred, K.epsilon(), 1 - K.epsilon())\n"
        "    return -K.mean(y_true * K.log(y_pred) + (1 - y_true) * K.log(1 - y_pred))")),
    "keras epsilon": KERAS.format(k=1, act="sigmoid", body=(
        "return -K.mean(y_true * K.log(y_pred + K.epsilon()) + (1 - y_true) * K.log(1 - y_pred + K.epsilon()))")),
    "keras softmax (averaged by Keras)": KERAS.format(k=10, act="softmax",
                                                      body="return -K.sum(y_true * K.log(y_pred), axis=-1)"),
}


def _codes(source: str) -> list[str]:
    result = lint_source(source, "example.py", LintConfig(selection=Selection(("ALL",))))
    return [d.code for d in result.diagnostics]


@pytest.mark.parametrize("name", sorted(REPORTED))
def test_reported(name: str) -> None:
    assert _codes(REPORTED[name]).count("GRD018") == 1


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_not_reported(name: str) -> None:
    assert "GRD018" not in _codes(CLEAN[name])
