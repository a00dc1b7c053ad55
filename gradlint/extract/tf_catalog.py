"""What gradlint knows about TensorFlow's graph API (TF 1.x, ``tf.compat.v1``, the low-level
TF 2 ops) and ``keras.ops``, as plain data for ``gradlint.extract.tensorflow``.

Names are the part after ``tensorflow.`` once ``catalog.fold_name`` has folded
``tensorflow.compat.v1`` / ``.v2`` away (``nn.relu``, ``layers.dense``, ``random_normal``);
``keras.ops.X`` is looked up as ``ops.X``. Defaults are the ones TensorFlow documents
(reference §2): ``tf.random_normal`` / ``tf.truncated_normal`` draw with **stddev 1.0**,
``tf.random_uniform`` from [0, 1), ``tf.get_variable`` and ``tf.layers.*`` use glorot_uniform
kernels and zero biases, contrib's ``variance_scaling_initializer()`` is He (factor 2, fan_in).
"""

from __future__ import annotations

from gradlint.records import dataclass

# Namespaces whose members are plain ops (tf.nn.relu, tf.math.sigmoid, tf.sigmoid, keras.ops.relu).
OP_NAMESPACES = ("", "nn.", "math.", "ops.", "ops.nn.", "ops.math.", "ops.numpy.", "linalg.", "random.",
                 "compat.v1.nn.", "contrib.rnn.", "nn.rnn_cell.", "image.")

# --------------------------------------------------------------------------- tensors with a known init

# Random/constant tensor factories: name -> (scheme, positional names after `shape`, defaults).
# The init params use gradflow's names: normal/truncated_normal "std"/"stddev", uniform "a"/"b".


@dataclass(frozen=True)
class TensorFactory:
    scheme: str  # normal | truncated_normal | uniform | zeros | ones | constant
    params: tuple[str, ...]  # positional parameter names after the shape
    defaults: tuple[tuple[str, float], ...] = ()


TENSOR_FACTORIES: dict[str, TensorFactory] = {
    "random_normal": TensorFactory("normal", ("mean", "stddev"), (("stddev", 1.0),)),
    "random.normal": TensorFactory("normal", ("mean", "stddev"), (("stddev", 1.0),)),
    "truncated_normal": TensorFactory("truncated_normal", ("mean", "stddev"), (("stddev", 1.0),)),
    "random.truncated_normal": TensorFactory("truncated_normal", ("mean", "stddev"), (("stddev", 1.0),)),
    "random_uniform": TensorFactory("uniform", ("minval", "maxval"), (("minval", 0.0), ("maxval", 1.0))),
    "random.uniform": TensorFactory("uniform", ("minval", "maxval"), (("minval", 0.0), ("maxval", 1.0))),
    "zeros": TensorFactory("zeros", ()),
    "ones": TensorFactory("ones", ()),
    "fill": TensorFactory("constant", ("value",)),
    "eye": TensorFactory("eye", ()),
    # keras.ops (Keras 3): ``ops.ones(shape)``, ``ops.full(shape, fill_value)``, ``ops.eye(n)``
    "ops.zeros": TensorFactory("zeros", ()),
    "ops.ones": TensorFactory("ones", ()),
    "ops.full": TensorFactory("constant", ("value",)),
    "ops.eye": TensorFactory("eye", ()),
}

# --------------------------------------------------------------------------- initializers


@dataclass(frozen=True)
class InitSpec:
    """An initializer constructor: the gradlint scheme and how its arguments map to params.

    ``params``: positional parameter names in order; ``defaults``: values when not given.
    ``tf1_defaults`` override ``defaults`` in TF 1.x graph code, where the native initializers
    (``tf.random_normal_initializer``: stddev 1.0) differ from their TF 2 / Keras versions
    (stddev 0.05)."""

    scheme: str
    params: tuple[str, ...] = ()
    defaults: tuple[tuple[str, float], ...] = ()
    tf1_defaults: tuple[tuple[str, float], ...] | None = None


_NORMAL_TF = InitSpec("normal", ("mean", "stddev"), (("stddev", 0.05),), (("stddev", 1.0),))
_TRUNC_TF = InitSpec("truncated_normal", ("mean", "stddev"), (("stddev", 0.05),), (("stddev", 1.0),))
_UNIFORM_TF = InitSpec("uniform", ("minval", "maxval"), (("minval", -0.05), ("maxval", 0.05)),
                       (("minval", 0.0), ("maxval", 1.0)))
_VARIANCE_SCALING_TF = InitSpec("variance_scaling", ("scale", "mode", "distribution"), (("scale", 1.0),))

# tf.X_initializer / tf.initializers.X / tf.compat.v1.initializers.X (lower case: TF-native)
INITIALIZERS: dict[str, InitSpec] = {
    "random_normal_initializer": _NORMAL_TF,
    "truncated_normal_initializer": _TRUNC_TF,
    "random_uniform_initializer": _UNIFORM_TF,
    "zeros_initializer": InitSpec("zeros"),
    "ones_initializer": InitSpec("ones"),
    "constant_initializer": InitSpec("constant", ("value",), (("value", 0.0),)),
    "glorot_uniform_initializer": InitSpec("glorot_uniform"),
    "glorot_normal_initializer": InitSpec("glorot_normal"),
    "orthogonal_initializer": InitSpec("orthogonal", ("gain",)),
    "identity_initializer": InitSpec("eye", ("gain",)),
    "variance_scaling_initializer": _VARIANCE_SCALING_TF,
    # U(±√3·factor/√fan_in): variance factor²/fan_in
    "uniform_unit_scaling_initializer": InitSpec("variance_scaling", ("factor",), (("factor", 1.0),)),
    "initializers.random_normal": _NORMAL_TF,
    "initializers.truncated_normal": _TRUNC_TF,
    "initializers.random_uniform": _UNIFORM_TF,
    "initializers.zeros": InitSpec("zeros"),
    "initializers.ones": InitSpec("ones"),
    "initializers.constant": InitSpec("constant", ("value",), (("value", 0.0),)),
    "initializers.glorot_uniform": InitSpec("glorot_uniform"),
    "initializers.glorot_normal": InitSpec("glorot_normal"),
    "initializers.he_normal": InitSpec("he_normal"),
    "initializers.he_uniform": InitSpec("he_uniform"),
    "initializers.lecun_normal": InitSpec("lecun_normal"),
    "initializers.lecun_uniform": InitSpec("lecun_uniform"),
    "initializers.orthogonal": InitSpec("orthogonal", ("gain",)),
    "initializers.identity": InitSpec("eye", ("gain",)),
    "initializers.variance_scaling": _VARIANCE_SCALING_TF,
    "initializers.uniform_unit_scaling": InitSpec("variance_scaling", ("factor",), (("factor", 1.0),)),
    # tf.contrib.layers (also tf.contrib.slim)
    "contrib.layers.xavier_initializer": InitSpec("glorot_uniform"),  # uniform=False: glorot_normal
    "contrib.layers.xavier_initializer_conv2d": InitSpec("glorot_uniform"),
    # factor=2.0, mode='FAN_IN', uniform=False: He; the distribution is variance-corrected (1.3·factor/n, truncated)
    "contrib.layers.variance_scaling_initializer": InitSpec("variance_scaling", ("factor", "mode", "uniform"),
                                                            (("factor", 2.0),)),
}

# --------------------------------------------------------------------------- ops


@dataclass(frozen=True)
class ConvSpec:
    """tf.nn convolution ops: where the filter is and how its shape maps to fans."""

    dims: int  # spatial dimensions of the kernel
    filter_names: tuple[str, ...] = ("filter", "filters", "kernel")
    transpose: bool = False  # filter [.., out, in]
    depthwise: bool = False  # filter [.., in, multiplier]


CONV_OPS: dict[str, ConvSpec] = {
    "conv1d": ConvSpec(1),
    "conv2d": ConvSpec(2),
    "conv3d": ConvSpec(3),
    "convolution": ConvSpec(2),
    "atrous_conv2d": ConvSpec(2),
    "conv2d_transpose": ConvSpec(2, transpose=True),
    "conv3d_transpose": ConvSpec(3, transpose=True),
    "conv1d_transpose": ConvSpec(1, transpose=True),
    "depthwise_conv2d": ConvSpec(2, depthwise=True),
    # keras.ops
    "conv": ConvSpec(2),
    "conv_transpose": ConvSpec(2, transpose=True),
    "depthwise_conv": ConvSpec(2, depthwise=True),
}

MATMUL_OPS = frozenset({"matmul", "dot", "mm", "tensordot"})
ADD_OPS = frozenset({"add", "add_v2", "bias_add", "subtract", "sub"})  # tf.sub: TF 0.x
MULTIPLY_OPS = frozenset({"multiply", "mul"})
ACTIVATION_OPS = frozenset({
    "sigmoid", "tanh", "relu", "relu6", "elu", "selu", "celu", "gelu", "silu", "swish", "softplus", "softsign",
    "leaky_relu", "hard_sigmoid", "hard_silu", "hard_swish", "softmax", "log_softmax", "log_sigmoid", "mish",
    "exp", "crelu",
})
# TF's leaky_relu defaults to alpha=0.2 (torch: 0.01, Keras LeakyReLU layer: 0.3).
LEAKY_RELU_DEFAULT = 0.2
NORMALIZATION_OPS = frozenset({
    "batch_normalization", "fused_batch_norm", "batch_norm", "layer_norm", "layer_normalization",
    "lrn", "local_response_normalization", "rms_normalization", "group_norm", "instance_norm",
})
DROPOUT_OPS = frozenset({"dropout", "alpha_dropout"})
# Same values or a re-arrangement: no effect on gradient scale worth modelling.
PASSTHROUGH_OPS = frozenset({
    "reshape", "flatten", "squeeze", "expand_dims", "transpose", "identity", "cast", "to_float", "pad",
    "max_pool", "avg_pool", "max_pool2d", "avg_pool2d", "max_pool1d", "avg_pool1d", "max_pool3d", "avg_pool3d",
    "max_pooling1d", "max_pooling2d", "max_pooling3d", "average_pooling1d", "average_pooling2d",
    "average_pooling3d", "reduce_mean", "reduce_max", "reduce_sum", "reduce_min", "mean", "max", "sum",
    "clip_by_value", "tile", "gather", "slice", "strided_slice", "resize_images", "resize_bilinear",
    "resize_nearest_neighbor", "image.resize", "image.resize_images", "image.resize_bilinear",
    "space_to_depth", "depth_to_space", "pool", "spatial_squeeze", "global_avg_pool", "maximum", "minimum",
    "abs", "square", "negative", "neg", "boolean_mask", "nn.moments", "l2_normalize",
})
# Passthrough ops that bound a probability away from 0 before a log (``tf.clip_by_value(p, 1e-10, 1.0)``).
FLOOR_OPS = frozenset({"clip_by_value", "maximum"})
CONCAT_OPS = frozenset({"concat", "concatenate", "stack", "add_n"})
SPLIT_OPS = frozenset({"split", "unstack"})
# Not differentiable: the path ends in an explicit unknown (``stop_gradient`` is a gradient stop instead).
BARRIER_OPS = frozenset({"argmax", "argmin", "round", "sign", "floor", "ceil", "one_hot"})
RNN_OPS = frozenset({"dynamic_rnn", "static_rnn", "bidirectional_dynamic_rnn", "raw_rnn", "static_bidirectional_rnn"})
LOG_OPS = frozenset({"log", "log1p"})

# tf.layers / tf.contrib.layers / slim layer functions (applied to the input at once).


@dataclass(frozen=True)
class LayerFunction:
    kind: str  # dense | conv | batch_norm | dropout | passthrough
    params: tuple[str, ...]  # positional names after `inputs`
    units: str = "units"
    activation: str = "activation"  # the activation argument
    default_activation: str | None = None  # contrib.layers: relu
    kernel_initializer: str = "kernel_initializer"
    bias_initializer: str = "bias_initializer"
    use_bias: str = "use_bias"
    dims: int = 2
    contrib: bool = False  # normalizer_fn=, biases_initializer=None disables the bias


_DENSE = LayerFunction("dense", ("units", "activation", "use_bias", "kernel_initializer", "bias_initializer"))
_CONTRIB_FC = LayerFunction("dense", ("num_outputs", "activation_fn", "normalizer_fn", "normalizer_params",
                                      "weights_initializer"), units="num_outputs", activation="activation_fn",
                            default_activation="relu", kernel_initializer="weights_initializer",
                            bias_initializer="biases_initializer", contrib=True)


def _conv(dims: int) -> LayerFunction:
    return LayerFunction("conv", ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
                                  "activation"), units="filters", dims=dims)


def _contrib_conv(dims: int) -> LayerFunction:
    return LayerFunction("conv", ("num_outputs", "kernel_size", "stride", "padding", "data_format", "rate",
                                  "activation_fn"), units="num_outputs", activation="activation_fn",
                         default_activation="relu", kernel_initializer="weights_initializer",
                         bias_initializer="biases_initializer", dims=dims, contrib=True)


LAYER_FUNCTIONS: dict[str, LayerFunction] = {
    "layers.dense": _DENSE,
    "layers.conv1d": _conv(1),
    "layers.conv2d": _conv(2),
    "layers.conv3d": _conv(3),
    "layers.conv2d_transpose": _conv(2),
    "layers.conv3d_transpose": _conv(3),
    "layers.separable_conv2d": _conv(2),
    "contrib.layers.fully_connected": _CONTRIB_FC,
    "contrib.layers.linear": LayerFunction("dense", ("num_outputs",), units="num_outputs", activation="activation_fn",
                                           kernel_initializer="weights_initializer",
                                           bias_initializer="biases_initializer", contrib=True),
    "contrib.layers.conv2d": _contrib_conv(2),
    "contrib.layers.convolution2d": _contrib_conv(2),
    "contrib.layers.conv1d": _contrib_conv(1),
    "contrib.layers.convolution1d": _contrib_conv(1),
    "contrib.layers.conv3d": _contrib_conv(3),
    "contrib.layers.conv2d_transpose": _contrib_conv(2),
    "contrib.layers.convolution2d_transpose": _contrib_conv(2),
}
LAYER_NORMALIZATION = frozenset({"layers.batch_normalization", "contrib.layers.batch_norm",
                                 "contrib.layers.layer_norm", "contrib.layers.group_norm",
                                 "contrib.layers.instance_norm"})
LAYER_DROPOUT = frozenset({"layers.dropout", "contrib.layers.dropout"})
LAYER_PASSTHROUGH = frozenset({
    "layers.flatten", "contrib.layers.flatten", "layers.max_pooling1d", "layers.max_pooling2d",
    "layers.max_pooling3d", "layers.average_pooling1d", "layers.average_pooling2d", "layers.average_pooling3d",
    "contrib.layers.max_pool2d", "contrib.layers.avg_pool2d",
})

# --------------------------------------------------------------------------- losses and training


@dataclass(frozen=True)
class LossFunction:
    from_logits: bool  # applies sigmoid/softmax itself
    prediction: tuple[str, ...]  # keyword names of the prediction, in preference order
    position: int = 1  # positional index of the prediction (after the labels)


_LOGITS = LossFunction(True, ("logits",))
_PREDICTIONS = LossFunction(False, ("predictions",))

LOSSES: dict[str, LossFunction] = {
    "nn.softmax_cross_entropy_with_logits": _LOGITS,
    "nn.softmax_cross_entropy_with_logits_v2": _LOGITS,
    "nn.sparse_softmax_cross_entropy_with_logits": _LOGITS,
    "nn.sigmoid_cross_entropy_with_logits": _LOGITS,
    "nn.weighted_cross_entropy_with_logits": _LOGITS,
    "losses.softmax_cross_entropy": _LOGITS,
    "losses.sparse_softmax_cross_entropy": _LOGITS,
    "losses.sigmoid_cross_entropy": _LOGITS,
    "losses.log_loss": _PREDICTIONS,
    "losses.mean_squared_error": _PREDICTIONS,
    "losses.absolute_difference": _PREDICTIONS,
    "losses.huber_loss": _PREDICTIONS,
    "losses.hinge_loss": LossFunction(False, ("logits",)),
    "losses.cosine_distance": _PREDICTIONS,
    "losses.mean_pairwise_squared_error": _PREDICTIONS,
}
# TF losses that want probabilities (fed logits by mistake): log_loss, and -sum(y * log(p)) by hand.
PROBABILITY_LOSSES = frozenset({"log_loss", "log"})

OPTIMIZER_NAMESPACES = ("train.", "contrib.opt.", "optimizers.")
# opt.minimize(loss): backward and step at once; compute_gradients/apply_gradients split them.
MINIMIZE = "minimize"
COMPUTE_GRADIENTS = frozenset({"compute_gradients", "get_gradients"})
APPLY_GRADIENTS = "apply_gradients"

# Names that only TF 1.x graph code uses: they decide which defaults the initializers have.
TF1_MARKERS = frozenset({"placeholder", "Session", "InteractiveSession", "get_variable", "variable_scope",
                         "contrib", "global_variables_initializer", "initialize_all_variables",
                         "disable_v2_behavior", "disable_eager_execution", "v1"})
