"""Estimation glue for a list of units (a ratio over a stretch of layers) and one RNN step.

The model-level verdicts use the end-to-end propagation of ``gradlint.analysis.flow``."""

from __future__ import annotations

import math
from collections.abc import Callable

from gradlint import gradflow
from gradlint.analysis.inits import bias_var_of, norm_kind, sigma_w2_of
from gradlint.analysis.units import Unit
from gradlint.estimate import Estimate
from gradlint.model import Layer
from gradlint.records import dataclass


def estimate_units(units: list[Unit], input_q: float = 1.0,
                   sigma_override: dict[int, float] | None = None) -> Estimate | None:
    """Mean-field estimate of the weight-gradient ratio first/last over ``units``.

    ``sigma_override`` maps ``id(unit)`` to a σ_w² to use instead of the unit's own init
    (to ask "what if this layer had the init matching its activation?")."""
    chain: list[gradflow.WeightLayer] = []
    assumptions: list[str] = []
    for unit in units:
        sigma_w2, note = sigma_w2_of(unit)
        if sigma_override and id(unit) in sigma_override:
            sigma_w2, note = sigma_override[id(unit)], None
        if sigma_w2 == 0.0:
            return None  # constant init: a symmetry problem (GRD002), not a gain to estimate
        if note:
            assumptions.append(note)
        activation = unit.activation if unit.activation in gradflow.ACTIVATIONS else "linear"
        if unit.activation not in gradflow.ACTIVATIONS and unit.activation != "linear":
            assumptions.append(f"activation {unit.activation} treated as linear")
        chain.append(gradflow.WeightLayer(
            sigma_w2=sigma_w2, activation=activation, sigma_b2=bias_var_of(unit),
            normalized=unit.normalized, act_param=unit.act_param, label=unit.layer.describe(),
            fan_in=unit.fan_in, norm_kind=norm_kind(unit.norm_layer),
        ))
    if len(chain) < 2:
        return None
    try:
        result = gradflow.estimate_chain(chain, input_q=input_q)
    except (ArithmeticError, ValueError):
        return None  # absurd constants (a slope of 1e308): no number rather than a made-up one
    gains = [e.chi for e in result.layers[1:] if e.chi is not None and e.chi > 0]
    typical = None
    if gains:
        typical = math.exp(sum(0.5 * math.log(g) for g in gains) / len(gains))
    return Estimate(
        log10_weight_ratio=result.log10_weight_ratio,
        log10_backward_ratio=result.log10_backward_ratio,
        layers=len(chain),
        exact=result.exact and not assumptions,
        assumptions=assumptions + [a for a in result.assumptions if a not in assumptions],
        per_layer_gain=typical,
        max_log10_q=_max_log10_q(result),
    )


def _max_log10_q(result: gradflow.ChainEstimate) -> float | None:
    qs = [e.q for e in result.layers if e.q is not None and e.q > 0]
    return max(math.log10(q) for q in qs) if qs else None


def recurrent_step_gain(activation: str, sigma_rec2: float, sigma_in2: float) -> float:
    """√χ of one time step of a plain RNN h_t = φ(W h_{t-1} + U x_t + b) at its fixed point."""
    q = 1.0
    for _ in range(200):
        second, _ = gradflow.activation_moments(activation, q)
        q_new = sigma_rec2 * second + sigma_in2
        if abs(q_new - q) < 1e-10:
            break
        q = q_new
    _, slope = gradflow.activation_moments(activation, q)
    return math.sqrt(max(sigma_rec2 * slope, 0.0))


# ----------------------------------------------------------------------------- gated recurrences
# Mean-field per-step gain of the gradient through time for LSTM and GRU cells at init, with each
# hidden-to-hidden block drawn with σ_rec² = H·Var(W_hh) (one block per gate) and σ_in² the
# variance the input (and biases) add to every gate pre-activation. Forward: iterate the
# stationary second moments (E[c²], E[h²]) with each gate pre-activation a ~ N(μ, q_a); backward:
# a small perturbation's variances (u_c, u_h) are multiplied each step by a transfer matrix whose
# entries are those moments (zero-mean recurrent weights make the cross terms vanish); the
# gradient's gain per step is √ of its leading eigenvalue. Measured (PyTorch, hidden 128, T = 400,
# 3 seeds; tools/measure_recurrent.py) the gradient through time grows only past σ_rec ≈ 2–3:
# saturated gates (σ′ → 0) bound what the h → gates → h loop passes on, and the cell path's
# forget gate (< 1) never amplifies.
#
# Drawing W_hh afresh at every step (the mean-field "untied weights" assumption) adds the carried
# path (f, z) and the random path in quadrature, λ_u: a lower estimate (LSTM, σ_rec = 3, hidden 128:
# 0.86 per step against 1.05–1.09 measured). With one W_hh at every step the paths through it add
# coherently wherever their coefficients' *means* multiply the same matrix: split each step's
# Jacobian into its mean M = ā·I + b̄·W (ā the carried path's mean coefficient, b̄·W the recurrent
# path's mean) and a fluctuation that stays incoherent across steps. Pairing the W's of two
# expansion terms (Ginibre, planar limit) turns E‖δ_T‖² into a walk on the difference of their
# W counts: off the diagonal the mean parts give the free transfer ā² + b̄²σ² + 2āb̄σ·cos θ (top
# (ā + b̄σ)², the spectral radius of M), on it the fluctuations add V = λ_u − ā² − b̄²σ². The 1-D
# bound state of that defect is the per-step growth of E‖δ‖² (`_tied_gain`):
#     λ = ā² + B² + √(V² + 4ā²B²),  B = b̄·σ_rec
# (λ_u when ā·B = 0, e.g. a plain RNN, whose M = b̄W has no carried part; (ā + B)² when V = 0).
# Against the 146 finite gated rows of docs/recurrent_measurements.jsonl: median |log10 error| of
# the gradient through time 3.4 decades (untied) -> 0.6; per step within 1–4 % up to σ_rec = 2, but
# 5–11 % high at σ_rec ≈ 3, where the gates saturate. GRD004 therefore decides on
# ``RecurrentGain.lower`` = max(√λ_u, 0.9·√λ) per step: the untied value, or the tied value less
# the largest over-estimate measured (no measured-healthy row is called exploding; 24 of the 25
# gated explosions found, 19 before).


def _gauss(f: Callable[[float], float], q: float, mean: float = 0.0) -> float:
    return gradflow.gaussian_expectation(lambda u: f(u + mean), max(q, 0.0))


def _sig(u: float) -> float:
    return 1.0 / (1.0 + math.exp(-u)) if u >= 0 else math.exp(u) / (1.0 + math.exp(u))


def _dsig(u: float) -> float:
    s = _sig(u)
    return s * (1.0 - s)


def _leading_eigenvalue(a: float, b: float, c: float, d: float) -> float:
    """The largest eigenvalue of [[a, b], [c, d]] with non-negative entries (Perron root)."""
    half_trace = (a + d) / 2
    return half_trace + math.sqrt(max(half_trace * half_trace - (a * d - b * c), 0.0))


def _tied_gain(untied: float, carried: float, coherent: float) -> float:
    """√λ, λ = ā² + B² + √(V² + 4ā²B²) with V = λ_u − ā² − B² (see above): ``untied`` = λ_u,
    ``carried`` = ā, ``coherent`` = B."""
    a2, b2 = carried * carried, coherent * coherent
    fluct = max(untied - a2 - b2, 0.0)
    return math.sqrt(a2 + b2 + math.sqrt(fluct * fluct + 4.0 * a2 * b2))


def lstm_step_gain(sigma_rec2: float, sigma_in2: float, forget_bias: float = 0.0, tied: bool = True) -> float:
    """√λ: the LSTM's per-step gain of the gradient through time at init (see above); ``tied=False``:
    the untied √λ_u."""
    gains = _lstm_gains(sigma_rec2, sigma_in2, forget_bias)
    return gains[0] if tied else gains[1]


def _lstm_gains(sigma_rec2: float, sigma_in2: float, forget_bias: float) -> tuple[float, float]:
    """(√λ, √λ_u) of an LSTM step.

    c' = f·c + i·g, h' = o·tanh(c'); f, i, o = σ(a), g = tanh(a_g); a = W_hh h + (input) with
    Var(a) = σ_rec²·E[h²] + σ_in² (the forget gate's mean is ``forget_bias``: Keras' unit_forget_bias)."""
    h2, c2 = 0.0, 0.0
    for _ in range(500):
        q = sigma_rec2 * h2 + sigma_in2
        f2 = _gauss(lambda u: _sig(u) ** 2, q, forget_bias)
        i2 = _gauss(lambda u: _sig(u) ** 2, q)
        g2 = gradflow.activation_moments("tanh", q)[0]
        c2_new = i2 * g2 / max(1.0 - f2, 1e-12)
        h2_new = i2 * gradflow.activation_moments("tanh", c2_new)[0]  # o² has i²'s law (same q, zero mean)
        if abs(c2_new - c2) < 1e-12 and abs(h2_new - h2) < 1e-12:
            break
        h2, c2 = h2_new, c2_new
    q = sigma_rec2 * h2 + sigma_in2
    f2 = _gauss(lambda u: _sig(u) ** 2, q, forget_bias)
    o2 = _gauss(lambda u: _sig(u) ** 2, q)
    i2, g2 = o2, gradflow.activation_moments("tanh", q)[0]
    ds2_f = _gauss(lambda u: _dsig(u) ** 2, q, forget_bias)
    ds2 = _gauss(lambda u: _dsig(u) ** 2, q)
    dtanh2_g = gradflow.activation_moments("tanh", q)[1]
    tanh_c2, dtanh_c2 = gradflow.activation_moments("tanh", c2)
    # u_c' = f²·u_c + k·u_h ; u_h' = d·u_c' + p·u_h
    k = sigma_rec2 * (c2 * ds2_f + g2 * ds2 + i2 * dtanh2_g)
    d = o2 * dtanh_c2
    p = sigma_rec2 * tanh_c2 * ds2
    untied = _leading_eigenvalue(f2, k, d * f2, d * k + p)
    # Mean Jacobian on (c, h): [[f̄, m·W_g], [d̄·f̄, d̄·m·W_g]] (the other gates' coefficients c·σ′, g·σ′,
    # tanh(c)·σ′ have zero mean), m = E[i]·E[tanh′(a_g)], d̄ = E[o]·E[tanh′(c)]; its eigenvalues are 0 and
    # f̄ + d̄·m·μ over W_g's eigenvalues μ: ā = f̄, B = d̄·m·σ_rec.
    # (E[σ(a)] = ½ for a zero-mean gate: σ(u) + σ(−u) = 1; E[tanh′] = 1 − E[tanh²])
    coherent = 0.25 * (1.0 - g2) * (1.0 - tanh_c2) * math.sqrt(sigma_rec2)
    f_mean = _gauss(_sig, q, forget_bias) if forget_bias else 0.5
    return _tied_gain(untied, f_mean, coherent), math.sqrt(untied)


def gru_step_gain(sigma_rec2: float, sigma_in2: float, tied: bool = True) -> float:
    """√λ: the GRU's per-step gain of the gradient through time at init (``tied=False``: the untied √λ_u)."""
    gains = _gru_gains(sigma_rec2, sigma_in2)
    return gains[0] if tied else gains[1]


def _gru_gains(sigma_rec2: float, sigma_in2: float) -> tuple[float, float]:
    """(√λ, √λ_u) of a GRU step.

    h' = (1 − z)·n + z·h, n = tanh(a_n + r·(W_hn h)), z, r = σ(a); the perturbation's variance is
    multiplied by E[z²] (the carried path) plus σ_rec²·(E[(1−z)²]·E[tanh′²]·(E[r²] + σ_rec²E[h²]·E[σ′²])
    + E[(h − n)²]·E[σ′²])."""
    h2 = 0.0
    for _ in range(500):
        q = sigma_rec2 * h2 + sigma_in2
        z2 = _gauss(lambda u: _sig(u) ** 2, q)
        one_minus_z2 = _gauss(lambda u: (1.0 - _sig(u)) ** 2, q)
        qn = z2 * sigma_rec2 * h2 + sigma_in2  # r²'s law is z²'s
        n2 = gradflow.activation_moments("tanh", qn)[0]
        h2_new = one_minus_z2 * n2 / max(1.0 - z2, 1e-12)
        if abs(h2_new - h2) < 1e-12:
            break
        h2 = h2_new
    q = sigma_rec2 * h2 + sigma_in2
    z2 = _gauss(lambda u: _sig(u) ** 2, q)
    one_minus_z2 = _gauss(lambda u: (1.0 - _sig(u)) ** 2, q)
    ds2 = _gauss(lambda u: _dsig(u) ** 2, q)
    qn = z2 * sigma_rec2 * h2 + sigma_in2
    n2, dtanh_n2 = gradflow.activation_moments("tanh", qn)
    rest = sigma_rec2 * (one_minus_z2 * dtanh_n2 * (z2 + sigma_rec2 * h2 * ds2) + (h2 + n2) * ds2)
    # Mean Jacobian: z̄·I + E[1 − z]·E[r]·E[tanh′(a_n)]·W_n ((h − n)·σ′ and (W_n h)·σ′·tanh′ have zero
    # mean): ā = z̄, B = (1 − z̄)·r̄·E[tanh′]·σ_rec (r has z's law).
    z_mean = 0.5  # E[σ(a)] of a zero-mean gate; E[tanh′] = 1 − E[tanh²]
    coherent = (1.0 - z_mean) * z_mean * (1.0 - n2) * math.sqrt(sigma_rec2)
    return _tied_gain(z2 + rest, z_mean, coherent), math.sqrt(z2 + rest)


def relu_rnn_step_gain(sigma_rec2: float) -> float:
    """√χ of a ReLU RNN step with random (Gaussian or orthogonal) W_hh: σ_rec²/2 exactly, forward
    and backward alike (the forward variance grows by the same factor, minus what the input adds)."""
    return math.sqrt(sigma_rec2 / 2.0)


# ----------------------------------------------------------------------------- one recurrent layer

#: Gate blocks stacked in the hidden-to-hidden matrix ((k·H, H) in torch, (H, k·H) in Keras).
_GATES = {"RNN": 1, "RNNCell": 1, "SimpleRNN": 1, "SimpleRNNCell": 1, "LSTM": 4, "LSTMCell": 4,
          "GRU": 3, "GRUCell": 3,
          # TensorFlow 1.x cells (gradlint.extract.tf_recurrent)
          "BasicRNNCell": 1, "BasicLSTMCell": 4, "LSTMBlockCell": 4, "GRUBlockCell": 3}


@dataclass(frozen=True)
class RecurrentGain:
    """The per-step gain of a recurrent layer's gradient through time at init, and what it used."""

    cell: str  # tanh | relu | lstm | gru
    gain: float  # per step (√χ, √λ)
    sigma_rec2: float  # H·Var(W_hh) of one gate block
    sigma_in2: float  # what the input (and biases) add to each pre-activation
    assumptions: tuple[str, ...] = ()
    lower: float | None = None  # the per-step gain findings decide on, when below ``gain`` (gated cells)

    @property
    def decisive(self) -> float:
        return self.gain if self.lower is None else self.lower

    def log10_over(self, steps: int) -> float:
        """log10 of the growth over ``steps`` at the decisive (lower) gain."""
        return steps * math.log10(self.decisive) if self.decisive > 0 else -math.inf


def _cell(layer: Layer) -> str | None:
    if layer.op.startswith(("LSTM", "GRU", "BasicLSTM")):
        return "gru" if layer.op.startswith("GRU") else "lstm"
    if layer.activation in (None, "tanh"):
        return "tanh"
    return "relu" if layer.activation == "relu" else None


def recurrent_gain(layer: Layer, input_width: int | None = None) -> RecurrentGain | None:
    """Mean-field per-step gain of ``layer``'s gradient through time at init, from its recurrent
    init (and its input kernel's), for a unit-variance input of ``input_width`` features (the
    layer's own ``fan_in`` wins). None when something it needs is unknown: the cell's activation,
    the hidden size, an init, or the input width where the input kernel's variance depends on it;
    and for an identity recurrence under ReLU (the IRNN, which is not random: its forward pass
    grows linearly in T rather than by a per-step gain), and an LSTM whose forget-gate bias is unknown."""
    gates = _GATES.get(layer.op)
    cell = _cell(layer)
    hidden = layer.units
    rec = layer.recurrent_init
    if gates is None or cell is None or not hidden or rec is None or rec.scheme == "unknown":
        return None
    if cell == "relu" and rec.scheme in ("eye", "identity"):
        return None
    if rec.scheme == "torch_rnn_default":
        sigma_rec2 = 1.0 / 3.0  # U(±1/√H): Var = 1/(3H), times fan-in H
    else:
        scheme = "glorot_uniform" if rec.scheme == "keras_default" else rec.scheme
        try:
            value = gradflow.init_sigma_w2(scheme, rec.params, hidden, gates * hidden)
        except (ArithmeticError, ValueError):
            return None
        if value is None or not math.isfinite(value):
            return None
        sigma_rec2 = value
    assumptions: list[str] = []
    fan_in = layer.fan_in or input_width
    kernel = layer.weight_init
    if kernel is None or kernel.scheme == "unknown":
        return None
    if kernel.scheme == "torch_rnn_default":
        if fan_in is None:
            return None
        bias = 0.0 if layer.bias is False else 2.0 / (3.0 * hidden)  # bias_ih + bias_hh, U(±1/√H) each
        sigma_in2 = fan_in / (3.0 * hidden) + bias
    else:
        scheme = "glorot_uniform" if kernel.scheme == "keras_default" else kernel.scheme
        try:
            value = gradflow.init_sigma_w2(scheme, kernel.params, fan_in, gates * hidden) if fan_in else None
        except (ArithmeticError, ValueError):
            return None
        if value is None and scheme in ("glorot_uniform", "glorot_normal", "xavier_uniform", "xavier_normal"):
            # 2F/(F + kH) < 2 whatever F: the bound (more input drive damps the recurrence)
            value = 2.0 * float(kernel.params.get("gain", 1.0)) ** 2
            assumptions.append(f"input width of {layer.describe()} unknown: input variance bounded by {value:g}")
        if value is None or not math.isfinite(value):
            return None
        sigma_in2 = value
    if cell == "lstm" and (layer.forget_bias is None or not math.isfinite(layer.forget_bias)):
        return None  # the forget gate's bias decides how much the cell path carries
    lower = None
    try:
        if cell == "lstm":
            forget = float(layer.forget_bias or 0.0)
            gain, untied = _lstm_gains(sigma_rec2, sigma_in2, forget)
            lower = _lower(gain, untied)
            if forget:
                assumptions.append(f"forget-gate bias {forget:g} (Keras unit_forget_bias)" if layer.framework == "keras"
                                   else f"forget-gate bias {forget:g}")
        elif cell == "gru":
            gain, untied = _gru_gains(sigma_rec2, sigma_in2)
            lower = _lower(gain, untied)
        elif cell == "relu":
            gain = relu_rnn_step_gain(sigma_rec2)
        else:
            gain = recurrent_step_gain("tanh", sigma_rec2, sigma_in2)
    except (ArithmeticError, ValueError):
        return None
    return RecurrentGain(cell, gain, sigma_rec2, sigma_in2, tuple(assumptions), lower)


#: What the tied gated gain is taken down by for findings: its largest measured over-estimate per
#: step (σ_rec ≈ 3, saturated gates: 5–11 %).
_TIED_MARGIN = 0.9


def _lower(tied: float, untied: float) -> float:
    """max(√λ_u, 0.9·√λ): the per-step gain a finding may rely on (see the gated-recurrence comment above)."""
    return max(untied, _TIED_MARGIN * tied)
