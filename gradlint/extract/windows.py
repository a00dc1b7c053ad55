"""Spatial windows of torch conv and pooling layers, from their literal arguments (``model.Window``).

The analysis follows the spatial size of a feature map through them (``gradlint.analysis.spatial``):
how many positions a conv weight is applied at, how many a pooling averages. Anything not literal
leaves the window unknown (None), and the spatial size after it unknown.
"""

from __future__ import annotations

import math

from gradlint.extract.common import is_none, positive_int
from gradlint.extract.values import Const, ListV, Value
from gradlint.model import Window


def literal_ints(value: Value | None, dims: int, default: int | None = None) -> tuple[int, ...] | None:
    """``3`` / ``(3, 3)`` / ``[3, 3]`` as one int per spatial axis; ``default`` when not given."""
    if value is None or is_none(value):
        return (default,) * dims if default is not None else None
    if isinstance(value, Const):
        v = value.value
        if isinstance(v, int) and not isinstance(v, bool):
            return (v,) * dims if v >= 0 else None
        if isinstance(v, tuple) and len(v) == dims and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0
                                                          for i in v):
            return tuple(v)
        return None
    if isinstance(value, ListV) and len(value.items) == dims:
        out: list[int] = []
        for item in value.items:
            if not (isinstance(item, Const) and isinstance(item.value, int) and not isinstance(item.value, bool)
                    and item.value >= 0):
                return None
            out.append(item.value)
        return tuple(out)
    return None


def _padding(value: Value | None, dims: int) -> tuple[int, ...] | str | None:
    if isinstance(value, Const) and isinstance(value.value, str):
        return value.value.lower() if value.value.lower() in ("same", "valid") else None
    return literal_ints(value, dims, 0)


def conv_window(bound: dict[str, Value], dims: int, transposed: bool) -> Window | None:
    """``nn.Conv2d(..., kernel_size, stride=1, padding=0, dilation=1)`` / ``ConvTranspose2d(...,
    output_padding=0)`` as a window; None when an argument is not literal."""
    kernel = literal_ints(bound.get("kernel_size"), dims)
    stride = literal_ints(bound.get("stride"), dims, 1)
    padding = _padding(bound.get("padding"), dims)
    dilation = literal_ints(bound.get("dilation"), dims, 1)
    output_padding = literal_ints(bound.get("output_padding"), dims, 0) if transposed else ()
    if kernel is None or stride is None or padding is None or dilation is None or output_padding is None:
        return None
    if 0 in kernel or 0 in stride or 0 in dilation:
        return None
    return Window(kernel, stride, padding, dilation, transposed, output_padding)


def pool_window(leaf: str, bound: dict[str, Value], dims: int) -> Window | None:
    """``MaxPool2d(k, stride=k, padding=0, dilation=1)``, ``AvgPool2d(k, stride=k, padding=0)``,
    ``AdaptiveAvgPool2d(output_size)`` (and their ``F.`` forms) as a window."""
    name = leaf.lower()
    if "adaptive" in name:
        output = literal_ints(bound.get("output_size"), dims)
        if output is None or 0 in output:
            return None
        return Window(output=output)
    kernel = literal_ints(bound.get("kernel_size"), dims)
    if kernel is None or 0 in kernel:
        return None
    stride = literal_ints(bound.get("stride"), dims, None) if "stride" in bound and not is_none(bound["stride"]) \
        else kernel
    padding = literal_ints(bound.get("padding"), dims, 0)
    dilation = literal_ints(bound.get("dilation"), dims, 1)
    if stride is None or padding is None or dilation is None or 0 in stride or 0 in dilation:
        return None
    return Window(kernel, stride, padding, dilation)


def reduced_axes(value: Value | None) -> tuple[int, ...] | None:
    """The axes of ``x.mean(dim)``: an int or a tuple/list of ints; None when not literal or absent."""
    if value is None or is_none(value):
        return None
    if isinstance(value, Const) and isinstance(value.value, int) and not isinstance(value.value, bool):
        return (value.value,)
    if isinstance(value, Const) and isinstance(value.value, tuple) and value.value and all(
            isinstance(i, int) and not isinstance(i, bool) for i in value.value):
        return tuple(value.value)
    if isinstance(value, ListV) and value.items and all(
            isinstance(i, Const) and isinstance(i.value, int) and not isinstance(i.value, bool) for i in value.items):
        return tuple(int(i.value) for i in value.items)  # type: ignore[attr-defined]
    return None


#: Resampling modules and functions whose effect on the spatial size ``resample_window`` reads.
UPSAMPLES = frozenset({"Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "interpolate", "upsample",
                       "upsample_nearest", "upsample_bilinear"})
SHUFFLES = frozenset({"PixelShuffle", "PixelUnshuffle", "pixel_shuffle", "pixel_unshuffle"})
PADS = frozenset({"ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
                  "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d",
                  "ReplicationPad3d", "CircularPad1d", "CircularPad2d", "CircularPad3d", "pad"})
#: Their parameters after the input (modules: their constructor's).
RESAMPLE_PARAMS: dict[str, tuple[str, ...]] = {
    **{n: ("size", "scale_factor", "mode", "align_corners") for n in UPSAMPLES},
    "PixelShuffle": ("upscale_factor",), "pixel_shuffle": ("upscale_factor",),
    "PixelUnshuffle": ("downscale_factor",), "pixel_unshuffle": ("downscale_factor",),
    **{n: ("padding",) for n in PADS if n.startswith(("Zero", "Reflection", "Replication", "Circular"))},
    **{n: ("padding", "value") for n in PADS if n.startswith("Constant")},
    "pad": ("pad", "mode", "value"),
    # copies along an axis (x.repeat_interleave(2, dim=2): a nearest upsampling of one axis): the values
    # passed on, the spatial size after them not followed
    "repeat_interleave": (), "tile": (),
    # sliding windows (F.unfold's im2col, x.unfold(dim, size, step)): copies of the values, gain 1
    "unfold": (),
}


def _number(value: Value | None) -> float | None:
    if isinstance(value, Const) and isinstance(value.value, (int, float)) and not isinstance(value.value, bool) \
            and value.value > 0:
        return float(value.value)
    return None


def _numbers(value: Value | None) -> tuple[float, ...] | None:
    """``2`` / ``2.0`` / ``(2, 2)`` / ``[2, 2]`` as one factor (every axis) or one per axis."""
    one = _number(value)
    if one is not None:
        return (one,)
    raw: tuple[object, ...] | None = value.value if isinstance(value, Const) and isinstance(value.value, tuple) \
        else tuple(i.value if isinstance(i, Const) else None for i in value.items) if isinstance(value, ListV) else None
    out: list[float] = []
    for v in raw or ():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
            return None
        out.append(float(v))
    return tuple(out) or None


def resample_window(leaf: str, bound: dict[str, Value]) -> Window | None:
    """How a torch resampling maps the spatial size, from literal arguments: ``nn.Upsample(scale_factor=2)``
    / ``F.interpolate(x, size=(64, 64))``, ``PixelShuffle(r)`` (each axis ×r) / ``PixelUnshuffle(r)``,
    ``nn.ZeroPad2d(1)`` / ``F.pad(x, (l, r, t, b))`` (the last axes first, as torch reads them); None
    when an argument is not literal (the spatial size after it is then unknown)."""
    if leaf in UPSAMPLES:
        size = bound.get("size")
        if size is not None and not is_none(size):
            sizes = _numbers(size)
            if sizes is None or not all(v == int(v) for v in sizes):
                return None
            return Window(output=tuple(int(v) for v in sizes))
        factors = _numbers(bound.get("scale_factor"))
        return Window(scale=factors) if factors is not None else None
    if leaf in SHUFFLES:
        factor = _number(bound.get("upscale_factor", bound.get("downscale_factor")))
        if factor is None or factor != int(factor):
            return None
        return Window(scale=(factor if "nshuffle" not in leaf.lower() else 1.0 / factor,))
    if leaf not in PADS:
        return None
    raw = bound.get("pad", bound.get("padding"))
    if leaf != "pad" and isinstance(raw, Const) and isinstance(raw.value, int) and not isinstance(raw.value, bool):
        pads = (raw.value,) * (2 * int(leaf[-2]))
    else:
        got = literal_ints(raw, len(raw.items) if isinstance(raw, ListV) else
                           len(raw.value) if isinstance(raw, Const) and isinstance(raw.value, tuple) else 0)
        if not got or len(got) % 2:
            return None
        pads = got
    pairs = [(pads[i], pads[i + 1]) for i in range(0, len(pads), 2)][::-1]  # torch: the last axis first
    mode = bound.get("mode")
    value = bound.get("value")
    constant = leaf.startswith(("Zero", "Constant")) or (leaf == "pad" and (
        mode is None or isinstance(mode, Const) and mode.value == "constant"))
    zero = constant and (value is None or is_none(value) or isinstance(value, Const) and value.value == 0)
    symmetric = all(a == b for a, b in pairs)
    return Window(added=tuple(a + b for a, b in pairs),
                  zero_pad=tuple(a for a, _ in pairs) if zero and symmetric else ())


def view_window(args: list[Value]) -> Window | None:
    """``x.view(-1, 256, 4, 4)`` / ``x.reshape(b, c, 8, 8)`` / ``nn.Unflatten(1, (256, 4, 4))``: a feature
    map of literal spatial size again (the batch axis first, anything; channels and 2 or 3 spatial axes
    literal), as its output size; None for any other shape (a flatten, attention heads, unknown sizes)."""
    if len(args) == 1 and isinstance(args[0], (Const, ListV)):
        items: list[Value] = list(args[0].items) if isinstance(args[0], ListV) else \
            [Const(v) for v in args[0].value] if isinstance(args[0].value, tuple) else []
    else:
        items = list(args)
    rest = items[1:]
    if len(rest) not in (3, 4):
        return None
    sizes = [positive_int(v) for v in rest]
    if any(v is None for v in sizes):
        return None
    return Window(output=tuple(v for v in sizes[1:] if v is not None))


def literal_axis(value: Value | None) -> int | None:
    """A softmax's ``dim`` when it is a literal integer."""
    if isinstance(value, Const) and isinstance(value.value, int) and not isinstance(value.value, bool):
        return int(value.value)
    return None


def window_area(value: Value | None, dims: int, default: int | None = None) -> int | None:
    """A pooling window's area from ``kernel_size``/``pool_size`` (an int or a tuple of ints)."""
    if value is None and default is not None:
        return default ** dims
    if isinstance(value, Const) and isinstance(value.value, int) and not isinstance(value.value, bool):
        return int(value.value) ** dims if value.value > 0 else None
    if isinstance(value, Const) and isinstance(value.value, tuple) and len(value.value) == dims \
            and all(isinstance(v, int) and v > 0 for v in value.value):
        return math.prod(value.value)
    if isinstance(value, ListV) and len(value.items) == dims and all(
            isinstance(v, Const) and isinstance(v.value, int) and v.value > 0 for v in value.items):
        return math.prod(int(v.value) for v in value.items)  # type: ignore[attr-defined,misc]
    return None
