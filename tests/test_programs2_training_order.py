"""Whole training loops: the order of zero_grad() / backward() / step() (GRD013, GRD014), and the
training-code stops of GRD012 that make backward() reach nothing (a loss computed under no_grad, a
loss of numpy numbers, an argmax prediction, a model frozen whole). The precision cases are the
loops people write correctly in all the usual shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli

HEAD = """
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
X, Y = torch.randn(256, 16), torch.randint(0, 4, (256,))
loader = DataLoader(TensorDataset(X, Y), batch_size=32, shuffle=True)
"""


def _codes(tmp_path: Path, body: str, select: str = "GRD012,GRD013,GRD014") -> list[str]:
    path = tmp_path / "prog.py"
    path.write_text(HEAD + body, encoding="utf-8")
    proc = run_cli("--no-cache", "--isolated", "--format", "json", "--select", select, str(path))
    assert proc.returncode in (0, 1), proc.stderr
    return sorted(d["code"] for d in json.loads(proc.stdout)["diagnostics"])


@pytest.mark.parametrize("body,code", [
    # zero_grad between backward and step
    ("""
opt = torch.optim.Adam(model.parameters())
for epoch in range(3):
    for xb, yb in loader:
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.zero_grad(set_to_none=True)
        opt.step()
""", "GRD013"),
    # step before backward, zero_grad first
    ("""
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for xb, yb in loader:
    opt.zero_grad()
    out = model(xb)
    loss = F.cross_entropy(out, yb)
    opt.step()
    loss.backward()
""", "GRD013"),
    # never zeroed, a while loop
    ("""
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
step = 0
while step < 1000:
    loss = F.cross_entropy(model(X), Y)
    loss.backward()
    opt.step()
    step += 1
""", "GRD014"),
    # never zeroed, the step in a helper of the file
    ("""
def fit(net, optimizer, epochs):
    for _ in range(epochs):
        for xb, yb in loader:
            F.cross_entropy(net(xb), yb).backward()
            optimizer.step()

fit(model, torch.optim.Adam(model.parameters()), 10)
""", "GRD014"),
    # the training loss computed under no_grad
    ("""
opt = torch.optim.Adam(model.parameters())
for epoch in range(10):
    with torch.no_grad():
        loss = F.cross_entropy(model(X), Y)
    opt.zero_grad()
    loss.backward()
    opt.step()
""", "GRD012"),
    # a loss of numpy numbers made a tensor again
    ("""
opt = torch.optim.Adam(model.parameters())
target = np.random.randn(256, 4)
for epoch in range(10):
    pred = model(X).detach().numpy()
    loss = torch.tensor(np.mean(np.abs(pred - target)), requires_grad=True)
    opt.zero_grad()
    loss.backward()
    opt.step()
""", "GRD012"),
    # the loss on the argmax of the output
    ("""
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for xb, yb in loader:
    opt.zero_grad()
    loss = F.mse_loss(torch.argmax(model(xb), dim=1).float(), yb.float())
    loss.backward()
    opt.step()
""", "GRD012"),
    # the whole model frozen, then trained
    ("""
model.requires_grad_(False)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for xb, yb in loader:
    opt.zero_grad()
    F.cross_entropy(model(xb), yb).backward()
    opt.step()
""", "GRD012"),
])
def test_training_defect_is_reported(tmp_path: Path, body: str, code: str) -> None:
    assert _codes(tmp_path, body) == [code]


@pytest.mark.parametrize("body", [
    # the canonical loop, and zero_grad at the end of the iteration
    """
opt = torch.optim.Adam(model.parameters())
for xb, yb in loader:
    opt.zero_grad()
    loss = F.cross_entropy(model(xb), yb)
    loss.backward()
    opt.step()
""",
    """
opt = torch.optim.Adam(model.parameters())
for xb, yb in loader:
    F.cross_entropy(model(xb), yb).backward()
    opt.step()
    opt.zero_grad()
""",
    # model.zero_grad() instead of the optimizer's
    """
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for xb, yb in loader:
    model.zero_grad()
    F.cross_entropy(model(xb), yb).backward()
    opt.step()
""",
    # gradient accumulation
    """
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for i, (xb, yb) in enumerate(loader):
    (F.cross_entropy(model(xb), yb) / 4).backward()
    if (i + 1) % 4 == 0:
        opt.step()
        opt.zero_grad()
""",
    # zero_grad only on some iterations, before the backward
    """
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for i, (xb, yb) in enumerate(loader):
    if i % 2 == 0:
        opt.zero_grad()
    F.cross_entropy(model(xb), yb).backward()
    opt.step()
""",
    # two models, two optimizers (a GAN's alternation)
    """
critic = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 1))
opt_g = torch.optim.Adam(model.parameters())
opt_c = torch.optim.Adam(critic.parameters())
for xb, _ in loader:
    opt_c.zero_grad()
    critic(model(xb).detach()).mean().backward()
    opt_c.step()
    opt_g.zero_grad()
    (-critic(model(xb)).mean()).backward()
    opt_g.step()
""",
    # AMP: the scaler runs backward and step
    """
scaler = torch.cuda.amp.GradScaler()
opt = torch.optim.AdamW(model.parameters())
for xb, yb in loader:
    opt.zero_grad()
    with torch.autocast("cuda"):
        loss = F.cross_entropy(model(xb), yb)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
""",
    # gradients cleared by hand
    """
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for xb, yb in loader:
    F.cross_entropy(model(xb), yb).backward()
    opt.step()
    for p in model.parameters():
        p.grad = None
""",
    # a library helper is given the optimizer: it may clear the gradients
    """
import helpers
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for xb, yb in loader:
    F.cross_entropy(model(xb), yb).backward()
    opt.step()
    helpers.after_step(model, opt)
""",
    # a new optimizer per trial, one step each: nothing accumulates across trials
    """
for lr in (0.1, 0.01):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    F.cross_entropy(model(X), Y).backward()
    opt.step()
""",
    # no_grad for evaluation only
    """
opt = torch.optim.Adam(model.parameters())
for epoch in range(5):
    opt.zero_grad()
    loss = F.cross_entropy(model(X), Y)
    loss.backward()
    opt.step()
    with torch.no_grad():
        val = F.cross_entropy(model(X), Y)
        acc = (model(X).argmax(1) == Y).float().mean()
""",
    # argmax for the accuracy next to the real loss
    """
opt = torch.optim.Adam(model.parameters())
for xb, yb in loader:
    opt.zero_grad()
    out = model(xb)
    loss = F.cross_entropy(out, yb)
    loss.backward()
    opt.step()
    correct = (out.argmax(dim=1) == yb).sum().item()
""",
    # frozen features, trainable head; frozen whole then the head unfrozen
    """
model[0].requires_grad_(False)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for xb, yb in loader:
    opt.zero_grad()
    F.cross_entropy(model(xb), yb).backward()
    opt.step()
""",
    """
for p in model.parameters():
    p.requires_grad = False
for p in model[2].parameters():
    p.requires_grad = True
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for xb, yb in loader:
    opt.zero_grad()
    F.cross_entropy(model(xb), yb).backward()
    opt.step()
""",
    # weights loaded from a checkpoint, then all fine-tuned
    """
model.load_state_dict(torch.load("pretrained.pt"))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for xb, yb in loader:
    opt.zero_grad()
    F.cross_entropy(model(xb), yb).backward()
    opt.step()
""",
    # a numpy metric beside the live loss
    """
opt = torch.optim.Adam(model.parameters())
for xb, yb in loader:
    opt.zero_grad()
    out = model(xb)
    mae = np.mean(np.abs(out.detach().numpy() - 1.0))
    loss = F.cross_entropy(out, yb)
    loss.backward()
    opt.step()
""",
])
def test_correct_training_loop_is_not_reported(tmp_path: Path, body: str) -> None:
    assert _codes(tmp_path, body) == []
