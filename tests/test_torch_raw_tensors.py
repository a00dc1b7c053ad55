"""PyTorch models written with raw tensors (requires_grad weights, ``x.mm(w)`` chains from a data
tensor, the "learning PyTorch with examples" style) become models: checked on the model description
and the diagnostics, never by running torch."""

from __future__ import annotations

import ast
import textwrap

import pytest

from gradlint.analysis.units import model_units
from gradlint.engine import LintConfig, lint_source
from gradlint.extract import extract
from gradlint.model import LayerKind, Model


def _models(src: str) -> list[Model]:
    return extract(ast.parse(textwrap.dedent(src))).models


def one(src: str) -> Model:
    models = _models(src)
    assert len(models) == 1, [m.name for m in models]
    return models[0]


def codes(src: str) -> list[str]:
    return sorted(d.code for d in lint_source(textwrap.dedent(src), "example.py", LintConfig()).diagnostics)


TUTORIAL = """
    import torch
    N, D_in, H, D_out = 64, 1000, 100, 10
    x = torch.randn(N, D_in)
    y = torch.randn(N, D_out)
    w1 = {w1}
    w2 = torch.randn(H, D_out, requires_grad=True)
    for t in range(500):
        h = {hidden}
        y_pred = h.mm(w2)
        loss = (y_pred - y).pow(2).sum()
        loss.backward()
        with torch.no_grad():
            w1 -= 1e-6 * w1.grad
            w2 -= 1e-6 * w2.grad
            w1.grad.zero_()
            w2.grad.zero_()
"""


@pytest.mark.parametrize("w1,scheme,params", [
    ("torch.randn(D_in, H, requires_grad=True)", "normal", {"std": 1.0}),
    ("(torch.randn(D_in, H) * 0.01).requires_grad_()", "normal", {"std": 0.01}),
    ("torch.randn(D_in, H, requires_grad=True) * 0.01", "normal", {"std": 0.01}),  # the tensor the forward uses
    ("torch.zeros(D_in, H, requires_grad=True)", "zeros", {}),
    ("(torch.ones(D_in, H) * 0.5).requires_grad_()", "constant", {"value": 0.5}),
    ("torch.nn.Parameter(torch.randn(D_in, H) * (2 / D_in) ** 0.5)", "normal", {"std": (2 / 1000) ** 0.5}),
])
@pytest.mark.parametrize("hidden,act", [
    ("x.mm(w1).clamp(min=0)", "relu"),
    ("torch.relu(x @ w1)", "relu"),
    ("torch.sigmoid(torch.mm(x, w1))", "sigmoid"),
    ("x.matmul(w1).tanh()", "tanh"),
])
def test_tutorial_loop_is_one_model(w1: str, scheme: str, params: dict[str, float], hidden: str, act: str) -> None:
    model = one(TUTORIAL.format(w1=w1, hidden=hidden))  # 500 iterations of the forward: one model
    units = model_units(model)
    assert [(u.fan_in, u.fan_out, u.activation) for u in units] == [(1000, 100, act), (100, 10, "linear")]
    first = units[0].init
    assert first is not None and first.scheme == scheme
    assert first.params == pytest.approx(params)
    assert model.framework == "torch" and model.input_hint is not None and model.input_hint.shape == (1000,)
    assert model.fully_understood


def test_forward_function_with_dict_params_and_biases() -> None:
    model = one("""
        import torch
        x = torch.randn(128, 32)
        params = {"w1": torch.randn(32, 64, requires_grad=True), "b1": torch.zeros(64, requires_grad=True),
                  "w2": torch.randn(64, 1, requires_grad=True)}

        def forward(x, p):
            return torch.sigmoid(x @ p["w1"] + p["b1"]) @ p["w2"]

        for step in range(10):
            y_pred = forward(x, params)
            y_pred.sum().backward()
    """)
    units = model_units(model)
    assert [(u.fan_in, u.fan_out, u.activation) for u in units] == [(32, 64, "sigmoid"), (64, 1, "linear")]
    assert units[0].layer.bias and units[0].layer.bias_init is not None and units[0].layer.bias_init.scheme == "zeros"
    assert not units[1].layer.bias


def test_deep_sigmoid_and_blowup_are_flagged_and_he_is_clean() -> None:
    deep = """
        import torch
        x = torch.randn(128, 256)
        ws = [{w} for _ in range(10)]
        h = x
        for w in ws:
            h = {act}(h @ w)
        y_pred = h
    """
    assert "GRD001" in codes(deep.format(w="(torch.randn(256, 256) / 256 ** 0.5).requires_grad_()",
                                         act="torch.sigmoid"))
    assert "GRD004" in codes(deep.format(w="torch.randn(256, 256, requires_grad=True)", act="torch.relu"))
    assert codes(deep.format(w="(torch.randn(256, 256) * (2 / 256) ** 0.5).requires_grad_()",
                             act="torch.relu")) == []


def test_in_place_requires_grad_makes_the_bound_tensor_a_weight() -> None:
    model = one("""
        import torch
        x = torch.randn(16, 8)
        w = torch.randn(8, 4) * 0.1
        w.requires_grad_()
        y_pred = torch.tanh(x @ w)
    """)
    assert [(u.fan_in, u.fan_out) for u in model_units(model)] == [(8, 4)]


@pytest.mark.parametrize("src", [
    # library style: arithmetic on a function's arguments with a weight made inside: no data tensor
    """
    import torch
    def project(q, k):
        w = torch.randn(64, 64, requires_grad=True)
        return torch.sigmoid(q @ w) @ k
    """,
    # a tensor without requires_grad is data, not a weight
    """
    import torch
    x = torch.randn(16, 8)
    w = torch.randn(8, 4)
    y_pred = torch.sigmoid(x @ w)
    """,
    # a weight that does not come from this file (loaded, passed in)
    """
    import torch
    x = torch.randn(16, 8)
    w = torch.load("w.pt")
    y_pred = torch.sigmoid(x.mm(w))
    """,
])
def test_no_model_without_a_data_tensor_and_a_weight_of_this_file(src: str) -> None:
    assert _models(src) == []


def test_same_weight_twice_on_a_path_is_unknown_not_a_stack() -> None:
    model = one("""
        import torch
        x = torch.randn(16, 32)
        w = torch.randn(32, 32, requires_grad=True)
        h = x
        for t in range(20):
            h = torch.tanh(h @ w)
        y_pred = h
    """)
    assert any(layer.kind == LayerKind.UNKNOWN for layer in model.layers())
    assert codes("""
        import torch
        x = torch.randn(16, 32)
        w = torch.randn(32, 32, requires_grad=True)
        h = x
        for t in range(20):
            h = torch.tanh(h @ w)
        y_pred = h
    """) == []


def test_function_parameter_is_the_input_when_the_batch_is_unseen() -> None:
    model = one("""
        import math
        import torch
        weights = torch.randn(784, 128) / math.sqrt(784)
        weights.requires_grad_()
        bias = torch.zeros(128, requires_grad=True)
        w2 = torch.randn(128, 10, requires_grad=True)

        def model(xb):
            return torch.sigmoid(xb @ weights + bias) @ w2

        for xb, yb in train_dl:
            pred = model(xb)
    """)
    units = model_units(model)
    assert [(u.fan_in, u.fan_out, u.activation) for u in units] == [(784, 128, "sigmoid"), (128, 10, "linear")]
    assert units[0].init is not None and units[0].init.params == pytest.approx({"std": 1 / 784 ** 0.5})
    assert model.input_hint is not None and model.input_hint.shape == (784,)


@pytest.mark.parametrize("src", [
    # a parameter rebound inside the function is no longer the input as written
    """
    import torch
    w = torch.randn(8, 4, requires_grad=True)
    def f(xb):
        xb = load(xb)
        return torch.tanh(xb @ w)
    f(batch)
    """,
    # inside a Module, tensors with requires_grad belong to the module (no second, raw-tensor model)
    """
    import torch
    import torch.nn as nn
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.randn(32, 32, requires_grad=True)
        def forward(self, x):
            return torch.sigmoid(x @ self.w)
    """,
])
def test_no_raw_model_from_rebound_parameters_or_module_methods(src: str) -> None:
    assert not any(m.name.startswith("tensors") for m in _models(src))


def test_a_name_starting_as_the_parameter_carries_the_chain() -> None:
    model = one("""
        import torch
        ws = [torch.randn(64, 64, requires_grad=True) for _ in range(3)]

        def forward(xb):
            h = xb
            for w in ws:
                h = torch.tanh(h @ w)
            return h

        for xb, _ in loader:
            y_pred = forward(xb)
    """)
    assert [(u.fan_in, u.fan_out, u.activation) for u in model_units(model)] == [(64, 64, "tanh")] * 3


def test_torch_init_functions_read_a_raw_weight_in_their_own_layout() -> None:
    # kaiming_normal_(w) takes fan_in from w.size(1): for x @ w with w (64, 128) that is the layer's
    # fan-out, so σ_w² = 64 · 2/128 = 1, not 2 (checked with torch: Var(x @ w) ≈ 1.0 for unit x)
    from gradlint.gradflow.inits import init_sigma_w2

    model = one("""
        import torch
        import torch.nn as nn
        x = torch.randn(128, 64)
        w1 = torch.empty(64, 128, requires_grad=True)
        nn.init.kaiming_normal_(w1)
        w2 = torch.empty(128, 10, requires_grad=True)
        nn.init.xavier_uniform_(w2)
        y_pred = torch.relu(x @ w1) @ w2
    """)
    units = model_units(model)
    assert [u.init.scheme for u in units if u.init] == ["kaiming_normal", "xavier_uniform"]
    first = units[0].init
    assert first is not None
    assert init_sigma_w2(first.scheme, first.params, 64, 128) == pytest.approx(1.0)


def test_weight_times_data_is_not_a_rescaled_weight() -> None:
    # the polynomial-fit tutorial: scalar weights times a data tensor; no layer, no model, no guess
    assert _models("""
        import math
        import torch
        x = torch.linspace(-math.pi, math.pi, 2000)
        a = torch.randn((), requires_grad=True)
        b = torch.randn((), requires_grad=True)
        for t in range(100):
            y_pred = a + b * x
            loss = (y_pred - torch.sin(x)).pow(2).sum()
            loss.backward()
            with torch.no_grad():
                a -= 1e-6 * a.grad
                b -= 1e-6 * b.grad
    """) == []


# ---------------------------------------------------------------------- raw tensors inside an nn.Module

MODULE = """
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Net(nn.Module):
        def __init__(self, n_in=64, n_out=128):
            super().__init__()
            self.w = {weight}
            self.head = nn.Parameter(torch.randn(n_out, 10) / n_out ** 0.5)

        def forward(self, x):
            return torch.relu({use}) @ self.head
"""


@pytest.mark.parametrize("weight,scheme,params", [
    ("torch.randn(n_in, n_out, requires_grad=True)", "normal", {"std": 1.0}),
    ("nn.Parameter(torch.randn(n_in, n_out))", "normal", {"std": 1.0}),
    ("nn.Parameter(torch.zeros(n_in, n_out))", "zeros", {}),
    ("nn.Parameter(torch.empty(n_in, n_out).normal_(0, 1))", "normal", {"mean": 0.0, "std": 1.0}),
    ("nn.Parameter(torch.Tensor(n_in, n_out).uniform_(-1, 1))", "uniform", {"a": -1.0, "b": 1.0}),
    ("torch.empty(n_in, n_out).normal_(0, 0.5).requires_grad_()", "normal", {"mean": 0.0, "std": 0.5}),
    ("(torch.randn(n_in, n_out) * 0.1).requires_grad_()", "normal", {"std": 0.1}),
])
@pytest.mark.parametrize("use", ["x @ self.w", "x.mm(self.w)", "torch.matmul(x, self.w)", "torch.mm(x, self.w)"])
def test_module_matrix_is_a_dense_layer(weight: str, scheme: str, params: dict[str, float], use: str) -> None:
    model = one(MODULE.format(weight=weight, use=use))
    units = model_units(model)
    assert [(u.fan_in, u.fan_out) for u in units] == [(64, 128), (128, 10)]
    first = units[0].init
    assert first is not None and first.scheme == scheme and dict(first.params) == pytest.approx(params)
    assert not any(layer.kind == LayerKind.UNKNOWN for layer in model.layers())


@pytest.mark.parametrize("weight,use", [
    ("nn.Parameter(torch.randn(n_out, n_in))", "x.mm(self.w.t())"),
    ("nn.Parameter(torch.randn(n_out, n_in))", "x @ self.w.T"),
    ("nn.Parameter(torch.randn(n_out, n_in))", "x @ self.w.transpose(0, 1)"),
    ("nn.Parameter(torch.randn(n_out, n_in))", "torch.matmul(x, torch.t(self.w))"),
    ("nn.Parameter(torch.randn(n_out, n_in))", "F.linear(x, self.w)"),
    ("nn.Parameter(torch.randn(n_in, n_out))", "F.linear(x, self.w.t())"),
    ("torch.randn(n_out, n_in, requires_grad=True)", "F.linear(x, self.w)"),
])
def test_transposed_views_and_linear_layout(weight: str, use: str) -> None:
    units = model_units(one(MODULE.format(weight=weight, use=use)))
    assert [(u.fan_in, u.fan_out) for u in units] == [(64, 128), (128, 10)]


@pytest.mark.parametrize("weight,use,mode", [
    # torch's kaiming reads fan_in from dim 1 of the tensor as created. Measured with torch (4096 x 64
    # unit-variance x): x @ w for w (64, 128) after kaiming_normal_(w): Var 1.00 (the layer's fan_out
    # mode); after kaiming_normal_(w, mode='fan_out'): 1.98 (its fan_in mode); x @ w.t() and
    # F.linear(x, w) for w (128, 64) after kaiming_normal_(w): 1.99 / 2.03 (fan_in mode).
    ("torch.empty(n_in, n_out)", "x @ self.w", 1.0),
    ("torch.empty(n_out, n_in)", "x @ self.w.t()", 0.0),
    ("torch.empty(n_out, n_in)", "F.linear(x, self.w)", 0.0),
])
def test_kaiming_mode_follows_the_layout_the_layer_reads(weight: str, use: str, mode: float) -> None:
    src = MODULE.format(weight=f"nn.Parameter({weight})", use=use).replace(
        "self.head = ", "nn.init.kaiming_normal_(self.w)\n            self.head = ")
    for variant, expected in ((src, mode), (src.replace("kaiming_normal_(self.w)",
                                                        "kaiming_normal_(self.w, mode='fan_out')"), 1.0 - mode)):
        first = model_units(one(variant))[0].init
        assert first is not None and first.scheme == "kaiming_normal"
        assert first.params.get("mode", 0.0) == expected


def test_kaiming_on_an_empty_tensor_before_it_becomes_a_parameter() -> None:
    model = one("""
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                w = torch.empty(64, 128)
                nn.init.kaiming_normal_(w)
                self.w = nn.Parameter(w)

            def forward(self, x):
                return x @ self.w
    """)
    first = model_units(model)[0].init
    assert first is not None and first.scheme == "kaiming_normal" and first.params.get("mode") == 1.0


@pytest.mark.parametrize("weight", [
    "torch.randn(n_in, n_out)",  # a fixed tensor (no requires_grad): not a weight
    "unknown_factory(n_in, n_out)",  # unresolved
])
def test_matmul_with_what_is_not_a_weight_is_an_explicit_unknown(weight: str) -> None:
    model = one(MODULE.format(weight=weight, use="x @ self.w"))
    assert any(layer.kind == LayerKind.UNKNOWN for layer in model.layers())
    assert [(u.fan_in, u.fan_out) for u in model_units(model)][-1:] == [(128, 10)]


def test_requires_grad_attribute_makes_a_module_tensor_a_weight() -> None:
    model = one("""
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.w = torch.randn(64, 128)
                self.w.requires_grad = True

            def forward(self, x):
                return x @ self.w
    """)
    assert [(u.fan_in, u.fan_out) for u in model_units(model)] == [(64, 128)]


def test_module_level_linear_layout_chain() -> None:
    model = one("""
        import torch
        x = torch.randn(128, 256)
        w1 = torch.empty(512, 256).normal_(0, 0.01).requires_grad_()
        w2 = torch.Tensor(10, 512).uniform_(-0.1, 0.1).requires_grad_()
        w3 = torch.empty(512, 256, requires_grad=True)
        for step in range(10):
            y_pred = x.mm(w1.t()).clamp(min=0) @ w2.T
    """)
    units = model_units(model)
    assert [(u.fan_in, u.fan_out) for u in units] == [(256, 512), (512, 10)]
    assert [u.init.scheme for u in units if u.init] == ["normal", "uniform"]


def test_deep_module_raw_tensors_are_flagged_and_the_he_twin_is_clean() -> None:
    src = """
        import torch
        import torch.nn as nn

        class Deep(nn.Module):
            def __init__(self, width=256, depth=8):
                super().__init__()
                self.ws = [{weight} for _ in range(depth)]

            def forward(self, x):
                for w in self.ws:
                    x = torch.relu(x @ w)
                return x
    """
    assert codes(src.format(weight="torch.randn(width, width, requires_grad=True)"))
    assert codes(src.format(weight="(torch.randn(width, width) * (2 / width) ** 0.5).requires_grad_()")) == []


def test_script_model_names_its_output_for_the_dynamic_check() -> None:
    # --dynamic runs such a script up to its first backward and reads this module-level variable
    model = one(TUTORIAL.format(w1="torch.randn(D_in, H, requires_grad=True)", hidden="x.mm(w1).clamp(min=0)"))
    assert (model.build, model.symbol) == ("script", "y_pred")


def test_addmm_and_a_layers_own_weight_read_through_a_transpose() -> None:
    model = one("""
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(64, 32)
                self.w = nn.Parameter(torch.randn(32, 16) * 0.1)
                self.b = nn.Parameter(torch.zeros(16))

            def forward(self, x):
                h = torch.relu(x @ self.fc.weight.t())
                return torch.addmm(self.b, h, self.w)
    """)
    units = model_units(model)
    assert [(u.fan_in, u.fan_out) for u in units] == [(64, 32), (32, 16)]
    layers = [layer for layer in model.layers() if layer.kind == LayerKind.DENSE]
    assert layers[1].weight_init is not None and layers[1].weight_init.params.get("std") == pytest.approx(0.1)
    assert layers[1].bias_init is not None and layers[1].bias_init.scheme == "zeros"
