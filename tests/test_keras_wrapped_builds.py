"""Keras models built by the file's own functions where the call is not written out: a function as
``activation=`` (or registered by name in ``get_custom_objects()``), and the scikit-learn wrappers
that call ``build_fn`` / ``model`` with the keyword arguments its signature names."""

from __future__ import annotations

import textwrap

import pytest

from gradlint.engine import lint_source


def _codes(source: str) -> list[str]:
    return [d.code for d in lint_source(textwrap.dedent(source), "wrapped.py").diagnostics]


STACK = """
from keras import backend as K
from keras.layers import Activation, Dense
from keras.models import Sequential
from keras.utils import get_custom_objects

def act(x):
    return {body}

{register}
model = Sequential()
model.add(Dense(64, input_dim=16, activation={act}))
for _ in range(11):
    model.add(Dense(64, activation={act}))
model.add(Dense(1))
"""


@pytest.mark.parametrize("act, register", [
    ("act", ""),
    ("Activation(act)", ""),
    ('"my_act"', 'get_custom_objects().update({"my_act": Activation(act)})'),
    ('"my_act"', 'get_custom_objects().update({"my_act": act})'),
])
def test_a_function_applying_one_activation_is_that_activation(act: str, register: str) -> None:
    assert _codes(STACK.format(body="K.sigmoid(x)", act=act, register=register)) == ["GRD001"]


@pytest.mark.parametrize("body", ["K.sigmoid(x) * 2.0", "x * K.sigmoid(x)", "K.sigmoid(x) + K.tanh(x)"])
def test_a_function_doing_more_stays_unknown(body: str) -> None:
    assert _codes(STACK.format(body=body, act="act", register="")) == []


def test_an_unregistered_name_stays_unknown() -> None:
    assert _codes(STACK.format(body="K.sigmoid(x)", act='"my_act"',
                               register='get_custom_objects().update({"other": act})')) == []


WRAPPED = """
from sklearn.model_selection import GridSearchCV
from {module} import {wrapper}
from keras.models import Sequential
from keras.layers import Dense

def create_model(activation="relu", depth=2):
    model = Sequential()
    model.add(Dense(32, input_dim=8, activation=activation))
    for _ in range(depth):
        model.add(Dense(32, activation=activation))
    model.add(Dense(1, activation="sigmoid"))
    model.compile(loss="binary_crossentropy", optimizer="adam")
    return model

clf = {wrapper}({fn}=create_model, epochs=10, batch_size=8, {params})
grid = GridSearchCV(clf, dict(batch_size=[8, 16]))
"""


@pytest.mark.parametrize("module, wrapper, fn", [
    ("keras.wrappers.scikit_learn", "KerasClassifier", "build_fn"),
    ("tensorflow.keras.wrappers.scikit_learn", "KerasRegressor", "build_fn"),
    ("scikeras.wrappers", "KerasClassifier", "model"),
])
def test_wrapper_builds_with_the_parameters_the_function_names(module: str, wrapper: str, fn: str) -> None:
    source = WRAPPED.format(module=module, wrapper=wrapper, fn=fn, params='activation="sigmoid", depth=12')
    assert _codes(source) == ["GRD001"]
    assert _codes(WRAPPED.format(module=module, wrapper=wrapper, fn=fn, params="")) == []


def test_scikeras_routes_model_prefixed_parameters() -> None:
    source = WRAPPED.format(module="scikeras.wrappers", wrapper="KerasClassifier", fn="model",
                            params='model__activation="sigmoid", model__depth=12')
    assert _codes(source) == ["GRD001"]


def test_the_wrappers_own_parameters_are_not_passed() -> None:
    # Keras 2 passes only the sk_params build_fn names; `verbose` here is the wrapper's.
    source = WRAPPED.format(module="keras.wrappers.scikit_learn", wrapper="KerasClassifier", fn="build_fn",
                            params="verbose=0").replace('def create_model(activation="relu", depth=2):',
                                                        'def create_model(activation="relu", depth=2, **kw):')
    assert _codes(source) == []


INIT = """
import numpy as np
import keras
from keras import backend as K
from keras.layers import Dense
from keras.models import Sequential

def my_init(shape, dtype=None):
    return {body}

model = Sequential()
model.add(Dense(128, input_dim=20, activation="tanh", kernel_initializer=my_init))
for _ in range(15):
    model.add(Dense(128, activation="tanh", kernel_initializer=my_init))
model.add(Dense(1))
"""


@pytest.mark.parametrize("body", ["K.random_normal(shape, stddev=1.0, dtype=dtype)",
                                  "keras.random.normal(shape, mean=0.0, stddev=1.0)"])
def test_an_initializer_function_draws_what_it_returns(body: str) -> None:
    assert _codes(INIT.format(body=body)) == ["GRD004"]


@pytest.mark.parametrize("body", ["K.random_normal(shape, stddev=np.sqrt(1.0 / shape[0]))",
                                  "np.random.normal(0, 1, size=shape)", "K.random_normal(shape, stddev=0.088)"])
def test_an_initializer_function_of_the_shape_or_scaled_is_not_flagged(body: str) -> None:
    assert _codes(INIT.format(body=body)) == []
