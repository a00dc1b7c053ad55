"""What gradlint knows about the PyTorch and Keras APIs, as plain data.

Names here are canonical qualified names after import aliases are resolved and Keras'
many spellings (``tf.keras``, ``tensorflow.keras``, ``keras.src``, keras 2 submodules) are
folded to ``keras.*``.
"""

from __future__ import annotations

import functools
import math

from gradlint.gradflow import ACTIVATION_ALIASES, activation_alias
from gradlint.model import LayerKind
from gradlint.records import dataclass

# --------------------------------------------------------------------------- activations

# Activations that make a multiplicative gate when one operand of ``*`` ends in them.
GATE_ACTIVATIONS = frozenset({"sigmoid", "hard_sigmoid", "softmax", "tanh", "log_sigmoid"})


def canonical_activation(name: str) -> str | None:
    return activation_alias(name)


# --------------------------------------------------------------------------- torch layers


@dataclass(frozen=True)
class LayerSpec:
    kind: LayerKind
    # positional parameter names of the constructor, in order (for binding call arguments)
    params: tuple[str, ...] = ()
    activation: str | None = None


_CONV_PARAMS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias")
# torch's ConvTranspose*d puts output_padding before groups, and dilation last
_CONV_TRANSPOSE_PARAMS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding",
                          "groups", "bias", "dilation")

TORCH_LAYERS: dict[str, LayerSpec] = {
    "Linear": LayerSpec(LayerKind.DENSE, ("in_features", "out_features", "bias")),
    "LazyLinear": LayerSpec(LayerKind.DENSE, ("out_features", "bias")),
    "Bilinear": LayerSpec(LayerKind.DENSE, ("in1_features", "in2_features", "out_features", "bias")),
    **{f"Conv{d}d": LayerSpec(LayerKind.CONV, _CONV_PARAMS) for d in (1, 2, 3)},
    **{f"ConvTranspose{d}d": LayerSpec(LayerKind.CONV, _CONV_TRANSPOSE_PARAMS) for d in (1, 2, 3)},
    **{f"LazyConv{d}d": LayerSpec(LayerKind.CONV, ("out_channels", "kernel_size")) for d in (1, 2, 3)},
    "Embedding": LayerSpec(LayerKind.EMBEDDING, ("num_embeddings", "embedding_dim")),
    "EmbeddingBag": LayerSpec(LayerKind.EMBEDDING, ("num_embeddings", "embedding_dim")),
    **{n: LayerSpec(LayerKind.RECURRENT, ("input_size", "hidden_size", "num_layers")) for n in
       ("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell")},
    **{n: LayerSpec(LayerKind.ATTENTION) for n in
       ("MultiheadAttention", "Transformer", "TransformerEncoder", "TransformerDecoder",
        "TransformerEncoderLayer", "TransformerDecoderLayer")},
    **{n: LayerSpec(LayerKind.NORMALIZATION) for n in
       ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "LazyBatchNorm1d",
        "LazyBatchNorm2d", "LazyBatchNorm3d", "LayerNorm", "InstanceNorm1d",
        "InstanceNorm2d", "InstanceNorm3d", "LocalResponseNorm", "RMSNorm", "CrossMapLRN2d")},
    "GroupNorm": LayerSpec(LayerKind.NORMALIZATION, ("num_groups", "num_channels", "eps", "affine")),
    **{n: LayerSpec(LayerKind.DROPOUT, ("p", "inplace")) for n in
       ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout")},
    **{n: LayerSpec(LayerKind.POOLING, ("kernel_size", "stride", "padding", "dilation"))
       for n in ("MaxPool1d", "MaxPool2d", "MaxPool3d")},
    **{n: LayerSpec(LayerKind.POOLING, ("kernel_size", "stride", "padding"))
       for n in ("AvgPool1d", "AvgPool2d", "AvgPool3d")},
    **{n: LayerSpec(LayerKind.POOLING, ("output_size",)) for n in
       ("AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
        "AdaptiveMaxPool2d", "AdaptiveMaxPool3d")},
    **{n: LayerSpec(LayerKind.POOLING) for n in ("LPPool1d", "LPPool2d", "FractionalMaxPool2d")},
    # activation modules
    "Sigmoid": LayerSpec(LayerKind.ACTIVATION, (), "sigmoid"),
    "Tanh": LayerSpec(LayerKind.ACTIVATION, (), "tanh"),
    "ReLU": LayerSpec(LayerKind.ACTIVATION, (), "relu"),
    "ReLU6": LayerSpec(LayerKind.ACTIVATION, (), "relu6"),
    "LeakyReLU": LayerSpec(LayerKind.ACTIVATION, ("negative_slope",), "leaky_relu"),
    "PReLU": LayerSpec(LayerKind.ACTIVATION, (), "leaky_relu"),
    "RReLU": LayerSpec(LayerKind.ACTIVATION, (), "leaky_relu"),
    "ELU": LayerSpec(LayerKind.ACTIVATION, ("alpha",), "elu"),
    "CELU": LayerSpec(LayerKind.ACTIVATION, ("alpha",), "celu"),
    "SELU": LayerSpec(LayerKind.ACTIVATION, (), "selu"),
    "GELU": LayerSpec(LayerKind.ACTIVATION, ("approximate",), "gelu"),
    "SiLU": LayerSpec(LayerKind.ACTIVATION, (), "silu"),
    "Mish": LayerSpec(LayerKind.ACTIVATION, (), "mish"),
    "Softplus": LayerSpec(LayerKind.ACTIVATION, (), "softplus"),
    "Softsign": LayerSpec(LayerKind.ACTIVATION, (), "softsign"),
    "Hardtanh": LayerSpec(LayerKind.ACTIVATION, (), "hardtanh"),
    "Hardsigmoid": LayerSpec(LayerKind.ACTIVATION, (), "hard_sigmoid"),
    "Hardswish": LayerSpec(LayerKind.ACTIVATION, (), "hard_swish"),
    "Softmax": LayerSpec(LayerKind.ACTIVATION, ("dim",), "softmax"),
    "Softmax2d": LayerSpec(LayerKind.ACTIVATION, (), "softmax"),
    "LogSoftmax": LayerSpec(LayerKind.ACTIVATION, ("dim",), "log_softmax"),
    "Softmin": LayerSpec(LayerKind.ACTIVATION, (), "softmax"),
    "LogSigmoid": LayerSpec(LayerKind.ACTIVATION, (), "log_sigmoid"),
    "Tanhshrink": LayerSpec(LayerKind.ACTIVATION, (), "other"),
    "Softshrink": LayerSpec(LayerKind.ACTIVATION, (), "other"),
    "Hardshrink": LayerSpec(LayerKind.ACTIVATION, (), "other"),
    "Threshold": LayerSpec(LayerKind.ACTIVATION, ("threshold", "value"), "thresholded_relu"),
    "GLU": LayerSpec(LayerKind.OTHER),  # a gate: halves the input and multiplies by sigmoid
}
# Modules that do not change gradient flow: shape plumbing.
TORCH_PASSTHROUGH = frozenset({
    "Identity", "Flatten", "Unflatten", "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d",
    "PixelShuffle", "PixelUnshuffle", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d",
    "ConstantPad2d", "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d", "ReplicationPad1d",
    "ReplicationPad2d", "ChannelShuffle", "ReflectionPad3d", "ReplicationPad3d",
    "CircularPad1d", "CircularPad2d", "CircularPad3d",
})
# Container constructors -> the ContainerV kind they build.
TORCH_CONTAINER_KINDS: dict[str, str] = {
    "torch.nn.Sequential": "sequential", "torch.nn.ModuleList": "modulelist", "torch.nn.ModuleDict": "moduledict",
}
# Class names of container kinds, for type(m).__name__ and isinstance.
CONTAINER_CLASS_NAMES: dict[str, str] = {
    "sequential": "Sequential", "modulelist": "ModuleList", "moduledict": "ModuleDict",
    "keras_sequential": "Sequential",
}
# Modules whose forward returns (output, hidden): the hidden state carries the same path.
TORCH_TUPLE_OUTPUT = frozenset({"RNN", "LSTM", "GRU", "MultiheadAttention"})
# torch recurrent cells: one time step per call, stepped by a loop in the forward.
TORCH_CELLS = frozenset({"RNNCell", "LSTMCell", "GRUCell"})

# torch.nn.functional / torch / Tensor method names that are activations.
FUNCTIONAL_ACTIVATIONS: dict[str, str] = {
    # F.linear is a weight layer and F.threshold/identity are not activations worth a node.
    name: act for name, act in ACTIVATION_ALIASES.items() if name not in ("linear", "identity", "none", "")
} | {"relu_": "relu", "sigmoid_": "sigmoid", "tanh_": "tanh", "elu_": "elu", "leaky_relu_": "leaky_relu",
     "hardtanh_": "hardtanh", "silu_": "silu", "exp": "exponential", "threshold_": "thresholded_relu"}

# Activations whose arguments pick a member of the ReLU family (``gradflow.relu_family``: a threshold θ,
# a cap, a negative slope, the constant under θ), by framework and name (a layer class, or a function
# after its input): argument -> (role, default when not given; None: required), in positional order.
# One reader (``extract.common.relu_family_member``) serves every spelling: no name is special-cased.
RELU_FAMILY_ARGS: dict[tuple[str, str], dict[str, tuple[str, float | None]]] = {
    ("keras", "ReLU"): {"max_value": ("cap", None), "negative_slope": ("slope", 0.0), "threshold": ("threshold", 0.0)},
    ("keras", "ThresholdedReLU"): {"theta": ("threshold", 1.0)},  # Keras 2: u if u > θ else 0
    ("keras", "relu"): {"negative_slope": ("slope", 0.0), "max_value": ("cap", None), "threshold": ("threshold", 0.0)},
    ("torch", "Threshold"): {"threshold": ("threshold", None), "value": ("below", None)},
    ("torch", "threshold"): {"threshold": ("threshold", None), "value": ("below", None)},
}
FUNCTIONAL_NORMALIZATION = frozenset({"batch_norm", "layer_norm", "group_norm", "instance_norm",
                                      "local_response_norm", "normalize", "rms_norm"})
FUNCTIONAL_POOLING = frozenset({
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d",
    "adaptive_max_pool2d", "adaptive_max_pool3d", "lp_pool2d", "mean", "amax", "max", "sum"})
FUNCTIONAL_DROPOUT = frozenset({"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
                                "feature_alpha_dropout", "drop_path"})
# Tensor plumbing: same values or a re-arrangement; no effect on gradient scale worth modelling.
PASSTHROUGH_CALLS = frozenset({
    "view", "reshape", "flatten", "unflatten", "permute", "transpose", "contiguous", "squeeze",
    "unsqueeze", "expand", "expand_as", "repeat", "clone", "to", "float", "half",
    "double", "type", "type_as", "cuda", "cpu", "chunk", "split", "narrow", "roll", "flip",
    "pad", "interpolate", "upsample", "pixel_shuffle", "pixel_unshuffle", "movedim", "swapaxes",
    "view_as", "reshape_as", "mT", "T", "permute_", "t", "masked_fill",
    "index_select", "gather", "unbind", "stack", "identity", "channel_shuffle", "rearrange",
    "contiguous_format", "squeeze_", "unsqueeze_", "clamp", "clip", "nan_to_num", "abs",
    "rot90", "fliplr", "flipud",
})

# Tensor methods whose result carries the values without their gradient (torch): ``x.detach()``,
# in place ``x.detach_()``, and ``x.numpy()`` / ``x.tolist()``, whose values a ``torch.tensor(...)``
# or ``torch.from_numpy(...)`` turns back into a tensor that no gradient connects to ``x``.
TORCH_GRADIENT_STOPS = frozenset({"detach", "detach_", "numpy", "tolist"})
# Tensor methods / torch functions returning integer indices: the result has no grad_fn, so a loss on
# it cannot train what computed the tensor (read as a stop in training code only; see torch.py).
TORCH_INDEX_OPS = frozenset({"argmax", "argmin", "argsort"})
# torch functions that make a new tensor from data: a copy no gradient flows back through
# (``torch.tensor(x)`` of a tensor copies it as a leaf). ``torch.as_tensor(x)`` and
# ``torch.from_numpy(a)`` keep what they are given (a tensor stays itself; an array has no gradient).
TORCH_DATA_COPIES = frozenset({"tensor", "Tensor", "FloatTensor", "DoubleTensor", "LongTensor"})
TORCH_DATA_VIEWS = frozenset({"as_tensor", "from_numpy", "asarray"})

# --------------------------------------------------------------------------- keras layers

KERAS_LAYERS: dict[str, LayerSpec] = {
    "Dense": LayerSpec(LayerKind.DENSE, ("units", "activation")),
    "EinsumDense": LayerSpec(LayerKind.DENSE, ("equation", "output_shape", "activation")),
    **{n: LayerSpec(LayerKind.CONV, ("filters", "kernel_size", "strides", "padding")) for n in
       ("Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "Convolution3D",
        "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "SeparableConv1D",
        "SeparableConv2D")},
    **{n: LayerSpec(LayerKind.CONV, ("kernel_size", "strides", "padding")) for n in
       ("DepthwiseConv1D", "DepthwiseConv2D")},
    "Embedding": LayerSpec(LayerKind.EMBEDDING, ("input_dim", "output_dim")),
    **{n: LayerSpec(LayerKind.RECURRENT, ("units",)) for n in
       ("SimpleRNN", "LSTM", "GRU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "RNN", "Bidirectional",
        "SimpleRNNCell", "LSTMCell", "GRUCell")},
    **{n: LayerSpec(LayerKind.ATTENTION) for n in ("MultiHeadAttention", "Attention", "AdditiveAttention",
                                                   "GroupQueryAttention")},
    **{n: LayerSpec(LayerKind.NORMALIZATION) for n in
       ("BatchNormalization", "LayerNormalization", "UnitNormalization",
        "SpectralNormalization", "RMSNormalization")},
    "GroupNormalization": LayerSpec(LayerKind.NORMALIZATION, ("groups", "axis")),
    **{n: LayerSpec(LayerKind.DROPOUT, ("rate",)) for n in
       ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout", "AlphaDropout")},
    **{n: LayerSpec(LayerKind.DROPOUT) for n in ("GaussianNoise", "ActivityRegularization")},
    **{n: LayerSpec(LayerKind.POOLING, ("pool_size",)) for n in
       ("MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "MaxPool1D", "MaxPool2D", "MaxPool3D")},
    **{n: LayerSpec(LayerKind.POOLING) for n in
       ("AveragePooling1D", "AveragePooling2D",
        "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
        "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
        "AvgPool1D", "AvgPool2D", "AvgPool3D",
        "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool1D", "GlobalMaxPool2D")},
    "Activation": LayerSpec(LayerKind.ACTIVATION, ("activation",)),
    "ReLU": LayerSpec(LayerKind.ACTIVATION, ("max_value", "negative_slope", "threshold"), "relu"),
    "LeakyReLU": LayerSpec(LayerKind.ACTIVATION, ("negative_slope",), "leaky_relu"),
    "PReLU": LayerSpec(LayerKind.ACTIVATION, (), "leaky_relu"),
    "ELU": LayerSpec(LayerKind.ACTIVATION, ("alpha",), "elu"),
    "Softmax": LayerSpec(LayerKind.ACTIVATION, (), "softmax"),
    "ThresholdedReLU": LayerSpec(LayerKind.ACTIVATION, ("theta",), "thresholded_relu"),
}
KERAS_PASSTHROUGH = frozenset({
    "Flatten", "Reshape", "Permute", "RepeatVector", "InputLayer", "Rescaling", "Normalization",
    "Resizing", "CenterCrop", "RandomFlip", "RandomRotation", "RandomZoom", "RandomCrop",
    "RandomTranslation", "RandomContrast", "Identity", "Masking",
} | {f"ZeroPadding{d}D" for d in (1, 2, 3)} | {f"Cropping{d}D" for d in (1, 2, 3)}
  | {f"UpSampling{d}D" for d in (1, 2, 3)})
KERAS_MERGE_ADD = frozenset({"Add", "add"})
KERAS_MERGE_MULTIPLY = frozenset({"Multiply", "multiply"})
KERAS_MERGE_CONCAT = frozenset({"Concatenate", "concatenate", "Average", "average", "Maximum",
                                "maximum", "Subtract", "subtract", "Dot", "dot"})

# --------------------------------------------------------------------------- initialisers

# torch.nn.init functions -> (canonical scheme, positional parameter names after the tensor)
TORCH_INIT_FUNCTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "zeros_": ("zeros", ()),
    "ones_": ("ones", ()),
    "constant_": ("constant", ("value",)),
    "normal_": ("normal", ("mean", "std")),
    "uniform_": ("uniform", ("a", "b")),
    "trunc_normal_": ("trunc_normal", ("mean", "std", "a", "b")),
    "xavier_uniform_": ("xavier_uniform", ("gain",)),
    "xavier_normal_": ("xavier_normal", ("gain",)),
    "kaiming_uniform_": ("kaiming_uniform", ("a", "mode", "nonlinearity")),
    "kaiming_normal_": ("kaiming_normal", ("a", "mode", "nonlinearity")),
    "orthogonal_": ("orthogonal", ("gain",)),
    "eye_": ("eye", ()),
    "dirac_": ("eye", ()),
    "sparse_": ("sparse", ("sparsity", "std")),
    "lecun_normal_": ("lecun_normal", ()),
    "variance_scaling_": ("variance_scaling", ("scale", "mode", "distribution")),
}
# Deprecated spellings without the trailing underscore.
TORCH_INIT_FUNCTIONS |= {name[:-1]: spec for name, spec in TORCH_INIT_FUNCTIONS.items()}
# In-place tensor methods that initialise: tensor.normal_(mean, std), .fill_(v), .zero_() ...
TENSOR_INIT_METHODS: dict[str, tuple[str, tuple[str, ...]]] = {
    "zero_": ("zeros", ()),
    "fill_": ("constant", ("value",)),
    "normal_": ("normal", ("mean", "std")),
    "uniform_": ("uniform", ("a", "b")),
}

KERAS_INIT_CLASSES: dict[str, tuple[str, tuple[str, ...]]] = {
    "Zeros": ("zeros", ()),
    "Ones": ("ones", ()),
    "Constant": ("constant", ("value",)),
    "RandomNormal": ("random_normal", ("mean", "stddev")),
    "RandomUniform": ("random_uniform", ("minval", "maxval")),
    "TruncatedNormal": ("truncated_normal", ("mean", "stddev")),
    "GlorotUniform": ("glorot_uniform", ()),
    "GlorotNormal": ("glorot_normal", ()),
    "HeUniform": ("he_uniform", ()),
    "HeNormal": ("he_normal", ()),
    "LecunUniform": ("lecun_uniform", ()),
    "LecunNormal": ("lecun_normal", ()),
    "Orthogonal": ("orthogonal", ("gain",)),
    "Identity": ("eye", ("gain",)),
    "VarianceScaling": ("variance_scaling", ("scale", "mode", "distribution")),
}
KERAS_INIT_CLASSES |= {
    "zeros": KERAS_INIT_CLASSES["Zeros"], "ones": KERAS_INIT_CLASSES["Ones"],
    "constant": KERAS_INIT_CLASSES["Constant"], "random_normal": KERAS_INIT_CLASSES["RandomNormal"],
    "random_uniform": KERAS_INIT_CLASSES["RandomUniform"],
    "truncated_normal": KERAS_INIT_CLASSES["TruncatedNormal"],
    "glorot_uniform": KERAS_INIT_CLASSES["GlorotUniform"], "glorot_normal": KERAS_INIT_CLASSES["GlorotNormal"],
    "he_uniform": KERAS_INIT_CLASSES["HeUniform"], "he_normal": KERAS_INIT_CLASSES["HeNormal"],
    "lecun_uniform": KERAS_INIT_CLASSES["LecunUniform"], "lecun_normal": KERAS_INIT_CLASSES["LecunNormal"],
    "orthogonal": KERAS_INIT_CLASSES["Orthogonal"], "identity": KERAS_INIT_CLASSES["Identity"],
    "xavier_uniform": KERAS_INIT_CLASSES["GlorotUniform"], "xavier_normal": KERAS_INIT_CLASSES["GlorotNormal"],
    "variance_scaling": KERAS_INIT_CLASSES["VarianceScaling"],
    # Keras 1/2/3 aliases (keras.initializers.ALL_OBJECTS_DICT; Keras 1 'normal'/'uniform' are also ±0.05 scale)
    "zero": KERAS_INIT_CLASSES["Zeros"], "one": KERAS_INIT_CLASSES["Ones"],
    "normal": KERAS_INIT_CLASSES["RandomNormal"], "uniform": KERAS_INIT_CLASSES["RandomUniform"],
    "IdentityInitializer": KERAS_INIT_CLASSES["Identity"], "OrthogonalInitializer": KERAS_INIT_CLASSES["Orthogonal"],
}

# Layers that only re-arrange values, in either framework.
PASSTHROUGH_LAYERS = TORCH_PASSTHROUGH | KERAS_PASSTHROUGH

# --------------------------------------------------------------------------- model base classes

# A class deriving from one of these builds a model (torch: any *LightningModule too).
TORCH_MODULE_BASES = frozenset({"torch.nn.Module", "torch.nn.Sequential", "torch.nn.ModuleList",
                                "torch.nn.ModuleDict", "lightning.LightningModule",
                                "pytorch_lightning.LightningModule", "lightning.pytorch.LightningModule"})
KERAS_MODEL_BASES = frozenset({"keras.Model", "keras.models.Model", "keras.layers.Layer", "keras.Layer",
                               "keras.Sequential", "keras.models.Sequential"})
# Of those, the bases of a *layer* (part of a model, never trained on its own).
KERAS_LAYER_BASES = frozenset({"keras.layers.Layer", "keras.Layer"})
# Private torch base classes user code tests against: ``isinstance(m, nn.modules.conv._ConvNd)``.
TORCH_ABSTRACT_BASES: dict[str, tuple[str, ...] | None] = {
    "_ConvNd": ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"),
    "_ConvTransposeNd": ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"),
    "_BatchNorm": ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm"),
    "_NormBase": ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "InstanceNorm1d",
                  "InstanceNorm2d", "InstanceNorm3d"),
    "_InstanceNorm": ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"),
    "RNNBase": ("RNN", "LSTM", "GRU"),
    "_RNNBase": ("RNN", "LSTM", "GRU"),
    "Module": None,  # matches every module
}
# Wrappers that return the module they are given (same weights at init), from any library.
MODULE_WRAPPERS = frozenset({
    "weight_norm", "spectral_norm", "DataParallel", "DistributedDataParallel", "compile", "script", "trace",
    "checkpoint_wrapper", "remove_weight_norm", "remove_spectral_norm", "convert_sync_batchnorm",
})

# --------------------------------------------------------------------------- training

CLIP_CALLS = frozenset({"clip_grad_norm_", "clip_grad_value_", "clip_grad_norm", "clip_grad_value",
                        "clip_by_global_norm", "clip_by_norm", "clip_by_value", "clip_gradients"})
CLIP_KWARGS = frozenset({"gradient_clip_val", "clipnorm", "clipvalue", "global_clipnorm", "max_grad_norm",
                         "grad_clip", "clip_grad", "gradient_clipping", "clip_grad_norm", "max_norm"})
# Optimizer class names, whatever library they come from.
OPTIMIZERS = frozenset({"SGD", "Adam", "AdamW", "Adamax", "RMSprop", "Adagrad", "Adadelta", "NAdam", "RAdam",
                        "LBFGS", "SparseAdam", "ASGD", "Rprop", "Lion", "Adafactor", "LAMB", "Lamb", "Nadam",
                        "Ftrl", "Adamw", "Muon"})

# --------------------------------------------------------------------------- star imports

# What ``from MODULE import *`` binds (MODULE folded: ``tensorflow.keras.layers`` -> ``keras.layers``),
# for the framework modules whose API the catalog models: the names of the tables above that the
# module really exports (tests/test_star_imports.py checks each against the installed keras 3 and
# torch), each bound as ``from MODULE import NAME`` would bind it. A name the module exports but the
# catalog does not know stays unbound (UNKNOWN), as any name of an unread module.
STAR_EXPORTS: dict[str, frozenset[str]] = {
    "keras.layers": (frozenset(KERAS_LAYERS) - {"ThresholdedReLU"}) | KERAS_PASSTHROUGH | KERAS_MERGE_ADD
    | KERAS_MERGE_MULTIPLY | KERAS_MERGE_CONCAT | {"Input", "Layer", "Lambda", "TimeDistributed"},
    "keras.models": frozenset({"Sequential", "Model", "load_model", "clone_model"}),
    "keras.initializers": frozenset(KERAS_INIT_CLASSES)
    - {"normal", "one", "uniform", "xavier_normal", "xavier_uniform", "zero"},
    "keras.optimizers": OPTIMIZERS - {"ASGD", "Adamw", "LAMB", "LBFGS", "NAdam", "RAdam", "Rprop", "SparseAdam"},
    "torch.nn": frozenset(TORCH_LAYERS) | TORCH_PASSTHROUGH
    | {"Module", "Sequential", "ModuleList", "ModuleDict", "Parameter", "ParameterList", "ParameterDict",
       "init", "functional"},
    "torch.nn.init": frozenset(TORCH_INIT_FUNCTIONS)
    - {"lecun_normal", "lecun_normal_", "ones", "zeros", "trunc_normal", "variance_scaling", "variance_scaling_"},
}

# --------------------------------------------------------------------------- python

BUILTIN_NAMES = frozenset({
    "range", "len", "int", "float", "bool", "str", "list", "tuple", "dict", "set", "enumerate", "zip",
    "isinstance", "type", "getattr", "setattr", "hasattr", "super", "print", "min", "max", "sum", "abs",
    "round", "sorted", "reversed", "pow", "divmod", "callable", "delattr", "staticmethod", "map", "vars",
    "xrange",  # Python 2's lazy range (a Python 2 script read as Python 3, see gradlint/py2.py)
})
MATH: dict[str, object] = {
    "sqrt": math.sqrt, "log": math.log, "log2": math.log2, "exp": math.exp, "ceil": math.ceil,
    "floor": math.floor, "pow": math.pow, "prod": math.prod, "pi": math.pi, "e": math.e, "inf": math.inf}
# str methods folded on constants (``"conv{}".format(i)``).
# Methods of a framework layer that ``getattr(layer, name, None)`` finds (``reset_parameters``):
# any other name a file never sets on a layer is an attribute gradlint does not know.
LAYER_METHODS = frozenset({"reset_parameters", "_reset_parameters", "forward", "__call__", "apply", "parameters",
                           "named_parameters", "modules", "named_modules", "children", "named_children", "to",
                           "cuda", "cpu", "float", "double", "half", "train", "eval", "requires_grad_",
                           "zero_grad", "state_dict", "load_state_dict", "register_buffer", "register_parameter",
                           "add_module", "extra_repr", "build", "call", "get_config"})
STR_METHODS = frozenset({"find", "startswith", "endswith", "lower", "upper", "split", "replace", "format",
                         "join", "strip", "rstrip", "lstrip", "count", "index", "rfind", "title"})

# --------------------------------------------------------------------------- name folding

_KERAS_PREFIXES = (
    "tensorflow.python.keras.", "tensorflow.keras.", "tf_keras.", "keras.src.", "keras.api.",
    # TF 1.2-1.3 shipped Keras 2 as tf.contrib.keras (same API), its modules under python.keras and
    # its public API under api.keras: the longer spellings first
    "tensorflow.contrib.keras.python.keras.", "tensorflow.contrib.keras.api.keras.", "tensorflow.contrib.keras.",
)


_TF_COMPAT_PREFIXES = ("tensorflow.compat.v1.", "tensorflow.compat.v2.")
_TF_SLIM = "tf_slim."  # TF-Slim as its own package (``import tf_slim as slim``): tf.contrib.slim's API
# Top-level packages whose API the framework handlers model: an import of them is never a project file.
FRAMEWORK_PACKAGES = frozenset(p.split(".")[0] for p in _KERAS_PREFIXES + _TF_COMPAT_PREFIXES) \
    | {"torch", "keras", "tf_slim"}


@functools.lru_cache(maxsize=1 << 16)  # pure, and asked for every attribute of a module name
def fold_name(qualname: str) -> str:
    """Fold the many spellings of one API to one: ``tensorflow.keras.layers.Dense`` ->
    ``keras.layers.Dense``; keras 2 submodules ``keras.layers.core.Dense`` -> ``keras.layers.Dense``;
    ``tensorflow.compat.v1.X`` -> ``tensorflow.X`` (``import tensorflow.compat.v1 as tf``); the TF-Slim
    package ``tf_slim.X`` -> ``tensorflow.contrib.slim.X``."""
    if qualname.startswith(_TF_SLIM):
        qualname = "tensorflow.contrib.slim." + qualname[len(_TF_SLIM):]
    for prefix in _TF_COMPAT_PREFIXES:
        if qualname.startswith(prefix):
            qualname = "tensorflow." + qualname[len(prefix):]
            break
    for prefix in _KERAS_PREFIXES:
        if qualname.startswith(prefix):
            qualname = "keras." + qualname[len(prefix):]
            break
    if qualname.startswith("keras."):
        parts = qualname.split(".")
        for family in ("layers", "initializers", "activations", "models", "ops"):
            if len(parts) > 2 and parts[1] == family:
                return f"keras.{family}.{parts[-1]}"
        if len(parts) > 3 and parts[1] == "api" and parts[2] in ("layers", "initializers", "activations", "models"):
            return f"keras.{parts[2]}.{parts[-1]}"
    if qualname.startswith(("torch.nn.modules.", "torch.nn.init.", "torch.nn.parameter.")):
        # torch.nn.modules.linear.Linear, torch.nn.parameter.Parameter (pygcn's import) -> torch.nn.*
        head = "torch.nn.init." if qualname.startswith("torch.nn.init.") else "torch.nn."
        return head + qualname.rsplit(".", 1)[-1]
    if qualname.startswith("torch.nn.functional."):
        return qualname
    return qualname
