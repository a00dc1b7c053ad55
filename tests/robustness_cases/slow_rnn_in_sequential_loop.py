# hang (CPU): 23 lines take ~180 s. An RNN inside nn.Sequential returns an (output, hidden) tuple, so the
# next item gets the tensor through _longest_tensor, which measures every candidate path with _weight_depth:
# O(path length) per step, unbudgeted, with a path growing by each of 128 x 64 loop steps -> quadratic.
# Found by the PyTorch generator of tests/test_fuzz.py (interpreter.py apply_module / _longest_tensor).
import torch.nn as nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn_then_fc = nn.Sequential(nn.RNN(8, 8), nn.Linear(8, 8))

    def forward(self, x):
        i = 0
        while i < 64:
            x = self.rnn_then_fc(x)
            i += 1
        return x


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(*[Block() for _ in range(128)])

    def forward(self, x):
        return self.blocks(x)
