"""Models that misbehave: the dynamic check must report them failed and go on."""

import os
import signal
import time

import torch.nn as nn


class Crashing(nn.Module):
    def __init__(self):
        super().__init__()
        raise RuntimeError("boom in __init__")


class Hanging(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        while True:
            time.sleep(0.1)


class Segfaulting(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        os.kill(os.getpid(), signal.SIGSEGV)


class MemoryHog(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        import torch

        return torch.empty(1 << 36)  # 256 GB of float32
