# crash: GRD902 ValueError "math domain error" in gradlint/gradflow.py _run
# (math.log10 of the fan-in ratio of two layers when one fan-in is negative). Found by tests/test_fuzz.py.
import torch.nn as nn

model = nn.Sequential(nn.Linear(-1, 4), nn.Linear(4, 4))
