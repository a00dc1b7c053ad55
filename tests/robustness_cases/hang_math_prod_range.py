# hang: math.prod over a constant range is folded with the real function: a 5.5-million-digit
# product, computed digit by digit for minutes. Constant folding needs a size budget.
import math

import torch.nn as nn

n = math.prod(range(1, 10**6))
model = nn.Sequential(nn.Linear(8, 8), nn.Sigmoid())
