"""Gaussian expectations E[f(√q·z)] by quadrature (Gauss–Hermite; Gauss–Legendre panels)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _gauss_hermite(n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Probabilists' Gauss–Hermite rule (weight e^{-z²/2}/√(2π), weights sum to 1).

    Newton on the orthonormal physicists' Hermite recurrence (no overflow for
    large n), initial guesses as in Numerical Recipes' ``gauher``; then z = √2·x.
    """
    xs = [0.0] * n
    ws = [0.0] * n
    m = (n + 1) // 2
    pim4 = math.pi ** -0.25
    z = 0.0
    for i in range(m):
        if i == 0:
            z = math.sqrt(2 * n + 1) - 1.85575 * (2 * n + 1) ** (-0.16667)
        elif i == 1:
            z -= 1.14 * n**0.426 / z
        elif i == 2:
            z = 1.86 * z - 0.86 * xs[0]
        elif i == 3:
            z = 1.91 * z - 0.91 * xs[1]
        else:
            z = 2.0 * z - xs[i - 2]
        pp = 1.0
        for _ in range(100):
            p1, p2 = pim4, 0.0
            for j in range(1, n + 1):
                p3, p2 = p2, p1
                p1 = z * math.sqrt(2.0 / j) * p2 - math.sqrt((j - 1) / j) * p3
            pp = math.sqrt(2.0 * n) * p2
            dz = p1 / pp
            z -= dz
            if abs(dz) <= 1e-15 * max(1.0, abs(z)):
                break
        xs[i], xs[n - 1 - i] = z, -z
        ws[i] = ws[n - 1 - i] = 2.0 / (pp * pp)
    norm = 1.0 / math.sqrt(math.pi)
    return tuple(x * _SQRT2 for x in xs), tuple(w * norm for w in ws)


def _gauss_legendre(n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Gauss–Legendre rule on [-1, 1] by Newton on the Legendre recurrence."""
    xs = [0.0] * n
    ws = [0.0] * n
    for i in range((n + 1) // 2):
        x = math.cos(math.pi * (i + 0.75) / (n + 0.5))
        dp = 1.0
        for _ in range(100):
            p0, p1 = 1.0, x
            for k in range(2, n + 1):
                p0, p1 = p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k
            dp = n * (x * p1 - p0) / (x * x - 1.0)
            dx = p1 / dp
            x -= dx
            if abs(dx) < 1e-16:
                break
        xs[i], xs[n - 1 - i] = x, -x
        ws[i] = ws[n - 1 - i] = 2.0 / ((1.0 - x * x) * dp * dp)
    return tuple(xs), tuple(ws)


@lru_cache(maxsize=1)
def hermite_rule() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The 100-node probabilists' Gauss–Hermite rule, computed on first use (Newton iterations
    cost a few milliseconds, which a run that estimates nothing should not pay at start-up)."""
    return _gauss_hermite(100)


@lru_cache(maxsize=1)
def _hermite_kept() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The Hermite nodes whose weight is above 1e-22 (the rest contribute nothing measurable)."""
    kept = [(z, w) for z, w in zip(*hermite_rule(), strict=False) if w > 1e-22]
    return tuple(z for z, _ in kept), tuple(w for _, w in kept)


_GL_X, _GL_W = _gauss_legendre(10)
#: above this q the Hermite nodes near z=0 are too sparse to resolve features of
#: width ~1 in u = √q·z (φ′ of sigmoid/tanh); switch to panels.
_GH_QMAX = 4.0
_Z_MAX = 10.0


@lru_cache(maxsize=1024)
def _nodes(q: float, kinks: tuple[float, ...] = ()) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(z_i, w_i) with E[f(√q z)] ≈ Σ w_i f(√q z_i); weights include the Gaussian density.

    Gauss–Hermite for moderate q and smooth f; otherwise composite Gauss–Legendre
    over z ∈ [-10, 10] with panel edges at the kinks and at u = ±0.5…32.
    """
    s = math.sqrt(q)
    if q <= _GH_QMAX and not kinks:
        return _hermite_kept()
    edges = {0.0, _Z_MAX, -_Z_MAX}
    for e in (1.0, 2.0, 3.0, 4.5, 6.0, 8.0):
        edges.update((e, -e))
    for c in (1.0, 3.0, 8.0, 24.0):
        if c / s < 0.8:  # features wider than ~1 in z are resolved by the z panels
            edges.update((c / s, -c / s))
    for b in kinks:
        if abs(b / s) < _Z_MAX:
            edges.add(b / s)
    pts = sorted(edges)
    zs: list[float] = []
    ws: list[float] = []
    for a, b in zip(pts, pts[1:], strict=False):
        half, mid = 0.5 * (b - a), 0.5 * (b + a)
        for x, w in zip(_GL_X, _GL_W, strict=False):
            z = mid + half * x
            zs.append(z)
            ws.append(w * half * math.exp(-0.5 * z * z) * _INV_SQRT_2PI)
    return tuple(zs), tuple(ws)


def gaussian_expectation(
    f: Callable[[float], float], q: float, breakpoints: Sequence[float] = ()
) -> float:
    """E[f(√q·z)], z ~ N(0, 1).

    Gauss–Hermite (probabilists', 100 nodes, computed once, on first use) when q is
    moderate and f is smooth.  Activation derivatives have features of width ~1
    in u = √q·z, which Hermite nodes (spacing ~0.3 in z) miss once √q ≳ 2, so for
    q > 4, and whenever ``breakpoints`` (kinks of f in u) are given, a composite
    Gauss–Legendre rule with panel edges at those features is used instead.
    Meant for activation-like f (features of width ≳ 1 in u, polynomial growth);
    fast oscillation in u, e.g. cos(√q z) at q = 10⁴, is not resolved.
    """
    if q < 0 or math.isnan(q):
        raise ValueError(f"variance must be >= 0, got {q}")
    if q == 0.0:
        return f(0.0)
    s = math.sqrt(q)
    zs, ws = _nodes(q, tuple(breakpoints))
    return math.fsum(w * f(s * z) for z, w in zip(zs, ws, strict=False))


