"""Configuration loops (issue 12.5): a loop over literal configurations that builds one model per
iteration is analysed per configuration, and each distinct finding names its configuration."""

from __future__ import annotations

import textwrap

from gradlint.engine import lint_source

KERAS_BUILD = """
from tensorflow import keras
from tensorflow.keras import layers

def build(initializer, activation="relu"):
    model = keras.Sequential([keras.Input(shape=(784,))])
    for _ in range(4):
        model.add(layers.Dense(256, activation=activation, kernel_initializer=initializer))
    model.add(layers.Dense(10, activation="softmax"))
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    return model
"""


def findings(source: str) -> list[tuple[str, str]]:
    result = lint_source(textwrap.dedent(source), "loops.py")
    return [(d.code, d.message) for d in result.diagnostics]


def test_each_configuration_that_differs_is_named() -> None:
    found = findings(KERAS_BUILD + """
for name, init in [("glorot", "glorot_uniform"), ("zero", "zero"), ("ones", "ones")]:
    model = build(init)
""")
    assert [c for c, _ in found] == ["GRD002", "GRD002"]
    assert found[0][1].endswith("(configuration name='zero', init='zero')")
    assert found[1][1].endswith("(configuration name='ones', init='ones')")


def test_a_correct_loop_is_silent() -> None:
    assert findings(KERAS_BUILD + """
for init in ["glorot_uniform", "he_normal", "lecun_normal"]:
    model = build(init)
""") == []


def test_a_finding_every_configuration_shares_names_none() -> None:
    # the learning rate does not change the model: the one finding holds whatever the configuration
    found = findings(KERAS_BUILD + """
for lr in [0.1, 0.01]:
    model = build("zeros")
""")
    assert [c for c, _ in found] == ["GRD002"]
    assert "configuration" not in found[0][1]


def test_configurations_giving_the_same_finding_are_named_together() -> None:
    found = findings(KERAS_BUILD + """
for init, act in [("zeros", "relu"), ("zeros", "tanh"), ("he_normal", "relu")]:
    model = build(init, act)
""")
    messages = [m for c, m in found if c == "GRD002"]
    assert messages and all("init='zeros'" in m for m in messages), messages
    assert not any("he_normal" in m for m in messages)


def test_nested_loops_name_both_variables() -> None:
    found = findings(KERAS_BUILD + """
for init in ["he_normal", "zeros"]:
    for act in ["relu", "elu"]:
        model = build(init, act)
""")
    assert found and all("init='zeros', act=" in m for _, m in found), found


def test_framework_classes_in_the_configurations_are_named_as_written() -> None:
    found = findings("""
import torch.nn as nn

def mlp(activation, depth=12):
    layers = [nn.Linear(64, 128), activation()]
    for _ in range(depth - 1):
        layers += [nn.Linear(128, 128), activation()]
    return nn.Sequential(*layers, nn.Linear(128, 1))

for activation in [nn.GELU, nn.Sigmoid]:
    model = mlp(activation)
""")
    sigmoid = [m for c, m in found if c == "GRD001"]
    assert len(sigmoid) == 1 and sigmoid[0].endswith("(configuration activation=nn.Sigmoid)"), found


def test_a_loop_building_layers_of_one_model_is_no_configuration_loop() -> None:
    found = findings("""
import torch.nn as nn
layers, previous = [], 32
for width in [64, 128, 256, 256, 256, 256, 256, 256, 128, 64, 32]:
    layers += [nn.Sequential(nn.Linear(previous, width), nn.Sigmoid())]
    previous = width
model = nn.Sequential(*layers)
""")
    assert [c for c, _ in found] == ["GRD001"] and "configuration" not in found[0][1]
