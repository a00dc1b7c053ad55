"""What extraction answers for a layer object's attributes (``hasattr``) and a Keras LSTM's forget bias,
checked against the frameworks themselves and against measured gradients through time."""

from __future__ import annotations

import math

from gradlint.analysis.estimation import lstm_step_gain, recurrent_gain
from gradlint.engine import LintConfig, lint_source
from gradlint.model import Layer, LayerKind

HASATTR_BRANCHES = """\
import torch.nn as nn


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(64, 128, batch_first=True)
        self.act = nn.PReLU()
        self.drop = nn.Identity()
        self.fc = nn.Linear(128, 10)
        for m in self.children():
            if hasattr(m, "weight"):
                nn.init.xavier_uniform_(m.weight)
            else:
                for p in m.parameters():
                    nn.init.normal_(p, std=1.0)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(self.drop(self.act(out[:, -1])))
"""


def _layers(source: str, filename: str = "model.py") -> dict[str, Layer]:
    (model,) = lint_source(source, filename, LintConfig()).models
    return {layer.op: layer for layer in model.layers()}


def test_hasattr_weight_is_what_torch_says() -> None:
    """torch: an LSTM has weight_ih_l0/weight_hh_l0, no ``weight`` (hasattr is False: the else branch
    initialises it); a Linear has one. (Checked in torch 2: LSTM False, Linear True, PReLU True,
    Identity False, MultiheadAttention False, LocalResponseNorm False.)"""
    layers = _layers(HASATTR_BRANCHES)
    lstm, fc = layers["LSTM"], layers["Linear"]
    assert lstm.weight_init is not None and lstm.weight_init.describe() == "nn.init.normal_(p, std=1.0)"
    assert lstm.recurrent_init is not None and lstm.recurrent_init.describe() == "nn.init.normal_(p, std=1.0)"
    assert fc.weight_init is not None and fc.weight_init.scheme == "xavier_uniform"


KERAS_LSTM = """\
import keras
from keras import layers
from config import FLAG


def build_model():
    inputs = keras.Input(shape=(200, 16))
    x = layers.LSTM(64, recurrent_initializer=keras.initializers.RandomNormal(stddev=0.25){extra})(inputs)
    outputs = layers.Dense(1)(x)
    return keras.Model(inputs, outputs)
"""


def _keras_lstm(extra: str) -> Layer:
    return _layers(KERAS_LSTM.replace("{extra}", extra))["LSTM"]


def test_keras_unit_forget_bias_is_read() -> None:
    assert _keras_lstm("").forget_bias == 1.0  # the default: the forget block of the bias is ones
    assert _keras_lstm(", unit_forget_bias=False").forget_bias == 0.0  # bias_initializer's zeros
    assert _keras_lstm(", unit_forget_bias=False, bias_initializer='ones'").forget_bias == 1.0
    assert _keras_lstm(", use_bias=False").forget_bias == 0.0
    unknown = _keras_lstm(", unit_forget_bias=FLAG")
    assert unknown.forget_bias is None and recurrent_gain(unknown) is None  # no guess across it


def test_forget_bias_orders_the_gain_through_time_as_measured() -> None:
    """Keras LSTM(64), recurrent N(0, (2/√64)²) (σ_rec = 2), glorot kernel, 16 features, measured by the
    protocol of tools/measure_recurrent.py (batch 32, seeds 0-2, medians): ‖∂L/∂x_1‖/‖∂L/∂x_T‖ = 4.95 at
    T = 50 and 3.3e2 at T = 200 with unit_forget_bias=True, 1.4e-2 and 4.3e-7 with False — per step
    ×1.028 and ×0.933. The tied-weight estimate keeps the order and is within 10 % of both per step;
    the gain findings decide on (``decisive``, the lower estimate) stays below both."""
    with_bias = _keras_lstm("")
    without = _keras_lstm(", unit_forget_bias=False")
    with_bias.fan_in = without.fan_in = 16
    g1, g0 = recurrent_gain(with_bias), recurrent_gain(without)
    assert g1 is not None and g0 is not None
    assert g0.gain < g1.gain
    measured1, measured0 = (330.0 / 4.95) ** (1 / 150), (4.3e-7 / 1.4e-2) ** (1 / 150)
    assert math.log10(g1.decisive) <= math.log10(measured1)
    assert math.log10(g0.decisive) <= math.log10(measured0)
    assert abs(g1.gain / measured1 - 1) < 0.1 and abs(g0.gain / measured0 - 1) < 0.1, (g1, g0)
    assert lstm_step_gain(4.0, 0.12, 1.0) > lstm_step_gain(4.0, 0.12, 0.0)


def test_torch_lstm_forget_bias_is_zero_mean() -> None:
    layer = Layer(LayerKind.RECURRENT, "LSTM", _layers(HASATTR_BRANCHES)["LSTM"].span, "torch")
    assert layer.forget_bias == 0.0
