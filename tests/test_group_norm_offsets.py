"""GroupNorm between InstanceNorm and LayerNorm: it removes 1/k of the per-channel offsets (k channels
per group), and InstanceNorm reads as per-unit statistics in both norm readings."""

from __future__ import annotations

from gradlint.analysis.flow import model_segments, norm_kind_of, segment_flow
from gradlint.analysis.inits import norm_kind
from gradlint.engine import LintConfig, lint_source
from gradlint.model import Layer, LayerKind, Span

SOURCE = """
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(3, 32, 3, padding=1)] + [nn.Conv2d(32, 32, 3, padding=1) for _ in range(11)])
        self.norms = nn.ModuleList([{norm} for _ in range(12)])
        self.head = nn.Linear(32, 1)

    def forward(self, x):
        for conv, norm in zip(self.convs, self.norms):
            x = torch.sigmoid(norm(conv(x)))
        return self.head(x.mean(dim=(2, 3)))


def build_model():
    return Net()
"""  # noqa: E501 -- a line of the linted source, kept as written


def _ratio(norm: str) -> float:
    result = lint_source(SOURCE.format(norm=norm), "net.py", LintConfig())
    segments = model_segments(result.models[0])
    flows = [segment_flow(s) for s in segments]
    whole = [f for s, f in zip(segments, flows, strict=True) if f is not None and s.ends_output]
    return whole[-1].log10_ratio


def test_group_size_orders_the_estimate_like_the_measurement() -> None:
    # measured (tools/gradgen.py compare, 8×8 inputs): k = 1 10^-2.6, 2: 10^-3.5, 4: 10^-4.7, 8: 10^-5.4, 32: 10^-6.0
    ratios = [_ratio(n) for n in ("nn.GroupNorm(32, 32)", "nn.GroupNorm(16, 32)", "nn.GroupNorm(8, 32)",
                                  "nn.GroupNorm(4, 32)", "nn.GroupNorm(1, 32)")]
    assert all(a > b for a, b in zip(ratios, ratios[1:], strict=False)), ratios
    assert ratios[1] - ratios[-1] > 1.0  # two channels per group keep half the offsets, not all of them


def test_instance_norm_is_read_alike() -> None:
    span = Span(1, 0, 1, 1)
    for op in ("InstanceNorm2d", "InstanceNorm1d"):
        layer = Layer(LayerKind.NORMALIZATION, op, span, "torch")
        assert norm_kind(layer) == norm_kind_of(op) == "batch"
    assert norm_kind(Layer(LayerKind.NORMALIZATION, "GroupNorm", span, "torch", norm_stats="batch")) == "batch"
    assert norm_kind(Layer(LayerKind.NORMALIZATION, "LayerNorm", span, "torch")) == norm_kind_of("LayerNorm") == "layer"
