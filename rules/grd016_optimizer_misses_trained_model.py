"""GRD016: the optimizer steps parameters the trained model does not use: its loss is backpropagated,
but every ``step()`` leaves it at its random initialization."""

from __future__ import annotations

import math
from collections.abc import Iterable

from gradlint.estimate import Estimate
from gradlint.model import Model
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Severity, Valid
from gradlint.training import OptimizerSpec, TrainingFacts

from ._shared import models_reached_by_losses, trained_layers


def _estimate(model: Model) -> Estimate:
    """Not a gradient at init (the model's gradients are what they are): no step ever applies them. The
    update against the weights is exactly 0 (log10 −inf, null in JSON); no ``verdict``: a measurement
    at init can neither confirm nor deny it."""
    layers = len(trained_layers(model.path))
    return Estimate(math.nan, math.nan, max(layers, 1), True,
                    ["no optimizer is given this model's parameters: every step changes them by exactly 0"],
                    criterion="update", log10_update=-math.inf)


def _torch_optimizers(facts: TrainingFacts) -> list[OptimizerSpec] | None:
    """The file's torch optimizers when every one of them was given parameters gradlint read in full;
    None otherwise (a parameter list it cannot read may hold any model's)."""
    specs = [spec for spec in facts.optimizers if spec.model_id is None]
    if not specs or any(not spec.params_known or not spec.layers for spec in specs):
        return None
    return specs


class OptimizerMissesTrainedModel(Rule):
    code = "GRD016"
    name = "optimizer-misses-trained-model"
    summary = ("The PyTorch optimizer is given the parameters of other layers than those of the model whose loss "
               "is backpropagated: every `step()` leaves that model at its random initialization.")
    what_it_does = """
Follows the parameters each PyTorch optimizer is given (`model.parameters()`, lists of them,
param-group dicts) to the layers that own them, and the models whose output reaches a loss that
is backpropagated (`loss.backward()`, with the training code's `optimizer.step()`). Reports a
trained model none of whose layers any optimizer of the file was given: typically the model was
built again after the optimizer was made (`model = Net()` a second time, a fresh instance per
fold or per run), or the optimizer was made from another instance. Only when every optimizer's
parameters were read in full and the model is fully understood.
"""
    why_bad = """
`backward()` fills `p.grad` of the trained model's parameters, but `step()` updates only the
parameters its optimizer holds. None of them are the model's, so its weights never change: the
loss stays where it started however long it trains (‖ΔW‖ = 0 at every step), while the other
model's weights receive no gradient either. Measured (torch 2.13: the example below, a 2-layer MLP
rebuilt after its SGD optimizer was made, lr=0.1, 200 full-batch steps on a linear target, 3
seeds): the loss after training equals the loss at init to the last digit (2.98 → 2.98); its twin
with the optimizer made from the trained instance falls by 99 % (3.11 → 0.017).
"""
    formula = """
Structural: the layers of a model reached by a backpropagated loss (through models feeding it with
no gradient stop) are disjoint from the union of the layers owning the parameters of every torch
optimizer in the file, each optimizer's parameters read in full.
"""
    fix = ("No automatic fix: make the optimizer from the model you train, after it is built for the last "
           "time: `optimizer = torch.optim.SGD(model.parameters(), lr=...)`.")

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
    optimizer.step()
""", use_instead=True),
        # A GAN: each optimizer holds one of the two models, and the generator's loss reaches both.
        Valid("""
import torch
import torch.nn as nn

G = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
D = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 1))
opt_g = torch.optim.Adam(G.parameters(), lr=2e-4)
opt_d = torch.optim.Adam(D.parameters(), lr=2e-4)
bce = nn.BCEWithLogitsLoss()
for step in range(100):
    z = torch.randn(64, 8)
    opt_d.zero_grad()
    d_loss = bce(D(G(z).detach()), torch.zeros(64, 1)) + bce(D(torch.randn(64, 2)), torch.ones(64, 1))
    d_loss.backward()
    opt_d.step()
    opt_g.zero_grad()
    g_loss = bce(D(G(z)), torch.ones(64, 1))
    g_loss.backward()
    opt_g.step()
"""),
        # The optimizer is given parameters gradlint cannot read: nothing is said.
        Valid("""
import torch
import torch.nn as nn
from mylib import trainable_parameters

model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.SGD(trainable_parameters(model), lr=0.1)
for epoch in range(200):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(torch.randn(64, 10)), torch.randn(64, 1))
    loss.backward()
    optimizer.step()
"""),
        # Only the head is trained on purpose, and the loss trains the model holding it.
        Valid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.SGD(model[2].parameters(), lr=0.1)
for epoch in range(200):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(torch.randn(64, 10)), torch.randn(64, 1))
    loss.backward()
    optimizer.step()
"""),
    ]
    INVALID = [
        Invalid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
X, y = torch.randn(256, 10), torch.randn(256, 1)
for epoch in range(200):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(X), y)
    loss.backward()
    optimizer.step()
""", line=5, column=13, message=r"none of its 2 weight layers", example=True),
        # The optimizer is made from another instance of the same class.
        Invalid("""
import torch
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 32)
        self.fc2 = nn.Linear(32, 1)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))

net = Net()
optimizer = torch.optim.Adam(Net().parameters(), lr=1e-3)
for epoch in range(100):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(net(torch.randn(64, 10)), torch.randn(64, 1))
    loss.backward()
    optimizer.step()
""", line=14),
    ]

    def check_training(self, context: RuleContext) -> Iterable[tuple[Finding, Model | None]]:
        facts = context.training
        if facts is None or not facts.backwards or not facts.steps or facts.fits:
            return
        if any(use is None for _, use in facts.backwards):
            return  # a loss gradlint cannot read may reach any model
        specs = _torch_optimizers(facts)
        if specs is None:
            return
        stepped = frozenset().union(*(spec.layers for spec in specs))
        reached = models_reached_by_losses(facts, [use for _, use in facts.backwards if use is not None])
        for model_id in sorted(reached):
            model = context.model_by_id(model_id)
            layers = facts.model_layers.get(model_id, frozenset())
            if model is None or not model.fully_understood or not layers or not layers.isdisjoint(stepped):
                continue
            weights = len(trained_layers(model.path))
            if weights == 0:
                continue
            spec = specs[0] if len(specs) == 1 else min(specs, key=lambda s: (s.span.line, s.span.col))
            lines = [span.line for span, use in facts.backwards if use is not None and use.model_id == model_id]
            where = f" at line {min(lines)}" if lines else ""
            yield Finding(spec.span, (
                f"this optimizer is given the parameters of other layers than {model.name}'s: {model.name}'s loss "
                f"is backpropagated{where}, but optimizer.step() moves none of its {weights} weight layers, so "
                f"{model.name} stays at its random initialization (‖ΔW‖ = 0 at every step). Was the model built "
                f"again after the optimizer was made, or the optimizer made from another instance? Make it from "
                f"the model you train: {spec.kind or 'SGD'}({model.name}.parameters(), ...)."),
                Severity.ERROR, _estimate(model)), model
