"""A corpus of TensorFlow 1.x graph-code models (``tf.compat.v1``), written the ways people write them,
for measuring gradlint's static reading of graph code against real TensorFlow.

Styles × activations × inits × depths × widths: raw ``tf.Variable`` + ``tf.matmul`` loops and
``weights``/``biases`` dicts; ``tf.get_variable`` in ``variable_scope`` helpers; ``tf.layers.dense``,
``tf.contrib.layers.fully_connected``, ``slim.stack``; ``tf.nn.conv2d`` + ``max_pool``;
``tf.layers.batch_normalization``; residual adds; ``tf.nn.dynamic_rnn`` over long sequences; an
``tf.estimator`` ``model_fn`` with ``params``; softmax / sigmoid / MSE losses; optimizers with and
without gradient clipping. Every file exposes its input placeholder ``X`` and its output ``logits``
(an Estimator file: ``predictions["logits"]``), which ``tools/measure_tf.py --graph`` measures::

    python tools/tf_graph_corpus.py generate DIR          # write the files (no TensorFlow needed)
    /work/tfenv/bin/python tools/tf_graph_corpus.py measure DIR docs/tf_graph_corpus.json

The files are deterministic: the same source (and SHA-256) on every run, which is what
``docs/tf_graph_corpus.json`` and ``tests/test_tfcorpus_agreement.py`` rely on.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ACT = {"relu": "tf.nn.relu", "tanh": "tf.nn.tanh", "sigmoid": "tf.nn.sigmoid", "elu": "tf.nn.elu",
       "selu": "tf.nn.selu", "linear": "None",
       "softplus": "tf.nn.softplus", "leaky": "tf.nn.leaky_relu"}
HEADERS = {
    "v1": "import tensorflow.compat.v1 as tf\n\ntf.disable_v2_behavior()\n",
    "compat": "import tensorflow as tf\n\ntf.compat.v1.disable_eager_execution()\n",
}
LOSSES = {
    "softmax": "tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=Y, logits=logits))",
    "sigmoid": "tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=Y, logits=logits))",
    "mse": "tf.reduce_mean(tf.square(logits - Y))",
}


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    shape: tuple[int, ...]
    graph: str = "X:logits"


def _train(loss: str, clip: bool, v1: str, opt: str = "Adam", lr: float = 1e-3) -> str:
    """The loss and the train op: ``minimize``, or compute/clip/apply."""
    lines = [f"loss_op = {loss}"]
    optimizer = f"{v1}train.{opt}Optimizer(learning_rate={lr})"
    if clip:
        lines += [f"optimizer = {optimizer}",
                  "grads_and_vars = optimizer.compute_gradients(loss_op)",
                  "grads, variables = zip(*grads_and_vars)",
                  "grads, _ = tf.clip_by_global_norm(grads, 5.0)",
                  "train_op = optimizer.apply_gradients(zip(grads, variables))"]
    else:
        lines += [f"train_op = {optimizer}.minimize(loss_op)"]
    return "\n".join(lines) + "\n"


def _p(header: str) -> str:
    """The namespace prefix of TF1 symbols for a header: ``tf.`` under ``tensorflow.compat.v1``."""
    return "tf." if header == "v1" else "tf.compat.v1."


def _rand(init: str, shape: str, fan_in: str, p: str) -> str:
    """An initial-value expression for ``tf.Variable``."""
    if init == "normal1":
        return f"{p}random_normal({shape})"
    if init == "normal01":
        return f"{p}random_normal({shape}, stddev=0.01)"
    if init == "trunc01":
        return f"{p}truncated_normal({shape}, stddev=0.1)"
    if init == "trunc1":
        return f"{p}truncated_normal({shape}, stddev=1.0)"
    if init == "uniform":
        return f"{p}random_uniform({shape}, -1.0, 1.0)"
    if init == "uniform_default":
        return f"{p}random_uniform({shape})"
    if init == "he":
        return f"{p}random_normal({shape}, stddev=np.sqrt(2.0 / {fan_in}))"
    if init == "xavier":
        return f"{p}random_normal({shape}, stddev=np.sqrt(1.0 / {fan_in}))"
    if init == "zeros":
        return f"tf.zeros({shape})"
    raise ValueError(init)


def raw_loop(name: str, header: str, act: str, init: str, depth: int, width: int, n_in: int = 64,
             loss: str = "softmax", clip: bool = False) -> Case:
    p = _p(header)
    src = HEADERS[header] + "import numpy as np\n\n" + f"""
n_input = {n_in}
n_hidden = {width}
n_layers = {depth}
n_classes = 10

X = {p}placeholder(tf.float32, [None, n_input])
Y = {p}placeholder(tf.float32, [None, n_classes])

h = X
fan_in = n_input
for i in range(n_layers):
    W = tf.Variable({_rand(init, "[fan_in, n_hidden]", "fan_in", p)})
    b = tf.Variable(tf.zeros([n_hidden]))
    h = {ACT[act]}(tf.matmul(h, W) + b)
    fan_in = n_hidden
W_out = tf.Variable({_rand(init, "[n_hidden, n_classes]", "n_hidden", p)})
b_out = tf.Variable(tf.zeros([n_classes]))
logits = tf.matmul(h, W_out) + b_out
""" + _train(LOSSES[loss], clip, p)
    return Case(name, src, (n_in,))


def weights_dict(name: str, header: str, act: str, init: str, depth: int, width: int, n_in: int = 784,
                 loss: str = "softmax", clip: bool = False, bias_init: str = "zeros") -> Case:
    p = _p(header)
    keys = [f"h{i + 1}" for i in range(depth)]
    wl, bl = [], []
    prev = "num_input"
    for i, k in enumerate(keys):
        wl.append(f"    '{k}': tf.Variable({_rand(init, f'[{prev}, n_hidden_{i + 1}]', prev, p)}),")
        b = f"tf.zeros([n_hidden_{i + 1}])" if bias_init == "zeros" else _rand(bias_init, f"[n_hidden_{i + 1}]", "1", p)
        bl.append(f"    'b{i + 1}': tf.Variable({b}),")
        prev = f"n_hidden_{i + 1}"
    wl.append(f"    'out': tf.Variable({_rand(init, f'[{prev}, num_classes]', prev, p)}),")
    bl.append("    'out': tf.Variable(tf.zeros([num_classes])),")
    body = []
    inp = "x"
    for i, k in enumerate(keys):
        body.append(f"    layer_{i + 1} = {ACT[act]}(tf.add(tf.matmul({inp}, weights['{k}']), biases['b{i + 1}']))")
        inp = f"layer_{i + 1}"
    body.append(f"    return tf.matmul({inp}, weights['out']) + biases['out']")
    sizes = "\n".join(f"n_hidden_{i + 1} = {width}" for i in range(depth))
    src = HEADERS[header] + "import numpy as np\n\n" + f"""
learning_rate = 0.01
{sizes}
num_input = {n_in}
num_classes = 10

X = {p}placeholder("float", [None, num_input])
Y = {p}placeholder("float", [None, num_classes])

weights = {{
{chr(10).join(wl)}
}}
biases = {{
{chr(10).join(bl)}
}}


def neural_net(x):
{chr(10).join(body)}


logits = neural_net(X)
""" + _train(LOSSES[loss], clip, p, "GradientDescent", 0.01)
    return Case(name, src, (n_in,))


def _initializer(init: str, p: str) -> str:
    return {
        "default": "",
        "trunc1": f", initializer={p}truncated_normal_initializer(stddev=1.0)",
        "normal1": f", initializer={p}random_normal_initializer(stddev=1.0)",
        "normal01": f", initializer={p}random_normal_initializer(stddev=0.01)",
        "xavier": f", initializer={p}glorot_uniform_initializer()",
        "he": f", initializer={p}variance_scaling_initializer(scale=2.0)",
        "zeros": f", initializer={p}zeros_initializer()",
        "const": f", initializer={p}constant_initializer(0.1)",
    }[init]


def get_variable_scope(name: str, header: str, act: str, init: str, depth: int, width: int, n_in: int = 100,
                       loss: str = "sigmoid", clip: bool = False) -> Case:
    p = _p(header)
    src = HEADERS[header] + f"""

def fc_layer(x, n_out, scope, activation=None):
    with {p}variable_scope(scope):
        n_in = x.get_shape().as_list()[-1]
        w = {p}get_variable("weights", [n_in, n_out]{_initializer(init, p)})
        b = {p}get_variable("biases", [n_out], initializer={p}zeros_initializer())
        out = tf.matmul(x, w) + b
        if activation is not None:
            out = activation(out)
        return out


X = {p}placeholder(tf.float32, [None, {n_in}], name="inputs")
Y = {p}placeholder(tf.float32, [None, 1], name="targets")

net = X
for i in range({depth}):
    net = fc_layer(net, {width}, "fc%d" % i, activation={ACT[act]})
logits = fc_layer(net, 1, "output")
""" + _train(LOSSES[loss], clip, p, "RMSProp", 1e-3)
    return Case(name, src, (n_in,))


def _kinit(init: str, p: str) -> str:
    return {
        "default": "",
        "normal1": f", kernel_initializer={p}random_normal_initializer(stddev=1.0)",
        "trunc01": f", kernel_initializer={p}truncated_normal_initializer(stddev=0.1)",
        "he": f", kernel_initializer={p}variance_scaling_initializer(scale=2.0)",
        "zeros": f", kernel_initializer={p}zeros_initializer()",
        "uniform1": f", kernel_initializer={p}random_uniform_initializer(-1.0, 1.0)",
    }[init]


def layers_dense(name: str, header: str, act: str, init: str, depth: int, width: int, n_in: int = 32,
                 loss: str = "mse", clip: bool = False, batch_norm: bool = False, residual: bool = False) -> Case:
    p = _p(header)
    if batch_norm:
        block = (f"    net = {p}layers.dense(net, {width}, use_bias=False{_kinit(init, p)})\n"
                 f"    net = {p}layers.batch_normalization(net, training=is_training)\n"
                 f"    net = {ACT[act]}(net)\n")
    elif residual:
        block = (f"    branch = {p}layers.dense(net, {width}, activation={ACT[act]}{_kinit(init, p)})\n"
                 "    net = net + branch\n")
    else:
        block = f"    net = {p}layers.dense(net, {width}, activation={ACT[act]}{_kinit(init, p)})\n"
    stem = f"net = {p}layers.dense(X, {width}{_kinit(init, p)})\n" if residual else "net = X\n"
    src = HEADERS[header] + f"""
is_training = True
X = {p}placeholder(tf.float32, [None, {n_in}])
Y = {p}placeholder(tf.float32, [None, 1])

{stem}for _ in range({depth}):
{block}logits = {p}layers.dense(net, 1)
""" + _train(LOSSES[loss], clip, p)
    return Case(name, src, (n_in,))


def contrib_fc(name: str, act: str, init: str, depth: int, width: int, n_in: int = 50, slim: bool = False,
               loss: str = "mse") -> Case:
    wi = {"default": "", "normal1": ", weights_initializer=tf.random_normal_initializer(stddev=1.0)",
          "he": ", weights_initializer=tf.contrib.layers.variance_scaling_initializer()",
          "trunc01": ", weights_initializer=tf.truncated_normal_initializer(stddev=0.1)"}[init]
    if slim:
        wi = wi.replace("tf.contrib.layers.", "slim.")
        body = (f"net = slim.stack(X, slim.fully_connected, [{width}] * {depth}, activation_fn={ACT[act]}{wi}, "
                f"scope=\"fc\")\nlogits = slim.fully_connected(net, 1, activation_fn=None, scope=\"out\")\n")
        head = HEADERS["v1"] + "import tensorflow.contrib.slim as slim\n"
    else:
        body = (f"net = X\nfor i in range({depth}):\n    net = tf.contrib.layers.fully_connected(net, {width}, "
                f"activation_fn={ACT[act]}{wi})\nlogits = tf.contrib.layers.fully_connected(net, 1, "
                "activation_fn=None)\n")
        head = HEADERS["v1"]
    src = head + f"""
X = tf.placeholder(tf.float32, [None, {n_in}])
Y = tf.placeholder(tf.float32, [None, 1])

{body}""" + _train(LOSSES[loss], False, "tf.")
    return Case(name, src, (n_in,))


def conv_net(name: str, header: str, act: str, init: str, depth: int, channels: int, loss: str = "softmax",
             clip: bool = False) -> Case:
    p = _p(header)
    src = HEADERS[header] + "import numpy as np\n\n" + f"""
X = {p}placeholder(tf.float32, [None, 32, 32, 3])
Y = {p}placeholder(tf.float32, [None, 10])


def conv2d(x, W, b):
    x = tf.nn.conv2d(x, W, strides=[1, 1, 1, 1], padding="SAME")
    return {ACT[act]}(tf.nn.bias_add(x, b))


def maxpool2d(x):
    return tf.nn.max_pool(x, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")


net = X
c_in = 3
for i in range({depth}):
    W = tf.Variable({_rand(init, f"[3, 3, c_in, {channels}]", "9 * c_in", p)})
    b = tf.Variable(tf.zeros([{channels}]))
    net = conv2d(net, W, b)
    if i % 2 == 1:
        net = maxpool2d(net)
    c_in = {channels}
flat_dim = int(np.prod(net.get_shape().as_list()[1:]))
flat = tf.reshape(net, [-1, flat_dim])
W_fc = tf.Variable({_rand(init, "[flat_dim, 10]", "flat_dim", p)})
b_fc = tf.Variable(tf.zeros([10]))
logits = tf.matmul(flat, W_fc) + b_fc
""" + _train(LOSSES[loss], clip, p)
    return Case(name, src, (32, 32, 3))


def residual_matmul(name: str, header: str, act: str, init: str, depth: int, width: int, n_in: int = 64,
                    scale: str = "", clip: bool = False) -> Case:
    p = _p(header)
    src = HEADERS[header] + "import numpy as np\n\n" + f"""
X = {p}placeholder(tf.float32, [None, {n_in}])
Y = {p}placeholder(tf.float32, [None, 1])

W_in = tf.Variable({_rand(init, f"[{n_in}, {width}]", str(n_in), p)})
h = tf.matmul(X, W_in)
for i in range({depth}):
    W = tf.Variable({_rand(init, f"[{width}, {width}]", str(width), p)})
    b = tf.Variable(tf.zeros([{width}]))
    h = h + {scale}{ACT[act]}(tf.matmul(h, W) + b)
W_out = tf.Variable({_rand(init, f"[{width}, 1]", str(width), p)})
logits = tf.matmul(h, W_out)
""" + _train(LOSSES["mse"], clip, p)
    return Case(name, src, (n_in,))


def dynamic_rnn(name: str, header: str, cell: str, init: str, steps: int, units: int, n_in: int = 16,
                clip: bool = False) -> Case:
    p = _p(header)
    cinit = {"default": "", "normal1": f", initializer={p}random_normal_initializer(stddev=1.0)",
             "normal05": f", initializer={p}random_normal_initializer(stddev=0.5)",
             "ortho": f", initializer={p}orthogonal_initializer()"}[init]
    if cell == "rnn":
        make = f"{p}nn.rnn_cell.BasicRNNCell({units})"
        if cinit:
            make = f"{p}nn.rnn_cell.BasicRNNCell({units})"
            scope = f"with {p}variable_scope(\"rnn\"{cinit}):\n    "
        else:
            scope = ""
    else:
        make = f"{p}nn.rnn_cell.LSTMCell({units}{cinit})"
        scope = ""
    src = HEADERS[header] + f"""
time_steps = {steps}
n_features = {n_in}
n_units = {units}

X = {p}placeholder(tf.float32, [None, time_steps, n_features])
Y = {p}placeholder(tf.float32, [None, 1])

cell = {make}
{scope}outputs, state = {p}nn.dynamic_rnn(cell, X, dtype=tf.float32)
last = outputs[:, -1, :]
W_out = tf.Variable({p}truncated_normal([n_units, 1], stddev=0.1))
logits = tf.matmul(last, W_out)
""" + _train(LOSSES["mse"], clip, p)
    return Case(name, src, (steps, n_in))


def estimator(name: str, header: str, act: str, init: str, depth: int, width: int, n_in: int = 8) -> Case:
    p = _p(header)
    src = HEADERS[header] + f"""

def model_fn(features, labels, mode, params):
    net = features["x"]
    for units in params["hidden_units"]:
        net = {p}layers.dense(net, units, activation=params["activation"]{_kinit(init, p)})
    logits = {p}layers.dense(net, params["n_outputs"])
    loss = {p}losses.mean_squared_error(labels, logits)
    optimizer = {p}train.AdamOptimizer(params["learning_rate"])
    train_op = optimizer.minimize(loss, global_step={p}train.get_global_step())
    return {p}estimator.EstimatorSpec(mode, predictions={{"logits": logits}}, loss=loss, train_op=train_op)


regressor = {p}estimator.Estimator(
    model_fn=model_fn,
    params={{"hidden_units": [{width}] * {depth}, "activation": {ACT[act]}, "n_outputs": 1, "learning_rate": 1e-3}},
)
"""
    return Case(name, src, (n_in,), "model_fn:logits")


def layers_conv(name: str, header: str, act: str, init: str, depth: int, filters: int) -> Case:
    """``tf.layers.conv2d`` + ``max_pooling2d`` + ``flatten`` + ``dense``."""
    p = _p(header)
    src = HEADERS[header] + f"""
X = {p}placeholder(tf.float32, [None, 28, 28, 1])
Y = {p}placeholder(tf.float32, [None, 10])

net = X
for i in range({depth}):
    net = {p}layers.conv2d(net, {filters}, 3, padding="same", activation={ACT[act]}{_kinit(init, p)})
    if i % 2 == 1:
        net = {p}layers.max_pooling2d(net, 2, 2)
net = {p}layers.flatten(net)
logits = {p}layers.dense(net, 10)
""" + _train(LOSSES["softmax"], False, p)
    return Case(name, src, (28, 28, 1))


def dropout_mlp(name: str, header: str, act: str, init: str, depth: int, width: int, keep: float,
                n_in: int = 64) -> Case:
    """Raw weights with ``tf.nn.dropout(h, keep_prob=...)`` after every hidden layer (train mode)."""
    p = _p(header)
    src = HEADERS[header] + "import numpy as np\n\n" + f"""
X = {p}placeholder(tf.float32, [None, {n_in}])
Y = {p}placeholder(tf.float32, [None, 10])
keep_prob = {keep}

h = X
n_prev = {n_in}
for i in range({depth}):
    W = tf.Variable({_rand(init, f"[n_prev, {width}]", "n_prev", p)})
    b = tf.Variable(tf.constant(0.1, shape=[{width}]))
    h = {ACT[act]}(tf.matmul(h, W) + b)
    h = {p}nn.dropout(h, keep_prob=keep_prob)
    n_prev = {width}
W_out = tf.Variable({_rand(init, f"[{width}, 10]", str(width), p)})
logits = tf.matmul(h, W_out)
""" + _train(LOSSES["softmax"], False, p)
    return Case(name, src, (n_in,))


def stacked_rnn(name: str, header: str, cell: str, init: str, steps: int, units: int, layers: int,
                static: bool = False, n_in: int = 8) -> Case:
    """``MultiRNNCell`` of GRU/LSTM/RNN cells, by ``dynamic_rnn`` or ``static_rnn`` over ``tf.unstack``."""
    p = _p(header)
    ctor = {"gru": "GRUCell", "lstm": "BasicLSTMCell", "rnn": "BasicRNNCell"}[cell]
    cinit = {"default": "", "normal1": f"kernel_initializer={p}random_normal_initializer(stddev=1.0)"}[init]
    if cinit and cell == "lstm":
        raise ValueError("BasicLSTMCell takes no initializer")
    args = f"{units}" + (f", {cinit}" if cinit else "")
    run = (f"steps = tf.unstack(X, time_steps, 1)\noutputs, state = {p}nn.static_rnn(stack, steps, dtype=tf.float32)\n"
           "last = outputs[-1]\n") if static else (
        f"outputs, state = {p}nn.dynamic_rnn(stack, X, dtype=tf.float32)\nlast = outputs[:, -1, :]\n")
    src = HEADERS[header] + f"""
time_steps = {steps}
X = {p}placeholder(tf.float32, [None, time_steps, {n_in}])
Y = {p}placeholder(tf.float32, [None, 1])

cells = [{p}nn.rnn_cell.{ctor}({args}) for _ in range({layers})]
stack = {p}nn.rnn_cell.MultiRNNCell(cells)
{run}logits = {p}layers.dense(last, 1)
""" + _train(LOSSES["mse"], True, p)
    return Case(name, src, (steps, n_in))


def xw_plus_b(name: str, header: str, act: str, init: str, depth: int, width: int, n_in: int = 64) -> Case:
    """``tf.nn.xw_plus_b`` with ``get_variable`` weights (contrib's xavier / variance scaling)."""
    p = _p(header)
    ini = {"xavier": "tf.contrib.layers.xavier_initializer()",
           "vs_fan_avg": f"{p}variance_scaling_initializer(scale=1.0, mode='fan_avg')",
           "he": f"{p}variance_scaling_initializer(scale=2.0, mode='fan_in')",
           "normal05": f"{p}random_normal_initializer(stddev=0.5)"}[init]
    src = HEADERS[header] + f"""
X = {p}placeholder(tf.float32, [None, {n_in}])
Y = {p}placeholder(tf.float32, [None, 1])

h = X
for i in range({depth}):
    n_in = h.get_shape().as_list()[1]
    W = {p}get_variable("W%d" % i, shape=[n_in, {width}], initializer={ini})
    b = {p}get_variable("b%d" % i, shape=[{width}], initializer={p}zeros_initializer())
    h = {ACT[act]}({p}nn.xw_plus_b(h, W, b))
W = {p}get_variable("W_out", shape=[{width}, 1], initializer={ini})
logits = tf.matmul(h, W)
""" + _train(LOSSES["mse"], False, p)
    return Case(name, src, (n_in,))


def cases() -> list[Case]:
    """The corpus: a fixed list, so every run writes the same files."""
    c: list[Case] = []
    # raw tf.Variable loops
    for hdr, act, init, d, w in [("v1", "relu", "normal1", 8, 256), ("v1", "relu", "he", 8, 256),
                                 ("compat", "tanh", "normal1", 10, 256), ("compat", "tanh", "xavier", 6, 128),
                                 ("v1", "sigmoid", "trunc01", 10, 128), ("v1", "sigmoid", "xavier", 3, 128),
                                 ("compat", "relu", "uniform", 6, 512), ("v1", "relu", "trunc01", 12, 64),
                                 ("v1", "tanh", "uniform_default", 6, 128), ("compat", "relu", "zeros", 4, 64),
                                 ("v1", "elu", "he", 16, 128), ("compat", "sigmoid", "normal01", 8, 256)]:
        c.append(raw_loop(f"raw_{hdr}_{act}_{init}_d{d}_w{w}", hdr, act, init, d, w,
                          clip=(d % 4 == 0), loss="softmax" if w > 100 else "mse"))
    # weights/biases dicts
    for hdr, act, init, d, w, bias in [("compat", "sigmoid", "normal1", 4, 256, "zeros"),
                                       ("compat", "relu", "normal1", 3, 256, "normal1"),
                                       ("v1", "relu", "he", 4, 256, "zeros"),
                                       ("v1", "sigmoid", "trunc01", 8, 128, "zeros"),
                                       ("compat", "tanh", "normal1", 6, 512, "zeros"),
                                       ("v1", "relu", "normal01", 6, 256, "zeros"),
                                       ("compat", "sigmoid", "xavier", 2, 256, "zeros"),
                                       ("v1", "tanh", "trunc01", 4, 256, "zeros")]:
        c.append(weights_dict(f"dict_{hdr}_{act}_{init}_d{d}_w{w}_b{bias}", hdr, act, init, d, w,
                              bias_init=bias, clip=(act == "relu")))
    # get_variable in variable_scope helpers
    for hdr, act, init, d, w in [("v1", "sigmoid", "default", 10, 128), ("v1", "relu", "default", 10, 128),
                                 ("compat", "tanh", "trunc1", 8, 256), ("compat", "relu", "he", 16, 256),
                                 ("v1", "relu", "normal1", 6, 256), ("v1", "tanh", "default", 6, 128),
                                 ("compat", "relu", "zeros", 4, 128), ("compat", "relu", "const", 4, 128),
                                 ("v1", "sigmoid", "normal01", 6, 128)]:
        c.append(get_variable_scope(f"getvar_{hdr}_{act}_{init}_d{d}_w{w}", hdr, act, init, d, w,
                                    loss="sigmoid" if d % 2 == 0 else "mse", clip=(w == 256)))
    # tf.layers.dense
    for hdr, act, init, d, w in [("v1", "sigmoid", "default", 12, 128), ("compat", "relu", "default", 12, 128),
                                 ("v1", "tanh", "normal1", 10, 256), ("compat", "relu", "he", 20, 256),
                                 ("v1", "selu", "default", 16, 128), ("compat", "relu", "normal1", 8, 512),
                                 ("v1", "tanh", "trunc01", 16, 64), ("compat", "elu", "uniform1", 8, 128)]:
        c.append(layers_dense(f"dense_{hdr}_{act}_{init}_d{d}_w{w}", hdr, act, init, d, w, clip=(d >= 16)))
    # batch normalization
    for hdr, act, init, d, w in [("v1", "sigmoid", "default", 16, 128), ("compat", "relu", "normal1", 10, 256),
                                 ("v1", "tanh", "trunc01", 16, 128)]:
        c.append(layers_dense(f"bn_{hdr}_{act}_{init}_d{d}_w{w}", hdr, act, init, d, w, batch_norm=True))
    # residual
    for hdr, act, init, d, w, scale in [("v1", "relu", "he", 16, 128, ""),
                                        ("compat", "relu", "he", 16, 128, "0.1 * "),
                                        ("v1", "tanh", "xavier", 12, 128, ""),
                                        ("compat", "relu", "normal1", 4, 128, "")]:
        tag = "scaled" if scale else "plain"
        c.append(residual_matmul(f"resid_{hdr}_{act}_{init}_{tag}_d{d}_w{w}", hdr, act, init, d, w,
                                 scale=scale))
    c.append(layers_dense("resid_dense_v1_relu_default_d24_w128", "v1", "relu", "default", 24, 128, residual=True))
    c.append(layers_dense("resid_dense_compat_tanh_trunc01_d8_w128", "compat", "tanh", "trunc01", 8, 128,
                          residual=True))
    # contrib / slim
    for act, init, d, w, sl in [("sigmoid", "default", 10, 128, False), ("relu", "he", 12, 128, False),
                                ("tanh", "normal1", 8, 256, False), ("sigmoid", "default", 10, 96, True),
                                ("relu", "default", 8, 128, True), ("tanh", "normal1", 6, 256, True)]:
        c.append(contrib_fc(f"{'slim' if sl else 'contrib'}_{act}_{init}_d{d}_w{w}", act, init, d, w, slim=sl))
    # conv nets
    for hdr, act, init, d, ch in [("v1", "relu", "trunc01", 4, 32), ("compat", "relu", "normal1", 4, 32),
                                  ("v1", "relu", "he", 6, 32), ("compat", "sigmoid", "trunc01", 6, 32),
                                  ("v1", "tanh", "normal1", 4, 16)]:
        c.append(conv_net(f"conv_{hdr}_{act}_{init}_d{d}_c{ch}", hdr, act, init, d, ch, clip=(act == "relu")))
    # dynamic_rnn
    for hdr, cell, init, steps, units in [("v1", "rnn", "default", 100, 64), ("compat", "rnn", "normal1", 50, 64),
                                          ("v1", "lstm", "default", 200, 64), ("compat", "lstm", "normal1", 100, 64),
                                          ("v1", "rnn", "ortho", 200, 64), ("compat", "rnn", "default", 20, 32),
                                          ("v1", "rnn", "normal05", 100, 128)]:
        c.append(dynamic_rnn(f"rnn_{hdr}_{cell}_{init}_T{steps}_u{units}", hdr, cell, init, steps, units,
                             clip=(cell == "lstm")))
    # estimator model_fn
    for hdr, act, init, d, w in [("v1", "tanh", "normal1", 12, 256), ("compat", "relu", "he", 8, 128),
                                 ("v1", "sigmoid", "default", 12, 128), ("compat", "relu", "default", 6, 128)]:
        c.append(estimator(f"estimator_{hdr}_{act}_{init}_d{d}_w{w}", hdr, act, init, d, w))
    # second batch: tf.layers convs, dropout, stacked/static RNNs, xw_plus_b, more activations
    for hdr, act, init, d, f in [("v1", "relu", "default", 6, 32), ("compat", "relu", "normal1", 4, 32),
                                 ("v1", "sigmoid", "default", 8, 16), ("compat", "relu", "he", 8, 32)]:
        c.append(layers_conv(f"lconv_{hdr}_{act}_{init}_d{d}_f{f}", hdr, act, init, d, f))
    for hdr, act, init, d, w, keep in [("v1", "relu", "he", 16, 256, 0.5), ("compat", "relu", "he", 6, 256, 0.8),
                                       ("v1", "tanh", "xavier", 12, 128, 0.5)]:
        c.append(dropout_mlp(f"dropout_{hdr}_{act}_{init}_d{d}_w{w}_k{int(keep * 10)}", hdr, act, init, d, w, keep))
    for hdr, cell, init, steps, units, layers, static in [("v1", "gru", "default", 100, 64, 2, False),
                                                          ("compat", "gru", "normal1", 50, 64, 2, False),
                                                          ("v1", "lstm", "default", 50, 32, 3, True),
                                                          ("compat", "rnn", "default", 30, 64, 2, True)]:
        kind = "static" if static else "dynamic"
        c.append(stacked_rnn(f"stack_{kind}_{hdr}_{cell}_{init}_T{steps}_u{units}_l{layers}", hdr, cell, init,
                             steps, units, layers, static))
    for hdr, act, init, d, w in [("v1", "tanh", "xavier", 10, 128), ("compat", "relu", "vs_fan_avg", 16, 128),
                                 ("v1", "relu", "he", 24, 128), ("compat", "tanh", "normal05", 8, 256)]:
        c.append(xw_plus_b(f"xwb_{hdr}_{act}_{init}_d{d}_w{w}", hdr, act, init, d, w))
    for hdr, act, init, d, w in [("v1", "sigmoid", "he", 10, 128), ("compat", "softplus", "default", 12, 128),
                                 ("v1", "leaky", "he", 16, 128)]:
        c.append(layers_dense(f"dense_{hdr}_{act}_{init}_d{d}_w{w}", hdr, act, init, d, w))
    return c


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def generate(out: Path) -> list[Case]:
    out.mkdir(parents=True, exist_ok=True)
    all_cases = cases()
    for case in all_cases:
        (out / f"{case.name}.py").write_text(case.source)
    return all_cases


def _clean(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def measure(out: Path, table: Path, only: list[str] | None = None) -> None:
    """Measure every file with tools/measure_tf.py (one process per file: a fresh graph and seed)."""
    results: dict[str, dict] = json.loads(table.read_text()) if table.exists() else {}
    for case in generate(out):
        if only and case.name not in only:
            continue
        path = out / f"{case.name}.py"
        shape = ",".join(str(d) for d in case.shape)
        proc = subprocess.run([sys.executable, str(ROOT / "tools" / "measure_tf.py"), str(path), shape,
                               "--graph", case.graph, "--json"], capture_output=True, text=True)
        if proc.returncode != 0:
            print(case.name, "FAILED", proc.stderr[-800:], file=sys.stderr)
            continue
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        row = {k: _clean(got[k]) for k in ("label", "ratio", "loss", "rel", "first_rel", "nonfinite", "symmetric",
                                             "seed_labels", "seed_ratios")}
        row["input"] = list(case.shape)
        row["sha256"] = sha256(case.source)
        results[case.name] = row
        print(case.name, row["label"], f"{got['ratio']:.2g}", f"loss {got['loss']:.2g}", f"rel {got['rel']:.2g}",
              flush=True)
        table.write_text(json.dumps(results, indent=0, sort_keys=True) + "\n")


#: Findings whose estimate carries a gradient verdict (as tools/gradgen.py ``static``).
GRADIENT_CODES = frozenset({"GRD001", "GRD003", "GRD004", "GRD005", "GRD006", "GRD010", "GRD011", "GRD012"})


def static_label(source: str, filename: str = "generated.py") -> tuple[str, list[str]]:
    """gradlint's static verdict on one file: symmetric for a constant init (GRD002), else the
    verdict of a gradient finding's estimate, else healthy. Reads the source only."""
    from gradlint.engine import LintConfig, lint_source

    result = lint_source(source, filename, LintConfig())
    codes = sorted({d.code for d in result.diagnostics})
    label = "healthy"
    for d in result.diagnostics:
        if d.code == "GRD002":
            label = "symmetric"
        elif d.code in GRADIENT_CODES and label != "symmetric":
            e = d.estimate
            label = (e.verdict if e is not None and e.verdict else
                     ("vanishing" if e is not None and e.log10_weight_ratio < 0 else "exploding"))
    return label, codes


def confusion(rows: list[tuple[str, str, str]]) -> str:
    """A markdown confusion matrix: measured label (rows) × static verdict (columns); borderline unscored."""
    labels = ("vanishing", "exploding", "symmetric", "healthy")
    scored = [r for r in rows if r[1] != "borderline"]
    out = ["| measured \\ static | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for m in labels:
        out.append(f"| {m} | " + " | ".join(str(sum(r[1] == m and r[2] == s for r in scored)) for s in labels) + " |")
    agree = sum(r[1] == r[2] for r in scored)
    out.append(f"\nagree {agree}/{len(scored)}; borderline (not scored) {len(rows) - len(scored)}")
    return "\n".join(out)


def compare(table: Path) -> list[tuple[str, str, str]]:
    labels = json.loads(table.read_text())
    rows = []
    for case in cases():
        row = labels.get(case.name)
        if row is None or row["sha256"] != sha256(case.source):
            continue
        st, codes = static_label(case.source, f"{case.name}.py")
        mark = "" if row["label"] in (st, "borderline") else "  <-- " + ("MISS" if st == "healthy" else "WRONG")
        print(f"{case.name:48s} {row['label']:10s} {st:10s} {','.join(codes)}{mark}")
        rows.append((case.name, row["label"], st))
    print(confusion(rows))
    return rows


def main(argv: list[str]) -> int:
    if argv[:1] == ["compare"]:
        compare(Path(argv[1]))
        return 0
    if argv[:1] == ["generate"]:
        print(len(generate(Path(argv[1]))), "files")
        return 0
    if argv[:1] == ["measure"]:
        measure(Path(argv[1]), Path(argv[2]), argv[3:] or None)
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
