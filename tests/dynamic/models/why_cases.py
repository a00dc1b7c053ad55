"""Models from issue 11's "Why" list that the old dynamic verdict called healthy (or vanishing).

Loaded by the dynamic check's worker only; pytest never imports this file.
"""

import torch
import torch.nn as nn


class ResidualNoNorm(nn.Module):
    """12 blocks x = x + relu(fc(x)), He init, no normalization: forward variance ~2^L."""

    def __init__(self, width=64, blocks=12):
        super().__init__()
        self.stem = nn.Linear(32, width)
        self.fcs = nn.ModuleList([nn.Linear(width, width) for _ in range(blocks)])
        self.head = nn.Linear(width, 10)
        for fc in self.fcs:
            nn.init.kaiming_normal_(fc.weight, nonlinearity="relu")
            nn.init.zeros_(fc.bias)

    def forward(self, x):
        x = self.stem(x)
        for fc in self.fcs:
            x = x + torch.relu(fc(x))
        return self.head(x)


class ChaoticTanh(nn.Module):
    """10 tanh layers of width 128 with N(0, 1) weights: chaotic phase, most units saturated."""

    def __init__(self, width=128, depth=10):
        super().__init__()
        layers = [nn.Linear(32, width), nn.Tanh()]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.Tanh()]
        self.body = nn.Sequential(*layers, nn.Linear(width, 10))
        for m in self.body:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=1.0)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.body(x)


class UniformVanishing(nn.Module):
    """20 ReLU layers of width 64, U(-0.05, 0.05): every gradient ~1e-15, ratio ~1."""

    def __init__(self, width=64, depth=20):
        super().__init__()
        layers = [nn.Linear(32, width), nn.ReLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.ReLU()]
        self.body = nn.Sequential(*layers, nn.Linear(width, 10))
        for m in self.body:
            if isinstance(m, nn.Linear):
                nn.init.uniform_(m.weight, -0.05, 0.05)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.body(x)


class ForwardBlowUp(nn.Module):
    """8 ReLU layers of width 256, N(0, 1): the loss at init is ~1e15, the ratio ~1e-2."""

    def __init__(self, width=256, depth=8):
        super().__init__()
        layers = [nn.Linear(32, width), nn.ReLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.ReLU()]
        self.body = nn.Sequential(*layers, nn.Linear(width, 10))
        for m in self.body:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=1.0)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.body(x)


class SoftmaxOneUnit(nn.Module):
    """Softmax over a single output unit outputs the constant 1: every gradient is exactly 0."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 1), nn.Softmax(dim=-1))

    def forward(self, x):
        return self.body(x)


class AllZeros(nn.Module):
    """Every weight and bias zero: symmetric (identical units), not "vanishing"."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        for m in self.body:
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.body(x)


class SaturatedTanh(nn.Module):
    """6 tanh layers of width 256 with N(0, 1) weights: ~80 % of the units saturated, ratio ~3e2
    (the old verdict, on the ratio alone, said healthy)."""

    def __init__(self, width=256, depth=6):
        super().__init__()
        layers = [nn.Linear(32, width), nn.Tanh()]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.Tanh()]
        self.body = nn.Sequential(*layers, nn.Linear(width, 10))
        for m in self.body:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=1.0)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.body(x)
