"""GRD002 and a BatchNorm right after a constant-init layer: the norm removes each unit's batch mean,
the random bias that told the units apart included, so they are identical again (symmetric).

Measured (PyTorch, 3 seeds, batch 128, the protocol's row equality): constant 0.1 weights, default
biases, 6 layers of width 64 — Linear → BatchNorm1d → ReLU: layer 0 identical in 3/3 seeds;
Conv2d → BatchNorm2d → ReLU: layers 0-4 identical in 3/3; Conv2d → InstanceNorm2d(affine) → ReLU:
layers 0, 1, 3, 4 in 3/3; Linear → ReLU → BatchNorm1d and Linear/Conv → Dropout(0.1) → BatchNorm:
none (the ReLU sees each unit's own bias first; dropout masks each unit its own way)."""

from __future__ import annotations

import textwrap

import pytest

from gradlint.engine import LintConfig, lint_source

NET = """
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([{first}] + [{layer} for _ in range(5)])
        self.norms = nn.ModuleList([{norm} for _ in range(6)])
        self.head = nn.Linear({head_in}, 1)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.constant_(m.weight, 0.1)

    def forward(self, x):
        for layer, norm in zip(self.layers, self.norms):
            x = {step}
        return self.head({flat})
"""
LINEAR = dict(first="nn.Linear(16, 64)", layer="nn.Linear(64, 64)", head_in="64", flat="x")
CONV = dict(first="nn.Conv2d(3, 32, 3, padding=1)", layer="nn.Conv2d(32, 32, 3, padding=1)", head_in="32 * 8 * 8",
            flat="x.flatten(1)")


def _codes(**parts: str) -> list[str]:
    src = textwrap.dedent(NET.format(**parts))
    return [d.code for d in lint_source(src, "net.py", LintConfig()).diagnostics]


@pytest.mark.parametrize("shape, norm", [(LINEAR, "nn.BatchNorm1d(64)"), (CONV, "nn.BatchNorm2d(32)"),
                                         (CONV, "nn.InstanceNorm2d(32, affine=True)")])
def test_batchnorm_right_after_a_constant_layer_is_symmetric(shape: dict[str, str], norm: str) -> None:
    assert _codes(**shape, norm=norm, step="torch.relu(norm(layer(x)))") == ["GRD002"]
    # a train-mode dropout in between masks each unit its own way: measured, no identical rows
    assert _codes(**shape, norm=norm, step="torch.relu(norm(nn.functional.dropout(layer(x), 0.1)))") == []


def test_an_activation_before_the_norm_or_a_layer_norm_keeps_the_bias_apart() -> None:
    assert _codes(**LINEAR, norm="nn.BatchNorm1d(64)", step="norm(torch.relu(layer(x)))") == []
    # a LayerNorm keeps the units apart, but removes what they share: reported for that (below), not symmetry
    src = textwrap.dedent(NET.format(**LINEAR, norm="nn.LayerNorm(64)", step="torch.relu(norm(layer(x)))"))
    (found,) = lint_source(src, "net.py", LintConfig()).diagnostics
    assert "right before a LayerNorm" in found.message and found.estimate.verdict == "vanishing"
    # without a bias there is nothing to cancel: constant weights are symmetric anyway
    no_bias = dict(LINEAR, first="nn.Linear(16, 64, bias=False)", layer="nn.Linear(64, 64, bias=False)")
    assert _codes(**no_bias, norm="nn.BatchNorm1d(64)", step="norm(torch.relu(layer(x)))") == ["GRD002"]


LN_STACK = """
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fcs = nn.ModuleList([nn.Linear(16, 64)] + [nn.Linear(64, 64) for _ in range(5)])
        self.lns = nn.ModuleList([nn.{norm}(64) for _ in range(6)])
        self.out = nn.Linear(64, 10)
        for fc in self.fcs:
            nn.init.{init}(fc.weight{arg})

    def forward(self, x):
        for fc, ln in zip(self.fcs, self.lns):
            x = torch.relu(ln(fc(x)))
        return {head}
"""


def _lint(src: str) -> list[str]:
    return [f"{d.code} {d.message}" for d in lint_source(textwrap.dedent(src), "net.py", LintConfig()).diagnostics]


def test_constant_weights_into_layer_norm_lose_the_input() -> None:
    # measured: first layer ‖∂W‖/‖W‖ exactly 0 (2 seeds) / 1e-21; with He init 5e-3 to 7e-3
    (found,) = _lint(LN_STACK.format(norm="LayerNorm", init="constant_", arg=", 0.1", head="self.out(x)"))
    assert found.startswith("GRD002") and "right before a LayerNorm" in found
    assert "does not depend on the input" in found
    assert _lint(LN_STACK.format(norm="LayerNorm", init="kaiming_normal_", arg="", head="self.out(x)")) == []
    # RMSNorm does not subtract the mean: the shared part stays (units differ by their biases, not reported)
    assert _lint(LN_STACK.format(norm="RMSNorm", init="constant_", arg=", 0.1", head="self.out(x)")) == []


def test_a_constant_head_into_softmax_ignores_its_input_but_a_zero_head_is_a_design() -> None:
    src = LN_STACK.format(norm="LayerNorm", init="kaiming_normal_", arg="",
                          head="torch.softmax(self.out(x), dim=-1)")
    init = "            nn.init.kaiming_normal_(fc.weight)"
    constant = src.replace(init, init + "\n        nn.init.constant_(self.out.weight, 0.1)")
    (found,) = _lint(constant)
    assert found.startswith("GRD002") and "right before a softmax" in found
    zero = constant.replace("nn.init.constant_(self.out.weight, 0.1)", "nn.init.zeros_(self.out.weight)")
    assert _lint(zero) == []  # ViT/timm zero heads: one step undoes it (GRD002 exempts heads)
    assert _lint(constant.replace("torch.softmax(self.out(x), dim=-1)", "self.out(x)")) == []


MLP = """
import torch
import torch.nn as nn


class MLP(nn.Module):
    def __init__(self, n_in=16, width={width}, depth={depth}):
        super().__init__()
        sizes = [n_in] + [width] * depth
        self.hidden = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
        self.out = nn.Linear(width, 1)
        for layer in self.hidden:
            nn.init.constant_(layer.weight, {c})

    def forward(self, x):
        for layer in self.hidden:
            x = torch.{act}(layer(x))
        return self.out(x)
"""


def test_a_constant_stack_whose_shared_signal_blows_up_is_reported() -> None:
    # measured (3 seeds, batch 128, MSE): ReLU 8 × 64 at 0.1: loss 4.4e8 / 2.2e10 / 5.6e8
    src = textwrap.dedent(MLP.format(width=64, depth=8, c=0.1, act="relu"))
    (found,) = lint_source(src, "m.py", LintConfig()).diagnostics
    assert found.code == "GRD002" and "grows by fan_in × 0.1 ≈ 6.4 per layer" in found.message
    assert found.estimate is not None and found.estimate.verdict == "exploding"
    assert found.estimate.log10_loss is not None and 8 < found.estimate.log10_loss < 12
    # ReLU 8 × 32 at 0.05: loss 1.8 to 14 (not exploding); tanh 24 × 128 at 0.1 saturates: loss ≈ 1
    assert _codes_of(MLP.format(width=32, depth=8, c=0.05, act="relu")) == []
    assert _codes_of(MLP.format(width=128, depth=24, c=0.1, act="tanh")) == []


def _codes_of(src: str) -> list[str]:
    return [d.code for d in lint_source(textwrap.dedent(src), "m.py", LintConfig()).diagnostics]
