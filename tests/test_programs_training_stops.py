"""GRD012 in training code: a model in an optimizer whose output reaches the losses only through a
stop. Each case is a whole training loop; the precision cases are the stops people write on purpose."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli

HEAD = """
import torch
import torch.nn as nn

A = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 8))
B = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 1))
"""


def _codes(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "prog.py"
    path.write_text(HEAD + body, encoding="utf-8")
    proc = run_cli("--no-cache", "--format", "json", "--select", "GRD012", str(path))
    assert proc.returncode in (0, 1), proc.stderr
    return sorted(d["code"] for d in json.loads(proc.stdout)["diagnostics"])


LOOP = """
for step in range(10):
    x = torch.randn(32, 16)
{step}
    opt.zero_grad()
    loss.backward()
    opt.step()
"""


@pytest.mark.parametrize("optimizer,step", [
    # one optimizer over both, the code detached between them
    ("opt = torch.optim.Adam(list(A.parameters()) + list(B.parameters()))",
     "    loss = nn.functional.mse_loss(B(A(x).detach()), torch.zeros(32, 1))"),
    # parameter groups
    ("opt = torch.optim.SGD([{'params': A.parameters()}, {'params': B.parameters(), 'lr': 0.1}], lr=0.01)",
     "    h = A(x)\n    h = h.detach()\n    loss = nn.functional.mse_loss(B(h), torch.zeros(32, 1))"),
    # `.data` in training code
    ("opt = torch.optim.Adam(list(A.parameters()) + list(B.parameters()))",
     "    loss = nn.functional.mse_loss(B(A(x).data), torch.zeros(32, 1))"),
    # a numpy round trip between the two models
    ("opt = torch.optim.Adam(list(A.parameters()) + list(B.parameters()))",
     "    z = torch.tensor(A(x).detach().numpy())\n    loss = nn.functional.mse_loss(B(z), torch.zeros(32, 1))"),
    # the prediction itself made a new leaf
    ("opt = torch.optim.Adam(A.parameters())",
     "    p = torch.tensor(A(x).tolist(), requires_grad=True)\n"
     "    loss = nn.functional.mse_loss(p, torch.zeros(32, 8))"),
])
def test_model_fed_only_through_a_stop_is_reported(tmp_path: Path, optimizer: str, step: str) -> None:
    assert _codes(tmp_path, optimizer + LOOP.format(step=step)) == ["GRD012"]


@pytest.mark.parametrize("optimizer,step", [
    # A is no optimizer's: a frozen feature extractor
    ("opt = torch.optim.Adam(B.parameters())",
     "    loss = nn.functional.mse_loss(B(A(x).detach()), torch.zeros(32, 1))"),
    # A's output is also a live term of the loss
    ("opt = torch.optim.Adam(list(A.parameters()) + list(B.parameters()))",
     "    h = A(x)\n    loss = nn.functional.mse_loss(B(h.detach()), torch.zeros(32, 1)) + 0.1 * (h ** 2).mean()"),
    # a second loss trains A live
    ("opt = torch.optim.Adam(list(A.parameters()) + list(B.parameters()))",
     "    h = A(x)\n    loss = nn.functional.mse_loss(B(h.detach()), torch.zeros(32, 1)) + "
     "nn.functional.mse_loss(h, torch.zeros(32, 8))"),
    # no stop
    ("opt = torch.optim.Adam(list(A.parameters()) + list(B.parameters()))",
     "    loss = nn.functional.mse_loss(B(A(x)), torch.zeros(32, 1))"),
    # a loss gradlint cannot read may train A
    ("opt = torch.optim.Adam(list(A.parameters()) + list(B.parameters()))",
     "    loss = nn.functional.mse_loss(B(A(x).detach()), torch.zeros(32, 1))\n    loss = external.wrap(loss, A)"),
    # a validation loss on numbers read out, next to the training loss on the live output
    ("opt = torch.optim.Adam(A.parameters())",
     "    v = nn.functional.mse_loss(torch.tensor(A(x).detach().numpy()), torch.zeros(32, 8))\n"
     "    loss = nn.functional.mse_loss(A(x), torch.zeros(32, 8))"),
    # metrics on a numpy copy
    ("opt = torch.optim.Adam(list(A.parameters()) + list(B.parameters()))",
     "    acc = (B(A(x)).detach().numpy() > 0).mean()\n    loss = nn.functional.mse_loss(B(A(x)), torch.zeros(32, 1))"),
    # the optimizer's parameters are not readable
    ("opt = torch.optim.Adam(params)",
     "    loss = nn.functional.mse_loss(B(A(x).detach()), torch.zeros(32, 1))"),
])
def test_model_trained_or_frozen_on_purpose_is_not_reported(tmp_path: Path, optimizer: str, step: str) -> None:
    assert _codes(tmp_path, optimizer + LOOP.format(step=step)) == []


def test_frozen_layers_are_not_reported(tmp_path: Path) -> None:
    body = ("A.requires_grad_(False)\nopt = torch.optim.Adam(list(A.parameters()) + list(B.parameters()))"
            + LOOP.format(step="    loss = nn.functional.mse_loss(B(A(x).detach()), torch.zeros(32, 1))"))
    assert _codes(tmp_path, body) == []


REWRAP = """
import torch
import torch.nn as nn
from torch.autograd import Variable

model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
opt = torch.optim.Adam(model.parameters())
for epoch in range(5):
    loss = nn.CrossEntropyLoss()(model(torch.randn(8, 10)), torch.randint(0, 3, (8,)))
{line}
    opt.zero_grad()
    {target}.backward()
    opt.step()
"""


def _rewrap_codes(tmp_path: Path, line: str, target: str = "loss") -> list[str]:
    path = tmp_path / "rewrap.py"
    path.write_text(REWRAP.format(line=line, target=target), encoding="utf-8")
    proc = run_cli("--no-cache", "--format", "json", "--select", "GRD012", str(path))
    assert proc.returncode in (0, 1), proc.stderr
    return sorted(d["code"] for d in json.loads(proc.stdout)["diagnostics"])


@pytest.mark.parametrize("line", [
    "    loss = Variable(loss.data, requires_grad=True)",
    "    loss = torch.tensor(loss.item(), requires_grad=True)",
    "    loss = torch.tensor(loss, requires_grad=True)",
    "    loss = Variable(loss, requires_grad=True)",  # measured (torch 2.13): a new leaf, p.grad stays None
    "    loss = loss.detach().requires_grad_()",
])
def test_backward_of_a_copied_loss_is_reported(tmp_path: Path, line: str) -> None:
    assert _rewrap_codes(tmp_path, line) == ["GRD012"]


@pytest.mark.parametrize("line,target", [
    ("    value = loss.item()", "loss"),                       # logging
    ("    copy = Variable(loss.data, requires_grad=True)", "loss"),  # the copy is not what backward runs on
    ("    pass", "loss"),
])
def test_backward_of_the_loss_itself_is_not_reported(tmp_path: Path, line: str, target: str) -> None:
    assert _rewrap_codes(tmp_path, line, target) == []


def test_copied_loss_is_not_reported_when_another_backward_trains_the_model(tmp_path: Path) -> None:
    source = REWRAP.format(line="    copy = Variable(loss.data, requires_grad=True)\n    copy.backward()",
                           target="loss")
    path = tmp_path / "both.py"
    path.write_text(source, encoding="utf-8")
    proc = run_cli("--no-cache", "--format", "json", "--select", "GRD012", str(path))
    assert json.loads(proc.stdout)["diagnostics"] == []
