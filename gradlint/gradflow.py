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
* weight gradient: ``‖∂L/∂W_l‖ ≈ ‖δ_l‖ · ‖x_l‖`` with ``‖x_l‖² = fan_in_l · m_{l-1}``.

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

__all__ = [
    "ACTIVATIONS",
    "SATURATING",
    "WeightLayer",
    "ResidualBlock",
    "LayerEstimate",
    "ChainEstimate",
    "gaussian_expectation",
    "activation_moments",
    "canonical_activation",
    "init_sigma_w2",
    "torch_default_bias_var",
    "torch_gain",
    "estimate_chain",
    "per_layer_bound",
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

_ALIASES: dict[str, str] = {
    "identity": "linear", "none": "linear", "": "linear",
    "logistic": "sigmoid",
    "leakyrelu": "leaky_relu",
    "swish": "silu",
    "hardswish": "hard_swish", "hard_silu": "hard_swish", "hardsilu": "hard_swish",
    "hardsigmoid": "hard_sigmoid",
    "hard_tanh": "hardtanh",
    "exp": "exponential",
    "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "approx_gelu": "gelu_tanh",
}

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
#: q above this is reported as a forward overflow and clamped (keeps the arithmetic finite).
_Q_CLAMP = 1e250


def canonical_activation(name: str | None) -> str | None:
    """Map common spellings (torch/keras/HF) to a canonical name; None if unsupported."""
    if name is None:
        return "linear"
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
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
_GL_X, _GL_W = _gauss_legendre(16)
#: above this q (in units where the activation's features have width ~1) the
#: Hermite nodes near z=0 are too sparse to resolve φ′(√q z); switch to panels.
_GH_QMAX = 4.0
_Z_MAX = 10.0


def gaussian_expectation(
    f: Callable[[float], float], q: float, breakpoints: Sequence[float] = ()
) -> float:
    """E[f(√q·z)], z ~ N(0, 1).

    Gauss–Hermite (probabilists', 100 nodes, computed once at import) when q is
    moderate and f is smooth.  Activation derivatives have features of width ~1
    in u = √q·z, so for large q (and whenever ``breakpoints``, kinks of f in u,
    are given) a composite Gauss–Legendre rule over z ∈ [-10, 10] is used, with
    panel edges at the kinks and at u = ±0.5…32 so those features are resolved.
    """
    if q < 0 or math.isnan(q):
        raise ValueError(f"variance must be >= 0, got {q}")
    s = math.sqrt(q)
    if s == 0.0:
        return f(0.0)
    if q <= _GH_QMAX and not breakpoints:
        return math.fsum(w * f(s * z) for z, w in zip(_GH_Z, _GH_W))
    edges = {0.0, _Z_MAX, -_Z_MAX}
    for e in (1.0, 2.0, 3.0, 4.5, 6.0, 8.0):
        edges.update((e, -e))
    for c in (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0):
        if c / s < _Z_MAX:
            edges.update((c / s, -c / s))
    for b in breakpoints:
        if abs(b / s) < _Z_MAX:
            edges.add(b / s)
    pts = sorted(edges)
    total = []
    for a, b in zip(pts, pts[1:]):
        half, mid = 0.5 * (b - a), 0.5 * (b + a)
        for x, w in zip(_GL_X, _GL_W):
            z = mid + half * x
            total.append(w * half * math.exp(-0.5 * z * z) * f(s * z))
    return math.fsum(total) * _INV_SQRT_2PI


# ------------------------------------------------------------------ exact pieces


def _phi_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


def _mills_exp(x: float) -> float:
    """e^{x²/2}·Φ(−x), stable for large x (asymptotic series past x = 25)."""
    if x < 25.0:
        return math.exp(0.5 * x * x) * 0.5 * math.erfc(x / _SQRT2)
    x2 = x * x
    return _INV_SQRT_2PI / x * (1.0 - 1.0 / x2 + 3.0 / x2**2 - 15.0 / x2**3)


def _exp_below0(k: float, q: float) -> float:
    """E[e^{k u}·1(u<0)] for u ~ N(0, q), k ≥ 0."""
    return _mills_exp(k * math.sqrt(q))


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


def _piecewise(act: str, param: float) -> tuple[Piecewise, Piecewise] | None:
    """(φ, φ′) as piecewise polynomials in u, for activations where that is exact."""
    inf = math.inf
    if act == "linear":
        return ((-inf, inf, (0.0, 1.0)),), ((-inf, inf, (1.0,)),)
    if act == "relu":
        return ((0.0, inf, (0.0, 1.0)),), ((0.0, inf, (1.0,)),)
    if act == "relu6":
        return ((0.0, 6.0, (0.0, 1.0)), (6.0, inf, (6.0,))), ((0.0, 6.0, (1.0,)),)
    if act == "leaky_relu":
        return (
            ((-inf, 0.0, (0.0, param)), (0.0, inf, (0.0, 1.0))),
            ((-inf, 0.0, (param,)), (0.0, inf, (1.0,))),
        )
    if act == "hardtanh":
        return (
            ((-inf, -1.0, (-1.0,)), (-1.0, 1.0, (0.0, 1.0)), (1.0, inf, (1.0,))),
            ((-1.0, 1.0, (1.0,)),),
        )
    if act == "hard_sigmoid":  # relu6(u + 3) / 6  (torch and keras 3 agree)
        return ((-3.0, 3.0, (0.5, 1.0 / 6.0)), (3.0, inf, (1.0,))), ((-3.0, 3.0, (1.0 / 6.0,)),)
    if act == "hard_swish":  # u · relu6(u + 3) / 6
        return (
            ((-3.0, 3.0, (0.0, 0.5, 1.0 / 6.0)), (3.0, inf, (0.0, 1.0))),
            ((-3.0, 3.0, (0.5, 1.0 / 3.0)), (3.0, inf, (1.0,))),
        )
    return None


def _pw_second_moment(pieces: Piecewise, q: float) -> float:
    total = 0.0
    for a, b, poly in pieces:
        sq = _poly_mul(poly, poly)
        mom = _trunc_moments(a, b, q, len(sq) - 1)
        total += sum(c * m for c, m in zip(sq, mom))
    return total


def _pw_value_at0(pieces: Piecewise) -> float:
    """φ(0)² or φ′(0)² for q = 0 (right limit, matching torch's subgradient at 0 for relu)."""
    for a, b, poly in pieces:
        if a <= 0.0 < b:
            return poly[0] ** 2
    return 0.0


def _sigmoid(u: float) -> float:
    if u >= 0:
        return 1.0 / (1.0 + math.exp(-u))
    e = math.exp(u)
    return e / (1.0 + e)


def _softplus(u: float) -> float:
    return u + math.log1p(math.exp(-u)) if u > 0 else math.log1p(math.exp(u))


_K_GELU = math.sqrt(2.0 / math.pi)


def _smooth_fns(act: str, param: float) -> tuple[Callable[[float], float], Callable[[float], float], tuple[float, ...]]:
    """(φ, φ′, kinks) for activations integrated numerically."""
    if act == "sigmoid":
        def d(u: float) -> float:
            s = _sigmoid(u)
            return s * (1.0 - s)
        return _sigmoid, d, ()
    if act == "tanh":
        return math.tanh, lambda u: 1.0 - math.tanh(u) ** 2, ()
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


@lru_cache(maxsize=4096)
def activation_moments(act: str, q: float, act_param: float | None = None) -> tuple[float, float]:
    """(E[φ(√q z)²], E[φ′(√q z)²]) for a canonical activation.

    Exact closed forms (truncated Gaussian moments) for the piecewise-linear /
    piecewise-polynomial activations and the ELU family, where quadrature would
    converge slowly across the kinks; numerical quadrature for the rest.
    """
    param = _DEFAULT_ACT_PARAM.get(act, 0.0) if act_param is None else float(act_param)
    if act == "exponential":
        if 2.0 * q > 700.0:
            return math.inf, math.inf
        v = math.exp(2.0 * q)
        return v, v
    pw = _piecewise(act, param)
    if pw is not None:
        if q == 0.0:
            return _pw_value_at0(pw[0]), _pw_value_at0(pw[1])
        return _pw_second_moment(pw[0], q), _pw_second_moment(pw[1], q)
    if act in ("elu", "selu", "celu"):
        if act == "selu":
            alpha, scale, k = _SELU_ALPHA, _SELU_SCALE, 1.0
        elif act == "elu":
            alpha, scale, k = param, 1.0, 1.0
        else:  # celu: alpha·(e^{u/alpha} − 1)
            alpha, scale, k = param, 1.0, 1.0 / param
        if q == 0.0:
            return 0.0, scale * scale  # right derivative, as torch uses at 0
        half = 0.5
        pos2 = 0.5 * q  # E[u²; u>0]
        e1, e2 = _exp_below0(k, q), _exp_below0(2 * k, q)
        neg2 = alpha * alpha * (e2 - 2 * e1 + half)
        dneg = (alpha * k) ** 2 * e2
        return scale * scale * (pos2 + neg2), scale * scale * (half + dneg)
    f, df, kinks = _smooth_fns(act, param)
    m2 = gaussian_expectation(lambda u: f(u) ** 2, q, kinks)
    d2 = gaussian_expectation(lambda u: df(u) ** 2, q, kinks)
    return m2, d2


# ------------------------------------------------------------------------- inits


def torch_gain(nonlinearity: str, param: float | None = None) -> float:
    """``torch.nn.init.calculate_gain`` (used by kaiming/xavier with a named nonlinearity)."""
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
    * ``kaiming_uniform``/``kaiming_normal`` – ``a`` (0), ``gain`` (overrides a;
      default √(2/(1+a²)), i.e. torch's leaky_relu default = ReLU gain),
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
        gain = _num(p, "gain", default=math.sqrt(2.0 / (1.0 + a * a)))
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


@dataclass(frozen=True)
class WeightLayer:
    """A weight layer (Linear/Dense/Conv) followed by optional norm and activation.

    ``fan_in`` is an optional extension: when known for the first and the last
    layer it enters the weight-gradient ratio through ‖x_l‖² = fan_in·m.
    """

    sigma_w2: float | None
    activation: str = "linear"
    sigma_b2: float = 0.0
    normalized: bool = False
    act_param: float | None = None
    label: str = ""
    fan_in: int | None = None


@dataclass(frozen=True)
class ResidualBlock:
    """``x + branch(x)`` with an identity shortcut.

    ``normalized_branch`` means the branch *input* is normalized (pre-norm
    transformer / pre-activation ResNet): the branch sees unit variance and the
    backward signal into the stream is divided by the stream's std.  Norms that
    follow a weight layer are expressed with ``WeightLayer.normalized`` instead.
    ``zero_init_last`` models the branch's last weight being zero (Fixup,
    ReZero, zero_init_residual, adaLN-Zero): the block is the identity at init.
    """

    branch: tuple[WeightLayer | ResidualBlock, ...]
    zero_init_last: bool = False
    normalized_branch: bool = False
    label: str = ""


@dataclass
class LayerEstimate:
    """Per weight layer.  ``q`` is the variance entering the activation (1 after a
    norm); ``chi`` the layer's own mean-field gain σ_w²·E[φ′²] (÷ pre-norm variance
    when normalized); log10 values are relative to the last weight layer and are
    −inf where the gradient is exactly zero at init."""

    label: str
    q: float | None
    chi: float | None
    log10_backward: float | None
    log10_weight_grad: float | None


@dataclass
class ChainEstimate:
    """Result of :func:`estimate_chain`; ratios are first/last weight layer."""

    layers: list[LayerEstimate]
    log10_backward_ratio: float
    log10_weight_ratio: float
    exact: bool
    assumptions: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------ estimator


@dataclass
class _Rec:
    """Internal per-layer record, filled forward then backward."""

    layer: WeightLayer
    q_pre: float
    q: float
    m_in: float  # second moment of the layer's input x
    d2: float  # E[φ′(√q z)²]
    log_delta2: float = 0.0  # ln ‖δ‖² relative to the output gradient
    zero_grad: bool = False


def _ln(x: float) -> float:
    return math.log(x) if x > 0 else -math.inf


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    hi, lo = max(a, b), min(a, b)
    return hi + math.log1p(math.exp(lo - hi))


class _Runner:
    def __init__(self) -> None:
        self.recs: list[_Rec] = []
        self.notes: list[str] = []
        self.exact = True

    # forward: returns the second moment of the item's output
    def forward_layer(self, layer: WeightLayer, m_in: float, zero_weight: bool) -> tuple[_Rec, float]:
        act = canonical_activation(layer.activation)
        if act is None:
            self.notes.append(
                f"unknown activation {layer.activation!r} at {layer.label or 'a layer'}: treated as identity"
            )
            self.exact = False
            act = "linear"
        sw2 = 0.0 if zero_weight else float(layer.sigma_w2 or 0.0)
        q_pre = sw2 * m_in + layer.sigma_b2
        if zero_weight:
            q_pre = 0.0  # identity-at-init block: the branch output is exactly zero
        if q_pre > _Q_CLAMP:
            self.notes.append(
                f"forward variance overflows (q > {_Q_CLAMP:g}) at {layer.label or 'a layer'}: clamped"
            )
            self.exact = False
            q_pre = _Q_CLAMP
        q = 1.0 if (layer.normalized and q_pre > 0) else q_pre
        m_out, d2 = activation_moments(act, q, layer.act_param)
        if zero_weight:
            m_out = 0.0
        if math.isinf(m_out) or math.isinf(d2):
            self.notes.append(f"activation moments overflow at {layer.label or 'a layer'}")
            self.exact = False
            m_out, d2 = min(m_out, _Q_CLAMP), min(d2, _Q_CLAMP)
        rec = _Rec(layer=replace(layer, activation=act, sigma_w2=sw2), q_pre=q_pre, q=q, m_in=m_in, d2=d2)
        self.recs.append(rec)
        return rec, m_out

    def forward_seq(
        self, items: Sequence[WeightLayer | ResidualBlock], m: float, zero_last: bool = False
    ) -> tuple[list[tuple[object, object]], float]:
        """Returns a trace (item, info) for the backward pass and the output moment."""
        trace: list[tuple[object, object]] = []
        for idx, item in enumerate(items):
            last = zero_last and idx == len(items) - 1
            if isinstance(item, WeightLayer):
                rec, m = self.forward_layer(item, m, last)
                trace.append((item, rec))
            else:
                m_branch_in = 1.0 if item.normalized_branch else m
                sub, m_b = self.forward_seq(item.branch, m_branch_in, item.zero_init_last or last)
                trace.append((item, (sub, m, m_b)))
                m = m + m_b
        return trace, m

    # backward: takes ln‖g‖² at the item's output, returns it at the item's input
    def backward_seq(self, trace: list[tuple[object, object]], lg: float) -> float:
        for item, info in reversed(trace):
            if isinstance(item, WeightLayer):
                rec = info
                assert isinstance(rec, _Rec)
                ld = lg + _ln(rec.d2)
                if rec.layer.normalized and rec.q_pre > 0:
                    ld -= math.log(rec.q_pre)
                rec.log_delta2 = ld
                lg = ld + _ln(rec.layer.sigma_w2 or 0.0)
            else:
                assert isinstance(item, ResidualBlock)
                sub, m_stream, _m_b = info  # type: ignore[misc]
                lb = self.backward_seq(sub, lg)
                if item.normalized_branch and m_stream > 0:
                    lb -= math.log(m_stream)
                lg = _logaddexp(lg, lb)
        return lg


def _flatten_count(items: Sequence[WeightLayer | ResidualBlock]) -> list[WeightLayer]:
    out: list[WeightLayer] = []
    for it in items:
        if isinstance(it, WeightLayer):
            out.append(it)
        else:
            out.extend(_flatten_count(it.branch))
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


def _run(layers: Sequence[WeightLayer | ResidualBlock], input_q: float) -> ChainEstimate:
    r = _Runner()
    trace, _m_out = r.forward_seq(layers, float(input_q))
    r.backward_seq(trace, 0.0)
    recs = r.recs
    if not recs:
        return ChainEstimate([], 0.0, 0.0, True, ["no weight layers"])
    last = recs[-1]

    def lw(rec: _Rec) -> float:
        """ln ‖∂L/∂W‖² up to the common fan factor."""
        return rec.log_delta2 + _ln(rec.m_in)

    fan_known = all(rc.layer.fan_in for rc in (recs[0], last))
    out: list[LayerEstimate] = []
    for rec in recs:
        lyr = rec.layer
        chi = lyr.sigma_w2 * rec.d2 if lyr.sigma_w2 is not None else None
        if chi is not None and lyr.normalized and rec.q_pre > 0:
            chi /= rec.q_pre
        lb = 0.5 * (rec.log_delta2 - last.log_delta2) * _L10
        lwg = 0.5 * (lw(rec) - lw(last)) * _L10
        if fan_known and lyr.fan_in:
            lwg += 0.5 * math.log10(lyr.fan_in / last.layer.fan_in)  # type: ignore[operator]
        out.append(LayerEstimate(lyr.label, rec.q, chi, lb, lwg))
    first_i = next((i for i, e in enumerate(out) if e.log10_weight_grad not in (None, -math.inf)), 0)
    if first_i > 0:
        r.notes.append(
            f"first {first_i} weight layer(s) have exactly zero gradient at init "
            f"(zero-initialised residual branch / zero weights downstream): ratio taken from layer {first_i + 1}"
        )
    if not fan_known and len(recs) > 1:
        r.notes.append("fan-in of first/last layer unknown: ‖x‖² compared per unit (equal widths assumed)")
    first = out[first_i]
    return ChainEstimate(
        layers=out,
        log10_backward_ratio=first.log10_backward if first.log10_backward is not None else 0.0,
        log10_weight_ratio=first.log10_weight_grad if first.log10_weight_grad is not None else 0.0,
        exact=r.exact,
        assumptions=r.notes,
    )


#: plausible σ_w² for an unknown init: PyTorch default, Glorot/LeCun (square), He.
_UNKNOWN_CANDIDATES: tuple[float, ...] = (1.0 / 3.0, 1.0, 2.0)


def estimate_chain(layers: Sequence[WeightLayer | ResidualBlock], input_q: float = 1.0) -> ChainEstimate:
    """Predict gradient norms per weight layer at initialization.

    ``input_q`` is the second moment of the network input per component.
    Layers with ``sigma_w2=None`` (init unknown) are evaluated at each plausible
    σ_w² in {1/3, 1, 2}; the result closest to balanced (smallest |log10 weight
    ratio|) is returned, so a finding survives whatever common init was used.
    """
    flat = _flatten_count(layers)
    unknown = [i for i, lyr in enumerate(flat) if lyr.sigma_w2 is None]
    if not unknown:
        return _run(layers, input_q)
    best: ChainEstimate | None = None
    best_v = 0.0
    for v in _UNKNOWN_CANDIDATES:
        est = _run(_fill_unknown(layers, v), input_q)
        if best is None or abs(est.log10_weight_ratio) < abs(best.log10_weight_ratio):
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
def _sup_d2(act: str, act_param: float | None) -> float:
    """sup over q of E[φ′(√q z)²] (grid over q plus the q→0 and q→∞ ends)."""
    if act == "exponential":
        return math.inf
    best = 0.0
    for k in range(-40, 41):
        q = 10.0 ** (k / 8.0)
        best = max(best, activation_moments(act, q, act_param)[1])
    best = max(best, activation_moments(act, 1e-12, act_param)[1])
    return best


def per_layer_bound(activation: str, sigma_w2: float, act_param: float | None = None) -> float:
    """Upper bound on √χ = σ_w·√E[φ′²] valid for every q (use when q is unknown).

    sigmoid σ_w/4, tanh σ_w, relu σ_w/√2 (exact), leaky_relu σ_w·√((1+a²)/2), …
    A 2 % margin covers the grid used for smooth activations whose sup is interior.
    """
    act = canonical_activation(activation)
    if act is None:
        return math.inf
    s = math.sqrt(max(sigma_w2, 0.0))
    if act in ("linear", "relu", "leaky_relu", "sigmoid", "tanh", "hardtanh", "hard_sigmoid", "softsign"):
        exact_sup = {
            "linear": 1.0,
            "relu": 0.5,
            "leaky_relu": (1.0 + (0.01 if act_param is None else act_param) ** 2) / 2.0,
            "sigmoid": 1.0 / 16.0,
            "tanh": 1.0,
            "hardtanh": 1.0,
            "hard_sigmoid": 1.0 / 36.0,
            "softsign": 1.0,
        }[act]
        return s * math.sqrt(exact_sup)
    return s * math.sqrt(_sup_d2(act, act_param)) * 1.02
