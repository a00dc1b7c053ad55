"""Keras spellings read as what Keras runs: ``activations.get``, Keras 1 ``initializations`` and
``Merge``, ``Initializer`` subclasses, ``TimeDistributed``, Keras 1 conv geometry. Checked on the
model description (gradlint.extract), never by running Keras."""

from __future__ import annotations

import ast
import textwrap

import pytest

from gradlint.analysis.units import model_units
from gradlint.extract import extract
from gradlint.model import LayerKind, Model


def one(src: str) -> Model:
    models = extract(ast.parse(textwrap.dedent(src))).models
    assert len(models) == 1, [m.name for m in models]
    return models[0]


@pytest.mark.parametrize("spelled,activation", [
    ("keras.activations.get('sigmoid')", "sigmoid"),
    ("keras.activations.deserialize('tanh')", "tanh"),
    ("keras.activations.get(None)", "linear"),
    ("keras.activations.get(keras.activations.relu)", "relu"),
    ("keras.activations.get(NAME)", "unknown"),
])
def test_activations_get_is_the_named_activation(spelled: str, activation: str) -> None:
    model = one(f"""
        import keras
        from settings import NAME
        model = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(16, activation={spelled}),
                                  keras.layers.Dense(1)])
    """)
    assert model_units(model)[0].activation == activation


@pytest.mark.parametrize("call,scheme,params", [
    ("initializations.normal(shape, scale=0.01, name=name)", "random_normal", {"stddev": 0.01}),
    ("initializations.uniform(shape, name=name)", "random_uniform", {"minval": -0.05, "maxval": 0.05}),
    ("initializations.he_normal(shape, name=name)", "he_normal", {}),
    ("initializations.normal(shape, scale=SCALE, name=name)", None, None),
])
def test_keras1_initializations_in_an_init_function(call: str, scheme: str | None, params: dict | None) -> None:
    model = one(f"""
        from keras import initializations
        from keras.models import Sequential
        from keras.layers import Dense
        from settings import SCALE
        def my_init(shape, name=None):
            return {call}
        model = Sequential()
        model.add(Dense(64, input_dim=32, init=my_init, activation='relu'))
        model.add(Dense(1))
    """)
    init = model_units(model)[0].init
    if scheme is None:
        assert init is None
    else:
        assert init is not None and init.scheme == scheme and init.params == params


def test_an_initializer_subclass_is_run_on_the_shape() -> None:
    model = one("""
        import keras
        from keras import ops
        class Const(keras.initializers.Initializer):
            def __init__(self, value=0.05):
                self.value = value
            def __call__(self, shape, dtype=None):
                return ops.ones(shape, dtype=dtype) * self.value
        inputs = keras.Input(shape=(24,))
        x = keras.layers.Dense(64, activation="relu", kernel_initializer=Const(0.2))(inputs)
        model = keras.Model(inputs, keras.layers.Dense(3)(x))
    """)
    init = model_units(model)[0].init
    assert init is not None and init.scheme == "constant" and init.params == {"value": 0.2}


def test_time_distributed_dense_is_the_dense_per_step_and_a_conv_inside_is_unknown() -> None:
    model = one("""
        from tensorflow import keras
        from tensorflow.keras import layers
        seq = keras.Input(shape=(12, 20))
        h = layers.TimeDistributed(layers.Dense(64, activation="sigmoid"))(seq)
        h = layers.TimeDistributed(layers.Dense(1))(h)
        model = keras.Model(seq, h)
    """)
    units = model_units(model)
    assert [(u.fan_in, u.fan_out, u.activation) for u in units] == [(20, 64, "sigmoid"), (64, 1, "linear")]
    frames = one("""
        from tensorflow import keras
        from tensorflow.keras import layers
        clip = keras.Input(shape=(8, 32, 32, 3))
        h = layers.TimeDistributed(layers.Conv2D(16, 3))(clip)
        model = keras.Model(clip, layers.Dense(1)(h))
    """)
    assert any(getattr(n, "kind", None) == LayerKind.UNKNOWN for n in frames.path)


def test_keras1_merge_layer_runs_its_branches() -> None:
    model = one("""
        from keras.models import Sequential
        from keras.layers import Dense, Merge
        left = Sequential()
        left.add(Dense(64, input_dim=16, activation='sigmoid'))
        right = Sequential()
        right.add(Dense(32, input_dim=16, activation='tanh'))
        model = Sequential()
        model.add(Merge([left, right], mode='concat'))
        model.add(Dense(1))
    """)
    assert [u.layer.kind for u in model_units(model)][-1] == LayerKind.DENSE
    assert model.input_hint is not None and model.input_hint.shape == (16,)


def test_keras1_conv_geometry_gives_the_head_its_fan_in() -> None:
    model = one("""
        from keras.models import Sequential
        from keras.layers import Convolution2D, MaxPooling2D, Flatten, Dense
        model = Sequential()
        model.add(Convolution2D(8, 3, 3, border_mode='valid', input_shape=(28, 28, 1)))
        model.add(Convolution2D(nb_filter=8, nb_row=3, nb_col=3, border_mode='same', subsample=(2, 2)))
        model.add(MaxPooling2D(pool_size=(2, 2)))
        model.add(Flatten())
        model.add(Dense(output_dim=10))
    """)
    assert model_units(model)[-1].fan_in == 6 * 6 * 8  # 28 -> 26 (valid) -> 13 (stride 2, same) -> 6 (pool)


@pytest.mark.parametrize("shape", ["[20]", "(20,)", "[WIDTH]"])
def test_input_shape_list_literal_reads_like_the_tuple(shape: str) -> None:
    """``input_shape=[20]`` (a list, as many tutorials write it) declares the same input as ``(20,)``."""
    model = one(f"""
        from keras.models import Sequential
        from keras.layers import Dense
        WIDTH = 20
        model = Sequential()
        model.add(Dense(64, input_shape={shape}, activation='tanh'))
        model.add(Dense(1))
    """)
    assert model_units(model)[0].fan_in == 20
