"""A generated, measured calibration corpus: model source files and their measured labels.

Three steps, each a subcommand of ``tools/calibrate.py corpus`` (docs/calibration.md):

* ``generate``: write every configuration as a real source file (PyTorch; Keras 3 for a
  subset) into a corpus directory (default ``build/measured-corpus``). Deterministic: the
  configurations come from a fixed seed, and each file's SHA-256 is stored with its label,
  so the labels can be checked against regenerated sources.
* ``label``: import each file, build its model once per seed and run one forward/backward
  pass at init (the measurement protocol of ../shared/reference.md §1b, restated below);
  write the table ``docs/measured_corpus.json``.
* ``compare``: run the static ``gradlint --format json`` (and, with ``--dynamic``, the
  dynamic check) on the same files and print a confusion matrix per class and the median
  |log10 error| of each estimated quantity against the measurement.

The labelling harness is independent of ``gradlint.dynamic`` (its own layer discovery with
forward hooks, its own norms, batch 128 instead of the dynamic check's 32), so comparing the
dynamic verdicts with these labels checks the dynamic check against a second measurement.
Only the thresholds and the order of the criteria are shared (``gradlint.verdict``): they
*are* the protocol.

Protocol: N(0, 1) input of batch 128, train mode (batch statistics), MSE loss to N(0, 1)
targets, one backward pass, seeds 0, 1, 2 (torch.manual_seed / keras.utils.set_random_seed
before the model is built), medians over seeds. Weight layers: ``nn.Linear`` / ``Dense`` in
execution order; first/last = first and last executed. NaN/Inf in a majority of seeds is
non-finite; a hidden layer (not the last executed, ≥ 2 units) whose weight rows and
gradient rows are all identical (allclose, rtol 1e-5, atol 1e-7·max|W|) in a majority of
seeds is symmetric.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "build" / "measured-corpus"
LABELS_PATH = ROOT / "docs" / "measured_corpus.json"
GENERATOR_VERSION = 1
GENERATOR_SEED = 20_250_611
BATCH = 128
SEEDS = (0, 1, 2)
IN_FEATURES = 32
OUT_FEATURES = 10

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "selu", "leaky_relu", "softplus", "elu", "linear")
INITS = ("default", "xavier", "kaiming", "normal0.01", "normal0.05", "normal1.0", "uniform0.05", "zeros",
         "constant", "orthogonal")
WIDTHS = (32, 64, 128, 256, 512)
DEPTHS = (2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 30)
NORMS = ("none", "batch", "layer")
RESIDUALS = ("none", "add", "preln", "zero_branch", "scaled_branch")
HEADS = ("linear", "sigmoid", "softmax", "softmax1")
# How often each level is drawn (relative). Every level appears; the weights keep trivial
# outcomes (constant inits: symmetric; a softmax over one unit: no gradient at all) from
# crowding out the informative ones, and over-sample the large init that explodes.
WEIGHTS: dict[str, dict[str, int]] = {
    "init": {"default": 4, "xavier": 4, "kaiming": 4, "normal0.01": 2, "normal0.05": 2, "normal1.0": 6,
             "uniform0.05": 2, "zeros": 1, "constant": 1, "orthogonal": 2},
    "norm": {"none": 3, "batch": 2, "layer": 2},
    "residual": {"none": 4, "add": 3, "preln": 2, "zero_branch": 2, "scaled_branch": 2},
    "head": {"linear": 5, "sigmoid": 2, "softmax": 2, "softmax1": 1},
}


@dataclass(frozen=True)
class Config:
    """One generated model. ``depth``: hidden layers (plain) or residual blocks."""

    act: str
    init: str
    width: int
    depth: int
    norm: str = "none"
    residual: str = "none"
    head: str = "linear"
    framework: str = "torch"
    bias: float | None = None  # a constant every bias starts at (None: the init's own bias)

    @property
    def name(self) -> str:
        suffix = "" if self.bias is None else f"_bias{self.bias:g}".replace("-", "m")
        return (f"{self.framework}_{self.act}_{self.init}_w{self.width}_d{self.depth}_{self.norm}_"
                f"{self.residual}_{self.head}{suffix}").replace(".", "p")

    @property
    def path(self) -> str:
        return f"{self.framework}/{self.name}.py"

    def describe(self) -> str:
        kind = {"none": f"{self.depth} hidden layers", "add": f"{self.depth} residual blocks x = x + act(fc(x))",
                "preln": f"{self.depth} pre-norm residual blocks", "zero_branch":
                f"{self.depth} residual blocks, last branch layer zero-initialised",
                "scaled_branch": f"{self.depth} residual blocks, branch scaled by 1/sqrt({self.depth})"}[self.residual]
        bias = "" if self.bias is None else f", biases constant {self.bias:g}"
        return (f"{self.act} MLP, width {self.width}, {kind}, init {self.init}{bias}, norm {self.norm}, "
                f"head {self.head} ({self.framework})")


# --------------------------------------------------------------------------- sampling


def _sample(count: int, rng: random.Random, framework: str) -> list[Config]:
    """``count`` configurations; every level of every factor appears about equally often
    (each factor cycles through a shuffled repetition of its levels)."""

    def column(levels: tuple[Any, ...], factor: str = "") -> list[Any]:
        weights = WEIGHTS.get(factor, {})
        cycle = [lv for lv in levels for _ in range(weights.get(lv, 1))]
        reps = [lv for _ in range(count // len(cycle) + 1) for lv in cycle]
        rng.shuffle(reps)
        return reps[:count]

    acts, inits, widths, depths = column(ACTIVATIONS), column(INITS, "init"), column(WIDTHS), column(DEPTHS)
    norms, residuals, heads = column(NORMS, "norm"), column(RESIDUALS, "residual"), column(HEADS, "head")
    out = []
    for i in range(count):
        norm, residual = norms[i], residuals[i]
        if residual == "preln" and norm == "none":
            norm = "layer"  # a pre-norm block has a norm by definition
        out.append(Config(acts[i], inits[i], widths[i], depths[i], norm, residual, heads[i], framework))
    return out


#: Cases named in issue 11 / reference §1b, always in the corpus.
NAMED = (
    Config("sigmoid", "default", 128, 14, "layer"),  # LayerNorm does not rescue a sigmoid stack
    Config("sigmoid", "default", 128, 14, "batch"),  # BatchNorm does
    Config("relu", "normal1.0", 256, 8),  # forward blow-up, ratio ~1e-2
    Config("relu", "kaiming", 128, 16, residual="add"),  # residual variance ~2^L
    Config("gelu", "default", 128, 24, "layer", "preln"),  # pre-LN: healthy
    Config("relu", "uniform0.05", 64, 20),  # uniform vanishing (Keras' old default)
    Config("relu", "uniform0.05", 64, 20, framework="keras"),
    Config("tanh", "normal1.0", 128, 10),  # chaos, most units saturated
    Config("relu", "default", 64, 4, head="softmax1"),  # softmax over one unit: all gradients 0
    Config("relu", "default", 64, 4, head="softmax1", framework="keras"),
    Config("relu", "default", 256, 20),  # the default is not He
    Config("relu", "kaiming", 256, 20),
    Config("sigmoid", "default", 256, 10),
    Config("tanh", "xavier", 256, 10),
    Config("relu", "zeros", 64, 4),  # symmetric, not vanishing
    Config("tanh", "constant", 64, 4),
    Config("relu", "kaiming", 128, 12, residual="zero_branch"),
    Config("relu", "kaiming", 128, 12, residual="scaled_branch"),
    # Constant inits across norms, residual styles and heads: symmetric whatever surrounds them
    # (a softmax over one unit would make them dead outputs instead: no gradient at all).
    Config("relu", "zeros", 128, 8, "batch"),
    Config("tanh", "constant", 256, 12, "layer"),
    Config("gelu", "constant", 128, 6, "layer", "preln"),
    Config("sigmoid", "zeros", 64, 6, residual="add", head="sigmoid"),
    Config("elu", "constant", 64, 10, residual="scaled_branch", head="softmax"),
    Config("relu", "zeros", 64, 6, framework="keras"),
    Config("tanh", "constant", 128, 4, "batch", framework="keras"),
)


def _sample_unnormalized(count: int, rng: random.Random) -> list[Config]:
    """A stratum where the init scale is not normalized away (no norm layer, linear head, large or
    variance-preserving inits, plain or plain-add residual): where forward blow-up and exploding
    gradients live, which the uniform draw visits rarely (norms reset the scale)."""
    out = []
    for _ in range(count):
        init = rng.choice(("normal1.0", "normal1.0", "kaiming", "orthogonal", "xavier", "normal0.05"))
        residual = rng.choice(("none", "add", "add", "scaled_branch"))
        out.append(Config(rng.choice(ACTIVATIONS), init, rng.choice(WIDTHS), rng.choice(DEPTHS), "none", residual))
    return out


#: Constant biases (issue 11): a negative one in front of ReLU kills units, a small positive one is
#: common and fine; a norm after the layer removes it; sigmoid/tanh only shift.
BIAS_VALUES = (-10.0, -3.0, -1.0, -0.1, 0.0, 0.1, 1.0)


def bias_configs() -> list[Config]:
    out = []
    widths = {4: 64, 8: 128, 16: 256}
    for value in BIAS_VALUES:
        for init in ("kaiming", "default", "normal0.05"):
            for depth in (4, 8, 16):
                out.append(Config("relu", init, widths[depth], depth, bias=value))
    for value in (-10.0, -3.0, -1.0, 1.0):
        out.append(Config("relu", "kaiming", 128, 8, "batch", bias=value))
    for value in (-3.0, -1.0):
        out.append(Config("relu", "default", 128, 8, "layer", bias=value))
        out.append(Config("relu", "kaiming", 128, 8, residual="add", bias=value))
        for act in ("sigmoid", "tanh"):
            out.append(Config(act, "default", 64, 4, bias=value))
            out.append(Config(act, "xavier", 128, 8, bias=value))
        for act in ("gelu", "leaky_relu", "elu", "softplus"):
            out.append(Config(act, "kaiming", 128, 8, bias=value))
    for value in (-10.0, -3.0, -1.0, -0.1, 0.1, 1.0):
        out.append(Config("relu", "default", 64, 8, framework="keras", bias=value))
    for value in (-5.0, -1.0, 0.1):
        out.append(Config("relu", "kaiming", 128, 16, framework="keras", bias=value))
    out.append(Config("relu", "kaiming", 128, 8, "batch", framework="keras", bias=-3.0))
    out.append(Config("sigmoid", "default", 64, 4, framework="keras", bias=-1.0))
    return out


def corpus_configs(torch_count: int = 380, keras_count: int = 60, unnormalized: int = 60) -> list[Config]:
    rng = random.Random(GENERATOR_SEED)
    found: dict[str, Config] = {}
    for cfg in (*NAMED, *_sample(torch_count, rng, "torch"), *_sample(keras_count, rng, "keras"),
                *_sample_unnormalized(unnormalized, random.Random(GENERATOR_SEED + 1)), *bias_configs()):
        found.setdefault(cfg.name, cfg)
    return list(found.values())


# --------------------------------------------------------------------------- torch source

_TORCH_ACT = {"relu": "nn.ReLU()", "tanh": "nn.Tanh()", "sigmoid": "nn.Sigmoid()", "gelu": "nn.GELU()",
              "selu": "nn.SELU()", "leaky_relu": "nn.LeakyReLU(0.01)", "softplus": "nn.Softplus()",
              "elu": "nn.ELU()", "linear": "nn.Identity()"}
_TORCH_INIT = {
    "xavier": ["nn.init.xavier_uniform_(m.weight)", "nn.init.zeros_(m.bias)"],
    "kaiming": ['nn.init.kaiming_normal_(m.weight, nonlinearity="relu")', "nn.init.zeros_(m.bias)"],
    "normal0.01": ["nn.init.normal_(m.weight, mean=0.0, std=0.01)", "nn.init.zeros_(m.bias)"],
    "normal0.05": ["nn.init.normal_(m.weight, mean=0.0, std=0.05)", "nn.init.zeros_(m.bias)"],
    "normal1.0": ["nn.init.normal_(m.weight, mean=0.0, std=1.0)", "nn.init.zeros_(m.bias)"],
    "uniform0.05": ["nn.init.uniform_(m.weight, -0.05, 0.05)", "nn.init.zeros_(m.bias)"],
    "zeros": ["nn.init.zeros_(m.weight)", "nn.init.zeros_(m.bias)"],
    "constant": ["nn.init.constant_(m.weight, 0.05)", "nn.init.zeros_(m.bias)"],
    "orthogonal": ["nn.init.orthogonal_(m.weight)", "nn.init.zeros_(m.bias)"],
}
_TORCH_HEAD = {"linear": ("OUT", None), "sigmoid": ("1", "nn.Sigmoid()"), "softmax": ("OUT", "nn.Softmax(dim=-1)"),
               "softmax1": ("1", "nn.Softmax(dim=-1)")}
_TORCH_NORM = {"batch": "nn.BatchNorm1d(width)", "layer": "nn.LayerNorm(width)"}


def torch_source(cfg: Config) -> str:
    out_units, head_act = _TORCH_HEAD[cfg.head]
    out_units = str(OUT_FEATURES) if out_units == "OUT" else out_units
    norm = _TORCH_NORM.get(cfg.norm)
    act = _TORCH_ACT[cfg.act]
    lines = [f"# generated by tools/calibrate.py corpus generate: {cfg.describe()}",
             "import torch.nn as nn", ""]
    if cfg.residual != "none":
        lines += _torch_block(cfg, act, norm)
    lines += ["", "class Net(nn.Module):",
              f"    def __init__(self, in_features={IN_FEATURES}, width={cfg.width}, depth={cfg.depth}):",
              "        super().__init__()"]
    if cfg.residual == "none":
        lines.append("        layers = []")
        lines.append("        size = in_features")
        lines.append("        for _ in range(depth):")
        lines.append("            layers.append(nn.Linear(size, width))")
        if norm:
            lines.append(f"            layers.append({norm})")
        if cfg.act != "linear":
            lines.append(f"            layers.append({act})")
        lines.append("            size = width")
        lines.append("        self.body = nn.Sequential(*layers)")
    else:
        lines.append("        self.stem = nn.Linear(in_features, width)")
        lines.append("        self.blocks = nn.ModuleList([Block(width, depth) for _ in range(depth)])")
    lines.append(f"        self.head = nn.Linear(width, {out_units})")
    if head_act:
        lines.append(f"        self.out = {head_act}")
    init = _torch_init(cfg)
    if init:
        lines.append("        self.reset_parameters()")
        lines += ["", "    def reset_parameters(self):", "        for m in self.modules():",
                  "            if isinstance(m, nn.Linear):"]
        lines += [f"                {stmt}" for stmt in init]
        if cfg.residual == "zero_branch":
            lines += ["        for block in self.blocks:", "            nn.init.zeros_(block.fc2.weight)",
                      "            nn.init.zeros_(block.fc2.bias)"]
    lines += ["", "    def forward(self, x):"]
    if cfg.residual == "none":
        lines.append("        x = self.body(x)")
    else:
        lines += ["        x = self.stem(x)", "        for block in self.blocks:", "            x = block(x)"]
    lines.append("        return self.out(self.head(x))" if head_act else "        return self.head(x)")
    lines += ["", "", "def build_model():", "    return Net()", ""]
    return "\n".join(lines)


def _torch_init(cfg: Config) -> list[str]:
    """The init statements of every Linear; a constant bias is written the two ways people write it
    (``nn.init.constant_`` next to an explicit weight init, ``bias.data.fill_`` on its own)."""
    stmts = list(_TORCH_INIT.get(cfg.init, []))
    if cfg.bias is None:
        return stmts
    stmts = [s for s in stmts if "m.bias" not in s]
    stmts.append(f"nn.init.constant_(m.bias, {cfg.bias!r})" if stmts else f"m.bias.data.fill_({cfg.bias!r})")
    return stmts


def _torch_block(cfg: Config, act: str, norm: str | None) -> list[str]:
    lines = ["", "class Block(nn.Module):", "    def __init__(self, width, depth):", "        super().__init__()"]
    if cfg.residual == "add":
        lines.append("        self.fc = nn.Linear(width, width)")
        if norm:
            lines.append(f"        self.norm = {norm}")
        lines.append(f"        self.act = {act}")
        lines += ["", "    def forward(self, x):",
                  f"        return x + self.act({'self.norm(self.fc(x))' if norm else 'self.fc(x)'})"]
        return lines
    if cfg.residual == "preln":
        lines.append(f"        self.norm = {norm or _TORCH_NORM['layer']}")
    elif norm:
        lines.append(f"        self.norm = {norm}")
    lines += ["        self.fc1 = nn.Linear(width, width)", f"        self.act = {act}",
              "        self.fc2 = nn.Linear(width, width)"]
    if cfg.residual == "scaled_branch":
        lines.append("        self.scale = depth ** -0.5")
    if cfg.residual == "zero_branch" and cfg.init not in _TORCH_INIT:
        lines += ["        nn.init.zeros_(self.fc2.weight)", "        nn.init.zeros_(self.fc2.bias)"]
    lines += ["", "    def forward(self, x):"]
    if cfg.residual == "preln":
        branch = "self.fc2(self.act(self.fc1(self.norm(x))))"
    elif norm:
        branch = "self.fc2(self.act(self.norm(self.fc1(x))))"
    else:
        branch = "self.fc2(self.act(self.fc1(x)))"
    if cfg.residual == "scaled_branch":
        branch = f"self.scale * {branch}"
    lines.append(f"        return x + {branch}")
    return lines


# --------------------------------------------------------------------------- keras source

_KERAS_INIT = {"default": None, "xavier": '"glorot_uniform"', "kaiming": '"he_normal"',
               "normal0.01": "keras.initializers.RandomNormal(stddev=0.01)",
               "normal0.05": "keras.initializers.RandomNormal(stddev=0.05)",
               "normal1.0": "keras.initializers.RandomNormal(stddev=1.0)",
               "uniform0.05": "keras.initializers.RandomUniform(-0.05, 0.05)", "zeros": '"zeros"',
               "constant": "keras.initializers.Constant(0.05)", "orthogonal": '"orthogonal"'}
_KERAS_NORM = {"batch": "layers.BatchNormalization()", "layer": "layers.LayerNormalization()"}
_KERAS_HEAD = {"linear": (OUT_FEATURES, None), "sigmoid": (1, "sigmoid"), "softmax": (OUT_FEATURES, "softmax"),
               "softmax1": (1, "softmax")}


def keras_source(cfg: Config) -> str:
    init = _KERAS_INIT[cfg.init]
    kernel = f", kernel_initializer={init}" if init else ""
    head_kernel = kernel
    if cfg.bias is not None:  # the hidden layers' biases (the head keeps its zeros)
        kernel += f", bias_initializer=keras.initializers.Constant({cfg.bias!r})"
    norm = _KERAS_NORM.get(cfg.norm)
    act = f'"{cfg.act}"'
    units, head_act = _KERAS_HEAD[cfg.head]
    head_kw = f', activation="{head_act}"' if head_act else ""
    head = f"layers.Dense({units}{head_kw}{head_kernel})"
    lines = [f"# generated by tools/calibrate.py corpus generate: {cfg.describe()}",
             "import keras", "from keras import layers", "", "",
             "def build_model():"]
    if cfg.residual == "none" and not norm:
        lines.append(f"    model = keras.Sequential([keras.Input(shape=({IN_FEATURES},))])")
        lines.append(f"    for _ in range({cfg.depth}):")
        lines.append(f"        model.add(layers.Dense({cfg.width}, activation={act}{kernel}))")
        lines.append(f"    model.add({head})")
        lines.append("    return model")
        return "\n".join(lines) + "\n"
    lines.append(f"    inputs = keras.Input(shape=({IN_FEATURES},))")
    if cfg.residual == "none":
        lines += ["    x = inputs", f"    for _ in range({cfg.depth}):",
                  f"        x = layers.Dense({cfg.width}{kernel})(x)", f"        x = {norm}(x)",
                  f"        x = layers.Activation({act})(x)"]
    else:
        lines.append(f"    x = layers.Dense({cfg.width}{kernel})(inputs)")
        lines.append(f"    for _ in range({cfg.depth}):")
        if cfg.residual == "add":
            lines.append(f"        h = layers.Dense({cfg.width}{kernel})(x)")
            if norm:
                lines.append(f"        h = {norm}(h)")
            lines.append(f"        x = layers.Add()([x, layers.Activation({act})(h)])")
        else:
            last_init = ', kernel_initializer="zeros"' if cfg.residual == "zero_branch" else kernel
            src = "x"
            if cfg.residual == "preln":
                lines.append(f"        h = {norm or _KERAS_NORM['layer']}(x)")
                src = "h"
            lines.append(f"        h = layers.Dense({cfg.width}{kernel})({src})")
            if norm and cfg.residual != "preln":
                lines.append(f"        h = {norm}(h)")
            lines.append(f"        h = layers.Activation({act})(h)")
            lines.append(f"        h = layers.Dense({cfg.width}{last_init})(h)")
            if cfg.residual == "scaled_branch":
                lines.append(f"        h = layers.Rescaling({cfg.depth ** -0.5!r})(h)")
            lines.append("        x = layers.Add()([x, h])")
    lines.append(f"    outputs = {head}(x)")
    lines.append("    return keras.Model(inputs, outputs)")
    return "\n".join(lines) + "\n"


def source(cfg: Config) -> str:
    return keras_source(cfg) if cfg.framework == "keras" else torch_source(cfg)


def generate(directory: Path = DEFAULT_DIR, configs: Iterable[Config] | None = None) -> list[tuple[Config, Path, str]]:
    """Write the corpus; returns (config, path, sha256) per file."""
    written = []
    for cfg in configs if configs is not None else corpus_configs():
        text = source(cfg)
        path = directory / cfg.path
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append((cfg, path, hashlib.sha256(text.encode()).hexdigest()))
    return written


# --------------------------------------------------------------------------- measurement


def _load(path: Path) -> Any:
    return _load_with_shape(path)[0]


def _load_with_shape(path: Path) -> tuple[Any, tuple[int, ...]]:
    """``build_model`` and the per-example input shape (a generated file's ``INPUT_SHAPE``, else flat)."""
    namespace: dict[str, Any] = {"__name__": f"corpus_{path.stem}", "__file__": str(path)}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)  # noqa: S102 -- our own generated file
    return namespace["build_model"], tuple(namespace.get("INPUT_SHAPE", (IN_FEATURES,)))


def _rows_identical(t: Any) -> bool:
    import torch

    if t.shape[0] < 2 or not bool(torch.isfinite(t).all()):
        return False
    scale = float(t.abs().max())
    return bool(torch.allclose(t, t[:1].expand_as(t), rtol=1e-5, atol=1e-7 * scale))


def _output_rows(w: Any, framework: str) -> Any:
    """A weight as (output units, everything else): torch Linear/Conv (out, in, *k); Keras (*k, in, out)."""
    t = w.detach() if hasattr(w, "detach") else w
    if framework == "keras":
        return t.reshape(-1, t.shape[-1]).t()
    return t.reshape(t.shape[0], -1)


def _measure_seed(build: Any, framework: str, seed: int, shape: tuple[int, ...] = (IN_FEATURES,)) -> dict[str, Any]:
    """One forward/backward at init. Weight layers are Linear/Conv1d/Conv2d (Keras: Dense/Conv1D/Conv2D),
    ordered by first call."""
    import torch

    torch.manual_seed(seed)
    if framework == "keras":
        import keras

        keras.utils.set_random_seed(seed)
    model = build()
    g = torch.Generator().manual_seed(1000 + seed)
    x = torch.randn(BATCH, *shape, generator=g)
    order: list[Any] = []  # (weight tensor, name) in execution order
    outputs: dict[int, Any] = {}
    pre_q: list[float] = []
    if framework == "keras":
        import keras

        kinds = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D)
        dense = [la for la in model._flatten_layers(include_self=False, recursive=True) if isinstance(la, kinds)]
        originals = {}
        activations = {}
        pre: dict[int, Any] = {}  # the layer's pre-activation (Keras fuses `activation=` into the layer)
        for la in dense:
            originals[id(la)] = la.call
            activations[id(la)] = la.activation

            def act_wrapped(t: Any, _la: Any = la) -> Any:
                pre.setdefault(id(_la), t)
                return activations[id(_la)](t)

            def wrapped(inputs: Any, *args: Any, _la: Any = la, **kwargs: Any) -> Any:
                out = originals[id(_la)](inputs, *args, **kwargs)
                src = pre.get(id(_la), out)  # the weight layer's output before its fused activation
                if id(_la) not in outputs:
                    order.append((_la.kernel.value, _la.name, _la))
                    pre_q.append(float(src.detach().double().pow(2).mean()))
                    if src.requires_grad:
                        src.retain_grad()
                    outputs[id(_la)] = src
                return out

            la.call = wrapped
            la.activation = act_wrapped
        y = model(x, training=True)
        for la in dense:
            la.call = originals[id(la)]
            la.activation = activations[id(la)]
        params = [v.value for v in model.trainable_weights]
    else:
        model.train()
        handles = []
        for name, m in model.named_modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)):
                def hook(mod: Any, inp: Any, out: Any, _name: str = name) -> None:
                    if id(mod) not in outputs:
                        order.append((mod.weight, _name, mod))
                        pre_q.append(float(out.detach().double().pow(2).mean()))
                        out.retain_grad()
                        outputs[id(mod)] = out
                handles.append(m.register_forward_hook(hook))
        y = model(x)
        for h in handles:
            h.remove()
        params = [p for p in model.parameters() if p.requires_grad]
    t = torch.randn(y.shape, generator=g)
    loss = torch.nn.functional.mse_loss(y.float(), t)
    loss.backward()
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    gnorm = math.sqrt(sum(float(gr.double().pow(2).sum()) for gr in grads))
    wnorm = math.sqrt(sum(float(p.detach().double().pow(2).sum()) for p in params))
    (w1, n1, m1), (wl, nl, ml) = order[0], order[-1]

    def grad_of(w: Any) -> Any:
        return w.grad if w.grad is not None else torch.zeros_like(w)

    g1, gl = float(grad_of(w1).double().norm()), float(grad_of(wl).double().norm())
    h1, hl = outputs[id(m1)], outputs[id(ml)]
    a1 = float(h1.grad.double().norm()) if h1.grad is not None else 0.0
    al = float(hl.grad.double().norm()) if hl.grad is not None else 0.0
    symmetric = []
    for w, name, _ in order[:-1]:
        rows = _output_rows(w, framework)  # rows = output units
        grad = _output_rows(grad_of(w), framework)
        if rows.shape[0] >= 2 and _rows_identical(rows) and _rows_identical(grad):
            symmetric.append(name)
    finite = math.isfinite(float(loss.detach())) and math.isfinite(gnorm) and math.isfinite(g1) and math.isfinite(gl)
    return {
        "loss": float(loss.detach()),
        "ratio": _div(g1, gl),
        "activation_ratio": _div(a1, al),
        "last_output_grad": al,
        "relative_grad": gnorm / wnorm if wnorm > 0 else None,
        "first_relative_grad": _div(g1, float(w1.detach().double().norm())),
        "max_log10_q": max((math.log10(q) for q in pre_q if q > 0 and math.isfinite(q)), default=None),
        "output_log10_q": math.log10(pre_q[-1]) if pre_q and pre_q[-1] > 0 and math.isfinite(pre_q[-1]) else None,
        "nonfinite": not finite,
        "symmetric": symmetric,
        "first": n1,
        "last": nl,
        "weight_layers": len(order),
    }


def _clear_keras() -> None:
    import keras

    keras.backend.clear_session()


def _div(a: float, b: float) -> float:
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.nan
    if b == 0:
        return math.nan if a == 0 else math.inf
    return a / b


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None and not math.isnan(v)]
    if not present:
        return math.nan if any(v is not None for v in values) else None
    return statistics.median(present)


def measure(path: Path, framework: str) -> dict[str, Any]:
    """Medians over SEEDS, and the protocol's label (gradlint.verdict.judge)."""
    from gradlint.verdict import Quantities, judge

    build, shape = _load_with_shape(path)
    seeds = []
    for seed in SEEDS:
        if framework == "keras":
            _clear_keras()  # fresh layer names per build, and no graph state carried between models
        seeds.append(_measure_seed(build, framework, seed, shape))
    if framework == "keras":
        _clear_keras()
    majority = len(seeds) // 2 + 1
    nonfinite = sum(s["nonfinite"] for s in seeds) >= majority
    names = [n for n in seeds[0]["symmetric"] if sum(n in s["symmetric"] for s in seeds) >= majority]
    medians = {key: _median([s[key] for s in seeds]) for key in
               ("loss", "ratio", "activation_ratio", "relative_grad", "first_relative_grad", "max_log10_q",
                "output_log10_q", "last_output_grad")}
    verdict = judge(Quantities(ratio=medians["ratio"], loss=medians["loss"], nonfinite=nonfinite,
                               relative_grad=medians["relative_grad"],
                               first_relative_grad=medians["first_relative_grad"],
                               output_grad=medians["last_output_grad"], symmetric=names,
                               first=seeds[0]["first"], last=seeds[0]["last"]))
    return {
        "label": verdict.label,
        "reason": verdict.reason,
        "measured": {**{k: _json_number(v) for k, v in medians.items()},
                     "nonfinite_seeds": sum(s["nonfinite"] for s in seeds),
                     "symmetric_layers": names,
                     "weight_layers": seeds[0]["weight_layers"],
                     "first": seeds[0]["first"], "last": seeds[0]["last"],
                     "per_seed_ratio": [_json_number(s["ratio"]) for s in seeds]},
    }


def reusable(entry: dict[str, Any]) -> bool:
    """A stored measurement the current protocol can judge: not an error, and (when no parameter got
    a gradient) with the gradient at the last weight layer's output, which tells a dead output from
    a zero init (Keras layers fuse their activation, so older tables cannot derive it)."""
    measured = entry.get("measured") or {}
    if entry.get("label") == "error":
        return False
    return number(measured.get("relative_grad")) != 0.0 or "last_output_grad" in measured


def rejudge(measured: dict[str, Any]) -> tuple[str, str]:
    """(label, reason) of a stored measurement under the current protocol (gradlint.verdict.judge):
    a change of the protocol's order relabels the table without measuring again."""
    from gradlint.verdict import Quantities, judge

    seeds = len(SEEDS)
    output_grad = number(measured.get("last_output_grad"))
    verdict = judge(Quantities(
        ratio=number(measured.get("ratio")), loss=number(measured.get("loss")),
        nonfinite=int(measured.get("nonfinite_seeds") or 0) >= seeds // 2 + 1,
        relative_grad=number(measured.get("relative_grad")),
        first_relative_grad=number(measured.get("first_relative_grad")),
        output_grad=output_grad,
        symmetric=list(measured.get("symmetric_layers") or ()),
        first=measured.get("first"), last=measured.get("last")))
    return verdict.label, verdict.reason


def _json_number(value: float | None) -> float | str | None:
    """Finite floats rounded to 4 significant digits; non-finite as strings ('inf', 'nan')."""
    if value is None:
        return None
    if not math.isfinite(value):
        return str(value)
    return float(f"{value:.4g}")


def number(value: Any) -> float | None:
    """Inverse of _json_number."""
    if value is None:
        return None
    return float(value)


def _label_one(item: tuple[str, str, str]) -> dict[str, Any]:
    path, framework, threads = item
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import torch

    torch.set_num_threads(int(threads))
    torch.set_flush_denormal(True)  # denormal gradients (1e-38) slow CPU math ~5x; labels unchanged
    try:
        return measure(Path(path), framework)
    except Exception as exc:  # noqa: BLE001 -- a generator bug must show, not stop the run
        return {"label": "error", "reason": f"{type(exc).__name__}: {exc}", "measured": {}}


def label(directory: Path = DEFAULT_DIR, out: Path = LABELS_PATH, jobs: int = 2,
          configs: list[Config] | None = None, reuse: bool = True) -> dict[str, Any]:
    """Generate, measure every new or changed file, write the labels table; returns it."""
    from concurrent.futures import ProcessPoolExecutor

    from gradlint.verdict import Thresholds

    files = generate(directory, configs)
    os.environ["KERAS_BACKEND"] = "torch"
    # Labels of unchanged files (same source hash) are kept; only new or changed files are measured.
    previous: dict[tuple[str, str], dict[str, Any]] = {}
    if reuse and out.exists():
        previous = {(m["file"], m["sha256"]): m for m in load_labels(out)["models"] if reusable(m)}
    started = time.perf_counter()
    todo = [(str(path), cfg.framework, "1") for cfg, path, sha in files if (cfg.path, sha) not in previous]
    if jobs > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            fresh = iter(list(pool.map(_label_one, todo, chunksize=4)))
    else:
        fresh = iter([_label_one(item) for item in todo])
    results = []
    for cfg, _, sha in files:
        old = previous.get((cfg.path, sha))
        if old and old["label"] != "error":
            lab, why = rejudge(old["measured"])
            # the reason names the first/last layers only when the measurement recorded them
            results.append({"label": lab, "reason": why if lab != old["label"] else old["reason"],
                            "measured": old["measured"]})
        else:
            results.append(next(fresh))
    seconds = time.perf_counter() - started
    models = [{"file": cfg.path, "framework": cfg.framework, "config": _config_json(cfg), "sha256": sha, **result}
              for (cfg, _, sha), result in zip(files, results, strict=True)]
    table = {
        "description": "Measured labels of the generated corpus (tools/measured_corpus.py; docs/calibration.md).",
        "protocol": {"batch": BATCH, "seeds": list(SEEDS), "input": f"N(0, 1), {IN_FEATURES} features",
                     "loss": "MSE to N(0, 1) targets", "mode": "train", "statistic": "median over seeds",
                     "thresholds": Thresholds().to_json()},
        "generator": {"version": GENERATOR_VERSION, "seed": GENERATOR_SEED, "models": len(models)},
        "seconds": round(seconds, 1),  # of this run (reused labels cost nothing)
        "measured_now": len(todo),
        "counts": _counts(m["label"] for m in models),
        "models": models,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return table


def _config_json(cfg: Config) -> dict[str, Any]:
    """The config as stored: fields at their "not set" default (a bias of None) are left out."""
    return {k: v for k, v in asdict(cfg).items() if not (k == "bias" and v is None)}


def _counts(labels: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for lab in labels:
        counts[lab] = counts.get(lab, 0) + 1
    return dict(sorted(counts.items()))


def load_labels(path: Path = LABELS_PATH) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def config_of(entry: dict[str, Any]) -> Config:
    names = {f.name for f in fields(Config)}
    return Config(**{k: v for k, v in entry["config"].items() if k in names})


# --------------------------------------------------------------------------- comparison

SCORED = ("healthy", "vanishing", "exploding", "symmetric")
# What a static code says when its estimate carries no ``verdict``. Other codes (the estimator is
# growing) are read from their estimate's sign and, failing that, from their message.
_CODE_CLASS = {"GRD001": "vanishing", "GRD002": "symmetric", "GRD003": "vanishing", "GRD006": "exploding",
               "GRD010": "vanishing", "GRD011": "vanishing"}
_NOT_GRADIENT = {"GRD007", "GRD009", "GRD100"}
# (measured quantity, how to get log10 of it from the label table, estimate JSON keys that may
# hold the static twin, in order of preference). Read defensively: the estimate's fields grow.
QUANTITIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("first/last weight-gradient ratio", "ratio", ("log10_gain", "log10_weight_ratio")),
    ("first/last activation-gradient ratio", "activation_ratio", ("log10_backward_gain", "log10_backward_ratio")),
    ("loss at init (MSE to N(0,1))", "loss", ("log10_loss",)),
    ("largest pre-activation second moment", "max_log10_q", ("max_log10_q", "log10_max_q")),
    ("output pre-activation second moment", "output_log10_q",
     ("log10_forward_growth", "log10_output_q", "output_log10_q", "log10_forward_gain")),
    ("‖∂L/∂θ‖/‖θ‖", "relative_grad", ("log10_relative_grad", "log10_relative_gradient")),
    ("first layer ‖∂W‖/‖W‖", "first_relative_grad", ("log10_first_relative_grad", "log10_first_layer_relative_grad",
                                                     "log10_early_relative_grad")),
)
_ALREADY_LOG10 = {"max_log10_q", "output_log10_q"}


def _message_class(message: str) -> str | None:
    text = message.lower()
    if "symmetr" in text or "identical" in text:
        return "symmetric"
    if any(w in text for w in ("explod", "blow", "overflow", "grow")):
        return "exploding"
    if any(w in text for w in ("vanish", "frozen", "dead", "attenuat", "saturat", "zero gradient", "collapse")):
        return "vanishing"
    return None


def diagnostic_class(diag: dict[str, Any]) -> str | None:
    """The class a static diagnostic predicts (None: not a gradient finding)."""
    code = str(diag.get("code", ""))
    if code in _NOT_GRADIENT or code.startswith("GRD9") or diag.get("severity") == "info":
        return None
    estimate = diag.get("estimate") or {}
    predicted = estimate.get("verdict") if isinstance(estimate, dict) else None
    if predicted in ("vanishing", "exploding", "symmetric"):  # the estimate's own protocol verdict
        return str(predicted)
    if code in _CODE_CLASS:
        return _CODE_CLASS[code]
    gain = estimate.get("log10_gain") if isinstance(estimate, dict) else None
    by_message = _message_class(str(diag.get("message", "")))
    if by_message in ("symmetric", "exploding"):
        return by_message
    if isinstance(gain, (int, float)):
        return "exploding" if gain > 0 else "vanishing"
    return by_message


def static_class(diags: list[dict[str, Any]]) -> str:
    # A dead output (no gradient at all) outranks identical units, as in the protocol's order
    # (gradlint.verdict.judge): with a softmax over one unit nothing learns, symmetric or not.
    if any(isinstance(d.get("estimate"), dict) and d["estimate"].get("dead_output") for d in diags
           if diagnostic_class(d) == "vanishing"):
        return "vanishing"
    classes = {c for c in (diagnostic_class(d) for d in diags) if c}
    for cls in ("symmetric", "exploding", "vanishing"):
        if cls in classes:
            return cls
    return "healthy"


def run_gradlint(directory: Path, *extra: str) -> dict[str, Any]:
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "gradlint", "check", "--isolated", "--no-cache", "--format", "json", "--exit-zero",
         *extra, str(directory)],
        capture_output=True, text=True, cwd=ROOT, check=False,
        env={**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": str(ROOT)},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"gradlint exited {proc.returncode}: {proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout))


def _relative(path: str, directory: Path) -> str:
    try:
        return Path(path).resolve().relative_to(directory.resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def confusion(pairs: list[tuple[str, str]], columns: tuple[str, ...] = SCORED) -> str:
    """Markdown confusion matrix (rows: measured label, columns: prediction), per-class P/R."""
    rows = [lab for lab in (*SCORED, "borderline", "error") if any(m == lab for m, _ in pairs)]
    head = "| measured \\ predicted | " + " | ".join(columns) + " | recall |"
    lines = [head, "|---" * (len(columns) + 2) + "|"]
    for lab in rows:
        counts = [sum(1 for m, p in pairs if m == lab and p == col) for col in columns]
        total = sum(1 for m, _ in pairs if m == lab)
        recall = f"{counts[columns.index(lab)] / total:.2f}" if lab in columns and total else "-"
        lines.append(f"| {lab} ({total}) | " + " | ".join(map(str, counts)) + f" | {recall} |")
    precisions = []
    for col in columns:
        predicted = [m for m, p in pairs if p == col and m in SCORED]
        precisions.append(f"{sum(m == col for m in predicted) / len(predicted):.2f}" if predicted else "-")
    lines.append("| precision | " + " | ".join(precisions) + " | |")
    scored = [(m, p) for m, p in pairs if m in SCORED]
    agree = sum(m == p for m, p in scored)
    problem = ("vanishing", "exploding", "symmetric")
    problems = [(m, p) for m, p in scored if m in problem]
    caught = sum(p in problem for _, p in problems)
    flagged = [(m, p) for m, p in scored if p in problem]  # predicted problems (borderline is none)
    right = sum(m in problem for m, _ in flagged)
    exact = sum(m == p for m, p in flagged)
    lines.append("")
    lines.append(f"agreement on scored models: {agree}/{len(scored)} = {agree / max(len(scored), 1):.3f}; "
                 f"problem recall (any problem class): {caught}/{len(problems)} = "
                 f"{caught / max(len(problems), 1):.3f}; problem precision: {right}/{len(flagged)} = "
                 f"{right / max(len(flagged), 1):.3f} (same class: {exact}/{len(flagged)})")
    return "\n".join(lines)


def _log10(value: Any) -> float | None:
    v = number(value)
    if v is None or not math.isfinite(v) or v <= 0:
        return None
    return math.log10(v)


def estimate_errors(table: dict[str, Any], by_file: dict[str, list[dict[str, Any]]]) -> tuple[str, set[str]]:
    """Median |log10 error| per quantity, over the flagged models whose estimate has the key."""
    seen_keys: set[str] = set()
    lines = ["| quantity | estimate key | models | median abs log10 error | within 10^0.5 | within 10 |",
             "|---|---|---|---|---|---|"]
    for title, measured_key, keys in QUANTITIES:
        errors: list[float] = []
        used = None
        for entry in table["models"]:
            estimates = [d["estimate"] for d in by_file.get(entry["file"], []) if isinstance(d.get("estimate"), dict)]
            if not estimates:
                continue
            raw = entry["measured"].get(measured_key)
            measured = number(raw) if measured_key in _ALREADY_LOG10 else _log10(raw)
            if measured is None:
                continue
            for est in estimates:
                key = next((k for k in keys if isinstance(est.get(k), (int, float))), None)
                if key is not None:
                    used = used or key
                    errors.append(abs(float(est[key]) - measured))
                    break
        if errors:
            med = statistics.median(errors)
            near = sum(e <= 0.5 for e in errors) / len(errors)
            ten = sum(e <= 1.0 for e in errors) / len(errors)
            lines.append(f"| {title} | `{used}` | {len(errors)} | {med:.2f} | {near:.0%} | {ten:.0%} |")
        else:
            lines.append(f"| {title} | (none of {', '.join(keys)}) | 0 | - | - | - |")
    for diags in by_file.values():
        for d in diags:
            est = d.get("estimate")
            if isinstance(est, dict):
                seen_keys.update(k for k, v in est.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
    return "\n".join(lines), seen_keys


# Bump when the dynamic check changes how it measures (cached verdicts are then measured again).
DYNAMIC_CACHE_VERSION = 3  # 2: protocol batch 128 for small inputs; 3: no gradient at all outranks symmetry


def dynamic_verdicts(directory: Path, table: dict[str, Any], jobs: int = 2) -> dict[str, str]:
    """The dynamic check's verdict per file: the worker and verdict ``gradlint --dynamic`` uses
    (its defaults: batch 32, 3 seeds), one target per file (``build_model``), ``jobs`` at a time.
    Cached in ``<directory>/dynamic-verdicts.json`` by source hash."""
    from gradlint.dynamic import DynamicOptions, DynamicTarget, run_dynamic

    cache_path = directory / "dynamic-verdicts.json"
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    if cache.pop("__version__", None) != DYNAMIC_CACHE_VERSION:
        cache = {}
    todo = [m for m in table["models"] if cache.get(m["file"], {}).get("sha256") != m["sha256"]
            or cache[m["file"]].get("verdict") in ("failed", "skipped")]  # a fixed worker gets another try
    targets = [DynamicTarget(str(directory / m["file"]), m["file"], 1, "factory", "build_model", m["framework"])
               for m in todo]
    for entry, result in zip(todo, run_dynamic(targets, DynamicOptions(jobs=jobs, timeout=300)), strict=True):
        verdict = result.verdict if result.status == "measured" else result.status
        cache[entry["file"]] = {"sha256": entry["sha256"], "verdict": verdict, "reason": result.reason}
    cache_path.write_text(json.dumps({"__version__": DYNAMIC_CACHE_VERSION, **cache}, indent=1) + "\n")
    return {f: str(v["verdict"]) for f, v in cache.items()}


def compare(directory: Path = DEFAULT_DIR, labels_path: Path = LABELS_PATH, dynamic: bool = False,
            misses: int = 15) -> str:
    """The report of ``calibrate.py corpus compare`` (markdown)."""
    table = load_labels(labels_path)
    configs = [config_of(m) for m in table["models"]]
    files = generate(directory, configs)
    stale = [cfg.path for (cfg, _, sha), entry in zip(files, table["models"], strict=True) if sha != entry["sha256"]]
    out = [f"# Measured corpus: {len(table['models'])} models, labels {table['counts']}"]
    if stale:
        out.append(f"WARNING: {len(stale)} regenerated sources differ from the labelled ones "
                   f"(relabel with `calibrate.py corpus label`): {stale[:5]}")
    started = time.perf_counter()
    payload = run_gradlint(directory)
    static_seconds = time.perf_counter() - started
    by_file: dict[str, list[dict[str, Any]]] = {}
    for diag in payload.get("diagnostics", []):
        by_file.setdefault(_relative(diag["path"], directory), []).append(diag)
    pairs = [(m["label"], static_class(by_file.get(m["file"], []))) for m in table["models"]]
    out += ["", f"## Static gradlint vs measured labels ({static_seconds:.0f} s)", "", confusion(pairs)]
    errors, keys = estimate_errors(table, by_file)
    out += ["", "## Estimated quantities against measurement (flagged models with an estimate)", "", errors,
            "", f"numeric estimate fields seen: {', '.join(sorted(keys)) or 'none'}"]
    codes: dict[str, int] = {}
    for diags in by_file.values():
        for d in diags:
            codes[d["code"]] = codes.get(d["code"], 0) + 1
    out.append(f"codes: {dict(sorted(codes.items()))}")
    wrong = [(m, p) for m, (_, p) in zip(table["models"], pairs, strict=True)
             if m["label"] in SCORED and m["label"] != p]
    if wrong:
        out += ["", f"## Disagreements ({len(wrong)}; first {misses})", ""]
        for entry, predicted in wrong[:misses]:
            meas = entry["measured"]
            out.append(f"- `{entry['file']}`: measured {entry['label']} (ratio {meas.get('ratio')}, loss "
                       f"{meas.get('loss')}, rel {meas.get('relative_grad')}, "
                       f"first {meas.get('first_relative_grad')}), "
                       f"static {predicted} {sorted({d['code'] for d in by_file.get(entry['file'], [])})}")
    if dynamic:
        started = time.perf_counter()
        verdicts = dynamic_verdicts(directory, table)
        dyn_seconds = time.perf_counter() - started
        dpairs = [(m["label"], verdicts.get(m["file"], "missing")) for m in table["models"]]
        columns = (*SCORED, "borderline")
        out += ["", f"## gradlint.dynamic verdicts vs measured labels ({dyn_seconds:.0f} s)", "",
                confusion(dpairs, columns)]
        off = [(m["file"], m["label"], v) for m, (_, v) in zip(table["models"], dpairs, strict=True)
               if m["label"] in SCORED and m["label"] != v]
        out += [f"- `{f}`: measured {lab}, dynamic {v}" for f, lab, v in off[:misses]]
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use tools/calibrate.py corpus ...")
