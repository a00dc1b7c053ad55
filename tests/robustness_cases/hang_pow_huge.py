# hang: the interpreter folds pow() on constants with the real builtin: pow(10, 10**9) computes a
# billion-digit integer (minutes of CPU). The binary operator ** is guarded; the builtin is not.
import torch.nn as nn

scale = pow(10, 10**9)
model = nn.Sequential(nn.Linear(8, 8), nn.Sigmoid())
