# crash: GRD902 OverflowError in analysis.bias_var_of ((b - a) ** 2 for nn.init.uniform_(bias, -0.02, 1e308)). Found by tests/test_fuzz.py.
import math
import torch
import torch.nn as nn
import torch.nn.functional as F
from collections import OrderedDict



class Block(nn.Module):
    def __init__(self, dim=64):
        super().__init__()
        use_bn = True
        dims = [dim, dim * 2, dim]

    def forward(self, x):
        return x


class Net(nn.Module):
    def __init__(self, dim=64):
        super().__init__()
        use_bn = True
        dims = [dim, dim * 2, dim]
        self.l0 = nn.Linear(dim, dim)
        self.l1 = nn.Linear(dim, dim)
        nn.init.zeros_(self.l0.weight)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.uniform_(p, -0.02, 1e308)

    def forward(self, x):
        x = self.l0(x)
        return x

