"""Whole programs: the shape of training data made with numpy / torch, sliced into mini-batches or
served by a DataLoader, reaches the model call and tells a torch RNN's sequence length (GRD007/GRD008)."""

from __future__ import annotations

import ast

import pytest

from gradlint.extract import extract

PROGRAM = """
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(4, 32, batch_first=True)
        self.fc = nn.Linear(32, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


model = Net()
opt = torch.optim.SGD(model.parameters(), lr=0.01)
{data}
for xb in {batches}:
    opt.zero_grad()
    loss = nn.functional.mse_loss(model(xb), torch.randn(8, 1))
    loss.backward()
    opt.step()
"""


def _steps(data: str, batches: str) -> int | None:
    result = extract(ast.parse(PROGRAM.format(data=data, batches=batches)))
    (model,) = [m for m in result.models if m.name == "Net"]
    return result.training.sequence_lengths.get(model.origin_id)


@pytest.mark.parametrize("data,batches,steps", [
    # mini-batch slices of a tensor of known shape: the time axis (dim 1) is kept
    ("X = torch.randn(500, 300, 4)", "[X[i:i + 32] for i in range(0, 500, 32)]", 300),
    ("X = torch.randn(500, 300, 4)", "[X[:64], X[64:128]]", 300),
    ("X = torch.randn(500, 300, 4).float().to('cpu')", "[X[i:i + 32] for i in range(0, 500, 32)]", 300),
    # numpy arrays of literal shape, reshaped, made tensors
    ("X = torch.from_numpy(np.random.randn(500, 300, 4))", "[X]", 300),
    ("X = torch.tensor(np.zeros((500, 1200)).reshape(500, -1, 4), dtype=torch.float32)", "[X]", 300),
    ("X = torch.FloatTensor(np.sin(np.linspace(0, 9, 600000)).reshape(500, 300, 4))", "[X]", 300),
    # a DataLoader over a TensorDataset: batches of the dataset's shape
    ("loader = DataLoader(TensorDataset(torch.randn(500, 300, 4), torch.randn(500, 1)), batch_size=32)",
     "(b[0] for b in loader)", 300),
])
def test_known_data_shape_gives_the_sequence_length(data: str, batches: str, steps: int) -> None:
    assert _steps(data, batches) == steps


@pytest.mark.parametrize("data,batches", [
    ("X = torch.randn(500, 300, 4)", "[X[idx] for idx in torch.randperm(500).split(32)]"),  # fancy indexing
    ("X = torch.randn(500, 300, 4)", "[X[i:j] for i, j in pairs]"),  # bounds unknown
    ("X = torch.tensor(np.zeros((500, 1201)).reshape(500, -1, 4))", "[X]"),  # does not divide
    ("X = torch.from_numpy(np.array(rows))", "[X]"),  # values from a file / a list
    ("loader = DataLoader(MyDataset(), batch_size=32)", "(b[0] for b in loader)"),  # a custom dataset
    ("loader = DataLoader(TensorDataset(torch.randn(500, 300, 4)), batch_size=bs)", "(b[0] for b in loader)"),
])
def test_unknown_data_shape_gives_no_sequence_length(data: str, batches: str) -> None:
    assert _steps(data, batches) is None


def test_dataloader_batches_dim_0_whatever_the_model_expects() -> None:
    # A time-major RNN fed by a DataLoader runs over the batch axis: batch_size steps (what torch does).
    source = PROGRAM.replace("batch_first=True", "batch_first=False").format(
        data="loader = DataLoader(TensorDataset(torch.randn(500, 300, 4)), batch_size=16)",
        batches="(b[0] for b in loader)")
    result = extract(ast.parse(source))
    (model,) = [m for m in result.models if m.name == "Net"]
    assert result.training.sequence_lengths.get(model.origin_id) == 16
