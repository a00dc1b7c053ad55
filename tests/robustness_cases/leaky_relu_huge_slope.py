# crash: GRD902 OverflowError "(34, 'Numerical result out of range')" in gradlint/gradflow.py _relu_cross
# ((1 - a) ** 2 with the negative slope a = 1e308). Found by probing constructor arguments with extreme values.
import torch.nn as nn

model = nn.Sequential(nn.Linear(8, 8), nn.LeakyReLU(1e308), nn.Linear(8, 8))
