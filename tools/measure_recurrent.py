"""Measure recurrent models at init by the protocol (reference.md §1b), over a grid of cells ×
hidden sizes × sequence lengths × recurrent init scales.

    .venv/bin/python tools/measure_recurrent.py [--keras] [--out rows.jsonl]   # measure (~3 + 15 min)
    .venv/bin/python tools/measure_recurrent.py --table docs/recurrent_measurements.jsonl   # + static verdict

Model: input (B, T, F) ~ N(0, 1) → one recurrent layer (F → H) → its last step's output →
Linear(H, 1); MSE to N(0, 1) targets; batch 32; seeds 0, 1, 2; medians. Quantities: the protocol's
first/last weight-gradient ratio (first = the recurrent layer's input kernel W_ih, last = the head),
‖∂L/∂θ‖/‖θ‖, the first layer's ‖∂W‖/‖W‖, the loss, W_hh's own ‖∂W‖/‖W‖, and the gradient through
time ‖∂L/∂x_1‖/‖∂L/∂x_T‖ (what the protocol's weight ratio does not see: a vanishing gradient
through time still leaves W_ih a healthy gradient from the last steps). The label is
``gradlint.verdict.judge``'s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gradlint.verdict import Quantities, judge  # noqa: E402

SEEDS = (0, 1, 2)
BATCH = 32
FEATURES = 16


def _init_hh(torch, w, init: str, hidden: int) -> None:  # type: ignore[no-untyped-def]
    """Re-initialise each hidden-to-hidden block (one per gate) of ``w`` by ``init``."""
    kind, _, arg = init.partition(":")
    if kind == "default":
        return
    value = float(arg) if arg else 1.0
    with torch.no_grad():
        for block in w.split(hidden, dim=0):
            if kind == "normal":  # N(0, std²) with std = value / √H: σ_rec = value (std=1 is value=√H)
                block.normal_(0.0, value / math.sqrt(hidden))
            elif kind == "std":  # N(0, value²) as written
                block.normal_(0.0, value)
            elif kind == "orthogonal":
                torch.nn.init.orthogonal_(block, gain=value)
            elif kind == "identity":
                block.copy_(value * torch.eye(hidden))
            else:
                raise ValueError(init)


def torch_model(cell: str, hidden: int, init: str):  # type: ignore[no-untyped-def]
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            if cell in ("rnn", "rnn_relu"):
                self.rnn = nn.RNN(FEATURES, hidden, batch_first=True,
                                  nonlinearity="relu" if cell == "rnn_relu" else "tanh")
            else:
                self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](FEATURES, hidden, batch_first=True)
            self.head = nn.Linear(hidden, 1)
            _init_hh(torch, self.rnn.weight_hh_l0, init, hidden)

        def forward(self, x):  # type: ignore[no-untyped-def]
            out, _ = self.rnn(x)
            return self.head(out[:, -1])

    model = Net()
    first, hh, last = model.rnn.weight_ih_l0, model.rnn.weight_hh_l0, model.head.weight
    return model, first, hh, last, list(model.parameters())


def keras_model(cell: str, hidden: int, init: str, steps: int):  # type: ignore[no-untyped-def]
    import keras

    kind, _, arg = init.partition(":")
    value = float(arg) if arg else 1.0
    recurrent = {"default": "orthogonal", "std": keras.initializers.RandomNormal(stddev=value),
                 "normal": keras.initializers.RandomNormal(stddev=value / math.sqrt(hidden)),
                 "orthogonal": keras.initializers.Orthogonal(gain=value),
                 "identity": keras.initializers.Identity(gain=value)}[kind]
    layer_cls = {"rnn": keras.layers.SimpleRNN, "rnn_relu": keras.layers.SimpleRNN,
                 "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
    kwargs = {"activation": "relu"} if cell == "rnn_relu" else {}
    inputs = keras.Input(shape=(steps, FEATURES))
    rnn = layer_cls(hidden, recurrent_initializer=recurrent, **kwargs)
    head = keras.layers.Dense(1)
    model = keras.Model(inputs, head(rnn(inputs)))
    return model, rnn.cell.kernel, rnn.cell.recurrent_kernel, head.kernel, model.trainable_variables


def measure_one(cell: str, hidden: int, steps: int, init: str, use_keras: bool) -> dict:
    import torch

    rows = []
    for seed in SEEDS:
        torch.manual_seed(seed)
        if use_keras:
            import keras

            keras.utils.set_random_seed(seed)
            model, first, hh, last, params = keras_model(cell, hidden, init, steps)
            first, hh, last = first.value, hh.value, last.value
            params = [p.value for p in params]
        else:
            model, first, hh, last, params = torch_model(cell, hidden, init)
            model.train()
        gen = torch.Generator().manual_seed(1000 + seed)
        x = torch.randn(BATCH, steps, FEATURES, generator=gen).requires_grad_(True)
        y = model(x)
        t = torch.randn(y.shape, generator=gen)
        loss = torch.nn.functional.mse_loss(y, t)
        loss.backward()

        def norm(v) -> float:  # type: ignore[no-untyped-def]
            return float(v.norm()) if v is not None else 0.0

        g_first, g_last, g_hh = norm(first.grad), norm(last.grad), norm(hh.grad)
        grad2 = sum(norm(p.grad) ** 2 for p in params)
        par2 = sum(float(p.detach().norm()) ** 2 for p in params)
        gx = x.grad
        through = norm(gx[:, 0]) / norm(gx[:, -1]) if norm(gx[:, -1]) > 0 else math.nan
        nonfinite = not (math.isfinite(float(loss.detach())) and math.isfinite(grad2) and math.isfinite(g_first))
        rows.append({
            "ratio": g_first / g_last if g_last > 0 else math.nan, "loss": float(loss.detach()),
            "rel": math.sqrt(grad2 / par2), "first_rel": g_first / float(first.detach().norm()),
            "hh_rel": g_hh / float(hh.detach().norm()) if float(hh.detach().norm()) > 0 else math.nan,
            "through": through, "nonfinite": nonfinite,
        })
    out: dict = {"framework": "keras" if use_keras else "torch", "cell": cell, "hidden": hidden, "steps": steps,
                 "init": init}
    for key in ("ratio", "loss", "rel", "first_rel", "hh_rel", "through"):
        vals = [r[key] for r in rows if not math.isnan(r[key])]
        out[key] = statistics.median(vals) if vals else math.nan
    out["nonfinite"] = sum(r["nonfinite"] for r in rows) >= 2
    q = Quantities(ratio=out["ratio"], loss=out["loss"], nonfinite=out["nonfinite"], relative_grad=out["rel"],
                   first_relative_grad=out["first_rel"])
    out["label"] = judge(q).label
    return out


# ----------------------------------------------------------------------------- static side

_OPS = {("torch", "rnn"): "RNN", ("torch", "rnn_relu"): "RNN", ("torch", "lstm"): "LSTM", ("torch", "gru"): "GRU",
        ("keras", "rnn"): "SimpleRNN", ("keras", "rnn_relu"): "SimpleRNN", ("keras", "lstm"): "LSTM",
        ("keras", "gru"): "GRU"}


def static_layer(row: dict):  # type: ignore[no-untyped-def]
    """The model description gradlint extracts for a measured row's recurrent layer (the inits as
    ``_init_hh``/``keras_model`` set them: torch per gate block, Keras on the whole recurrent kernel)."""
    from gradlint.model import Init, Layer, LayerKind, Span

    framework, cell, hidden = row["framework"], row["cell"], row["hidden"]
    op = _OPS[(framework, cell)]
    gated = cell in ("lstm", "gru")
    kind, _, arg = row["init"].partition(":")
    value = float(arg) if arg else 1.0
    std_name = "std" if framework == "torch" else "stddev"
    scheme = "normal" if framework == "torch" else "random_normal"
    if kind == "default":
        rec = Init("torch_rnn_default") if framework == "torch" else Init("orthogonal")
    elif kind == "normal":
        rec = Init(scheme, {std_name: value / math.sqrt(hidden)})
    elif kind == "std":
        rec = Init(scheme, {std_name: value})
    elif framework == "torch" and gated:  # orthogonal/identity per gate block: σ_rec² = gain² per block
        rec = Init("normal", {"std": value / math.sqrt(hidden)})
    else:
        rec = Init("orthogonal" if kind == "orthogonal" else "eye", {"gain": value})
    layer = Layer(LayerKind.RECURRENT, op, Span(1, 0, 1, 0), framework, fan_in=FEATURES, fan_out=hidden,
                  activation="relu" if cell == "rnn_relu" else None, units=hidden,
                  weight_init=Init("torch_rnn_default") if framework == "torch" else Init("glorot_uniform"),
                  recurrent_init=rec, forget_bias=1.0 if framework == "keras" and cell == "lstm" else 0.0)
    return layer


def static_verdict(row: dict, exploding_log10: float = 3.0) -> tuple[float | None, str]:
    """(estimated log10 growth of the gradient through time, verdict): what GRD004 reports."""
    from gradlint.analysis.estimation import recurrent_gain
    from gradlint.analysis.irnn import identity_recurrence
    from gradlint.model import Init, Layer, LayerKind, Span

    layer = static_layer(row)
    found = recurrent_gain(layer)
    if found is None:
        # An identity ReLU recurrence (IRNN): judged by what its growing state does to the loss and
        # ‖∂L/∂θ‖/‖θ‖ (gradlint.analysis.irnn); the "growth" column is then log10 ‖∂L/∂θ‖/‖θ‖.
        torch = row["framework"] == "torch"
        head = Layer(LayerKind.DENSE, "Linear" if torch else "Dense", Span(2, 0, 2, 0), row["framework"],
                     fan_in=row["hidden"], fan_out=1, weight_init=Init("torch_default" if torch else "glorot_uniform"),
                     bias_init=Init("torch_default_bias" if torch else "zeros"))
        irnn = identity_recurrence(layer, head, FEATURES)
        if irnn is None:
            return None, "not estimated"
        loss, rel = irnn.quantities(row["steps"])
        return rel, "exploding" if rel > 2.0 or loss > 6.0 else "—"
    growth = found.log10_over(row["steps"])
    return growth, "exploding" if growth >= exploding_log10 else "—"


def table(rows: list[dict]) -> str:
    """The measured rows as the markdown table of docs/calibration.md."""
    def log(v: float) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "nan"
        if math.isinf(v) or v <= 0:
            return "inf" if v > 0 else ("0" if v == 0 else "-inf")
        return f"{math.log10(v):+.1f}"

    out = ["| framework | cell | hidden | T | recurrent init | log10 ratio | log10 ‖∂L/∂θ‖/‖θ‖ | log10 through time "
           "| label | static: est. log10 growth | static verdict |", "|" + "---|" * 11]
    for r in rows:
        growth, verdict = static_verdict(r)
        est = f"{growth:+.1f}" if growth is not None and math.isfinite(growth) else "n/a"
        out.append(f"| {r['framework']} | {r['cell']} | {r['hidden']} | {r['steps']} | {r['init']} | {log(r['ratio'])} "
                   f"| {log(r['rel'])} | {log(r['through'])} | {r['label']} | {est} | {verdict} |")
    return "\n".join(out) + "\n"


TORCH_INITS = ["default", "normal:0.5", "normal:1", "normal:1.5", "normal:2", "normal:3", "std:1",
               "orthogonal:1", "orthogonal:1.5", "orthogonal:3", "identity:1"]
KERAS_INITS = ["default", "normal:1", "normal:2", "std:1", "orthogonal:3", "identity:1"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keras", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--cells", default="rnn,rnn_relu,lstm,gru")
    parser.add_argument("--hidden", default="32,128")
    parser.add_argument("--steps", default="20,100,400")
    parser.add_argument("--inits")
    parser.add_argument("--table", type=Path, help="print the markdown table of a JSONL of measured rows")
    args = parser.parse_args(argv)
    if args.table:
        print(table([json.loads(line) for line in args.table.read_text(encoding="utf-8").splitlines()]), end="")
        return 0
    import torch

    torch.set_num_threads(1)
    inits = args.inits.split(",") if args.inits else (KERAS_INITS if args.keras else TORCH_INITS)
    sink = args.out.open("a", encoding="utf-8") if args.out else None
    for cell in args.cells.split(","):
        for hidden in map(int, args.hidden.split(",")):
            for steps in map(int, args.steps.split(",")):
                for init in inits:
                    row = measure_one(cell, hidden, steps, init, args.keras)
                    line = json.dumps(row)
                    print(f"{row['framework']:5} {cell:8} H={hidden:<4} T={steps:<4} {init:15} "
                          f"ratio={row['ratio']:.2e} rel={row['rel']:.2e} first_rel={row['first_rel']:.2e} "
                          f"loss={row['loss']:.2e} hh_rel={row['hh_rel']:.2e} through={row['through']:.2e} "
                          f"{row['label']}", flush=True)
                    if sink:
                        sink.write(line + "\n")
                        sink.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
