"""Conv layers in the estimate: spatial positions, transposed convs, pooling (gradlint.analysis.spatial).

The end-to-end cases were measured by the protocol (tools/measure_file.py: N(0, 1) input of the shape
given, MSE to N(0, 1) targets, batch 128, train mode, medians of seeds 0-2) on exactly the sources
rendered here. Before the spatial terms the estimated first/last ratio was off by up to 1.6 decades on
such stacks (``before`` below: what gradlint estimated then), and the DCGAN generator's relative
gradients by 1.5-2 decades.
"""

from __future__ import annotations

import pytest

from gradlint.analysis.flow import model_segments, segment_flow
from gradlint.analysis.spatial import conv_spatial, pool_dims, reduced_dims
from gradlint.engine import LintConfig, lint_source
from gradlint.model import Window

_INITS = {
    "dcgan": "nn.init.normal_(m.weight, 0.0, 0.02)",
    "default": None,
    "kaiming": "nn.init.kaiming_normal_(m.weight, nonlinearity='relu')",
}


def _init_lines(init: str, bn_dcgan: bool) -> list[str]:
    body = _INITS[init]
    if body is None and not bn_dcgan:
        return []
    lines = ["        for m in self.modules():",
             "            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):",
             f"                {body or 'pass'}"]
    if bn_dcgan:
        lines += ["            elif isinstance(m, nn.BatchNorm2d):",
                  "                nn.init.normal_(m.weight, 1.0, 0.02)",
                  "                nn.init.zeros_(m.bias)"]
    return lines


def generator(bn: bool, init: str, features: int = 64, layers: int = 5) -> str:
    """DCGAN generator: 100×1×1 latent → 3×64×64, ConvTranspose2d(4, stride 2, padding 1) [+ BN] + ReLU."""
    channels = [features * 2 ** (layers - 2 - i) for i in range(layers - 1)] + [3]
    out = ["import torch.nn as nn", "", "", "class Generator(nn.Module):", "    def __init__(self):",
           "        super().__init__()", "        self.main = nn.Sequential("]
    cin = 100
    for i, c in enumerate(channels):
        stride, pad = (1, 0) if i == 0 else (2, 1)
        out.append(f"            nn.ConvTranspose2d({cin}, {c}, 4, {stride}, {pad}, bias=False),")
        if i < len(channels) - 1:
            out += [f"            nn.BatchNorm2d({c}),"] if bn else []
            out.append("            nn.ReLU(True),")
        cin = c
    out += ["            nn.Tanh(),", "        )", *_init_lines(init, bn and init == "dcgan"), "",
            "    def forward(self, z):", "        return self.main(z)", ""]
    return "\n".join(out)


def discriminator(bn: bool, init: str, features: int = 64) -> str:
    """DCGAN discriminator: 3×64×64 → 1, Conv2d(4, stride 2, padding 1) [+ BN] + LeakyReLU(0.2), sigmoid."""
    out = ["import torch.nn as nn", "", "", "class Discriminator(nn.Module):", "    def __init__(self):",
           "        super().__init__()", "        self.main = nn.Sequential("]
    cin = 3
    for i in range(4):
        c = features * 2 ** i
        out.append(f"            nn.Conv2d({cin}, {c}, 4, 2, 1, bias=False),")
        out += [f"            nn.BatchNorm2d({c}),"] if bn and i > 0 else []
        out.append("            nn.LeakyReLU(0.2, inplace=True),")
        cin = c
    out += [f"            nn.Conv2d({cin}, 1, 4, 1, 0, bias=False),", "            nn.Sigmoid(),", "        )",
            *_init_lines(init, bn and init == "dcgan"), "", "    def forward(self, x):",
            "        return self.main(x).view(-1, 1)", ""]
    return "\n".join(out)


def stack(kernel: int, stride: int, bn: bool, init: str, act: str, head: str) -> str:
    """6 Conv2d(32, kernel, padding kernel//2; ``stride`` on every other layer) [+ BN] + act on 3×32×32, then
    a 1×1 conv head (``conv``) or a spatial mean and a Linear(32, 10) (``pool``)."""
    out = ["import torch.nn as nn", "", "", "class Net(nn.Module):", "    def __init__(self):",
           "        super().__init__()", "        layers = []", "        c = 3", "        for i in range(6):",
           f"            layers.append(nn.Conv2d(c, 32, {kernel}, stride={stride} if i % 2 == 0 else 1, "
           f"padding={kernel // 2}))"]
    out += ["            layers.append(nn.BatchNorm2d(32))"] if bn else []
    out += [f"            layers.append(nn.{'ReLU' if act == 'relu' else 'Tanh'}())", "            c = 32"]
    if head == "conv":
        out += ["        layers.append(nn.Conv2d(c, 3, 1))", "        self.body = nn.Sequential(*layers)"]
    else:
        out += ["        self.body = nn.Sequential(*layers)", "        self.head = nn.Linear(c, 10)"]
    forward = "self.body(x)" if head == "conv" else "self.head(self.body(x).mean(dim=(2, 3)))"
    out += [*_init_lines(init, False), "", "    def forward(self, x):", f"        return {forward}", ""]
    return "\n".join(out)


KERAS_CONV_GAP = """\
import keras
from keras import layers


def build_model():
    inputs = keras.Input(shape=(32, 32, 3))
    x = inputs
    for i in range(6):
        x = layers.Conv2D(32, 3, strides=2 if i % 2 == 0 else 1, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(10)(x)
    return keras.Model(inputs, outputs)
"""

KERAS_GENERATOR = """\
import keras
from keras import layers


def build_model():
    inputs = keras.Input(shape=(100,))
    x = layers.Dense(4 * 4 * 256, use_bias=False)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Reshape((4, 4, 256))(x)
    for filters in (128, 64, 32):
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    outputs = layers.Conv2DTranspose(3, 4, strides=2, padding="same", activation="tanh")(x)
    return keras.Model(inputs, outputs)
"""

# (source, measured log10 ratio / ‖∂L/∂θ‖/‖θ‖ / first-layer ‖∂W‖/‖W‖, the ratio estimated before)
MEASURED = {
    "dcgan generator, BN": (generator(True, "dcgan"), (-1.30, -2.07, -2.95), -0.15),
    "generator, no BN, kaiming": (generator(False, "kaiming"), (-0.08, -2.93, -3.09), 0.32),
    "dcgan discriminator, BN": (discriminator(True, "dcgan"), (-0.31, -0.67, 0.50), -0.26),
    "discriminator, no BN, default": (discriminator(False, "default"), (-1.70, -1.51, -2.71), -1.69),
    "k3 s1 BN relu, conv head": (stack(3, 1, True, "default", "relu", "conv"), (-1.40, -1.18, -1.95), 0.09),
    "k3 s1 BN relu kaiming, mean pool": (stack(3, 1, True, "kaiming", "relu", "pool"), (-1.69, -1.40, -2.67), -0.13),
    "k3 s2 relu, mean pool": (stack(3, 2, False, "default", "relu", "pool"), (-1.66, -1.93, -4.11), -0.98),
    "k5 s2 BN tanh, mean pool": (stack(5, 2, True, "default", "tanh", "pool"), (0.41, -1.32, -1.39), 0.31),
    "k5 s2 relu N(0, 0.02), conv head": (stack(5, 2, False, "dcgan", "relu", "conv"), (-2.20, -1.69, -4.11), -1.28),
    "keras conv BN, global average pool": (KERAS_CONV_GAP, (-0.32, -1.18, -0.79), 0.38),
    "keras DCGAN generator (Dense, Reshape, Conv2DTranspose)": (KERAS_GENERATOR, (-1.00, -2.23, -2.60), 0.16),
}


def _flow(source: str):  # type: ignore[no-untyped-def]
    result = lint_source(source, "model.py", LintConfig())
    assert result.models, "no model extracted"
    segments = model_segments(result.models[0])
    assert len(segments) == 1, "the whole path should be one segment"
    flow = segment_flow(segments[0])
    assert flow is not None
    return result, flow


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_conv_estimate_agrees_with_measurement(name: str) -> None:
    source, (ratio, rel, first), _ = MEASURED[name]
    result, flow = _flow(source)
    assert abs(flow.log10_ratio - ratio) <= 0.5, f"ratio {flow.log10_ratio:.2f}, measured {ratio}"
    assert flow.log10_relative_grad is not None and abs(flow.log10_relative_grad - rel) <= 0.5
    assert flow.log10_first_relative_grad is not None and abs(flow.log10_first_relative_grad - first) <= 0.5
    assert not [d.code for d in result.diagnostics], "measured healthy or borderline: no finding"


def test_torch_input_size_is_an_assumption() -> None:
    _, flow = _flow(stack(3, 1, True, "default", "relu", "conv"))
    assert not flow.exact
    assert any("32×32 assumed" in a for a in flow.assumptions)
    _, flow = _flow(generator(True, "dcgan"))
    assert any("1×1 assumed" in a for a in flow.assumptions)  # a transposed conv first: a latent


def test_transposed_conv_on_a_latent_sums_one_tap_per_channel() -> None:
    first = conv_spatial(Window((4, 4), (1, 1), (0, 0), (1, 1), transposed=True), (1, 1), "torch")
    assert first is not None and first.out_dims == (4, 4) and first.taps == 1.0 and first.uses == 1.0
    # stride 2, kernel 4, padding 1: k²/s² = 4 taps per output in the interior, fewer at the border
    up = conv_spatial(Window((4, 4), (2, 2), (1, 1), (1, 1), transposed=True), (8, 8), "torch")
    assert up is not None and up.out_dims == (16, 16) and 3.4 < up.taps < 4.0


def test_padded_borders_sum_fewer_taps() -> None:
    big = conv_spatial(Window((3, 3), (1, 1), (1, 1), (1, 1)), (32, 32), "torch")
    small = conv_spatial(Window((5, 5), (1, 1), (2, 2), (1, 1)), (4, 4), "torch")
    assert big is not None and big.out_dims == (32, 32) and 8.4 < big.taps < 9.0
    # 3, 4, 4, 3 of 5 taps per axis (3.5 on average); repeated layers weight the centre: the Perron value 3.56
    assert small is not None and 3.5 ** 2 <= small.taps <= 3.6 ** 2
    keras_same = conv_spatial(Window((3, 3), (2, 2), "same", (1, 1)), (32, 32), "keras")
    assert keras_same is not None and keras_same.out_dims == (16, 16)


def test_pooling_and_spatial_means() -> None:
    assert pool_dims(Window(output=(1, 1)), (7, 7), "torch") == ((1, 1), 49)
    assert pool_dims(Window((2, 2), (2, 2), (0, 0), (1, 1)), (8, 8), "torch") == ((4, 4), 4)
    assert reduced_dims(Window(reduce=(2, 3)), (8, 8)) == ((), 64)
    assert reduced_dims(Window(reduce=(-1,)), (8, 8)) == ((8,), 8)
    assert reduced_dims(Window(reduce=(1,)), (8, 8)) is None  # over the channels: not a spatial pool


def test_flatten_before_a_linear_keeps_the_dense_estimate() -> None:
    source = "\n".join([
        "import torch.nn as nn", "import torch.nn.functional as F", "", "",
        "class Net(nn.Module):", "    def __init__(self):", "        super().__init__()",
        "        self.c1 = nn.Conv2d(3, 16, 3, padding=1)",
        "        self.c2 = nn.Conv2d(16, 16, 3, stride=2, padding=1)",
        "        self.fc = nn.Linear(16 * 16 * 16, 10)", "",
        "    def forward(self, x):", "        x = F.relu(self.c2(F.relu(self.c1(x))))",
        "        return self.fc(x.view(x.size(0), -1))", ""])
    result, flow = _flow(source)
    from gradlint.gradflow.propagate import Flatten
    assert any(isinstance(i, Flatten) for i in model_segments(result.models[0])[0].items)
    assert flow.layers[-1].log10_grad > -30
