"""Activations: canonical names, φ and φ′, and their Gaussian moments (one and two samples)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from operator import mul as _mul

from gradlint.gradflow.quadrature import _INV_SQRT_2PI, _SQRT2, _nodes, gaussian_expectation
from gradlint.records import dataclass

ACTIVATIONS: frozenset[str] = frozenset(
    {
        "linear", "sigmoid", "tanh", "relu", "relu6", "leaky_relu", "elu", "selu",
        "celu", "gelu", "gelu_tanh", "silu", "mish", "softplus", "softsign",
        "hardtanh", "hard_sigmoid", "hard_swish", "exponential", "log_sigmoid", "thresholded_relu",
    }
)
SATURATING: frozenset[str] = frozenset({"sigmoid", "tanh", "softsign", "hardtanh", "hard_sigmoid"})

_DEFAULT_ACT_PARAM: dict[str, float] = {"leaky_relu": 0.01, "elu": 1.0, "celu": 1.0, "thresholded_relu": 1.0}

#: Every spelling users write (torch, keras, HF, functional) -> one canonical name. The one
#: table of activation names: extraction (``gradlint.extract.catalog``) reads it too. Canonical
#: names outside ``ACTIVATIONS`` (softmax, log_softmax, other) are activations the
#: extractor recognizes but this estimator does not model.
ACTIVATION_ALIASES: dict[str, str] = {
    **{name: name for name in ACTIVATIONS},
    "identity": "linear", "none": "linear", "": "linear",
    "logistic": "sigmoid", "expit": "sigmoid",  # torch.special.expit
    "leakyrelu": "leaky_relu", "prelu": "leaky_relu", "rrelu": "leaky_relu",
    "swish": "silu",
    "thresholdedrelu": "thresholded_relu",  # Keras ThresholdedReLU(theta): u if u > theta else 0
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
    "threshold": "thresholded_relu",  # torch nn.Threshold(θ, 0) / F.threshold(x, θ, 0): see relu_family
}

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
#: q above this is reported as a forward overflow and clamped (keeps the arithmetic finite).
_Q_CLAMP = 1e250


def activation_alias(name: str) -> str | None:
    """The canonical name of an activation as written (``F.relu_`` in-place forms included);
    None when ``name`` is no activation gradlint knows."""
    key = name.strip().lower().replace("-", "_")
    if key.endswith("_") and key[:-1] in ACTIVATION_ALIASES:  # in-place variants: F.relu_
        key = key[:-1]
    return ACTIVATION_ALIASES.get(key)


def relu_family(threshold: float = 0.0, cap: float | None = None, slope: float = 0.0,
                below: float | None = None) -> tuple[str, float | None] | None:
    """The member of the ReLU family x ↦ (x on (θ, cap), ``slope``·(x − θ) or the constant ``below`` under
    θ, cap above) that an activation's arguments pick — Keras ``ReLU(max_value, negative_slope,
    threshold)``, ``ThresholdedReLU(theta)``, torch ``Threshold(threshold, value)`` — as (canonical name,
    its parameter); None where the family member is not one the estimator models (a cap other than 6
    with a threshold, a slope and a threshold together, a non-zero floor)."""
    if below is not None and below != 0.0:
        return None  # Threshold(θ, v): the constant v under θ (v = θ is max(x, θ), a shifted ReLU)
    if cap is not None:
        return ("relu6", None) if cap == 6.0 and threshold == 0.0 and slope == 0.0 else None
    if slope != 0.0:
        return ("leaky_relu", slope) if threshold == 0.0 else None
    return ("thresholded_relu", threshold) if threshold != 0.0 else ("relu", None)


def canonical_activation(name: str | None) -> str | None:
    """Map common spellings (torch/keras/HF) to a canonical name; None if the estimator does
    not model it (softmax, unknown names)."""
    if name is None:
        return "linear"
    key = activation_alias(name)
    return key if key in ACTIVATIONS else None




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


# The smooth activations, which have no parameter: (φ, φ′, no kinks).
def _ds(u: float) -> float:
    s = _sigmoid(u)
    return s * (1.0 - s)


def _gelu(u: float) -> float:
    return u * _phi_cdf(u)


def _dgelu(u: float) -> float:
    return _phi_cdf(u) + u * _INV_SQRT_2PI * math.exp(-0.5 * u * u)


def _gelu_tanh(u: float) -> float:
    return 0.5 * u * (1.0 + math.tanh(_K_GELU * (u + 0.044715 * u**3)))


def _dgelu_tanh(u: float) -> float:
    t = math.tanh(_K_GELU * (u + 0.044715 * u**3))
    return 0.5 * (1.0 + t) + 0.5 * u * (1.0 - t * t) * _K_GELU * (1.0 + 3 * 0.044715 * u * u)


def _mish(u: float) -> float:
    return u * math.tanh(_softplus(u))


def _dmish(u: float) -> float:
    t = math.tanh(_softplus(u))
    return t + u * (1.0 - t * t) * _sigmoid(u)


_SMOOTH: dict[str, tuple[Fn, Fn, tuple[float, ...]]] = {
    "sigmoid": (_sigmoid, _ds, ()),
    "tanh": (math.tanh, lambda u: 1.0 - math.tanh(u) ** 2, ()),
    "softsign": (lambda u: u / (1.0 + abs(u)), lambda u: 1.0 / (1.0 + abs(u)) ** 2, (0.0,)),
    "softplus": (_softplus, _sigmoid, ()),
    "log_sigmoid": (lambda u: -_softplus(-u), lambda u: _sigmoid(-u), ()),  # log σ(u) = −softplus(−u)
    "silu": (lambda u: u * _sigmoid(u), lambda u: _sigmoid(u) * (1.0 + u * (1.0 - _sigmoid(u))), ()),
    "gelu": (_gelu, _dgelu, ()),
    "gelu_tanh": (_gelu_tanh, _dgelu_tanh, ()),
    "mish": (_mish, _dmish, ()),
}


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
    if act == "thresholded_relu":
        return (lambda u: u if u > p else 0.0), (lambda u: 1.0 if u > p else 0.0), (p,)
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
    smooth = _SMOOTH.get(act)
    if smooth is not None:
        return smooth
    raise KeyError(act)


# Exact second moments for the piecewise-polynomial activations (quadrature across a
# kink converges slowly and these are the most common activations).

def _upper_tail(x: float) -> float:
    """P(z > x) for z ~ N(0, 1), from the tail itself (1 − Φ(x) cancels to 0 past x ≈ 8)."""
    return 0.5 * math.erfc(x / _SQRT2)


def _mass(lo: float, hi: float) -> float:
    """P(lo < z < hi), z ~ N(0, 1), from the nearer tail: a band far out in the upper tail (a large
    threshold over a small pre-activation spread) keeps its few significant digits."""
    if lo >= 0.0:
        return _upper_tail(lo) - (0.0 if hi == math.inf else _upper_tail(hi))
    if hi <= 0.0:
        return _upper_tail(-hi) - (0.0 if lo == -math.inf else _upper_tail(-lo))
    return 1.0 - (0.0 if hi == math.inf else _upper_tail(hi)) - (0.0 if lo == -math.inf else _upper_tail(-lo))


def _trunc_moments(a: float, b: float, q: float, kmax: int) -> list[float]:
    """I_k = E[u^k·1(a<u<b)], u ~ N(0, q), k = 0..kmax (a, b may be ±inf)."""
    s = math.sqrt(q)

    def dens(u: float) -> float:
        return 0.0 if math.isinf(u) else math.exp(-0.5 * u * u / q) / (s * math.sqrt(2 * math.pi))

    def upow(u: float, k: int) -> float:
        return 0.0 if math.isinf(u) else u**k

    da, db = dens(a), dens(b)
    moments = [_mass(a / s, b / s)]
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
    if act == "thresholded_relu":
        return ((p, inf, (0.0, 1.0)),), ((p, inf, (1.0,)),)
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
        total += sum(c * m for c, m in zip(pp, mom, strict=False))
    return total


#: Hermite terms kept for two-sample (cross-batch) moments; the rest is a Parseval tail.
_N_HERMITE = 24


@dataclass(frozen=True)
class _ActStats:
    """Moments of one activation at one pre-activation variance q."""

    mean: float  # E[φ]
    m2: float  # E[φ²]
    d2: float  # E[φ′²]


@lru_cache(maxsize=256)
def _hermite_table(zs: tuple[float, ...]) -> tuple[tuple[float, ...], ...]:
    """He_k(z_i)/√k! at the nodes, k < _N_HERMITE: the Gauss–Hermite nodes are the same for every
    moderate variance, so the table is computed once, not once per layer."""
    rows: list[tuple[float, ...]] = []
    h_prev = [0.0] * len(zs)
    h = [1.0] * len(zs)
    for k in range(_N_HERMITE):
        rows.append(tuple(h))
        sk, sk1 = math.sqrt(k), 1.0 / math.sqrt(k + 1)
        h, h_prev = [(z * hk - sk * hp) * sk1 for z, hk, hp in zip(zs, h, h_prev, strict=False)], h
    return tuple(rows)


def _hermite_coeffs(vals: Sequence[float], zs: Sequence[float], ws: Sequence[float]) -> tuple[float, ...]:
    """a_k = E[f(z)·He_k(z)/√k!], k < _N_HERMITE, from values at quadrature nodes."""
    wv = [w * v for w, v in zip(ws, vals, strict=False)]
    return tuple(sum(map(_mul, wv, row)) for row in _hermite_table(tuple(zs)))


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
    dfv = [df(s * z) for z in zs]
    return _ActStats(sum(map(_mul, ws, fv)), sum(w * x * x for w, x in zip(ws, fv, strict=True)),
                     sum(w * x * x for w, x in zip(ws, dfv, strict=True)))


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


@lru_cache(maxsize=4096)
def signal_moment(act: str, q: float, param: float, mean: float = 0.0) -> float:
    """E[(u − mean)·φ(u)·φ′(u)] for u ~ N(mean, q): how much of E[φ·Dφ] follows a rescaling of u's
    fluctuation (for a positively homogeneous φ and no shift — ReLU, linear — it is E[φ(u)²]; a
    saturating φ, or one shifted into its flat part, passes less of it on)."""
    if q <= 0.0 or act == "exponential":
        return 0.0
    f, df, kinks = _act_fns(act, param)
    return gaussian_expectation(lambda z: z * f(z + mean) * df(z + mean), q, tuple(k - mean for k in kinks))



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



@dataclass(frozen=True)
class ShiftedStats:
    """Moments of φ(u) for u = μ + √v·z, and of two samples whose centred parts correlate by c."""

    mean: float  # E[φ]
    m2: float  # E[φ²]
    d2: float  # E[φ′²]
    m_ab: float  # E[φ(u_a)·φ(u_b)]
    d_ab: float  # E[φ′(u_a)·φ′(u_b)]


def shifted_moments(act: str, mu: float, v: float, param: float, c: float) -> ShiftedStats:
    """Moments of an activation whose input is not centred (after a residual sum of ReLU
    outputs, after a LayerNorm'd sigmoid, a softmax approximated per unit).

    μ = 0 takes the exact paths (closed forms, arc-cosine kernel); otherwise quadrature of
    g(u) = φ(μ + u) with its kinks moved by −μ, and Mehler's expansion of g for the
    two-sample terms. ``c`` is the correlation of the centred parts of two samples."""
    c = max(-1.0, min(1.0, c))
    if mu == 0.0 or v <= 0.0:
        if v <= 0.0:
            f, df, _ = _act_fns(act, param)
            val, dval = f(mu), df(mu)
            return ShiftedStats(val, val * val, dval * dval, val * val, dval * dval)
        st = _act_stats(act, v, param)
        m_ab, d_ab = _two_point(act, v, param, c, st)
        return ShiftedStats(st.mean, st.m2, st.d2, m_ab, d_ab)
    return _shifted(act, mu, v, param, round(c, 6))


@lru_cache(maxsize=4096)
def _shifted(act: str, mu: float, v: float, param: float, c: float) -> ShiftedStats:
    if act == "exponential":
        if mu + 2.0 * v > 700.0:
            return ShiftedStats(math.inf, math.inf, math.inf, math.inf, math.inf)
        m2 = math.exp(2.0 * mu + 2.0 * v)
        cross = math.exp(2.0 * mu + v * (1.0 + c))
        return ShiftedStats(math.exp(mu + 0.5 * v), m2, m2, cross, cross)
    f, df, kinks = _act_fns(act, param)
    s = math.sqrt(v)
    zs, ws = _nodes(v, tuple(k - mu for k in kinks))
    fv = [f(mu + s * z) for z in zs]
    dv = [df(mu + s * z) for z in zs]
    mean = sum(map(_mul, ws, fv))
    m2 = sum(w * x * x for w, x in zip(ws, fv, strict=False))
    d2 = sum(w * x * x for w, x in zip(ws, dv, strict=False))
    m_ab = _cross(_hermite_coeffs(fv, zs, ws), m2, c)
    d_ab = _cross(_hermite_coeffs(dv, zs, ws), d2, c)
    return ShiftedStats(mean, m2, d2, m_ab, d_ab)
