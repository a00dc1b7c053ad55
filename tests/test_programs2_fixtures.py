"""fixtures/programs2: whole training programs (a model, data loading, a loop or ``fit``) with one
defect each and a healthy twin, every one run for real (tools/measure_programs.py, 3 seeds; the
numbers are in each file's header). The defect must be reported by the rule that owns it and the
twin must stay clean; measured defects gradlint does not find yet are strict xfails, so a change
that finds them has to say so here."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest

from conftest import FIXTURES, run_cli

PROGRAMS = FIXTURES / "programs2"

# defect program -> (the rule that reports it, its healthy twin). Two were flagged before this corpus
# and their measured harm is small here (see their headers): the sigmoid + categorical_crossentropy
# program trains almost as well as its softmax twin, and the 400-step SimpleRNN forecaster learns a
# task that needs a few steps of memory in 2 epochs without blowing up.
CAUGHT = {
    "keras_binary_softmax_one_unit": ("GRD010", "keras_binary_sigmoid_one_unit"),
    "keras_fashion_sigmoid_categorical_crossentropy": ("GRD009", "keras_fashion_softmax_categorical_crossentropy"),
    "keras_simple_rnn_sine_long_no_clip": ("GRD007", "keras_lstm_sine_long_no_clip"),
    "torch_bceloss_on_linear_output": ("GRD009", "torch_bceloss_on_sigmoid_output"),
    "torch_cnn_features_detached_in_forward": ("GRD012", "torch_cnn_features_live_in_forward"),
    "torch_finetune_everything_frozen": ("GRD012", "torch_finetune_head_trainable"),
    "torch_forward_numpy_activation": ("GRD012", "torch_forward_torch_activation"),
    "torch_iris_loss_on_output_data": ("GRD012", "torch_iris_loss_on_output"),
    "torch_kfold_optimizer_before_model": ("GRD016", "torch_kfold_optimizer_per_model"),
    "torch_loss_in_numpy_regression": ("GRD012", "torch_loss_in_torch_regression"),
    "torch_loss_item_rewrapped_dataloader": ("GRD012", "torch_loss_dataloader_clean"),
    "torch_mse_on_argmax_prediction": ("GRD012", "torch_cross_entropy_on_logits"),
    "torch_regression_no_zero_grad": ("GRD014", "torch_regression_zero_grad"),
    "torch_softmax_forward_cross_entropy": ("GRD009", "torch_logits_forward_cross_entropy"),
    "torch_step_before_backward_function": ("GRD013", "torch_step_after_backward_function"),
    "torch_training_step_under_no_grad": ("GRD012", "torch_validation_under_no_grad"),
    "torch_zero_grad_after_backward": ("GRD013", "torch_zero_grad_before_backward"),
    "torch_deep_mlp_sgd_lr10": ("GRD015", "torch_deep_mlp_sgd_lr005"),
    "keras_deep_dense_sgd_lr100": ("GRD015", "keras_deep_dense_sgd_lr005"),
}
# Measured defects no rule reports yet (strict xfail: a change that finds one must move it to CAUGHT).
MISSED = {
    "torch_mnist_data_raw_tanh": ("torch_mnist_data_scaled_tanh", "the scale of the input data (raw 0-255 pixels) "
                                  "is not modelled; and raw pixels measured harmless in two other programs"),
}
# Suspected defects the measurement did not confirm (the program learns as well as its twin, or
# better): no finding is right.
NOT_DEFECTS = {
    "keras_mnist_raw_pixels_sigmoid": "keras_mnist_scaled_pixels_sigmoid",
    "keras_cifar10_raw_pixels_tanh_cnn": "keras_cifar10_scaled_pixels_tanh_cnn",
    "torch_adam_created_every_step": "torch_adam_created_once",
    "torch_bn_model_trained_in_eval_mode": "torch_bn_model_trained_in_train_mode",
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
    named = set(CAUGHT) | {twin for _, twin in CAUGHT.values()} | set(MISSED) | \
        {twin for twin, _ in MISSED.values()} | set(NOT_DEFECTS) | set(NOT_DEFECTS.values())
    assert named == set(_codes())


@pytest.mark.parametrize("program", sorted(CAUGHT))
def test_defect_is_reported_by_its_rule(program: str) -> None:
    assert _codes()[program] == [CAUGHT[program][0]]


@pytest.mark.parametrize("twin", sorted([twin for _, twin in CAUGHT.values()] + [t for t, _ in MISSED.values()]
                                        + list(NOT_DEFECTS.values()) + list(NOT_DEFECTS)))
def test_healthy_program_is_clean(twin: str) -> None:
    assert _codes()[twin] == []


@pytest.mark.parametrize("program", [pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=MISSED[p][1]))
                                     for p in sorted(MISSED)])
def test_measured_defect_not_yet_found(program: str) -> None:
    assert _codes()[program]
