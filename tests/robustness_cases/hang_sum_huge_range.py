# hang: the interpreter folds sum() over a constant range by calling the real builtin, with no budget:
# sum(range(10**12)) never returns (same for min/max over it). gradlint must stay bounded on any input.
import torch.nn as nn

total = sum(range(10**12))
model = nn.Sequential(nn.Linear(8, 8), nn.Sigmoid())
