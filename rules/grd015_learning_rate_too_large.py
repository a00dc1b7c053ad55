"""GRD015: an SGD learning rate so large for the model's estimated gradient that the first steps are as
large as the weights themselves: training diverges."""

from __future__ import annotations

import math
from collections.abc import Iterable

from gradlint.analysis.flow import model_segments, segment_flow
from gradlint.analysis.triage import LOG10_EXPLODING_LOSS, LOG10_EXPLODING_RELATIVE
from gradlint.estimate import Estimate, approx
from gradlint.extract.optimizers import SGD_KINDS
from gradlint.gradflow.propagate import LayerFlow, Propagation
from gradlint.model import Model
from gradlint.records import dataclass
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Severity, Valid
from gradlint.training import TORCH_PROBABILITY_LOSSES, LossSpec, OptimizerSpec, TrainingFacts

# The estimated first step u = lr·‖∂L/∂W‖/‖W‖/(1 − momentum) at or above which training is reported.
# Measured (docs/calibration.md, "GRD015"): 6 MLPs × plain and momentum SGD × lr 1e-3…100, 3 seeds, 300
# steps: each of the 40 settings with an estimated u ≥ 5 failed in all 3 seeds (diverged or no
# learning); the largest estimated u of a setting that learned in all 3 seeds was 2.7 (the estimate is
# within 3× of the measured u of each model).
LOG10_UPDATE_LIMIT = math.log10(5.0)
# A softmax / sigmoid cross-entropy whose gradient at the output is p − y (taken on logits or through the
# model's own probability head); an MSE to the targets.
_TORCH_LOGIT_CE = frozenset({"CrossEntropyLoss", "cross_entropy"})
_TORCH_LOGIT_BCE = frozenset({"BCEWithLogitsLoss", "binary_cross_entropy_with_logits"})
_MSE = frozenset({"MSELoss", "mse_loss", "mse", "mean_squared_error", "MeanSquaredError"})
_KERAS_CE = frozenset({"binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
                       "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy"})


def _loss_of(facts: TrainingFacts, model_id: int) -> LossSpec | None:
    """The one loss the model is trained with (Keras ``compile``, or torch losses on its output)."""
    compiled = facts.compiled.get(model_id)
    if compiled is not None:
        return compiled[0]
    specs = {use.loss.name: use.loss for use in facts.losses if use.model_id == model_id}
    return next(iter(specs.values())) if len(specs) == 1 else None


def _rescale(loss: LossSpec, p: Propagation) -> tuple[float, str] | None:
    """log10 of (the loss's gradient at the output) / (the protocol's MSE gradient), and the loss's
    description; None for a loss not modelled."""
    name = loss.name
    if name in _MSE:
        return 0.0, "MSE, unit-variance targets assumed"
    logits = name in _TORCH_LOGIT_CE | _TORCH_LOGIT_BCE or (name in _KERAS_CE and loss.from_logits) \
        or (loss.framework == "tensorflow" and loss.from_logits and "cross_entropy" in name)
    if logits and p.log10_logit_ce_rescale is not None and p.log10_ce_rescale is None:
        if name in _TORCH_LOGIT_BCE or "inary" in name or "sigmoid" in name or "weighted" in name:
            # ‖p − y‖² ≈ ¼ per sigmoid unit
            return p.log10_logit_ce_rescale + 0.5 * math.log10(0.25 * p.n_out), "binary cross-entropy on logits"
        if p.n_out < 2:
            return None  # a softmax over one output is constant (GRD010's)
        # ‖p − y‖² = 1 − 1/k at uniform p over k classes
        return p.log10_logit_ce_rescale + 0.5 * math.log10(1.0 - 1.0 / p.n_out), "softmax cross-entropy on logits"
    probabilities = name in TORCH_PROBABILITY_LOSSES or name in _KERAS_CE or name == "log_loss"
    if probabilities and not loss.from_logits and p.log10_ce_rescale is not None:
        return p.log10_ce_rescale, "cross-entropy through the output's probability head"
    return None


# The smallest common init's σ_w² (PyTorch's default, 1/3): ‖W‖ is taken as at least √(fan_out/3), so that
# a layer started near zero (a small-scale or zero-init head) is not said to be "overwritten" by a step
# that only moves it to an ordinary size.
_FLOOR_SIGMA_W2 = 1.0 / 3.0


def _relative(lf: LayerFlow, fan_out: int | None) -> float:
    """log10 ‖∂L/∂W‖ / max(‖W‖, √(fan_out/3)); −inf when the floor is unknown for a zero weight."""
    floor = 0.5 * math.log10(fan_out * _FLOOR_SIGMA_W2) if fan_out else -math.inf
    return lf.log10_grad - max(lf.log10_weight, floor)


def _moved_most(p: Propagation, fan_outs: dict[int, int | None]) -> tuple[LayerFlow, float] | None:
    """The weight layer with the largest relative gradient (against the floored ‖W‖), and that value."""
    rows = [(lf, _relative(lf, fan_outs.get(lf.key) if lf.key is not None else None)) for lf in p.layers
            if not lf.embedding and lf.log10_grad > -math.inf]
    rows = [(lf, rel) for lf, rel in rows if rel > -math.inf]
    return max(rows, key=lambda row: row[1]) if rows else None


@dataclass(frozen=True)
class FirstStep:
    """The estimated first SGD step of a model: u = lr · ‖∂L/∂W‖/‖W‖ / (1 − momentum) for ``layer``."""

    log10_u: float
    log10_relative: float  # ‖∂L/∂W‖/‖W‖ of ``layer`` under the file's loss
    layer: LayerFlow
    loss: str
    flow: Propagation
    assumptions: list[str]


def first_step(model: Model, optimizer: OptimizerSpec, facts: TrainingFacts) -> FirstStep | None:
    """The first step of an SGD optimizer of known learning rate and momentum training ``model``, for the
    layer it moves most; None when something is unknown."""
    if optimizer.kind not in SGD_KINDS or optimizer.lr is None or optimizer.lr <= 0 or optimizer.momentum is None \
            or not 0.0 <= optimizer.momentum < 1.0 or model.origin_id is None:
        return None
    loss = _loss_of(facts, model.origin_id)
    segments = model_segments(model)
    if loss is None or not segments or not segments[-1].ends_output or segments[-1].behind_cut:
        return None
    seg = segments[-1]
    p = segment_flow(seg)
    if p is None or p.nonfinite or p.dead_head is not None or p.killed is not None \
            or (p.log10_loss is not None and p.log10_loss > LOG10_EXPLODING_LOSS) \
            or (p.log10_relative_grad is not None and p.log10_relative_grad > LOG10_EXPLODING_RELATIVE):
        return None  # the model itself explodes or is dead at init: the init's fault (GRD004/GRD006/GRD010)
    scale = _rescale(loss, p)
    moved = _moved_most(p, {key: unit.fan_out for key, unit in seg.unit_by_key.items()})
    if scale is None or moved is None:
        return None
    layer = moved[0]
    rel = moved[1] + scale[0]
    log10_u = math.log10(optimizer.lr) + rel - math.log10(1.0 - optimizer.momentum)
    assumptions = list(p.assumptions) + ["first step at init, a batch of 128 examples of unit-variance inputs",
                                         f"loss: {scale[1]}"]
    return FirstStep(log10_u, rel, layer, scale[1], p, assumptions)


def _optimizer_text(optimizer: OptimizerSpec) -> str:
    lr = f"lr={optimizer.lr:g}"
    momentum = f", momentum={optimizer.momentum:g}" if optimizer.momentum else ""
    return f"{optimizer.kind}({lr}{momentum})"


def _trained_by(facts: TrainingFacts, optimizer: OptimizerSpec, context: RuleContext) -> Model | None:
    """The model an optimizer trains: the one it is compiled into, or the one called in training code that
    owns the most of the layers it is given."""
    if optimizer.model_id is not None:
        return context.model_by_id(optimizer.model_id)
    best, overlap = None, 0
    for model_id, layers in facts.model_layers.items():
        shared = len(layers & optimizer.layers)
        if shared > overlap:
            best, overlap = model_id, shared
    return context.model_by_id(best)


class LearningRateTooLarge(Rule):
    code = "GRD015"
    name = "learning-rate-too-large"
    summary = ("An SGD learning rate so large for the model's estimated gradient that the first steps change "
               "the weights by as much as the weights themselves: training diverges.")
    what_it_does = """
Estimates, for a model trained with plain or momentum SGD (`torch.optim.SGD`, Keras `SGD` or
`compile(optimizer="sgd")`, TF 1 `GradientDescentOptimizer` / `MomentumOptimizer`) whose learning rate
is written (or the framework default), the size of the first update relative to the weights,
u = lr · ‖∂L/∂W‖/‖W‖ / (1 − momentum), for each weight layer at init, with the gradient of the loss
the file uses (cross-entropy on logits or through a sigmoid/softmax head; MSE), and reports the
optimizer when u ≥ 5 for the layer it moves most. A learning rate from a variable gradlint cannot
resolve, a schedule object, or an adaptive optimizer (Adam, RMSprop: their step is ≈ lr per weight
whatever the gradient) is not judged; nor is a file that may set the rate after the optimizer is
made (a warm-up or `LambdaLR` / `OneCycleLR` scheduler, Keras' `LearningRateScheduler`,
`optimizer.param_groups`, an optimizer's `.lr` attribute). Schedulers that only lower the rate later
(`StepLR`, `ReduceLROnPlateau`) leave the first steps at the rate written.
"""
    why_bad = """
An SGD step changes W by lr·∂L/∂W. Once that is as large as W, every step overwrites what the
weights learned: the loss grows, the ReLUs die or the activations overflow to inf/NaN. Healthy
training moves weights by 1e-4 to 1e-1 of their size per step (TheDeepChecker's range). Momentum β
multiplies the steady-state step by 1/(1 − β). Measured (torch 2.13, 6 MLPs with ReLU or tanh, MSE
regression and cross-entropy classification, plain and momentum SGD, lr 1e-3 to 100, 3 seeds, 300
steps of batch 64): each of the 40 settings with an estimated u ≥ 5 failed in all 3 seeds (loss NaN
or 10× its start, or no learning); every setting that learned in all 3 seeds had an estimated u ≤ 2.7;
fixtures/programs2/torch_deep_mlp_sgd_lr10.py (u ≈ 27): NaN in 2 of 3 seeds.
"""
    formula = """
The end-to-end estimate of GRD001 (`gradlint explain GRD001`) gives, per weight layer at init,
‖∂L/∂W‖/‖W‖ under an MSE loss to unit-variance targets over a batch of 128. The loss the file uses
rescales every layer alike (the backward pass is linear in the output gradient): a cross-entropy's
gradient at the logits is (p − y)/B, ‖p − y‖² ≈ 1 per example for a softmax, ¼ per sigmoid unit;
an MSE keeps the protocol's targets (a regression to larger targets has larger gradients: the
estimate is then low). u = lr · max_l ‖∂L/∂W_l‖/‖W_l‖ / (1 − momentum), reported when u ≥ 5.
Against the measured first step of 6 MLPs the estimate is within a factor 3 (1.8× high to 2.9× low).
‖W‖ is floored at √(fan_out/3) (PyTorch's default init, the smallest common one): a head started near
zero is not "overwritten" by a step that moves it to an ordinary size. A model whose own estimate
explodes at init (loss > 1e6, ‖∂L/∂θ‖/‖θ‖ > 1e2) is left to GRD004/GRD006: its init is the fault.
The input is assumed unit-variance: unscaled features make the real step larger than estimated.
"""
    fix = "No automatic fix: lower the learning rate (the message gives the one that makes u ≈ 0.1)."

    VALID = [
        Valid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(20, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 2))
for layer in model:
    if isinstance(layer, nn.Linear):
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
criterion = nn.CrossEntropyLoss()
X = torch.randn(1024, 20)
y = (X[:, 0] > 0).long()
for epoch in range(50):
    optimizer.zero_grad()
    loss = criterion(model(X), y)
    loss.backward()
    optimizer.step()
""", use_instead=True),
        # Adam's step is ≈ lr per weight whatever the gradient: not judged.
        Valid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(20, 128), nn.ReLU(), nn.Linear(128, 2))
optimizer = torch.optim.Adam(model.parameters(), lr=10)
X = torch.randn(1024, 20)
y = (X[:, 0] > 0).long()
for epoch in range(50):
    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(model(X), y)
    loss.backward()
    optimizer.step()
"""),
        # A learning rate from the command line is unknown.
        Valid("""
import sys
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(20, 128), nn.ReLU(), nn.Linear(128, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=float(sys.argv[1]))
X = torch.randn(1024, 20)
y = (X[:, 0] > 0).long()
for epoch in range(50):
    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(model(X), y)
    loss.backward()
    optimizer.step()
"""),
        # Keras' default SGD (0.01).
        Valid("""
import numpy as np
import keras
from keras import layers

model = keras.Sequential([keras.Input(shape=(32,)), layers.Dense(64, activation="relu"),
                          layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="sgd", loss="binary_crossentropy")
model.fit(np.random.randn(1000, 32), np.random.randint(0, 2, 1000), epochs=5)
"""),
    ]
    INVALID = [
        # Measured (tools/measure_programs.py, 3 seeds, 50 full-batch steps): final loss 1.4-3.0 from 0.7, the
        # gradient norm reaching 6e5-2e13; the same program at lr=0.05 (the first VALID case) ends at 0.22-0.25.
        Invalid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(20, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 2))
for layer in model:
    if isinstance(layer, nn.Linear):
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
optimizer = torch.optim.SGD(model.parameters(), lr=10)
criterion = nn.CrossEntropyLoss()
X = torch.randn(1024, 20)
y = (X[:, 0] > 0).long()
for epoch in range(50):
    optimizer.zero_grad()
    loss = criterion(model(X), y)
    loss.backward()
    optimizer.step()
""", line=8, column=13, message=r"SGD\(lr=10\): the first step", example=True),
        Invalid("""
import numpy as np
import keras
from keras import layers

model = keras.Sequential([keras.Input(shape=(32,)), layers.Dense(64, activation="relu"),
                          layers.Dense(1, activation="sigmoid")])
model.compile(optimizer=keras.optimizers.SGD(learning_rate=100.0), loss="binary_crossentropy")
model.fit(np.random.randn(1000, 32), np.random.randint(0, 2, 1000), epochs=5)
""", line=7, message=r"SGD\(lr=100\)"),
    ]

    def check_training(self, context: RuleContext) -> Iterable[tuple[Finding, Model | None]]:
        facts = context.training
        if facts is None or not facts.trains or facts.rewrites_lr:
            return  # a rate set after the optimizer is made (warm-up, param_groups) is not the one written
        for optimizer in facts.optimizers:
            model = _trained_by(facts, optimizer, context)
            step = first_step(model, optimizer, facts) if model is not None else None
            if step is None or step.log10_u < LOG10_UPDATE_LIMIT:
                continue
            p, log10_u = step.flow, step.log10_u
            estimate = Estimate(p.log10_ratio, p.log10_backward_ratio, len(p.layers), False, step.assumptions,
                                log10_loss=p.log10_loss, log10_relative_grad=p.log10_relative_grad,
                                log10_first_relative_grad=p.log10_first_relative_grad, criterion="update",
                                log10_update=log10_u)
            lr = 10 ** (log10_u - step.log10_relative)  # lr / (1 − momentum)
            suggested = lr * (1 - (optimizer.momentum or 0.0)) * 10 ** (-1.0 - log10_u)  # u ≈ 0.1
            rel = approx(step.log10_relative, plain=True)
            momentum = f" / (1 − {optimizer.momentum:g})" if optimizer.momentum else ""
            yield Finding(optimizer.span, (
                f"{_optimizer_text(optimizer)}: the first step is {approx(log10_u)}× the weights of "
                f"{step.layer.label} (lr × ‖∂L/∂W‖/‖W‖{momentum} = {optimizer.lr or 0:g} × {rel}{momentum} "
                f"estimated at init, {step.loss}); "
                f"first steps ≥ 5× the weights were measured to diverge or stop learning. Lower the learning rate "
                f"to ≈ {suggested:.2g} (a first step ≈ 0.1× the weights)."),
                Severity.ERROR if log10_u >= LOG10_UPDATE_LIMIT + 1.0 else Severity.WARNING, estimate), model
