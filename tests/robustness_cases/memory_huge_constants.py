# memory: constant folding builds huge strings and integers for real ("%0999999999d" % 1 is a 1 GB str,
# 1 << 10**10 a 1.3 GB int) and keeps them in the module scope: each such line costs a gigabyte.
import torch.nn as nn

a = "%0999999999d" % 1
b = "{:>999999999}".format(2)
c = 1 << 10**10
d = "%0999999999d" % 3
model = nn.Sequential(*[m for _ in range(12) for m in (nn.Linear(64, 64), nn.Sigmoid())])
