"""F.dropout in a forward is a dropout layer when it drops in train mode (the measurement protocol's)."""

from __future__ import annotations

import ast

import pytest

from gradlint.extract import extract_models
from gradlint.model import LayerKind

SOURCE = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.use = True

    def forward(self, x):
        return {call}
"""


def _drops(call: str) -> list[tuple[str, float | None]]:
    (model,) = extract_models(ast.parse(SOURCE.format(call=call)))
    return [(layer.op, layer.rate) for layer in model.layers() if layer.kind == LayerKind.DROPOUT]


@pytest.mark.parametrize("call,expected", [
    ("F.dropout(self.fc(x), 0.3, training=self.training)", [("dropout", 0.3)]),
    ("F.dropout(self.fc(x), p=0.2)", [("dropout", 0.2)]),  # F.dropout drops by default
    ("F.dropout(self.fc(x))", [("dropout", 0.5)]),
    ("nn.functional.dropout2d(self.fc(x), 0.1, True)", [("dropout2d", 0.1)]),
    ("torch.dropout(self.fc(x), 0.4, self.training)", [("dropout", 0.4)]),
    ("F.alpha_dropout(self.fc(x), 0.1, training=self.training)", [("alpha_dropout", 0.1)]),
    ("F.dropout(self.fc(x), 0.3, training=False)", []),  # eval mode: the identity
    ("F.alpha_dropout(self.fc(x), 0.1)", []),  # alpha dropouts default to training=False
    ("F.dropout(self.fc(x), 0.3, training=self.use)", [("dropout", 0.3)]),  # a flag known True
    ("F.dropout(self.fc(x), 0.3, training=torch.is_grad_enabled())", []),  # a flag gradlint cannot read
])
def test_functional_dropout(call: str, expected: list[tuple[str, float | None]]) -> None:
    assert _drops(call) == expected
