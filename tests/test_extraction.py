"""Model extraction resolves what a careful reader would — checked on the model description."""

from __future__ import annotations

import ast
import textwrap

import pytest

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


# --------------------------------------------------------------------------- Keras Flatten widths

def _dense_fan_ins(model: Model) -> list[int | None]:
    return [u.fan_in for u in model_units(model) if u.layer.kind == LayerKind.DENSE]


def _flow_fan_ins(model: Model) -> list[int | None]:
    from gradlint.analysis.flow import model_segments
    from gradlint.gradflow.chain import WeightLayer

    return [item.fan_in for seg in model_segments(model) for item in seg.items if isinstance(item, WeightLayer)]


def _reshapes(model: Model) -> list[int | None]:
    return [n.fan_out for n in model.path if isinstance(n, Layer) and n.op in ("Flatten", "Reshape")]


MNIST_CNN = """
    from tensorflow import keras
    from tensorflow.keras import layers
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dense(128, activation="relu", kernel_initializer=keras.initializers.RandomNormal(stddev=0.05)),
        layers.Dense(10, activation="softmax"),
    ])
"""


def test_keras_flatten_after_convs_is_the_flattened_size() -> None:
    model = one(MNIST_CNN)
    assert _reshapes(model) == [5 * 5 * 64]  # 28 -conv3-> 26 -pool-> 13 -conv3-> 11 -pool-> 5
    assert _dense_fan_ins(model) == [1600, 128]
    assert _flow_fan_ins(model) == [9 * 1, 9 * 32, 1600, 128]
    from gradlint.analysis.flow import model_segments
    from gradlint.gradflow.chain import WeightLayer

    dense = [i for i in model_segments(model)[0].items if isinstance(i, WeightLayer)][2]
    assert abs(dense.sigma_w2 - 0.05**2 * 1600) < 1e-9  # RandomNormal: σ_w² = σ²·fan_in, not σ²·64


def test_keras_flatten_follows_strides_padding_dilation_and_pooling() -> None:
    model = one("""
        import keras
        from keras import layers
        inputs = keras.Input(shape=(32, 32, 3))
        x = layers.Conv2D(16, (3, 3), strides=2, padding="same")(inputs)        # 16 x 16
        x = layers.Conv2D(16, 3, dilation_rate=2)(x)                             # 12 x 12
        x = layers.AveragePooling2D(3, strides=1)(x)                             # 10 x 10
        x = layers.MaxPooling2D(pool_size=(2, 3), strides=(2, 2), padding="same")(x)   # 5 x 5
        x = layers.BatchNormalization()(x)
        x = layers.Dropout(0.2)(x)
        x = layers.Flatten()(x)
        model = keras.Model(inputs, layers.Dense(10)(x))
    """)
    assert _reshapes(model) == [5 * 5 * 16] and _dense_fan_ins(model) == [400]


def test_keras_flatten_of_sequences_embeddings_and_plain_inputs() -> None:
    conv1d, embedded, plain, keras3 = models("""
        import keras
        from keras import layers
        conv1d = keras.Sequential([layers.Conv1D(8, 5, input_shape=(100, 4)), layers.MaxPooling1D(4),
                                   layers.Flatten(), layers.Dense(1)])
        embedded = keras.Sequential([keras.Input(shape=(50,)), layers.Embedding(1000, 16), layers.Flatten(),
                                     layers.Dense(1, activation="sigmoid")])
        plain = keras.Sequential([layers.Flatten(input_shape=(28, 28)), layers.Dense(10)])
        keras3 = keras.Sequential()
        keras3.add(layers.InputLayer(shape=(8, 8, 3)))
        keras3.add(layers.Conv2D(4, 3, padding="same"))
        keras3.add(layers.Flatten())
        keras3.add(layers.Dense(1))
    """)
    assert _dense_fan_ins(conv1d) == [24 * 8]  # 100 -5-> 96 -pool 4-> 24
    assert _dense_fan_ins(embedded) == [50 * 16]
    assert _dense_fan_ins(plain) == [784]
    assert _dense_fan_ins(keras3) == [8 * 8 * 4]


def test_keras_reshape_width_as_computed_or_written() -> None:
    computed, written = models("""
        import keras
        from keras import layers
        computed = keras.Sequential([keras.Input(shape=(8, 8, 4)), layers.Reshape((-1,)), layers.Dense(3)])
        class Net(keras.Model):
            def __init__(self):
                super().__init__()
                self.conv = layers.Conv2D(64, 3)
                self.reshape = layers.Reshape((49, 64))
                self.fc = layers.Dense(10)
            def call(self, x):
                return self.fc(self.reshape(self.conv(x)))
        written = Net()
    """)
    assert _dense_fan_ins(computed) == [256]
    assert _dense_fan_ins(written) == [64]  # the last axis as the target shape writes it


def test_keras_flatten_width_is_unknown_when_the_shape_is_not_known() -> None:
    """Never the channel count of the last conv: a shape gradlint does not follow makes the width unknown."""
    found = models("""
        import keras
        from keras import layers
        class Net(keras.Model):          # no input shape stated
            def __init__(self):
                super().__init__()
                self.conv = layers.Conv2D(64, 3)
                self.flat = layers.Flatten()
                self.fc = layers.Dense(10)
            def call(self, x):
                return self.fc(self.flat(self.conv(x)))
        net = Net()
        padded = keras.Sequential([keras.Input(shape=(28, 28, 1)), layers.ZeroPadding2D(pad), layers.Conv2D(8, 3),
                                   layers.Flatten(), layers.Dense(10)])
        transposed = keras.Sequential([keras.Input(shape=(7, 7, 8)),
                                       layers.Conv2DTranspose(8, 3, strides=2, output_padding=1),
                                       layers.Flatten(), layers.Dense(10)])
        causal = keras.Sequential([keras.Input(shape=(20, 3)), layers.Conv1D(8, 3, padding="causal"),
                                   layers.Flatten(), layers.Dense(10)])
        first = keras.Sequential([keras.Input(shape=(28, 28, 1)),
                                  layers.Conv2D(8, 3, data_format="channels_first"),
                                  layers.Flatten(), layers.Dense(10)])
    """)
    assert len(found) == 5
    for model in found:
        assert _reshapes(model) == [None], model.name
        # the estimate takes an unknown input width as a square layer's (the head's own 10 units, a stated
        # assumption), never the channel count of the conv before the Flatten
        assert _dense_fan_ins(model) == [None] and _flow_fan_ins(model)[-1] == 10, model.name


@pytest.mark.parametrize("layers_src,width", [
    # widths as Keras 3 reports them (model.output_shape)
    ('keras.Input(shape=(7, 7, 8)), layers.Conv2DTranspose(8, 3, strides=2)', 1800),
    ('keras.Input(shape=(5, 6, 8)), layers.Conv2DTranspose(4, (4, 3), strides=(2, 3), padding="same")', 720),
    ('keras.Input(shape=(3, 32, 30)), layers.Conv2D(8, 3, strides=2, data_format="channels_first"), '
     'layers.MaxPooling2D(2, data_format="channels_first")', 392),
    ('keras.Input(shape=(28, 28, 1)), layers.ZeroPadding2D(2), layers.Conv2D(8, 3)', 7200),
    ('keras.Input(shape=(10, 12, 3)), layers.ZeroPadding2D(((1, 2), (0, 3))), layers.Cropping2D((1, 2)), '
     'layers.UpSampling2D((2, 3))', 2178),
    ('keras.Input(shape=(3, 10, 12)), layers.ZeroPadding2D(1, data_format="channels_first"), '
     'layers.UpSampling2D(2, data_format="channels_first")', 2016),
    ('keras.Input(shape=(20, 4)), layers.ZeroPadding1D((1, 3)), layers.UpSampling1D(3), layers.Cropping1D(2)', 272),
])
def test_keras_flatten_width_through_transposed_padding_and_channels_first(layers_src: str, width: int) -> None:
    model = one(f"""
        import keras
        from keras import layers
        model = keras.Sequential([{layers_src}, layers.Flatten(), layers.Dense(10)])
    """)
    assert _dense_fan_ins(model) == [width]


def test_keras_channels_first_conv_reads_its_channels_from_the_first_axis() -> None:
    model = one("""
        import keras
        from keras import layers
        model = keras.Sequential([keras.Input(shape=(3, 32, 30)), layers.Conv2D(8, 3, data_format="channels_first"),
                                  layers.GlobalAveragePooling2D(data_format="channels_first"), layers.Dense(1)])
    """)
    conv = next(layer for layer in model.layers() if layer.op == "Conv2D")
    assert conv.fan_in == 3 * 9
    assert _dense_fan_ins(model) == [8]


def test_keras_global_pooling_keeps_the_channels() -> None:
    model = one("""
        import keras
        from keras import layers
        model = keras.Sequential([keras.Input(shape=(32, 32, 3)), layers.Conv2D(64, 3), layers.GlobalAveragePooling2D(),
                                  layers.Dense(10)])
    """)
    assert _dense_fan_ins(model) == [64] and _flow_fan_ins(model) == [27, 64]


def test_torch_flatten_keeps_explicit_in_features() -> None:
    model = one("""
        import torch.nn as nn
        model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(32 * 13 * 13, 10))
    """)
    assert _dense_fan_ins(model) == [5408] and _flow_fan_ins(model) == [9, 5408]


def test_keras_flatten_after_merges() -> None:
    added, concatenated, functional_concat, unaligned = models("""
        import keras
        from keras import layers
        inputs = keras.Input(shape=(16, 16, 8))
        x = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
        x = layers.Add()([inputs, layers.Conv2D(8, 3, padding="same")(x)])
        added = keras.Model(inputs, layers.Dense(10)(layers.Flatten()(x)))

        a = keras.Input(shape=(4, 4, 3))
        y = layers.Concatenate()([a, layers.Conv2D(5, 1)(a)])
        concatenated = keras.Model(a, layers.Dense(1)(layers.Flatten()(y)))

        b = keras.Input(shape=(10, 2))
        z = layers.concatenate([b, layers.Dense(6)(b)], axis=2)
        functional_concat = keras.Model(b, layers.Dense(1)(layers.Flatten()(z)))

        c = keras.Input(shape=(4, 4, 3))
        w = layers.Concatenate(axis=1)([c, layers.Conv2D(5, 1)(c)])   # channels differ: not along axis 1
        unaligned = keras.Model(c, layers.Dense(1)(layers.Flatten()(w)))
    """)
    assert _reshapes(added) == [16 * 16 * 8]
    assert _reshapes(concatenated) == [4 * 4 * 8]
    assert _reshapes(functional_concat) == [10 * 8]
    assert _reshapes(unaligned) == [None]


def test_inits_rescaled_in_place_keep_their_scheme_times_the_factor() -> None:
    """``w.data.mul_(k)``, ``w.div_(k)``, ``w *= k``, ``w.data = w.data * k`` after any init (the default
    included) scale every drawn value: σ_w² (and a random bias's variance) times k²; an unknown factor
    leaves the init unknown. ``calculate_gain`` is a number."""
    from gradlint.analysis.inits import bias_var_of, sigma_w2_of

    model = one("""
        import torch
        import torch.nn as nn
        class Net(nn.Module):
            def __init__(self, k):
                super().__init__()
                self.a = nn.Linear(64, 64)
                self.b = nn.Linear(64, 64)
                self.c = nn.Linear(64, 64)
                self.d = nn.Linear(64, 64)
                self.e = nn.Linear(64, 64)
                self.f = nn.Linear(64, 64)
                self.a.weight.data.mul_(10)
                nn.init.kaiming_normal_(self.b.weight)
                self.b.weight.div_(2)
                with torch.no_grad():
                    self.c.weight *= 3
                self.d.weight.data = self.d.weight.data * 0.5
                self.e.weight.data.mul_(k)
                nn.init.xavier_uniform_(self.f.weight, gain=nn.init.calculate_gain("tanh") * 4)
                self.f.bias.data.mul_(4)
            def forward(self, x):
                return self.f(self.e(self.d(self.c(self.b(self.a(x))))))
    """)
    units = {u.layer.name: u for u in model_units(model)}
    sigma = {name: sigma_w2_of(u)[0] for name, u in units.items()}
    assert abs(sigma["self.a"] - 100 / 3) < 1e-9  # type: ignore[operator]
    assert abs(sigma["self.b"] - 2 / 4) < 1e-9  # type: ignore[operator]
    assert abs(sigma["self.c"] - 9 / 3) < 1e-9  # type: ignore[operator]
    assert abs(sigma["self.d"] - 0.25 / 3) < 1e-9  # type: ignore[operator]
    assert sigma["self.e"] is None  # k unknown
    assert abs(sigma["self.f"] - (5 / 3 * 4) ** 2) < 1e-9  # type: ignore[operator]
    assert abs(bias_var_of(units["self.f"]) - 16 / (3 * 64)) < 1e-12  # U(±1/√64) times 4
    assert units["self.a"].init is not None and "scaled by 10" in units["self.a"].init.describe()


def test_layer_subclass_overriding_only_reset_parameters_is_that_layer_with_its_init() -> None:
    """torch's constructor calls ``reset_parameters``: an override decides the init; one that draws nothing
    leaves torch.empty's garbage (unknown). A subclass defining anything else is not read this way."""
    from gradlint.analysis.inits import sigma_w2_of

    def first_unit(body: str):  # type: ignore[no-untyped-def]
        model = one(f"""
            import torch.nn as nn
            class Wide(nn.Linear):
{textwrap.indent(textwrap.dedent(body), " " * 16)}
            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.a = Wide(64, 64)
                    self.b = nn.Linear(64, 1)
                def forward(self, x):
                    return self.b(self.a(x).relu())
        """)
        return model_units(model)[0]

    drawn = first_unit("""
        def reset_parameters(self):
            nn.init.normal_(self.weight, std=1.0)
            nn.init.zeros_(self.bias)
    """)
    assert drawn.layer.kind == LayerKind.DENSE and sigma_w2_of(drawn)[0] == 64.0
    assert drawn.layer.bias_init is not None and drawn.layer.bias_init.scheme == "zeros"
    empty = first_unit("""
        def reset_parameters(self):
            pass
    """)
    assert sigma_w2_of(empty)[0] is None
    with_forward = first_unit("""
        def reset_parameters(self):
            nn.init.normal_(self.weight, std=1.0)
        def forward(self, x):
            return super().forward(x) * 2
    """)
    assert with_forward.layer.kind != LayerKind.DENSE or sigma_w2_of(with_forward)[0] != 64.0
