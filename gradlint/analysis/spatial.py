"""Spatial sizes along a model's main path, for the estimate of conv layers.

A conv layer's weight gradient sums over every position it is applied at, and the offsets that
examples share (biases, the mean of a ReLU) are shared by the positions too: over B·P terms of a
batch of feature maps they add up coherently, where a dense layer sums B. The MSE of a conv head
averages over its positions. Global average pooling leaves, per unit, the offset plus 1/P of each
example's fluctuation. A transposed conv's input pixels sit ``stride`` apart in its output, so each
output sums only the kernel taps that land on it (k²/s² in the interior, 1 per input channel for a
1×1 input and a stride-1 kernel: the DCGAN generator's first layer), and near the borders a
padded conv sums fewer taps than its kernel has. (Measured, 6-layer conv stacks at 32×32, kernel
3/5, stride 1/2, with/without BatchNorm, ReLU/tanh, three inits: the first/last ratio was
estimated 0.6 decades off in the median without these terms, up to 1.6.)

``Tracker`` follows the per-example spatial size (one int per spatial axis) through the path from
the model input's, and says for each conv layer how many positions it sees; None wherever a layer
on the way is not understood (a resampling, an unknown call, a dense layer), and then the
estimate treats the layers as if they saw one position, as a dense layer does.
"""

from __future__ import annotations

import functools
import math

from gradlint.model import InputHint, Layer, LayerKind, Window
from gradlint.records import dataclass

Dims = tuple[int, ...]
#: Layer kinds that keep a feature map's spatial size.
_KEEP_KINDS = (LayerKind.ACTIVATION, LayerKind.NORMALIZATION, LayerKind.DROPOUT, LayerKind.SCALE)
#: OTHER layers that keep it (torch / Keras pass-throughs that only relabel or copy).
_KEEP_OPS = frozenset({"Identity", "InputLayer", "Rescaling", "Normalization", "RandomFlip", "RandomRotation",
                       "RandomZoom", "RandomTranslation", "RandomContrast", "Masking", "ChannelShuffle"})
_MAX_POSITIONS = 1 << 30
_MAX_AXIS = 1 << 16  # longer axes are not counted tap by tap


@dataclass(frozen=True)
class ConvSpatial:
    """What a conv layer sees on an input of known spatial size."""

    uses: float  # positions per example each weight is applied at (in bounds)
    out_positions: int  # positions per example of its output
    taps: float  # in-bounds kernel taps an output sums per input channel, on average
    out_dims: Dims


def input_dims(hint: InputHint | None, framework: str) -> Dims | None:
    """The spatial size of the model's input, from its hint (torch channels first, Keras last)."""
    if hint is None or not hint.shape or hint.kind not in ("image", "sequence"):
        return None
    shape = tuple(hint.shape)
    if not all(isinstance(d, int) and d > 0 for d in shape) or len(shape) < 2:
        return None
    return shape[:-1] if framework in ("keras", "tensorflow") else shape[1:]


@functools.lru_cache(maxsize=4096)  # pure; a model zoo repeats a few geometries thousands of times
def _axis(n: int, k: int, s: int, d: int, pad: int, out_pad: int, transposed: bool, n_out: int | None = None
          ) -> tuple[int, int] | None:
    """(output size, in-bounds (input, tap) pairs) along one axis; None for an empty output.
    ``n_out``: the output size when the padding mode decides it (``"same"``, Keras' transposed)."""
    if n > _MAX_AXIS or k > _MAX_AXIS:
        return None
    if transposed:
        size = n_out if n_out is not None else (n - 1) * s - 2 * pad + d * (k - 1) + out_pad + 1
        if size <= 0:
            return None
        pairs = sum(1 for i in range(n) for t in range(k) if 0 <= i * s - pad + t * d < size)
        return size, pairs
    size = n_out if n_out is not None else (n + 2 * pad - d * (k - 1) - 1) // s + 1
    if size <= 0:
        return None
    pairs = sum(1 for o in range(size) for t in range(k) if 0 <= o * s - pad + t * d < n)
    return size, pairs


@functools.lru_cache(maxsize=4096)  # pure: the power iteration cost torchvision/models a sixth of its lint
def _perron_taps(n: int, k: int, d: int, pad: int) -> float:
    """The growth per layer of a variance profile under a stride-1 conv that keeps the size n: the top
    eigenvalue of its in-bounds tap matrix (power iteration). Repeated layers concentrate the variance
    away from the borders, so after a few layers each output sums more than the average tap count
    (k = 3 on n = 4: 2.62 against 2.5); the first layer on a uniform input sums the average."""
    if n > 1024:
        return sum(1 for o in range(n) for t in range(k) if 0 <= o - pad + t * d < n) / n
    v = [1.0] * n
    value = float(k)
    for _ in range(60):
        w = [sum(v[o - pad + t * d] for t in range(k) if 0 <= o - pad + t * d < n) for o in range(n)]
        total = sum(w)
        if total <= 0:
            return 0.0
        value = total / sum(v)
        v = [x * n / total for x in w]
    return value


def _paddings(w: Window, dims: Dims, framework: str) -> tuple[tuple[int, ...], tuple[int, ...] | None] | None:
    """Left padding per axis, and for Keras' transposed convs the output size (its own formula)."""
    if isinstance(w.padding, tuple):
        return (w.padding, None) if len(w.padding) == len(dims) else None
    if w.padding == "valid":
        if w.transposed and framework != "torch":  # Keras: n·s + max(span − s, 0)
            out = tuple(n * s + max(d * (k - 1) + 1 - s, 0) for n, k, s, d in zip(dims, w.kernel, w.stride, w.dilation,
                                                                                  strict=True))
            return (0,) * len(dims), out
        return (0,) * len(dims), None
    # "same": torch (stride 1) pads d·(k − 1) in total, Keras max((⌈n/s⌉ − 1)·s + span − n, 0); left half
    if w.transposed:
        out = tuple(n * s for n, s in zip(dims, w.stride, strict=True))
        lefts = tuple(max((n - 1) * s + d * (k - 1) + 1 - o, 0) // 2
                      for n, k, s, d, o in zip(dims, w.kernel, w.stride, w.dilation, out, strict=True))
        return lefts, out
    lefts = tuple(max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0) // 2
                  for n, k, s, d in zip(dims, w.kernel, w.stride, w.dilation, strict=True))
    return lefts, tuple(-(-n // s) for n, s in zip(dims, w.stride, strict=True))


def conv_spatial(w: Window, dims: Dims, framework: str) -> ConvSpatial | None:
    """Positions a conv (or transposed conv) layer sees on an input of spatial size ``dims``."""
    axes = len(dims)
    if len(w.kernel) != axes or len(w.stride) != axes or len(w.dilation) != axes or w.output:
        return None
    pads = _paddings(w, dims, framework)
    if pads is None:
        return None
    lefts, outs = pads
    out_pad = w.output_padding if len(w.output_padding) == axes else (0,) * axes
    sizes: list[int] = []
    taps = uses = 1.0
    for i in range(axes):
        got = _axis(dims[i], w.kernel[i], w.stride[i], w.dilation[i], lefts[i], out_pad[i], w.transposed,
                    outs[i] if outs is not None else None)
        if got is None:
            return None
        size, pairs = got
        sizes.append(size)
        if not w.transposed and w.stride[i] == 1 and size == dims[i]:
            taps *= _perron_taps(size, w.kernel[i], w.dilation[i], lefts[i])
        else:
            taps *= pairs / size
        uses *= pairs / w.kernel[i]
    positions = math.prod(sizes)
    if positions > _MAX_POSITIONS or taps <= 0:
        return None
    return ConvSpatial(uses, positions, taps, tuple(sizes))


def pool_dims(w: Window, dims: Dims, framework: str) -> tuple[Dims, int] | None:
    """(spatial size after a pooling window, positions one output averages or takes the max of)."""
    axes = len(dims)
    if w.output:
        if len(w.output) != axes or any(o > n for o, n in zip(w.output, dims, strict=True)):
            return None
        positions = math.prod(dims) // max(math.prod(w.output), 1)
        return tuple(w.output), max(positions, 1)
    if len(w.kernel) != axes or len(w.stride) != axes:
        return None
    dilation = w.dilation if len(w.dilation) == axes else (1,) * axes
    sizes: list[int] = []
    for n, k, s, d, p in zip(dims, w.kernel, w.stride, dilation, _pool_pads(w, dims, framework), strict=True):
        if w.padding == "same":
            size = -(-n // s)
        else:
            size = (n + 2 * p - d * (k - 1) - 1) // s + 1
        if size <= 0:
            return None
        sizes.append(size)
    return tuple(sizes), math.prod(w.kernel)


def _pool_pads(w: Window, dims: Dims, framework: str) -> tuple[int, ...]:
    if isinstance(w.padding, tuple) and len(w.padding) == len(dims):
        return w.padding
    return (0,) * len(dims)


def reduced_dims(w: Window, dims: Dims) -> tuple[Dims, int] | None:
    """A torch mean over tensor axes ``w.reduce`` of a (batch, channels, *dims) map: the spatial size
    left and the positions averaged; None when it reduces the batch or the channels."""
    rank = len(dims) + 2
    axes = {a + rank if a < 0 else a for a in w.reduce}
    if not axes or any(a < 2 or a >= rank for a in axes):
        return None
    kept = tuple(n for i, n in enumerate(dims) if i + 2 not in axes)
    averaged = math.prod(n for i, n in enumerate(dims) if i + 2 in axes)
    return kept, averaged


def keeps_dims(layer: Layer) -> bool:
    return layer.kind in _KEEP_KINDS or (layer.kind == LayerKind.OTHER and layer.op in _KEEP_OPS)


def is_resample(layer: Layer) -> bool:
    """An OTHER layer that says how it changes the spatial size (upsampling, pixel shuffle, padding)."""
    w = layer.window
    return layer.kind == LayerKind.OTHER and w is not None and bool(w.scale or w.added or w.output)


def resampled_dims(w: Window, dims: Dims) -> Dims | None:
    """The spatial size after a resampling (``Window.scale`` / ``added`` / ``output``, one value for
    every axis or one per axis; a padding's ``added`` counts the last axes); None when it does not fit."""
    axes = len(dims)
    if w.output:
        out = w.output * axes if len(w.output) == 1 else w.output
        return tuple(out) if len(out) == axes and all(v > 0 for v in out) else None
    sizes = list(dims)
    if w.scale:
        scale = w.scale * axes if len(w.scale) == 1 else w.scale
        if len(scale) != axes:
            return None
        sizes = [math.floor(n * s + 1e-9) for n, s in zip(sizes, scale, strict=True)]
    if w.added:
        if len(w.added) > axes:
            return None  # pads the channels too
        for i, a in enumerate(w.added):
            sizes[axes - len(w.added) + i] += a
    if any(n <= 0 or n > _MAX_AXIS for n in sizes):
        return None
    return tuple(sizes)
