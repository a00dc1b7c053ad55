"""The items of an end-to-end propagation path besides weight layers (``gradflow.chain.WeightLayer``,
``ResidualBlock``): norms, activations, scales, pooling, gates, general residual blocks. Plain data;
:mod:`.propagate` gives them their forward and backward rules."""

from __future__ import annotations

from gradlint.gradflow.chain import ResidualBlock, WeightLayer
from gradlint.records import dataclass


@dataclass(frozen=True)
class Norm:
    """A normalization on its own (not right after a weight layer): ``batch`` (BatchNorm,
    InstanceNorm: statistics per unit), ``layer`` (LayerNorm, GroupNorm: per example over
    features, centred), ``rms`` (RMSNorm: per example, not centred)."""

    kind: str
    label: str = ""
    width: int | None = None  # for its affine parameters in ‖θ‖


@dataclass(frozen=True)
class Activation:
    """An activation on its own: after a residual sum, after a norm, or a second activation.

    ``softmax`` over ``width`` outputs is modelled per unit as sigmoid(u − ln(width − 1)); over
    one output it is the constant 1."""

    activation: str
    act_param: float | None = None
    label: str = ""
    width: int | None = None


@dataclass(frozen=True)
class Scale:
    """Multiplication by a constant (layer scale, ReZero α, SkipInit, DeepNorm's α): ``value``, then
    ``shift`` added (``1 - g``: value −1, shift 1; it moves the mean, not the gradient)."""

    value: float
    label: str = ""
    shift: float = 0.0


@dataclass(frozen=True)
class MaxPool:
    """Max over a window of ``k`` positions (non-global max pooling). The window's values are taken
    as the stream's per-unit offset (shared by the window) plus independent fluctuations, so the
    pool raises the mean by √(m − mab)·E[M_k] and keeps Var[M_k] of the fluctuation (M_k: the largest
    of k standard normals). Backward the gradient is routed to one position of each window: its
    norm is kept."""

    k: int
    label: str = ""


@dataclass(frozen=True)
class SpatialMean:
    """Average over windows of ``k`` positions (average pooling; 0: all of them, global pooling). Each
    window's values share the stream's per-unit offset and average their independent fluctuations:
    m → mab + (m − mab)/k. Backward each position gets 1/k of its window's gradient."""

    k: int = 0
    label: str = ""


@dataclass(frozen=True)
class Flatten:
    """Positions become features (``flatten``/``view`` before a dense layer): one position per example."""

    label: str = ""


@dataclass(frozen=True)
class Gated:
    """``x * g(x)``: the stream times the output of ``path`` (SE, GLU, SwiGLU), applied to the
    current stream. The gate path's weights are not on the main path (no records)."""

    path: tuple[Item, ...]
    label: str = ""


@dataclass(frozen=True)
class Block:
    """``shortcut(x) + branch(x)`` (``concat``: DenseNet-style concatenation), general form of
    :class:`ResidualBlock`: any items in the branch and the shortcut (empty = identity)."""

    branch: tuple[Item, ...]
    shortcut: tuple[Item, ...] = ()
    concat: bool = False
    label: str = ""
    widths: tuple[int | None, int | None] = (None, None)  # (shortcut, branch) output widths, for concat


Item = WeightLayer | ResidualBlock | Norm | Activation | Scale | Gated | Block | MaxPool | SpatialMean | Flatten
