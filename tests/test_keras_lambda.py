"""keras ``Lambda(function)``: applied, it runs ``function`` on the tensor as any user function is
read (``lambda t: K.sigmoid(t)`` is a sigmoid); a function gradlint cannot follow stays UNKNOWN."""

from __future__ import annotations

import textwrap

from gradlint.engine import lint_source


def _lint(source: str):  # type: ignore[no-untyped-def]
    return lint_source(textwrap.dedent(source), "lam.py")


def test_lambda_backend_activation_is_the_activation() -> None:
    result = _lint("""
    from tensorflow.keras.layers import Input, Dense, Lambda
    from tensorflow.keras.models import Model
    from tensorflow.keras import backend as K

    inp = Input(shape=(20,))
    x = inp
    for _ in range(10):
        x = Dense(100)(x)
        x = Lambda(lambda t: K.sigmoid(t))(x)
    model = Model(inp, Dense(1)(x))
    """)
    assert [d.code for d in result.diagnostics] == ["GRD001"]


def test_lambda_with_arguments_scaled_residual() -> None:
    # Inception-ResNet style: Lambda(f, arguments={"scale": s}) on [shortcut, branch].
    result = _lint("""
    import keras
    from keras import layers

    inp = keras.Input(shape=(64,))
    x = layers.Dense(64, activation="relu", kernel_initializer="he_normal")(inp)
    for _ in range(20):
        branch = layers.Dense(64, activation="relu", kernel_initializer="he_normal")(x)
        x = layers.Lambda(lambda inputs, scale: inputs[0] + inputs[1] * scale,
                          arguments={"scale": 0.1})([x, branch])
    model = keras.Model(inp, layers.Dense(1)(x))
    """)
    assert not result.diagnostics, [d.message for d in result.diagnostics]


def test_an_unfollowed_lambda_stays_unknown() -> None:
    result = _lint("""
    from keras.models import Sequential
    from keras.layers import Dense, Lambda
    from mylib import mystery

    model = Sequential()
    model.add(Dense(100, input_dim=20, activation='sigmoid'))
    for _ in range(10):
        model.add(Lambda(mystery))
        model.add(Dense(100, activation='sigmoid'))
    model.add(Dense(1))
    """)
    assert not result.diagnostics, [d.message for d in result.diagnostics]
