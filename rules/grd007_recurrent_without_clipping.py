"""GRD007: a recurrent model trained without gradient clipping."""

from __future__ import annotations

from collections.abc import Iterable

from gradlint.model import LayerKind, Model
from gradlint.rule import Finding, Invalid, Rule, RuleContext, Severity, Valid

_RECURRENT_OPS = frozenset({"RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "SimpleRNN", "ConvLSTM1D",
                            "ConvLSTM2D", "ConvLSTM3D", "Bidirectional", "SimpleRNNCell"})


def is_recurrent(model: Model) -> bool:
    return any(layer.kind == LayerKind.RECURRENT and layer.op in _RECURRENT_OPS for layer in model.layers())


class RecurrentWithoutClipping(Rule):
    code = "GRD007"
    name = "recurrent-without-gradient-clipping"
    summary = "A recurrent model is trained with no gradient clipping anywhere on the training path."
    what_it_does = """
Finds training code in the same file that trains a model containing RNN/LSTM/GRU layers —
`loss.backward()` on a loss computed from the model's output followed by `optimizer.step()`,
or Keras `model.fit`, or a trainer's `fit(model)` — when nothing in the file clips gradients:
no `torch.nn.utils.clip_grad_norm_`/`clip_grad_value_`, no Keras optimizer `clipnorm`/
`clipvalue`/`global_clipnorm`, no Lightning `gradient_clip_val`, no Hugging Face `Trainer`
(which clips at max_grad_norm=1.0 by default). It only fires when the file's data flow
connects the model, the loss and the update.
"""
    why_bad = """
Backpropagation through time multiplies by the recurrent Jacobian once per step: a sequence
that happens to push its spectral radius above one makes the gradient explode within a few
hundred steps, and one such batch can throw the weights to NaN. Clipping the gradient norm
is the standard, cheap guard (Pascanu et al., 2013).
"""
    fix = "No automatic fix."

    VALID = [
        Valid("""
import torch
import torch.nn as nn


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(32, 128, batch_first=True)
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out)


model = Tagger()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = nn.MSELoss()
for x, y in loader:
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
""", use_instead=True),
        Valid("""
from tensorflow import keras
model = keras.Sequential([keras.layers.LSTM(32, input_shape=(50, 8)), keras.layers.Dense(1)])
model.compile(optimizer=keras.optimizers.Adam(clipnorm=1.0), loss="mse")
model.fit(x, y)
"""),
    ]
    INVALID = [
        Invalid("""
import torch
import torch.nn as nn


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(32, 128, batch_first=True)
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out)


model = Tagger()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = nn.MSELoss()
for x, y in loader:
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
""", line=23, column=5, message=r"Tagger \(LSTM\) is trained without gradient clipping", example=True),
        Invalid("""
import torch, torch.nn as nn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 32, batch_first=True)
        self.fc = nn.Linear(32, 1)
    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out[:, -1])
def train(model, loader):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.MSELoss()
    for x, y in loader:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
if __name__ == "__main__":
    train(Net(), loader)
""", line=17, column=9, message=r"Net \(GRU\) is trained without gradient clipping"),
        Invalid("""
from tensorflow import keras
model = keras.Sequential([keras.layers.SimpleRNN(32, input_shape=(20, 8)), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
model.fit(x, y, epochs=3)
""", line=4, column=1, message=r"model \(SimpleRNN\)"),
    ]

    def check_training(self, context: RuleContext) -> Iterable[tuple[Finding, Model | None]]:
        facts = context.training
        if facts is None or facts.clips:
            return
        reported: set[int] = set()
        step = facts.steps[0] if facts.steps else None
        candidates: list[tuple[int | None, object]] = []
        if step is not None:
            candidates += [(use.model_id if use else None, step) for _, use in facts.backwards]
        candidates += [(model_id, span) for span, model_id in facts.fits]
        for model_id, span in candidates:
            model = context.model_by_id(model_id)
            if model is None or id(model) in reported or not is_recurrent(model):
                continue
            reported.add(id(model))
            ops = sorted({layer.op for layer in model.layers() if layer.kind == LayerKind.RECURRENT})
            message = (f"{model.name} ({'/'.join(ops)}) is trained without gradient clipping: one long or unlucky "
                       f"sequence can make the gradient through time explode. Clip the norm before the update "
                       f"(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); Keras optimizer clipnorm=1.0; "
                       f"Lightning Trainer(gradient_clip_val=1.0)).")
            yield Finding(span, message, Severity.WARNING), model  # type: ignore[arg-type]
