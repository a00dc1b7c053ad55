"""The output head's float32 saturation: where a saturating head's derivative is exactly 0, and what a
typical batch's head gradient is against the mean field (used by :mod:`.propagate`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from gradlint.gradflow.activations import _phi_cdf, canonical_activation
from gradlint.gradflow.chain import WeightLayer
from gradlint.gradflow.items import Activation, Item, Norm, Scale
from gradlint.records import dataclass

#: Saturating heads: outside (lo, hi) in the pre-activation, float32 gives a gradient of exactly 0
#: (sigmoid rounds to 1 above 17 and its e^u underflows below −88; tanh rounds to ±1 beyond 9).
DEAD_BANDS: dict[str, tuple[float, float]] = {
    "sigmoid": (-88.0, 17.0), "softmax": (-88.0, 17.0), "tanh": (-9.0, 9.0),
    "hard_sigmoid": (-3.0, 3.0), "hardtanh": (-1.0, 1.0),
    # a softmax's top-two logit gap g (its Jacobian is ≈ e^{−g}): p₂ = e^{−g} underflows beyond 88
    "softmax_gap": (-88.0, 88.0),
}


@dataclass
class HeadIn:
    """What enters the last top-level activation: u = c + ε per (example, unit), with a per-unit
    offset c ~ N(mu, qab) shared by the batch and ε ~ N(0, q − qab) per example."""

    item: object
    act: str
    q: float
    qab: float
    mu: float
    d2: float  # the mean-field E[φ′(u)²]


#: Where a saturating head's float32 derivative is exactly 0: sigmoid rounds to 1 above 16.6 (then
#: σ(1 − σ) = 0) and its e^u underflows below −88 (flushed denormals); tanh rounds to ±1 beyond 9.
#: Inside the band the derivative decays like e^{−|u|} (sigmoid, softmax) or 4e^{−2|u|} (tanh).
SMOOTH_HEADS = frozenset({"sigmoid", "softmax", "tanh"})


def head_derivative(act: str, u: float) -> float:
    if act == "tanh":
        return 1.0 - math.tanh(u) ** 2
    if act in ("hard_sigmoid", "hardtanh"):
        lo, hi = DEAD_BANDS[act]
        return (1.0 / (hi - lo)) * (hi - lo) / 6.0 if act == "hard_sigmoid" else 1.0
    e = math.exp(-abs(u))
    return e / (1.0 + e) ** 2


def typical_margin(h: HeadIn, batch: int, n_units: int) -> float | None:
    """The margin m of the (example, unit) pair that carries a typical batch's head gradient.

    Every gradient behind a saturating head is a sum over the batch of φ′(u)·(error); once the
    pre-activations are spread far wider than φ′ (std ≫ 1), the sum is carried by the few pairs
    that happen to fall near the centre, and for most draws of the weights there are none: the
    mean-field E[φ′²] is a mean over draws dominated by rare ones. This finds the smallest m such
    that, with probability ½ over the init (the protocol's median over seeds), some pair lies in
    the window {u : |u| ≤ m} ∩ (float32 band): per unit with probability p* = 1 − 2^{−1/n}, where a
    unit "has" a pair when its batch of B puts ≥ ln 2 of them in the window (the median of a
    Poisson count ≥ 1). None: no window inside the band will do — every gradient is exactly 0."""
    lo, hi = DEAD_BANDS[h.act]
    s_c = math.sqrt(max(h.qab, 0.0))
    s_e = math.sqrt(max(h.q - h.qab, 0.0))
    target = 1.0 - 2.0 ** (-1.0 / max(n_units, 1))
    nodes = [(-8.0 + 16.0 * (i + 0.5) / 400) for i in range(400)] if s_c > 0 else [0.0]
    weights = [math.exp(-0.5 * z * z) for z in nodes]
    total = sum(weights)
    need = math.log(2.0) / max(batch, 1)

    def share(m: float) -> float:
        a, b = max(-m, lo), min(m, hi)
        if a >= b:
            return 0.0
        got = 0.0
        for z, w in zip(nodes, weights, strict=False):
            c = h.mu + s_c * z
            if s_e > 0:
                inside = _phi_cdf((b - c) / s_e) - _phi_cdf((a - c) / s_e)
            else:
                inside = 1.0 if a <= c <= b else 0.0
            if inside >= need:
                got += w
        return got / total

    top = max(-lo, hi)
    if share(top) < target:
        return None
    if h.act in ("hard_sigmoid", "hardtanh"):
        return 0.0  # a flat derivative inside the band: any pair inside carries the full gradient
    low, high = 0.0, top
    for _ in range(40):
        mid = 0.5 * (low + high)
        if share(mid) >= target:
            high = mid
        else:
            low = mid
    return high


def head_moment(h: HeadIn, m: float) -> float:
    """E[φ′(u)²; |u| ≥ m] for u ~ N(mu, q) inside the head's float32 band (midpoint rule: φ′ is about
    one unit wide, the band at most ~105)."""
    lo, hi = DEAD_BANDS[h.act]
    s = math.sqrt(max(h.q, 1e-300))
    a, b = max(lo, h.mu - 9.0 * s), min(hi, h.mu + 9.0 * s)
    if a >= b:
        return 0.0
    steps = 2000
    du = (b - a) / steps
    total = 0.0
    for i in range(steps):
        u = a + (i + 0.5) * du
        if abs(u) < m:
            continue
        z = (u - h.mu) / s
        total += head_derivative(h.act, u) ** 2 * math.exp(-0.5 * z * z)
    return total * du / (s * math.sqrt(2.0 * math.pi))


def dead_head(items: Sequence[Item], h: HeadIn | None, batch: int, n_out: int
               ) -> tuple[str | None, float | None, float]:
    """(why every gradient is exactly 0 in float32, the head's pre-activation variance, ln of the
    factor by which a typical batch's head gradient falls short of the mean field (≤ 0)).

    The factor: a typical batch has no pair within the margin m* of :func:`typical_margin`, so its
    Σφ′² is the mean field's over |u| ≥ m* (pairs there are plentiful) plus one pair at m*, against
    the mean field's B·n·E[φ′²] over all u. When the centre is populated m* ≈ 0 and the factor is 1."""
    head: str | None = None
    width: int | None = None
    found: object = None
    for item in reversed(items):
        if isinstance(item, Activation):
            head, width, found = item.activation, item.width, item
            break
        if isinstance(item, WeightLayer):
            head, found = canonical_activation(item.activation), item
            break
        if isinstance(item, (Scale, Norm)):
            continue
        return None, None, 0.0
    if head is None:
        return None, None, 0.0
    if head == "softmax" and width == 1:  # the width the softmax normalizes over, when it is known
        return "softmax over a single output is the constant 1", None, 0.0
    if head not in DEAD_BANDS or h is None or h.item is not found:
        return None, None, 0.0
    q = h.q + h.mu * h.mu
    if h.q <= 4.0:
        return None, q, 0.0  # spread no wider than φ′ itself: the mean field describes the batch
    n = max(n_out, 1)
    if head == "softmax" and n >= 2:
        return _softmax_head(h, batch, n, q)
    margin = typical_margin(h, batch, n)
    if margin is None:
        return f"{head} head saturated: pre-activations of std ≈ {math.sqrt(q):.1e}", q, 0.0
    if h.act in ("hard_sigmoid", "hardtanh"):
        return None, q, 0.0
    full = head_moment(h, 0.0)
    if full <= 0:
        return None, q, 0.0
    typical = batch * n * head_moment(h, margin) + head_derivative(head, margin) ** 2
    return None, q, min(0.0, math.log(typical) - math.log(batch * n * full))


def _softmax_head(h: HeadIn, batch: int, n: int, q: float) -> tuple[str | None, float | None, float]:
    """``dead_head`` for a softmax over ``n`` ≥ 2 outputs. A softmax is blind to what all its logits
    share; its Jacobian (diag p − ppᵀ) is ≈ e^{−g} in the gap g between an example's two largest
    logits. Per-unit offsets shared by the batch (variance ``qab``: a common mode left by an
    unnormalized residual stack, say) fix one winner with a gap Δ ≈ √qab · g_n for every example,
    g_n the median top-two gap of n standard normals (the protocol's median over inits); each
    example's own part (variance q − qab) moves its gap by N(0, 2(q − qab)). The batch's Σ‖J‖² is
    then the sigmoid-like sum over those gaps (``typical_margin``, one "unit" per example), against
    the mean field's B·n·E[φ′²] per logit. Measured: a conv residual stack into softmax(10), logits
    with a common mode of std ≈ 80 and ≈ 8 per example: first-layer ‖∂W‖/‖W‖ ≈ 6e-21."""
    spread = max(h.q - h.qab, 0.0)
    gap = math.sqrt(max(h.qab, 0.0)) * top_two_gap_median(n)
    per_example = HeadIn(item=h.item, act="softmax_gap", q=2.0 * spread, qab=0.0, mu=gap, d2=h.d2)
    margin = typical_margin(per_example, batch, 1)
    if margin is None:
        return f"softmax head saturated: logits of std ≈ {math.sqrt(q):.1e} whose two largest differ by ≈ " \
               f"{gap:.0f} in every example", q, 0.0
    full = head_moment(h, 0.0)
    if full <= 0:
        return None, q, 0.0
    # ‖J‖² ≈ 4·σ′(g)² (two diagonal and two off-diagonal entries of size ≈ e^{−g})
    typical = 4.0 * (batch * head_moment(per_example, margin) + head_derivative("softmax_gap", margin) ** 2)
    return None, q, min(0.0, math.log(typical) - math.log(batch * n * full))


_GAP_MEDIANS: dict[int, float] = {}


def top_two_gap_median(n: int) -> float:
    """The median of X₍₁₎ − X₍₂₎ over n ≥ 2 iid N(0, 1): P(gap > t) = n·∫ φ(x)·Φ(x − t)^{n−1} dx."""
    found = _GAP_MEDIANS.get(n)
    if found is not None:
        return found
    nodes = [-8.0 + 16.0 * (i + 0.5) / 800 for i in range(800)]
    dx = 16.0 / 800
    dens = [math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi) for x in nodes]

    def above(t: float) -> float:
        return n * sum(d * _phi_cdf(x - t) ** (n - 1) for x, d in zip(nodes, dens, strict=True)) * dx

    low, high = 0.0, 8.0
    for _ in range(40):
        mid = 0.5 * (low + high)
        if above(mid) > 0.5:
            low = mid
        else:
            high = mid
    _GAP_MEDIANS[n] = found = 0.5 * (low + high)
    return found
