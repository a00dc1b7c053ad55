"""Coding styles extraction reads as the code runs (recall across styles, part 3): layer widths
computed with numpy or torch (``np.linspace`` / ``geomspace`` / ``arange``, ``torch.linspace``),
hyper-parameters in a literal YAML string or an attribute-access config dict (OmegaConf, EasyDict),
GroupNorm read by its group count, Keras ``initializers.deserialize`` and the
``tensorflow.contrib.keras.python.keras`` import paths. The measured fixtures are in
fixtures/recall/{torch,keras}/ (numpy_linspace_*, yaml_literal_*, torch_linspace_*, omegaconf_*,
groupnorm_*, initializers_deserialize_*, tf_contrib_keras_python_*, enum_member_*,
argparse_literal_eval_*, configparser_*)."""

from __future__ import annotations

import ast
import math
import textwrap

import pytest

from gradlint.analysis.flow import model_segments, segment_flow
from gradlint.engine import LintConfig, lint_source
from gradlint.extract import extract_models
from gradlint.extract.yaml_literal import load as yaml_load
from gradlint.model import LayerKind, Model


def models(src: str) -> list[Model]:
    return extract_models(ast.parse(textwrap.dedent(src)))


def only(src: str) -> Model:
    found = models(src)
    assert len(found) == 1, [m.name for m in found]
    return found[0]


def widths(model: Model) -> list[tuple[int | None, int | None]]:
    return [(layer.fan_in, layer.fan_out) for layer in model.layers() if layer.kind == LayerKind.DENSE]


def codes(src: str) -> list[str]:
    return sorted({d.code for d in lint_source(textwrap.dedent(src), "m.py", LintConfig()).diagnostics})


def log10_ratio(src: str) -> float | None:
    """The end-to-end estimate of log10 first/last weight-gradient ratio of the file's only model."""
    result = lint_source(textwrap.dedent(src), "m.py", LintConfig())
    segments = model_segments(result.models[0])
    flows = [(s, segment_flow(s)) for s in segments]
    whole = [f for s, f in flows if f is not None and s.ends_output]
    return whole[-1].log10_ratio if whole else None


# ------------------------------------------------------------------ widths computed with numpy / torch

_NUMPY_MLP = """
    import itertools
    import numpy as np
    import torch.nn as nn

    sizes = {sizes}

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            layers = []
            for a, b in {pairs}:
                layers += [nn.Linear(a, b), nn.Sigmoid()]
            self.body = nn.Sequential(*layers)
            self.head = nn.Linear(int(sizes[-1]), 1)

        def forward(self, x):
            return self.head(self.body(x))
"""


@pytest.mark.parametrize(("sizes", "expected"), [
    ("[int(s) for s in np.linspace(256, 32, 8)]", [256, 224, 192, 160, 128, 96, 64, 32]),
    ("np.linspace(256, 32, 8, dtype=int)", [256, 224, 192, 160, 128, 96, 64, 32]),
    ("np.linspace(100, 10, 4).astype(int).tolist()", [100, 70, 40, 10]),
    ("np.geomspace(512, 16, num=6).astype(int)", [512, 256, 127, 64, 32, 16]),  # as numpy: 127.99999
    ("np.arange(160, 16, -48)", [160, 112, 64]),
    ("(np.linspace(1.0, 0.25, 4) * 128).astype(int)", [128, 96, 64, 32]),
    ("np.array([64, 48, 32])", [64, 48, 32]),
    ("torch.linspace(96, 32, 3).long().tolist()", [96, 64, 32]),
])
@pytest.mark.parametrize("pairs", ["zip(sizes[:-1], sizes[1:])", "itertools.pairwise(sizes)"])
def test_widths_computed_with_numpy_are_read_number_by_number(sizes: str, expected: list[int], pairs: str) -> None:
    src = _NUMPY_MLP.format(sizes=sizes, pairs=pairs)
    if "torch." in sizes:
        src = src.replace("import numpy as np", "import numpy as np\n    import torch")
    model = only(src)
    assert model.fully_understood
    assert widths(model) == list(zip(expected[:-1], expected[1:], strict=True)) + [(expected[-1], 1)]


def test_a_deep_sigmoid_stack_with_numpy_widths_is_reported_and_its_relu_twin_is_not() -> None:
    # measured (fixtures/recall/torch/numpy_linspace_pairs_*): sigmoid 1.3e-09, ReLU + He 0.57
    sigmoid = _NUMPY_MLP.format(sizes="[int(s) for s in np.linspace(256, 32, 12)]", pairs="zip(sizes, sizes[1:])")
    assert codes(sigmoid) == ["GRD001"]
    relu = sigmoid.replace("nn.Sigmoid()", "nn.ReLU()").replace(
        "layers += [nn.Linear(a, b), nn.ReLU()]",
        "layers += [nn.Linear(a, b), nn.ReLU()]\n                nn.init.kaiming_normal_(layers[-2].weight)")
    assert codes(relu) == []


def test_a_long_numpy_array_stays_data_not_widths() -> None:
    # np.linspace(0, 1, 600000) is a time axis: its shape is what a recurrent model's data tells
    model = only("""
        import numpy as np
        import torch
        import torch.nn as nn

        grid = np.linspace(0, 1, 100000)
        widths = [64] * 3

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fcs = nn.ModuleList([nn.Linear(len(grid), 64)] + [nn.Linear(w, w) for w in widths])

            def forward(self, x):
                for fc in self.fcs:
                    x = fc(x)
                return x
    """)
    assert widths(model)[0] == (None, 64)


def test_a_keras_loop_over_numpy_widths_builds_each_layer() -> None:
    model = only("""
        from itertools import pairwise
        import numpy as np
        import keras
        from keras import layers

        units = np.linspace(128, 32, 10, dtype=int)

        def build_model():
            inp = keras.Input(shape=(128,))
            x = inp
            for _, u in pairwise(units):
                x = layers.Dense(int(u), activation="sigmoid")(x)
            return keras.Model(inp, layers.Dense(1)(x))
    """)
    assert [w[1] for w in widths(model)] == [117, 106, 96, 85, 74, 64, 53, 42, 32, 1]


# ------------------------------------------------------------------ configs: YAML text, attribute dicts


def test_yaml_literal_reads_as_pyyaml_safe_load_does() -> None:
    text = textwrap.dedent("""
        model:
          hidden: 64   # width
          widths: [64, 32]
          act: sigmoid
          flag: yes
          lr: 1e-3
          std: 0.5
          none: ~
        layers:
          - units: 64
            act: relu
          - units: 32
        quoted: 'it''s'
    """)
    assert yaml_load(text) == {
        "model": {"hidden": 64, "widths": [64, 32], "act": "sigmoid", "flag": True, "lr": "1e-3", "std": 0.5,
                  "none": None},
        "layers": [{"units": 64, "act": "relu"}, {"units": 32}], "quoted": "it's"}


@pytest.mark.parametrize("text", ["a: &x 1\nb: *x\n", "a: |\n  text\n", "a: 012\n", "a: [1, [2]]\n", "a: !!int 1\n"])
def test_yaml_this_reader_is_not_sure_of_is_unknown(text: str) -> None:
    with pytest.raises(ValueError):
        yaml_load(text)


_YAML_NET = '''
    import yaml
    import torch.nn as nn

    CONFIG = yaml.safe_load("""
    model:
      in_dim: 32
      hidden: 64
      depth: {depth}
      activation: {act}
    """)

    class Net(nn.Module):
        def __init__(self, in_dim, hidden, depth, activation):
            super().__init__()
            act = nn.Sigmoid if activation == "sigmoid" else nn.ReLU
            layers = [nn.Linear(in_dim, hidden), act()]
            for _ in range(depth - 1):
                layers += [nn.Linear(hidden, hidden), act()]
            self.body = nn.Sequential(*layers, nn.Linear(hidden, 1))

        def forward(self, x):
            return self.body(x)

    model = Net(**CONFIG["model"])
'''


def test_a_yaml_config_in_the_file_gives_the_model_its_depth() -> None:
    # measured (fixtures/recall/torch/yaml_literal_config_*): 12 sigmoid 2.4e-11; 3 ReLU 0.76
    model = only(_YAML_NET.format(depth=12, act="sigmoid"))
    assert model.fully_understood and len(widths(model)) == 13
    assert codes(_YAML_NET.format(depth=12, act="sigmoid")) == ["GRD001"]
    assert codes(_YAML_NET.format(depth=3, act="relu")) == []


def test_a_yaml_config_with_an_anchor_stays_unknown() -> None:
    src = _YAML_NET.format(depth="&d 12", act="sigmoid")
    assert not only(src).fully_understood
    assert codes(src) == []


@pytest.mark.parametrize("make", [
    'OmegaConf.create({"model": {"depth": 12, "width": 64}})',
    'OmegaConf.create("model:\\n  depth: 12\\n  width: 64\\n")',
    'EasyDict({"model": {"depth": 12, "width": 64}})',
    'ConfigDict({"model": {"depth": 12, "width": 64}})',
])
def test_attribute_access_config_dicts_are_read_by_attribute_and_key(make: str) -> None:
    model = only(f"""
        from omegaconf import OmegaConf
        from easydict import EasyDict
        from ml_collections import ConfigDict
        import torch.nn as nn

        cfg = {make}

        class Net(nn.Module):
            def __init__(self, cfg):
                super().__init__()
                m = cfg.model
                layers = [nn.Linear(24, m.width), nn.Sigmoid()]
                for _ in range(cfg["model"]["depth"] - 1):
                    layers += [nn.Linear(m.width, m.get("width", 1)), nn.Sigmoid()]
                self.net = nn.Sequential(*layers, nn.Linear(m.width, 1))

            def forward(self, x):
                return self.net(x)

        model = Net(cfg)
    """)
    assert model.fully_understood and len(widths(model)) == 13


# ------------------------------------------------------------------ GroupNorm by its groups

_GN_CONV = """
    import torch.nn as nn

    class Net(nn.Module):
        def __init__(self, c=32, depth=12):
            super().__init__()
            layers = [nn.Conv2d(3, c, 3, padding=1)]
            for _ in range(depth):
                layers += [{norm}, nn.Sigmoid(), nn.Conv2d(c, c, 3, padding=1)]
            self.features = nn.Sequential(*layers)
            self.head = nn.Linear(c, 1)

        def forward(self, x):
            return self.head(self.features(x).mean(dim=(2, 3)))
"""


def test_groupnorm_with_a_channel_per_group_is_estimated_as_instance_norm() -> None:
    # measured (tools/gradgen.py compare, 3 seeds, input 3x16x16): GroupNorm(32, 32) 1.8e-03,
    # InstanceNorm2d 1.8e-03, BatchNorm2d 2.9e-03 (the sigmoid's per-channel offsets removed);
    # GroupNorm(1, 32) 5.0e-07 (LayerNorm over C x H x W: offsets kept). Before, every GroupNorm was
    # LayerNorm to the estimate: GroupNorm(32, 32) 1.3e-07, reported GRD001.
    per_channel = log10_ratio(_GN_CONV.format(norm="nn.GroupNorm(c, c)"))
    instance = log10_ratio(_GN_CONV.format(norm="nn.InstanceNorm2d(c, affine=True)"))
    one_group = log10_ratio(_GN_CONV.format(norm="nn.GroupNorm(1, c)"))
    assert per_channel is not None and instance is not None and one_group is not None
    assert abs(per_channel - math.log10(1.8e-3)) < 1.0 and per_channel == pytest.approx(instance)
    assert abs(one_group - math.log10(5.0e-7)) < 1.0
    assert codes(_GN_CONV.format(norm="nn.GroupNorm(c, c)")) == []
    assert codes(_GN_CONV.format(norm="nn.GroupNorm(num_groups=1, num_channels=c)")) == ["GRD001"]


@pytest.mark.parametrize(("norm", "stats"), [
    ("nn.GroupNorm(32, 32)", "batch"), ("nn.GroupNorm(1, 32)", "layer"), ("nn.GroupNorm(8, 32)", None),
    ("nn.GroupNorm(num_channels=16, num_groups=16)", "batch"),
])
def test_groupnorm_statistics_come_from_its_arguments(norm: str, stats: str | None) -> None:
    model = only(f"""
        import torch.nn as nn
        model = nn.Sequential(nn.Conv2d(3, 32, 3), {norm}, nn.ReLU())
    """)
    [layer] = [n for n in model.layers() if n.kind == LayerKind.NORMALIZATION]
    assert layer.norm_stats == stats


def test_keras_groupnormalization_minus_one_is_instance_norm() -> None:
    model = only("""
        import keras
        from keras import layers
        model = keras.Sequential([keras.Input((16, 16, 3)), layers.Conv2D(32, 3), layers.GroupNormalization(groups=-1),
                                  layers.Conv2D(32, 3), layers.GroupNormalization(1)])
    """)
    assert [n.norm_stats for n in model.layers() if n.kind == LayerKind.NORMALIZATION] == ["batch", "layer"]


# ------------------------------------------------------------------ Keras initializers and TF 1 Keras paths


def test_keras_initializers_deserialize_is_read_as_get() -> None:
    model = only("""
        import keras
        from keras import layers, initializers

        def build_model():
            cfg = {"class_name": "VarianceScaling", "config": {"scale": 6.0, "mode": "fan_in",
                                                               "distribution": "truncated_normal"}}
            inputs = keras.Input((64,))
            h = inputs
            for _ in range(12):
                h = layers.Dense(128, kernel_initializer=initializers.deserialize(cfg))(h)
                h = layers.Activation("relu")(h)
            return keras.Model(inputs, layers.Dense(1)(h))
    """)
    inits = [layer.weight_init for layer in model.layers() if layer.kind == LayerKind.DENSE][:-1]
    assert all(i is not None and i.scheme == "variance_scaling" and i.params.get("scale") == 6.0 for i in inits)


@pytest.mark.parametrize("path", ["tensorflow.contrib.keras.python.keras", "tensorflow.contrib.keras.api.keras"])
def test_tf_contrib_keras_module_paths_read_as_keras(path: str) -> None:
    model = only(f"""
        from {path}.models import Sequential
        from {path}.layers import Dense
        from {path} import initializers

        model = Sequential()
        model.add(Dense(64, activation="sigmoid", input_dim=20))
        for _ in range(10):
            model.add(Dense(64, activation="sigmoid", kernel_initializer=initializers.glorot_uniform()))
        model.add(Dense(1))
    """)
    assert model.fully_understood
    assert all(layer.weight_init is not None and layer.weight_init.scheme == "glorot_uniform"
               for layer in model.layers() if layer.kind == LayerKind.DENSE)


# ------------------------------------------------------------------ Enum members

_ENUM_NET = """
    from enum import Enum
    import torch.nn as nn

    class Act({bases}):
        SIGMOID = {sigmoid}
        RELU = {relu}

    class Net(nn.Module):
        def __init__(self, act=Act.{member}, depth=12):
            super().__init__()
            {choose}
            mods = []
            for i in range(depth):
                mods += [nn.Linear(32 if i == 0 else 64, 64), make()]
            self.f = nn.Sequential(*mods, nn.Linear(64, 1))

        def forward(self, x):
            return self.f(x)
"""


@pytest.mark.parametrize(("bases", "sigmoid", "relu", "choose"), [
    ("Enum", "nn.Sigmoid", "nn.ReLU", "make = act.value"),
    ("str, Enum", '"sigmoid"', '"relu"', 'make = nn.Sigmoid if act.value == "sigmoid" else nn.ReLU'),
    ("str, Enum", '"sigmoid"', '"relu"', "make = nn.Sigmoid if act is Act.SIGMOID else nn.ReLU"),
    ("Enum", "1", "2", "make = {'SIGMOID': nn.Sigmoid, 'RELU': nn.ReLU}[act.name]"),
    ("Enum", "1", "2", "make = nn.ReLU if act == Act.RELU else nn.Sigmoid"),
])
def test_an_enum_member_gives_its_value_name_and_identity(bases: str, sigmoid: str, relu: str, choose: str) -> None:
    # measured (fixtures/recall/torch/enum_member_value_*): 12 sigmoid 2.4e-11; 3 ReLU 0.76
    for member, activation in (("SIGMOID", "sigmoid"), ("RELU", "relu")):
        src = _ENUM_NET.format(bases=bases, sigmoid=sigmoid, relu=relu, choose=choose, member=member)
        model = only(src)
        assert model.fully_understood
        assert {layer.activation for layer in model.layers() if layer.kind == LayerKind.ACTIVATION} == {activation}


# ------------------------------------------------------------------ loops of unknown length


@pytest.mark.parametrize("src", [
    """
    import torch
    import torch.nn as nn

    class Net(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.fc = nn.Linear(8, 8)
            self.n = n

        def forward(self, x):
            for _ in range(self.n):
                x = torch.sigmoid(self.fc(x))
            return x

    model = Net(int(input()))
    """,
    """
    import keras
    from keras import layers

    def build_model(units):
        inp = keras.Input(shape=(128,))
        x = inp
        for u in units:
            x = layers.Dense(u, activation="sigmoid")(x)
        return keras.Model(inp, layers.Dense(1)(x))

    model = build_model(input())
    """,
])
def test_a_loop_of_unknown_length_leaves_the_model_not_fully_understood(src: str) -> None:
    # The body runs once; the path says the loop repeats it an unknown number of times (main reads this too).
    model = only(src)
    assert not model.fully_understood
    assert any("unknown depth" in (u.reason or "") for u in model.layers() if u.kind == LayerKind.UNKNOWN)


def test_a_time_loop_over_a_tensor_axis_keeps_its_one_step() -> None:
    model = only("""
        import torch
        import torch.nn as nn

        class Cell(nn.Module):
            def __init__(self):
                super().__init__()
                self.cell = nn.RNNCell(4, 16)
                self.out = nn.Linear(16, 1)

            def forward(self, x):
                h = torch.zeros(x.size(0), 16)
                for t in range(x.size(1)):
                    h = self.cell(x[:, t], h)
                return self.out(h)
    """)
    assert not any(u.kind == LayerKind.UNKNOWN for u in model.layers())


# ------------------------------------------------------------------ argparse converters, INI and TOML text

_ARGPARSE_HIDDEN = """
    import argparse
    import ast
    import json
    import torch.nn as nn

    def parse_widths(text):
        return [int(w) for w in text.split(",")]

    parser = argparse.ArgumentParser()
    parser.add_argument("--hidden", type={kind}, default={default!r})
    args = parser.parse_args([])

    def build_model():
        layers, d = [], 32
        for h in args.hidden:
            layers += [nn.Linear(d, h), nn.Sigmoid()]
            d = h
        return nn.Sequential(*layers, nn.Linear(d, 1))
"""


@pytest.mark.parametrize("kind", ["ast.literal_eval", "json.loads"])
def test_argparse_applies_a_literal_converter_to_its_string_default(kind: str) -> None:
    # measured (fixtures/recall/torch/argparse_literal_eval_hidden_*): 12 sigmoid 2.4e-11; 3 tanh 0.79
    model = only(_ARGPARSE_HIDDEN.format(kind=kind, default="[64, 64, 64]"))
    assert widths(model) == [(32, 64), (64, 64), (64, 64), (64, 1)]


def test_a_string_default_under_a_user_converter_is_unknown_not_its_text() -> None:
    # Before: args.hidden was the text "64,64,64" and the loop built a layer per character.
    model = only(_ARGPARSE_HIDDEN.format(kind="parse_widths", default="64,64,64"))
    assert not model.fully_understood
    assert codes(_ARGPARSE_HIDDEN.format(kind="parse_widths", default="64," * 11 + "64")) == []


_INI_NET = '''
    import configparser
    import torch.nn as nn

    config = configparser.{cls}()
    config.read_string("""
    [DEFAULT]
    width = 64

    [model]
    depth = {depth}
    scaled = yes
    """)

    def build_model():
        depth = config.getint("model", "depth")
        width = int(config["model"]["width"])
        assert config["model"].getboolean("scaled")
        layers = [nn.Linear(32, width), nn.Sigmoid()]
        for _ in range(depth - config.getint("model", "missing", fallback=1)):
            layers += [nn.Linear(width, width), nn.Sigmoid()]
        return nn.Sequential(*layers, nn.Linear(width, 1))
'''


@pytest.mark.parametrize("cls", ["ConfigParser", "RawConfigParser"])
def test_a_configparser_text_gives_the_model_its_depth(cls: str) -> None:
    # measured (fixtures/recall/torch/configparser_read_string_*): 12 sigmoid 2.4e-11; 3 tanh 0.79
    model = only(_INI_NET.format(cls=cls, depth=12))
    assert model.fully_understood and len(widths(model)) == 13
    assert codes(_INI_NET.format(cls=cls, depth=12)) == ["GRD001"]


def test_a_configparser_that_reads_files_is_unknown_past_its_text() -> None:
    src = _INI_NET.format(cls="ConfigParser", depth=12).replace(
        'def build_model():', 'config.read("settings.ini")\n\n    def build_model():')
    assert not only(src).fully_understood


@pytest.mark.skipif(__import__("sys").version_info < (3, 11), reason="tomllib is the standard library's from 3.11")
def test_tomllib_text_is_read() -> None:
    model = only('''
        import tomllib
        import torch.nn as nn

        CFG = tomllib.loads("""
        [model]
        depth = 12
        width = 64
        """)

        def build_model(depth=CFG["model"]["depth"], width=CFG["model"]["width"]):
            layers = [nn.Linear(32, width), nn.Sigmoid()]
            for _ in range(depth - 1):
                layers += [nn.Linear(width, width), nn.Sigmoid()]
            return nn.Sequential(*layers, nn.Linear(width, 1))
    ''')
    assert model.fully_understood and len(widths(model)) == 13
