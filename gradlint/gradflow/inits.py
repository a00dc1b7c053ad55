"""Init schemes: σ_w² = fan_in·Var(W) of a named init, torch gains and default bias variance."""

from __future__ import annotations

import math
from collections.abc import Mapping

from gradlint.gradflow.activations import _phi_cdf
from gradlint.gradflow.quadrature import _INV_SQRT_2PI


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
    * ``sparse`` (torch ``sparse_``) – ``sparsity``, ``std`` (0.01): fan_in·(1 − sparsity)·std².
    * ``orthogonal`` – ``gain`` (1): gain² (× fan_in/fan_out for a tall matrix).  ``eye``/``identity`` – ``gain``
      (1): gain² (likewise).
    * keras ``glorot_uniform``/``glorot_normal`` (fan_avg, 1), ``he_uniform``/``he_normal``
      (2), ``lecun_uniform``/``lecun_normal`` (1).
    * keras ``random_normal`` – ``stddev`` (0.05); ``random_uniform`` – ``minval``,
      ``maxval`` (−0.05, 0.05); ``truncated_normal`` – ``stddev`` (0.05), cut at ±2 stddev.
      (Keras string aliases ``"normal"``/``"uniform"`` mean these, not torch's: map them
      to ``random_normal``/``random_uniform`` before calling.)
    * keras ``variance_scaling`` – ``scale`` (1), ``mode`` (fan_in); all keras
      distributions are variance-corrected, so the distribution does not matter.
    * ``zeros``/``ones``/``constant`` – 0.0.
    * any scheme with ``rescale`` (k): its σ_w² times k² (the tensor multiplied by k after drawing).
    """
    p: Mapping[str, object] = params or {}
    # Every drawn value multiplied afterwards (``w.data.mul_(k)``): Var(W) scales by k².
    rescale = _num(p, "rescale", default=1.0)
    value = _scheme_sigma_w2(init, p, fan_in, fan_out)
    return None if value is None else value * rescale * rescale


def _scheme_sigma_w2(init: str, p: Mapping[str, object], fan_in: int | None, fan_out: int | None) -> float | None:
    name = init.strip().lower()
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
        # Orthonormal rows when fan_out ≤ fan_in (σ_w² = gain²); orthonormal columns when the matrix is
        # tall, so each row has norm² fan_in/fan_out (measured: orthogonal_(gain=2) on 16 → 128 gives
        # an output variance of 0.53, not 4).
        gain = _num(p, "gain", default=1.0)
        if fan_in is not None and fan_out is not None and fan_out > fan_in > 0:
            return gain * gain * fan_in / fan_out
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
    if name == "sparse":
        # torch ``sparse_``: N(0, std²) with a ``sparsity`` share of each column zeroed
        sparsity, std = _num(p, "sparsity", default=0.0), _num(p, "std", default=0.01)
        return fan_in * (1.0 - min(max(sparsity, 0.0), 1.0)) * std * std
    return None


def init_weight_mean(init: str, params: Mapping[str, float]) -> float:
    """E[W] of a named init (0 for every fan-aware scheme and the defaults): U(a, b) → (a+b)/2
    (torch's ``uniform_`` defaults to U(0, 1), Keras' ``RandomUniform`` to ±0.05), N(mean, s²) → mean;
    constants are left to the symmetry rule (0 here). Times ``rescale`` when the tensor was scaled."""
    name = init.strip().lower()
    p: Mapping[str, object] = params or {}
    if name == "uniform":
        mean = (_num(p, "a", "minval", default=0.0) + _num(p, "b", "maxval", default=1.0)) / 2.0
    elif name == "random_uniform":
        mean = (_num(p, "minval", "a", default=-0.05) + _num(p, "maxval", "b", default=0.05)) / 2.0
    elif name in ("normal", "random_normal", "trunc_normal", "truncated_normal"):
        mean = _num(p, "mean", default=0.0)
    else:
        return 0.0
    return mean * _num(p, "rescale", default=1.0)


def torch_default_bias_var(fan_in: int | None) -> float | None:
    """Var(b) of PyTorch's default Linear/Conv bias U(±1/√fan_in) = 1/(3·fan_in)."""
    if fan_in is None or fan_in <= 0:
        return None
    return 1.0 / (3.0 * fan_in)


