"""Torch models for the dynamic-check tests (loaded by the worker, never imported by pytest)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class DeepSigmoidNet(nn.Module):
    """Seed-style: 11 Linear layers with sigmoid, PyTorch default init."""

    def __init__(self, width: int = 64, depth: int = 11):
        super().__init__()
        dims = [20] + [width] * (depth - 1) + [1]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x):
        for layer in self.layers:
            x = torch.sigmoid(layer(x))
        return x


class DeepReluBNNet(nn.Module):
    """The fix: Linear -> ReLU -> BatchNorm, same depth."""

    def __init__(self, width: int = 64, depth: int = 11):
        super().__init__()
        blocks = []
        in_dim = 20
        for _ in range(depth - 1):
            blocks += [nn.Linear(in_dim, width), nn.ReLU(), nn.BatchNorm1d(width)]
            in_dim = width
        blocks += [nn.Linear(in_dim, 1), nn.Sigmoid()]
        self.net = nn.Sequential(*blocks)

    def forward(self, x):
        return self.net(x)


class ZeroInitNet(nn.Module):
    """Every weight and bias zero: hidden units stay identical (symmetric)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 32), nn.Sigmoid(), nn.Linear(32, 32), nn.Sigmoid(), nn.Linear(32, 1))
        for p in self.parameters():
            nn.init.zeros_(p)

    def forward(self, x):
        return self.net(x)


class LargeInitTanhNet(nn.Module):
    """Deep tanh with N(0, 1) weights at width 64: chaotic phase, gradients grow with depth."""

    def __init__(self, width: int = 64, depth: int = 16):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(20, width)] + [nn.Linear(width, width) for _ in range(depth - 2)] + [nn.Linear(width, 1)])
        for layer in self.layers:
            nn.init.normal_(layer.weight, 0.0, 1.0)
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = torch.tanh(layer(x))
        return self.layers[-1](x)


class SmallCNN(nn.Module):
    """Conv model: input inferred from in_channels (3x32x32)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = F.relu(self.c1(x))
        x = F.relu(self.c2(x))
        return self.head(x.mean((2, 3)))


class TokenModel(nn.Module):
    def __init__(self, vocab: int = 50, dim: int = 16):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.rnn = nn.LSTM(dim, dim, batch_first=True)
        self.out = nn.Linear(dim, 1)

    def forward(self, ids):
        h, _ = self.rnn(self.emb(ids))
        return self.out(h[:, -1])


class NeedsArgs(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.fc = nn.Linear(10, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc(x)))


def build_model():
    """Factory target."""
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))


model = nn.Sequential(nn.Linear(5, 5), nn.Tanh(), nn.Linear(5, 1))
