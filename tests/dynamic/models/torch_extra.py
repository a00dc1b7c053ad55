"""Torch models exercising the measurement's corners."""

import torch
import torch.nn as nn

print("user code printing to stdout must not corrupt the worker's result")


class RawParamSigmoid(nn.Module):
    """Weights as a ParameterList used by hand: order comes from first use in forward."""

    def __init__(self, depth: int = 11, width: int = 32):
        super().__init__()
        dims = [10] + [width] * (depth - 1) + [1]
        self.weights = nn.ParameterList(nn.Parameter(torch.randn(a, b) / a**0.5) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x):
        for w in list(self.weights)[:-1]:
            x = torch.sigmoid(x @ w)
        return x @ self.weights[-1]


class ReverseDefinitionOrder(nn.Module):
    """Layers defined in the opposite order of use: the table follows execution order."""

    def __init__(self):
        super().__init__()
        self.last = nn.Linear(16, 1)
        self.middle = nn.Linear(16, 16)
        self.first = nn.Linear(8, 16)

    def forward(self, x):
        return self.last(torch.relu(self.middle(torch.relu(self.first(x)))))


class DeadRelu(nn.Module):
    """A hidden layer whose bias pushes every unit negative: all ReLU units dead."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 1)
        nn.init.constant_(self.fc1.bias, -100.0)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, x, y):
        return self.fc(x + y)


class FreeParamsOnes(nn.Module):
    """Weight matrices as plain attributes, used with F.linear: one layer per matrix."""

    def __init__(self, d: int = 12, h: int = 24):
        super().__init__()
        self.w1 = nn.Parameter(torch.ones(h, d) / d)
        self.b1 = nn.Parameter(torch.zeros(h))
        self.w2 = nn.Parameter(torch.full((1, h), 0.1))  # equal outgoing weights: equal gradients too

    def forward(self, x):
        return torch.nn.functional.linear(torch.relu(torch.nn.functional.linear(x, self.w1, self.b1)), self.w2)


class RawTensorsRelu(nn.Module):
    """Weights as plain requires_grad tensors (no nn.Parameter): model.parameters() is empty, the
    forward's x @ w still trains them. std-1 ReLU layers at width 64: the forward blows up."""

    def __init__(self, d: int = 64, depth: int = 8):
        super().__init__()
        self.weights = [torch.randn(d, d, requires_grad=True) for _ in range(depth)]
        self.head = torch.randn(d, 1, requires_grad=True)
        self.fixed = torch.randn(d, d)  # no requires_grad: not a weight

    def forward(self, x):
        for w in self.weights:
            x = torch.relu(x @ w)
        return x @ self.head
