"""Keras ThresholdedReLU(theta): u if u > theta else 0, read with its theta and modelled as such
(it was read as a plain ReLU, whose units a threshold of 1 would leave mostly alive)."""

from __future__ import annotations

import ast
import math

import pytest

from gradlint.extract import extract
from gradlint.gradflow import activation_moments, canonical_activation


def _tail(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2.0))


@pytest.mark.parametrize("q", [0.25, 1.0, 4.0])
@pytest.mark.parametrize("theta", [0.0, 0.5, 1.0])
def test_thresholded_relu_moments_are_the_gaussian_tail(q: float, theta: float) -> None:
    m2, d2 = activation_moments("thresholded_relu", q, theta)
    a = theta / math.sqrt(q)
    # E[u² 1{u > θ}] = q (a φ(a) + P(z > a)),  E[φ′²] = P(z > a)
    density = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    assert d2 == pytest.approx(_tail(a), rel=1e-6)
    assert m2 == pytest.approx(q * (a * density + _tail(a)), rel=1e-6)


def test_theta_zero_is_relu() -> None:
    assert activation_moments("thresholded_relu", 1.7, 0.0) == pytest.approx(activation_moments("relu", 1.7))


def test_keras_layer_carries_its_theta() -> None:
    src = ("from tensorflow import keras\nfrom tensorflow.keras import layers\n"
           "model = keras.Sequential([layers.Dense(8, input_shape=(4,)), layers.ThresholdedReLU(theta=0.7),"
           " layers.Dense(1)])\n")
    (model,) = extract(ast.parse(src), source=src).models
    (act,) = [layer for layer in model.layers() if layer.op == "ThresholdedReLU"]
    assert canonical_activation("ThresholdedReLU") == "thresholded_relu"
    assert act.activation == "thresholded_relu" and act.act_param == pytest.approx(0.7)
