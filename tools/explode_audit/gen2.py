# ruff: noqa: E501, B007, B023 (model sources as strings; small closures in a loop)
"""Second batch: more coding styles of the same mechanisms."""
import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "build" / "explode_audit" / "cases"
CASES = {}
def case(name, shape, src): CASES[name] = (shape, src)

case("t2_param_randn_relu_w256_d6", (64,), '''import torch
import torch.nn as nn


class RawMLP(nn.Module):
    def __init__(self, n_in=64, width=256, depth=6):
        super().__init__()
        dims = [n_in] + [width] * depth
        self.weights = nn.ParameterList([nn.Parameter(torch.randn(a, b)) for a, b in zip(dims[:-1], dims[1:])])
        self.out = nn.Linear(width, 1)

    def forward(self, x):
        for w in self.weights:
            x = torch.relu(x @ w)
        return self.out(x)
''')
case("t2_weight_mul_inplace_w128_d10", (32,), '''import torch
import torch.nn as nn


class Scaled(nn.Module):
    def __init__(self, width=128, depth=10):
        super().__init__()
        self.inp = nn.Linear(32, width)
        self.hidden = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        self.out = nn.Linear(width, 1)
        with torch.no_grad():
            for layer in self.hidden:
                layer.weight.mul_(6.0)

    def forward(self, x):
        x = torch.relu(self.inp(x))
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.out(x)
''')
case("t2_forward_scale_w128_d12", (32,), '''import torch.nn as nn
import torch.nn.functional as F


class Amplified(nn.Module):
    def __init__(self, width=128, depth=12, scale=3.0):
        super().__init__()
        self.scale = scale
        self.inp = nn.Linear(32, width)
        self.hidden = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        self.out = nn.Linear(width, 1)

    def forward(self, x):
        x = self.inp(x)
        for layer in self.hidden:
            x = F.relu(layer(x)) * self.scale
        return self.out(x)
''')
case("t2_init_helper_fn_tanh_w512_d8", (32,), '''import torch.nn as nn


def init_weights(m):
    if type(m) == nn.Linear:
        m.weight.data.normal_(0.0, 0.2)
        m.bias.data.fill_(0.0)


class Net(nn.Module):
    def __init__(self, width=512, depth=8):
        super().__init__()
        layers = [nn.Linear(32, width), nn.Tanh()]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.Tanh()]
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def build_model():
    model = Net()
    model.apply(init_weights)
    return model
''')
case("t2_stdv_uniform_sqrt_fanin_relu_w256_d12", (32,), '''import math
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width=256, depth=12):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(32 if i == 0 else width, width) for i in range(depth)])
        self.out = nn.Linear(width, 1)
        self.reset_parameters()

    def reset_parameters(self):
        for layer in self.layers:
            stdv = 3.0 / math.sqrt(layer.weight.size(1))
            layer.weight.data.uniform_(-stdv, stdv)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x).clamp(min=0)
        return self.out(x)
''')
case("t2_vgg_cfg_conv_normal_fanout_c64", (3, 16, 16), '''import math
import torch.nn as nn

CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256]


def make_layers(cfg):
    layers, in_ch = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(in_ch, v, 3, padding=1), nn.ReLU(inplace=True)]
            in_ch = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = make_layers(CFG)
        self.classifier = nn.Linear(256 * 4 * 4, 10)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / n))
                m.bias.data.zero_()

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))
''')
case("t2_vgg_cfg_conv_normal1", (3, 16, 16), '''import torch.nn as nn

CFG = [32, 32, "M", 64, 64, "M", 128]


class VGGish(nn.Module):
    def __init__(self):
        super().__init__()
        layers, c = [], 3
        for v in CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                conv = nn.Conv2d(c, v, kernel_size=3, padding=1)
                nn.init.normal_(conv.weight, 0, 1)
                layers += [conv, nn.ReLU()]
                c = v
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(128 * 4 * 4, 10)

    def forward(self, x):
        x = self.features(x)
        return self.fc(x.view(x.size(0), -1))
''')
case("t2_conv1d_stack_uniform1_c64_d6", (8, 64), '''import torch
import torch.nn as nn


class TCN(nn.Module):
    def __init__(self, c_in=8, ch=64, depth=6):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv1d(c_in if i == 0 else ch, ch, 3, padding=1) for i in range(depth)])
        for conv in self.convs:
            nn.init.uniform_(conv.weight, -1.0, 1.0)
        self.head = nn.Linear(ch, 1)

    def forward(self, x):
        for conv in self.convs:
            x = torch.relu(conv(x))
        return self.head(x.mean(-1))
''')
case("t2_resnet_basicblock_nobn_he_c32_b8", (16, 16, 16), '''import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)

    def forward(self, x):
        out = F.relu(self.conv1(x))
        out = self.conv2(out)
        out += x
        return F.relu(out)


class ResNetNoBN(nn.Module):
    def __init__(self, ch=32, blocks=8):
        super().__init__()
        self.stem = nn.Conv2d(16, ch, 3, padding=1)
        self.layer = nn.Sequential(*[BasicBlock(ch) for _ in range(blocks)])
        self.fc = nn.Linear(ch, 10)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.layer(self.stem(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))
''')
case("t2_resnet_basicblock_bn_he_c32_b8", (16, 16, 16), '''import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return F.relu(out)


class ResNetBN(nn.Module):
    def __init__(self, ch=32, blocks=8):
        super().__init__()
        self.stem = nn.Conv2d(16, ch, 3, padding=1)
        self.layer = nn.Sequential(*[BasicBlock(ch) for _ in range(blocks)])
        self.fc = nn.Linear(ch, 10)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.layer(self.stem(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))
''')
case("t2_dict_sequential_normal1_elu_w64_d5", (16,), '''from collections import OrderedDict

import torch.nn as nn


def build_model(width=64, depth=5):
    layers = OrderedDict()
    size = 16
    for i in range(depth):
        layers[f"fc{i}"] = nn.Linear(size, width)
        layers[f"act{i}"] = nn.ELU()
        size = width
    layers["out"] = nn.Linear(width, 1)
    model = nn.Sequential(layers)
    for name, p in model.named_parameters():
        if "weight" in name:
            nn.init.normal_(p, std=1.0)
    return model
''')
case("t2_gelu_residual_branch_gain2_w256_b16", (64,), '''import torch
import torch.nn as nn


class MLPBlock(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        nn.init.xavier_uniform_(self.fc1.weight, gain=2.0)
        nn.init.xavier_uniform_(self.fc2.weight, gain=2.0)

    def forward(self, x):
        return x + self.fc2(self.act(self.fc1(x)))


class Mixer(nn.Module):
    def __init__(self, dim=256, depth=16):
        super().__init__()
        self.embed = nn.Linear(64, dim)
        self.blocks = nn.Sequential(*[MLPBlock(dim, 4 * dim) for _ in range(depth)])
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        return self.head(self.blocks(self.embed(x)))
''')
case("t2_deep_linear_eye_scaled_w64_d40", (64,), '''import torch
import torch.nn as nn


class DeepLinear(nn.Module):
    def __init__(self, width=64, depth=40):
        super().__init__()
        self.layers = nn.Sequential(*[nn.Linear(width, width, bias=False) for _ in range(depth)])
        for layer in self.layers:
            nn.init.orthogonal_(layer.weight, gain=1.3)

    def forward(self, x):
        return self.layers(x).sum(dim=1, keepdim=True)
''')
case("t2_hand_rnn_loop_tanh_h128_T60", (60, 16), '''import torch
import torch.nn as nn


class HandRNN(nn.Module):
    def __init__(self, n_in=16, hidden=128):
        super().__init__()
        self.cell = nn.RNNCell(n_in, hidden)
        nn.init.normal_(self.cell.weight_hh, std=2.5 / hidden ** 0.5)
        self.out = nn.Linear(hidden, 1)
        self.hidden = hidden

    def forward(self, x):
        h = torch.zeros(x.size(0), self.hidden)
        for t in range(x.size(1)):
            h = self.cell(x[:, t], h)
        return self.out(h)


if __name__ == "__main__":
    model = HandRNN()
    x = torch.randn(32, 60, 16)
    loss = model(x).pow(2).mean()
    loss.backward()
''')
# keras styles
case("k2_string_random_normal_relu_w1024_d12", (32,), '''from tensorflow import keras
from tensorflow.keras import layers


def build_model():
    model = keras.Sequential()
    model.add(layers.Dense(1024, activation="relu", kernel_initializer="random_normal", input_shape=(32,)))
    for _ in range(11):
        model.add(layers.Dense(1024, activation="relu", kernel_initializer="random_normal"))
    model.add(layers.Dense(1))
    return model
''')
case("k2_positional_randomnormal_tanh_w256_d12", (32,), '''import keras
from keras.layers import Dense
from keras.initializers import RandomNormal


def build_model():
    model = keras.Sequential([keras.Input(shape=(32,))])
    for _ in range(12):
        model.add(Dense(256, activation="tanh", kernel_initializer=RandomNormal(0.0, 1.0)))
    model.add(Dense(10))
    return model
''')
case("k2_vs_fanout_scale2_relu_funnel", (1024,), '''import keras
from keras import layers


def build_model(sizes=(512, 256, 128, 64, 32, 16)):
    init = keras.initializers.VarianceScaling(scale=2.0, mode="fan_out", distribution="truncated_normal")
    inputs = keras.Input(shape=(1024,))
    x = inputs
    for units in sizes:
        x = layers.Dense(units, activation="relu", kernel_initializer=init)(x)
    return keras.Model(inputs, layers.Dense(1)(x))
''')
case("k2_subclassed_residual_he_w256_b32", (64,), '''import keras
from keras import layers


class ResidualDense(layers.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.d1 = layers.Dense(units, activation="relu", kernel_initializer="he_normal")
        self.d2 = layers.Dense(units, kernel_initializer="he_normal")

    def call(self, x):
        return x + self.d2(self.d1(x))


class Net(keras.Model):
    def __init__(self, units=256, blocks=32):
        super().__init__()
        self.stem = layers.Dense(units)
        self.blocks = [ResidualDense(units) for _ in range(blocks)]
        self.head = layers.Dense(1)

    def call(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def build_model():
    return Net()
''')
case("k2_subclassed_residual_he_ln_w256_b32", (64,), '''import keras
from keras import layers


class ResidualDense(layers.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.norm = layers.LayerNormalization()
        self.d1 = layers.Dense(units, activation="relu", kernel_initializer="he_normal")
        self.d2 = layers.Dense(units, kernel_initializer="he_normal")

    def call(self, x):
        return x + self.d2(self.d1(self.norm(x)))


class Net(keras.Model):
    def __init__(self, units=256, blocks=32):
        super().__init__()
        self.stem = layers.Dense(units)
        self.blocks = [ResidualDense(units) for _ in range(blocks)]
        self.head = layers.Dense(1)

    def call(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def build_model():
    return Net()
''')
case("k2_conv1d_glorot_tanh_deep_c64_d16", (64, 8), '''import keras
from keras import layers


def build_model():
    inputs = keras.Input(shape=(64, 8))
    x = inputs
    for _ in range(16):
        x = layers.Conv1D(64, 3, padding="same", activation="tanh", kernel_initializer="he_uniform")(x)
    x = layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, layers.Dense(1)(x))
''')
case("k2_selu_lecun_dropout_w512_d24", (32,), '''import keras
from keras import layers


def build_model():
    model = keras.Sequential([keras.Input(shape=(32,))])
    for _ in range(24):
        model.add(layers.Dense(512, activation="selu", kernel_initializer="lecun_normal"))
        model.add(layers.AlphaDropout(0.1))
    model.add(layers.Dense(1))
    return model
''')
case("k2_lstm_stdv1_recurrent_string_T50", (50, 16), '''import keras
from keras import layers


def build_model():
    inputs = keras.Input(shape=(50, 16))
    x = layers.LSTM(64, recurrent_initializer=keras.initializers.RandomNormal(stddev=1.0))(inputs)
    return keras.Model(inputs, layers.Dense(1)(x))
''')
for name, (shape, src) in CASES.items():
    (OUT / f"{name}.py").write_text(src)
shapes = json.loads((OUT / "shapes.json").read_text())
shapes.update({k: v[0] for k, v in CASES.items()})
(OUT / "shapes.json").write_text(json.dumps(shapes))
print(len(CASES))
