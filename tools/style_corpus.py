"""The measured corpus's architectures in other coding styles, measured and compared the same way.

``tools/measured_corpus.py`` writes every model in one generator's style (a ``reset_parameters``
loop, ``nn.Sequential`` bodies, Keras ``Sequential``/functional with ``kernel_initializer=``).
Held-out corpora are written in many styles, so this module renders configurations of the same
factors (activation × init × width × depth × norm × residual style × head) in others:

* torch ``modulelist``: an ``nn.Module`` whose layers live in ``nn.ModuleList``s built in a loop,
  activations as ``F.*``/``torch.*`` calls in ``forward``, the init applied by
  ``self.apply(self._init_weights)``; residual blocks as a class;
* torch ``sequential``: a module-level builder returning ``nn.Sequential(*layers)`` and a
  module-level ``init_weights(m)`` applied with ``model.apply(init_weights)``;
* torch ``conv2d`` / ``conv1d``: ``Conv2d``/``Conv1d`` stacks (BatchNorm2d/GroupNorm, plain-add
  residuals), max/average pooling, ``nn.Flatten`` and a ``Linear`` head;
* Keras ``functional``: string initializers where Keras has one (``"he_normal"``,
  ``"random_normal"`` is N(0, 0.05²), ...), objects otherwise; ``layers.Add`` residuals;
* Keras ``subclassed``: a ``keras.Model`` subclass with a list of layers and initializer objects;
* Keras ``sequential``: ``keras.Sequential`` from a list comprehension, initializer objects;
* Keras ``conv2d``: ``Conv2D`` + ``MaxPooling2D`` + ``Flatten`` + ``Dense``.

Labels come from the repository's labeller (``measured_corpus.measure``: the protocol, seeds 0–2,
medians, ``gradlint.verdict.judge``; conv layers are weight layers, the input shape is the file's
``INPUT_SHAPE``), stored in ``docs/style_corpus.json``; ``compare`` scores the static
``gradlint`` against them per class, the same way ``calibrate.py corpus compare`` does::

    .venv/bin/python tools/style_corpus.py generate|label|compare [--misses N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import measured_corpus as mc  # noqa: E402

ROOT = mc.ROOT
DEFAULT_DIR = ROOT / "build" / "style-corpus"
LABELS_PATH = ROOT / "docs" / "style_corpus.json"
SEED = 20_261_201
TORCH_STYLES = ("modulelist", "sequential", "conv2d", "conv1d")
KERAS_STYLES = ("functional", "subclassed", "sequential", "conv2d")
# What each style can express (the others are drawn again).
_RESIDUALS = {"modulelist": mc.RESIDUALS, "functional": mc.RESIDUALS, "conv2d": ("none", "add"),
              "conv1d": ("none", "add"), "sequential": ("none",), "subclassed": ("none",)}


@dataclass(frozen=True)
class StyleConfig:
    style: str
    act: str
    init: str
    width: int
    depth: int
    norm: str = "none"
    residual: str = "none"
    head: str = "linear"
    framework: str = "torch"

    @property
    def conv(self) -> bool:
        return self.style.startswith("conv")

    @property
    def name(self) -> str:
        return (f"{self.framework}_{self.style}_{self.act}_{self.init}_w{self.width}_d{self.depth}_{self.norm}_"
                f"{self.residual}_{self.head}").replace(".", "p")

    @property
    def path(self) -> str:
        return f"{self.framework}/{self.name}.py"


def configs(count: int = 200, unnormalized: int = 60) -> list[StyleConfig]:
    rng = random.Random(SEED)
    out: dict[str, StyleConfig] = {}

    def pick(levels: tuple[Any, ...], factor: str) -> Any:
        weights = mc.WEIGHTS.get(factor, {})
        return rng.choices(levels, weights=[weights.get(lv, 1) for lv in levels])[0]

    while len(out) < count:
        framework = "keras" if rng.random() < 0.4 else "torch"
        style = rng.choice(KERAS_STYLES if framework == "keras" else TORCH_STYLES)
        conv = style.startswith("conv")
        residual = pick(mc.RESIDUALS, "residual")
        if residual not in _RESIDUALS[style]:
            residual = "none"
        norm = pick(mc.NORMS, "norm")
        if residual == "preln" and norm == "none":
            norm = "layer"
        width = rng.choice((8, 16, 32)) if conv else rng.choice(mc.WIDTHS)
        depth = rng.choice((2, 3, 4, 6, 8)) if conv else rng.choice(mc.DEPTHS)
        cfg = StyleConfig(style, rng.choice(mc.ACTIVATIONS), pick(mc.INITS, "init"), width, depth, norm, residual,
                          pick(mc.HEADS, "head"), framework)
        out.setdefault(cfg.name, cfg)
    # A stratum where the init scale is not normalized away (no norm, linear head, large or
    # variance-preserving inits, plain or residual): where forward blow-up and exploding gradients live.
    strat = random.Random(SEED + 1)
    while len(out) < count + unnormalized:
        framework = "keras" if strat.random() < 0.4 else "torch"
        style = strat.choice(KERAS_STYLES if framework == "keras" else TORCH_STYLES)
        conv = style.startswith("conv")
        residual = strat.choice(("none", "add", "add", "scaled_branch"))
        if residual not in _RESIDUALS[style]:
            residual = "none"
        init = strat.choice(("normal1.0", "normal1.0", "kaiming", "orthogonal", "xavier", "normal0.05"))
        width = strat.choice((8, 16, 32)) if conv else strat.choice(mc.WIDTHS)
        depth = strat.choice((2, 3, 4, 6, 8)) if conv else strat.choice(mc.DEPTHS)
        act = strat.choice(mc.ACTIVATIONS)
        cfg = StyleConfig(style, act, init, width, depth, "none", residual, "linear", framework)
        out.setdefault(cfg.name, cfg)
    return list(out.values())


# --------------------------------------------------------------------------- torch

_F = {"relu": "F.relu({})", "tanh": "torch.tanh({})", "sigmoid": "torch.sigmoid({})", "gelu": "F.gelu({})",
      "selu": "F.selu({})", "leaky_relu": "F.leaky_relu({}, 0.01)", "softplus": "F.softplus({})", "elu": "F.elu({})",
      "linear": "{}"}
_MODULE = {"relu": "nn.ReLU()", "tanh": "nn.Tanh()", "sigmoid": "nn.Sigmoid()", "gelu": "nn.GELU()",
           "selu": "nn.SELU()", "leaky_relu": "nn.LeakyReLU(0.01)", "softplus": "nn.Softplus()", "elu": "nn.ELU()",
           "linear": "nn.Identity()"}
_INIT_CALL = {
    "xavier": "nn.init.xavier_normal_({w})",
    "kaiming": 'nn.init.kaiming_uniform_({w}, nonlinearity="relu")',
    "normal0.01": "nn.init.normal_({w}, std=0.01)",
    "normal0.05": "{w}.data.normal_(0.0, 0.05)",
    "normal1.0": "nn.init.normal_({w}, 0.0, 1.0)",
    "uniform0.05": "{w}.data.uniform_(-0.05, 0.05)",
    "zeros": "nn.init.zeros_({w})",
    "constant": "nn.init.constant_({w}, 0.05)",
    "orthogonal": "nn.init.orthogonal_({w})",
}


def _head(cfg: StyleConfig) -> tuple[int, str]:
    return {"linear": (mc.OUT_FEATURES, "{}"), "sigmoid": (1, "torch.sigmoid({})"),
            "softmax": (mc.OUT_FEATURES, "torch.softmax({}, dim=1)"),
            "softmax1": (1, "F.softmax({}, dim=-1)")}[cfg.head]


def _torch_init_body(cfg: StyleConfig, var: str, kinds: str, indent: str) -> list[str]:
    if cfg.init not in _INIT_CALL:
        return []
    return [f"{indent}if isinstance({var}, {kinds}):",
            f"{indent}    {_INIT_CALL[cfg.init].format(w=var + '.weight')}",
            f"{indent}    if {var}.bias is not None:",
            f"{indent}        nn.init.zeros_({var}.bias)"]


def torch_modulelist(cfg: StyleConfig) -> str:
    out_units, head = _head(cfg)
    act = _F[cfg.act]
    norm = {"batch": "nn.BatchNorm1d(width)", "layer": "nn.LayerNorm(width)"}.get(cfg.norm)
    lines = ["import torch", "from torch import nn", "import torch.nn.functional as F", ""]
    if cfg.residual != "none":
        lines += ["", "class ResidualBlock(nn.Module):", "    def __init__(self, width, n_blocks):",
                  "        super().__init__()"]
        if cfg.residual == "add":
            lines.append("        self.linear = nn.Linear(width, width)")
            if norm:
                lines.append(f"        self.norm = {norm}")
            inner = "self.norm(self.linear(x))" if norm else "self.linear(x)"
            body = f"x + {act.format(inner)}"
        else:
            lines += ["        self.lin1 = nn.Linear(width, width)", "        self.lin2 = nn.Linear(width, width)"]
            if norm or cfg.residual == "preln":
                lines.append(f"        self.norm = {norm or 'nn.LayerNorm(width)'}")
            if cfg.residual == "scaled_branch":
                lines.append("        self.alpha = 1.0 / n_blocks ** 0.5")
            if cfg.residual == "zero_branch":
                lines += ["        nn.init.zeros_(self.lin2.weight)", "        nn.init.zeros_(self.lin2.bias)"]
            if cfg.residual == "preln":
                branch = f"self.lin2({act.format('self.lin1(self.norm(x))')})"
            elif norm:
                branch = f"self.lin2({act.format('self.norm(self.lin1(x))')})"
            else:
                branch = f"self.lin2({act.format('self.lin1(x)')})"
            if cfg.residual == "scaled_branch":
                branch = f"self.alpha * {branch}"
            body = f"x + {branch}"
        lines += ["", "    def forward(self, x):", f"        return {body}"]
    lines += ["", "", "class Model(nn.Module):",
              f"    def __init__(self, n_in={mc.IN_FEATURES}, width={cfg.width}, n_layers={cfg.depth}, "
              f"n_out={out_units}):", "        super().__init__()"]
    if cfg.residual == "none":
        lines += ["        self.hidden = nn.ModuleList()"]
        if norm:
            lines.append("        self.norms = nn.ModuleList()")
        lines += ["        for i in range(n_layers):",
                  "            self.hidden.append(nn.Linear(n_in if i == 0 else width, width))"]
        if norm:
            lines.append(f"            self.norms.append({norm})")
    else:
        lines += ["        self.embed = nn.Linear(n_in, width)",
                  "        self.blocks = nn.ModuleList()", "        for _ in range(n_layers):",
                  "            self.blocks.append(ResidualBlock(width, n_layers))"]
    lines.append("        self.out = nn.Linear(width, n_out)")
    init = _torch_init_body(cfg, "module", "nn.Linear", "        ")
    if init:
        lines += ["        self.apply(self._init_weights)", "", "    def _init_weights(self, module):", *init]
        if cfg.residual == "zero_branch":
            lines += ["        if isinstance(module, ResidualBlock):", "            nn.init.zeros_(module.lin2.weight)"]
    lines += ["", "    def forward(self, x):"]
    if cfg.residual == "none":
        lines.append("        for i, layer in enumerate(self.hidden):")
        inner = "self.norms[i](layer(x))" if norm else "layer(x)"
        lines.append(f"            x = {act.format(inner)}")
    else:
        lines += ["        x = self.embed(x)", "        for block in self.blocks:", "            x = block(x)"]
    lines += [f"        return {head.format('self.out(x)')}", "", "", "def build_model():", "    return Model()", ""]
    return "\n".join(lines)


def torch_sequential(cfg: StyleConfig) -> str:
    out_units, _ = _head(cfg)
    norm = {"batch": "nn.BatchNorm1d({})", "layer": "nn.LayerNorm({})"}.get(cfg.norm)
    head_mod = {"linear": None, "sigmoid": "nn.Sigmoid()", "softmax": "nn.Softmax(dim=1)",
                "softmax1": "nn.Softmax(dim=1)"}[cfg.head]
    lines = ["import torch.nn as nn", "", "", f"def make_mlp(sizes, n_out={out_units}):", "    layers = []",
             "    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):",
             "        layers.append(nn.Linear(fan_in, fan_out))"]
    if norm:
        lines.append(f"        layers.append({norm.format('fan_out')})")
    if cfg.act != "linear":
        lines.append(f"        layers.append({_MODULE[cfg.act]})")
    lines.append("    layers.append(nn.Linear(sizes[-1], n_out))")
    if head_mod:
        lines.append(f"    layers.append({head_mod})")
    lines += ["    return nn.Sequential(*layers)", ""]
    init = _torch_init_body(cfg, "m", "nn.Linear", "    ")
    if init:
        lines += ["", "def init_weights(m):", *init, ""]
    lines += ["", "def build_model():",
              f"    model = make_mlp([{mc.IN_FEATURES}] + [{cfg.width}] * {cfg.depth})"]
    if init:
        lines.append("    model.apply(init_weights)")
    lines += ["    return model", ""]
    return "\n".join(lines)


def torch_conv(cfg: StyleConfig) -> str:
    two = cfg.style == "conv2d"
    dim = "2d" if two else "1d"
    size = 16 if two else 32
    channels = 3 if two else 4
    out_units, head = _head(cfg)
    act = _F[cfg.act]
    norm = {"batch": f"nn.BatchNorm{dim}(width)", "layer": "nn.GroupNorm(1, width)"}.get(cfg.norm)
    pool = f"nn.MaxPool{dim}(2)" if cfg.act in ("relu", "leaky_relu", "elu") else f"nn.AvgPool{dim}(2)"
    pools = min(2, cfg.depth // 2)
    final = size // 2 ** pools
    flat = f"width * {final} * {final}" if two else f"width * {final}"
    shape = f"({channels}, {size}, {size})" if two else f"({channels}, {size})"
    lines = ["import torch", "import torch.nn as nn", "import torch.nn.functional as F", "",
             f"INPUT_SHAPE = {shape}", "", "", "class ConvNet(nn.Module):",
             f"    def __init__(self, in_channels={channels}, width={cfg.width}, depth={cfg.depth}, "
             f"n_out={out_units}):",
             "        super().__init__()", "        self.convs = nn.ModuleList()"]
    if norm:
        lines.append("        self.norms = nn.ModuleList()")
    lines += ["        for i in range(depth):",
              f"            self.convs.append(nn.Conv{dim}(in_channels if i == 0 else width, width, 3, padding=1))"]
    if norm:
        lines.append(f"            self.norms.append({norm})")
    lines += [f"        self.pool = {pool}", "        self.flatten = nn.Flatten()",
              f"        self.fc = nn.Linear({flat}, n_out)"]
    init = _torch_init_body(cfg, "m", f"(nn.Conv{dim}, nn.Linear)", "            ")
    if init:
        lines += ["        for m in self.modules():", *init]
    lines += ["", "    def forward(self, x):", "        for i, conv in enumerate(self.convs):"]
    inner = "self.norms[i](conv(x))" if norm else "conv(x)"
    if cfg.residual == "add":
        lines += ["            h = " + act.format(inner), "            x = h if i == 0 else x + h"]
    else:
        lines.append("            x = " + act.format(inner))
    lines += [f"            if i % 2 == 1 and i < {2 * pools}:", "                x = self.pool(x)",
              f"        return {head.format('self.fc(self.flatten(x))')}", "", "", "def build_model():",
              "    return ConvNet()", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- keras

_KERAS_STRING = {"default": None, "xavier": '"glorot_normal"', "kaiming": '"he_uniform"',
                 "normal0.05": '"random_normal"', "uniform0.05": '"random_uniform"', "zeros": '"zeros"',
                 "orthogonal": '"orthogonal"'}
_KERAS_OBJECT = {"default": None, "xavier": "initializers.GlorotNormal()", "kaiming": "initializers.HeUniform()",
                 "normal0.01": "initializers.RandomNormal(mean=0.0, stddev=0.01)",
                 "normal0.05": "initializers.RandomNormal()", "normal1.0": "initializers.RandomNormal(stddev=1.0)",
                 "uniform0.05": "initializers.RandomUniform()", "zeros": "initializers.Zeros()",
                 "constant": "initializers.Constant(value=0.05)", "orthogonal": "initializers.Orthogonal()"}


def _keras_head(cfg: StyleConfig) -> tuple[int, str | None]:
    return {"linear": (mc.OUT_FEATURES, None), "sigmoid": (1, "sigmoid"), "softmax": (mc.OUT_FEATURES, "softmax"),
            "softmax1": (1, "softmax")}[cfg.head]


def keras_functional(cfg: StyleConfig) -> str:
    init = _KERAS_STRING.get(cfg.init, _KERAS_OBJECT[cfg.init])
    if cfg.init not in _KERAS_STRING:
        init = _KERAS_OBJECT[cfg.init]
    kw = f", kernel_initializer={init}" if init else ""
    units, head_act = _keras_head(cfg)
    norm = {"batch": "layers.BatchNormalization()", "layer": "layers.LayerNormalization()"}.get(cfg.norm)
    act = f'"{cfg.act}"'
    lines = ["from keras import Input, Model, initializers, layers", "", "", "def build_model():",
             f"    inputs = Input(shape=({mc.IN_FEATURES},))"]
    if cfg.residual == "none":
        lines += ["    x = inputs", f"    for _ in range({cfg.depth}):"]
        if norm:
            lines += [f"        x = layers.Dense({cfg.width}{kw})(x)", f"        x = {norm}(x)",
                      f"        x = layers.Activation({act})(x)"]
        else:
            lines.append(f"        x = layers.Dense({cfg.width}, activation={act}{kw})(x)")
    else:
        lines += [f"    x = layers.Dense({cfg.width}{kw})(inputs)", f"    for _ in range({cfg.depth}):"]
        if cfg.residual == "add":
            lines.append(f"        h = layers.Dense({cfg.width}{kw})(x)")
            if norm:
                lines.append(f"        h = {norm}(h)")
            lines += [f"        h = layers.Activation({act})(h)", "        x = layers.add([x, h])"]
        else:
            src = "x"
            if cfg.residual == "preln":
                lines.append(f"        h = {norm or 'layers.LayerNormalization()'}(x)")
                src = "h"
            lines.append(f"        h = layers.Dense({cfg.width}, activation={act}{kw})({src})")
            last = ', kernel_initializer="zeros"' if cfg.residual == "zero_branch" else kw
            lines.append(f"        h = layers.Dense({cfg.width}{last})(h)")
            if cfg.residual == "scaled_branch":
                lines.append(f"        h = layers.Rescaling({cfg.depth} ** -0.5)(h)")
            lines.append("        x = layers.Add()([x, h])")
    head_kw = f', activation="{head_act}"' if head_act else ""
    lines += [f"    outputs = layers.Dense({units}{head_kw}{kw})(x)",
              "    return Model(inputs=inputs, outputs=outputs)", ""]
    return "\n".join(lines)


def keras_subclassed(cfg: StyleConfig) -> str:
    init = _KERAS_OBJECT[cfg.init]
    kw = f", kernel_initializer={init}" if init else ""
    units, head_act = _keras_head(cfg)
    norm = {"batch": "layers.BatchNormalization()", "layer": "layers.LayerNormalization()"}.get(cfg.norm)
    lines = ["import keras", "from keras import initializers, layers", "", "", "class MLP(keras.Model):",
             f"    def __init__(self, width={cfg.width}, depth={cfg.depth}, **kwargs):",
             "        super().__init__(**kwargs)",
             f"        self.hidden = [layers.Dense(width{kw}) for _ in range(depth)]"]
    if norm:
        lines.append(f"        self.norms = [{norm} for _ in range(depth)]")
    lines.append(f'        self.act = layers.Activation("{cfg.act}")')
    head_kw = f', activation="{head_act}"' if head_act else ""
    lines += [f"        self.head = layers.Dense({units}{head_kw}{kw})", "", "    def call(self, x, training=False):"]
    if norm:
        lines += ["        for dense, norm in zip(self.hidden, self.norms):",
                  "            x = self.act(norm(dense(x), training=training))"]
    else:
        lines += ["        for dense in self.hidden:", "            x = self.act(dense(x))"]
    lines += ["        return self.head(x)", "", "", "def build_model():", "    model = MLP()",
              f"    model.build((None, {mc.IN_FEATURES}))", "    return model", ""]
    return "\n".join(lines)


def keras_sequential(cfg: StyleConfig) -> str:
    init = _KERAS_OBJECT[cfg.init]
    kw = f", kernel_initializer={init}" if init else ""
    units, head_act = _keras_head(cfg)
    norm = {"batch": "keras.layers.BatchNormalization()", "layer": "keras.layers.LayerNormalization()"}.get(cfg.norm)
    head_kw = f', activation="{head_act}"' if head_act else ""
    lines = ["import keras", "from keras import initializers", "", "", "def build_model():"]
    if norm:
        lines += ["    stack = []", f"    for _ in range({cfg.depth}):",
                  f"        stack += [keras.layers.Dense({cfg.width}{kw}), {norm}, "
                  f"keras.layers.Activation(\"{cfg.act}\")]"]
    else:
        lines.append(f'    stack = [keras.layers.Dense({cfg.width}, activation="{cfg.act}"{kw}) '
                     f"for _ in range({cfg.depth})]")
    lines += [f"    return keras.Sequential([keras.Input(shape=({mc.IN_FEATURES},))] + stack + "
              f"[keras.layers.Dense({units}{head_kw}{kw})])", ""]
    return "\n".join(lines)


def keras_conv(cfg: StyleConfig) -> str:
    init = _KERAS_STRING.get(cfg.init) or _KERAS_OBJECT[cfg.init]
    kw = f", kernel_initializer={init}" if init else ""
    units, head_act = _keras_head(cfg)
    norm = {"batch": "layers.BatchNormalization()", "layer": "layers.LayerNormalization()"}.get(cfg.norm)
    head_kw = f', activation="{head_act}"' if head_act else ""
    pools = min(2, cfg.depth // 2)
    lines = ["import keras", "from keras import initializers, layers", "", "INPUT_SHAPE = (16, 16, 3)", "", "",
             "def build_model():", "    inputs = keras.Input(shape=INPUT_SHAPE)", "    x = inputs",
             f"    for i in range({cfg.depth}):"]
    if norm:
        lines += [f'        h = layers.Conv2D({cfg.width}, 3, padding="same"{kw})(x)', f"        h = {norm}(h)",
                  f'        h = layers.Activation("{cfg.act}")(h)']
    else:
        lines.append(f'        h = layers.Conv2D({cfg.width}, 3, padding="same", activation="{cfg.act}"{kw})(x)')
    lines.append("        x = h if i == 0 else layers.Add()([x, h])" if cfg.residual == "add" else "        x = h")
    lines += [f"        if i % 2 == 1 and i < {2 * pools}:", "            x = layers.MaxPooling2D(2)(x)",
              "    x = layers.Flatten()(x)", f"    outputs = layers.Dense({units}{head_kw}{kw})(x)",
              "    return keras.Model(inputs, outputs)", ""]
    return "\n".join(lines)


def source(cfg: StyleConfig) -> str:
    if cfg.framework == "keras":
        render = {"functional": keras_functional, "subclassed": keras_subclassed, "sequential": keras_sequential,
                  "conv2d": keras_conv}[cfg.style]
    else:
        render = {"modulelist": torch_modulelist, "sequential": torch_sequential, "conv2d": torch_conv,
                  "conv1d": torch_conv}[cfg.style]
    header = f"# generated by tools/style_corpus.py: {cfg.name}\n"
    return header + render(cfg)


def generate(directory: Path = DEFAULT_DIR, chosen: list[StyleConfig] | None = None
             ) -> list[tuple[StyleConfig, Path, str]]:
    written = []
    for cfg in chosen if chosen is not None else configs():
        text = source(cfg)
        path = directory / cfg.path
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append((cfg, path, hashlib.sha256(text.encode()).hexdigest()))
    return written


def label(directory: Path = DEFAULT_DIR, out: Path = LABELS_PATH, jobs: int = 2) -> dict[str, Any]:
    from concurrent.futures import ProcessPoolExecutor

    files = generate(directory)
    previous: dict[tuple[str, str], dict[str, Any]] = {}
    if out.exists():
        previous = {(m["file"], m["sha256"]): m for m in json.loads(out.read_text())["models"] if mc.reusable(m)}
    todo = [(str(path), cfg.framework, "1") for cfg, path, sha in files if (cfg.path, sha) not in previous]
    started = time.perf_counter()
    if jobs > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            fresh = iter(list(pool.map(mc._label_one, todo, chunksize=2)))
    else:
        fresh = iter([mc._label_one(item) for item in todo])
    models = []
    for cfg, _, sha in files:
        old = previous.get((cfg.path, sha))
        if old:
            lab, why = mc.rejudge(old["measured"])
            result = {"label": lab, "reason": why if lab != old["label"] else old["reason"],
                      "measured": old["measured"]}
        else:
            result = next(fresh)
        models.append({"file": cfg.path, "framework": cfg.framework, "config": asdict(cfg), "sha256": sha, **result})
    table = {"description": "Measured labels of the style corpus (tools/style_corpus.py; docs/calibration.md).",
             "protocol": "tools/measured_corpus.py (seeds 0-2, batch 128, MSE to N(0, 1), train mode, medians)",
             "seed": SEED, "seconds": round(time.perf_counter() - started, 1), "measured_now": len(todo),
             "counts": mc._counts(m["label"] for m in models), "models": models}
    out.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return table


def compare(directory: Path = DEFAULT_DIR, labels_path: Path = LABELS_PATH, misses: int = 30) -> str:
    table = json.loads(labels_path.read_text(encoding="utf-8"))
    chosen = [StyleConfig(**m["config"]) for m in table["models"]]
    generate(directory, chosen)
    payload = mc.run_gradlint(directory)
    by_file: dict[str, list[dict[str, Any]]] = {}
    for diag in payload.get("diagnostics", []):
        by_file.setdefault(mc._relative(diag["path"], directory), []).append(diag)
    pairs = [(m["label"], mc.static_class(by_file.get(m["file"], []))) for m in table["models"]]
    out = [f"# Style corpus: {len(table['models'])} models, labels {table['counts']}", "", mc.confusion(pairs)]
    for style in sorted({(m["framework"], m["config"]["style"]) for m in table["models"]}):
        sub = [(m["label"], p) for m, (_, p) in zip(table["models"], pairs, strict=True)
               if (m["framework"], m["config"]["style"]) == style and m["label"] in mc.SCORED]
        agree = sum(a == b for a, b in sub)
        out.append(f"- {style[0]} {style[1]}: {agree}/{len(sub)} agree")
    errors, _ = mc.estimate_errors(table, by_file)
    out += ["", errors]
    wrong = [(m, p) for m, (_, p) in zip(table["models"], pairs, strict=True)
             if m["label"] in mc.SCORED and m["label"] != p]
    out += ["", f"## Disagreements ({len(wrong)})", ""]
    for entry, predicted in wrong[:misses]:
        meas = entry["measured"]
        out.append(f"- `{entry['file']}`: measured {entry['label']} (ratio {meas.get('ratio')}, "
                   f"loss {meas.get('loss')}, rel {meas.get('relative_grad')}, "
                   f"first {meas.get('first_relative_grad')}), static {predicted} "
                   f"{sorted({d['code'] for d in by_file.get(entry['file'], [])})}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=("generate", "label", "compare"))
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--labels", type=Path, default=LABELS_PATH)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--misses", type=int, default=30)
    args = ap.parse_args(argv)
    if args.action == "generate":
        print(f"{len(generate(args.dir))} files in {args.dir}")
    elif args.action == "label":
        table = label(args.dir, args.labels, args.jobs)
        print(f"{len(table['models'])} models labelled in {table['seconds']} s: {table['counts']}")
    else:
        print(compare(args.dir, args.labels, args.misses), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
