"""A configurable MLP for calibrating the verdict thresholds (pass options via model_args)."""

import math

import torch
import torch.nn as nn

ACTS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


class MLP(nn.Module):
    def __init__(self, act: str = "sigmoid", init: str = "default", depth: int = 11, width: int = 64,
                 bias: bool = True, norm: bool = False, in_features: int = 20):
        super().__init__()
        dims = [in_features] + [width] * (depth - 1) + [1]
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=bias) for a, b in zip(dims[:-1], dims[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(width) for _ in range(depth - 1)) if norm else None
        self.act = ACTS[act]
        for layer in self.layers:
            fan_in = layer.in_features
            if init == "glorot":
                nn.init.xavier_normal_(layer.weight)
            elif init == "he":
                nn.init.normal_(layer.weight, 0.0, math.sqrt(2.0 / fan_in))
            elif init == "normal1":
                nn.init.normal_(layer.weight, 0.0, 1.0)
            if init != "default" and layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def forward(self, x):
        for i, layer in enumerate(self.layers[:-1]):
            x = layer(x)
            if self.norms is not None:
                x = self.norms[i](x)
            x = self.act(x)
        return self.layers[-1](x)
