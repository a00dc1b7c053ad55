"""Coding styles of held-out model code that extraction reads exactly, or leaves explicitly unknown."""

from __future__ import annotations

import ast
import textwrap

from gradlint.extract import extract_models
from gradlint.model import Layer, LayerKind, Model


def one(src: str) -> Model:
    found = extract_models(ast.parse(textwrap.dedent(src)))
    assert len(found) == 1, [m.name for m in found]
    return found[0]


def dense_layers(model: Model) -> list[Layer]:
    return [layer for layer in model.layers() if layer.kind == LayerKind.DENSE]


_FLAGGED = """
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.fc1 = nn.Linear(d, d)
            self.fc2 = nn.Linear(d, d)
            self.fc2.{flag} = True

        def forward(self, x):
            return x + self.fc2(self.fc1(x).relu())

    class Net(nn.Module):
        def __init__(self, n=4, d=32):
            super().__init__()
            self.blocks = nn.Sequential(*[Block(d) for _ in range(n)])
            self.apply(self._init)

        def _init(self, m):
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if {check}:
                    nn.init.zeros_(m.weight)

        def forward(self, x):
            return self.blocks(x)
"""


def test_a_flag_set_on_some_layers_is_read_back_by_the_init_hook() -> None:
    for check in ('getattr(m, "is_last", False)', 'hasattr(m, "is_last")'):
        model = one(_FLAGGED.format(flag="is_last", check=check))
        inits = [layer.weight_init.scheme for layer in dense_layers(model) if layer.weight_init]
        assert inits == ["kaiming_normal", "zeros"] * 4, (check, inits)


def test_an_attribute_no_layer_is_given_is_not_guessed_present() -> None:
    # ``padding_idx`` is no flag the file sets: gradlint does not know whether a Linear has it, so the
    # zero init under it is not taken as certain (it was: an unknown attribute read as a method).
    model = one(_FLAGGED.format(flag="is_last", check='getattr(m, "padding_idx", None)'))
    assert not any(layer.weight_init is not None and layer.weight_init.scheme == "zeros"
                   for layer in dense_layers(model))


def test_static_and_class_methods_bind_as_python_binds_them() -> None:
    found = extract_models(ast.parse(textwrap.dedent("""
        import torch
        import torch.nn as nn

        class Base(nn.Module):
            act = staticmethod(torch.sigmoid)

            @staticmethod
            def init_weights(m):
                if isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, std=0.01)

            @classmethod
            def from_config(cls, cfg):
                return cls(depth=cfg["depth"])

            def forward(self, x):
                for layer in self.layers:
                    x = self.act(layer(x))
                return x

        class Stack(Base):
            def __init__(self, depth=2):
                super().__init__()
                self.layers = nn.ModuleList(nn.Linear(16, 16) for _ in range(depth))

        model = Stack.from_config({"depth": 9})
        model.apply(Stack.init_weights)
    """)))
    model = next(m for m in found if m.fully_understood)
    layers = dense_layers(model)
    assert len(layers) == 9
    assert all(layer.weight_init is not None and layer.weight_init.scheme == "normal" for layer in layers)
    assert [n.activation for n in model.layers() if n.kind == LayerKind.ACTIVATION] == ["sigmoid"] * 9


def test_namedtuple_configs_give_their_fields_and_defaults() -> None:
    template = """
        import collections
        import typing
        import torch.nn as nn
        {define}
        HP = HParams({call})

        class Net(nn.Module):
            def __init__(self, hp=HP):
                super().__init__()
                self.layers = nn.ModuleList(nn.Linear(hp.width, hp.width) for _ in range(hp.depth))

            def forward(self, x):
                for layer in self.layers:
                    x = layer(x).sigmoid()
                return x
    """
    cases = [
        ('HParams = collections.namedtuple("HParams", ["depth", "width"])', "depth=7, width=32"),
        ('HParams = collections.namedtuple("HParams", "depth width")', "7, 32"),
        ('HParams = collections.namedtuple("HParams", "width, depth", defaults=[7])', "32"),
        ('HParams = typing.NamedTuple("HParams", [("depth", int), ("width", int)])', "7, width=32"),
    ]
    for define, call in cases:
        model = one(template.format(define=define, call=call))
        layers = dense_layers(model)
        assert len(layers) == 7 and layers[0].fan_in == 32, (define, call)
    unknown = one(template.format(define='HParams = collections.namedtuple("HParams", FIELDS)', call="7, 32"))
    assert not unknown.fully_understood


def test_torch_special_expit_is_the_sigmoid() -> None:
    model = one("""
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 8)

            def forward(self, x):
                return torch.special.expit(self.fc(x))
    """)
    assert [n.activation for n in model.layers() if n.kind == LayerKind.ACTIVATION] == ["sigmoid"]


def _whole_ratio(src: str) -> float:
    from gradlint.analysis.flow import model_segments, segment_flow

    segments = model_segments(one(src))
    flows = [segment_flow(s) for s in segments if s.ends_output]
    assert flows and flows[-1] is not None
    return flows[-1].log10_ratio


def test_an_unknown_input_width_is_read_at_its_most_benign() -> None:
    # A first nn.LazyLinear (input width not written): ‖∂L/∂W‖ of the first layer scales with √fan_in.
    # Fan-in 1 made a vanishing stack look ~√width worse than any real input; square and 1 are both
    # tried and the more benign kept, as for an unknown init.
    template = """
        import torch.nn as nn
        model = nn.Sequential({first}, nn.Sigmoid(), *[m for _ in range(7) for m in (nn.Linear(64, 64), nn.Sigmoid())],
                              nn.Linear(64, 1))
    """
    lazy = _whole_ratio(template.format(first="nn.LazyLinear(64)"))
    square = _whole_ratio(template.format(first="nn.Linear(64, 64)"))
    narrow = _whole_ratio(template.format(first="nn.Linear(1, 64)"))
    assert abs(lazy - square) < 0.05 and lazy > narrow + 0.5


def test_one_minus_a_gate_passes_one_minus_sigma() -> None:
    # Highway carry gate ``(1 - t) * x`` with t = σ(W x − 2) ≈ 0.12: the shortcut passes ≈ 0.88 a layer.
    # ``1 - t`` was read as t itself (a shift was dropped): 20 layers of 0.12 drew GRD003 at ≈ 1e-16 on a
    # model measured healthy (ratio 0.33).
    template = """
        import torch
        import torch.nn as nn

        class Highway(nn.Module):
            def __init__(self, d):
                super().__init__()
                self.h = nn.Linear(d, d)
                self.t = nn.Linear(d, d)
                nn.init.constant_(self.t.bias, -2.0)

            def forward(self, x):
                t = torch.sigmoid(self.t(x))
                return t * torch.relu(self.h(x)) + {carry} * x

        model = nn.Sequential(nn.Linear(16, 64), *[Highway(64) for _ in range(20)], nn.Linear(64, 1))
    """
    carry = _whole_ratio(template.format(carry="(1 - t)"))
    same = _whole_ratio(template.format(carry="t"))
    assert carry > -2.0 and same < carry - 8


def test_map_and_json_literal_configs_build_the_layers() -> None:
    model = one("""
        import json
        import torch.nn as nn

        CFG = json.loads('{"depth": 6, "width": 32}')
        dims = [CFG["width"]] * (CFG["depth"] + 1)
        model = nn.Sequential(*map(lambda a, b: nn.Linear(a, b), dims[:-1], dims[1:]))
    """)
    layers = dense_layers(model)
    assert len(layers) == 6 and layers[0].fan_in == 32


def test_a_constant_added_to_a_layer_output_is_a_bias_offset() -> None:
    template = """
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.layers = nn.ModuleList(nn.Linear(64, 64) for _ in range(4))
                for layer in self.layers:
                    nn.init.xavier_normal_(layer.weight)

            def forward(self, x):
                for layer in self.layers:
                    x = torch.sigmoid(layer(x){shift})
                return x
    """
    assert _whole_ratio(template.format(shift=" + 6.0")) < _whole_ratio(template.format(shift="")) - 4


def test_sum_of_branch_tensors_adds_them() -> None:
    model = one("""
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Linear(16, 16)
                self.branches = nn.ModuleList(nn.Linear(16, 16) for _ in range(3))

            def forward(self, x):
                x = self.stem(x)
                return sum(torch.relu(b(x)) for b in self.branches)
    """)
    assert len(dense_layers(model)) == 4 and model.fully_understood


def test_sparse_init_scale() -> None:
    from gradlint import gradflow

    assert abs(gradflow.init_sigma_w2("sparse", {"sparsity": 0.9, "std": 0.01}, 128, 128) - 128 * 0.1 * 1e-4) < 1e-12


def test_clamp_bounds_that_are_activations() -> None:
    template = """
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 8)

            def forward(self, x):
                return {expr}
    """
    cases = {"self.fc(x).clamp(0, 6)": ["relu6"], "self.fc(x).clamp(min=0)": ["relu"],
             "torch.clamp(self.fc(x), -1, 1)": ["hardtanh"], "self.fc(x).clamp_min(0.0)": ["relu"],
             "self.fc(x).clamp(1e-7, 1 - 1e-7)": []}
    for expr, acts in cases.items():
        model = one(template.format(expr=expr))
        assert [n.activation for n in model.layers() if n.kind == LayerKind.ACTIVATION] == acts, expr
