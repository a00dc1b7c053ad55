"""GRD010: an output that passes no gradient at all at init: softmax over one unit, or a saturated head."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from gradlint.analysis.inits import recommended_init
from gradlint.analysis.triage import Cause, Diagnosis, diagnoses_for
from gradlint.estimate import approx, no_gradient
from gradlint.model import LayerKind, Model, Node, Span
from gradlint.rule import Finding, Invalid, Rule, RuleContext, RuleOptions, Severity, Valid

from ._shared import categorical_over_one_unit, diagnosis_severity, trained_layers

_UPSTREAM_FIX = {
    Cause.INIT_SCALE: "use a fan-aware init such as {init} instead of the fixed-scale one",
    Cause.INIT_MISMATCH: "use the init matching the activations, {init}",
    Cause.RESIDUAL_GROWTH: "normalize the residual branches (pre-norm) or scale them (layer scale, ReZero)",
    Cause.EXPANDING: "bound the forward pass (normalization, the init matching the activations)",
}


class DeadOutput(Rule):
    code = "GRD010"
    name = "dead-output"
    summary = ("The model's output passes no gradient at init: softmax over a single unit, a head saturated by a "
               "forward blow-up, or a forward signal that dies on the way (thresholded units, Dropout(p=1)).")
    what_it_does = """
Finds outputs whose gradient is exactly zero at initialization, so that no layer of the model
can learn: a softmax over a single output (`Dense(1, activation="softmax")`, `nn.Softmax` or
`torch.softmax` after a 1-unit `Linear`), which is the constant 1 whatever the input; and a
sigmoid/tanh/softmax head whose pre-activations the estimate puts so far beyond the head's
float32 range (sigmoid: 17 above, 88 below; tanh: ±9) that no example of a batch of 128 keeps
a non-zero derivative. Also a Keras categorical cross-entropy (not the sparse one) on a model
whose output has a single unit: Keras renormalizes `y_pred` to sum 1 over the classes (or applies
softmax, with `from_logits=True`), so over one unit the prediction is the constant 1, the loss 0.

Also a forward signal that dies on the way: a stack of thresholded units (Keras
`ThresholdedReLU(theta)`, `ReLU(threshold=θ)`, `keras.activations.relu(x, threshold=θ)`, torch
`nn.Threshold(θ, 0)`, `F.threshold(x, θ, 0)`: u if u > θ else 0) whose share of live units
collapses layer by layer, and a `Dropout(p=1.0)` (Keras `Dropout(1.0)`), which zeroes every
activation in training mode.
"""
    why_bad = """
softmax normalizes over its units: over one unit it outputs exactly 1, its Jacobian is 0, and
the loss is a constant of the model — every gradient is exactly 0 and training does nothing
(a frequent bug: one output unit with the softmax of a multi-class head). A head that
receives pre-activations of std 1e6 rounds to 0 or 1 in float32: sigmoid′ = σ(1 − σ) is
exactly 0, and so is every gradient behind it, however the layers below are built.
A thresholded unit passes only pre-activations above θ, and its output is smaller than its input:
each layer shrinks the spread, so the next one has even fewer units above θ, until a batch has none
and every gradient before that layer is exactly 0 (8 layers of `nn.Threshold(1.0, 0)` at PyTorch's
default init: first and last weight gradients exactly 0, 3 seeds).
"""
    formula = """
Softmax over one unit: structural. Saturated head: the end-to-end propagation (see
`gradlint explain GRD004`) gives the head's pre-activation variance q; with u ~ N(0, q), the
share of (example, unit) pairs whose derivative survives float32 is P(lo < u < hi) for the
head's band (lo, hi); reported when 128 examples × the head's units leave fewer than ½ alive.
Thresholded stack: the share of live units is P(u > θ) with the exact Gaussian tail; after a layer
that leaves K ~ Poisson(n·p) units of n alive, the examples' scales spread (some keep none, some
several large units), and the estimate carries that spread on (`gradlint.gradflow.sparse`): the
rare large examples keep a high threshold alive far longer than one common variance says. Reported
(criterion `dead_forward`, `log10_live_share` in the estimate) when a layer has fewer than ln 2 live
(example, unit) pairs expected in a batch of 128, or when the gradient vanishes (ratio, frozen first
layer) with a live share below 1 %.
"""
    fix = "No automatic fix: for one binary output use sigmoid (with BCE) instead of softmax."

    VALID = [
        Valid("""
from keras import layers, Sequential

model = Sequential([layers.Dense(64, activation="relu", input_shape=(16,)),
                    layers.Dense(1, activation="sigmoid")])
""", use_instead=True),
        # A softmax over ten classes.
        Valid("""
import torch.nn as nn
model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=-1))
"""),
        # A sigmoid head after a He-initialized ReLU body: not saturated.
        Valid("""
import torch.nn as nn
layers = []
for _ in range(8):
    lin = nn.Linear(256, 256)
    nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
    layers += [lin, nn.ReLU()]
model = nn.Sequential(*layers, nn.Linear(256, 1), nn.Sigmoid())
"""),
        # 4 thresholded layers at He init keep enough units above θ = 2; dropout 0.5 is healthy.
        Valid("""
import torch.nn as nn
layers = []
for i in range(4):
    lin = nn.Linear(32 if i == 0 else 128, 128)
    nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
    layers += [lin, nn.Threshold(2.0, 0.0), nn.Dropout(0.5)]
model = nn.Sequential(*layers, nn.Linear(128, 1))
"""),
        # One unit with the binary cross-entropy; ten with the sparse categorical one.
        Valid("""
from keras.models import Sequential
from keras.layers import Dense

model = Sequential([Dense(12, input_dim=8, activation="relu"), Dense(1, activation="sigmoid")])
model.compile(loss="binary_crossentropy", optimizer="adam")
classifier = Sequential([Dense(12, input_dim=8, activation="relu"), Dense(10)])
classifier.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
"""),
    ]
    INVALID = [
        Invalid("""
from keras import layers, Sequential

model = Sequential([layers.Dense(64, activation="relu", input_shape=(16,)),
                    layers.Dense(1, activation="softmax")])
""", line=4, column=21, message=r"softmax over a single output", example=True),
        Invalid("""
import torch.nn as nn
model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 1), nn.Softmax(dim=1))
""", line=2, column=71, message=r"softmax over a single output"),
        Invalid("""
from keras.models import Sequential
from keras.layers import Dense

model = Sequential([Dense(12, input_dim=8, activation="relu"), Dense(1, activation="sigmoid")])
model.compile(loss="categorical_crossentropy", optimizer="adam")
""", line=5, column=1, message=r"categorical_crossentropy over a single output"),
        # 8 ReLU layers with N(0, 1) weights into a sigmoid head.
        # 8 thresholded layers at PyTorch default init: the forward signal dies on the way.
        Invalid("""
import torch.nn as nn
model = nn.Sequential(*[m for i in range(8) for m in (nn.Linear(32 if i == 0 else 128, 128), nn.Threshold(1.0, 0.0))],
                      nn.Linear(128, 1))
""", line=2, column=55, message=r"forward signal dies through 8 thresholded layers"),
        Invalid("""
import torch.nn as nn
model = nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Dropout(p=1.0), nn.Linear(128, 1))
""", line=2, column=54, message=r"drops every unit in training mode"),
        Invalid("""
import torch.nn as nn
layers = []
for _ in range(8):
    lin = nn.Linear(256, 256)
    nn.init.normal_(lin.weight, std=1.0)
    layers += [lin, nn.ReLU()]
model = nn.Sequential(*layers, nn.Linear(256, 1), nn.Sigmoid())
""", line=7, column=51, message=r"sigmoid head .* saturates"),
    ]

    def check(self, model: Model, context: RuleContext) -> Iterable[Finding]:
        options = context.options
        for diagnosis in diagnoses_for(model, self.code, options.vanishing_log10, options.exploding_log10,
                                       options.frozen_log10):
            if diagnosis.cause == Cause.DEAD_FORWARD:
                yield _dead_forward(diagnosis, options, model)
                continue
            seg = diagnosis.segment
            head = seg.head if seg is not None and seg.head is not None else diagnosis.units[-1].layer
            flow = diagnosis.flow
            where = f"{head.op} at line {head.span.line}"
            if flow is not None and flow.dead_head is not None and flow.dead_head.startswith("softmax over"):
                message = (f"softmax over a single output ({where}) is the constant 1: the loss does not depend on "
                           f"the model and every gradient is exactly 0. For one binary output use sigmoid (with a "
                           f"binary cross-entropy); for k classes, softmax over k ≥ 2 units.")
            else:
                act = (flow.dead_head.split(" ")[0] if flow is not None and flow.dead_head
                       else (flow.head_activation or "head") if flow is not None else "head")
                q = flow.head_q if flow is not None else None
                std = approx(0.5 * math.log10(q), plain=True) if q else "unknown"
                upstream = _UPSTREAM_FIX.get(diagnosis.upstream or Cause.EXPANDING, "")
                units = diagnosis.all_units
                fix = upstream.format(init=recommended_init(units[0])) if units else upstream
                if flow is not None and flow.dead_head is None:
                    # Not exactly 0: the few examples near the head's centre carry a typical batch.
                    first = flow.log10_first_relative_grad
                    rare = ("whose two largest logits nearly tie" if act == "softmax" else "near its centre")
                    effect = (f"only the rare examples {rare} pass a gradient: the first layer's "
                              f"‖∂W‖/‖W‖ {approx(first)} (frozen), and exactly 0 for many inits")
                else:
                    effect = "every gradient is exactly 0 in float32"
                message = (f"the {act} head ({where}) receives pre-activations of std ≈ {std}: the forward pass "
                           f"blows up on the way and the head saturates, so {effect}. To fix the cause, {fix}.")
            span = Span(head.span.line, head.span.col, head.span.end_line, head.span.end_col)
            yield Finding(span, message, diagnosis_severity(diagnosis, options), diagnosis.estimate)

    def check_training(self, context: RuleContext) -> Iterable[tuple[Finding, Model | None]]:
        facts = context.training
        if facts is None:
            return
        sites: list[tuple[str, bool, Span, Model, Sequence[Node]]] = []
        for model_id, (loss, _, span) in facts.compiled.items():
            model = context.model_by_id(model_id)
            if model is not None and loss is not None:
                sites.append((loss.name, loss.from_logits, span, model, model.path))
        for use in facts.losses:
            model = context.model_by_id(use.model_id)
            if model is not None and use.loss.framework == "keras":
                sites.append((use.loss.name, use.loss.from_logits, use.span, model, use.prediction))
        for name, from_logits, span, model, nodes in sites:
            # softmax over one unit is already the model's dead output (check).
            if categorical_over_one_unit(name, nodes):
                how = ("applies softmax over the classes" if from_logits
                       else "renormalizes y_pred to sum 1 over the classes")
                yield Finding(span, (
                    f"{name} over a single output ({model.name} ends in 1 unit): the loss {how}, so over one unit "
                    f"the prediction is the constant 1 and the loss is 0 whatever the model does — every gradient "
                    f"is exactly 0. For a binary target use binary_crossentropy with a sigmoid output; for k "
                    f"classes, k output units."), Severity.ERROR,
                    no_gradient(len(trained_layers(nodes)), "dead_output", dead_output=True)), model



def _dead_forward(diagnosis: Diagnosis, options: RuleOptions, model: Model) -> Finding:
    """A stack of thresholded units whose live share collapses, or a dropout of rate 1: where, by how much,
    and the fix."""
    units = diagnosis.units
    flow = diagnosis.flow
    drops = [lay for lay in model.layers() if lay.kind == LayerKind.DROPOUT and lay.rate is not None and lay.rate >= 1]
    if flow is not None and flow.killed is not None and drops:
        drop = drops[0]
        order = {id(lay): i for i, lay in enumerate(model.layers())}
        before = sum(1 for u in units if order.get(id(u.layer), -1) < order[id(drop)])
        message = (f"{drop.op}({drop.rate:g}) at line {drop.span.line} drops every unit in training mode: its "
                   f"output is exactly 0, so the loss does not depend on the {before} weight layer(s) before it, "
                   f"and they (and the layer right after it, whose input is 0) get no gradient at all. Use a drop "
                   f"probability below 1 (0.1–0.5 is usual), or remove the layer.")
        span = Span(drop.span.line, drop.span.col, drop.span.end_line, drop.span.end_col)
        return Finding(span, message, Severity.ERROR, diagnosis.estimate)
    first = units[0]
    act = first.act_layer or first.layer
    theta = first.act_param if first.act_param is not None else 1.0
    lines = sorted({u.layer.span.line for u in units})
    where = f"lines {lines[0]}–{lines[-1]}" if len(lines) > 1 else f"line {lines[0]}"
    e = diagnosis.estimate
    dead = flow.dead if flow is not None else None
    keys = [lf.key for lf in flow.layers] if flow is not None else []
    if dead is not None and dead.key in keys:
        share = f" (a live share {approx(e.log10_live_share)})" if e.log10_live_share is not None else ""
        effect = (f"at weight layer {keys.index(dead.key) + 1} of {len(keys)} a batch of 128 examples has no unit "
                  f"alive{share}: its output is exactly 0 and no weight layer before it gets any gradient")
    elif e.log10_first_relative_grad is not None and e.log10_first_relative_grad < options.frozen_log10:
        effect = (f"the live share falls to {approx(e.log10_live_share)} and the first layer's ‖∂L/∂W‖/‖W‖ "
                  f"to {approx(e.log10_first_relative_grad)} (frozen)")
    else:
        effect = (f"the live share falls to {approx(e.log10_live_share)} and the first/last weight-gradient "
                  f"ratio to {approx(e.log10_weight_ratio)}")
    message = (f"the forward signal dies through {len(units)} thresholded layers ({act.op}, threshold {theta:g}; "
               f"{where}): each passes on only the units above the threshold, and {effect}. Use plain ReLU "
               f"(threshold 0) with He init, or a threshold well below the pre-activations' spread.")
    span = Span(first.layer.span.line, first.layer.span.col, first.layer.span.end_line, first.layer.span.end_col)
    return Finding(span, message, diagnosis_severity(diagnosis, options), diagnosis.estimate)
