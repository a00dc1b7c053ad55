# ruff: noqa: E501, B007, B023 (model sources as strings; small closures in a loop)
"""Exploding-gradient audit corpus: hand-written model sources in several styles."""
import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "build" / "explode_audit" / "cases"
OUT.mkdir(parents=True, exist_ok=True)
CASES = {}

def case(name, shape, src):
    CASES[name] = (shape, src)

# ---------- torch: Sequential MLP, init in a modules() loop
def t_seq(name, act, init, w, d, n_in=32, out=1):
    acts = {"relu": "nn.ReLU()", "tanh": "nn.Tanh()", "selu": "nn.SELU()", "linear": None, "gelu": "nn.GELU()",
            "elu": "nn.ELU()", "leaky": "nn.LeakyReLU(0.2)", "sigmoid": "nn.Sigmoid()"}
    a = acts[act]
    body = f"""import torch.nn as nn


def build_model(n_in={n_in}, width={w}, depth={d}):
    layers = []
    size = n_in
    for _ in range(depth):
        layers.append(nn.Linear(size, width))
{"        layers.append(" + a + ")" if a else ""}
        size = width
    layers.append(nn.Linear(width, {out}))
    model = nn.Sequential(*layers)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            {init}
    return model
"""
    case(name, (n_in,), body)

t_seq("t_seq_relu_normal1_w128_d6", "relu", "nn.init.normal_(m.weight, 0.0, 1.0)", 128, 6)
t_seq("t_seq_relu_normal1_w32_d4", "relu", "nn.init.normal_(m.weight, 0.0, 1.0)", 32, 4)
t_seq("t_seq_tanh_normal1_w256_d8", "tanh", "nn.init.normal_(m.weight, std=1.0)", 256, 8)
t_seq("t_seq_tanh_normal1_w64_d16", "tanh", "nn.init.normal_(m.weight, std=1.0)", 64, 16)
t_seq("t_seq_tanh_normal1_w1024_d4", "tanh", "nn.init.normal_(m.weight, std=1.0)", 1024, 4)
t_seq("t_seq_relu_uniform1_w256_d8", "relu", "nn.init.uniform_(m.weight, -1.0, 1.0)", 256, 8)
t_seq("t_seq_tanh_uniform1_w512_d12", "tanh", "nn.init.uniform_(m.weight, -1, 1)", 512, 12)
t_seq("t_seq_relu_kaiming_tanhgain_w256_d32", "relu", 'nn.init.kaiming_normal_(m.weight, nonlinearity="tanh")', 256, 32)
t_seq("t_seq_relu_kaiming_tanhgain_w256_d48", "relu", 'nn.init.kaiming_normal_(m.weight, nonlinearity="tanh")', 256, 48)
t_seq("t_seq_relu_xavier_gain3_w128_d8", "relu", "nn.init.xavier_normal_(m.weight, gain=3.0)", 128, 8)
t_seq("t_seq_relu_orth_gain2_w256_d10", "relu", "nn.init.orthogonal_(m.weight, gain=2.0)", 256, 10)
t_seq("t_seq_relu_orth_gain2_w256_d20", "relu", "nn.init.orthogonal_(m.weight, gain=2.0)", 256, 20)
t_seq("t_seq_linear_orth_gain15_w128_d32", "linear", "nn.init.orthogonal_(m.weight, gain=1.5)", 128, 32)
t_seq("t_seq_linear_orth_gain11_w128_d32", "linear", "nn.init.orthogonal_(m.weight, gain=1.1)", 128, 32)
t_seq("t_seq_linear_normal_gain_w256_d24", "linear", "nn.init.normal_(m.weight, std=2.0 / m.in_features ** 0.5)", 256, 24)
t_seq("t_seq_relu_xavier_w256_d32", "relu", "nn.init.xavier_uniform_(m.weight)", 256, 32)
t_seq("t_seq_tanh_kaiming_w256_d32", "tanh", 'nn.init.kaiming_normal_(m.weight, nonlinearity="relu")', 256, 32)
t_seq("t_seq_tanh_kaiming_w256_d64", "tanh", 'nn.init.kaiming_normal_(m.weight, nonlinearity="relu")', 256, 64)
t_seq("t_seq_selu_kaiming_w256_d32", "selu", 'nn.init.kaiming_normal_(m.weight, nonlinearity="relu")', 256, 32)
t_seq("t_seq_selu_normal1_w128_d8", "selu", "nn.init.normal_(m.weight, std=1.0)", 128, 8)
t_seq("t_seq_selu_lecun_w256_d32", "selu", 'nn.init.kaiming_normal_(m.weight, nonlinearity="linear")', 256, 32)
t_seq("t_seq_selu_xavier_gain2_w256_d24", "selu", "nn.init.xavier_normal_(m.weight, gain=2.0)", 256, 24)
t_seq("t_seq_gelu_normal1_w512_d6", "gelu", "nn.init.normal_(m.weight, std=1.0)", 512, 6)
t_seq("t_seq_leaky_normal05_w256_d8", "leaky", "nn.init.normal_(m.weight, std=0.5)", 256, 8)
t_seq("t_seq_elu_kaiming_fanout_w1024_d8", "elu", 'nn.init.kaiming_uniform_(m.weight, mode="fan_out", nonlinearity="relu")', 1024, 8)
t_seq("t_seq_relu_kaiming_w1024_d16", "relu", 'nn.init.kaiming_normal_(m.weight, nonlinearity="relu")', 1024, 16)
t_seq("t_seq_sigmoid_normal1_w64_d8", "sigmoid", "nn.init.normal_(m.weight, std=1.0)", 64, 8)

# pyramid with fan_out mode (wrong mode)
case("t_pyramid_relu_kaiming_fanout", (1024,), '''import torch.nn as nn


class Funnel(nn.Module):
    def __init__(self, sizes=(1024, 512, 256, 128, 64, 32, 16)):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = nn.Linear(sizes[-1], 1)
        for layer in self.layers:
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        for layer in self.layers:
            x = layer(x).relu()
        return self.out(x)
''')

# ---------- torch residual (subclassed, ModuleList)
def t_res(name, w, blocks, branch, init="", scale=None, n_in=32):
    sc = f" * {scale}" if scale else ""
    body = f"""import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, dim)
        self.fc2 = nn.Linear(dim, dim)
{init}

    def forward(self, x):
        return x + {branch}{sc}


class ResNet(nn.Module):
    def __init__(self, n_in={n_in}, dim={w}, blocks={blocks}):
        super().__init__()
        self.inp = nn.Linear(n_in, dim)
        self.blocks = nn.ModuleList([Block(dim) for _ in range(blocks)])
        self.out = nn.Linear(dim, 1)

    def forward(self, x):
        x = self.inp(x)
        for blk in self.blocks:
            x = blk(x)
        return self.out(x)


def build_model():
    return ResNet()
"""
    case(name, (n_in,), body)

HE = "        for fc in (self.fc1, self.fc2):\n            nn.init.kaiming_normal_(fc.weight, nonlinearity=\"relu\")\n            nn.init.zeros_(fc.bias)"
t_res("t_res_default_relu2_w256_b32", 256, 32, "self.fc2(F.relu(self.fc1(x)))")
t_res("t_res_default_relu1_w128_b64", 128, 64, "F.relu(self.fc1(x))")
t_res("t_res_he_relu2_w128_b16", 128, 16, "self.fc2(F.relu(self.fc1(x)))", HE)
t_res("t_res_he_relu2_w128_b8", 128, 8, "self.fc2(F.relu(self.fc1(x)))", HE)
t_res("t_res_he_relu2_scaled_w128_b32", 128, 32, "self.fc2(F.relu(self.fc1(x)))", HE, "(1.0 / 32 ** 0.5)")
t_res("t_res_he_relu2_scaled01_w128_b32", 128, 32, "self.fc2(F.relu(self.fc1(x)))", HE, "0.1")
t_res("t_res_default_scaled2_w128_b24", 128, 24, "self.fc2(F.relu(self.fc1(x)))", "", "2.0")
t_res("t_res_he_tanh2_w256_b32", 256, 32, "self.fc2(torch.tanh(self.fc1(x)))", HE)
t_res("t_res_xavier_gelu2_w512_b24", 512, 24, "self.fc2(F.gelu(self.fc1(x)))",
      "        nn.init.xavier_uniform_(self.fc1.weight)\n        nn.init.xavier_uniform_(self.fc2.weight)")
t_res("t_res_normal1_relu1_w64_b8", 64, 8, "F.relu(self.fc1(x))",
      "        self.fc1.weight.data.normal_(0, 1)")

# torch residual in a functional (no block class), in-place add
case("t_res_inplace_he_w256_b24", (64,), '''import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, d_in=64, d=256, n=24):
        super().__init__()
        self.stem = nn.Linear(d_in, d)
        self.hidden = nn.ModuleList()
        for _ in range(n):
            lin = nn.Linear(d, d)
            nn.init.kaiming_uniform_(lin.weight, nonlinearity="relu")
            self.hidden.append(lin)
        self.head = nn.Linear(d, 10)

    def forward(self, x):
        x = self.stem(x)
        for lin in self.hidden:
            out = lin(x)
            out += x
            x = torch.relu(out)
        return self.head(x)
''')

# ---------- torch conv
def t_conv(name, init, ch, d, act="relu", shape=(3, 16, 16), bn=False):
    body = f"""import torch.nn as nn


class ConvNet(nn.Module):
    def __init__(self, ch={ch}, depth={d}):
        super().__init__()
        layers = [nn.Conv2d(3, ch, 3, padding=1), nn.{'ReLU' if act == 'relu' else 'Tanh'}()]
        for _ in range(depth - 1):
            layers += [nn.Conv2d(ch, ch, 3, padding=1){', nn.BatchNorm2d(ch)' if bn else ''}, nn.{'ReLU' if act == 'relu' else 'Tanh'}()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(ch, 10)
        self.apply(self._init)

    def _init(self, m):
        if isinstance(m, nn.Conv2d):
            {init}

    def forward(self, x):
        x = self.pool(self.features(x)).flatten(1)
        return self.fc(x)
"""
    case(name, shape, body)

t_conv("t_conv_relu_normal1_c32_d6", "nn.init.normal_(m.weight, std=1.0)", 32, 6)
t_conv("t_conv_relu_normal01_c64_d8", "nn.init.normal_(m.weight, std=0.1)", 64, 8)
t_conv("t_conv_tanh_normal1_c16_d6", "nn.init.normal_(m.weight, std=1.0)", 16, 6, "tanh")
t_conv("t_conv_relu_uniform1_c32_d4_bn", "nn.init.uniform_(m.weight, -1, 1)", 32, 4, bn=True)
t_conv("t_conv_relu_kaiming_fanout_c64_d12", 'nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")', 64, 12)
t_conv("t_conv_relu_orth_gain2_c32_d10", "nn.init.orthogonal_(m.weight, gain=2.0)", 32, 10)

# ---------- torch recurrent
def t_rnn(name, cell, init, h, T, f=16, nl=""):
    body = f"""import torch
import torch.nn as nn


class SeqNet(nn.Module):
    def __init__(self, n_feat={f}, hidden={h}):
        super().__init__()
        self.rnn = nn.{cell}(n_feat, hidden, batch_first=True{nl})
        self.fc = nn.Linear(hidden, 1)
        for name, p in self.rnn.named_parameters():
            if "weight_hh" in name:
                {init}

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


def train(model, steps=100, seq_len={T}):
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(steps):
        x, y = torch.randn(32, seq_len, {f}), torch.randn(32, 1)
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


if __name__ == "__main__":
    train(SeqNet())
"""
    case(name, (T, f), body)

t_rnn("t_lstm_normal3_h128_T400", "LSTM", "nn.init.normal_(p, std=3.0 / 128 ** 0.5)", 128, 400)
t_rnn("t_lstm_normal3_h128_T100", "LSTM", "nn.init.normal_(p, std=3.0 / 128 ** 0.5)", 128, 100)
t_rnn("t_gru_normal3_h128_T400", "GRU", "nn.init.normal_(p, std=3.0 / 128 ** 0.5)", 128, 400)
t_rnn("t_lstm_normal1_h64_T100", "LSTM", "nn.init.normal_(p, 0.0, 1.0)", 64, 100)
t_rnn("t_gru_orth3_h64_T200", "GRU", "nn.init.orthogonal_(p, gain=3.0)", 64, 200)
t_rnn("t_rnn_tanh_normal2_h128_T100", "RNN", "nn.init.normal_(p, std=2.0 / 128 ** 0.5)", 128, 100)
t_rnn("t_rnn_tanh_normal13_h128_T100", "RNN", "nn.init.normal_(p, std=1.3 / 128 ** 0.5)", 128, 100)
t_rnn("t_rnn_relu_orth12_h64_T100", "RNN", "nn.init.orthogonal_(p, gain=1.2)", 64, 100, nl=', nonlinearity="relu"')
t_rnn("t_rnn_tanh_normal1_h256_T50", "RNN", "p.data.normal_(0, 1)", 256, 50)

# ---------- keras
def k_seq(name, act, init, w, d, n_in=32):
    body = f"""import keras
from keras import layers, initializers


def build_model():
    model = keras.Sequential()
    model.add(keras.Input(shape=({n_in},)))
    for _ in range({d}):
        model.add(layers.Dense({w}, activation="{act}", kernel_initializer={init}))
    model.add(layers.Dense(1))
    return model
"""
    case(name, (n_in,), body)

k_seq("k_seq_relu_rn1_w128_d6", "relu", "initializers.RandomNormal(stddev=1.0)", 128, 6)
k_seq("k_seq_tanh_rn1_w256_d10", "tanh", "initializers.RandomNormal(mean=0.0, stddev=1.0)", 256, 10)
k_seq("k_seq_relu_ru1_w512_d6", "relu", "initializers.RandomUniform(minval=-1.0, maxval=1.0)", 512, 6)
k_seq("k_seq_relu_orth2_w128_d16", "relu", "initializers.Orthogonal(gain=2.0)", 128, 16)
k_seq("k_seq_relu_vs4_w256_d24", "relu", 'initializers.VarianceScaling(scale=4.0, mode="fan_in", distribution="normal")', 256, 24)
k_seq("k_seq_selu_henormal_w256_d32", "selu", '"he_normal"', 256, 32)
k_seq("k_seq_selu_rn1_w64_d8", "selu", "initializers.RandomNormal(stddev=1.0)", 64, 8)
k_seq("k_seq_tanh_henormal_w256_d32", "tanh", '"he_normal"', 256, 32)
k_seq("k_seq_relu_henormal_w256_d32", "relu", '"he_normal"', 256, 32)
k_seq("k_seq_linear_orth15_w128_d24", "linear", "initializers.Orthogonal(gain=1.5)", 128, 24)
k_seq("k_seq_relu_rn01_w1024_d8", "relu", "initializers.RandomNormal(stddev=0.1)", 1024, 8)

case("k_func_res_he_w128_b24", (32,), '''import keras
from keras import layers


def build_model(width=128, blocks=24):
    inputs = keras.Input(shape=(32,))
    x = layers.Dense(width)(inputs)
    for _ in range(blocks):
        h = layers.Dense(width, activation="relu", kernel_initializer="he_normal")(x)
        h = layers.Dense(width, kernel_initializer="he_normal")(h)
        x = layers.Add()([x, h])
    outputs = layers.Dense(1)(x)
    return keras.Model(inputs, outputs)
''')
case("k_func_res_glorot_relu1_w256_b48", (32,), '''import keras
from keras import layers


def build_model(width=256, blocks=48):
    inputs = keras.Input(shape=(32,))
    x = layers.Dense(width)(inputs)
    for _ in range(blocks):
        x = x + layers.Dense(width, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(1)(x))
''')
case("k_func_res_he_scaled_w128_b24", (32,), '''import keras
from keras import layers


def build_model(width=128, blocks=24):
    inputs = keras.Input(shape=(32,))
    x = layers.Dense(width)(inputs)
    for _ in range(blocks):
        h = layers.Dense(width, activation="relu", kernel_initializer="he_normal")(x)
        h = layers.Dense(width, kernel_initializer="he_normal")(h)
        h = 0.2 * h
        x = layers.Add()([x, h])
    return keras.Model(inputs, layers.Dense(1)(x))
''')
case("k_sub_tanh_rn1_w128_d8", (32,), '''import keras
from keras import layers, initializers


class Tower(keras.Model):
    def __init__(self, width=128, depth=8):
        super().__init__()
        init = initializers.RandomNormal(stddev=1.0)
        self.hidden = [layers.Dense(width, activation="tanh", kernel_initializer=init) for _ in range(depth)]
        self.out = layers.Dense(1)

    def call(self, x):
        for layer in self.hidden:
            x = layer(x)
        return self.out(x)


def build_model():
    return Tower()
''')
case("k_conv_relu_rn1_c32_d5", (16, 16, 3), '''import keras
from keras import layers, initializers


def build_model():
    init = initializers.RandomNormal(stddev=1.0)
    inputs = keras.Input(shape=(16, 16, 3))
    x = inputs
    for _ in range(5):
        x = layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer=init)(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(10)(x))
''')
case("k_simplernn_rn_h128_T100", (100, 16), '''import keras
from keras import layers, initializers


def build_model():
    model = keras.Sequential([
        keras.Input(shape=(100, 16)),
        layers.SimpleRNN(128, recurrent_initializer=initializers.RandomNormal(stddev=2.0 / 128 ** 0.5)),
        layers.Dense(1),
    ])
    return model
''')
case("k_lstm_rn_h128_T400", (400, 16), '''import keras
from keras import layers, initializers


def build_model():
    model = keras.Sequential([
        keras.Input(shape=(400, 16)),
        layers.LSTM(128, recurrent_initializer=initializers.RandomNormal(stddev=3.0 / 128 ** 0.5)),
        layers.Dense(1),
    ])
    return model
''')
case("k_gru_orth3_h64_T200", (200, 16), '''import keras
from keras import layers, initializers


def build_model():
    inputs = keras.Input(shape=(200, 16))
    x = layers.GRU(64, recurrent_initializer=initializers.Orthogonal(gain=3.0))(inputs)
    return keras.Model(inputs, layers.Dense(1)(x))
''')

for name, (shape, src) in CASES.items():
    (OUT / f"{name}.py").write_text(src)
(OUT / "shapes.json").write_text(json.dumps({k: v[0] for k, v in CASES.items()}))
print(len(CASES))
