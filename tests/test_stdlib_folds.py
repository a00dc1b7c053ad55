"""Layers gathered with ``sum(lists, [])`` / ``itertools.chain`` and applied with ``functools.reduce``."""

from __future__ import annotations

import textwrap

import pytest

from gradlint.engine import lint_source


def _codes(source: str) -> list[str]:
    return [d.code for d in lint_source(textwrap.dedent(source), "folds.py").diagnostics]


@pytest.mark.parametrize("gather", [
    "sum([[nn.Linear(64, 64), nn.{act}()] for _ in range(12)], [])",
    "itertools.chain.from_iterable([[nn.Linear(64, 64), nn.{act}()] for _ in range(12)])",
    "itertools.chain(*[[nn.Linear(64, 64), nn.{act}()] for _ in range(12)])",
])
@pytest.mark.parametrize("act, codes", [("Sigmoid", ["GRD001"]), ("Identity", [])])
def test_gathered_layers(gather: str, act: str, codes: list[str]) -> None:
    source = f"import itertools\nimport torch.nn as nn\nmodel = nn.Sequential(*{gather.format(act=act)})\n"
    assert _codes(source) == codes


@pytest.mark.parametrize("act, codes", [("torch.sigmoid", ["GRD001"]), ("torch.relu", [])])
def test_reduce_applies_each_layer(act: str, codes: list[str]) -> None:
    source = f"""
    from functools import reduce
    import torch
    import torch.nn as nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(64, 64) for _ in range(12)])
            for layer in self.layers:
                nn.init.kaiming_normal_(layer.weight)

        def forward(self, x):
            return reduce(lambda h, layer: {act}(layer(h)), self.layers, x)
    """
    assert _codes(source) == codes


def test_reduce_folds_numbers() -> None:
    source = """
    import functools
    import torch.nn as nn
    width = functools.reduce(lambda a, b: a * b, [4, 4, 4])
    model = nn.Sequential(*[m for _ in range(12) for m in (nn.Linear(width, width), nn.Sigmoid())])
    """
    assert _codes(source) == ["GRD001"]
