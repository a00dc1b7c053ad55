# ruff: noqa: E501, B007, B023 (model sources as strings; small closures in a loop)
import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "build" / "explode_audit" / "cases"
CASES = {}
def case(name, shape, src): CASES[name] = (shape, src)
case("t4_shortcut_scaled_15_w128_b16", (32,), '''import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)

    def forward(self, x):
        return 1.5 * x + torch.relu(self.fc(x))


class Net(nn.Module):
    def __init__(self, d=128, n=16):
        super().__init__()
        self.inp = nn.Linear(32, d)
        self.blocks = nn.ModuleList(Block(d) for _ in range(n))
        self.out = nn.Linear(d, 1)

    def forward(self, x):
        x = self.inp(x)
        for b in self.blocks:
            x = b(x)
        return self.out(x)
''')
case("t4_residual_dropout_he_w256_b16", (32,), '''import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, p=0.1):
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.drop = nn.Dropout(p)
        nn.init.kaiming_normal_(self.fc.weight, nonlinearity="relu")

    def forward(self, x):
        return x + self.drop(F.relu(self.fc(x)))


class Net(nn.Module):
    def __init__(self, d=256, n=16):
        super().__init__()
        self.inp = nn.Linear(32, d)
        self.blocks = nn.Sequential(*[Block(d) for _ in range(n)])
        self.out = nn.Linear(d, 1)

    def forward(self, x):
        return self.out(self.blocks(self.inp(x)))
''')
case("t4_flinear_param_randn_tanh_w128_d6", (32,), '''import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self, width=128, depth=6):
        super().__init__()
        sizes = [32] + [width] * depth + [1]
        self.ws = nn.ParameterList([nn.Parameter(torch.randn(o, i)) for i, o in zip(sizes[:-1], sizes[1:])])

    def forward(self, x):
        for w in self.ws[:-1]:
            x = torch.tanh(F.linear(x, w))
        return F.linear(x, self.ws[-1])
''')
case("t4_stacked_gru_orth3_h128_T300", (300, 16), '''import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(16, 128, num_layers=2, batch_first=True)
        for name, param in self.gru.named_parameters():
            if name.startswith("weight_hh"):
                nn.init.orthogonal_(param, gain=3.0)
        self.head = nn.Linear(128, 1)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[:, -1, :])


model = Net()
inputs = torch.randn(64, 300, 16)
targets = torch.randn(64, 1)
loss = nn.MSELoss()(model(inputs), targets)
loss.backward()
''')
case("k4_lambda_scale_relu_he_w256_d12", (32,), '''import keras
from keras import layers


def build_model():
    inputs = keras.Input(shape=(32,))
    x = inputs
    for _ in range(12):
        x = layers.Dense(256, activation="relu", kernel_initializer="he_normal")(x)
        x = layers.Lambda(lambda t: t * 2.0)(x)
    return keras.Model(inputs, layers.Dense(1)(x))
''')
case("k4_bn_after_rn1_relu_w256_d12", (32,), '''import keras
from keras import layers, initializers


def build_model():
    model = keras.Sequential([keras.Input(shape=(32,))])
    for _ in range(12):
        model.add(layers.Dense(256, kernel_initializer=initializers.RandomNormal(stddev=1.0)))
        model.add(layers.BatchNormalization())
        model.add(layers.Activation("relu"))
    model.add(layers.Dense(1))
    return model
''')
case("k4_elu_he_w256_d32", (32,), '''import keras
from keras import layers


def build_model():
    model = keras.Sequential([keras.Input(shape=(32,))])
    for _ in range(32):
        model.add(layers.Dense(256, activation="elu", kernel_initializer="he_normal"))
    model.add(layers.Dense(1))
    return model
''')
case("k4_gaussian_dropout_he_w256_d16", (32,), '''import keras
from keras import layers


def build_model():
    model = keras.Sequential([keras.Input(shape=(32,))])
    for _ in range(16):
        model.add(layers.Dense(256, activation="relu", kernel_initializer="he_normal"))
        model.add(layers.GaussianDropout(0.5))
    model.add(layers.Dense(1))
    return model
''')
for name, (shape, src) in CASES.items():
    (OUT / f"{name}.py").write_text(src)
shapes = json.loads((OUT / "shapes.json").read_text())
shapes.update({k: v[0] for k, v in CASES.items()})
(OUT / "shapes.json").write_text(json.dumps(shapes))
