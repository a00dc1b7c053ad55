"""GRD801: with --dynamic, the measured gradients at init are vanishing, exploding or symmetric,
and no static finding on the model explains it."""

from __future__ import annotations

from collections.abc import Iterable

from gradlint.model import Model
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Valid


class MeasuredGradientProblem(Rule):
    code = "GRD801"
    name = "measured-gradient-problem"
    summary = ("With --dynamic: the model's gradients, measured at init, vanish, explode or stay symmetric, "
               "and no static finding explains it.")
    measured = True
    what_it_does = """
Reported only by `gradlint --dynamic`, which builds each model the static pass found (in a
subprocess), runs one forward and one backward pass at initialization on N(0, 1) input with an
MSE loss to N(0, 1) targets, three seeds, and judges the medians with the measurement
protocol's three quantities (below). When the verdict is vanishing, exploding or symmetric
and no static finding on the same model predicts that verdict, this diagnostic reports it at
the model's definition, with the numbers, severity error: CI fails on it (exit 1), in every
output format. Saturated sigmoid/tanh units and dead ReLU units are listed as evidence.
What the static pass cannot see is typically decided at run time: an activation or an init
scale read from a config or the environment, weights loaded or computed from arrays, custom
layers outside the estimator's model.
"""
    why_bad = """
The measurement is the ground truth the static rules estimate. Vanishing: the first layers
get updates orders of magnitude smaller than the last (or none: a frozen first layer, below
Adam's ε, does not move under SGD or Adam). Exploding: the forward pass or the gradients blow
up, the first steps diverge or produce NaN. Symmetric: units that start identical receive
identical gradients and stay copies of each other forever, so a layer of width n learns like
a layer of width 1.
"""
    formula = """
(a) ratio = ‖∂L/∂W_first‖ / ‖∂L/∂W_last‖ (first and last weight layer in execution order):
    vanishing < 1e-4, exploding > 1e4, healthy in [1e-2, 1e2].
(b) forward scale: loss > 1e6, or any NaN/Inf in the loss or the gradients: exploding.
(c) ‖∂L/∂θ‖ / ‖θ‖ over all trainable parameters: exploding > 1e2, healthy in [1e-5, 10];
    the first weight layer's ‖∂W‖/‖W‖: vanishing (frozen) < 1e-7, healthy ≥ 1e-4.
symmetric: a hidden layer whose weight rows are identical and whose gradient rows are
identical. Order: NaN/Inf, symmetric, forward blow-up, vanishing, exploding ratio; anything
outside the healthy bands that meets no problem criterion is borderline (not reported).
Thresholds: gradlint/verdict.py (shared by --dynamic, gradlint.monitor and calibration).
"""
    fix = "No automatic fix. The message names the quantity that decided it and the layers involved."

    VALID = (
        Valid("""
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width=128, depth=12):
        super().__init__()
        layers = [nn.Linear(32, width), nn.ReLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 10)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.head(self.body(x))
""", use_instead=True),
    )
    INVALID = (
        Invalid("""
import os

import torch.nn as nn

# The activation is chosen when the program runs: the static pass cannot know it.
Act = getattr(nn, os.environ.get("ACTIVATION") or "Sigmoid")


class Net(nn.Module):
    def __init__(self, width=128, depth=12):
        super().__init__()
        layers = [nn.Linear(32, width), Act()]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), Act()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        return self.head(self.body(x))
""", line=9, message=r"measured vanishing.*ratio", example=True),
    )

    def check(self, model: Model, context: RuleContext) -> Iterable[Finding]:
        """Nothing statically: the dynamic check (gradlint.dynamic_bridge) reports this code."""
        return ()
