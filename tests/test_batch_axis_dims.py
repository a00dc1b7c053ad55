"""GRD019 and the batch shapes it reads (gradlint.extract.torch_dims): what passes a known shape on,
what makes it unknown (so nothing is said), and the losses it judges."""

from __future__ import annotations

import ast
import json
import tempfile
import textwrap
from pathlib import Path

import pytest

from gradlint.extract import extract

from conftest import run_cli

HEAD = """
import torch
import torch.nn as nn
import torch.nn.functional as F
"""


def _facts(body: str):  # type: ignore[no-untyped-def]
    return extract(ast.parse(HEAD + textwrap.dedent(body))).training


def _loss_dims(body: str) -> list[tuple[object, object]]:
    return [(u.prediction_dims, u.target_dims) for u in _facts(body).losses]


def test_a_linear_stack_keeps_the_batch_and_sets_the_last_axis() -> None:
    got = _loss_dims("""
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.1), nn.LayerNorm(16), nn.Linear(16, 1))
    X = torch.randn(100, 8)
    y = X.sum(dim=1)
    F.mse_loss(model(X), y).backward()
    """)
    assert got == [((100, 1), (100,))]


@pytest.mark.parametrize("expr, dims", [
    ("model(X).view(-1)", (100,)),
    ("model(X).view(-1, 1)", (100, 1)),
    ("model(X).squeeze(1)", (100,)),
    ("model(X).flatten()", (100,)),
    ("model(X) * 2.0", (100, 1)),
    ("model(X).float().to('cpu')", (100, 1)),
    ("model(X).squeeze()", None),  # squeeze of every size-1 axis: not modelled
    ("model(X)[:, 0]", None),
    ("model(X).T", None),
    ("model(X).permute(1, 0)", None),
    ("model(X) + torch.zeros(100)", None),  # broadcasting with another tensor
    ("torch.cat([model(X), model(X)], dim=1)", None),
])
def test_what_keeps_and_what_loses_the_shape(expr: str, dims: object) -> None:
    got = _loss_dims(f"""
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
    X = torch.randn(100, 8)
    y = torch.randn(100, 1)
    pred = {expr}
    F.mse_loss(pred, y).backward()
    """)
    assert got and got[0][0] == dims


def test_an_unknown_forward_step_loses_the_shape() -> None:
    got = _loss_dims("""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 1)

        def forward(self, x):
            x = x.unsqueeze(0)[0]  # an index: unknown from here
            return self.fc(x)

    X = torch.randn(100, 8)
    F.mse_loss(Net()(X), X.sum(dim=1)).backward()
    """)
    assert got == [(None, (100,))]


def test_views_and_flatten_in_a_forward_make_the_rank_known() -> None:
    facts = _facts("""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(784, 10)

        def forward(self, x):
            return F.log_softmax(self.fc(x.view(x.size(0), -1)), dim=0)

    net = Net()
    X = torch.randn(64, 1, 28, 28)
    F.nll_loss(net(X), torch.randint(0, 10, (64,))).backward()
    """)
    assert [dims for _, dims in facts.softmax_inputs.values()] == [(64, 10)]


def test_disagreeing_calls_keep_the_rank_only() -> None:
    facts = _facts("""
    model = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=0))
    X = torch.randn(50, 4)
    torch.log(model(X)).sum().backward()
    model(X[:1])
    model(torch.randn(4))
    """)
    assert [dims for _, dims in facts.softmax_inputs.values()] == [None]  # 2-D then 1-D: unknown


def test_in_place_shape_changes_are_followed() -> None:
    got = _loss_dims("""
    model = nn.Sequential(nn.Linear(8, 1))
    X = torch.randn(100, 8)
    out = model(X)
    out.squeeze_(1)
    F.mse_loss(out, torch.randn(100)).backward()
    """)
    assert got == [(None, (100,))]  # squeeze_ is not modelled: unknown, never the stale (100, 1)


def _codes(source: str) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prog.py"
        path.write_text(HEAD + textwrap.dedent(source), encoding="utf-8")
        proc = run_cli("--no-cache", "--isolated", "--format", "json", "--select", "GRD019", str(path))
        assert proc.returncode in (0, 1), proc.stderr
        return [d["code"] for d in json.loads(proc.stdout)["diagnostics"]]


def test_softmax_over_the_batch_after_nn_flatten() -> None:
    assert _codes("""
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.LogSoftmax(dim=0))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    opt.zero_grad()
    nn.NLLLoss()(model(X), y).backward()
    opt.step()
    """) == ["GRD019"]


@pytest.mark.parametrize("head", [
    "nn.Linear(16, 10), nn.LogSoftmax(dim=1)",
    "nn.Linear(16, 10), nn.LogSoftmax(dim=-1)",
    "nn.Linear(16, 10), nn.LogSoftmax()",  # implicit dim: 1 for a 2-D input
])
def test_softmax_over_the_classes_is_clean(head: str) -> None:
    assert _codes(f"""
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), {head})
    X, y = torch.randn(32, 8), torch.randint(0, 10, (32,))
    nn.NLLLoss()(model(X), y).backward()
    """) == []


def test_softmax_dim0_on_3d_sequence_output_is_not_judged() -> None:
    # (T, B, C) token scores: dim 0 is time, not the batch of a 2-D output; not judged.
    assert _codes("""
    model = nn.Sequential(nn.Linear(8, 5), nn.LogSoftmax(dim=0))
    X = torch.randn(20, 4, 8)
    torch.log(model(X).exp()).sum().backward()
    """) == []


def test_matching_and_erroring_regression_shapes_are_clean() -> None:
    assert _codes("""
    model = nn.Sequential(nn.Linear(8, 3))
    X = torch.randn(100, 8)
    F.mse_loss(model(X), torch.randn(100, 3)).backward()
    F.l1_loss(model(X), torch.randn(100)).backward()  # (100, 3) vs (100,): a run-time error, not a broadcast
    """) == []


def test_target_shape_the_other_way_round() -> None:
    assert _codes("""
    model = nn.Sequential(nn.Linear(8, 1))
    X = torch.randn(100, 8)
    nn.L1Loss()(model(X).view(-1), torch.randn(100, 1)).backward()
    """) == ["GRD019"]
