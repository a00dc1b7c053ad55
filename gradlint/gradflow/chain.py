"""The chain estimator: weight layers and residual blocks, forward moments then backward gains."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import field, replace
from typing import Any, cast

from gradlint.gradflow.activations import (
    _Q_CLAMP,
    _act_stats,
    _param,
    _two_point,
    canonical_activation,
)
from gradlint.records import dataclass

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
    # Used by the end-to-end propagation (gradlint.gradflow.propagate) only:
    fan_out: int | None = None  # output units (‖W‖² = fan_out·σ_w², the loss's number of outputs)
    embedding: bool = False  # a lookup: its input is a token, fan_in is 1
    rows: int | None = None  # rows of the weight matrix when not fan_in (an embedding's vocabulary)
    bias_width: int | None = None  # units of its bias, when it has one
    # a group norm's channels per group (norm_kind "layer"): it removes 1/k of the per-channel offsets
    norm_group: int | None = None
    # The bias's mean when every unit starts at the same constant (``constant_(b, c)``): it shifts
    # the pre-activations (a dead ReLU below zero) instead of spreading them; ``sigma_b2`` is then
    # the bias's variance around it. Propagation only: the chain estimator folds c² into sigma_b2.
    bias_mean: float = 0.0
    # Positions each unit is applied at per example (a conv layer's spatial map), for counting how
    # many (example, unit) pairs a batch has: whether a layer is dead for a whole batch.
    positions: int = 1
    # Propagation only, spatial layers (conv): the positions per example each weight is applied at (a conv:
    # its output positions; a transposed conv: its input positions), so its gradient sums B·uses terms;
    # and the positions per example of its output (a conv head's MSE averages over them too).
    uses: int = 1
    out_positions: int = 1
    key: int | None = None  # identity of the model-description layer it stands for
    # E[W] of the weights when their init is not centred (``uniform_(w)`` is U(0, 1), ``normal_(w, mean=1)``):
    # every unit then sums fan_in·E[W]·E[x] of a non-centred input, a shift common to all units that a
    # variance alone misses. Propagation only (positive means; 0: centred).
    weight_mean: float = 0.0


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
                sub, m_s, mab_s = cast("tuple[list[tuple[Any, Any]], float, float]", info)
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


