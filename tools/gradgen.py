"""Generate random model files, measure them by the protocol, and score gradlint's static verdict.

    .venv/bin/python tools/gradgen.py run -n 200 --seed 1 [--keep DIR] [--jobs 1]
    .venv/bin/python tools/gradgen.py compare FILE.py [--input 3,32,32]   # per-layer: measured vs estimated

Each configuration (activation × init × width × depth × norm × residual style × head, torch or
Keras) is rendered as an ordinary source file, the way people write models. The *same file* is
then (1) linted statically by gradlint (never imported by it) and (2) executed here and measured
by the protocol of reference.md §1b and ``gradlint.verdict``: one forward/backward pass at init,
N(0, 1) input, MSE to N(0, 1) targets, batch 128, train mode, 3 seeds, medians; the label comes
from ``gradlint.verdict.judge`` on the measured quantities.

Reports, per class (vanishing / exploding / symmetric): recall and precision of the static
verdict against the measured label (healthy and borderline models: false alarms count against
precision; borderline ones are not scored for recall), and the median |log10 error| of the
estimated first/last ratio, loss and first-layer relative gradient. ``--keep DIR`` writes the
files and a JSONL of results for inspection.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gradlint.engine import LintConfig, lint_source  # noqa: E402
from gradlint.verdict import Quantities, judge  # noqa: E402

BATCH = 128
SEEDS = (0, 1, 2)
GRADIENT_CODES = {"GRD001", "GRD003", "GRD004", "GRD005", "GRD006", "GRD010", "GRD011", "GRD012"}

# ----------------------------------------------------------------------------- configurations

ACTS = ["relu", "relu", "tanh", "sigmoid", "gelu", "silu", "leaky_relu", "elu", "softplus", "selu", "linear",
        "sigmoid/relu"]
TORCH_INITS = ["default", "default", "xavier_uniform", "xavier_normal_gain", "kaiming_normal", "kaiming_uniform",
               "normal", "normal", "uniform", "uniform", "orthogonal", "trunc_normal", "zeros", "constant"]
KERAS_INITS = ["glorot_uniform", "glorot_uniform", "he_normal", "lecun_normal", "RandomNormal", "RandomNormal",
               "RandomUniform", "uniform_str", "VarianceScaling", "VarianceScaling", "Orthogonal", "TruncatedNormal",
               "zeros"]
NORMS = ["none", "none", "none", "bn", "ln", "bn_post", "ln_post"]
RESIDUALS = ["none", "none", "none", "plain", "preln", "postln", "rezero", "layerscale", "fixup", "skipinit"]
HEADS = ["linear", "linear", "linear10", "sigmoid", "softmax10", "softmax1", "tanh"]


@dataclass
class Config:
    framework: str
    act: str
    init: str
    init_arg: float
    width: int
    depth: int
    n_in: int
    norm: str
    residual: str
    head: str
    bias: str  # default | zeros | none
    conv: bool = False

    @property
    def name(self) -> str:
        parts = [self.framework, self.act.replace("/", "-"), self.init, f"{self.init_arg:g}", f"w{self.width}",
                 f"d{self.depth}", self.norm, self.residual, self.head, self.bias] + (["conv"] if self.conv else [])
        return "_".join(parts)


def sample(rng: random.Random) -> Config:
    framework = "keras" if rng.random() < 0.3 else "torch"
    act = rng.choice(ACTS)
    init = rng.choice(KERAS_INITS if framework == "keras" else TORCH_INITS)
    arg = {"normal": rng.choice([0.01, 0.05, 0.1, 1.0]), "uniform": rng.choice([0.05, 0.1, 1.0]),
           "orthogonal": rng.choice([1.0, 2.0, 4.0]), "xavier_normal_gain": rng.choice([1.0, 3.0, 5.0]),
           "trunc_normal": 0.02, "constant": 0.1, "RandomNormal": rng.choice([0.01, 0.05, 1.0]),
           "RandomUniform": rng.choice([0.05, 0.5]), "VarianceScaling": rng.choice([0.1, 1.0, 2.0, 25.0]),
           "Orthogonal": rng.choice([1.0, 3.0]), "TruncatedNormal": rng.choice([0.02, 0.05])}.get(init, 0.0)
    residual = rng.choice(RESIDUALS)
    if framework == "keras" and residual not in ("none", "plain", "preln"):
        residual = "none"
    norm = rng.choice(NORMS) if residual in ("none", "plain") else "none"
    conv = framework == "torch" and residual == "none" and rng.random() < 0.2
    width = rng.choice([16, 32, 64]) if conv else rng.choice([32, 64, 128, 256])  # convs: keep the pass cheap
    depth = rng.choice([2, 4, 8, 12]) if conv else rng.choice([2, 4, 8, 12, 16, 24])
    return Config(framework, act, init, arg, width, depth, rng.choice([16, 32, 64]), norm, residual, rng.choice(HEADS),
                  rng.choice(["default", "default", "zeros", "none"]) if framework == "torch" else "default", conv)


# ----------------------------------------------------------------------------- rendering

_TORCH_ACT = {"relu": "torch.relu({})", "tanh": "torch.tanh({})", "sigmoid": "torch.sigmoid({})",
              "gelu": "F.gelu({})", "silu": "F.silu({})", "leaky_relu": "F.leaky_relu({}, 0.01)", "elu": "F.elu({})",
              "softplus": "F.softplus({})", "selu": "F.selu({})", "linear": "{}"}


def _torch_init(c: Config) -> str:
    a = c.init_arg
    return {
        "default": "",
        "xavier_uniform": "nn.init.xavier_uniform_(m.weight)",
        "xavier_normal_gain": f"nn.init.xavier_normal_(m.weight, gain={a:g})",
        "kaiming_normal": "nn.init.kaiming_normal_(m.weight, nonlinearity=\"relu\")",
        "kaiming_uniform": "nn.init.kaiming_uniform_(m.weight, mode=\"fan_in\", nonlinearity=\"relu\")",
        "normal": f"nn.init.normal_(m.weight, mean=0.0, std={a:g})",
        "uniform": f"nn.init.uniform_(m.weight, -{a:g}, {a:g})",
        "orthogonal": f"nn.init.orthogonal_(m.weight, gain={a:g})",
        "trunc_normal": f"nn.init.trunc_normal_(m.weight, std={a:g})",
        "zeros": "nn.init.zeros_(m.weight)",
        "constant": f"nn.init.constant_(m.weight, {a:g})",
    }[c.init]


def _act(c: Config, expr: str, index: str) -> str:
    if c.act == "sigmoid/relu":
        return f"(torch.sigmoid({expr}) if {index} % 2 == 0 else torch.relu({expr}))"
    return _TORCH_ACT[c.act].format(expr)


def render_torch(c: Config) -> str:
    w, d = c.width, c.depth
    bias = "" if c.bias != "none" else ", bias=False"
    lines = ["import torch", "import torch.nn as nn", "import torch.nn.functional as F", "", ""]
    head_out = {"linear": 1, "linear10": 10, "sigmoid": 1, "softmax10": 10, "softmax1": 1, "tanh": 1}[c.head]
    head_expr = {"linear": "{}", "linear10": "{}", "sigmoid": "torch.sigmoid({})",
                 "softmax10": "torch.softmax({}, dim=-1)", "softmax1": "torch.softmax({}, dim=-1)",
                 "tanh": "torch.tanh({})"}[c.head]
    norm_cls = "nn.BatchNorm1d" if c.norm.startswith("bn") else "nn.LayerNorm"
    layer = (f"nn.Conv2d({{}}, {w}, 3, padding=1{bias})" if c.conv else f"nn.Linear({{}}, {w}{bias})")
    if c.conv:
        norm_cls = "nn.BatchNorm2d" if c.norm.startswith("bn") else "nn.GroupNorm"
    if c.residual != "none":
        blocks = max(1, d // 2)
        lines += ["class Block(nn.Module):", "    def __init__(self, d):", "        super().__init__()",
                  f"        self.fc1 = nn.Linear(d, d{bias})", f"        self.fc2 = nn.Linear(d, d{bias})"]
        if c.residual in ("preln", "postln"):
            lines.append("        self.norm = nn.LayerNorm(d)")
        if c.residual == "rezero":
            lines.append("        self.alpha = nn.Parameter(torch.zeros(1))")
        if c.residual == "layerscale":
            lines.append("        self.gamma = nn.Parameter(1e-4 * torch.ones(d))")
        if c.residual == "skipinit":
            lines.append("        self.alpha = nn.Parameter(torch.tensor(0.1))")
        if c.residual == "fixup":
            lines.append("        nn.init.zeros_(self.fc2.weight)")
        lines += ["", "    def forward(self, x):"]
        src = "self.norm(x)" if c.residual == "preln" else "x"
        branch = f"self.fc2({_act(c, f'self.fc1({src})', '0')})"
        if c.residual in ("rezero", "skipinit"):
            branch = f"self.alpha * {branch}"
        if c.residual == "layerscale":
            branch = f"self.gamma * {branch}"
        out = f"self.norm(x + {branch})" if c.residual == "postln" else f"x + {branch}"
        lines += [f"        return {out}", "", ""]
        lines += ["class Net(nn.Module):", "    def __init__(self):", "        super().__init__()",
                  f"        self.inp = nn.Linear({c.n_in}, {w}{bias})",
                  f"        self.blocks = nn.ModuleList([Block({w}) for _ in range({blocks})])",
                  f"        self.head = nn.Linear({w}, {head_out}{bias})"]
    else:
        first = c.n_in if not c.conv else 3
        lines += ["class Net(nn.Module):", "    def __init__(self):", "        super().__init__()",
                  f"        self.layers = nn.ModuleList([{layer.format(first)}] + [{layer.format(w)} "
                  f"for _ in range({d - 1})])"]
        if c.norm != "none":
            arg = "1, " if norm_cls == "nn.GroupNorm" else ""
            lines.append(f"        self.norms = nn.ModuleList([{norm_cls}({arg}{w}) for _ in range({d})])")
        lines.append(f"        self.head = nn.Linear({w}, {head_out}{bias})")
    init = _torch_init(c)
    if init or c.bias == "zeros":
        kinds = "(nn.Linear, nn.Conv2d)" if c.conv else "nn.Linear"
        lines += ["        for m in self.modules():", f"            if isinstance(m, {kinds}):"]
        if init:
            lines.append(f"                {init}")
        if c.bias == "zeros":
            lines.append("                nn.init.zeros_(m.bias)")
    lines += ["", "    def forward(self, x):"]
    if c.residual != "none":
        lines += ["        x = self.inp(x)", "        for block in self.blocks:", "            x = block(x)"]
    else:
        lines.append("        for i, layer in enumerate(self.layers):")
        if c.norm in ("bn", "ln"):
            lines.append(f"            x = {_act(c, 'self.norms[i](layer(x))', 'i')}")
        elif c.norm in ("bn_post", "ln_post"):
            lines.append(f"            x = self.norms[i]({_act(c, 'layer(x)', 'i')})")
        else:
            lines.append(f"            x = {_act(c, 'layer(x)', 'i')}")
        if c.conv:
            lines.append("        x = x.mean(dim=(2, 3))")
    lines += [f"        return {head_expr.format('self.head(x)')}", "", "",
              "def build_model():", "    return Net()", ""]
    return "\n".join(lines)


def _keras_init(c: Config) -> str:
    a = c.init_arg
    return {
        "glorot_uniform": "", "he_normal": 'kernel_initializer="he_normal"',
        "lecun_normal": 'kernel_initializer="lecun_normal"',
        "RandomNormal": f"kernel_initializer=initializers.RandomNormal(stddev={a:g})",
        "RandomUniform": f"kernel_initializer=initializers.RandomUniform(-{a:g}, {a:g})",
        "uniform_str": 'kernel_initializer="uniform"',
        "VarianceScaling": f'kernel_initializer=initializers.VarianceScaling(scale={a:g}, mode="fan_avg")',
        "Orthogonal": f"kernel_initializer=initializers.Orthogonal(gain={a:g})",
        "TruncatedNormal": f"kernel_initializer=initializers.TruncatedNormal(stddev={a:g})",
        "zeros": 'kernel_initializer="zeros"',
    }[c.init]


def render_keras(c: Config) -> str:
    w, d = c.width, c.depth
    init = _keras_init(c)
    kw = f", {init}" if init else ""
    head_units = {"linear": 1, "linear10": 10, "sigmoid": 1, "softmax10": 10, "softmax1": 1, "tanh": 1}[c.head]
    head_act = {"linear": "", "linear10": "", "sigmoid": ', activation="sigmoid"',
                "softmax10": ', activation="softmax"',
                "softmax1": ', activation="softmax"', "tanh": ', activation="tanh"'}[c.head]
    act = c.act if c.act != "sigmoid/relu" else None
    lines = ["import keras", "from keras import initializers, layers", "", "", "def build_model():",
             f"    inputs = keras.Input(shape=({c.n_in},))"]

    def dense(i: int, src: str) -> list[str]:
        a = act or ("sigmoid" if i % 2 == 0 else "relu")
        out = []
        if c.norm in ("bn", "ln"):
            norm = "BatchNormalization" if c.norm == "bn" else "LayerNormalization"
            out += [f"    x = layers.Dense({w}{kw})({src})", f"    x = layers.{norm}()(x)",
                    f'    x = layers.Activation("{a}")(x)']
        else:
            out.append(f'    x = layers.Dense({w}, activation="{a}"{kw})({src})')
            if c.norm in ("bn_post", "ln_post"):
                norm = "BatchNormalization" if c.norm == "bn_post" else "LayerNormalization"
                out.append(f"    x = layers.{norm}()(x)")
        return out

    if c.residual == "none" and act:
        lines += dense(0, "inputs") + [f"    for _ in range(1, {d}):"] + ["    " + ln for ln in dense(1, "x")]
    elif c.residual == "none":
        for i in range(d):
            lines += dense(i, "inputs" if i == 0 else "x")
    else:
        a = act or "relu"
        lines.append(f"    x = layers.Dense({w}{kw})(inputs)")
        lines.append(f"    for _ in range({max(1, d // 2)}):")
        src = "layers.LayerNormalization()(x)" if c.residual == "preln" else "x"
        lines += [f'        h = layers.Dense({w}, activation="{a}"{kw})({src})',
                  f"        h = layers.Dense({w}{kw})(h)",
                  "        x = layers.Add()([x, h])"]
    lines += [f"    outputs = layers.Dense({head_units}{head_act}{kw})(x)",
              "    return keras.Model(inputs, outputs)", ""]
    return "\n".join(lines)


def render(c: Config) -> str:
    return render_keras(c) if c.framework == "keras" else render_torch(c)


# ----------------------------------------------------------------------------- measurement


def _load(path: Path, seed: int):  # type: ignore[no-untyped-def]
    import torch

    torch.manual_seed(seed)
    random.seed(seed)
    if "keras" in path.read_text(encoding="utf-8"):
        import keras

        keras.utils.set_random_seed(seed)
        _tensorflow_shim(keras)
    spec = importlib.util.spec_from_file_location(f"gen_{seed}_{abs(hash(str(path)))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("build_model", "make_model", "get_model", "create_model"):
        if callable(getattr(module, name, None)):
            return getattr(module, name)()
    for name in ("model", "net"):
        if getattr(module, name, None) is not None:
            return getattr(module, name)
    classes = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, torch.nn.Module)
               and v.__module__ == module.__name__]
    return classes[-1]()


def _tensorflow_shim(keras) -> None:  # type: ignore[no-untyped-def]
    """No TensorFlow here: ``tensorflow.keras.*`` imports resolve to Keras 3 (torch backend)."""
    import types

    if "tensorflow" in sys.modules:
        return
    tf = types.ModuleType("tensorflow")
    tf.keras = keras  # type: ignore[attr-defined]
    sys.modules["tensorflow"] = tf
    sys.modules["tensorflow.keras"] = keras
    for sub in ("layers", "models", "initializers", "activations", "optimizers", "losses"):
        sys.modules[f"tensorflow.keras.{sub}"] = getattr(keras, sub)


def _weights(model, x):  # type: ignore[no-untyped-def]
    """Weight tensors (≥ 2-D, not normalization) in execution order, and the model output."""
    import torch

    keras_like = hasattr(model, "trainable_variables") and hasattr(model, "layers")
    if keras_like and not isinstance(model, torch.nn.Sequential):
        y = model(x, training=True)  # the protocol's train mode: BatchNormalization on batch statistics
        weights = []
        for layer in model.layers:
            for v in layer.trainable_variables:
                if len(v.shape) >= 2:
                    weights.append((layer.name, v.value, "keras"))
        params = [v.value for v in model.trainable_variables]
        return y, weights, params
    order: list = []
    # Recurrent modules too (RNN/LSTM/GRU and their cells): their 2-D weights in torch's order
    # (weight_ih_l0, weight_hh_l0, weight_ih_l1, ...), so a recurrence first on the path is the
    # protocol's first weight layer (its input kernel), as Keras' kernel is.
    recurrent = (torch.nn.RNNBase, torch.nn.RNNCellBase)
    hooks = [m.register_forward_hook(lambda mod, i, o: order.append(mod) if mod not in order else None)
             for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d,
                                                        torch.nn.ConvTranspose2d, torch.nn.Embedding, *recurrent))]
    y = model(x)
    if isinstance(y, tuple):  # (output, state) from a bare recurrent module
        y = y[0]
    for h in hooks:
        h.remove()
    weights = []
    for m in order:
        if isinstance(m, recurrent):
            weights += [(f"{type(m).__name__}.{name}", p, "torch") for name, p in m.named_parameters() if p.dim() >= 2]
        else:
            weights.append((type(m).__name__, m.weight, "torch"))
    return y, weights, [p for p in model.parameters() if p.requires_grad]


def _symmetric(weights) -> bool:  # type: ignore[no-untyped-def]
    for _, w, fw in weights[:-1]:
        if w.grad is None:
            continue
        rows, grads = (w, w.grad) if fw == "torch" else (w.T, w.grad.T)
        rows, grads = rows.reshape(rows.shape[0], -1), grads.reshape(grads.shape[0], -1)
        if rows.shape[0] < 2:
            continue
        tol_w = 1e-6 * float(rows.abs().max()) + 1e-12
        tol_g = 1e-6 * float(grads.abs().max()) + 1e-30
        if float((rows - rows[0]).abs().max()) <= tol_w and float((grads - grads[0]).abs().max()) <= tol_g:
            return True
    return False


def measure(path: Path, input_shape: tuple[int, ...]) -> dict[str, float | bool | str]:
    import torch

    rows = []
    for seed in SEEDS:
        model = _load(path, seed)
        if hasattr(model, "train") and callable(model.train) and isinstance(model, torch.nn.Module):
            model.train()
        gen = torch.Generator().manual_seed(1000 + seed)
        x = torch.randn(BATCH, *input_shape, generator=gen)
        y, weights, params = _weights(model, x)
        t = torch.randn(y.shape, generator=gen)
        loss = torch.nn.functional.mse_loss(y, t)
        loss.backward()
        g = [float(w.grad.norm()) if w.grad is not None else 0.0 for _, w, _ in weights]
        grad2 = sum(float(p.grad.norm()) ** 2 for p in params if p.grad is not None)
        par2 = sum(float(p.detach().norm()) ** 2 for p in params)
        nonfinite = (not math.isfinite(float(loss.detach())) or not all(math.isfinite(v) for v in g)
                     or not math.isfinite(grad2))
        rows.append({
            "ratio": g[0] / g[-1] if g[-1] > 0 else (math.nan if g[0] == 0 else math.inf),
            "loss": float(loss.detach()), "rel": math.sqrt(grad2 / par2) if par2 > 0 else math.nan,
            "first_rel": g[0] / float(weights[0][1].detach().norm()) if float(weights[0][1].detach().norm()) > 0
            else math.nan,
            "nonfinite": nonfinite, "symmetric": _symmetric(weights),
            "per_layer": [math.log10(v) if v > 0 else -math.inf for v in g],
        })
    out: dict = {}
    for key in ("ratio", "loss", "rel", "first_rel"):
        vals = [r[key] for r in rows]
        finite = [v for v in vals if not math.isnan(v)]
        out[key] = statistics.median(finite) if finite else math.nan
    out["nonfinite"] = sum(r["nonfinite"] for r in rows) >= 2
    out["symmetric"] = sum(r["symmetric"] for r in rows) >= 2
    out["per_layer"] = [statistics.median(v) for v in zip(*[r["per_layer"] for r in rows], strict=True)]
    q = Quantities(ratio=out["ratio"], loss=out["loss"], nonfinite=out["nonfinite"], relative_grad=out["rel"],
                   first_relative_grad=out["first_rel"], symmetric=["hidden"] if out["symmetric"] else ())
    out["label"] = judge(q).label
    return out


# ----------------------------------------------------------------------------- static side


def static(source: str) -> dict[str, object]:
    result = lint_source(source, "generated.py", LintConfig())
    codes = sorted({d.code for d in result.diagnostics})
    label = "healthy"
    estimate = None
    for d in result.diagnostics:
        if d.code == "GRD002":
            label = "symmetric"
        elif d.code in GRADIENT_CODES and label != "symmetric":
            e = d.estimate
            label = (e.verdict if e is not None and e.verdict else
                     ("vanishing" if e is not None and e.log10_weight_ratio < 0 else "exploding"))
    from gradlint.analysis.flow import model_segments, segment_flow

    if result.models:
        segs = model_segments(result.models[0])
        flows = [segment_flow(s) for s in segs]
        whole = [f for s, f in zip(segs, flows, strict=True) if f is not None and s.ends_output]
        if whole:
            p = whole[-1]
            estimate = {"ratio": p.log10_ratio, "loss": p.log10_loss, "first_rel": p.log10_first_relative_grad,
                        "rel": p.log10_relative_grad, "per_layer": [lf.log10_grad for lf in p.layers]}
    return {"codes": codes, "label": label, "estimate": estimate}


def input_shape_of(c: Config) -> tuple[int, ...]:
    return (3, 8, 8) if c.conv else (c.n_in,)


def _log(v: float) -> float:
    return math.log10(v) if v > 0 and math.isfinite(v) else math.nan


def score(rows: list[dict]) -> str:
    out = []
    for cls in ("vanishing", "exploding", "symmetric"):
        tp = sum(r["label"] == cls and r["static"] == cls for r in rows)
        fn = sum(r["label"] == cls and r["static"] != cls for r in rows)
        fp = sum(r["static"] == cls and r["label"] != cls and r["label"] != "borderline" for r in rows)
        rec = tp / (tp + fn) if tp + fn else math.nan
        prec = tp / (tp + fp) if tp + fp else math.nan
        out.append(f"{cls:9s} n={tp + fn:3d} recall={rec:.2f} precision={prec:.2f} (tp {tp}, fn {fn}, fp {fp})")
    problem = {"vanishing", "exploding", "symmetric"}
    detected = sum(r["label"] in problem and r["static"] != "healthy" for r in rows)
    total = sum(r["label"] in problem for r in rows)
    false = sum(r["label"] == "healthy" and r["static"] != "healthy" for r in rows)
    healthy = sum(r["label"] == "healthy" for r in rows)
    out.append(f"any problem: detected {detected}/{total}; false alarms on healthy {false}/{healthy}; "
               f"borderline {sum(r['label'] == 'borderline' for r in rows)}")
    for key in ("ratio", "loss", "first_rel"):
        errs = []
        for r in rows:
            e = r.get("estimate") or {}
            est, meas = e.get(key), _log(r["measured"][key])
            if est is not None and math.isfinite(est) and math.isfinite(meas):
                errs.append(abs(est - meas))
        if errs:
            out.append(f"median |log10 error| {key}: {statistics.median(errs):.2f} (n={len(errs)}, "
                       f"90th pct {sorted(errs)[int(0.9 * (len(errs) - 1))]:.2f})")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    keep = Path(args.keep) if args.keep else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    t0 = time.perf_counter()
    out = open(keep / "results.jsonl", "w", encoding="utf-8") if keep else None  # noqa: SIM115 (written as we go)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.n):
            c = sample(rng)
            source = render(c)
            path = (keep or Path(tmp)) / f"gen_{i:04d}.py"
            path.write_text(source, encoding="utf-8")
            try:
                measured = measure(path, input_shape_of(c))
            except Exception as exc:  # a generated model that does not run: skip it, say so
                print(f"skip {c.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
            st = static(source)
            row = {"i": i, "config": asdict(c), "label": measured["label"], "static": st["label"],
                   "codes": st["codes"], "measured": {k: v for k, v in measured.items() if k != "per_layer"},
                   "estimate": {k: v for k, v in (st["estimate"] or {}).items() if k != "per_layer"} or None}
            rows.append(row)
            if out is not None:
                out.write(json.dumps(row, default=str) + "\n")
                out.flush()
            flag = "" if (row["label"] == row["static"] or row["label"] == "borderline") else "  <-- MISMATCH"
            if args.verbose or flag:
                e = row["estimate"] or {}
                print(f"{i:4d} {c.name:70s} measured {row['label']:10s} static {row['static']:10s} "
                      f"ratio {_log(measured['ratio']):6.1f}/{e.get('ratio', math.nan) or math.nan:6.1f} "
                      f"loss {_log(measured['loss']):5.1f}/{e.get('loss') or math.nan:5.1f} "
                      f"first {_log(measured['first_rel']):6.1f}/{e.get('first_rel') or math.nan:6.1f}{flag}")
            if args.time_limit and time.perf_counter() - t0 > args.time_limit:
                print(f"time limit reached after {len(rows)} models", file=sys.stderr)
                break
    if out is not None:
        out.close()
    print(score(rows))
    return 0


def rescore(args: argparse.Namespace) -> int:
    """Score a results.jsonl again (after a change to the static side: re-lint the kept files)."""
    rows = [json.loads(line) for line in open(args.results, encoding="utf-8") if line.strip()]
    if args.relint:
        base = Path(args.results).parent
        for row in rows:
            st = static((base / f"gen_{row['i']:04d}.py").read_text(encoding="utf-8"))
            row["static"], row["codes"] = st["label"], st["codes"]
            row["estimate"] = {k: v for k, v in (st["estimate"] or {}).items() if k != "per_layer"} or None
            if row["label"] != row["static"] and row["label"] != "borderline":
                print(f"{row['i']:4d} measured {row['label']:10s} static {row['static']:10s} {row['codes']}")
    print(score(rows))
    return 0


def compare(args: argparse.Namespace) -> int:
    path = Path(args.file)
    shape = tuple(int(v) for v in args.input.split(","))
    measured = measure(path, shape)
    st = static(path.read_text(encoding="utf-8"))
    print(f"label {measured['label']}, static {st['label']} {st['codes']}")
    est = st["estimate"] or {}
    for key in ("ratio", "loss", "rel", "first_rel"):
        print(f"  {key:9s} measured {_log(measured[key]):7.2f}  estimated {est.get(key)}")
    ml, el = measured["per_layer"], est.get("per_layer") or []
    for i, m in enumerate(ml):
        e = el[i] if i < len(el) else math.nan
        print(f"  layer {i:3d}  log10‖∂W‖ measured {m:7.2f} estimated {e:7.2f}  diff {e - m:+.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="generate, measure and score")
    r.add_argument("-n", type=int, default=100)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--keep", default=None, help="directory for the generated files and results.jsonl")
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--time-limit", type=float, default=0.0, help="stop after this many seconds")
    r.add_argument("-v", "--verbose", action="store_true")
    c = sub.add_parser("compare", help="per-layer measured vs estimated gradients of one file")
    c.add_argument("file")
    c.add_argument("--input", default="32")
    sc = sub.add_parser("score", help="score a results.jsonl (--relint: with the current static code)")
    sc.add_argument("results")
    sc.add_argument("--relint", action="store_true")
    args = ap.parse_args(argv)
    return {"run": run, "compare": compare, "score": rescore}[args.cmd](args)


if __name__ == "__main__":
    raise SystemExit(main())
