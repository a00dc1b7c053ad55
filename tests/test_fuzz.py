"""Fuzzing: gradlint never crashes and is deterministic, whatever Python it is given.

Three sources of programs:

* hypothesmith (grammar-derived Python; skipped with a reason when it is not installed:
  the ``test`` extra);
* mutations of the labelled fixtures (lines deleted, duplicated, shuffled; fixed seeds);
* model-shaped generators written here: random ``nn.Sequential`` / ``nn.Module`` classes and
  Keras Sequential / functional / subclassed models with loops, comprehensions, residual adds,
  random activations, inits and odd argument values, plus training code. hypothesmith rarely
  writes anything that reaches the interpreter in ``gradlint/extract``; these do.

The property everywhere: ``lint_source`` never raises, never reports GRD902 (internal error),
and two runs on the same text give the same output.

Small in CI (``GRADLINT_FUZZ_EXAMPLES`` unset: a few dozen examples per test); a long run:
``GRADLINT_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz.py``. Every input that ever
crashed gradlint is kept, minimized, in ``tests/robustness_cases/`` and run by
``tests/test_robustness.py``.
"""

from __future__ import annotations

import ast
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradlint.engine import LintConfig, Selection, lint_source

from conftest import FIXTURES as FIXTURE_DIR
from conftest import ROOT

FIXTURES = sorted(FIXTURE_DIR.rglob("*.py"))
LONG = int(os.environ.get("GRADLINT_FUZZ_EXAMPLES", "0") or 0)
CONFIG = LintConfig(selection=Selection(("ALL",)))


def _examples(ci: int) -> int:
    return LONG if LONG > 0 else ci


def _settings(ci: int):
    return settings(max_examples=_examples(ci), deadline=None, derandomize=not LONG,
                    suppress_health_check=list(HealthCheck), database=None)


def _render(text: str) -> list[dict[str, object]]:
    result = lint_source(text, "fuzzed.py", CONFIG)
    return [d.to_json() for d in result.diagnostics]


def check_property(text: str) -> None:
    """No exception, no GRD902, the same output twice."""
    first = _render(text)
    internal = [d for d in first if d["code"] == "GRD902"]
    assert not internal, f"internal error {internal[0]['message']}\n--- source ---\n{text}"
    second = _render(text)
    assert first == second, f"two runs differ\n--- source ---\n{text}"


# ------------------------------------------------------------------------------- hypothesmith


def _hypothesmith():
    try:
        import hypothesmith  # noqa: F401
    except ImportError:
        return None
    return hypothesmith


_HM = _hypothesmith()
needs_hypothesmith = pytest.mark.skipif(
    _HM is None, reason="hypothesmith is not installed: it comes with the test extra (make setup-test)")


if _HM is not None:
    _hm_programs = _HM.from_grammar()
    _hm_nodes = _HM.from_node()
else:  # placeholders so the decorators below still evaluate
    _hm_programs = _hm_nodes = st.just("")


@needs_hypothesmith
@_settings(30)
@given(_hm_programs)
def test_hypothesmith_grammar_programs(text: str) -> None:
    check_property(text)
    # hypothesmith programs rarely mention torch: with a marker the engine parses and interprets them.
    check_property("import torch.nn as nn\n" + text)


@needs_hypothesmith
@_settings(15)
@given(_hm_nodes)
def test_hypothesmith_node_programs(text: str) -> None:
    check_property("import torch\nfrom torch import nn\n" + text)


# ------------------------------------------------------------------------ fixture mutations


def _mutations(lines: list[str], rng: random.Random) -> list[list[str]]:
    out: list[list[str]] = []
    n = len(lines)
    if n == 0:
        return out
    for _ in range(3):  # delete one line / a run of lines
        i = rng.randrange(n)
        out.append(lines[:i] + lines[i + 1:])
        j = min(n, i + rng.randint(2, 6))
        out.append(lines[:i] + lines[j:])
    for _ in range(3):  # duplicate one line / a block
        i = rng.randrange(n)
        out.append(lines[:i + 1] + [lines[i]] + lines[i + 1:])
        j = min(n, i + rng.randint(2, 8))
        out.append(lines[:j] + lines[i:j] + lines[j:])
    for _ in range(2):  # move a line elsewhere; swap two lines
        i, k = rng.randrange(n), rng.randrange(n)
        moved = lines[:i] + lines[i + 1:]
        moved.insert(k, lines[i])
        out.append(moved)
        swapped = list(lines)
        swapped[i], swapped[k] = swapped[k], swapped[i]
        out.append(swapped)
    shuffled = list(lines)  # shuffle everything: mostly syntax errors, some survive
    rng.shuffle(shuffled)
    out.append(shuffled)
    body = [ln for ln in lines if ln.strip()]  # shuffle within the indentation level of each line
    by_indent: dict[int, list[int]] = {}
    for idx, ln in enumerate(body):
        by_indent.setdefault(len(ln) - len(ln.lstrip()), []).append(idx)
    partial = list(body)
    for idxs in by_indent.values():
        values = [body[i] for i in idxs]
        rng.shuffle(values)
        for i, v in zip(idxs, values, strict=True):
            partial[i] = v
    out.append(partial)
    dedented = [ln.strip() + "\n" if rng.random() < 0.1 else ln for ln in lines]  # break indentation
    out.append(dedented)
    return out


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_mutations(fixture: Path) -> None:
    lines = fixture.read_text(encoding="utf-8").splitlines(keepends=True)
    rounds = max(1, LONG // 50) if LONG else 1
    for seed in range(rounds):
        rng = random.Random(f"{fixture.name}:{seed}")
        for mutated in _mutations(lines, rng):
            check_property("".join(mutated))


# ---------------------------------------------------------------- model-shaped generators

TORCH_ACTS = ["nn.ReLU()", "nn.Sigmoid()", "nn.Tanh()", "nn.GELU()", "nn.SiLU()", "nn.ELU()", "nn.SELU()",
              "nn.LeakyReLU(0.2)", "nn.LeakyReLU(negative_slope=-1)", "nn.Softplus()", "nn.Hardtanh()",
              "nn.Softsign()", "nn.Mish()", "nn.Identity()", "nn.Softmax(dim=-1)", "nn.LogSigmoid()",
              "nn.PReLU()", "nn.Hardsigmoid()", "nn.Tanhshrink()", "nn.Threshold(0.1, 0)", "nn.GELU('tanh')",
              "nn.ReLU(inplace=True)", "nn.Dropout(0.5)", "nn.Sigmoid", "getattr(nn, 'Tanh')()"]
TORCH_FN_ACTS = ["torch.relu({x})", "torch.sigmoid({x})", "torch.tanh({x})", "F.gelu({x})", "F.silu({x})",
                 "F.leaky_relu({x}, 0.1)", "{x}.sigmoid()", "{x}.tanh()", "{x}.relu()", "F.softplus({x})",
                 "torch.exp({x})", "F.elu({x})", "{x}.clamp(min=0)", "F.relu({x}, inplace=True)",
                 "torch.nn.functional.hardtanh({x})", "F.dropout({x}, p=0.1, training=self.training)",
                 "F.layer_norm({x}, {x}.shape[-1:])", "{x} * torch.sigmoid({x})", "F.glu({x}, dim=-1)"]
TORCH_INITS = ["nn.init.zeros_({w})", "nn.init.ones_({w})", "nn.init.constant_({w}, {f})",
               "nn.init.normal_({w}, 0, {f})", "nn.init.normal_({w}, mean={f}, std={f})",
               "nn.init.uniform_({w}, -{f}, {f})", "nn.init.xavier_uniform_({w})",
               "nn.init.xavier_normal_({w}, gain={f})", "nn.init.kaiming_normal_({w}, nonlinearity='relu')",
               "nn.init.kaiming_uniform_({w}, a={f}, mode='fan_out')", "nn.init.orthogonal_({w}, gain={f})",
               "nn.init.trunc_normal_({w}, std={f})", "nn.init.eye_({w})", "nn.init.sparse_({w}, {f})",
               "nn.init.dirac_({w})", "{w}.data.fill_({f})", "{w}.data.zero_()", "{w}.data.normal_(0, {f})",
               "nn.init.kaiming_normal_({w}, nonlinearity='tanh')", "nn.init.xavier_uniform_({w}, gain="
               "nn.init.calculate_gain('{act}'))", "torch.nn.init.zeros_({w})",
               "nn.init.normal_({w}, std=1 / math.sqrt({n}))", "{w}.data.uniform_(-{f}, {f})"]
KERAS_ACTS = ["'relu'", "'sigmoid'", "'tanh'", "'gelu'", "'selu'", "'elu'", "'softmax'", "'linear'", "None",
              "'swish'", "'exponential'", "'hard_sigmoid'", "'softplus'", "'softsign'", "'leaky_relu'",
              "'nonsense'", "keras.activations.sigmoid", "tf.nn.relu", "'mish'", "activations.tanh", "''"]
KERAS_INITS = ["'zeros'", "'ones'", "'glorot_uniform'", "'he_normal'", "'he_uniform'", "'lecun_normal'",
               "'random_normal'", "'orthogonal'", "'identity'", "keras.initializers.Zeros()",
               "keras.initializers.Constant({f})", "keras.initializers.RandomNormal(stddev={f})",
               "keras.initializers.RandomUniform(-{f}, {f})", "initializers.VarianceScaling(scale={f})",
               "tf.keras.initializers.TruncatedNormal(mean=0.0, stddev={f})", "'not_an_init'",
               "keras.initializers.GlorotNormal(seed={n})", "None"]
PARAM_FILTERS = ['"weight" in name', 'name.endswith("bias")', "p.dim() > 1", "True"]
ODD_ATTRS = ["self.l0", 'getattr(self, "l0", None)', "None", "dims[0]", "self", "super().__init__()",
             'setattr(self, "x", nn.Tanh())']
KERAS_NAMED_MODEL = 'Model(inputs, outputs, name="m")'
KERAS_OPTIMIZERS = ['"adam"', "keras.optimizers.SGD(clipnorm=1.0)", "tf.keras.optimizers.Adam(1e-3)"]
TORCH_LOSSES = ["nn.BCELoss()", "nn.BCEWithLogitsLoss()", "nn.CrossEntropyLoss()", "nn.MSELoss()",
                "nn.NLLLoss()", "F.binary_cross_entropy", "F.cross_entropy", "torch.nn.L1Loss()"]
KERAS_LOSSES = ["'binary_crossentropy'", "'categorical_crossentropy'", "'mse'", "'sparse_categorical_crossentropy'",
                "keras.losses.BinaryCrossentropy(from_logits=True)", "tf.keras.losses.CategoricalCrossentropy()",
                "None", "'nonsense'"]


@st.composite
def ints(draw) -> str:
    """An integer argument: mostly plausible widths, sometimes hostile."""
    return draw(st.one_of(
        st.sampled_from(["4", "8", "16", "32", "64", "128", "256", "1", "3", "dim", "hidden", "self.dim"]),
        st.sampled_from(["0", "-1", "-64", "10**9", "2**62", "10**400", "True", "None", "'64'", "64.0", "1e3",
                         "float('inf')", "float('nan')", "dim * 2", "dim // 0", "-dim", "hidden[0]", "len(x)",
                         "(64)", "[64]", "dim if dim else 8", "x", "undefined_name"]),
        st.integers(-3, 300).map(str),
    ))


@st.composite
def floats(draw) -> str:
    return draw(st.one_of(
        st.sampled_from(["0.02", "0.1", "1.0", "1", "2", "0.5", "5.0", "1e-3", "0.01", "3"]),
        st.sampled_from(["0", "0.0", "-1.0", "1e308", "1e-320", "float('inf')", "float('-inf')", "float('nan')",
                         "math.sqrt(2)", "1 / math.sqrt(dim)", "dim ** -0.5", "None", "'0.1'", "True",
                         "10**400", "1e400", "-0.0", "std", "(2.0 / dim) ** 0.5", "0 / 1", "1j", "2**1024"]),
        st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
    ))


def _fill(template: str, draw, **names: str) -> str:
    out = template
    while "{f}" in out:
        out = out.replace("{f}", draw(floats()), 1)
    while "{n}" in out:
        out = out.replace("{n}", draw(ints()), 1)
    for key, value in names.items():
        out = out.replace("{" + key + "}", value)
    return out


def _indent(lines: list[str], n: int) -> list[str]:
    return [(" " * n + ln) if ln else ln for ln in lines]


@st.composite
def torch_layer(draw, dim: str = "dim") -> str:
    kind = draw(st.integers(0, 14))
    if kind <= 4:
        return f"nn.Linear({draw(st.sampled_from([dim, draw(ints())]))}, {draw(st.sampled_from([dim, draw(ints())]))}" \
               f"{draw(st.sampled_from(['', ', bias=False', ', bias=True', ', bias=None', ', device=None']))})"
    if kind <= 7:
        return draw(st.sampled_from(TORCH_ACTS))
    if kind == 8:
        return f"nn.Conv2d({draw(ints())}, {draw(ints())}, {draw(ints())}, padding={draw(ints())})"
    if kind == 9:
        return draw(st.sampled_from([f"nn.BatchNorm1d({dim})", f"nn.LayerNorm({dim})", f"nn.GroupNorm(4, {dim})",
                                     f"nn.LayerNorm([{dim}])", "nn.BatchNorm2d(0)", f"nn.RMSNorm({dim})"]))
    if kind == 10:
        return draw(st.sampled_from([f"nn.LSTM({dim}, {dim}, num_layers={draw(ints())}, batch_first=True)",
                                     f"nn.GRU({dim}, {dim})", f"nn.RNN({dim}, {dim}, nonlinearity='relu')",
                                     f"nn.RNN({dim}, {dim}, {draw(ints())})",
                                     f"nn.MultiheadAttention({dim}, {draw(ints())})",
                                     f"nn.TransformerEncoderLayer({dim}, {draw(ints())})",
                                     f"nn.Embedding({draw(ints())}, {dim})"]))
    if kind == 11:
        inner = draw(st.lists(torch_layer(dim), min_size=0, max_size=3))
        return f"nn.Sequential({', '.join(inner)})"
    if kind == 12:
        return draw(st.sampled_from([f"Block({dim})", f"Block({dim}, {draw(ints())})", "Block()",
                                     f"Block(dim={dim}, act={draw(st.sampled_from(TORCH_ACTS))})", "Block",
                                     "self", "Net()", f"make_mlp({draw(ints())})"]))
    if kind == 13:
        return draw(st.sampled_from(["None", "1", "'relu'", "lambda x: x", "nn", "nn.Module()", "object()",
                                     "nn.Linear", "nn.ModuleList()", "torch.zeros(3)", "nn.Flatten()",
                                     "nn.Linear(*dims)", "nn.Linear(**{'in_features': 4, 'out_features': 4})",
                                     "nn.Sequential(*[])", "nn.Sequential(*dims)", "nn.Conv2d(*dims, **{})"]))
    return f"nn.Linear(in_features={dim}, out_features={draw(ints())})"


@st.composite
def torch_init_stmts(draw, targets: list[str]) -> list[str]:
    out: list[str] = []
    for _ in range(draw(st.integers(0, 3))):
        style = draw(st.integers(0, 5))
        init = draw(st.sampled_from(TORCH_INITS))
        act = draw(st.sampled_from(["relu", "tanh", "sigmoid", "linear", "leaky_relu", "nonsense"]))
        if style <= 1 and targets:
            tgt = draw(st.sampled_from(targets))
            attr = draw(st.sampled_from(["weight", "bias", "weight_hh_l0", "weight_ih_l0", "missing"]))
            out.append(_fill(init, draw, w=f"{tgt}.{attr}", act=act))
        elif style == 2:
            out += ["for m in self.modules():",
                    "    if isinstance(m, "
                    f"{draw(st.sampled_from(['nn.Linear', '(nn.Linear, nn.Conv2d)', 'nn.LSTM', 'Block']))}):",
                    "        " + _fill(init, draw, w="m.weight", act=act)]
            if draw(st.booleans()):
                out.append("        " + _fill(draw(st.sampled_from(TORCH_INITS)), draw, w="m.bias", act=act))
        elif style == 3:
            out += ["for name, p in self.named_parameters():",
                    f"    if {draw(st.sampled_from(PARAM_FILTERS))}:",
                    "        " + _fill(init, draw, w="p", act=act)]
        elif style == 4:
            out.append(f"self.apply({draw(st.sampled_from(['self._init', 'init_weights', 'lambda m: None', 'None']))})")
        else:
            out += ["with torch.no_grad():",
                    "    " + _fill(init, draw, w=f"{draw(st.sampled_from(targets or ['self']))}.weight", act=act)]
    return out


@st.composite
def torch_init_body(draw) -> tuple[list[str], list[str]]:
    """Statements of ``__init__`` and the attribute names of the layers they create."""
    lines: list[str] = []
    attrs: list[str] = []
    for i in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 11))
        name = f"self.l{i}"
        n = draw(ints())
        layer = draw(torch_layer())
        if kind <= 2:
            lines.append(f"{name} = {layer}")
        elif kind == 3:
            lines.append(f"{name} = nn.ModuleList([{layer} for _ in range({n})])")
        elif kind == 4:
            lines.append(f"{name} = nn.Sequential(*["
                         + draw(st.sampled_from(['nn.Sequential(' + layer + ', ' + draw(torch_layer()) + ')', layer]))
                         + f" for {draw(st.sampled_from(['_', 'i', '(a, b)']))} in "
                         + draw(st.sampled_from(['range(' + n + ')', 'dims', 'zip(dims, dims[1:])', 'enumerate(dims)',
                                                 '[]', 'range(3, 0, -1)']))
                         + "])")
        elif kind == 5:
            lines += ["layers = []",
                      f"for i in range({n}):",
                      f"    layers.append({layer})",
                      f"    layers += [{draw(torch_layer())}]" if draw(st.booleans()) else "    pass",
                      "    " + draw(st.sampled_from(['if i > 2: break', 'if i % 2: continue', 'dim = dim * 2', 'pass',
                                                   'layers.extend(layers)', 'del layers[0]',
                                                   'layers.insert(0, nn.Tanh())'])),
                      f"{name} = nn.Sequential(*layers)"]
        elif kind == 6:
            lines += [f"{name} = nn.ModuleDict({{'a': {layer}, 'b': {draw(torch_layer())}}})",
                      f"{name}['c'] = {draw(torch_layer())}" if draw(st.booleans()) else "pass"]
        elif kind == 7:
            lines.append(f"{name} = nn.Parameter(torch.{draw(st.sampled_from(['ones', 'zeros', 'randn', 'full']))}"
                         f"({draw(ints())}) * {draw(floats())})")
        elif kind == 8:
            lines += [f"{name} = nn.Sequential(OrderedDict([('fc', {layer}), ('act', {draw(torch_layer())})]))"]
        elif kind == 9:
            lines += [f"{name} = nn.Sequential()",
                      f"for j in range({n}):",
                      f"    {name}.add_module(f'fc{{j}}', {layer})",
                      f"    {name}.append({draw(torch_layer())})" if draw(st.booleans()) else "    pass"]
        elif kind == 10:
            lines.append(f"{name} = {draw(st.sampled_from(ODD_ATTRS))}")
        else:
            lines += [f"if {draw(st.sampled_from(['dim > 4', 'use_bn', 'False', 'True', 'self.training', 'dims']))}:",
                      f"    {name} = {layer}",
                      "else:",
                      f"    {name} = {draw(torch_layer())}"]
        attrs.append(name)
    lines += draw(torch_init_stmts(attrs))
    return lines, attrs


@st.composite
def torch_forward_body(draw, attrs: list[str]) -> list[str]:
    lines: list[str] = []
    pick = st.sampled_from(attrs or ["self.missing"])
    for _ in range(draw(st.integers(0, 7))):
        kind = draw(st.integers(0, 12))
        a = draw(pick)
        act = draw(st.sampled_from(TORCH_FN_ACTS))
        if kind <= 2:
            lines.append(f"x = {a}(x)")
        elif kind == 3:
            lines.append("x = " + act.format(x=f"{a}(x)"))
        elif kind == 4:
            lines.append(f"x = x + {draw(st.sampled_from(['', draw(floats()) + ' * ', 'self.gamma * ']))}{a}(x)")
        elif kind == 5:
            lines += [f"for layer in {a}:",
                      f"    x = {draw(st.sampled_from(['layer(x)', 'x + layer(x)', act.format(x='layer(x)')]))}"]
        elif kind == 6:
            lines += [f"for name, layer in {a}.items():", "    x = layer(x)"]
        elif kind == 7:
            lines += ["h = x", f"x = {a}(x)",
                      "x = " + draw(st.sampled_from(['x + h', 'torch.cat([x, h], dim=1)', 'x * h', 'h - x',
                                                     'torch.stack([x, h]).sum(0)', 'x + h + h']))]
        elif kind == 8:
            lines += [f"x = [{draw(st.sampled_from(['l(x)', 'l(x) + x']))} for l in {a}][-1]"]
        elif kind == 9:
            lines += [f"x, _ = {a}(x)", "x = x[:, -1]"]
        elif kind == 10:
            lines += [f"if {draw(st.sampled_from(['self.training', 'x.dim() > 2', 'mask is None']))}:",
                      f"    x = {a}(x)",
                      f"{draw(st.sampled_from(['', 'else:']))}", "    x = " + act.format(x="x")]
            if lines[-2] == "":
                lines.pop(-2)
                lines[-1] = lines[-1].strip()
        elif kind == 11:
            lines += ["i = 0", f"while i < {draw(ints())}:", f"    x = {a}(x)", "    i += 1"]
        else:
            lines.append("x = " + act.format(x="x"))
    lines.append(draw(st.sampled_from(["return x", "return x, None", "return {'out': x}", "return",
                                       "return self.head(x)",
                                       "return " + draw(st.sampled_from(TORCH_FN_ACTS)).format(x="x")])))
    return lines


@st.composite
def torch_module_class(draw, name: str, base: str = "nn.Module") -> list[str]:
    init, attrs = draw(torch_init_body())
    params = draw(st.sampled_from(["self, dim=64", "self, dim=64, hidden=128, act=None", "self, dim, *args, **kw",
                                   "self, dims=(8, 16, 32), use_bn=False", "self", "self, dim=64, depth=12"]))
    super_call = draw(st.sampled_from(["super().__init__()", f"super({name}, self).__init__()",
                                       "nn.Module.__init__(self)", "pass", "super().__init__(dim)"]))
    if "dim" not in params:
        init = ["dim = 64", "dims = [8, 16]"] + init
    if "dims" not in params:
        init = ["dims = [dim, dim * 2, dim]"] + init
    if "use_bn" not in params:
        init = ["use_bn = True"] + init
    lines = [f"class {name}({base}):", f"    def __init__({params}):", "        " + super_call]
    lines += _indent(init, 8)
    if draw(st.booleans()):
        lines += ["", "    def _init(self, m):", "        if isinstance(m, nn.Linear):",
                  "            " + _fill(draw(st.sampled_from(TORCH_INITS)), draw, w="m.weight", act="relu")]
    fwd_args = draw(st.sampled_from(["self, x", "self, x, mask=None", "self, *inputs", "self, x: torch.Tensor"]))
    fwd = draw(torch_forward_body(attrs))
    if "mask" not in fwd_args and any("mask" in ln for ln in fwd):
        fwd = ["mask = None"] + fwd
    if fwd_args == "self, *inputs":
        fwd = ["x = inputs[0]"] + fwd
    lines += ["", f"    def forward({fwd_args}):"] + _indent(fwd, 8)
    return lines


@st.composite
def torch_training(draw, model_expr: str) -> list[str]:
    loss = draw(st.sampled_from(TORCH_LOSSES))
    lines = [f"model = {model_expr}", f"criterion = {loss}",
             f"opt = torch.optim.{draw(st.sampled_from(['SGD', 'Adam', 'AdamW']))}"
             f"(model.parameters(), lr={draw(floats())})",
             f"for epoch in range({draw(ints())}):", "    for xb, yb in loader:", "        opt.zero_grad()",
             "        out = " + draw(st.sampled_from(['model(xb)', 'torch.sigmoid(model(xb))', 'model(xb).softmax(-1)',
                                                   'F.log_softmax(model(xb), 1)'])),
             "        loss = criterion(out, yb)", "        loss.backward()"]
    if draw(st.booleans()):
        lines.append("        " + draw(st.sampled_from(['torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)',
                                                       'nn.utils.clip_grad_value_(model.parameters(), 0.5)'])))
    lines.append("        opt.step()")
    return lines


TORCH_HEADERS = [
    "import math\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
    "from collections import OrderedDict\n",
    "import math\nimport torch\nfrom torch import nn\nfrom torch.nn import functional as F\n"
    "from collections import OrderedDict\n",
    "import math\nfrom torch.nn import *\nimport torch\nimport torch.nn as nn\nF = nn.functional\n"
    "from collections import OrderedDict\n",
    "import math, torch\nnn = torch.nn\nF = torch.nn.functional\nOrderedDict = dict\n",
    "import torch\nimport torch.nn as nn\n",
]


@st.composite
def torch_programs(draw) -> str:
    parts = [draw(st.sampled_from(TORCH_HEADERS))]
    if draw(st.booleans()):
        parts.append("\n".join(draw(torch_module_class("Block"))))
    if draw(st.booleans()):
        parts.append("def make_mlp(depth=4, dim=32):\n    layers = []\n    for _ in range(depth):\n"
                     f"        layers += [nn.Linear(dim, dim), {draw(st.sampled_from(TORCH_ACTS))}]\n"
                     f"    return nn.Sequential(*layers{draw(st.sampled_from(['', ', nn.Linear(dim, 1)']))})")
    base = draw(st.sampled_from(["nn.Module", "Block", "nn.Sequential", "torch.nn.Module", "object", "nn.ModuleList"]))
    parts.append("\n".join(draw(torch_module_class("Net", base))))
    tail = draw(st.integers(0, 5))
    ctor = draw(st.sampled_from(["Net()", f"Net({draw(ints())})", "Net(dim=32, depth=40)", "Net(*[1, 2])",
                                 "Net(**{})"]))
    if tail == 1:
        parts.append(f"model = {ctor}")
    elif tail == 2:
        layers = draw(st.lists(torch_layer("64"), min_size=0, max_size=12))
        parts.append(f"model = nn.Sequential({', '.join(layers)})")
    elif tail == 3:
        parts.append("\n".join(draw(torch_training(ctor))))
    elif tail == 4:
        parts.append(f"if __name__ == '__main__':\n    model = {ctor}\n    print(model(torch.randn(2, 64)))")
    elif tail == 5:
        parts.append(f"model = nn.Sequential(*[{draw(torch_layer('64'))} for _ in range({draw(ints())})])\n"
                     "model.apply(lambda m: "
                     f"{_fill(draw(st.sampled_from(TORCH_INITS)), draw, w='m.weight', act='tanh')} "
                     f"if isinstance(m, nn.Linear) else None)")
    return "\n\n\n".join(parts) + "\n"


@st.composite
def keras_layer(draw) -> str:
    kind = draw(st.integers(0, 9))
    act = draw(st.sampled_from(KERAS_ACTS))
    init = _fill(draw(st.sampled_from(KERAS_INITS)), draw)
    if kind <= 4:
        return (f"layers.Dense({draw(ints())}, activation={act}"
                + draw(st.sampled_from(['', ', kernel_initializer=' + init, ', use_bias=False',
                                        ', input_shape=(' + draw(ints()) + ',)']))
                + ")")
    if kind == 5:
        return f"layers.Activation({act})"
    if kind == 6:
        return draw(st.sampled_from(["layers.BatchNormalization()", "layers.LayerNormalization()",
                                     "layers.Dropout(0.2)", "layers.Flatten()",
                                     f"layers.Conv2D({draw(ints())}, 3, activation={act})",
                                     f"layers.LSTM({draw(ints())}, return_sequences=True)",
                                     f"layers.SimpleRNN({draw(ints())}, activation={act})",
                                     f"layers.Embedding({draw(ints())}, {draw(ints())})"]))
    if kind == 7:
        return f"layers.Dense(units={draw(ints())}, kernel_initializer={init}, activation={act})"
    if kind == 8:
        return draw(st.sampled_from(["layers.ReLU()", "layers.LeakyReLU(0.3)", "layers.PReLU()", "layers.ELU()",
                                     "layers.Softmax()", "keras.layers.Dense(4)", "tf.keras.layers.Dense(8, 'tanh')"]))
    return draw(st.sampled_from(["None", "1", "'dense'", "layers", "lambda x: x", "Dense", "model",
                                 "layers.Dense(*[8])", "layers.Dense(**{'units': 8, 'activation': 'tanh'})"]))


@st.composite
def keras_programs(draw) -> str:
    header = draw(st.sampled_from([
        "import keras\nfrom keras import layers, initializers, activations\nimport tensorflow as tf\n",
        "import tensorflow as tf\nfrom tensorflow import keras\n"
        "from tensorflow.keras import layers, initializers, activations\n",
        "from tensorflow.keras.layers import *\nfrom tensorflow.keras.models import Sequential, Model\n"
        "import tensorflow as tf\n"
        "import keras\nfrom keras import layers, initializers, activations\n",
    ]))
    style = draw(st.integers(0, 3))
    n = draw(ints())
    if style == 0:
        body = [f"model = keras.Sequential([{', '.join(draw(st.lists(keras_layer(), max_size=10)))}])"]
        if draw(st.booleans()):
            body += [f"for _ in range({n}):", f"    model.add({draw(keras_layer())})"]
        body.append(f"model.add({draw(keras_layer())})")
    elif style == 1:
        body = ["def build(depth=10, units=64):", f"    inputs = keras.Input(shape=({n},))", "    x = inputs",
                "    for i in range(depth):", f"        y = {draw(keras_layer())}(x)",
                "        x = " + draw(st.sampled_from(['layers.Add()([x, y])', 'y', 'layers.add([x, y])',
                                                      'layers.Concatenate()([x, y])', 'x + y',
                                                      'layers.Multiply()([x, y])'])),
                f"    outputs = {draw(keras_layer())}(x)",
                "    return " + draw(st.sampled_from(['keras.Model(inputs, outputs)',
                                                      'keras.Model(inputs=inputs, outputs=[outputs, x])',
                                                      KERAS_NAMED_MODEL, 'outputs']))]
        if draw(st.booleans()):
            body.append(f"model = build({draw(ints())}, {draw(ints())})")
    elif style == 2:
        body = ["class Net(keras.Model):", "    def __init__(self, units=64, depth=8, **kwargs):",
                "        super().__init__(**kwargs)",
                f"        self.blocks = [{draw(keras_layer())} for _ in range(depth)]",
                f"        self.head = {draw(keras_layer())}",
                "", "    def call(self, x, training=False):", "        for block in self.blocks:",
                f"            x = {draw(st.sampled_from(['block(x)', 'x + block(x)', 'block(x, training=training)']))}",
                "        return self.head(x)", "", f"model = Net({draw(ints())})"]
    else:
        body = ["model = Sequential()",
                f"model.add(Dense({n}, activation={draw(st.sampled_from(KERAS_ACTS))}, input_dim=20))",
                f"for units in [{', '.join(draw(st.lists(ints(), max_size=6)))}]:",
                f"    model.add(Dense(units, activation={draw(st.sampled_from(KERAS_ACTS))}, "
                f"kernel_initializer={_fill(draw(st.sampled_from(KERAS_INITS)), draw)}))",
                f"model.add(Dense(1, activation={draw(st.sampled_from(KERAS_ACTS))}))"]
    if draw(st.booleans()):
        body += [f"model.compile(optimizer={draw(st.sampled_from(KERAS_OPTIMIZERS))}, "
                 f"loss={draw(st.sampled_from(KERAS_LOSSES))})",
                 f"model.fit(x, y, epochs={draw(ints())})"]
    return header + "\n\n" + "\n".join(body) + "\n"


@_settings(40)
@given(torch_programs())
def test_generated_torch_models(text: str) -> None:
    check_property(text)


@_settings(25)
@given(keras_programs())
def test_generated_keras_models(text: str) -> None:
    check_property(text)


def test_generated_programs_are_mostly_valid_model_code() -> None:
    """The generators are worth their name: most outputs parse and define a model gradlint sees."""
    parsed = models = 0
    total = 40

    @settings(max_examples=total, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(torch_programs(), keras_programs()))
    def count(text: str) -> None:
        nonlocal parsed, models
        try:
            ast.parse(text)
        except SyntaxError:
            return
        parsed += 1
        if lint_source(text, "fuzzed.py", CONFIG).models:
            models += 1

    count()
    assert parsed >= total * 0.85, parsed
    assert models >= total * 0.5, models


# ---------------------------------------------------------------------------- determinism


def test_cli_output_does_not_depend_on_hash_seed() -> None:
    """Set and dict ordering must not leak into the report: run the fixtures under two hash seeds.

    --no-cache: with the cache on, the second run (and the first, after any earlier run) would be
    served from the cache and compare a file with itself."""
    outputs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed, NO_COLOR="1")
        proc = subprocess.run([sys.executable, "-m", "gradlint", "--no-cache", "--format", "json", "--select", "ALL",
                               "fixtures"],
                              capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
        assert proc.returncode in (0, 1), proc.stderr
        outputs.append(json.loads(proc.stdout))
    assert outputs[0] == outputs[1]
