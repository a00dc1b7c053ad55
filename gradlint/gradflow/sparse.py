"""Sparse layers: the spread of the examples' scales once only a few units stay alive.

The mean field gives every example the same pre-activation variance q. That holds while many
units of a layer are alive, but after a layer that leaves only a few alive (a thresholded ReLU,
``u if u > θ else 0``, over a small spread: K ~ Poisson(n·p) live units of n) an example's
second moment is the sum over those K units: its variance is Poisson-like, some examples keep
K = 0 (dead for every layer after), others several large units. A threshold far above √q
passes the rare examples of large q (the Gaussian tail is convex in q), so the mean field
overstates how fast the live share collapses: 4 ThresholdedReLU(θ=2) layers at He init, width
128, measured live share 1.3e-3–3.4e-3 at the fourth layer against a mean-field 1e-191 (numpy,
3 seeds); this estimate puts it at 4.9e-4. The gradient flows back through the same strong
examples layer after layer (their ‖δ‖ and their activations go together), and — φ(u) = u·φ′(u) —
the Euler term of the weight gradients (``propagate._coherent_prediction``) does not decay with
the live share at all: 16 layers at θ = 1, He, width 128, measured first/last ratio 10^-1.2,
estimated 10^-1.5 (the mean field with one q and no Euler term: every unit dead by layer 12).

So a stream whose examples differ in scale carries a :class:`Mix`: atoms (weight, r) of
examples whose second moment is r·m (Σ w = 1, Σ w·r = 1), on a log grid. A sparse layer maps
each atom through K ~ Poisson(n·p) live units (a Gaussian over K once n·p is large); the tape
keeps each atom's transition, so the backward pass weighs each atom's gradient by its own live
share and the weight gradient by its own input scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gradlint.gradflow.activations import _SQRT2, _act_stats, _trunc_moments
from gradlint.records import dataclass

#: Activations that start a :class:`Mix`: zero below a threshold, so that a layer can leave few units alive.
SPARSE_ACTS = frozenset({"thresholded_relu"})
#: Grid step of the atoms' scales (decades) and the range kept relative to the mean.
_STEP = 0.1
_LOW, _HIGH = -40.0, 8.0
#: Above this many live units per example, K is modelled by a Gaussian (three points).
_POISSON_MAX = 40.0


@dataclass(frozen=True)
class Mix:
    """The examples' second moments relative to the stream's mean: atoms (weight, r); r = 0: dead."""

    weights: tuple[float, ...]
    ratios: tuple[float, ...]


@dataclass(frozen=True)
class SparseStep:
    """One weight layer's activation over a mixed stream (forward) and what the backward needs."""

    m_out: float  # E[h²] over examples and units
    mean: float  # E[h]
    d2: float  # E[φ′²]: the live share
    mix_out: Mix | None
    # per input atom: [(output atom, probability, live share given both)]
    trans: tuple[tuple[tuple[int, float, float], ...], ...]


def _tail_moments(q: float, theta: float) -> tuple[float, float, float, float]:
    """(P(u > θ), E[u·1], E[u²·1], E[u⁴·1]) over u > θ, u ~ N(0, q)."""
    if q <= 0.0:
        return (1.0, 0.0, 0.0, 0.0) if theta < 0 else (0.0, 0.0, 0.0, 0.0)
    moments = _trunc_moments(theta, math.inf, q, 4)
    return moments[0], moments[1], moments[2], moments[4]


def _grid(value: float) -> int | None:
    if value <= 0.0:
        return None
    return round(min(max(math.log10(value), _LOW), _HIGH) / _STEP)


def sparse_step(act: str, theta: float, q_atoms: Sequence[float], w_in: Sequence[float], n: int) -> SparseStep:
    """The activation ``act`` (thresholded ReLU at ``theta``) over input atoms of pre-activation
    variance ``q_atoms`` (weights ``w_in``), with ``n`` units per example feeding the next layer."""
    n = max(n, 1)
    entries: list[tuple[int, float, float, float, float]] = []  # (e, weight·prob, value, live, prob)
    m_out = mean = d2 = 0.0
    for e, (q, w) in enumerate(zip(q_atoms, w_in, strict=True)):
        p, m1, m2, m4 = _tail_moments(q, theta)
        m_out += w * m2
        mean += w * m1
        d2 += w * p
        lam = n * p
        if w < 1e-12:  # too rare to matter (see below): kept whole as one atom
            entries.append((e, 1.0, m2, p, 1.0))
            continue
        if p <= 0.0 or lam <= 0.0:
            entries.append((e, 1.0, 0.0, 0.0, 1.0))
            continue
        c1 = m2 / p  # E[u² | alive]
        v1 = max(m4 / p - c1 * c1, 0.0)
        if lam > _POISSON_MAX:
            # Many live units: the mean square over n units is about Gaussian, mean m2, variance (m4 − m2²)/n.
            sd = math.sqrt(max(m4 - m2 * m2, 0.0) / n)
            for z, pz in ((-math.sqrt(3.0), 1 / 6), (0.0, 2 / 3), (math.sqrt(3.0), 1 / 6)):
                entries.append((e, pz, max(m2 + z * sd, 0.1 * m2), p, pz))
            continue
        # K ~ Poisson(λ) live units, each u² of mean c1 and variance v1: K = 0 is an exactly dead example.
        kmax = int(lam + 6.0 * math.sqrt(lam) + 6.0)
        pk = math.exp(-lam)
        for k in range(kmax + 1):
            if k > 0:
                pk *= lam / k
            if w * pk < 1e-12 and k > lam:
                break  # the rest of this atom's tail weighs nothing against a batch's ln 2 / (B·n) live pairs
            share = k / n
            if k == 0:
                entries.append((e, pk, 0.0, 0.0, pk))
                continue
            spread = math.sqrt(k * v1)
            for sign in (-1.0, 1.0):
                value = max(k * c1 + sign * spread, 0.1 * k * c1) / n
                entries.append((e, 0.5 * pk, value, share, 0.5 * pk))
    # Bin the output values on a log grid (mass- and mean-preserving within a bin).
    index: dict[int | None, int] = {}
    bin_w: list[float] = []
    bin_v: list[float] = []
    rows: list[dict[int, list[float]]] = [{} for _ in q_atoms]
    for e, prob, value, live, _ in entries:
        key = _grid(value)
        j = index.get(key)
        if j is None:
            j = index[key] = len(bin_w)
            bin_w.append(0.0)
            bin_v.append(0.0)
        bin_w[j] += w_in[e] * prob
        bin_v[j] += w_in[e] * prob * value
        cell = rows[e].setdefault(j, [0.0, 0.0])
        cell[0] += prob
        cell[1] += prob * live
    total_w = sum(bin_w)
    mean_v = sum(bin_v) / total_w if total_w > 0 else 0.0
    trans = tuple(
        tuple((j, cell[0], cell[1] / cell[0] if cell[0] > 0 else 0.0) for j, cell in row.items()) for row in rows
    )
    if mean_v <= 0.0:
        return SparseStep(0.0, 0.0, 0.0, None, trans)
    mix = Mix(tuple(w / total_w for w in bin_w),
              tuple((v / w) / mean_v if w > 0 else 0.0 for w, v in zip(bin_w, bin_v, strict=True)))
    return SparseStep(m_out, mean, d2, mix, trans)


def dense_step(q_atoms: Sequence[float], w_in: Sequence[float], moments: Sequence[tuple[float, float]]
               ) -> tuple[float, float, Mix | None, tuple[tuple[tuple[int, float, float], ...], ...]]:
    """A layer over a mixed stream whose activation keeps most units (each atom maps to one atom):
    (E[h²], E[φ′²], the output mix, the transitions); ``moments`` are each atom's (E[φ²], E[φ′²])."""
    m_out = sum(w * m for w, (m, _) in zip(w_in, moments, strict=True))
    d2 = sum(w * d for w, (_, d) in zip(w_in, moments, strict=True))
    trans = tuple(((e, 1.0, d),) for e, (_, d) in enumerate(moments))
    if m_out <= 0.0:
        return 0.0, d2, None, trans
    return m_out, d2, Mix(tuple(w_in), tuple(m / m_out for m, _ in moments)), trans


def back(trans: Sequence[Sequence[tuple[int, float, float]]], w_in: Sequence[float],
         profile: Sequence[float] | None) -> tuple[float, list[float]]:
    """Back through one layer's activation: (the mean of ‖δ‖² at its input over the mean at its output,
    the profile of ‖δ‖² over the input atoms, mean 1). ``profile`` (None: uniform) is over the output
    atoms, mean 1."""
    if profile is not None and any(j >= len(profile) for row in trans for j, _, _ in row):
        profile = None  # the layer after did not carry this layer's atoms on (a dead layer): uniform
    u = [sum(prob * live * (profile[j] if profile is not None else 1.0) for j, prob, live in row) for row in trans]
    total = sum(w * x for w, x in zip(w_in, u, strict=True))
    if total <= 0.0:
        return 0.0, [0.0 for _ in u]
    return total, [x / total for x in u]


def log10_tail(x: float) -> float:
    """log10 P(z > x), z ~ N(0, 1), past where erfc underflows (asymptotic Mills ratio)."""
    if x < 30.0:
        return math.log10(max(0.5 * math.erfc(x / _SQRT2), 1e-320))
    ln = -0.5 * x * x - math.log(x) - 0.5 * math.log(2 * math.pi) + math.log1p(-1.0 / (x * x))
    return ln / math.log(10)


@dataclass(frozen=True)
class MixedLayer:
    """A weight layer's activation over a mixed stream: the moments the mean field would give, the
    output mix and what the backward pass needs (the input atoms and their transitions)."""

    m_out: float
    mean: float
    d2: float
    mix_out: Mix | None
    weights_in: tuple[float, ...]
    ratios_in: tuple[float, ...]
    trans: tuple[tuple[tuple[int, float, float], ...], ...]
    dead: bool  # a typical batch has no live (example, unit) pair: the layer outputs exactly 0


def mixed_layer(act: str, param: float, sw2: float, sb2: float, m_in: float, mix: Mix | None, n: int,
                pairs: int) -> MixedLayer:
    """The activation after a weight layer of σ_w² ``sw2``, σ_b² ``sb2`` over an input of second
    moment ``m_in`` whose examples spread as ``mix`` (None: all alike); ``n`` units per example,
    ``pairs`` (example, unit) pairs per unit of the batch (B times the positions)."""
    w_in = mix.weights if mix is not None else (1.0,)
    r_in = mix.ratios if mix is not None else (1.0,)
    q_atoms = [sw2 * m_in * r + sb2 for r in r_in]
    if act in SPARSE_ACTS:
        step = sparse_step(act, param, q_atoms, w_in, n)
        m_out, mean, d2, mix_out, trans = step.m_out, step.mean, step.d2, step.mix_out, step.trans
    else:
        stats = [_act_stats(act, q, param) for q in q_atoms]
        m_out, d2, mix_out, trans = dense_step(q_atoms, w_in, [(st.m2, st.d2) for st in stats])
        mean = sum(w * st.mean for w, st in zip(w_in, stats, strict=True))
    # The mean field is an average over inits: a batch of B examples × n units with fewer than ln 2 live
    # pairs expected has none in most draws (the protocol's median over seeds), and outputs exactly 0.
    dead = act in SPARSE_ACTS and pairs * n * d2 < math.log(2.0)
    return MixedLayer(m_out, mean, d2, mix_out, tuple(w_in), tuple(r_in), trans, dead)
