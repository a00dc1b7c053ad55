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
