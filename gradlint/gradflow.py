"""Static gradient-flow estimator (mean-field theory at initialization).

Predicts, from layer types and init schemes only, how the gradient norm changes
from the last weight layer of a network back to the first.  Pure stdlib on
purpose: this module runs inside a pre-commit hook, where importing numpy or a
deep-learning framework would cost seconds and heavy dependencies.

Theory (Poole et al. 2016; Schoenholz et al. 2017; see docs/calibration.md):

* ``σ_w² = fan_in · Var(W)``; ``σ_b² = Var(b)``.
* forward, tracked from the input (not only at the fixed point):
  ``q_l = σ_w,l² · m_{l-1} + σ_b,l²`` with ``m_l = E[φ_l(√q_l z)²]`` the second
  moment of the layer's output and ``m_0 = input_q``.
* backward: ``‖δ_l‖² = ‖δ_{l+1}‖² · σ_w,l+1² · E[φ_l′(√q_l z)²]`` where
  ``δ_l = ∂L/∂h_l`` is the gradient at the output of weight layer *l*
  (before its normalization, if any; normalization divides by its input std).
* weight gradient: ``‖∂L/∂W_l‖ ≈ ‖δ_l‖ · ‖x_l‖`` with ``‖x_l‖² = fan_in_l · m_{l-1}``
  per example.
* two examples of a batch: the same recursions for the cross-covariance q_ab
  (shared per-unit offsets from biases and from activations with a nonzero
  mean).  BatchNorm removes it (and divides by √(q − q_ab), not √q); summed
  over a batch of B, weight gradients gain a coherent term (B−1)·ρ_δ·ρ_x, which
  is large for deep layers and absent for the first layer (independent inputs).

Calibrated against 636 torch MLP configurations: all within 10× (RMS error
0.11–0.16 decades) except a documented finite-width regime; see
docs/calibration.md.

Conventions ("first"/"last"): ratios are first weight layer over last weight
layer in execution order, where the last weight layer is the output head
(the final ``Linear``/``Dense``/conv, whatever its activation).  The first
layer whose gradient is structurally zero at init (inside a zero-initialised
residual branch) is skipped; this is recorded in ``assumptions``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from operator import mul as _mul

__all__ = [
    "ACTIVATIONS",
    "SATURATING",
    "WeightLayer",
    "ResidualBlock",
    "LayerEstimate",
    "ChainEstimate",
    "gaussian_expectation",
    "activation_moments",
    "ACTIVATION_ALIASES",
    "activation_alias",
    "canonical_activation",
    "init_sigma_w2",
    "torch_default_bias_var",
    "torch_gain",
    "estimate_chain",
    "per_layer_bound",
    "DEFAULT_BATCH_SIZE",
]

ACTIVATIONS: frozenset[str] = frozenset(
    {
        "linear", "sigmoid", "tanh", "relu", "relu6", "leaky_relu", "elu", "selu",
        "celu", "gelu", "gelu_tanh", "silu", "mish", "softplus", "softsign",
        "hardtanh", "hard_sigmoid", "hard_swish", "exponential",
    }
)
SATURATING: frozenset[str] = frozenset({"sigmoid", "tanh", "softsign", "hardtanh", "hard_sigmoid"})

_DEFAULT_ACT_PARAM: dict[str, float] = {"leaky_relu": 0.01, "elu": 1.0, "celu": 1.0}

#: Every spelling users write (torch, keras, HF, functional) -> one canonical name. The one
#: table of activation names: extraction (``gradlint.extract.catalog``) reads it too. Canonical
#: names outside ``ACTIVATIONS`` (softmax, log_softmax, log_sigmoid, other) are activations the
#: extractor recognizes but this estimator does not model.
ACTIVATION_ALIASES: dict[str, str] = {
    **{name: name for name in ACTIVATIONS},
    "identity": "linear", "none": "linear", "": "linear",
    "logistic": "sigmoid",
    "leakyrelu": "leaky_relu", "prelu": "leaky_relu", "rrelu": "leaky_relu",
    "swish": "silu",
    "hardswish": "hard_swish", "hard_silu": "hard_swish", "hardsilu": "hard_swish",
    "hardsigmoid": "hard_sigmoid",
    "hard_tanh": "hardtanh",
    "exp": "exponential",
    "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "approx_gelu": "gelu_tanh", "gelu_fast": "gelu_tanh",
    "quick_gelu": "gelu",
    "softmax": "softmax", "softmin": "softmax",
    "log_softmax": "log_softmax", "logsoftmax": "log_softmax",
    "logsigmoid": "log_sigmoid", "log_sigmoid": "log_sigmoid",
    "tanhshrink": "other", "softshrink": "other", "hardshrink": "other",
    "threshold": "relu",
}

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
#: q above this is reported as a forward overflow and clamped (keeps the arithmetic finite).
_Q_CLAMP = 1e250


def activation_alias(name: str) -> str | None:
    """The canonical name of an activation as written (``F.relu_`` in-place forms included);
    None when ``name`` is no activation gradlint knows."""
    key = name.strip().lower().replace("-", "_")
    if key.endswith("_") and key[:-1] in ACTIVATION_ALIASES:  # in-place variants: F.relu_
        key = key[:-1]
    return ACTIVATION_ALIASES.get(key)


def canonical_activation(name: str | None) -> str | None:
    """Map common spellings (torch/keras/HF) to a canonical name; None if the estimator does
    not model it (softmax, unknown names)."""
    if name is None:
        return "linear"
    key = activation_alias(name)
    return key if key in ACTIVATIONS else None


# --------------------------------------------------------------------------- quadrature


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


_GH_Z, _GH_W = _gauss_hermite(100)
#: nodes whose weight is below 1e-22 contribute nothing measurable; dropped for speed.
_GH_KEEP = tuple((z, w) for z, w in zip(_GH_Z, _GH_W) if w > 1e-22)
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
        return tuple(z for z, _ in _GH_KEEP), tuple(w for _, w in _GH_KEEP)
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
    for a, b in zip(pts, pts[1:]):
        half, mid = 0.5 * (b - a), 0.5 * (b + a)
        for x, w in zip(_GL_X, _GL_W):
            z = mid + half * x
            zs.append(z)
            ws.append(w * half * math.exp(-0.5 * z * z) * _INV_SQRT_2PI)
    return tuple(zs), tuple(ws)


def gaussian_expectation(
    f: Callable[[float], float], q: float, breakpoints: Sequence[float] = ()
) -> float:
    """E[f(√q·z)], z ~ N(0, 1).

    Gauss–Hermite (probabilists', 100 nodes, computed once at import) when q is
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
    return math.fsum(w * f(s * z) for z, w in zip(zs, ws))


# ---------------------------------------------------------------- activations


def _phi_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


def _sigmoid(u: float) -> float:
    if u >= 0:
        return 1.0 / (1.0 + math.exp(-u))
    e = math.exp(u)
    return e / (1.0 + e)


def _softplus(u: float) -> float:
    return u + math.log1p(math.exp(-u)) if u > 0 else math.log1p(math.exp(u))


_K_GELU = math.sqrt(2.0 / math.pi)
Fn = Callable[[float], float]


def _act_fns(act: str, p: float) -> tuple[Fn, Fn, tuple[float, ...]]:
    """(φ, φ′, kinks in u) for a canonical activation (torch definitions; φ′(0) right limit)."""
    if act == "linear":
        return (lambda u: u), (lambda u: 1.0), ()
    if act == "relu":
        return (lambda u: u if u > 0 else 0.0), (lambda u: 1.0 if u > 0 else 0.0), (0.0,)
    if act == "relu6":
        return (lambda u: min(max(u, 0.0), 6.0)), (lambda u: 1.0 if 0 < u < 6 else 0.0), (0.0, 6.0)
    if act == "leaky_relu":
        return (lambda u: u if u > 0 else p * u), (lambda u: 1.0 if u > 0 else p), (0.0,)
    if act == "hardtanh":
        return (lambda u: min(max(u, -1.0), 1.0)), (lambda u: 1.0 if -1 < u < 1 else 0.0), (-1.0, 1.0)
    if act == "hard_sigmoid":  # relu6(u + 3) / 6 (torch and keras 3 agree)
        return (
            (lambda u: min(max(u + 3.0, 0.0), 6.0) / 6.0),
            (lambda u: 1.0 / 6.0 if -3 < u < 3 else 0.0),
            (-3.0, 3.0),
        )
    if act == "hard_swish":  # u · relu6(u + 3) / 6
        return (
            (lambda u: u * min(max(u + 3.0, 0.0), 6.0) / 6.0),
            (lambda u: 0.0 if u < -3 else (1.0 if u > 3 else (2.0 * u + 3.0) / 6.0)),
            (-3.0, 3.0),
        )
    if act == "exponential":
        return math.exp, math.exp, ()
    if act in ("elu", "selu", "celu"):
        if act == "selu":
            alpha, scale, k = _SELU_ALPHA, _SELU_SCALE, 1.0
        elif act == "elu":
            alpha, scale, k = p, 1.0, 1.0
        else:  # celu: alpha·(e^{u/alpha} − 1)
            alpha, scale, k = p, 1.0, 1.0 / p

        def fe(u: float) -> float:
            return scale * (u if u > 0 else alpha * math.expm1(k * u))

        def dfe(u: float) -> float:
            return scale * (1.0 if u > 0 else alpha * k * math.exp(k * u))

        return fe, dfe, (0.0,)
    if act == "sigmoid":
        def ds(u: float) -> float:
            s = _sigmoid(u)
            return s * (1.0 - s)
        return _sigmoid, ds, ()
    if act == "tanh":
        return math.tanh, (lambda u: 1.0 - math.tanh(u) ** 2), ()
    if act == "softsign":
        return (lambda u: u / (1.0 + abs(u))), (lambda u: 1.0 / (1.0 + abs(u)) ** 2), (0.0,)
    if act == "softplus":
        return _softplus, _sigmoid, ()
    if act == "silu":
        return (lambda u: u * _sigmoid(u)), (lambda u: _sigmoid(u) * (1.0 + u * (1.0 - _sigmoid(u)))), ()
    if act == "gelu":
        def g(u: float) -> float:
            return u * _phi_cdf(u)

        def dg(u: float) -> float:
            return _phi_cdf(u) + u * _INV_SQRT_2PI * math.exp(-0.5 * u * u)
        return g, dg, ()
    if act == "gelu_tanh":
        def gt(u: float) -> float:
            return 0.5 * u * (1.0 + math.tanh(_K_GELU * (u + 0.044715 * u**3)))

        def dgt(u: float) -> float:
            t = math.tanh(_K_GELU * (u + 0.044715 * u**3))
            return 0.5 * (1.0 + t) + 0.5 * u * (1.0 - t * t) * _K_GELU * (1.0 + 3 * 0.044715 * u * u)
        return gt, dgt, ()
    if act == "mish":
        def mi(u: float) -> float:
            return u * math.tanh(_softplus(u))

        def dmi(u: float) -> float:
            t = math.tanh(_softplus(u))
            return t + u * (1.0 - t * t) * _sigmoid(u)
        return mi, dmi, ()
    raise KeyError(act)


# Exact second moments for the piecewise-polynomial activations (quadrature across a
# kink converges slowly and these are the most common activations).

def _trunc_moments(a: float, b: float, q: float, kmax: int) -> list[float]:
    """I_k = E[u^k·1(a<u<b)], u ~ N(0, q), k = 0..kmax (a, b may be ±inf)."""
    s = math.sqrt(q)

    def dens(u: float) -> float:
        return 0.0 if math.isinf(u) else math.exp(-0.5 * u * u / q) / (s * math.sqrt(2 * math.pi))

    def upow(u: float, k: int) -> float:
        return 0.0 if math.isinf(u) else u**k

    da, db = dens(a), dens(b)
    lo = 0.0 if a == -math.inf else _phi_cdf(a / s)
    hi = 1.0 if b == math.inf else _phi_cdf(b / s)
    moments = [hi - lo]
    if kmax >= 1:
        moments.append(q * (da - db))
    for k in range(2, kmax + 1):
        moments.append((k - 1) * q * moments[k - 2] + q * (upow(a, k - 1) * da - upow(b, k - 1) * db))
    return moments


def _poly_mul(p: Sequence[float], r: Sequence[float]) -> list[float]:
    out = [0.0] * (len(p) + len(r) - 1)
    for i, a in enumerate(p):
        for j, b in enumerate(r):
            out[i + j] += a * b
    return out


Piecewise = tuple[tuple[float, float, tuple[float, ...]], ...]


def _piecewise(act: str, p: float) -> tuple[Piecewise, Piecewise] | None:
    """(φ, φ′) as (lo, hi, polynomial coefficients) pieces, where that is exact."""
    inf = math.inf
    if act == "linear":
        return ((-inf, inf, (0.0, 1.0)),), ((-inf, inf, (1.0,)),)
    if act == "relu":
        return ((0.0, inf, (0.0, 1.0)),), ((0.0, inf, (1.0,)),)
    if act == "relu6":
        return ((0.0, 6.0, (0.0, 1.0)), (6.0, inf, (6.0,))), ((0.0, 6.0, (1.0,)),)
    if act == "leaky_relu":
        return (
            ((-inf, 0.0, (0.0, p)), (0.0, inf, (0.0, 1.0))),
            ((-inf, 0.0, (p,)), (0.0, inf, (1.0,))),
        )
    if act == "hardtanh":
        return (
            ((-inf, -1.0, (-1.0,)), (-1.0, 1.0, (0.0, 1.0)), (1.0, inf, (1.0,))),
            ((-1.0, 1.0, (1.0,)),),
        )
    if act == "hard_sigmoid":
        return ((-3.0, 3.0, (0.5, 1.0 / 6.0)), (3.0, inf, (1.0,))), ((-3.0, 3.0, (1.0 / 6.0,)),)
    if act == "hard_swish":
        return (
            ((-3.0, 3.0, (0.0, 0.5, 1.0 / 6.0)), (3.0, inf, (0.0, 1.0))),
            ((-3.0, 3.0, (0.5, 1.0 / 3.0)), (3.0, inf, (1.0,))),
        )
    return None


def _pw_moment(pieces: Piecewise, q: float, power: int) -> float:
    total = 0.0
    for a, b, poly in pieces:
        pp = poly if power == 1 else _poly_mul(poly, poly)
        mom = _trunc_moments(a, b, q, len(pp) - 1)
        total += sum(c * m for c, m in zip(pp, mom))
    return total


#: Hermite terms kept for two-sample (cross-batch) moments; the rest is a Parseval tail.
_N_HERMITE = 24


@dataclass(frozen=True)
class _ActStats:
    """Moments of one activation at one pre-activation variance q."""

    mean: float  # E[φ]
    m2: float  # E[φ²]
    d2: float  # E[φ′²]


def _hermite_coeffs(vals: Sequence[float], zs: Sequence[float], ws: Sequence[float]) -> tuple[float, ...]:
    """a_k = E[f(z)·He_k(z)/√k!], k < _N_HERMITE, from values at quadrature nodes."""
    wv = [w * v for w, v in zip(ws, vals)]
    out = [0.0] * _N_HERMITE
    h_prev = [0.0] * len(zs)
    h = [1.0] * len(zs)
    for k in range(_N_HERMITE):
        out[k] = sum(map(_mul, wv, h))
        sk, sk1 = math.sqrt(k), 1.0 / math.sqrt(k + 1)
        h, h_prev = [(z * hk - sk * hp) * sk1 for z, hk, hp in zip(zs, h, h_prev)], h
    return tuple(out)


@lru_cache(maxsize=8192)
def _act_stats(act: str, q: float, param: float) -> _ActStats:
    f, df, kinks = _act_fns(act, param)
    if q <= 0.0:
        v, dv = f(0.0), df(0.0)
        return _ActStats(v, v * v, dv * dv)
    if act == "exponential":
        if q > 350.0:
            return _ActStats(math.inf, math.inf, math.inf)
        v = math.exp(2.0 * q)
        return _ActStats(math.exp(0.5 * q), v, v)
    pw = _piecewise(act, param)
    if pw is not None:
        return _ActStats(_pw_moment(pw[0], q, 1), _pw_moment(pw[0], q, 2), _pw_moment(pw[1], q, 2))
    s = math.sqrt(q)
    zs, ws = _nodes(q, kinks)
    fv = [f(s * z) for z in zs]
    dv = [df(s * z) for z in zs]
    return _ActStats(
        sum(map(_mul, ws, fv)), sum(w * v * v for w, v in zip(ws, fv)), sum(w * v * v for w, v in zip(ws, dv))
    )


@lru_cache(maxsize=4096)
def _hermite(act: str, q: float, param: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Normalized Hermite coefficients of φ(√q z) and φ′(√q z) (for two-sample moments)."""
    f, df, kinks = _act_fns(act, param)
    s = math.sqrt(q)
    zs, ws = _nodes(q, kinks)
    return (
        _hermite_coeffs([f(s * z) for z in zs], zs, ws),
        _hermite_coeffs([df(s * z) for z in zs], zs, ws),
    )


def _cross(coeffs: tuple[float, ...], total: float, c: float) -> float:
    """E[f(u_a) f(u_b)] for corr(u_a, u_b) = c by Mehler's expansion Σ c^k a_k².

    The truncated tail is bounded by Parseval (Σ a_k² = E[f²]) and added as
    c^K·(E[f²] − Σ a_k²), exact at c = 1 and at c = 0.
    """
    c = max(-1.0, min(1.0, c))
    acc = 0.0
    ck = 1.0
    seen = 0.0
    for a in coeffs:
        acc += ck * a * a
        seen += a * a
        ck *= c
    return acc + ck * max(0.0, total - seen)


def _relu_cross(q: float, c: float, slope: float) -> tuple[float, float]:
    """Exact two-sample moments of (leaky) ReLU: arc-cosine kernel (Cho & Saul 2009)."""
    c = max(-1.0, min(1.0, c))
    theta = math.acos(c)
    both_pos = (math.pi - theta) / (2.0 * math.pi)  # P(u_a > 0, u_b > 0)
    relu_relu = q / (2.0 * math.pi) * (math.sqrt(max(0.0, 1.0 - c * c)) + (math.pi - theta) * c)
    a = slope
    # φ(u) = (1−a)·relu(u) + a·u ;  E[relu(u_a)·u_b] = q·c/2
    m_ab = (1 - a) ** 2 * relu_relu + 2 * a * (1 - a) * q * c / 2.0 + a * a * q * c
    # φ′ = a + (1−a)·1(u>0)
    d_ab = a * a + a * (1 - a) + (1 - a) ** 2 * both_pos
    return m_ab, d_ab


def _two_point(act: str, q: float, param: float, c: float, st: _ActStats) -> tuple[float, float]:
    """(E[φ(u_a)φ(u_b)], E[φ′(u_a)φ′(u_b)]) for two samples with correlation c."""
    if q <= 0.0:
        return st.m2, st.d2
    if act in ("relu", "leaky_relu", "linear"):
        slope = {"relu": 0.0, "linear": 1.0}.get(act, param)
        return _relu_cross(q, c, slope)
    if act == "exponential":
        if q * (1 + c) > 700:
            return math.inf, math.inf
        v = math.exp(q * (1.0 + c))
        return v, v
    hf, hd = _hermite(act, q, param)
    return _cross(hf, st.m2, c), _cross(hd, st.d2, c)


def _param(act: str, act_param: float | None) -> float:
    return _DEFAULT_ACT_PARAM.get(act, 0.0) if act_param is None else float(act_param)


def activation_moments(act: str, q: float, act_param: float | None = None) -> tuple[float, float]:
    """(E[φ(√q z)²], E[φ′(√q z)²]) for a canonical activation name.

    Exact closed forms (truncated Gaussian moments) for the piecewise-linear and
    piecewise-quadratic activations; quadrature for the rest.
    """
    name = canonical_activation(act)
    if name is None:
        raise ValueError(f"unsupported activation {act!r}")
    st = _act_stats(name, float(q), _param(name, act_param))
    return st.m2, st.d2


# ------------------------------------------------------------------------- inits


def torch_gain(nonlinearity: str, param: float | None = None, *, strict: bool = True) -> float:
    """``torch.nn.init.calculate_gain`` (used by kaiming/xavier with a named nonlinearity).

    Unsupported names raise ValueError, as torch does; with ``strict=False`` they give 1."""
    n = nonlinearity.lower()
    if n in ("linear", "sigmoid", "identity") or n.startswith("conv"):
        return 1.0
    if n == "tanh":
        return 5.0 / 3.0
    if n == "relu":
        return math.sqrt(2.0)
    if n == "leaky_relu":
        a = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + a * a))
    if n == "selu":
        return 0.75
    if not strict:
        return 1.0
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def _num(params: Mapping[str, object], *names: str, default: float) -> float:
    for n in names:
        v = params.get(n)
        if v is not None and not isinstance(v, str):
            return float(v)  # type: ignore[arg-type]
    return default


def _fan_ratio(mode: str, fan_in: int | None, fan_out: int | None) -> float | None:
    """fan_in / fan_used, i.e. the factor turning `scale/fan_used` into σ_w²."""
    if mode == "fan_in":
        return 1.0
    if fan_in is None or fan_out is None:
        return None
    if mode == "fan_out":
        return fan_in / max(1.0, float(fan_out))
    return fan_in / max(1.0, (fan_in + fan_out) / 2.0)  # fan_avg


def _mode(params: Mapping[str, object], default: str = "fan_in") -> str:
    m = params.get("mode")
    if isinstance(m, str):
        return m.lower()
    if m is not None:  # numeric code: 0 fan_in, 1 fan_out, 2 fan_avg
        return ("fan_in", "fan_out", "fan_avg")[int(m)]  # type: ignore[call-overload]
    if params.get("fan_out_mode"):
        return "fan_out"
    return default


def _trunc_normal_var(std: float, a: float, b: float) -> float:
    """Variance of N(0, std²) truncated to [a, b] (absolute bounds, as torch's trunc_normal_)."""
    if std <= 0:
        return 0.0
    al, be = a / std, b / std
    z = _phi_cdf(be) - _phi_cdf(al)
    if z <= 0:
        return 0.0
    pa = _INV_SQRT_2PI * math.exp(-0.5 * al * al) if math.isfinite(al) else 0.0
    pb = _INV_SQRT_2PI * math.exp(-0.5 * be * be) if math.isfinite(be) else 0.0
    ta = al * pa if math.isfinite(al) else 0.0
    tb = be * pb if math.isfinite(be) else 0.0
    return std * std * (1.0 + (ta - tb) / z - ((pa - pb) / z) ** 2)


#: Var of a standard normal truncated at ±2σ (keras TruncatedNormal redraws beyond 2 stddev).
_TRUNC2_VAR = _trunc_normal_var(1.0, -2.0, 2.0)


def init_sigma_w2(
    init: str, params: Mapping[str, float], fan_in: int | None, fan_out: int | None
) -> float | None:
    """σ_w² = fan_in · Var(W) for a named init scheme; None when not determinable.

    Only the variance enters mean-field theory; a nonzero mean (e.g. torch's
    ``uniform_`` default U(0, 1), ``ones``) is a rank-one term this model ignores.
    Accepted names and params (``params`` values are numbers; ``mode`` may also
    be a string or a code 0/1/2 = fan_in/fan_out/fan_avg):

    * ``torch_default`` – ``nn.Linear``/``ConvNd`` default, kaiming_uniform(a=√5): 1/3.
    * ``kaiming_uniform``/``kaiming_normal`` – ``a`` (0), ``nonlinearity`` (a string,
      as torch; default leaky_relu), ``gain`` (overrides both; default √(2/(1+a²))),
      ``mode`` or ``fan_out_mode=1``.  σ_w² = gain²·fan_in/fan_mode.
    * ``xavier_uniform``/``xavier_normal`` – ``gain`` (1): gain²·2·fan_in/(fan_in+fan_out).
    * ``normal`` (torch ``normal_``) – ``std``/``stddev`` (1.0): fan_in·std².
    * ``uniform`` (torch ``uniform_``) – ``a``, ``b`` (0, 1): fan_in·(b−a)²/12.
    * ``trunc_normal`` (torch/timm) – ``std`` (1), ``a``, ``b`` (−2, 2, absolute cut-offs).
    * ``orthogonal`` – ``gain`` (1): gain².  ``eye``/``identity`` – ``gain`` (1): gain².
    * keras ``glorot_uniform``/``glorot_normal`` (fan_avg, 1), ``he_uniform``/``he_normal``
      (2), ``lecun_uniform``/``lecun_normal`` (1).
    * keras ``random_normal`` – ``stddev`` (0.05); ``random_uniform`` – ``minval``,
      ``maxval`` (−0.05, 0.05); ``truncated_normal`` – ``stddev`` (0.05), cut at ±2 stddev.
      (Keras string aliases ``"normal"``/``"uniform"`` mean these, not torch's: map them
      to ``random_normal``/``random_uniform`` before calling.)
    * keras ``variance_scaling`` – ``scale`` (1), ``mode`` (fan_in); all keras
      distributions are variance-corrected, so the distribution does not matter.
    * ``zeros``/``ones``/``constant`` – 0.0.
    """
    name = init.strip().lower()
    p: Mapping[str, object] = params or {}
    if name in ("zeros", "zero", "ones", "one", "constant"):
        return 0.0
    if name == "torch_default":
        return 1.0 / 3.0
    if name in ("kaiming_uniform", "kaiming_normal"):
        a = _num(p, "a", "negative_slope", default=0.0)
        nonlin = p.get("nonlinearity")
        default_gain = torch_gain(nonlin, a) if isinstance(nonlin, str) else math.sqrt(2.0 / (1.0 + a * a))
        gain = _num(p, "gain", default=default_gain)
        r = _fan_ratio(_mode(p), fan_in, fan_out)
        return None if r is None else gain * gain * r
    if name in ("xavier_uniform", "xavier_normal", "glorot_uniform", "glorot_normal"):
        gain = _num(p, "gain", default=1.0)
        r = _fan_ratio("fan_avg", fan_in, fan_out)
        return None if r is None else gain * gain * r
    if name in ("he_uniform", "he_normal"):
        return 2.0
    if name in ("lecun_uniform", "lecun_normal"):
        return 1.0
    if name == "variance_scaling":
        scale = _num(p, "scale", default=1.0)
        r = _fan_ratio(_mode(p), fan_in, fan_out)
        return None if r is None else scale * r
    if name in ("orthogonal", "eye", "identity"):
        gain = _num(p, "gain", default=1.0)
        return gain * gain
    if fan_in is None:
        return None
    if name == "normal":
        std = _num(p, "std", "stddev", default=1.0)
        return fan_in * std * std
    if name == "random_normal":
        std = _num(p, "stddev", "std", default=0.05)
        return fan_in * std * std
    if name == "uniform":
        a, b = _num(p, "a", "minval", default=0.0), _num(p, "b", "maxval", default=1.0)
        return fan_in * (b - a) ** 2 / 12.0
    if name == "random_uniform":
        a, b = _num(p, "minval", "a", default=-0.05), _num(p, "maxval", "b", default=0.05)
        return fan_in * (b - a) ** 2 / 12.0
    if name == "trunc_normal":
        std = _num(p, "std", "stddev", default=1.0)
        a, b = _num(p, "a", default=-2.0), _num(p, "b", default=2.0)
        return fan_in * _trunc_normal_var(std, a, b)
    if name == "truncated_normal":
        std = _num(p, "stddev", "std", default=0.05)
        return fan_in * std * std * _TRUNC2_VAR
    return None


def torch_default_bias_var(fan_in: int | None) -> float | None:
    """Var(b) of PyTorch's default Linear/Conv bias U(±1/√fan_in) = 1/(3·fan_in)."""
    if fan_in is None or fan_in <= 0:
        return None
    return 1.0 / (3.0 * fan_in)


# --------------------------------------------------------------------- model types

NormKind = str  # "batch" (BatchNorm, InstanceNorm) or "layer" (LayerNorm, GroupNorm, RMSNorm)


@dataclass(frozen=True)
class WeightLayer:
    """A weight layer (Linear/Dense/Conv) followed by optional norm and activation.

    Extensions beyond the original API (all optional, appended at the end):
    ``fan_in`` enters the weight-gradient ratio through ‖x_l‖² = fan_in·E[x²]
    when known for the first and the last layer; ``norm_kind`` says which
    statistics the norm uses, because BatchNorm removes each unit's offset
    (its variance is taken across the batch) while LayerNorm does not.
    """

    sigma_w2: float | None
    activation: str = "linear"
    sigma_b2: float = 0.0
    normalized: bool = False
    act_param: float | None = None
    label: str = ""
    fan_in: int | None = None
    norm_kind: NormKind = "batch"


@dataclass(frozen=True)
class ResidualBlock:
    """``x + branch(x)`` with an identity shortcut.

    ``normalized_branch`` means the branch *input* is normalized (pre-norm
    transformer, pre-activation ResNet): the branch sees unit variance and the
    backward signal into the stream is divided by the stream's std.  Norms that
    follow a weight layer are expressed with ``WeightLayer.normalized`` instead.
    ``zero_init_last`` models the branch's last weight being zero (Fixup,
    ReZero, zero_init_residual, adaLN-Zero): the block is the identity at init,
    the last branch layer still gets a gradient, earlier branch layers get none.
    """

    branch: tuple[WeightLayer | ResidualBlock, ...]
    zero_init_last: bool = False
    normalized_branch: bool = False
    label: str = ""
    norm_kind: NormKind = "layer"


@dataclass
class LayerEstimate:
    """Per weight layer, in execution order.

    ``q``: variance entering the activation (1 after a norm).  ``chi``: the
    layer's own mean-field gain σ_w²·E[φ′(√q z)²], divided by the variance the
    norm divides by when normalized.  log10 values are relative to the last
    weight layer; −inf where the gradient is exactly zero at init.
    """

    label: str
    q: float | None
    chi: float | None
    log10_backward: float | None
    log10_weight_grad: float | None


@dataclass
class ChainEstimate:
    """Result of :func:`estimate_chain`; ratios are first / last weight layer.

    ``log10_weight_ratio`` is for the batch gradient at ``batch_size`` (what a
    training step and the dynamic check see); ``log10_weight_ratio_per_sample``
    is the same ratio for single-example gradients.
    """

    layers: list[LayerEstimate]
    log10_backward_ratio: float
    log10_weight_ratio: float
    exact: bool
    assumptions: list[str] = field(default_factory=list)
    log10_weight_ratio_per_sample: float = 0.0
    batch_size: int | None = None


# ------------------------------------------------------------------------ estimator


def _ln(x: float) -> float:
    return math.log(x) if x > 0 else -math.inf


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    hi, lo = max(a, b), min(a, b)
    return hi + math.log1p(math.exp(lo - hi))


@dataclass
class _Rec:
    """Internal per-layer record, filled forward then backward.

    Two-sample mean field: besides the per-sample second moments (q, m) the
    covariance between two *different* examples of a batch (q_ab, m_ab) is
    tracked.  It is what BatchNorm removes, and what makes batch-summed weight
    gradients add coherently.
    """

    layer: WeightLayer
    act: str
    sw2: float
    q_pre: float
    q: float
    norm_var: float | None  # the variance the norm divides by (None: not normalized)
    m_in: float
    mab_in: float
    d2: float
    dab: float
    log_g: float = 0.0  # ln of the per-sample ‖δ‖² at the layer's output (pre-norm)
    rho: float = 0.0  # δ_a·δ_b / ‖δ‖² across two examples


class _Runner:
    def __init__(self, fixed_point: bool = False) -> None:
        self.recs: list[_Rec] = []
        self.notes: list[str] = []
        self.exact = True
        self.fixed_point = fixed_point

    def _note(self, text: str) -> None:
        self.exact = False
        if text not in self.notes:
            self.notes.append(text)

    def _fixed_q(self, act: str, param: float, sw2: float, sb2: float) -> float:
        q = 1.0
        for _ in range(200):
            q_new = sw2 * _act_stats(act, min(q, _Q_CLAMP), param).m2 + sb2
            if not q_new < _Q_CLAMP:
                return _Q_CLAMP
            if q_new < 1e-30:
                return 0.0
            if abs(q_new - q) <= 1e-6 * q:
                return q_new
            q = q_new
        return q

    def forward_layer(self, layer: WeightLayer, m: float, mab: float, zero_weight: bool) -> tuple[float, float]:
        act = canonical_activation(layer.activation)
        where = layer.label or "a layer"
        if act is None:
            self._note(f"unknown activation {layer.activation!r} at {where}: treated as identity")
            act = "linear"
        param = _param(act, layer.act_param)
        sw2 = 0.0 if zero_weight else float(layer.sigma_w2 or 0.0)
        sb2 = 0.0 if zero_weight else float(layer.sigma_b2)
        q_pre, qab_pre = sw2 * m + sb2, sw2 * mab + sb2
        if self.fixed_point and not layer.normalized:
            q_pre = self._fixed_q(act, param, sw2, sb2)
            qab_pre = min(qab_pre, q_pre)
        if q_pre > _Q_CLAMP:
            self._note(f"forward variance overflows (q > {_Q_CLAMP:g}) at {where}: clamped")
            qab_pre, q_pre = _Q_CLAMP * qab_pre / q_pre, _Q_CLAMP
        norm_var: float | None = None
        q, qab = q_pre, qab_pre
        if layer.normalized and q_pre > 0:
            if layer.norm_kind == "batch":
                norm_var = max(q_pre - qab_pre, q_pre * 1e-12)
                q, qab = 1.0, 0.0
            else:
                norm_var = q_pre
                q, qab = 1.0, qab_pre / q_pre
        st = _act_stats(act, q, param)
        c = qab / q if q > 0 else 1.0
        m_ab, d_ab = _two_point(act, q, param, c, st)
        m_out, d2 = st.m2, st.d2
        if zero_weight:
            m_out = m_ab = 0.0
        if not (math.isfinite(m_out) and math.isfinite(d2) and math.isfinite(m_ab)):
            self._note(f"activation moments overflow at {where}: clamped")
            m_out, d2, m_ab, d_ab = (min(v, _Q_CLAMP) for v in (m_out, d2, m_ab, d_ab))
        self.recs.append(_Rec(layer, act, sw2, q_pre, q, norm_var, m, mab, d2, d_ab))
        return m_out, m_ab

    def forward_seq(
        self, items: Sequence[WeightLayer | ResidualBlock], m: float, mab: float, zero_last: bool = False
    ) -> tuple[list[tuple[object, object]], float, float]:
        """Forward moments; returns a trace for the backward pass and the output (m, m_ab)."""
        trace: list[tuple[object, object]] = []
        for idx, item in enumerate(items):
            last = zero_last and idx == len(items) - 1
            if isinstance(item, WeightLayer):
                m, mab = self.forward_layer(item, m, mab, last)
                trace.append((item, self.recs[-1]))
            else:
                if item.normalized_branch and m > 0:
                    b_in = (1.0, 0.0) if item.norm_kind == "batch" else (1.0, mab / m)
                else:
                    b_in = (m, mab)
                sub, mb, mabb = self.forward_seq(item.branch, *b_in, zero_last=item.zero_init_last or last)
                trace.append((item, (sub, m, mab)))
                m, mab = m + mb, mab + mabb
        return trace, m, mab

    def backward_seq(self, trace: list[tuple[object, object]], lg: float, r: float) -> tuple[float, float]:
        """Takes (ln‖g‖², coherence) at the output of ``trace``; returns them at its input."""
        for item, info in reversed(trace):
            if isinstance(item, WeightLayer):
                rec = info
                assert isinstance(rec, _Rec)
                lg = lg + _ln(rec.d2)
                r = r * rec.dab / rec.d2 if rec.d2 > 0 else 0.0
                if rec.norm_var is not None:
                    if rec.layer.norm_kind == "batch":  # BN backward removes the batch mean
                        lg += _ln(max(1.0 - r, 1e-300))
                        r = 0.0
                    lg -= math.log(rec.norm_var)
                rec.log_g, rec.rho = lg, r
                lg = lg + _ln(rec.sw2)
            else:
                assert isinstance(item, ResidualBlock)
                sub, m_s, mab_s = info  # type: ignore[misc]
                lb, rb = self.backward_seq(sub, lg, r)
                if item.normalized_branch and m_s > 0:
                    if item.norm_kind == "batch":
                        lb += _ln(max(1.0 - rb, 1e-300)) - _ln(max(m_s - mab_s, m_s * 1e-12))
                        rb = 0.0
                    else:
                        lb -= math.log(m_s)
                total = _logaddexp(lg, lb)
                if total == -math.inf:
                    r = 0.0
                else:
                    r = r * math.exp(lg - total) + (rb * math.exp(lb - total) if lb > -math.inf else 0.0)
                lg = total
        return lg, r


def _flatten(items: Sequence[WeightLayer | ResidualBlock]) -> list[WeightLayer]:
    out: list[WeightLayer] = []
    for it in items:
        if isinstance(it, WeightLayer):
            out.append(it)
        else:
            out.extend(_flatten(it.branch))
    return out


def _fill_unknown(
    items: Sequence[WeightLayer | ResidualBlock], value: float
) -> tuple[WeightLayer | ResidualBlock, ...]:
    out: list[WeightLayer | ResidualBlock] = []
    for it in items:
        if isinstance(it, WeightLayer):
            out.append(replace(it, sigma_w2=value) if it.sigma_w2 is None else it)
        else:
            out.append(replace(it, branch=_fill_unknown(it.branch, value)))
    return tuple(out)


_L10 = 1.0 / math.log(10.0)


def _run(
    layers: Sequence[WeightLayer | ResidualBlock],
    input_q: float,
    batch_size: int | None,
    target_var: float,
    fixed_point: bool = False,
) -> ChainEstimate:
    r = _Runner(fixed_point)
    trace, m_out, mab_out = r.forward_seq(layers, float(input_q), 0.0)
    rho_out = mab_out / (m_out + target_var) if m_out + target_var > 0 else 0.0
    r.backward_seq(trace, 0.0, rho_out)
    recs = r.recs
    if not recs:
        return ChainEstimate([], 0.0, 0.0, True, ["no weight layers"], 0.0, batch_size)
    last = recs[-1]
    b = max(1, batch_size or 1)

    def lw(rec: _Rec, coherent: bool) -> float:
        """ln ‖∂L/∂W‖² per example (up to the fan factor): ‖δ‖²·E[x²]·(1 + (B−1)·ρ_δ·ρ_x)."""
        base = rec.log_g + _ln(rec.m_in)
        if coherent and b > 1 and rec.m_in > 0:
            boost = 1.0 + (b - 1) * rec.rho * (rec.mab_in / rec.m_in)
            base += math.log(max(boost, 1.0 / b))
        return base

    fan_known = bool(recs[0].layer.fan_in and last.layer.fan_in)
    out: list[LayerEstimate] = []
    per_sample: list[float] = []
    for rec in recs:
        chi = rec.sw2 * rec.d2
        if rec.norm_var is not None:
            chi /= rec.norm_var
        lb = 0.5 * (rec.log_g - last.log_g) * _L10
        fan = 0.0
        if fan_known and rec.layer.fan_in:
            fan = 0.5 * math.log10(rec.layer.fan_in / last.layer.fan_in)  # type: ignore[operator]
        lwg = 0.5 * (lw(rec, True) - lw(last, True)) * _L10 + fan
        per_sample.append(0.5 * (lw(rec, False) - lw(last, False)) * _L10 + fan)
        out.append(LayerEstimate(rec.layer.label, rec.q, chi, lb, lwg))
    first_i = next((i for i, e in enumerate(out) if e.log10_weight_grad not in (None, -math.inf)), 0)
    if first_i > 0:
        r.notes.append(
            f"first {first_i} weight layer(s) have exactly zero gradient at init (zero weights "
            f"downstream, e.g. a zero-initialised residual branch): ratio taken from layer {first_i + 1}"
        )
    if not fan_known and len(recs) > 1:
        r.notes.append("fan-in of first/last layer unknown: compared per unit (equal widths assumed)")
    first = out[first_i]
    if lw(last, False) == -math.inf:
        r._note("the last weight layer's input is zero at init: weight-gradient ratio undefined (NaN)")
    return ChainEstimate(
        layers=out,
        log10_backward_ratio=first.log10_backward if first.log10_backward is not None else 0.0,
        log10_weight_ratio=first.log10_weight_grad if first.log10_weight_grad is not None else 0.0,
        exact=r.exact,
        assumptions=r.notes,
        log10_weight_ratio_per_sample=per_sample[first_i],
        batch_size=batch_size,
    )


def _imbalance(est: ChainEstimate) -> float:
    w = est.log10_weight_ratio if math.isfinite(est.log10_weight_ratio) else 1e9
    return abs(w) + abs(est.log10_backward_ratio)


#: plausible σ_w² for an unknown init: PyTorch default, Glorot/LeCun (square), He.
_UNKNOWN_CANDIDATES: tuple[float, ...] = (1.0 / 3.0, 1.0, 2.0)
DEFAULT_BATCH_SIZE = 128


def estimate_chain(
    layers: Sequence[WeightLayer | ResidualBlock],
    input_q: float = 1.0,
    *,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
    target_var: float = 1.0,
) -> ChainEstimate:
    """Predict gradient norms per weight layer at initialization.

    ``input_q``: second moment of the network input per component (inputs are
    taken as zero-mean and independent across examples).  ``batch_size``: the
    weight-gradient ratio is for the gradient summed over a batch of this size;
    examples become correlated with depth (shared per-unit offsets), so the
    last layer's gradient adds up coherently across the batch and the ratio
    first/last is smaller than for a single example (None or 1: per example).
    ``target_var``: variance of a zero-mean regression target, which decides
    how correlated the output errors of two examples are.

    Layers with ``sigma_w2=None`` (init unknown) are evaluated at each plausible
    σ_w² in {1/3, 1, 2}; the result closest to balanced (smallest |log10 weight
    ratio| + |log10 backward ratio|) is returned, so a finding survives whatever
    common init was used.
    """
    flat = _flatten(layers)
    unknown = [i for i, lyr in enumerate(flat) if lyr.sigma_w2 is None]
    if not unknown:
        return _run(layers, input_q, batch_size, target_var)
    best: ChainEstimate | None = None
    best_v = 0.0
    for v in _UNKNOWN_CANDIDATES:
        est = _run(_fill_unknown(layers, v), input_q, batch_size, target_var)
        if best is None or _imbalance(est) < _imbalance(best):
            best, best_v = est, v
    assert best is not None
    names = ", ".join(str(i + 1) for i in unknown)
    best.exact = False
    best.assumptions.insert(
        0,
        f"init unknown for layer(s) {names}: tried σ_w² ∈ {{1/3, 1, 2}}, "
        f"kept the most balanced (σ_w²={best_v:.3g})",
    )
    return best


@lru_cache(maxsize=256)
def _sup_d2(act: str, param: float) -> float:
    """sup over q of E[φ′(√q z)²] (log grid over q plus the q→0 end)."""
    best = _act_stats(act, 1e-12, param).d2
    for k in range(-40, 41):
        best = max(best, _act_stats(act, 10.0 ** (k / 8.0), param).d2)
    return best


_EXACT_SUP = {
    "linear": 1.0, "relu": 0.5, "sigmoid": 1.0 / 16.0, "tanh": 1.0, "hardtanh": 1.0,
    "hard_sigmoid": 1.0 / 36.0, "softsign": 1.0, "relu6": 0.5,
}


def per_layer_bound(activation: str, sigma_w2: float, act_param: float | None = None) -> float:
    """Upper bound on √χ = σ_w·√E[φ′²] valid for every q (use when q is unknown).

    sigmoid σ_w/4, tanh σ_w, relu σ_w/√2 (exact for all q), leaky_relu
    σ_w·√((1+a²)/2), …; for the smooth non-saturating ones the sup over a log
    grid of q, plus a 2 % margin (the sup can sit between grid points).
    """
    act = canonical_activation(activation)
    s = math.sqrt(max(sigma_w2, 0.0))
    if act is None or act == "exponential":
        return math.inf
    if act in _EXACT_SUP:
        return s * math.sqrt(_EXACT_SUP[act])
    param = _param(act, act_param)
    if act == "leaky_relu":
        return s * math.sqrt((1.0 + param * param) / 2.0)
    return s * math.sqrt(_sup_d2(act, param)) * 1.02
