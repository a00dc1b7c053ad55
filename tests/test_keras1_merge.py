"""Keras 1's ``merge(inputs, mode=...)`` is read as the Keras 2 merge of that mode."""

from __future__ import annotations

import textwrap

import pytest

from gradlint.engine import lint_source

SOURCE = """
from keras.layers import Input, Dense, merge
from keras.models import Model

inp = Input(shape=(64,))
x = Dense(256, activation='relu', init='he_normal')(inp)
for i in range(30):
    y = Dense(256, activation='relu', init='he_normal')(x)
    y = Dense(256, init='he_normal')(y)
    x = merge([x, y], mode={mode})
model = Model(input=inp, output=Dense(1)(x))
"""


def _codes(mode: str) -> list[str]:
    return [d.code for d in lint_source(textwrap.dedent(SOURCE.format(mode=mode)), "k1.py").diagnostics]


def test_sum_is_a_residual_that_grows() -> None:
    assert _codes("'sum'") == ["GRD006"]


@pytest.mark.parametrize("mode", ["lambda t: t[0]", "merge_mode", "'cos'"])
def test_a_mode_that_is_not_a_sum_is_not_a_residual(mode: str) -> None:
    source = textwrap.dedent(SOURCE.format(mode=mode))
    result = lint_source(source, "k1.py")
    assert "GRD006" not in [d.code for d in result.diagnostics]
