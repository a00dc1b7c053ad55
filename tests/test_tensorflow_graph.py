"""TensorFlow graph code (TF 1.x, tf.compat.v1), keras.ops and Keras custom layers become models:
checked on the model description and the training facts, never by running TensorFlow."""

from __future__ import annotations

import ast
import textwrap

import pytest

from gradlint.analysis.units import model_units
from gradlint.engine import LintConfig, lint_source
from gradlint.extract import extract
from gradlint.model import LayerKind, Model, Residual


def _extract(src: str):
    return extract(ast.parse(textwrap.dedent(src)))


def one(src: str) -> Model:
    models = _extract(src).models
    assert len(models) == 1, [m.name for m in models]
    return models[0]


def codes(src: str) -> list[str]:
    return sorted(d.code for d in lint_source(textwrap.dedent(src), "example.py", LintConfig()).diagnostics)


MLP = """
    import tensorflow as tf
    x = tf.placeholder(tf.float32, [None, 784])
    y_ = tf.placeholder(tf.float32, [None, 10])
    W1 = tf.Variable({w1})
    b1 = tf.Variable(tf.zeros([256]))
    h1 = tf.nn.relu(tf.matmul(x, W1) + b1)
    W2 = tf.Variable(tf.random_normal([256, 10], stddev=0.01))
    logits = tf.matmul(h1, W2) + tf.Variable(tf.zeros([10]))
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=logits))
    train_op = tf.train.AdamOptimizer(1e-3).minimize(loss)
"""


@pytest.mark.parametrize("w1,scheme,params", [
    ("tf.random_normal([784, 256])", "normal", {"std": 1.0}),  # TF's default stddev is 1.0
    ("tf.random_normal([784, 256], 0.0, 0.05)", "normal", {"std": 0.05}),
    ("tf.truncated_normal([784, 256])", "truncated_normal", {"stddev": 1.0}),
    ("tf.truncated_normal([784, 256], stddev=0.1)", "truncated_normal", {"stddev": 0.1}),
    ("tf.random_uniform([784, 256])", "uniform", {"a": 0.0, "b": 1.0}),
    ("tf.random_uniform([784, 256], -0.1, 0.1)", "uniform", {"a": -0.1, "b": 0.1}),
    ("tf.random.normal([784, 256], stddev=0.02)", "normal", {"std": 0.02}),
    ("tf.zeros([784, 256])", "zeros", {}),
    ("tf.ones([784, 256]) * 0.5", "constant", {"value": 0.5}),
    ("tf.random_normal([784, 256]) * 0.01", "normal", {"std": 0.01}),
    ("tf.random_normal([784, 256], stddev=np.sqrt(2.0 / 784))", "normal", {"std": (2.0 / 784) ** 0.5}),
    ("tf.random_normal_initializer(stddev=0.3)([784, 256])", "normal", {"std": 0.3}),
])
def test_variable_inits_and_shapes(w1: str, scheme: str, params: dict[str, float]) -> None:
    model = one("import numpy as np\n" + textwrap.dedent(MLP).format(w1=w1))
    units = model_units(model)
    assert [(u.fan_in, u.fan_out, u.activation) for u in units] == [(784, 256, "relu"), (256, 10, "linear")]
    first = units[0].init
    assert first is not None and first.scheme == scheme
    assert first.params == pytest.approx(params)
    assert units[0].layer.bias_init is not None and units[0].layer.bias_init.scheme == "zeros"
    assert model.framework == "tensorflow" and model.input_hint is not None and model.input_hint.shape == (784,)


def test_compat_v1_get_variable_defaults_and_initializers() -> None:
    model = one("""
        import tensorflow.compat.v1 as tf
        tf.disable_v2_behavior()
        x = tf.placeholder(tf.float32, shape=[None, 32])
        w0 = tf.get_variable("w0", [32, 64])
        w1 = tf.get_variable("w1", [64, 64], initializer=tf.contrib.layers.xavier_initializer(uniform=False))
        w2 = tf.get_variable("w2", shape=[64, 64], initializer=tf.contrib.layers.variance_scaling_initializer())
        w3 = tf.get_variable("w3", [64, 64], initializer=tf.random_normal_initializer())
        w4 = tf.get_variable("w4", [64, 1], initializer=tf.truncated_normal_initializer(stddev=0.02))
        h = x
        for w in [w0, w1, w2, w3]:
            h = tf.nn.tanh(tf.matmul(h, w))
        out = tf.matmul(h, w4)
    """)
    inits = [(u.init.scheme, u.init.params) for u in model_units(model) if u.init]
    assert inits == [("glorot_uniform", {}), ("glorot_normal", {}), ("variance_scaling", {"scale": 2.0}),
                     ("normal", {"std": 1.0}),  # TF 1.x random_normal_initializer: stddev 1.0
                     ("truncated_normal", {"stddev": 0.02})]


def test_tf2_initializer_defaults_are_keras_ones() -> None:
    """Outside TF 1.x graph code, tf.random_normal_initializer() is stddev 0.05 (TF 2)."""
    model = one("""
        import tensorflow as tf
        from tensorflow import keras
        class Linear(keras.layers.Layer):
            def __init__(self, units, input_dim):
                super().__init__()
                w_init = tf.random_normal_initializer()
                self.w = tf.Variable(initial_value=w_init(shape=(input_dim, units), dtype="float32"))
            def call(self, x):
                return tf.nn.tanh(tf.matmul(x, self.w))
        class Net(keras.Model):
            def __init__(self):
                super().__init__()
                self.blocks = [Linear(32, 16), Linear(32, 32)]
            def call(self, x):
                for block in self.blocks:
                    x = block(x)
                return x
    """)
    units = model_units(model)
    assert [(u.fan_in, u.fan_out, u.activation) for u in units] == [(16, 32, "tanh"), (32, 32, "tanh")]
    assert units[0].init is not None and units[0].init.params == {"std": 0.05}
    assert units[0].layer.framework == "keras"


def test_variable_scope_initializer_makes_the_default_unknown() -> None:
    model = one("""
        import tensorflow as tf
        x = tf.placeholder(tf.float32, [None, 8])
        with tf.variable_scope("net", initializer=make_init()):
            w = tf.get_variable("w", [8, 8])
            out = tf.nn.sigmoid(tf.matmul(x, w))
    """)
    units = model_units(model)
    assert units[0].init is not None and units[0].init.scheme == "unknown"


def test_layers_dense_conv_and_contrib_with_inferred_widths() -> None:
    model = one("""
        import tensorflow as tf
        slim = tf.contrib.slim
        images = tf.placeholder(tf.float32, [None, 28, 28, 3])
        net = tf.layers.conv2d(images, 16, 3, padding="same", activation=tf.nn.relu)
        net = tf.layers.conv2d(net, 32, (5, 5), activation=tf.nn.relu)
        net = tf.layers.max_pooling2d(net, 2, 2)
        net = tf.layers.flatten(net)
        net = tf.contrib.layers.fully_connected(net, 128, normalizer_fn=slim.batch_norm)
        net = tf.layers.dropout(net, 0.5)
        logits = tf.layers.dense(net, 10, kernel_initializer=tf.initializers.he_normal())
    """)
    units = model_units(model)
    convs = [u for u in units if u.layer.kind == LayerKind.CONV]
    assert [(u.fan_in, u.layer.receptive, u.activation) for u in convs] == [(27, 9, "relu"), (400, 25, "relu")]
    fc = units[2]
    assert fc.layer.op == "fully_connected" and fc.normalized and fc.layer.bias is False  # normalizer_fn drops the bias
    after = model.path[model.path.index(fc.norm_layer) + 1]
    assert after.kind == LayerKind.ACTIVATION and after.activation == "relu"  # contrib's default activation
    assert fc.init is not None and fc.init.scheme == "glorot_uniform"
    assert units[3].init is not None and units[3].init.scheme == "he_normal"


def test_conv2d_filters_give_fans_and_bias_add_sets_the_bias() -> None:
    model = one("""
        import tensorflow as tf
        x = tf.placeholder(tf.float32, [None, 784])
        image = tf.reshape(x, [-1, 28, 28, 1])
        W = tf.Variable(tf.truncated_normal([5, 5, 1, 32], stddev=0.1))
        b = tf.Variable(tf.constant(0.1, shape=[32]))
        h = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(image, W, strides=[1, 1, 1, 1], padding="SAME"), b))
        W2 = tf.Variable(tf.truncated_normal([3, 3, 32, 64], stddev=0.1))
        h2 = tf.nn.relu(tf.nn.conv2d(h, W2, strides=[1, 1, 1, 1], padding="SAME"))
    """)
    units = model_units(model)
    assert [(u.fan_in, u.fan_out, u.layer.receptive) for u in units] == [(25, 800, 25), (288, 576, 9)]
    bias = units[0].layer.bias_init
    assert bias is not None and bias.scheme == "constant" and bias.params == {"value": 0.1}
    assert units[1].layer.bias is False
    assert model.input_hint is not None and model.input_hint.kind == "image" and model.input_hint.shape == (28, 28, 1)


def test_helper_functions_loops_and_residual_adds() -> None:
    model = one("""
        import tensorflow as tf
        def layer(x, n_in, n_out):
            W = tf.Variable(tf.random_normal([n_in, n_out], stddev=0.05))
            b = tf.Variable(tf.zeros([n_out]))
            return tf.nn.relu(tf.matmul(x, W) + b)
        x = tf.placeholder(tf.float32, [None, 64])
        h = layer(x, 64, 64)
        for _ in range(3):
            h = h + layer(h, 64, 64)
        out = tf.matmul(h, tf.Variable(tf.zeros([64, 1])))
    """)
    assert sum(isinstance(n, Residual) for n in model.path) == 3
    assert model.name == "graph(x -> out)"


def test_matmul_with_weight_first_and_transpose_b() -> None:
    model = one("""
        import tensorflow as tf
        x = tf.placeholder(tf.float32, [None, 20])
        W1 = tf.Variable(tf.random_normal([50, 20], stddev=0.1))
        h = tf.nn.tanh(tf.transpose(tf.matmul(W1, tf.transpose(x))))
        W2 = tf.Variable(tf.random_normal([5, 50], stddev=0.1))
        out = tf.matmul(h, W2, transpose_b=True)
    """)
    assert [(u.fan_in, u.fan_out) for u in model_units(model)] == [(20, 50), (50, 5)]


def test_training_facts_loss_optimizer_and_clipping() -> None:
    ex = _extract("""
        import tensorflow as tf
        x = tf.placeholder(tf.float32, [None, 10])
        y = tf.placeholder(tf.float32, [None, 1])
        W = tf.get_variable("W", [10, 1])
        pred = tf.nn.sigmoid(tf.matmul(x, W))
        loss = tf.losses.log_loss(y, pred)
        opt = tf.train.AdamOptimizer(1e-3)
        grads, variables = zip(*opt.compute_gradients(loss))
        grads, _ = tf.clip_by_global_norm(grads, 5.0)
        train_op = opt.apply_gradients(zip(grads, variables))
    """)
    facts = ex.training
    assert [u.loss.name for u in facts.losses] == ["log_loss"]
    assert facts.losses[0].model_id == ex.models[0].origin_id
    assert facts.trains and facts.clips


def test_one_model_per_set_of_weights() -> None:
    """The same variables used for the train and the test graph (and by two losses) are one network."""
    ex = _extract("""
        import tensorflow as tf
        weights = {"h": tf.Variable(tf.random_normal([8, 16], stddev=0.1)),
                   "out": tf.Variable(tf.random_normal([16, 2], stddev=0.1))}
        def net(x):
            return tf.matmul(tf.nn.relu(tf.matmul(x, weights["h"])), weights["out"])
        x_train = tf.placeholder(tf.float32, [None, 8])
        x_test = tf.placeholder(tf.float32, [None, 8])
        y = tf.placeholder(tf.float32, [None, 2])
        train_logits = net(x_train)
        test_logits = net(x_test)
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=train_logits))
        test_loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=test_logits))
    """)
    assert len(ex.models) == 1
    assert {u.model_id for u in ex.training.losses} == {ex.models[0].origin_id}


def test_uncalled_function_and_dataset_input_start_a_graph() -> None:
    """TF 2 low-level code: the input comes from a dataset loop the interpreter cannot see."""
    model = one("""
        import tensorflow as tf
        W = [tf.Variable(tf.random.normal([32, 32])) for _ in range(12)]
        def model(x):
            for w in W:
                x = tf.nn.tanh(x @ w)
            return x
        for batch in dataset:
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(model(batch) ** 2)
    """)
    units = model_units(model)
    assert len(units) == 12 and units[0].fan_in == 32 and units[0].init.params == {"std": 1.0}


RNN_THEN_STOP = """
    import tensorflow as tf
    x = tf.placeholder(tf.float32, [None, 20, 8])
    cell = {cell}
    outputs, state = tf.nn.dynamic_rnn(cell, x, dtype=tf.float32)
    W = tf.Variable(tf.random_normal([64, 1], stddev=0.1))
    out = tf.matmul(tf.stop_gradient(outputs[:, -1]), W)
"""


def test_rnn_cell_is_a_recurrent_layer_an_unknown_cell_an_explicit_unknown_and_stop_gradient_a_stop() -> None:
    # A TF 1.x cell is read (gradlint.extract.tf_recurrent); one this file does not define stays unknown.
    model = one(RNN_THEN_STOP.format(cell="tf.nn.rnn_cell.LSTMCell(64)"))
    kinds = [n.kind for n in model.path]
    assert kinds[:2] == [LayerKind.RECURRENT, LayerKind.STOP] and kinds[-1] == LayerKind.DENSE
    model = one(RNN_THEN_STOP.format(cell="make_cell(64)"))
    kinds = [n.kind for n in model.path]
    assert kinds[:2] == [LayerKind.UNKNOWN, LayerKind.STOP] and kinds[-1] == LayerKind.DENSE


def test_log_inside_model_code_is_not_a_loss() -> None:
    ex = _extract("""
        import tensorflow as tf
        x = tf.placeholder(tf.float32, [None, 4])
        W = tf.Variable(tf.random_normal([4, 4], stddev=0.1))
        h = tf.log(1.0 + tf.exp(tf.matmul(x, W)))
        W2 = tf.Variable(tf.random_normal([4, 1], stddev=0.1))
        out = tf.matmul(h, W2)
    """)
    assert ex.training.losses == []
    assert [u.fan_in for u in model_units(ex.models[0])] == [4, 4]


KERAS_CUSTOM = """
    import tensorflow as tf
    from tensorflow import keras
    class {name}(keras.layers.Layer):
        def __init__(self, units=64, **kwargs):
            super().__init__(**kwargs)
            self.units = units
        def build(self, input_shape):
            self.w = self.add_weight({w_args})
            self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True)
        def call(self, inputs):
            return {call}
    model = keras.Sequential([keras.Input(shape=(64,))] + [{name}(64) for _ in range(8)])
"""
DENSE = """
    from tensorflow import keras
    model = keras.Sequential([keras.Input(shape=(64,))] +
                             [keras.layers.Dense(64, activation="sigmoid", kernel_initializer="random_normal")
                              for _ in range(8)])
"""


@pytest.mark.parametrize("w_args,call", [
    ('shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True',
     "tf.nn.sigmoid(tf.matmul(inputs, self.w) + self.b)"),
    ('"w", shape=[int(input_shape[-1]), self.units], initializer=keras.initializers.RandomNormal()',
     "keras.ops.sigmoid(keras.ops.matmul(inputs, self.w) + self.b)"),
    ('name="w", shape=(input_shape[-1], self.units), initializer=keras.initializers.RandomNormal',
     "tf.sigmoid(inputs @ self.w + self.b)"),
])
def test_keras_custom_layer_agrees_with_dense(w_args: str, call: str) -> None:
    """The same network as a custom Layer (build/add_weight/call) and with Dense: one estimate."""
    custom = one(textwrap.dedent(KERAS_CUSTOM).format(name="SigmoidDense", w_args=w_args, call=call))
    dense = one(DENSE)
    custom_units, dense_units = model_units(custom), model_units(dense)
    assert [(u.fan_in, u.fan_out, u.activation, u.init.scheme if u.init else None) for u in custom_units] == \
        [(u.fan_in, u.fan_out, u.activation, u.init.scheme if u.init else None) for u in dense_units]
    from gradlint.analysis.estimation import estimate_units
    a, b = estimate_units(custom_units), estimate_units(dense_units)
    assert a is not None and b is not None and a.log10_weight_ratio == pytest.approx(b.log10_weight_ratio)
    source_custom = textwrap.dedent(KERAS_CUSTOM).format(name="SigmoidDense", w_args=w_args, call=call)
    assert codes(source_custom) == codes(DENSE) == ["GRD001"]


def test_custom_layer_in_functional_graph_is_part_of_it() -> None:
    ex = _extract("""
        import keras
        from keras import ops
        class Block(keras.layers.Layer):
            def __init__(self, units):
                super().__init__()
                self.units = units
            def build(self, input_shape):
                self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="he_normal")
            def call(self, x):
                return ops.relu(ops.matmul(x, self.kernel))
        inputs = keras.Input(shape=(16,))
        x = inputs
        for _ in range(4):
            x = Block(32)(x)
        model = keras.Model(inputs, x)
    """)
    assert [m.name for m in ex.models] == ["model"]
    assert [(u.fan_in, u.fan_out) for u in model_units(ex.models[0])] == [(16, 32)] + [(32, 32)] * 3


@pytest.mark.parametrize("spelling,scheme", [
    ('kernel_initializer="zero"', "zeros"), ('kernel_initializer="zeros"', "zeros"),
    ('kernel_initializer="one"', "ones"), ('kernel_initializer="ones"', "ones"),
    ('kernel_initializer="normal"', "random_normal"), ('kernel_initializer="random_normal"', "random_normal"),
    ('kernel_initializer="uniform"', "random_uniform"), ('kernel_initializer="random_uniform"', "random_uniform"),
    ('kernel_initializer="truncated_normal"', "truncated_normal"),
    ('kernel_initializer="variance_scaling"', "variance_scaling"),
    ('kernel_initializer="lecun_normal"', "lecun_normal"), ('kernel_initializer="lecun_uniform"', "lecun_uniform"),
    ('kernel_initializer="he_normal"', "he_normal"), ('kernel_initializer="he_uniform"', "he_uniform"),
    ('kernel_initializer="glorot_normal"', "glorot_normal"), ('kernel_initializer="glorot_uniform"', "glorot_uniform"),
    ('kernel_initializer="orthogonal"', "orthogonal"), ('kernel_initializer="identity"', "eye"),
    ('kernel_initializer="Orthogonal"', "orthogonal"), ('kernel_initializer="IdentityInitializer"', "eye"),
    ("kernel_initializer=initializers.RandomNormal()", "random_normal"),
    ("kernel_initializer=initializers.RandomNormal", "random_normal"),  # the class, not an instance
    ("kernel_initializer=initializers.TruncatedNormal()", "truncated_normal"),
    ("kernel_initializer=initializers.RandomUniform()", "random_uniform"),
    ("kernel_initializer=initializers.normal(stddev=0.05)", "random_normal"),  # Keras 2 function aliases
    ("kernel_initializer=initializers.zero()", "zeros"),
    ('kernel_initializer=initializers.get("he_normal")', "he_normal"),
    ("init='uniform'", "random_uniform"),  # Keras 1 spelled the argument init=
    ("init='glorot_normal'", "glorot_normal"),
])
def test_every_keras_initializer_alias(spelling: str, scheme: str) -> None:
    model = one(f"""
        from keras import initializers
        from keras.layers import Dense
        from keras.models import Sequential
        model = Sequential()
        model.add(Dense(32, input_dim=8, {spelling}))
        model.add(Dense(32, activation="relu"))
    """)
    init = model_units(model)[0].init
    assert init is not None and init.scheme == scheme


def test_keras_fixed_scale_defaults_reach_the_estimate() -> None:
    """RandomNormal()/RandomUniform()/TruncatedNormal() keep Keras' fixed 0.05 scale: σ_w² grows with fan-in."""
    from gradlint.analysis.inits import sigma_w2_of
    for spelling, expected in (('"normal"', 512 * 0.05 ** 2), ('"uniform"', 512 * 0.1 ** 2 / 12),
                               ("initializers.TruncatedNormal()", None)):
        model = one(f"""
            import keras
            from keras import initializers, layers
            model = keras.Sequential([keras.Input(shape=(512,)), layers.Dense(512, kernel_initializer={spelling}),
                                      layers.Dense(1)])
        """)
        value, note = sigma_w2_of(model_units(model)[0])
        assert note is None and value is not None
        if expected is not None:
            assert value == pytest.approx(expected)
        else:
            assert 0.5 * 512 * 0.05 ** 2 < value < 512 * 0.05 ** 2


def test_keras1_spellings() -> None:
    model = one("""
        from keras.models import Sequential
        from keras.layers.core import Dense, Activation
        from keras.layers.convolutional import Convolution2D
        model = Sequential()
        model.add(Convolution2D(32, 3, 3, init='he_normal', input_shape=(28, 28, 1)))
        model.add(Activation('relu'))
        model.add(Dense(output_dim=10, init='zero', bias=False))
    """)
    conv, dense = model_units(model)
    assert conv.layer.receptive == 9 and conv.init is not None and conv.init.scheme == "he_normal"
    assert dense.fan_out == 10 and dense.layer.bias is False and dense.init is not None and dense.init.scheme == "zeros"


def test_variance_scaling_fan_avg_is_kept() -> None:
    model = one("""
        import keras
        from keras import initializers, layers
        init = initializers.VarianceScaling(scale=2.0, mode="fan_avg")
        model = keras.Sequential([keras.Input(shape=(100,)), layers.Dense(300, kernel_initializer=init),
                                  layers.Dense(1)])
    """)
    from gradlint.analysis.inits import sigma_w2_of
    value, _ = sigma_w2_of(model_units(model)[0])
    assert value == pytest.approx(2.0 * 100 / 200)  # scale · fan_in / ((fan_in + fan_out) / 2)


def test_keras_functional_code_with_tf_ops_adds_no_graph_model() -> None:
    """tf.nn ops on Keras tensors are activations of the Keras model, not a TensorFlow graph of their own."""
    ex = _extract("""
        import tensorflow as tf
        from tensorflow import keras
        inputs = keras.Input(shape=(20,))
        x = inputs
        for _ in range(3):
            x = keras.layers.Dense(32)(x)
            x = tf.nn.relu(x)
        model = keras.Model(inputs, keras.layers.Dense(1)(x))
    """)
    assert [m.name for m in ex.models] == ["model"]
    assert [u.activation for u in model_units(ex.models[0])] == ["relu"] * 3 + ["linear"]


def test_hand_unrolled_recurrence_is_an_explicit_unknown() -> None:
    """h = tanh(x_t W + h U) over time steps reuses U along one path: not a 30-layer tanh stack."""
    src = """
        import tensorflow as tf
        x = tf.placeholder(tf.float32, [None, 30, 8])
        W = tf.Variable(tf.random_normal([8, 64], stddev=0.1))
        U = tf.Variable(tf.random_normal([64, 64], stddev=0.1))
        h = tf.zeros([1, 64])
        h = tf.nn.tanh(tf.matmul(x[:, 0], W))
        for t in range(1, 30):
            h = tf.nn.tanh(tf.matmul(x[:, t], W) + tf.matmul(h, U))
        out = tf.matmul(h, tf.Variable(tf.random_normal([64, 1], stddev=0.1)))
    """
    model = one(src)
    assert any(n.kind == LayerKind.UNKNOWN and n.op == "recurrence" for n in model.path)
    assert codes(src) == []


def test_slim_arg_scope_block_gives_its_ops_its_defaults() -> None:
    # measured (TF 2.16, tf_slim, tools/measure_tf.py): first-layer ||dW||/||W|| 3.9e-16 -- frozen
    src = """
        import tensorflow as tf
        slim = tf.contrib.slim
        x = tf.placeholder(tf.float32, [None, 32])
        with slim.arg_scope([slim.fully_connected], activation_fn=tf.nn.relu,
                            weights_initializer=tf.truncated_normal_initializer(stddev=0.01)):
            net = x
            for _ in range(12):
                net = slim.fully_connected(net, 64)
            logits = slim.fully_connected(net, 1, activation_fn=None)
    """
    units = model_units(one(src))
    assert units[0].init is not None and units[0].init.scheme == "truncated_normal"
    assert units[0].init.params["stddev"] == 0.01
    assert codes(src) == ["GRD004"]


def test_reshape_and_flatten_widths_and_rearranged_initial_values() -> None:
    model = one("""
        import tensorflow as tf
        x = tf.placeholder(tf.float32, [None, 784])
        image = tf.reshape(x, [-1, 28, 28, 1])
        kernel = tf.Variable(tf.transpose(tf.reshape(tf.random_uniform([800, 1], -0.08, 0.08), [32, 5, 5, 1]),
                                          perm=[1, 2, 3, 0]))
        h = tf.nn.relu(tf.nn.conv2d(image, kernel, [1, 1, 1, 1], "SAME"))
        h = tf.nn.max_pool(h, [1, 2, 2, 1], [1, 2, 2, 1], "SAME")
        flat = tf.reshape(h, [-1, 14 * 14 * 32])
        hidden = tf.layers.dense(flat, 128, activation=tf.nn.relu)
        W = tf.Variable(tf.zeros([128, 10]))
        logits = tf.nn.xw_plus_b(hidden, W, tf.Variable(tf.constant(0.1, shape=[10])))
    """)
    conv, dense, out = model_units(model)
    assert (conv.fan_in, conv.fan_out) == (25, 800)  # the filter [5, 5, 1, 32] after reshape + transpose
    assert conv.init is not None and conv.init.scheme == "uniform" and conv.init.params == {"a": -0.08, "b": 0.08}
    assert dense.fan_in == 14 * 14 * 32  # the width the reshape wrote, not the conv's 32 channels
    assert out.layer.bias_init is not None and out.layer.bias_init.params == {"value": 0.1}


def test_unmodelled_tf_calls_stay_tensorflow_unknowns() -> None:
    model = one("""
        import tensorflow as tf
        x = tf.placeholder(tf.float32, [None, 8])
        h = tf.some_future_op(x)
        out = tf.matmul(h, tf.Variable(tf.random_normal([8, 1], stddev=0.1)))
    """)
    assert model.framework == "tensorflow"
    assert model.path[0].kind == LayerKind.UNKNOWN and model.path[0].framework == "tensorflow"


def test_keras_initializer_objects_called_with_a_shape() -> None:
    """``keras.initializers.X()(shape)`` inside a custom layer is a tensor with that init."""
    model = one("""
        import keras
        import tensorflow as tf
        class Linear(keras.layers.Layer):
            def __init__(self, n_in, n_out):
                super().__init__()
                init = keras.initializers.RandomNormal(stddev=1.0)
                self.w = tf.Variable(init(shape=(n_in, n_out)))
            def call(self, x):
                return keras.ops.tanh(keras.ops.matmul(x, self.w))
        class Net(keras.Model):
            def __init__(self):
                super().__init__()
                self.layers_ = [Linear(32, 32) for _ in range(3)]
            def call(self, x):
                for layer in self.layers_:
                    x = layer(x)
                return x
    """)
    units = model_units(model)
    assert [(u.fan_in, u.fan_out) for u in units] == [(32, 32)] * 3
    init = units[0].init
    assert init is not None and init.scheme == "random_normal" and init.params == {"stddev": 1.0}


@pytest.mark.parametrize("call", [
    "tf.nn.softmax_cross_entropy_with_logits(y_conv, y_)",  # TF 0.x: (logits, labels)
    "tf.nn.softmax_cross_entropy_with_logits(y_, y_conv)",  # TF 2: (labels, logits)
    "tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=y_conv)",
])
def test_softmax_into_a_logits_loss_whatever_the_argument_order(call: str) -> None:
    src = f"""
        import tensorflow as tf
        x = tf.placeholder(tf.float32, [None, 784])
        y_ = tf.placeholder(tf.float32, [None, 10])
        W1 = tf.Variable(tf.truncated_normal([784, 64], stddev=0.05))
        h = tf.nn.relu(tf.matmul(x, W1))
        W2 = tf.Variable(tf.truncated_normal([64, 10], stddev=0.05))
        y_conv = tf.nn.softmax(tf.matmul(h, W2))
        loss = tf.reduce_mean({call})
        train = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
    """
    assert codes(src) == ["GRD009"]


@pytest.mark.parametrize("module", ["tensorflow.contrib.slim", "tf_slim"])
def test_slim_repeat_and_stack_call_their_layer_per_entry(module: str) -> None:
    model = one(f"""
        import tensorflow as tf
        import {module} as slim
        x = tf.placeholder(tf.float32, [None, 32, 32, 3])
        net = slim.repeat(x, 3, slim.conv2d, 16, [3, 3], activation_fn=tf.nn.sigmoid, scope='conv')
        net = slim.stack(net, slim.conv2d, [(16, [3, 3]), (8, [1, 1])], activation_fn=tf.nn.sigmoid)
        net = slim.flatten(net)
        out = slim.fully_connected(net, 1, activation_fn=None)
        loss = tf.reduce_mean(tf.square(out))
    """)
    units = model_units(model)
    assert [u.layer.kind for u in units] == [LayerKind.CONV] * 5 + [LayerKind.DENSE]
    assert [u.activation for u in units[:5]] == ["sigmoid"] * 5
    assert [u.layer.fan_out for u in units[:5]] == [16 * 9, 16 * 9, 16 * 9, 16 * 9, 8]


def test_slim_stack_of_unknown_entries_is_unknown() -> None:
    model = one("""
        import tensorflow as tf
        import tensorflow.contrib.slim as slim
        from config import SIZES
        x = tf.placeholder(tf.float32, [None, 30])
        net = slim.fully_connected(x, 64)
        net = slim.stack(net, slim.fully_connected, SIZES, activation_fn=tf.nn.sigmoid)
        out = slim.fully_connected(net, 1, activation_fn=None)
        loss = tf.reduce_mean(tf.square(out))
    """)
    assert any(getattr(n, "kind", None) == LayerKind.UNKNOWN and n.op == "stack" for n in model.path)
