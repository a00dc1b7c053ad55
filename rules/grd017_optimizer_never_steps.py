"""GRD017: a PyTorch training loop backpropagates the model's loss, but no optimizer holding its
parameters ever calls ``step()``: the gradients are computed and never applied."""

from __future__ import annotations

import math
from collections.abc import Iterable

from gradlint.estimate import Estimate
from gradlint.model import Model
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Severity, Valid
from gradlint.training import GradEvent, LossUse, OptimizerSpec, TrainingFacts

from ._shared import models_reached_by_losses, trained_layers


def _estimate(model: Model) -> Estimate:
    """Not a gradient at init (the model's gradients are what they are): nothing ever applies them. The
    update against the weights is exactly 0 (log10 −inf, null in JSON); no ``verdict``."""
    layers = len(trained_layers(model.path))
    return Estimate(math.nan, math.nan, max(layers, 1), True,
                    ["no optimizer.step() anywhere in the file: every update is exactly 0"],
                    criterion="update", log10_update=-math.inf)


def _unstepped(facts: TrainingFacts) -> bool:
    """Nothing in the file updates parameters, or may: no step ran (an optimizer's, a trainer's, a Lightning
    ``training_step``'s), nothing is fitted, nothing gradlint does not follow is handed a loss, a model or
    an optimizer, no update is spelled anywhere (run or not: a ``.step`` of anything but a learning-rate
    scheduler, ``scaler.step(opt)``, ``apply_gradients``), and no ``.grad`` (a hand-written update)."""
    if facts.steps or facts.fits or facts.spells_update or facts.spells_grad:
        return False
    return not any(event.kind in ("step", "opaque") for event in facts.grad_events)


def _looped_backwards(facts: TrainingFacts) -> list[tuple[GradEvent, LossUse]]:
    """The recorded ``backward()`` calls run inside a loop, of a torch loss on a model's output with no
    gradient stop between (GRD012 owns a stopped one), in run order."""
    looped = {(e.span.line, e.span.col) for e in facts.grad_events if e.kind == "backward" and e.loops > 0}
    events = {(e.span.line, e.span.col): e for e in facts.grad_events if e.kind == "backward"}
    found = []
    for span, use in facts.backwards:
        key = (span.line, span.col)
        if use is not None and key in looped and use.model_id is not None and use.cut is None \
                and use.loss.framework == "torch":
            found.append((events[key], use))
    return found


def _holder(facts: TrainingFacts, layers: frozenset[int]) -> OptimizerSpec | None:
    """The first torch optimizer of the file given parameters of ``layers``."""
    holders = [spec for spec in facts.optimizers if spec.model_id is None and not spec.layers.isdisjoint(layers)]
    return min(holders, key=lambda s: (s.span.line, s.span.col)) if holders else None


class OptimizerNeverSteps(Rule):
    code = "GRD017"
    name = "optimizer-never-steps"
    summary = ("A PyTorch training loop backpropagates the model's loss, but no optimizer holding its parameters "
               "ever calls `step()`: the gradients are never applied and the weights stay at their init.")
    what_it_does = """
Finds a PyTorch training loop that calls `loss.backward()` on a loss of a model's output, in a
file that makes an optimizer (`torch.optim.*`) given that model's parameters, where nothing ever
updates them: no `optimizer.step()` is run or spelled anywhere (on any object but one the file only
binds to a learning-rate scheduler: `scheduler.step()` alone moves no parameter), no call of
anything named like a step (`scaler.step(optimizer)`, `xm.optimizer_step(optimizer)`,
`train_step(...)`), no `apply_gradients`/`minimize`, no `model.fit`/`trainer.fit`, no Lightning
`training_step`, no `.grad` spelled (a hand-written update such as `p -= lr * p.grad`), and
nothing gradlint cannot follow is handed the loss, the model or the optimizer (an Accelerate
`accelerator.backward(loss)`, a helper from another package).
"""
    why_bad = """
`loss.backward()` only fills `p.grad`; the parameters change only when an optimizer's `step()`
(or a hand-written update) applies those gradients. Without one the program runs, prints a loss
every epoch and even clears the gradients with `zero_grad()`, but the weights stay exactly at
their random initialization: the loss stays flat and the accuracy at chance. Measured (torch
2.13, fixtures/programs4, 3 seeds): ‖θ_end − θ_0‖ = 0 exactly after 10 epochs of a DataLoader
loop (`optimizer.zero_grad(); loss.backward()` and no step; accuracy 0.51, chance) and after 300
full-batch iterations of a trainer's `fit` that steps only its scheduler (loss 8.1–8.7, as at
init); their twins, which step, move the weights by 63–91 % and learn (accuracy 0.98; loss 0.04).
"""
    formula = """
Structural: a recorded backward, inside a loop, of a torch loss on a model's training-code output
with no gradient stop; a torch optimizer of the file holds parameters of a layer of a model that
loss reaches; no step, fit or opaque gradient event was recorded, and no update or `.grad` is
spelled in the file.
"""
    fix = "No automatic fix: call `optimizer.step()` after `loss.backward()` in each iteration."

    VALID = [
        Valid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
X, y = torch.randn(256, 10), torch.randn(256, 1)
for epoch in range(200):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(X), y)
    loss.backward()
    optimizer.step()  # applies the gradients backward() computed
""", use_instead=True),
        # Mixed precision: the GradScaler steps the optimizer.
        Valid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
scaler = torch.cuda.amp.GradScaler()
for epoch in range(10):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(torch.randn(64, 10)), torch.randn(64, 1))
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
"""),
        # A hand-written SGD update: the optimizer only clears the gradients.
        Valid("""
import torch
import torch.nn as nn

model = nn.Linear(10, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(100):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(torch.randn(64, 10)), torch.randn(64, 1))
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
"""),
        # The step is in a helper from another package, handed the optimizer.
        Valid("""
import torch
import torch.nn as nn
from mytraining import apply_update

model = nn.Linear(10, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(100):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(torch.randn(64, 10)), torch.randn(64, 1))
    loss.backward()
    apply_update(optimizer)
"""),
        # Accelerate: the library takes the backward and the optimizer.
        Valid("""
import torch
import torch.nn as nn
from accelerate import Accelerator

accelerator = Accelerator()
model = nn.Linear(10, 1)
optimizer = torch.optim.AdamW(model.parameters())
model, optimizer = accelerator.prepare(model, optimizer)
for epoch in range(10):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(torch.randn(4, 10)), torch.randn(4, 1))
    accelerator.backward(loss)
"""),
        # One backward to inspect the gradients, outside any loop.
        Valid("""
import torch
import torch.nn as nn

model = nn.Linear(10, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loss = nn.functional.mse_loss(model(torch.randn(64, 10)), torch.randn(64, 1))
loss.backward()
"""),
    ]
    INVALID = [
        Invalid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
X, y = torch.randn(256, 10), torch.randn(256, 1)
for epoch in range(200):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(X), y)
    loss.backward()
""", line=10, column=5, message=r"no optimizer\.step\(\) anywhere in the file", example=True),
        # A train() function over a DataLoader; the scheduler steps, the optimizer does not.
        Invalid("""
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

def train(model, loader, optimizer):
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()

net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 3))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=5)
loader = DataLoader(TensorDataset(torch.randn(256, 20), torch.randint(0, 3, (256,))), batch_size=32)
for epoch in range(20):
    train(net, loader, opt)
    scheduler.step()
""", line=9, message=r"Adam at line 12"),
    ]

    def check_training(self, context: RuleContext) -> Iterable[tuple[Finding, Model | None]]:
        facts = context.training
        if facts is None or not facts.optimizers or not _unstepped(facts):
            return
        reported: set[int] = set()
        for event, use in _looped_backwards(facts):
            for model_id in sorted(models_reached_by_losses(facts, [use])):
                model = context.model_by_id(model_id)
                if model_id in reported or model is None or model.framework != "torch":
                    continue
                spec = _holder(facts, facts.model_layers.get(model_id, frozenset()))
                weights = len(trained_layers(model.path))
                if spec is None or weights == 0:
                    continue
                reported.add(model_id)
                yield Finding(event.span, (
                    f"loss.backward() fills the gradients of {model.name}'s parameters, but there is no "
                    f"optimizer.step() anywhere in the file: the {spec.kind or 'optimizer'} at line {spec.span.line} "
                    f"holds them and never applies a gradient, so {model.name}'s {weights} weight layers stay at "
                    f"their random initialization (measured: ‖θ_end − θ_0‖ exactly 0, loss flat). Call "
                    f"optimizer.step() after loss.backward()."), Severity.ERROR, _estimate(model)), model
