"""The identity recurrence under ReLU (the IRNN of Le et al. 2015) at init: what it does to the
protocol's quantities over T steps.

h_t = relu(h_{t-1} + z_t + c): with W_hh = I each unit is a reflected random walk (a Lindley
process), not a random recurrence: its step z_t = (U x_t) has variance σ_in² and its drift c (the
unit's bias, the same at every step and for every example) is drawn once. A unit with c > 0 climbs
like c·t, one with c = 0 like σ_in·√t; the gradient through time passes unchanged while the unit
stays above zero (so it neither explodes nor vanishes through time), but the recurrent matrix's
gradient Σ_t δ_t h_{t-1}ᵀ sums T growing states, coherently over the batch (every example shares
the drift and the walk's mean), and the head reads a state of size ~T: ‖∂L/∂θ‖/‖θ‖ grows like
T³·σ_c² (drift) or T²·σ_in² (walk). Measured (tools/measure_recurrent.py, docs/recurrent_measurements.
jsonl; torch nn.RNN relu with eye_, Keras SimpleRNN relu with Identity, hidden 32/128, T 20/100/400):
‖∂L/∂θ‖/‖θ‖ 9.4 → 7.3e2 → 4.0e4 (torch, hidden 128), 2.5e2 → 7.6e3 → 1.0e5 (Keras, hidden 32).

The estimate: per drift (Gauss–Hermite over c), the state's mean and second moment by a Gaussian
closure of the walk; the share of the head's gradient that reaches step t is the chance of not
touching zero over (t, T] (first passage of a drifted Brownian motion from the mean state); the
recurrent gradient is the coherent part 2·w_j·Y·Σ_t s_t(c_j)·E[h_{t-1}(c_k)], Y the output every
example shares.
"""

from __future__ import annotations

import math

from gradlint import gradflow
from gradlint.analysis.inits import bias_var_of, sigma_w2_of
from gradlint.analysis.units import Unit
from gradlint.gradflow.quadrature import _gauss_hermite
from gradlint.model import Layer, LayerKind
from gradlint.records import dataclass

#: Steps followed one by one; a longer sequence is judged at this many (its quantities only grow with T).
MAX_STEPS = 2048
#: Time points of the step sums (a grid over 1..T when T is longer).
_GRID = 256
_NODES = 16  # Gauss–Hermite nodes over the drift


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


_HERMITE = list(zip(*_gauss_hermite(_NODES), strict=True))


def _walk(c: float, s2: float, steps: int) -> tuple[list[float], list[float]]:
    """E[h_t], E[h_t²] for t = 0..steps of h_t = relu(h_{t-1} + c + z), z ~ N(0, s2), h_0 = 0 (Gaussian closure)."""
    mean, second = [0.0], [0.0]
    m, m2 = 0.0, 0.0
    for _ in range(steps):
        mp = m + c
        vp = max(m2 - m * m, 0.0) + s2
        if vp <= 0.0:
            m = max(mp, 0.0)
            m2 = m * m
        else:
            sd = math.sqrt(vp)
            a = mp / sd
            big, small = _cdf(a), _phi(a)
            m = mp * big + sd * small
            m2 = (mp * mp + vp) * big + mp * sd * small
        mean.append(m)
        second.append(m2)
    return mean, second


def _alive(a: float, c: float, s2: float, tau: int) -> float:
    """P(a walk at height a ≥ 0 with drift c and step variance s2 stays above 0 for tau steps)."""
    if tau <= 0:
        return 1.0
    if s2 <= 0.0:
        return 1.0 if a + c * tau > 0 else 0.0
    sd = math.sqrt(s2 * tau)
    first = _cdf((-a - c * tau) / sd)
    exponent = -2.0 * c * a / s2
    second = 0.0
    tail = _cdf((-a + c * tau) / sd)
    if tail > 0.0:
        log_second = exponent + math.log(tail)
        second = math.exp(min(log_second, 0.0))
    return min(max(1.0 - first - second, 0.0), 1.0)


@dataclass(frozen=True)
class IdentityRecurrence:
    """An IRNN layer and the head that reads its last state: what its protocol quantities need."""

    hidden: int
    sigma_in2: float  # variance of each step's input drive U·x_t per unit
    bias_mean: float  # the drift's mean (a constant bias)
    bias_var: float  # and its variance over units (random biases)
    head_sigma2: float  # the head's σ_w² (fan-in·Var(W)) over the hidden state
    head_bias_var: float = 0.0
    params2: float = 0.0  # ‖θ‖² of the layer and the head: ‖I‖² = H, ‖U‖², ‖w‖², biases

    def quantities(self, steps: int) -> tuple[float, float]:
        """(log10 of the loss at init, log10 of ‖∂L/∂θ‖/‖θ‖) over ``steps`` (MSE to N(0, 1), batch 128)."""
        steps = max(1, min(int(steps), MAX_STEPS))
        nodes = [(self.bias_mean, 1.0)] if self.bias_var <= 0 else [
            (self.bias_mean + math.sqrt(self.bias_var) * z, w) for z, w in _HERMITE]
        walks = [_walk(c, self.sigma_in2, steps) for c, _ in nodes]
        grid = sorted({max(1, min(steps, round(1 + i * (steps - 1) / (_GRID - 1)))) for i in range(_GRID)})
        widths: list[float] = [1.0] * len(grid)
        if len(grid) > 1:  # each grid point stands for the steps half-way to its neighbours
            widths = [(grid[min(i + 1, len(grid) - 1)] - grid[max(i - 1, 0)]) / 2 for i in range(len(grid))]
            widths[0] += 0.5
            widths[-1] += 0.5
        survive = [[_alive(mean[t - 1], c, self.sigma_in2, steps - t + 1) for t in grid]
                   for (c, _), (mean, _) in zip(nodes, walks, strict=True)]
        shared = sum(w * mean[steps] ** 2 for (_, w), (mean, _) in zip(nodes, walks, strict=True))
        m_y = self.head_sigma2 * sum(w * second[steps] for (_, w), (_, second) in zip(nodes, walks, strict=True)) \
            + self.head_bias_var
        y_shared = self.head_sigma2 * shared + self.head_bias_var
        batch = 128
        residual = y_shared + (1.0 + max(m_y - y_shared, 0.0)) / batch  # (mean over the batch of y − t)²
        cross = 0.0
        for (_, wj), sj in zip(nodes, survive, strict=True):
            for (_, wk), (mean_k, _) in zip(nodes, walks, strict=True):
                total = sum(width * s * mean_k[t - 1] for width, s, t in zip(widths, sj, grid, strict=True))
                cross += wj * wk * total * total
        grad2 = 4.0 * residual * self.head_sigma2 * self.hidden * cross
        rel = 0.5 * (math.log10(grad2) - math.log10(self.params2)) if grad2 > 0 and self.params2 > 0 else -math.inf
        return math.log10(1.0 + m_y), rel


def _recurrent_drive(layer: Layer, fan_in: int | None) -> tuple[float, float, float] | None:
    """(σ_in², bias mean, bias variance) of an identity ReLU recurrence's steps, from its inits."""
    hidden = layer.units
    kernel = layer.weight_init
    if not hidden or kernel is None or kernel.scheme == "unknown" or not fan_in:
        return None
    if kernel.scheme == "torch_rnn_default":
        sigma_in2 = fan_in / (3.0 * hidden)
    else:
        scheme = "glorot_uniform" if kernel.scheme == "keras_default" else kernel.scheme
        try:
            value = gradflow.init_sigma_w2(scheme, kernel.params, fan_in, hidden)
        except (ArithmeticError, ValueError):
            return None
        if value is None or not math.isfinite(value):
            return None
        sigma_in2 = value
    if layer.bias is False:
        return sigma_in2, 0.0, 0.0
    bias = layer.bias_init
    if layer.framework == "torch" and (bias is None or bias.scheme in ("torch_default_bias", "torch_rnn_default")):
        return sigma_in2, 0.0, 2.0 / (3.0 * hidden)  # bias_ih + bias_hh, U(±1/√H) each
    if bias is None:
        return sigma_in2, 0.0, 0.0
    if bias.scheme == "unknown":
        return None
    if bias.is_constant:
        return sigma_in2, float(bias.constant_value or 0.0), 0.0
    unit = Unit(layer, fan_in=fan_in)
    return sigma_in2, 0.0, bias_var_of(unit)


def identity_recurrence(layer: Layer, head: Layer | None, fan_in: int | None) -> IdentityRecurrence | None:
    """The IRNN estimate of a ReLU recurrent layer whose recurrent weights are the identity (gain 1),
    read by ``head`` (the next weight layer: its σ_w² scales the output); None when it is not one, or
    something it needs is unknown."""
    rec = layer.recurrent_init
    hidden = layer.units
    if layer.kind != LayerKind.RECURRENT or layer.activation != "relu" or rec is None or not hidden \
            or rec.scheme not in ("eye", "identity") or abs(rec.params.get("gain", 1.0) - 1.0) > 1e-6 \
            or "rescale" in rec.params:
        return None
    drive = _recurrent_drive(layer, layer.fan_in or fan_in)
    if drive is None or head is None or head.kind not in (LayerKind.DENSE, LayerKind.CONV):
        return None
    head_unit = Unit(head, fan_in=head.fan_in or layer.fan_out or hidden, fan_out=head.fan_out)
    head_sigma2, _ = sigma_w2_of(head_unit)
    if head_sigma2 is None or not math.isfinite(head_sigma2):
        return None
    sigma_in2, bias_mean, bias_var = drive
    head_bias = bias_var_of(head_unit) if head.bias is not False else 0.0
    params2 = hidden + hidden * sigma_in2 + (head.fan_out or 1) * head_sigma2 + hidden * (bias_var + bias_mean ** 2)
    return IdentityRecurrence(hidden, sigma_in2, bias_mean, bias_var, head_sigma2, head_bias, params2)
