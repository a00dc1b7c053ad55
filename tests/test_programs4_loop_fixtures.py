"""fixtures/programs4: whole training programs whose *loop* is the defect — an optimizer that never
steps (GRD017), a gradient clip that runs where it clips nothing (GRD007 then reads the recurrent
model as unclipped) — each with a healthy twin, every one run for real (tools/measure_programs.py,
3 seeds; the numbers are in each file's header). The defect must be reported by the rule that owns it
and the twin must not; measured defects gradlint does not find yet are strict xfails."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest

from conftest import FIXTURES, run_cli

PROGRAMS = FIXTURES / "programs4"

# The long-sequence RNN programs also draw GRD008 (a plain tanh RNN over 200 steps: the gradient through
# time vanishes at init; measured, they learn only the mean of the adding problem's target): the twin's
# expected codes are that finding alone, a defect's GRD007 takes GRD008's estimate into its own message.
RNN_TWIN = ["GRD008"]

# defect program -> (the codes reported on it, its healthy twin, the twin's codes)
CAUGHT = {
    "torch_dataloader_loop_no_step": (["GRD017"], "torch_dataloader_loop_step", []),
    "torch_trainer_fit_no_step": (["GRD017"], "torch_trainer_fit_step", []),
    "torch_rnn_adding_no_clip": (["GRD007"], "torch_rnn_adding_clip_after_backward", RNN_TWIN),
    "torch_rnn_adding_clip_before_backward": (["GRD007"], "torch_rnn_adding_clip_after_backward", RNN_TWIN),
    "torch_rnn_adding_clip_after_step": (["GRD007"], "torch_rnn_adding_clip_after_backward", RNN_TWIN),
}
# Measured defects no rule reports yet (strict xfail: a change that finds one must move it to CAUGHT).
MISSED = {
    "torch_model_own_fit_no_step": ("torch_model_own_fit_step", "self(X) inside the model's own fit() method is "
                                    "not read as a training-code call: its loss is unknown and the backward opaque"),
}


@lru_cache(maxsize=1)
def _codes() -> dict[str, list[str]]:
    proc = run_cli("--no-cache", "--isolated", "--format", "json", str(PROGRAMS))
    assert proc.returncode in (0, 1), proc.stderr
    found: dict[str, list[str]] = {path.stem: [] for path in PROGRAMS.glob("*.py")}
    for diag in json.loads(proc.stdout)["diagnostics"]:
        found[Path(diag["path"]).stem].append(diag["code"])
    return found


def test_every_program_is_classified() -> None:
    named = set(CAUGHT) | {twin for _, twin, _ in CAUGHT.values()} | set(MISSED) | {t for t, _ in MISSED.values()}
    assert named == set(_codes())


@pytest.mark.parametrize("program", sorted(CAUGHT))
def test_defect_is_reported_by_its_rule(program: str) -> None:
    assert _codes()[program] == CAUGHT[program][0]


@pytest.mark.parametrize("program", sorted(CAUGHT))
def test_healthy_twin_is_not(program: str) -> None:
    _, twin, codes = CAUGHT[program]
    assert _codes()[twin] == codes


@pytest.mark.parametrize("twin", sorted(t for t, _ in MISSED.values()))
def test_missed_program_twin_is_clean(twin: str) -> None:
    assert _codes()[twin] == []


@pytest.mark.parametrize("program", [pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=MISSED[p][1]))
                                     for p in sorted(MISSED)])
def test_measured_defect_not_yet_found(program: str) -> None:
    assert _codes()[program]


_LOOP = '''
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
{setup}
for i in range(100):
    x, y = torch.randn(16, 8), torch.randn(16, 1)
{body}
'''


def _lint(tmp_path: Path, setup: str, body: str) -> list[str]:
    path = tmp_path / "train.py"
    path.write_text(_LOOP.format(setup=setup, body=body), encoding="utf-8")
    proc = run_cli("--no-cache", "--isolated", "--format", "json", str(path))
    assert proc.returncode in (0, 1), proc.stderr
    return [d["code"] for d in json.loads(proc.stdout)["diagnostics"]]


@pytest.mark.parametrize(("setup", "body", "codes"), [
    # only a scheduler steps: still no update
    ("sched = torch.optim.lr_scheduler.StepLR(optimizer, 10)",
     "    optimizer.zero_grad()\n    nn.functional.mse_loss(model(x), y).backward()\n    sched.step()", ["GRD017"]),
    # `.step` on a name the file also binds otherwise (a parameter may be the optimizer): silent
    ("def advance(sched):\n    sched.step()",
     "    optimizer.zero_grad()\n    nn.functional.mse_loss(model(x), y).backward()\n    advance(optimizer)", []),
    # the step is spelled where the interpreter does not go: silent
    ("def unused():\n    optimizer.step()",
     "    optimizer.zero_grad()\n    nn.functional.mse_loss(model(x), y).backward()", []),
    # gradients read by hand (a manual update may use them): silent
    ("", "    optimizer.zero_grad()\n    nn.functional.mse_loss(model(x), y).backward()\n"
         "    with torch.no_grad():\n        model[0].weight -= 0.1 * model[0].weight.grad", []),
])
def test_optimizer_never_steps_precision(tmp_path: Path, setup: str, body: str, codes: list[str]) -> None:
    assert _lint(tmp_path, setup, body) == codes


_RNN = '''
import torch
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(1, 64, batch_first=True)
        self.head = nn.Linear(64, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])

model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for i in range(100):
    x, y = torch.randn(32, 500, 1), torch.randn(32, 1)
{body}
'''


@pytest.mark.parametrize(("body", "misplaced"), [
    ("    optimizer.zero_grad()\n    nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
     "    nn.functional.mse_loss(model(x), y).backward()\n    optimizer.step()", True),
    ("    nn.functional.mse_loss(model(x), y).backward()\n    optimizer.step()\n"
     "    nn.utils.clip_grad_value_(model.parameters(), 1.0)\n    optimizer.zero_grad()", True),
    ("    nn.functional.mse_loss(model(x), y).backward()\n    nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
     "    optimizer.step()\n    optimizer.zero_grad()", False),
    # gradient accumulation: the clip at the top of an iteration may see gradients zero_grad() (in an if) left
    ("    nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n    nn.functional.mse_loss(model(x), y).backward()\n"
     "    if i % 4 == 3:\n        optimizer.step()\n        optimizer.zero_grad()", False),
])
def test_misplaced_clip_is_not_clipping(tmp_path: Path, body: str, misplaced: bool) -> None:
    path = tmp_path / "rnn.py"
    path.write_text(_RNN.format(body=body), encoding="utf-8")
    proc = run_cli("--no-cache", "--isolated", "--format", "json", str(path))
    codes = [d["code"] for d in json.loads(proc.stdout)["diagnostics"]]
    assert ("GRD007" in codes) == misplaced, codes
