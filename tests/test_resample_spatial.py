"""Resampling on the path (upsampling, pixel (un)shuffle, padding, repeats): the tensor passes on and
the estimate follows the spatial size it leaves (gradlint.analysis.spatial.resampled_dims)."""

from __future__ import annotations

import pytest

from gradlint.analysis.flow import model_segments
from gradlint.analysis.spatial import resampled_dims
from gradlint.engine import LintConfig, lint_source
from gradlint.gradflow.chain import WeightLayer
from gradlint.model import Window

_TORCH = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 16, 3, padding=1)
        self.b = nn.Conv2d(16, 16, 3, padding={pad})
        self.aux = {aux}

    def forward(self, x):
        x = torch.relu(self.a(x))
        x = {op}
        return self.b(x)
"""


def _positions(source: str) -> list[int]:
    result = lint_source(source, "net.py", LintConfig())
    assert result.models and result.models[0].fully_understood
    segments = model_segments(result.models[0])
    assert len(segments) == 1
    return [item.out_positions for item in segments[0].items if isinstance(item, WeightLayer)]


@pytest.mark.parametrize("op,aux,pad,second", [
    ("x", "None", 1, 32 * 32),
    ("F.interpolate(x, scale_factor=2, mode='nearest')", "None", 1, 64 * 64),
    ("F.interpolate(input=x, size=(48, 40))", "None", 1, 48 * 40),
    ("F.upsample_bilinear(x, scale_factor=2)", "None", 1, 64 * 64),
    ("self.aux(x)", "nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False)", 1, 64 * 64),
    ("self.aux(x)", "nn.UpsamplingNearest2d(scale_factor=4)", 1, 128 * 128),
    ("F.pixel_shuffle(x, 2)", "None", 1, 64 * 64),
    ("self.aux(x)", "nn.PixelUnshuffle(2)", 1, 16 * 16),
    ("F.pad(x, (1, 1, 1, 1))", "None", 0, 32 * 32),  # zeros folded into the conv's padding
    ("self.aux(x)", "nn.ReflectionPad2d(1)", 0, 32 * 32),
    ("F.pad(x, (0, 1, 0, 1))", "None", 1, 33 * 33),
    ("self.aux(x)", "nn.ZeroPad2d((2, 2, 0, 0))", 1, 32 * 36),
])
def test_conv_after_a_resampling_sees_its_size(op: str, aux: str, pad: int, second: int) -> None:
    first, after = _positions(_TORCH.format(op=op, aux=aux, pad=pad))
    assert first == 32 * 32  # torch conv models are read on a 32×32 input
    assert after == second


def test_an_upsampling_to_another_tensors_size_keeps_the_path() -> None:
    source = _TORCH.format(op="F.interpolate(x, size=x.shape[-2:])", aux="None", pad=1)
    assert _positions(source) == [32 * 32, 32 * 32]


def test_symmetric_zero_padding_counts_as_the_convs_own() -> None:
    """ZeroPad2d(1) + Conv2d(padding=0) is Conv2d(padding=1): the same taps, the same estimate."""
    padded = _TORCH.format(op="self.aux(x)", aux="nn.ZeroPad2d(1)", pad=0)
    plain = _TORCH.format(op="x", aux="None", pad=1)
    items = [[i for i in model_segments(lint_source(s, "n.py", LintConfig()).models[0])[0].items
              if isinstance(i, WeightLayer)] for s in (padded, plain)]
    assert [(i.fan_in, i.uses, i.out_positions) for i in items[0]] == [(i.fan_in, i.uses, i.out_positions)
                                                                       for i in items[1]]


@pytest.mark.parametrize("op", ["x.repeat_interleave(2, dim=2)", "torch.tile(x, (1, 1, 2, 2))",
                                "torch.rot90(x, 1, [2, 3])", "torch.fliplr(x)"])
def test_repeats_and_rotations_keep_the_path(op: str) -> None:
    result = lint_source(_TORCH.format(op=op, aux="None", pad=1), "net.py", LintConfig())
    assert result.models[0].fully_understood
    assert len(model_segments(result.models[0])) == 1


def test_keras_upsampling_and_padding_are_followed() -> None:
    source = """
import keras
from keras import layers

model = keras.Sequential([
    keras.Input(shape=(8, 8, 3)),
    layers.Conv2D(16, 3, padding="same", activation="relu"),
    layers.UpSampling2D(2),
    layers.ZeroPadding2D(1),
    layers.Conv2D(16, 3, padding="valid"),
])
"""
    assert _positions(source) == [8 * 8, 16 * 16]


def test_resampled_dims() -> None:
    assert resampled_dims(Window(scale=(2.0,)), (4, 5)) == (8, 10)
    assert resampled_dims(Window(scale=(0.5,)), (4, 6)) == (2, 3)
    assert resampled_dims(Window(scale=(2.0, 3.0)), (4, 5)) == (8, 15)
    assert resampled_dims(Window(output=(7,)), (4, 5)) == (7, 7)
    assert resampled_dims(Window(added=(2,)), (4, 5)) == (4, 7)  # F.pad(x, (1, 1)): the last axis
    assert resampled_dims(Window(added=(0, 2, 2)), (4, 5)) is None  # pads the channels too
    assert resampled_dims(Window(scale=(2.0, 2.0, 2.0)), (4, 5)) is None
