"""Models whose forward stops the gradient (tests/dynamic/test_dynamic_gradient_stops.py measures them)."""
import keras
import torch
import torch.nn as nn
from keras import layers


class DetachMiddle(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 32)
        self.fc3 = nn.Linear(32, 4)

    def forward(self, x):
        h = torch.relu(self.fc1(x)).detach()
        return self.fc3(torch.relu(self.fc2(h)))


class DetachBranch(nn.Module):
    """The first and last layers are healthy; the branch layer gets no gradient at all."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.branch = nn.Linear(32, 32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        return self.fc2(h + self.branch(h).detach())


class DetachedOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        with torch.no_grad():
            return self.fc2(torch.relu(self.fc1(x)))


class ZeroInitBranch(nn.Module):
    """A zero-initialised branch end (Fixup-style): zero gradients before it, but connected."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.b1 = nn.Linear(32, 32)
        self.b2 = nn.Linear(32, 32)
        nn.init.zeros_(self.b2.weight)
        nn.init.zeros_(self.b2.bias)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        return self.fc2(h + self.b2(torch.relu(self.b1(h))))


def keras_stopped():
    inputs = keras.Input(shape=(16,))
    x = layers.Dense(32, activation="relu")(inputs)
    x = layers.Lambda(lambda t: keras.ops.stop_gradient(t))(x)
    outputs = layers.Dense(4)(layers.Dense(32, activation="relu")(x))
    return keras.Model(inputs, outputs)
