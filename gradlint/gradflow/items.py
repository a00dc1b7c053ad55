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
    group: int | None = None  # ``layer`` kind over groups of this many channels (GroupNorm(G, C): C/G)


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
    # A learned factor (ReZero α, SkipInit, layer scale γ): its number of elements, whose gradient
    # Σ δ·x (x: the stream it multiplies) counts in ‖∂L/∂θ‖ even when it starts at 0; 0: a constant.
    params: int = 0


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


#: AlphaDropout's saturation value −λα of SELU (Klambauer et al. 2017, eq. 12).
_ALPHA_PRIME = -1.7580993408473766


@dataclass(frozen=True)
class Dropout:
    """Dropout in train mode (the protocol's) with drop probability ``rate``: an independent mask per
    unit and example. Inverted dropout y = x·m/(1 − p): E[y²] = E[x²]/(1 − p), the mean and the
    cross-example moment E[y_a·y_b] kept; backward δ·m/(1 − p), so E[δ²] grows by 1/(1 − p) and any
    correlation of δ (across examples, positions, units) shrinks by (1 − p). Compounded over a
    ReLU stack, the forward second moment grows like (1 − p)^−L (He init, p = 0.5, 16 layers: loss
    1e5 measured). ``alpha`` (AlphaDropout, Klambauer et al. 2017 §"Alpha-dropout"): dropped units set
    to α′ = −λα, then y = a·u + b with a = ((1 − p)(1 + p·α′²))^−½, b = −a·α′·p, which keeps a SELU
    fixed point's mean 0 and variance 1; backward a·m: E[δ²] × a²(1 − p) = 1/(1 + p·α′²) (0.76 at p = 0.1)."""

    rate: float
    alpha: bool = False
    label: str = ""

    def moments(self, m: float, mab: float, mu: float) -> tuple[float, float, float]:
        """(E[y²], E[y_a·y_b], E[y]) from the input's (E[x²], E[x_a·x_b], E[x])."""
        p = self.rate
        if p >= 1.0:
            return 0.0, 0.0, 0.0  # every unit dropped: torch and Keras output exactly 0 in train mode
        if not self.alpha:
            return m / (1.0 - p), mab, mu
        a = ((1.0 - p) * (1.0 + p * _ALPHA_PRIME ** 2)) ** -0.5
        b = -a * _ALPHA_PRIME * p
        eu = (1.0 - p) * mu + p * _ALPHA_PRIME
        eu2 = (1.0 - p) * m + p * _ALPHA_PRIME ** 2
        euab = (1.0 - p) ** 2 * mab + 2.0 * p * (1.0 - p) * _ALPHA_PRIME * mu + (p * _ALPHA_PRIME) ** 2
        return a * a * eu2 + 2 * a * b * eu + b * b, a * a * euab + 2 * a * b * eu + b * b, a * eu + b

    def backward_gain(self) -> float:
        """E[(∂y/∂x)²]: what the gradient's second moment is multiplied by."""
        p = self.rate
        if p >= 1.0:
            return 0.0
        return 1.0 / (1.0 + p * _ALPHA_PRIME ** 2) if self.alpha else 1.0 / (1.0 - p)


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


Item = (WeightLayer | ResidualBlock | Norm | Activation | Scale | Gated | Block | MaxPool | SpatialMean | Flatten
        | Dropout)
