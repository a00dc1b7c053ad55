"""TensorFlow 1.x recurrent cells (``tf.nn.dynamic_rnn``), ``tf.estimator`` model functions built with
the params the Estimator is given, and loops of unknown length in functional code (an explicit
unknown depth, never one iteration read as the whole stack)."""

from __future__ import annotations

import ast
import textwrap

import pytest

from gradlint.analysis.estimation import recurrent_gain
from gradlint.engine import LintConfig, lint_source
from gradlint.extract import extract
from gradlint.model import LayerKind, Model


def _models(src: str) -> list[Model]:
    return extract(ast.parse(textwrap.dedent(src))).models


def _one(src: str) -> Model:
    models = _models(src)
    assert len(models) == 1, [m.name for m in models]
    return models[0]


def _codes(src: str) -> list[str]:
    return sorted(d.code for d in lint_source(textwrap.dedent(src), "example.py", LintConfig()).diagnostics)


RNN = """
    import tensorflow as tf
    x = tf.placeholder(tf.float32, [None, {steps}, 8])
    y = tf.placeholder(tf.int32, [None])
    cell = {cell}
    outputs, state = tf.nn.dynamic_rnn(cell, x, dtype=tf.float32{extra})
    logits = tf.layers.dense(outputs[:, -1], 2)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    train = tf.train.AdamOptimizer(0.001).minimize(loss)
"""


def test_basic_rnn_cell_kernel_spans_input_and_state() -> None:
    model = _one(RNN.format(steps=500, cell="tf.nn.rnn_cell.BasicRNNCell(128)", extra=""))
    assert model.fully_understood
    rnn = next(layer for layer in model.layers() if layer.kind == LayerKind.RECURRENT)
    assert (rnn.op, rnn.framework, rnn.fan_in, rnn.units) == ("BasicRNNCell", "tensorflow", 8, 128)
    # glorot_uniform over one [8 + 128, 128] kernel: H·Var(W) = 2·128/(136 + 128), not Keras' 1 (orthogonal)
    gain = recurrent_gain(rnn)
    assert gain is not None and gain.cell == "tanh"
    assert gain.sigma_rec2 == pytest.approx(2 * 128 / (136 + 128), rel=1e-6)
    # measured on a PyTorch replica of the cell (3 seeds): 0.85-0.92 per step
    assert 0.8 < gain.gain < 0.93


def test_long_unclipped_basic_rnn_is_reported_with_tf_advice() -> None:
    diags = lint_source(textwrap.dedent(RNN.format(steps=500, cell="tf.contrib.rnn.BasicRNNCell(num_units=128)",
                                                   extra="")), "example.py", LintConfig()).diagnostics
    assert [d.code for d in diags] == ["GRD007"]
    assert "tf.clip_by_global_norm" in diags[0].message and "torch" not in diags[0].message
    assert "500 time steps" in diags[0].message


def test_short_sequences_and_gated_cells_are_clean() -> None:
    assert _codes(RNN.format(steps=20, cell="tf.nn.rnn_cell.BasicRNNCell(128)", extra="")) == []
    assert _codes(RNN.format(steps=500, cell="tf.nn.rnn_cell.LSTMCell(128)", extra="")) == []
    assert _codes(RNN.format(steps=500, cell="tf.nn.rnn_cell.GRUCell(128)", extra="")) == []


def test_multi_rnn_cell_stacks_and_wrappers_pass_through() -> None:
    cell = ("tf.nn.rnn_cell.MultiRNNCell([tf.nn.rnn_cell.DropoutWrapper(tf.nn.rnn_cell.BasicLSTMCell(64)) "
            "for _ in range(3)])")
    model = _one(RNN.format(steps=50, cell=cell, extra=""))
    cells = [layer for layer in model.layers() if layer.kind == LayerKind.RECURRENT]
    assert [(c.op, c.fan_in, c.units, c.forget_bias) for c in cells] == [("BasicLSTMCell", 8, 64, 1.0)] + [
        ("BasicLSTMCell", 64, 64, 1.0)] * 2


def test_time_major_and_unknown_cells_are_explicit_unknowns() -> None:
    model = _one(RNN.format(steps=500, cell="tf.nn.rnn_cell.BasicRNNCell(128)", extra=", time_major=True"))
    assert not model.fully_understood
    assert _codes(RNN.format(steps=500, cell="make_cell()", extra="")) == []


def test_fixed_variance_kernel_initializer_is_kept() -> None:
    model = _one(RNN.format(steps=500, extra="", cell="tf.nn.rnn_cell.BasicRNNCell(64, "
                            "kernel_initializer=tf.random_normal_initializer(stddev=0.5))"))
    rnn = next(layer for layer in model.layers() if layer.kind == LayerKind.RECURRENT)
    gain = recurrent_gain(rnn)
    assert gain is not None and gain.sigma_rec2 == pytest.approx(64 * 0.25)


ESTIMATOR = """
    import tensorflow as tf

    def model_fn(features, labels, mode, params):
        net = tf.feature_column.input_layer(features, params["feature_columns"])
        for units in params["hidden_units"]:
            net = tf.layers.dense(net, units=units, activation=tf.nn.tanh,
                                  kernel_initializer=tf.random_normal_initializer(stddev=1.0))
        logits = tf.layers.dense(net, 3, activation=None)
        loss = tf.losses.sparse_softmax_cross_entropy(labels=labels, logits=logits)
        train_op = tf.train.AdagradOptimizer(0.1).minimize(loss, global_step=tf.train.get_global_step())
        return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)
    {call}
"""


def test_estimator_params_build_the_model_fn() -> None:
    src = ESTIMATOR.format(call="est = tf.estimator.Estimator(model_fn=model_fn, params={'feature_columns': [], "
                                "'hidden_units': [256] * 14})")
    model = _one(src)
    assert model.fully_understood
    assert sum(1 for layer in model.layers() if layer.kind == LayerKind.DENSE) == 15
    assert _codes(src) == ["GRD004"]


def test_model_fn_without_an_estimator_has_unknown_depth() -> None:
    model = _one(ESTIMATOR.format(call=""))
    assert not model.fully_understood
    reasons = [layer.reason for layer in model.layers() if layer.kind == LayerKind.UNKNOWN]
    assert "unknown depth: loop over params['hidden_units'] of unknown length" in reasons
    assert _codes(ESTIMATOR.format(call="")) == []


def test_keras_functional_loop_of_unknown_length_is_not_one_layer() -> None:
    src = """
        from tensorflow import keras
        from tensorflow.keras import layers

        def build(params):
            inputs = keras.Input(shape=(20,))
            x = inputs
            for units in params["hidden"]:
                x = layers.Dense(units, activation="sigmoid")(x)
            return keras.Model(inputs, layers.Dense(1)(x))
    """
    model = _one(src)
    assert not model.fully_understood
    kinds = [layer.kind for layer in model.layers()]
    assert kinds.index(LayerKind.UNKNOWN) > kinds.index(LayerKind.DENSE)
    # a loop of known length is unrolled as before
    known = src.replace('params["hidden"]', "[64] * 12")
    assert _one(known).fully_understood
    assert _codes(known) == ["GRD001"]


def test_static_rnn_over_unstacked_steps() -> None:
    src = """
        import tensorflow as tf
        from tensorflow.contrib import rnn

        X = tf.placeholder("float", [None, 400, 4])
        W = tf.Variable(tf.random_normal([64, 2]))
        steps = tf.unstack(X, 400, 1)
        outputs, states = rnn.static_rnn(rnn.BasicRNNCell(64), steps, dtype=tf.float32)
        logits = tf.matmul(outputs[-1], W)
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=logits, labels=tf.placeholder("float")))
        train_op = tf.train.GradientDescentOptimizer(learning_rate=0.1).minimize(loss)
    """
    model = _one(src)
    rnn = next(layer for layer in model.layers() if layer.kind == LayerKind.RECURRENT)
    assert (rnn.op, rnn.fan_in, rnn.units) == ("BasicRNNCell", 4, 64)
    assert _codes(src) == ["GRD007"]


def test_every_step_readout_is_not_a_long_vanishing_recurrence() -> None:
    # A char-RNN reads every step's output (reshape to [-1, H], one dense layer): each step's input gets a
    # gradient of its own (measured for nn.RNN / SimpleRNN: ~1.3 first/last, rules/_shared.reads_every_step).
    every = """
        import tensorflow as tf
        x = tf.placeholder(tf.float32, [None, 100, 8])
        outputs, state = tf.nn.dynamic_rnn(tf.nn.rnn_cell.BasicRNNCell(64), x, dtype=tf.float32)
        flat = tf.reshape(outputs, [-1, 64])
        W = tf.Variable(tf.random_normal([64, 30], stddev=0.1))
        logits = tf.matmul(flat, W)
    """
    assert _codes(every) == []
    last = every.replace("tf.reshape(outputs, [-1, 64])", "outputs[:, -1]")
    assert _codes(last) == ["GRD008"]
