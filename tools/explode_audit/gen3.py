# ruff: noqa: E501, B007, B023 (model sources as strings; small closures in a loop)
import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "build" / "explode_audit" / "cases"
CASES = {}
def case(name, shape, src): CASES[name] = (shape, src)
def tdrop(name, p, d, w=256, init='nn.init.kaiming_normal_(m.weight, nonlinearity="relu")', act="nn.ReLU()", drop="nn.Dropout"):
    case(name, (32,), f'''import torch.nn as nn


def build_model(width={w}, depth={d}, p={p}):
    layers, size = [], 32
    for _ in range(depth):
        layers += [nn.Linear(size, width), {act}, {drop}(p)]
        size = width
    layers.append(nn.Linear(width, 1))
    model = nn.Sequential(*layers)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            {init}
    return model
''')
tdrop("t3_dropout05_he_relu_w256_d16", 0.5, 16)
tdrop("t3_dropout05_he_relu_w256_d8", 0.5, 8)
tdrop("t3_dropout02_he_relu_w256_d24", 0.2, 24)
tdrop("t3_dropout05_default_relu_w256_d16", 0.5, 16, init="pass")
tdrop("t3_dropout05_xavier_tanh_w256_d16", 0.5, 16, init="nn.init.xavier_uniform_(m.weight)", act="nn.Tanh()")
tdrop("t3_alphadropout01_selu_lecun_w512_d24", 0.1, 24, w=512, init='nn.init.kaiming_normal_(m.weight, nonlinearity="linear")', act="nn.SELU()", drop="nn.AlphaDropout")
case("k3_dropout05_he_relu_w256_d12", (32,), '''import keras
from keras import layers


def build_model():
    model = keras.Sequential([keras.Input(shape=(32,))])
    for _ in range(12):
        model.add(layers.Dense(256, activation="relu", kernel_initializer="he_normal"))
        model.add(layers.Dropout(0.5))
    model.add(layers.Dense(1))
    return model
''')
case("k3_dropout05_glorot_relu_w256_d12", (32,), '''import keras
from keras import layers


def build_model():
    model = keras.Sequential([keras.Input(shape=(32,))])
    for _ in range(12):
        model.add(layers.Dense(256, activation="relu"))
        model.add(layers.Dropout(0.5))
    model.add(layers.Dense(1))
    return model
''')
for name, (shape, src) in CASES.items():
    (OUT / f"{name}.py").write_text(src)
shapes = json.loads((OUT / "shapes.json").read_text())
shapes.update({k: v[0] for k, v in CASES.items()})
(OUT / "shapes.json").write_text(json.dumps(shapes))
