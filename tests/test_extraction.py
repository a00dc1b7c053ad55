"""Model extraction resolves what a careful reader would — checked on the model description."""

from __future__ import annotations

import ast
import textwrap

from gradlint.analysis.units import model_units
from gradlint.extract import extract_models
from gradlint.model import Gate, Layer, LayerKind, Model, Residual


def models(src: str) -> list[Model]:
    return extract_models(ast.parse(textwrap.dedent(src)))


def one(src: str) -> Model:
    found = models(src)
    assert len(found) == 1, [m.name for m in found]
    return found[0]


def top_kinds(model: Model) -> list[str]:
    out = []
    for node in model.path:
        if isinstance(node, Layer):
            out.append(node.activation if node.kind == LayerKind.ACTIVATION else node.kind.value)
        else:
            out.append(type(node).__name__)
    return out


def test_loops_constants_defaults_and_arithmetic() -> None:
    model = one("""
        import torch.nn as nn
        BASE = 3
        class Net(nn.Module):
            def __init__(self, width=32, depth=BASE * 2 + 1):
                super().__init__()
                layers = []
                for i in range(depth - 1):
                    layers += [nn.Linear(width, width), nn.Sigmoid()]
                layers.append(nn.Linear(width, 1))
                self.body = nn.Sequential(*layers)
            def forward(self, x):
                return self.body(x)
    """)
    units = model_units(model)
    assert len(units) == 7
    assert [u.activation for u in units] == ["sigmoid"] * 6 + ["linear"]
    assert units[0].fan_in == 32 and units[-1].fan_out == 1


def test_comprehension_list_multiplication_and_sharing() -> None:
    model = one("""
        import torch.nn as nn
        model = nn.Sequential(*([nn.Linear(8, 8), nn.Tanh()] * 5))
    """)
    units = model_units(model)
    assert len(units) == 5
    assert len({id(u.layer) for u in units}) == 1  # `[...] * n` repeats the same module object
    model = one("""
        import torch.nn as nn
        model = nn.Sequential(*[nn.Sequential(nn.Linear(8, 8), nn.Tanh()) for _ in range(5)])
    """)
    assert len({id(u.layer) for u in model_units(model)}) == 5


def test_helper_functions_and_block_classes_multiply_layers() -> None:
    model = one("""
        import torch
        import torch.nn as nn
        import torch.nn.functional as fn
        def make_block(d):
            return nn.Sequential(nn.Linear(d, d), nn.BatchNorm1d(d), nn.ReLU())
        class Block(nn.Module):
            def __init__(self, d):
                super().__init__()
                self.inner = make_block(d)
            def forward(self, x):
                return fn.relu(self.inner(x))
        class Net(nn.Module):
            def __init__(self, n=12):
                super().__init__()
                self.blocks = nn.ModuleList(Block(16) for _ in range(n))
            def forward(self, x):
                for block in self.blocks:
                    x = block(x)
                return x
    """)
    assert model.name == "Net"  # the block is owned by the net, not a model of its own
    assert len(model_units(model)) == 12


def test_residual_and_gate_structure() -> None:
    model = one("""
        import torch
        import torch.nn as nn
        class SE(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.fc = nn.Linear(c, c)
            def forward(self, x):
                return x * torch.sigmoid(self.fc(x))
        class Block(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.fc = nn.Linear(c, c)
                self.se = SE(c)
            def forward(self, x):
                identity = x
                out = self.se(torch.relu(self.fc(x)))
                out += identity
                return out
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Linear(4, 8)
                self.block = Block(8)
            def forward(self, x):
                return self.block(self.stem(x))
    """)
    assert top_kinds(model) == ["dense", "Residual"]
    residual = model.path[1]
    assert isinstance(residual, Residual) and residual.shortcut == []
    assert any(isinstance(n, Gate) for n in residual.branch)


def test_apply_with_isinstance_type_and_class_name_filters() -> None:
    model = one("""
        import torch.nn as nn
        def weights_init(m):
            classname = m.__class__.__name__
            if classname.find('Linear') != -1:
                m.weight.data.normal_(0.0, 0.02)
            elif classname.find('BatchNorm') != -1:
                m.weight.data.normal_(1.0, 0.02)
                m.bias.data.fill_(0)
        def zero(m):
            if type(m) == nn.Linear and m.out_features == 1:
                nn.init.zeros_(m.weight)
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Linear(4, 8)
                self.bn = nn.BatchNorm1d(8)
                self.b = nn.Linear(8, 1)
                self.apply(weights_init)
                self.apply(zero)
            def forward(self, x):
                return self.b(self.bn(self.a(x)))
    """)
    a, b = model_units(model)
    assert a.init is not None and a.init.scheme == "normal" and a.init.params["std"] == 0.02
    assert b.init is not None and b.init.scheme == "zeros"


def test_init_loops_over_modules_and_named_parameters() -> None:
    model = one("""
        import torch
        import torch.nn as nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.l1 = nn.Linear(4, 4)
                self.l2 = nn.Linear(4, 4)
                self.l3 = nn.Linear(4, 1)
                for name, p in self.named_parameters():
                    if "weight" in name and p.dim() > 1:
                        nn.init.xavier_uniform_(p)
                for m in self.modules():
                    if isinstance(m, nn.Linear):
                        nn.init.zeros_(m.bias)
                with torch.no_grad():
                    self.l2.weight.fill_(0.5)
            def forward(self, x):
                return self.l3(self.l2(self.l1(x)))
    """)
    schemes = [u.init.scheme for u in model_units(model) if u.init]
    assert schemes == ["xavier_uniform", "constant", "xavier_uniform"]


def test_keras_styles() -> None:
    seq = one("""
        from tensorflow.keras.layers import Dense
        from tensorflow.keras.models import Sequential
        model = Sequential()
        model.add(Dense(64, activation='sigmoid', input_shape=(20,)))
        for _ in range(10):
            model.add(Dense(64, activation='sigmoid'))
        model.add(Dense(1, activation='sigmoid'))
        model.fit(None, None)
    """)
    assert len(model_units(seq)) == 12 and model_units(seq)[0].fan_in == 20
    assert seq.build == "variable" and seq.end_line == 8
    functional = one("""
        import keras
        from keras import layers
        def block(x, units):
            y = layers.Dense(units, activation="relu", kernel_initializer="he_normal")(x)
            y = layers.Dense(units)(y)
            return layers.add([x, y])
        inputs = keras.Input(shape=(32,))
        x = layers.Dense(32)(inputs)
        for _ in range(3):
            x = block(x, 32)
            x = layers.LayerNormalization()(x)
        model = keras.Model(inputs, layers.Dense(1, activation="sigmoid")(x))
    """)
    assert top_kinds(functional).count("Residual") == 3
    sub = one("""
        import tensorflow as tf
        class Net(tf.keras.Model):
            def __init__(self):
                super().__init__()
                self.hidden = [tf.keras.layers.Dense(32, activation=tf.nn.tanh,
                                                     kernel_initializer=tf.keras.initializers.Zeros())
                               for _ in range(4)]
                self.out = tf.keras.layers.Dense(1)
            def call(self, x):
                for layer in self.hidden:
                    x = layer(x)
                return self.out(x)
    """)
    units = model_units(sub)
    assert [u.activation for u in units] == ["tanh"] * 4 + ["linear"]
    assert all(u.init is not None and u.init.scheme == "zeros" for u in units[:4])


def test_unknowns_are_explicit_not_guessed() -> None:
    model = one("""
        import torch.nn as nn
        from .config import DEPTH
        from .blocks import FancyBlock
        class Net(nn.Module):
            def __init__(self, cfg):
                super().__init__()
                self.layers = nn.ModuleList([nn.Linear(8, 8) for _ in range(cfg.depth)])
                self.extra = FancyBlock(8)
            def forward(self, x):
                for layer in self.layers:
                    x = layer(x).sigmoid()
                return self.extra(x)
    """)
    kinds = {n.kind for n in model.path if isinstance(n, Layer)}
    assert LayerKind.UNKNOWN in kinds
    assert len(model_units(model)) <= 1


def test_torch_functional_alias_and_tensor_methods() -> None:
    model = one("""
        import torch
        from torch.nn import functional as fun
        from torch import nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.a, self.b, self.c = nn.Linear(3, 3), nn.Linear(3, 3), nn.Linear(3, 3)
            def forward(self, x):
                x = fun.tanh(self.a(x))
                x = self.b(x).sigmoid()
                return torch.add(x, torch.relu(self.c(x)))
    """)
    assert top_kinds(model) == ["dense", "tanh", "dense", "sigmoid", "Residual"]
