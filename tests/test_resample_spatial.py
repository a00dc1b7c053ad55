"""Resampling on the path (upsampling, pixel (un)shuffle, padding, repeats): the tensor passes on and
the estimate follows the spatial size it leaves (gradlint.analysis.spatial.resampled_dims)."""

from __future__ import annotations

import pytest

from gradlint.analysis.flow import model_segments, segment_flow
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
                                "x.unfold(2, 1, 1)[..., 0]",
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


# Measured by the protocol (tools/measure_file.py on exactly these sources: N(0, 1) input of the shape
# given, MSE to N(0, 1) targets, batch 128, medians of seeds 0-2), log10 of: the first/last weight-gradient
# ratio, ‖∂L/∂θ‖/‖θ‖, the first layer's ‖∂W‖/‖W‖. ``before``: the estimate when the path dropped the
# resampling modules and the view to a feature map (the conv layers read as seeing one position).
_RESIZE_CONV_GENERATOR = """import torch
import torch.nn as nn
import torch.nn.functional as F


class Generator(nn.Module):
    def __init__(self, nz=64, ch=64):
        super().__init__()
        self.ch = ch
        self.fc = nn.Linear(nz, ch * 4 * 4)
        self.convs = nn.ModuleList([nn.Conv2d(ch, ch, 3, padding=1) for _ in range(6)])
        self.to_rgb = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z):
        x = F.relu(self.fc(z)).view(-1, self.ch, 4, 4)
        for i, conv in enumerate(self.convs):
            if i % 2 == 0:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = F.relu(conv(x))
        return torch.tanh(self.to_rgb(x))
"""  # input (64,): measured 4.4e-03, 1.5e-03, 2.4e-06 (borderline)
_DCGAN_INIT_UPSAMPLE_GENERATOR = """import torch
import torch.nn as nn


def weights_init(m):
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, nz=100, ngf=64):
        super().__init__()
        self.project = nn.Linear(nz, ngf * 4 * 4 * 4)
        self.ngf = ngf
        self.main = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(ngf * 4, ngf * 2, 3, 1, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(ngf * 2, ngf, 3, 1, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(ngf, ngf, 3, 1, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(ngf, 3, 3, 1, 1),
            nn.Tanh(),
        )
        self.apply(weights_init)

    def forward(self, z):
        x = self.project(z).view(-1, self.ngf * 4, 4, 4)
        return self.main(x)
"""  # input (100,): measured 3.5e-01, 5.2e-04, 5.9e-05 (borderline)
_KERAS_UPSAMPLING_GENERATOR = """import keras
from keras import layers

model = keras.Sequential([
    keras.Input(shape=(64,)),
    layers.Dense(4 * 4 * 64, activation="relu"),
    layers.Reshape((4, 4, 64)),
    layers.UpSampling2D(),
    layers.Conv2D(64, 3, padding="same", activation="relu"),
    layers.UpSampling2D(),
    layers.Conv2D(64, 3, padding="same", activation="relu"),
    layers.UpSampling2D(),
    layers.Conv2D(32, 3, padding="same", activation="relu"),
    layers.ZeroPadding2D(1),
    layers.Conv2D(3, 3, activation="tanh"),
])
"""  # input (64,): measured 9.9e-02, 2.5e-02, 1.2e-03 (healthy)
_SR_REFLECT_PAD_PIXEL_SHUFFLE = """import torch.nn as nn


class SR(nn.Module):
    def __init__(self, ch=48, depth=6, scale=2):
        super().__init__()
        layers = [nn.ReflectionPad2d(2), nn.Conv2d(3, ch, 5), nn.Tanh()]
        for _ in range(depth):
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.Tanh()]
        layers += [nn.Conv2d(ch, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)
"""  # input (3, 32, 32): measured 1.7e-02, 2.9e-03, 5.7e-05 (borderline)


@pytest.mark.parametrize("source,measured,before", [
    (_RESIZE_CONV_GENERATOR, (-2.36, -2.82, -5.62), (-1.49, -2.23, -4.08)),
    (_DCGAN_INIT_UPSAMPLE_GENERATOR, (-0.46, -3.28, -4.23), (0.00, -2.03, -2.35)),
    (_SR_REFLECT_PAD_PIXEL_SHUFFLE, (-1.77, -2.54, -4.24), (-1.49, -2.56, -3.97)),
    (_KERAS_UPSAMPLING_GENERATOR, (-1.00, -1.60, -2.92), (0.04, -1.65, -2.02)),
], ids=["resize-conv", "dcgan-init-upsample", "sr-pad-shuffle", "keras-upsampling"])
def test_measured_estimates_of_resampling_generators(source: str, measured: tuple[float, float, float],
                                                     before: tuple[float, float, float]) -> None:
    (segment,) = model_segments(lint_source(source, "gen.py", LintConfig()).models[0])
    flow = segment_flow(segment)
    assert flow is not None and flow.log10_relative_grad is not None and flow.log10_first_relative_grad is not None
    got = (flow.log10_ratio, flow.log10_relative_grad, flow.log10_first_relative_grad)
    for estimate, value in zip(got, measured, strict=True):
        assert abs(estimate - value) <= 0.5, (got, measured)
    assert sum(abs(g - m) for g, m in zip(got, measured, strict=True)) < \
        sum(abs(b - m) for b, m in zip(before, measured, strict=True))


def test_resampled_dims() -> None:
    assert resampled_dims(Window(scale=(2.0,)), (4, 5)) == (8, 10)
    assert resampled_dims(Window(scale=(0.5,)), (4, 6)) == (2, 3)
    assert resampled_dims(Window(scale=(2.0, 3.0)), (4, 5)) == (8, 15)
    assert resampled_dims(Window(output=(7,)), (4, 5)) == (7, 7)
    assert resampled_dims(Window(added=(2,)), (4, 5)) == (4, 7)  # F.pad(x, (1, 1)): the last axis
    assert resampled_dims(Window(added=(0, 2, 2)), (4, 5)) is None  # pads the channels too
    assert resampled_dims(Window(scale=(2.0, 2.0, 2.0)), (4, 5)) is None


@pytest.mark.parametrize("view,dims", [
    ("x.view(-1, 16, 8, 8)", (8, 8)), ("x.reshape(x.size(0), 16, 4, 16)", (4, 16)),
    ("torch.reshape(x, (-1, 16, 8, 8))", (8, 8)), ("self.aux(x)", (8, 8)),
])
def test_a_view_to_a_literal_feature_map_gives_the_convs_after_it_their_size(view: str, dims: tuple[int, int]) -> None:
    source = f"""
import torch
import torch.nn as nn


class Gen(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(32, 16 * 64)
        self.aux = nn.Unflatten(1, (16, 8, 8))
        self.conv = nn.Conv2d(16, 3, 3, padding=1)

    def forward(self, x):
        x = torch.relu(self.fc(x))
        x = {view}
        return self.conv(x)
"""
    assert _positions(source) == [1, dims[0] * dims[1]]


@pytest.mark.parametrize("op", ["rearrange(x, 'b c h w -> b c w h')", "repeat(x, 'b c h w -> b c (h 2) w')",
                                "self.aux(x)"])
def test_einops_rearrangements_keep_the_path(op: str) -> None:
    source = _TORCH.format(op=op, aux="Rearrange('b c h w -> b c w h')", pad=1).replace(
        "import torch.nn.functional as F\n",
        "import torch.nn.functional as F\nfrom einops import rearrange, repeat\n"
        "from einops.layers.torch import Rearrange\n")
    result = lint_source(source, "net.py", LintConfig())
    assert result.models[0].fully_understood
    assert len(model_segments(result.models[0])) == 1
    reduced = source.replace(op, "reduce(x, 'b c h w -> b c', 'mean')").replace(
        "import rearrange, repeat", "import rearrange, reduce, repeat")
    assert not lint_source(reduced, "net.py", LintConfig()).models[0].fully_understood  # its pattern decides
