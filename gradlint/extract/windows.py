"""Spatial windows of torch conv and pooling layers, from their literal arguments (``model.Window``).

The analysis follows the spatial size of a feature map through them (``gradlint.analysis.spatial``):
how many positions a conv weight is applied at, how many a pooling averages. Anything not literal
leaves the window unknown (None), and the spatial size after it unknown.
"""

from __future__ import annotations

from gradlint.extract.common import is_none
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
