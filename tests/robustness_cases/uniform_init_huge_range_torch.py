# crash: GRD902 OverflowError in gradlint/gradflow.py init_sigma_w2 ((b - a) ** 2 overflows for a finite
# range 1e308 wide; an infinite one does not overflow). The PyTorch spelling of uniform_init_huge_range.py.
import torch.nn as nn
m = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8))
nn.init.uniform_(m[2].weight, -1.0, 1e308)
