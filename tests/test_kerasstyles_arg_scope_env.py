"""slim ``arg_scope`` blocks and environment-variable defaults, read statically (kerasstyles session)."""

from __future__ import annotations

import ast
import textwrap

from gradlint.analysis.units import model_units
from gradlint.engine import LintConfig, lint_source
from gradlint.extract import extract
from gradlint.model import LayerKind, Model


def one(src: str) -> Model:
    models = extract(ast.parse(textwrap.dedent(src))).models
    assert len(models) == 1, [m.name for m in models]
    return models[0]


def codes(src: str) -> list[str]:
    return sorted(d.code for d in lint_source(textwrap.dedent(src), "example.py", LintConfig()).diagnostics)


def activations(model: Model) -> list[str | None]:
    return [n.activation for n in model.path if n.kind == LayerKind.ACTIVATION]


SCOPED = """
    import tensorflow as tf
    import tensorflow.contrib.slim as slim
    x = tf.placeholder(tf.float32, [None, 64])
    with slim.arg_scope([slim.fully_connected], activation_fn=tf.nn.sigmoid):
        with slim.arg_scope([slim.conv2d], activation_fn=tf.nn.relu):
            net = x
            for _ in range(10):
                net = slim.fully_connected(net, 128{extra})
    out = slim.fully_connected(net, 1, activation_fn=None)
    after = slim.fully_connected(out, 8)
"""


def test_nested_arg_scopes_apply_to_the_ops_they_list() -> None:
    src = SCOPED.format(extra="")
    acts = activations(one(src))
    # the outer scope (fully_connected) reaches the loop's layers, the inner (conv2d only) does not;
    # after the block, contrib's own default (relu) is back
    assert acts == ["sigmoid"] * 10 + ["relu"]
    assert "GRD001" in codes(src)


def test_a_call_argument_wins_over_the_scope() -> None:
    src = SCOPED.format(extra=", activation_fn=tf.nn.relu, weights_initializer=slim.variance_scaling_initializer()")
    assert activations(one(src)) == ["relu"] * 11
    assert codes(src) == []


def test_a_saved_scope_reopened_elsewhere_leaves_contrib_defaults_unknown() -> None:
    src = """
        import tensorflow as tf
        import tensorflow.contrib.slim as slim

        def my_scope():
            with slim.arg_scope([slim.fully_connected], normalizer_fn=slim.batch_norm) as sc:
                return sc

        x = tf.placeholder(tf.float32, [None, 64])
        with slim.arg_scope(my_scope()):
            with slim.arg_scope([slim.fully_connected], activation_fn=tf.nn.sigmoid):
                net = x
                for _ in range(10):
                    net = slim.fully_connected(net, 128)
        out = slim.fully_connected(net, 1, activation_fn=None)
    """
    units = model_units(one(src))
    assert units[0].init is not None and units[0].init.scheme == "unknown"
    assert codes(src) == []


def test_a_scope_over_ops_not_known_leaves_its_block_unknown() -> None:
    src = """
        import tensorflow as tf
        import tensorflow.contrib.slim as slim
        from mylib import my_layer
        x = tf.placeholder(tf.float32, [None, 64])
        with slim.arg_scope([slim.fully_connected, my_layer], normalizer_fn=slim.batch_norm):
            with slim.arg_scope([slim.fully_connected], activation_fn=tf.nn.sigmoid):
                net = x
                for _ in range(10):
                    net = slim.fully_connected(net, 128)
        out = slim.fully_connected(net, 1, activation_fn=None)
    """
    assert codes(src) == []


ENV = """
    import os
    from keras.models import Sequential
    from keras.layers import Dense
    DEPTH = int({read})
    model = Sequential()
    model.add(Dense(128, activation='sigmoid', input_shape=(40,)))
    for _ in range(DEPTH - 1):
        model.add(Dense(128, activation='sigmoid'))
    model.add(Dense(1))
"""


def test_an_environment_variable_read_with_a_default_has_that_value() -> None:
    for read in ('os.environ.get("DEPTH", 12)', 'os.getenv("DEPTH", "12")', 'os.environ.get("DEPTH", default="12")'):
        model = one(ENV.format(read=read))
        assert sum(1 for n in model.path if n.kind == LayerKind.DENSE) == 13
        assert "GRD001" in codes(ENV.format(read=read))


def test_an_environment_variable_without_a_default_stays_unknown() -> None:
    for read in ('os.environ.get("DEPTH")', 'os.environ["DEPTH"]', 'os.getenv("DEPTH")'):
        assert codes(ENV.format(read=read)) == []


NUMPY_TF = """
    import numpy as np
    import tensorflow as tf
    x = tf.placeholder(tf.float32, [None, 64])
    h = x
    for _ in range(14):
        W = tf.Variable({init})
        h = tf.nn.tanh(tf.matmul(h, W) + tf.Variable(np.zeros(64, dtype=np.float32)))
    out = tf.matmul(h, tf.Variable(np.random.randn(64, 1).astype(np.float32) * 0.1))
"""


def test_a_tf_variable_made_from_a_numpy_draw_has_its_distribution() -> None:
    cases = {
        "np.random.randn(64, 64).astype(np.float32)": ("normal", {"std": 1.0}),
        "np.random.normal(0.0, 0.5, size=(64, 64))": ("normal", {"std": 0.5}),
        "np.random.uniform(-1, 1, (64, 64))": ("uniform", {"a": -1.0, "b": 1.0}),
        "np.random.randn(64, 64) * np.sqrt(1.0 / 64)": ("normal", {"std": 0.125}),
        "np.zeros((64, 64), dtype=np.float32)": ("zeros", {}),
    }
    for expr, (scheme, params) in cases.items():
        init = model_units(one(NUMPY_TF.format(init=expr)))[0].init
        assert init is not None and init.scheme == scheme, expr
        assert dict(init.params) == params, expr
    assert codes(NUMPY_TF.format(init="np.random.randn(64, 64).astype(np.float32)")) == ["GRD004"]
    assert codes(NUMPY_TF.format(init="np.random.randn(64, 64) / np.sqrt(64)")) == []


def test_a_numpy_draw_with_parameters_not_known_stays_unknown() -> None:
    init = model_units(one(NUMPY_TF.format(init="np.random.normal(0.0, SCALE, size=(64, 64))")))[0].init
    assert init is not None and init.scheme == "unknown"


def test_tf_contrib_keras_is_keras() -> None:
    from gradlint.extract.catalog import fold_name

    assert fold_name("tensorflow.contrib.keras.layers.Dense") == "keras.layers.Dense"
    assert fold_name("tensorflow.contrib.keras.initializers.RandomNormal") == "keras.initializers.RandomNormal"
