# ruff: noqa: E501, B007, B023 (model sources as strings; small closures in a loop)
import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "build" / "explode_audit" / "cases"
CASES = {}
def case(name, shape, src): CASES[name] = (shape, src)
case("t7_custom_linear_subclass_normal", (32,), '''import torch.nn as nn


class NoisyLinear(nn.Linear):
    def reset_parameters(self):
        nn.init.normal_(self.weight)
        nn.init.zeros_(self.bias)


class Net(nn.Module):
    def __init__(self, width=256, depth=6):
        super().__init__()
        self.layers = nn.ModuleList([NoisyLinear(32 if i == 0 else width, width) for i in range(depth)])
        self.out = nn.Linear(width, 1)

    def forward(self, x):
        for layer in self.layers:
            x = nn.functional.relu(layer(x))
        return self.out(x)
''')
case("t7_assign_parameter_randn_scaled", (32,), '''import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width=128, depth=8):
        super().__init__()
        self.layers = nn.ModuleList()
        for i in range(depth):
            layer = nn.Linear(32 if i == 0 else width, width)
            layer.weight = nn.Parameter(torch.randn(width, 32 if i == 0 else width) * 0.5)
            self.layers.append(layer)
        self.out = nn.Linear(width, 1)

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return self.out(x)
''')
case("t7_dcgan_classname_find_normal1", (32,), '''import torch.nn as nn


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Linear") != -1:
        m.weight.data.normal_(0.0, 1.0)
        m.bias.data.fill_(0)


class Generator(nn.Module):
    def __init__(self, nz=32, ngf=256):
        super().__init__()
        self.main = nn.Sequential(
            nn.Linear(nz, ngf), nn.LeakyReLU(0.2),
            nn.Linear(ngf, ngf), nn.LeakyReLU(0.2),
            nn.Linear(ngf, ngf), nn.LeakyReLU(0.2),
            nn.Linear(ngf, ngf), nn.LeakyReLU(0.2),
            nn.Linear(ngf, 1),
        )

    def forward(self, z):
        return self.main(z)


def build_model():
    net = Generator()
    net.apply(weights_init)
    return net
''')
case("t7_parameters_loop_uniform1_tanh", (32,), '''import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width=512, depth=10):
        super().__init__()
        layers = []
        for i in range(depth):
            layers += [nn.Linear(32 if i == 0 else width, width), nn.Tanh()]
        self.body = nn.Sequential(*layers, nn.Linear(width, 1))
        for p in self.parameters():
            p.data.uniform_(-1, 1)

    def forward(self, x):
        return self.body(x)
''')
case("t7_xavier_relugain_tanh_w256_d32", (32,), '''import torch.nn as nn


def build_model():
    gain = nn.init.calculate_gain("relu")
    layers = []
    for i in range(32):
        lin = nn.Linear(32 if i == 0 else 256, 256)
        nn.init.xavier_uniform_(lin.weight, gain=gain)
        layers += [lin, nn.Tanh()]
    return nn.Sequential(*layers, nn.Linear(256, 1))
''')
case("t7_conv_transpose_normal1_decoder", (64,), '''import torch.nn as nn


class Decoder(nn.Module):
    def __init__(self, nz=64, ch=64):
        super().__init__()
        self.fc = nn.Linear(nz, ch * 4 * 4)
        self.up = nn.Sequential(
            nn.ConvTranspose2d(ch, ch, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(ch, ch, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(ch, 3, 4, 2, 1),
        )
        self.ch = ch
        for m in self.modules():
            if isinstance(m, (nn.ConvTranspose2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 1.0)

    def forward(self, z):
        x = self.fc(z).view(-1, self.ch, 4, 4)
        return self.up(x).mean(dim=(1, 2, 3)).unsqueeze(1)
''')
for name, (shape, src) in CASES.items():
    (OUT / f"{name}.py").write_text(src)
shapes = json.loads((OUT / "shapes.json").read_text())
shapes.update({k: v[0] for k, v in CASES.items()})
(OUT / "shapes.json").write_text(json.dumps(shapes))
