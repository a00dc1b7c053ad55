"""GRD014: a PyTorch training loop that never clears the gradients: ``p.grad`` accumulates every
batch's gradient and each ``step()`` applies the growing sum."""

from __future__ import annotations

import math
from collections.abc import Iterable

from gradlint.estimate import Estimate
from gradlint.model import Model
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Severity, Valid
from gradlint.training import GradEvent, TrainingFacts

from ._shared import trained_layers

# Events that clear gradients, or may (unseen): any of them anywhere keeps the rule silent.
_MAY_CLEAR = frozenset({"zero_grad", "clear", "opaque"})


def accumulating_steps(facts: TrainingFacts) -> list[GradEvent]:
    """The first ``step()`` of each optimizer that is made outside a loop and stepped inside it after a
    backward in that loop, in a file where nothing ever clears a gradient: no ``zero_grad()`` of any
    optimizer or model, no opaque gradient event, no ``.grad`` or ``zero_grad`` spelled anywhere (run
    or not)."""
    events = facts.grad_events
    if facts.spells_grad or facts.spells_zero_grad or any(e.kind in _MAY_CLEAR for e in events):
        return []
    found: dict[int, GradEvent] = {}
    for index, step in enumerate(events):
        made_at = facts.optimizer_loops.get(step.target) if step.target is not None else None
        if step.kind != "step" or made_at is None or step.loops <= made_at or step.target in found:
            continue
        backwards = [e for e in events[:index] if e.kind == "backward"]
        if backwards and backwards[-1].loops > made_at:
            found[step.target] = step  # type: ignore[index]  # (checked not None above)
    return list(found.values())


def _estimate(model: Model | None) -> Estimate:
    """Not a gradient at init (the model's own gradients are what they are): what the training code
    does with them. No ``verdict``: the dynamic check's measurement at init can neither confirm nor deny it."""
    layers = len(trained_layers(model.path)) if model is not None else 0
    return Estimate(math.nan, math.nan, max(layers, 1), False,
                    ["the k-th step() applies the sum of the k batch gradients so far"], criterion="accumulated")


class GradientsNeverZeroed(Rule):
    code = "GRD014"
    name = "gradients-never-zeroed"
    summary = ("A PyTorch training loop never clears the gradients (no `zero_grad()`): `p.grad` sums every "
               "batch's gradient and the steps grow until training diverges.")
    what_it_does = """
Finds a PyTorch optimizer made before a loop and stepped inside it after a `loss.backward()` in
that loop, in a file that never clears a gradient: no `optimizer.zero_grad()`, no
`model.zero_grad()`, no `p.grad = None` / `p.grad.zero_()` (no `.grad` and no `zero_grad`
spelled anywhere in the file, run or not), and nothing gradlint cannot follow that is handed the
loss, the model or the optimizer (a helper from another package may clear them).
"""
    why_bad = """
`backward()` adds into `p.grad`; only `zero_grad()` (or setting `p.grad` to None) resets it.
Without it, the gradient the k-th step applies is the sum of the k batch gradients so far: the
effective learning rate grows linearly with the step count (and with momentum the velocity sums
those sums). Training speeds up, then overshoots and diverges. Measured (torch 2.13,
fixtures/programs2/torch_regression_no_zero_grad.py: a 2-layer MLP, SGD lr=0.01, momentum 0.9,
100 full-batch steps): the loss is NaN at the end in all 3 seeds, the gradient norm reaching
1e17 to inf; its twin with `zero_grad()` ends at loss 0.029 (the noise floor is 0.01).
"""
    formula = """
Structural: in the recorded order of gradient events, a step of an optimizer created at a lower
loop depth than the step, preceded by a backward inside that loop, and no event that clears or
may clear a gradient (zero_grad of an optimizer or a model, an opaque event) anywhere.
"""
    fix = "No automatic fix: call `optimizer.zero_grad()` at the start of each iteration, before `loss.backward()`."

    VALID = [
        Valid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
X, y = torch.randn(512, 10), torch.randn(512, 1)
for epoch in range(100):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(X), y)
    loss.backward()
    optimizer.step()
""", use_instead=True),
        # Gradients cleared by hand.
        Valid("""
import torch
import torch.nn as nn

model = nn.Linear(10, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
for epoch in range(100):
    loss = nn.functional.mse_loss(model(torch.randn(32, 10)), torch.randn(32, 1))
    loss.backward()
    optimizer.step()
    for p in model.parameters():
        p.grad = None
"""),
        # A single step: nothing accumulates.
        Valid("""
import torch
import torch.nn as nn

model = nn.Linear(10, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
loss = nn.functional.mse_loss(model(torch.randn(32, 10)), torch.randn(32, 1))
loss.backward()
optimizer.step()
"""),
        # A helper from another package runs the step: it may clear the gradients.
        Valid("""
import torch
import torch.nn as nn
from mytraining import train_one_epoch

model = nn.Linear(10, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
for epoch in range(100):
    loss = nn.functional.mse_loss(model(torch.randn(32, 10)), torch.randn(32, 1))
    loss.backward()
    optimizer.step()
    train_one_epoch(model, optimizer)
"""),
    ]
    INVALID = [
        Invalid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
X, y = torch.randn(512, 10), torch.randn(512, 1)
for epoch in range(100):
    loss = nn.functional.mse_loss(model(X), y)
    loss.backward()
    optimizer.step()
""", line=10, column=5, message=r"nothing in the file clears the gradients", example=True),
        # A DataLoader loop, the optimizer stepped in a function called per batch.
        Invalid("""
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

def train_step(model, optimizer, xb, yb):
    loss = nn.functional.cross_entropy(model(xb), yb)
    loss.backward()
    optimizer.step()
    return loss.item()

net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 3))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
loader = DataLoader(TensorDataset(torch.randn(256, 20), torch.randint(0, 3, (256,))), batch_size=32)
for epoch in range(5):
    for xb, yb in loader:
        train_step(net, opt, xb, yb)
""", line=8),
    ]

    def check_training(self, context: RuleContext) -> Iterable[tuple[Finding, Model | None]]:
        facts = context.training
        if facts is None:
            return
        models = [context.model_by_id(i) for i in facts.optimized_models]
        model = models[0] if len(models) == 1 else None
        for step in accumulating_steps(facts):
            yield Finding(step.span, (
                "optimizer.step() runs in a loop, after loss.backward(), but nothing in the file clears the "
                "gradients (no optimizer.zero_grad(), model.zero_grad() or p.grad = None): backward() adds each "
                "batch's gradient to p.grad, so the k-th step applies the sum of k gradients and the updates grow "
                "until training diverges (measured: loss NaN within 100 steps of SGD lr=0.01, momentum 0.9). Call "
                "optimizer.zero_grad() before each loss.backward()."), Severity.ERROR, _estimate(model)), model
