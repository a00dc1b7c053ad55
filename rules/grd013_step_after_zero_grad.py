"""GRD013: every ``optimizer.step()`` runs right after ``optimizer.zero_grad()``, with no ``backward()``
between them: the step applies a zero (or None) gradient and the model never moves."""

from __future__ import annotations

import math
from collections.abc import Iterable

from gradlint.estimate import Estimate
from gradlint.model import Model
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Severity, Valid
from gradlint.training import GradEvent, TrainingFacts

from ._shared import trained_layers


def _within(inner: GradEvent, outer: GradEvent) -> bool:
    """``inner`` runs whenever ``outer`` does: the undecidable regions open at ``outer`` are open at
    ``inner`` too (``outer`` is not in an ``if`` arm that ``inner`` is outside of)."""
    return inner.regions[:len(outer.regions)] == outer.regions


def cleared_steps(facts: TrainingFacts) -> dict[int, list[tuple[GradEvent, GradEvent]]]:
    """Optimizers (by id) every ``step()`` of which comes right after that optimizer's ``zero_grad()``
    in the order the training code runs, nothing that takes a gradient in between (a recorded
    backward, or anything opaque: a backward of something unread, a call gradlint does not follow
    that is handed the loss, model or optimizer): ``[(step, zero_grad), ...]``."""
    events = facts.grad_events
    found: dict[int, list[tuple[GradEvent, GradEvent]]] = {}
    fed: set[int] = set()
    for index, step in enumerate(events):
        if step.kind != "step" or step.target is None:
            continue
        cleared = None
        for earlier in reversed(events[:index]):
            if earlier.kind in ("backward", "opaque"):
                break
            if earlier.kind == "zero_grad" and earlier.target == step.target:
                cleared = earlier if _within(step, earlier) else None
                break
        if cleared is None:
            fed.add(step.target)
        else:
            found.setdefault(step.target, []).append((step, cleared))
    return {target: pairs for target, pairs in found.items() if target not in fed}


def _estimate(model: Model | None) -> Estimate:
    """Not a gradient at init (the model's own gradients are what they are): what the training code
    does with them. No ``verdict``: the dynamic check's measurement at init can neither confirm nor deny it."""
    layers = len(trained_layers(model.path)) if model is not None else 0
    return Estimate(math.nan, math.nan, max(layers, 1), True,
                    ["each step() reads p.grad just after zero_grad() set it to None"], criterion="zeroed_before_step")


class StepAfterZeroGrad(Rule):
    code = "GRD013"
    name = "step-after-zero-grad"
    summary = ("Every `optimizer.step()` runs right after `optimizer.zero_grad()` with no `backward()` between: "
               "the step applies a zero gradient and the weights never move.")
    what_it_does = """
Follows the training code in the order it runs (a loop's body once, a function it calls inline)
and finds a PyTorch optimizer whose every `step()` comes right after its own `zero_grad()`, with
no `loss.backward()` in between: `loss.backward(); optimizer.zero_grad(); optimizer.step()`, or
`optimizer.zero_grad(); optimizer.step(); loss.backward()`, in which each iteration's gradient
is computed after the step and erased before the next one. Anything between the two that may
take a gradient unseen keeps it silent: a `backward()` of a value gradlint did not read as a
loss, `accelerator.backward(loss)`, `optimizer.step(closure)`, a call it cannot follow that is
given the loss, the model or the optimizer, a `zero_grad()` inside an `if` the step is outside
of, or any `.grad` spelled in the file (gradients set by hand).
"""
    why_bad = """
`zero_grad()` sets every `p.grad` to None (PyTorch ≥ 2.0; to 0 before, or with
`set_to_none=False`). A `step()` right after it has nothing to apply: SGD, Adam and the others
skip parameters whose gradient is None (and move them by nothing, or by momentum/weight decay
only, when it is 0). The backward of the iteration then fills `p.grad`, and the next
`zero_grad()` erases it before any step reads it. The loss is computed, printed and even
backpropagated every iteration, but the weights stay where the init put them: measured
(torch 2.13, fixtures/programs2, 3 seeds) ‖θ_end − θ_0‖ = 0 exactly after 60 steps (step before
backward) and after 320 (zero_grad between backward and step); the twins reach 0.98 accuracy.
"""
    formula = """
Structural: in the recorded order of gradient events (backward, zero_grad, step, opaque), every
step of the optimizer has, as its nearest preceding event among backward / opaque / its own
zero_grad, that zero_grad — in the same or an enclosing region (not in an undecidable `if`
the step is outside of).
"""
    fix = ("No automatic fix: clear, then backpropagate, then step — `optimizer.zero_grad(); loss.backward(); "
           "optimizer.step()`.")

    VALID = [
        Valid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
for step in range(100):
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
""", use_instead=True),
        # zero_grad at the end of the iteration, after the step.
        Valid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.Adam(model.parameters())
for step in range(100):
    loss = nn.functional.mse_loss(model(torch.randn(64, 8)), torch.randn(64, 1))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
"""),
        # Gradient accumulation: zero_grad and step every 4 batches, after the backward.
        Valid("""
import torch
import torch.nn as nn

model = nn.Linear(8, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
for i in range(100):
    loss = nn.functional.mse_loss(model(torch.randn(16, 8)), torch.randn(16, 1)) / 4
    loss.backward()
    if (i + 1) % 4 == 0:
        optimizer.step()
        optimizer.zero_grad()
"""),
        # LBFGS: the closure clears, computes the loss and backpropagates inside step().
        Valid("""
import torch
import torch.nn as nn

model = nn.Linear(8, 1)
optimizer = torch.optim.LBFGS(model.parameters())
x, y = torch.randn(64, 8), torch.randn(64, 1)

def closure():
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    return loss

for _ in range(10):
    optimizer.zero_grad()
    optimizer.step(closure)
"""),
        # The backward goes through a library gradlint does not follow.
        Valid("""
import torch
import torch.nn as nn
from accelerate import Accelerator

accelerator = Accelerator()
model = nn.Linear(8, 1)
optimizer = torch.optim.AdamW(model.parameters())
for _ in range(10):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(torch.randn(4, 8)), torch.randn(4, 1))
    accelerator.backward(loss)
    optimizer.step()
"""),
    ]
    INVALID = [
        Invalid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
for step in range(100):
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
""", line=11, column=5, message=r"right after optimizer.zero_grad\(\) at line 10", example=True),
        # step before backward, in a train() function called per epoch.
        Invalid("""
import torch
import torch.nn as nn
import torch.nn.functional as F

def train(model, data, target, optimizer):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(data), target)
    optimizer.step()
    loss.backward()

net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 3))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
for epoch in range(10):
    train(net, torch.randn(32, 20), torch.randint(0, 3, (32,)), opt)
""", line=8, message=r"backward\(\) at line 9 comes after"),
    ]

    def check_training(self, context: RuleContext) -> Iterable[tuple[Finding, Model | None]]:
        facts = context.training
        if facts is None or facts.spells_grad:
            return  # gradients set or read by hand somewhere: the order of the calls is not the whole story
        cleared = cleared_steps(facts)
        models = [context.model_by_id(i) for i in facts.optimized_models]
        model = models[0] if len(models) == 1 else None
        for pairs in cleared.values():
            step, zero = pairs[0]
            later = [e for e in facts.grad_events if e.kind == "backward" and
                     (e.span.line, e.span.col) > (step.span.line, step.span.col)]
            order = (f"the backward() at line {later[0].span.line} comes after the step, and the next zero_grad() "
                     f"erases its gradient before any step reads it" if later and later[0].span.line > step.span.line
                     else "the backward() before them fills p.grad, and zero_grad() erases it before the step")
            yield Finding(step.span, (
                f"optimizer.step() runs right after optimizer.zero_grad() at line {zero.span.line} with no "
                f"backward() between them: {order}, so every step applies a None (zero) gradient and the weights "
                f"never move (measured: ‖θ_end − θ_0‖ exactly 0, loss flat). Call zero_grad(), then "
                f"loss.backward(), then optimizer.step()."), Severity.ERROR, _estimate(model)), model
