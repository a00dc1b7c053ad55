"""GRD019: the loss mixes the examples of a batch: a classifier's softmax over the batch axis, or a
(N, 1) prediction compared with a (N,) target (broadcast to (N, N))."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from gradlint.model import Layer, LayerKind, Model, Node
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Severity, Valid
from gradlint.training import LossUse, TrainingFacts

# Elementwise regression losses: they compare prediction and target element by element after
# broadcasting them to one shape (torch only warns when the shapes differ).
_ELEMENTWISE_LOSSES = frozenset({"MSELoss", "mse_loss", "L1Loss", "l1_loss", "SmoothL1Loss", "smooth_l1_loss",
                                 "HuberLoss", "huber_loss"})
_SOFTMAXES = frozenset({"softmax", "log_softmax"})

Dims = tuple[int | None, ...]


class BatchAxisMixed(Rule):
    code = "GRD019"
    name = "batch-axis-mixed"
    summary = ("The loss mixes the examples of a batch: a classifier's softmax normalizes over the batch axis "
               "(`dim=0` of a (N, C) output), or a (N, 1) prediction is compared with a (N,) target, which "
               "broadcasts to (N, N).")
    what_it_does = """
Follows the shape of a PyTorch training batch that the file makes known (a data tensor of literal
shape, `torch.from_numpy` of a numpy array of literal shape, a mini-batch slice `X[i:i + 64]` of
one, a `DataLoader` over a `TensorDataset` of them) through the model and into the loss. Only a
torch `Linear`, activations, dropout, normalization, constant scales, conversions, `view`/`reshape`
(their arguments counted), `flatten`, `nn.Flatten()` and `squeeze`/`unsqueeze` of a literal dim
pass a shape on; anything else leaves it unknown, and nothing is said.

Reports (1) a softmax or log_softmax right after a `Linear` that normalizes over `dim=0` (or
`-2`) of its 2-D (N, C) output, when that output feeds the loss; and (2) an elementwise regression
loss (`MSELoss`, `L1Loss`, `SmoothL1Loss`, `HuberLoss` and their functional forms) whose prediction
and target shapes differ and broadcast to a larger shape: a `Linear(k, 1)` output (N, 1) against a
target (N,) is compared as (N, N).
"""
    why_bad = """
(1) Over dim=0 each class's probabilities sum to 1 across the examples of the batch, not across
the classes of one example: the loss rewards an example for scoring a class higher than the other
examples do, never one class over another, so the per-class offsets (the class priors) are never
learned and a prediction depends on the rest of its batch; on a batch of one every probability
is 1 and argmax always says class 0. Measured (tools/measure_programs.py, 3 seeds, twins with
`dim=1`): an imbalanced 3-class MLP trained full-batch with NLLLoss(log(softmax(dim=0))) reaches
0.81-0.82 accuracy on the whole set against 0.875-0.88, and 0.72 (the majority class's share)
predicting one example at a time against 0.875-0.88; a 10-class classifier with
log_softmax(dim=0) on DataLoader batches of 32 reaches 0.91-0.92 against 0.94-0.95 on the whole
set, and 0.09-0.11 (chance) one example at a time. On well-separated classes the whole-set
accuracy is close to the twin's (0.98-0.99 against 1.0): the damage shows in what the model
predicts for small batches and in its probabilities.

(2) With prediction (N, 1) and target (N,), broadcasting makes every prediction be compared with
every target of the batch: the loss is lowest when the model predicts the batch's mean target for
every input, whatever the input. PyTorch only warns. Measured (3 programs, 3 seeds each, twins
with the target reshaped to (N, 1)): the mean squared error after training stays at 96-100 % of
the targets' variance, where the twins reach 0.005-23 % of it.
"""
    formula = """
Structural, from the known shapes: (1) the softmax's input is 2-D, its `dim` is 0 or -2, and the
layer before it is a `Linear` (so the last axis holds the classes); (2) the broadcast of the
prediction's and the target's shapes has more elements than either.
"""
    fix = ("No automatic fix: normalize over the classes (`dim=1`, or `dim=-1`); make the prediction and the target "
           "the same shape (`y.view(-1, 1)` / `y.unsqueeze(1)`, or `pred.squeeze(1)`).")

    VALID = [
        Valid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3), nn.LogSoftmax(dim=1))
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
X, y = torch.randn(300, 4), torch.randint(0, 3, (300,))
for epoch in range(100):
    optimizer.zero_grad()
    loss = nn.NLLLoss()(model(X), y)
    loss.backward()
    optimizer.step()
""", use_instead=True),
        # One example at a time (a 1-D input): dim=0 is the class axis.
        Valid("""
import torch
import torch.nn as nn

policy = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2), nn.Softmax(dim=0))
optimizer = torch.optim.Adam(policy.parameters(), lr=0.01)
state = torch.randn(4)
probs = policy(state)
loss = -torch.log(probs[0])
loss.backward()
optimizer.step()
"""),
        # The shape of the batch is not known (a loader gradlint does not read): nothing is said.
        Valid("""
import torch
import torch.nn as nn
import torch.nn.functional as F

model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    optimizer.zero_grad()
    F.nll_loss(F.log_softmax(model(x), dim=0), y).backward()
    optimizer.step()
"""),
        # Attention pooling over the instances of a bag (dim=0 of (K, heads) scores): the softmax weights
        # the instances, the loss sees the pooled prediction.
        Valid("""
import torch
import torch.nn as nn

class AttentionMIL(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(16, 32)
        self.score = nn.Linear(32, 4)
        self.head = nn.Linear(128, 1)

    def forward(self, bag):
        h = torch.relu(self.embed(bag))
        a = torch.softmax(self.score(h), dim=0)
        pooled = (a.unsqueeze(2) * h.unsqueeze(1)).sum(dim=0).reshape(1, 128)
        return self.head(pooled)

model = AttentionMIL()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
bag, label = torch.randn(50, 16), torch.ones(1, 1)
loss = nn.BCEWithLogitsLoss()(model(bag), label)
loss.backward()
optimizer.step()
"""),
        # Prediction and target of the same shape, (N, 1), and a squeezed prediction against (N,).
        Valid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
X = torch.randn(500, 8)
y = X.sum(dim=1)
for epoch in range(100):
    optimizer.zero_grad()
    loss = nn.MSELoss()(model(X), y.unsqueeze(1)) + nn.MSELoss()(model(X).squeeze(1), y)
    loss.backward()
    optimizer.step()
"""),
    ]
    INVALID = [
        Invalid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3), nn.LogSoftmax(dim=0))
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
X, y = torch.randn(300, 4), torch.randint(0, 3, (300,))
for epoch in range(100):
    optimizer.zero_grad()
    loss = nn.NLLLoss()(model(X), y)
    loss.backward()
    optimizer.step()
""", line=4, column=70, message=r"LogSoftmax over dim=0 of .*\(300, 3\) output normalizes", example=True),
        Invalid("""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 64)
        self.fc2 = nn.Linear(64, 5)

    def forward(self, x):
        return F.softmax(self.fc2(torch.relu(self.fc1(x))), dim=0)

net = Net()
loader = DataLoader(TensorDataset(torch.randn(1000, 20), torch.randint(0, 5, (1000,))), batch_size=32)
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
for xb, yb in loader:
    optimizer.zero_grad()
    loss = F.nll_loss(torch.log(net(xb)), yb)
    loss.backward()
    optimizer.step()
""", line=13, message=r"softmax over dim=0 of Net's \(32, 5\) output"),
        Invalid("""
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
X = torch.randn(500, 8)
y = X.sum(dim=1)
for epoch in range(100):
    optimizer.zero_grad()
    loss = nn.MSELoss()(model(X), y)
    loss.backward()
    optimizer.step()
""", line=10, column=12, message=r"\(500, 1\) .* \(500,\): they broadcast to \(500, 500\)"),
    ]

    def check_training(self, context: RuleContext) -> Iterable[tuple[Finding, Model | None]]:
        facts = context.training
        if facts is None:
            return
        reported: set[int] = set()
        for use in facts.losses:
            model = context.model_by_id(use.model_id)
            if model is None or use.loss.framework != "torch":
                continue
            softmax = _batch_softmax(facts, use.prediction)
            if softmax is not None and id(softmax[0]) not in reported:
                reported.add(id(softmax[0]))
                yield Finding(softmax[0].span, _softmax_message(model.name, *softmax), Severity.WARNING), model
            broadcast = _broadcast_loss(use)
            if broadcast is not None:
                yield Finding(use.span, _broadcast_message(use.loss.name, model.name, use, broadcast),
                              Severity.WARNING), model


def _batch_softmax(facts: TrainingFacts, nodes: Sequence[Node]) -> tuple[Layer, Dims] | None:
    """The softmax/log_softmax the prediction ends with, when it normalizes over dim 0 of the 2-D output
    of the Linear right before it (dropout between allowed), as the training calls ran it."""
    layers = [n for n in nodes if not (isinstance(n, Layer) and n.kind == LayerKind.DROPOUT)]
    if len(layers) < 2 or not all(isinstance(n, Layer) for n in layers[-2:]):
        return None
    last, before = layers[-1], layers[-2]
    assert isinstance(last, Layer) and isinstance(before, Layer)
    if last.framework != "torch" or last.kind != LayerKind.ACTIVATION or last.activation not in _SOFTMAXES \
            or last.axis is None:
        return None
    seen = facts.softmax_inputs.get(id(last))
    dims = seen[1] if seen is not None and seen[0] is last else None
    if dims is None or len(dims) != 2 or last.axis not in (0, -2):
        return None
    if not (before.kind == LayerKind.DENSE and before.framework == "torch" and before.op in ("Linear", "linear")
            and before.fan_out is not None and before.fan_out >= 2 and dims[1] in (None, before.fan_out)):
        return None
    return last, dims


def _softmax_message(model: str, layer: Layer, dims: Dims) -> str:
    n, c = dims
    what = f"({n}, {c})" if n is not None else f"(N, {c})"
    name = layer.op if layer.op[:1].isupper() else layer.activation
    batch = "the batch's examples" if n is None else f"the {n} examples of the batch"
    if n == 1:
        batch = "the single example of the batch (so every probability is 1)"
    return (f"{name} over dim=0 of {model}'s {what} output normalizes each class's scores across {batch} "
            f"instead of across the {c} classes of each example: the loss rewards an example for scoring a class "
            f"higher than the other examples do, never one class over another, and a prediction depends on the "
            f"rest of its batch; on a batch of one every probability is 1 (measured, 3 seeds: predicting one "
            f"example at a time, accuracy 0.72 = the majority class's share on 3 classes and 0.09-0.11 on 10, "
            f"against 0.88-0.95 with dim=1; on the whole set 0.81-0.92 against 0.88-0.95). Use dim=1 (or dim=-1).")


def _broadcast_loss(use: LossUse) -> Dims | None:
    """The shape an elementwise loss broadcasts prediction and target to, when both are known, differ and
    broadcast to more elements than either holds; None otherwise."""
    if use.loss.name not in _ELEMENTWISE_LOSSES:
        return None
    pred, target = use.prediction_dims, use.target_dims
    if pred is None or target is None or pred == target or None in pred or None in target:
        return None
    out: list[int] = []
    for a, b in zip(reversed((1,) * (len(target) - len(pred)) + pred),
                    reversed((1,) * (len(pred) - len(target)) + target), strict=True):
        assert a is not None and b is not None
        if a != b and 1 not in (a, b):
            return None  # a shape error at run time, not a silent broadcast
        out.append(max(a, b))
    shape = tuple(reversed(out))
    size = math.prod(shape)
    if size <= max(math.prod(d for d in pred if d is not None), math.prod(d for d in target if d is not None)):
        return None
    return shape


def _shape(dims: Sequence[int | None]) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def _broadcast_message(loss: str, model: str, use: LossUse, shape: Dims) -> str:
    assert use.prediction_dims is not None and use.target_dims is not None
    pred, target = _shape(use.prediction_dims), _shape(use.target_dims)
    fix = ("reshape the target to the prediction's shape (y.view(-1, 1) or y.unsqueeze(1)), or squeeze the "
           "prediction (pred.squeeze(1))") if len(use.prediction_dims) > len(use.target_dims) else \
        "make the prediction and the target the same shape"
    return (f"{loss} compares {model}'s prediction of shape {pred} with a target of shape {target}: they broadcast "
            f"to {_shape(shape)}, so every prediction is compared with every target of the batch and the loss is "
            f"lowest when the model predicts the batch's mean target for every input (PyTorch only warns; "
            f"measured, 3 programs x 3 seeds: the error after training stays at 96-100 % of the targets' "
            f"variance, 0.005-23 % of it when the shapes match). {fix[0].upper() + fix[1:]}.")
