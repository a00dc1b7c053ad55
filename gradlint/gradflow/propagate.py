"""End-to-end propagation: one forward and one backward mean-field pass over a whole path.

The static twin of the measurement protocol (reference.md §1b): N(0, 1) input, MSE loss to
N(0, 1) targets, a batch of ``batch_size`` in train mode. Where :mod:`.chain` reasons about
the ratio between two weight layers, this module tracks absolute scales, so it also sees a
forward blow-up (the loss at init), frozen layers (‖∂L/∂W‖/‖W‖) and saturated heads.

State carried forward, per component of the stream (the mean-field "two-sample" picture):

* ``m``   = E[x²], the second moment of one example;
* ``mab`` = E[x_a·x_b] for two different examples: what they share — per-unit offsets
  (biases, the mean of a non-centred activation seen through the next weight layer) and the
  global mean. BatchNorm removes it; LayerNorm keeps the per-unit part;
* ``mu``  = E[x], the global mean (over units and examples): non-zero after ReLU, sigmoid,
  softplus… and after residual sums of such outputs. A weight layer (zero-mean weights)
  maps it to zero; LayerNorm removes it; an activation of a non-centred input uses it.

Backward, per example: ``lg`` = ln‖δ‖² (δ = ∂L/∂(stream), summed over the stream's units)
and ``r`` = δ_a·δ_b/‖δ‖², the coherence across two examples (what makes batch-summed weight
gradients add up). At the output of the path, for MSE over B·n outputs (mean reduction):
‖δ‖² = 4·(m_y + 1)/(B²·n) per example and r = mab_y/(m_y + 1).

Weight layer l: ‖∂L/∂W‖² (batch) ≈ B·‖δ_l‖²·fan_in·m_in·(1 + (B−1)·r_l·mab_in/m_in) and
‖W‖² = rows·fan_out·Var(W) = fan_out·σ_w² (rows = fan_in; an embedding: rows = vocabulary).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import field
from typing import cast

from gradlint.gradflow.activations import (
    _Q_CLAMP,
    _act_stats,
    _param,
    _phi_cdf,
    _two_point,
    canonical_activation,
    shifted_moments,
    signal_moment,
)
from gradlint.gradflow.chain import ResidualBlock, WeightLayer, _ln, _logaddexp
from gradlint.gradflow.heads import HeadIn, dead_head
from gradlint.gradflow.items import Activation, Block, Dropout, Flatten, Gated, Item, MaxPool, Norm, Scale, SpatialMean
from gradlint.gradflow.sparse import SPARSE_ACTS, Mix, MixedLayer, back, mixed_layer
from gradlint.records import dataclass

#: float32's largest value: an activation beyond it is inf (its square, the loss, at 3.4e38).
F32_MAX = 3.4028234663852886e38

__all__ = ["F32_MAX", "Activation", "Block", "Dropout", "Flatten", "Gated", "Item", "LayerFlow", "MaxPool", "Norm",
           "Propagation", "Scale", "SpatialMean", "propagate"]


@dataclass
class LayerFlow:
    """One weight layer of the main path (execution order), absolute at init."""

    label: str
    q: float  # pre-activation variance entering its activation (1 after a norm)
    q_pre: float  # before the norm, if any
    chi: float  # its backward gain σ_w²·E[φ′²] (over the norm's variance when normalized)
    log10_grad: float  # log10 ‖∂L/∂W‖ for the batch; −inf when exactly zero
    log10_weight: float  # log10 ‖W‖; −inf for a zero init
    log10_backward: float  # log10 ‖δ‖ per example at the layer's output
    key: int | None = None
    embedding: bool = False
    depth: int = 0  # residual nesting: 0 on the top-level path
    # A ReLU-family layer whose pre-activations a constant bias shifts: the share of (example, unit)
    # pairs above zero (None: not shifted); 0 when a typical batch has none (every unit dead).
    alive: float | None = None
    bias_mean: float = 0.0
    # A thresholded layer: the share of (example, unit) pairs above the threshold (the mean field over the
    # examples' spread, before a typical batch's zero), None for other layers.
    live: float | None = None

    @property
    def log10_relative(self) -> float:
        if self.log10_weight == -math.inf:
            return math.inf if self.log10_grad > -math.inf else -math.inf
        return self.log10_grad - self.log10_weight


@dataclass
class Propagation:
    """Result of :func:`propagate`. log10 quantities; ratios are first / last weight layer."""

    layers: list[LayerFlow]
    log10_ratio: float  # weight-gradient ratio (batch), first layer with a gradient over the last
    log10_backward_ratio: float
    log10_out_m: float  # output second moment (forward growth from a unit-variance input)
    log10_max_m: float  # the largest second moment anywhere on the path
    log10_loss: float | None  # MSE to N(0, 1) targets (None when the path does not end the model)
    log10_relative_grad: float | None  # ‖∂L/∂θ‖/‖θ‖ over the path's parameters
    nonfinite: bool  # float32 overflows somewhere (inf/NaN in the forward or the loss)
    dead_head: str | None  # why every gradient is exactly 0 at init, if it is
    head_q: float | None  # pre-activation variance of a saturating head
    exact: bool
    # log10 of what a saturated head leaves of every gradient in a typical batch, against the mean
    # field (≤ 0; 0 when the head is not saturated): one pair near the centre carries the batch.
    log10_head_factor: float = 0.0
    head_activation: str | None = None  # the output head's saturating activation, if it has one
    assumptions: list[str] = field(default_factory=list)
    # A probability head (sigmoid/softmax) is trained with cross-entropy, whose gradient at the logits is
    # ≈ (p − y)/B whatever the head's Jacobian: log10 of (that) / (the MSE gradient there), else None.
    log10_ce_rescale: float | None = None
    killed: str | None = None  # a main-path dropout of rate 1 (zeroes every activation in train mode)
    log10_logit_ce_rescale: float | None = None  # a logit cross-entropy's ‖p − y‖/(B·√P), ‖p − y‖ = 1, over MSE's
    n_out: int = 1  # outputs per example (per position) the loss sees

    @property
    def dead(self) -> LayerFlow | None:
        """The first weight layer whose units are all dead at init (a constant bias below a ReLU's
        kink with too little spread to cross it): every gradient before it is exactly 0."""
        return next((lf for lf in self.layers if lf.alive == 0.0), None)

    @property
    def first(self) -> LayerFlow | None:
        return next((lf for lf in self.layers if lf.log10_grad > -math.inf and not lf.embedding), None)

    @property
    def log10_first_relative_grad(self) -> float | None:
        first = self.first
        return first.log10_relative if first is not None else None


@dataclass
class _Rec:
    layer: WeightLayer
    sw2: float
    sb2: float
    q_pre: float
    q: float
    norm_var: float | None
    m_in: float
    mab_in: float
    d2: float
    dab: float
    key_path: bool  # on the main path (not a gate path)
    depth: int = 0
    breaks: int = 0  # non-homogeneous items seen before it (see _Pass.breaks)
    alive: float | None = None  # see LayerFlow.alive
    lg: float = -math.inf
    corr: Corr | None = None
    # The pre-activation as the units of one example share it (non-centred weights): its activation,
    # shift and fluctuation variance, and the correlation of two units' fluctuations (see _unit_d2).
    act: str = "linear"
    param: float = 0.0
    shift: float = 0.0
    spread: float = 0.0
    unit_corr: float = 0.0
    mixed: MixedLayer | None = None  # over examples of unequal scales (gradlint.gradflow.sparse)
    mix_factor: float = 1.0  # E[‖δ_e‖²·m_e] / (E[‖δ‖²]·E[m]) over those examples (set backward)


def _unit_d2(rec: _Rec) -> float:
    """E[φ′(z_j)·φ′(z_k)] for two units j ≠ k of one example: their pre-activations share the shift and
    the part of the fluctuation the non-centred weights make common (``unit_corr``)."""
    if rec.alive == 0.0:
        return 0.0
    if rec.shift == 0.0 and rec.unit_corr == 0.0:
        return _two_point(rec.act, rec.spread, rec.param, 0.0, _act_stats(rec.act, rec.spread, rec.param))[1] \
            if rec.spread > 0 else rec.d2
    return min(shifted_moments(rec.act, rec.shift, rec.spread, rec.param, rec.unit_corr).d_ab, rec.d2)


@dataclass
class _State:
    m: float
    mab: float
    mu: float
    width: int | None = None
    pos: int = 1  # spatial positions per example (a conv feature map's H·W); 1 for flat features
    mix: Mix | None = None  # how the examples' scales spread (after a sparse layer); None: alike

    def clamp(self) -> _State:
        if self.m > _Q_CLAMP:
            f = _Q_CLAMP / self.m
            return _State(_Q_CLAMP, self.mab * f, self.mu * math.sqrt(f), self.width, self.pos)
        return self


class _Pass:
    """One forward pass building a tape, then one backward pass over it."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.recs: list[_Rec] = []
        self.notes: list[str] = []
        self.exact = True
        self.max_m = 0.0
        self.params: list[tuple[float, float]] = []  # (ln ‖∂θ‖², ln ‖θ‖²) of norm affine params, filled backward
        # Items that are not positively homogeneous (norms, smooth or saturating activations, gates):
        # a weight layer with none after it scales the output linearly (Euler: ⟨W, ∂L/∂W⟩ = 2·Σy²/N).
        self.breaks = 0
        self.depth = 0
        self.head_in: HeadIn | None = None  # the last top-level activation's input (the output head)
        # Backward: the share of ‖δ‖² common to the units of one example (non-centred weights make it:
        # Wᵀδ with E[W] = μ adds μ·Σδ to every input unit, and a common δ adds up coherently).
        self.kappa = 0.0
        self.profile: list[float] | None = None  # ‖δ‖² over the atoms of a mixed stream (mean 1)
        self.killed: str | None = None  # a main-path dropout of rate 1: the forward signal is exactly 0 past it

    def note(self, text: str) -> None:
        self.exact = False
        if text not in self.notes:
            self.notes.append(text)

    # ---------------------------------------------------------------- forward

    def forward(self, items: Sequence[Item], s: _State, main: bool = True) -> tuple[list[tuple[Item, object]], _State]:
        tape: list[tuple[Item, object]] = []
        for item in items:
            info: object  # what the backward pass needs of this item (a _Rec, moments, a sub-tape)
            if isinstance(item, WeightLayer):
                s, info = self._weight(item, s, main)
            elif isinstance(item, ResidualBlock):
                block = Block(tuple(_residual_branch(item)), label=item.label)
                s, info = self._block(block, s, main)
                item = block
            elif isinstance(item, Block):
                s, info = self._block(item, s, main)
            elif isinstance(item, Norm):
                s, info = self._norm(item, s)
            elif isinstance(item, Activation):
                s, info = self._activation(item, s)
            elif isinstance(item, Scale):
                s, info = _scaled(s, item), s
            elif isinstance(item, MaxPool):
                s, info = _max_pool(s, item.k), None
            elif isinstance(item, SpatialMean):
                s, info = _spatial_mean(s, item.k), s.pos
            elif isinstance(item, Flatten):
                s, info = _State(s.m, s.mab, s.mu, s.width, 1), None
            elif isinstance(item, Dropout):
                s, info = _State(*item.moments(s.m, s.mab, s.mu), s.width, s.pos), None
                if item.rate >= 1.0 and main and self.depth == 0 and self.killed is None:
                    self.killed = item.label or "a dropout"
            elif isinstance(item, Gated):
                _, g = self.forward(item.path, s, main=False)
                info = g
                s = _State(s.m * g.m, s.mab * g.mab, s.mu * g.mu, s.width, s.pos)
            else:  # pragma: no cover - the Item union is closed
                raise TypeError(item)
            if not _homogeneous(item, smooth=self.depth == 0):
                self.breaks += 1
            s = s.clamp()
            self.max_m = max(self.max_m, s.m)
            tape.append((item, info))
        return tape, s

    def _transposed(self, rec: _Rec) -> float:
        """‖Wᵀδ‖²/‖δ‖² for the current coherence κ of δ over the output units, and κ after it. With
        E[W] = μ, every input unit gets μ·Σ_i δ_i:
        E[(Σ_i W_ij δ_i)²] = n_out·E[W²]·E[δ²] + μ²·n_out·(n_out − 1)·κ·E[δ²],
        and two input units share μ²·(Σ_i δ_i)² of it (8 ReLU layers of U(0, 1) weights: the gradient
        grows toward the input as fast as the forward pass grows toward the output)."""
        fan_in = rec.layer.fan_in or 0
        mean2 = rec.layer.weight_mean ** 2
        base = rec.sw2 + fan_in * mean2
        if mean2 <= 0.0 or fan_in <= 0:
            self.kappa = 0.0
            return base
        n_out = rec.layer.fan_out or fan_in
        coherent = mean2 * fan_in * (n_out - 1) * self.kappa
        gain = base + coherent
        e_w2 = base / fan_in
        self.kappa = mean2 * (1.0 + (n_out - 1) * self.kappa) / (e_w2 + mean2 * (n_out - 1) * self.kappa) \
            if gain > 0 else 0.0
        self.kappa = min(max(self.kappa, 0.0), 1.0)
        return gain

    def _weight(self, layer: WeightLayer, s: _State, main: bool) -> tuple[_State, _Rec]:
        act = canonical_activation(layer.activation)
        where = layer.label or "a layer"
        if act is None:
            self.note(f"unknown activation {layer.activation!r} at {where}: treated as identity")
            act = "linear"
        param = _param(act, layer.act_param)
        sw2, sb2 = float(layer.sigma_w2 or 0.0), float(layer.sigma_b2)
        m_in, mab_in = (1.0, 0.0) if layer.embedding else (s.m, s.mab)
        # A constant bias c is the same offset for every unit and example: part of what two examples
        # share (mab), and the mean of the pre-activation, which the activation sees shifted.
        c = 0.0 if layer.embedding else float(layer.bias_mean)
        extra = 0.0
        if layer.weight_mean > 0 and not layer.embedding and layer.fan_in:
            # Non-centred weights (U(0, 1)): every unit adds fan_in·E[W]·E[x] of a non-centred input, the
            # same for all units and examples (a shift, like a constant bias), and E[W]²·fan_in·Var(x) of
            # each example's fluctuation, common to the units of one example.
            c += layer.fan_in * layer.weight_mean * s.mu
            extra = layer.weight_mean ** 2 * layer.fan_in * max(m_in - s.mu * s.mu, 0.0)
        q_pre = sw2 * m_in + sb2 + c * c + extra
        qab_pre = min(sw2 * mab_in + sb2, sw2 * m_in + sb2) + c * c
        if q_pre > _Q_CLAMP:
            self.note(f"forward variance overflows (q > {_Q_CLAMP:g}) at {where}: clamped")
            f = _Q_CLAMP / q_pre
            qab_pre, q_pre, c = qab_pre * f, _Q_CLAMP, c * math.sqrt(f)
        self.max_m = max(self.max_m, q_pre)
        norm_var: float | None = None
        q, qab = q_pre, qab_pre
        if layer.normalized and q_pre > 0:
            if layer.norm_kind == "batch":
                norm_var = max(q_pre - qab_pre, q_pre * 1e-12)
                q, qab = 1.0, 0.0
            else:  # LayerNorm subtracts each example's mean over the units: c with it
                offsets, keep = _group_kept(qab_pre - c * c, layer.norm_group)
                norm_var = max(q_pre - c * c - (offsets - keep), q_pre * 1e-12)
                q, qab = 1.0, keep / norm_var
            c = 0.0  # a norm after the layer removes the shift (BatchNorm per unit, LayerNorm per example)
        alive: float | None = None
        pairs = self.batch * max(layer.positions, 1)
        mixed = mixed_layer(act, param, sw2, sb2, m_in, s.mix, layer.fan_out or 1, pairs) \
            if norm_var is None and c == 0.0 and extra == 0.0 and not layer.embedding \
            and (act in SPARSE_ACTS or s.mix is not None) else None
        if mixed is not None:
            m_out, d2, mean = mixed.m_out, mixed.d2, mixed.mean
            # What two examples share, as a share of the moments: the mean field's at the mean q (their
            # pre-activations correlate through a non-centred input); apart, the mean alone.
            st = _act_stats(act, q, param)
            mf_ab, mf_dab = _two_point(act, q, param, qab / q if q > 0 else 1.0, st)
            m_ab = m_out * mf_ab / st.m2 if st.m2 > 0 else mean * mean
            d_ab = d2 * mf_dab / st.d2 if st.d2 > 0 else d2 * d2
            if act in SPARSE_ACTS:
                alive = 0.0 if mixed.dead else d2
            if mixed.dead:
                m_out = d2 = mean = m_ab = d_ab = 0.0
                self.note(f"no unit of {where} is alive in a typical batch: the forward signal dies out")
        elif c != 0.0:
            v = max(q - c * c, 0.0)
            sh = shifted_moments(act, c, v, param, (qab - c * c) / v if v > 0 else 1.0)
            m_out, d2, mean, m_ab, d_ab = sh.m2, sh.d2, sh.mean, sh.m_ab, sh.d_ab
            if act in _KINKED_ACTS:
                # φ′ is 1 where the unit is alive and 0 elsewhere: E[φ′²] is the share of live pairs. The
                # mean field is an average over inits; a typical batch of B examples × n units has
                # none alive once B·n·share < ln 2 (no live pair with probability > ½, the protocol's
                # median over seeds): then the layer outputs exactly 0 and passes no gradient back.
                alive = d2
                if self.batch * (layer.fan_out or 1) * max(layer.positions, 1) * d2 < math.log(2.0):
                    alive = 0.0
                    m_out = d2 = mean = m_ab = d_ab = 0.0
                    self.note(f"every unit of {where} is dead at init: its bias {c:g} is below the ReLU's "
                              "kink by more than the pre-activations spread")
        else:
            st = _act_stats(act, q, param)
            m_ab, d_ab = _two_point(act, q, param, qab / q if q > 0 else 1.0, st)
            m_out, d2, mean = st.m2, st.d2, st.mean
        if not (math.isfinite(m_out) and math.isfinite(d2) and math.isfinite(m_ab)):
            self.note(f"activation moments overflow at {where}: clamped")
            m_out, d2, m_ab, d_ab = (min(v, _Q_CLAMP) for v in (m_out, d2, m_ab, d_ab))
            mean = min(mean, math.sqrt(_Q_CLAMP))
        rec = _Rec(layer, sw2, sb2, q_pre, q, norm_var, m_in, mab_in, d2, d_ab, main, self.depth, self.breaks,
                   alive=alive, act=act, param=param, shift=c, spread=max(q - c * c, 0.0),
                   unit_corr=extra / (q - c * c) if norm_var is None and q - c * c > 0 else 0.0, mixed=mixed)
        self.recs.append(rec)
        if main and self.depth == 0:
            v_head = max(q - c * c, 0.0)  # the head's input around its mean c (0 unless a constant bias)
            self.head_in = HeadIn(layer, act, v_head, min(max(qab - c * c, 0.0), v_head), c, d2)
        mix = mixed.mix_out if mixed is not None and not mixed.dead else None
        return _State(m_out, min(m_ab, m_out), mean, layer.fan_out, max(layer.out_positions, 1), mix), rec

    def _norm(self, norm: Norm, s: _State) -> tuple[_State, tuple[float, float, int]]:
        width = norm.width or s.width
        if norm.kind == "batch":
            var = max(s.m - s.mab, s.m * 1e-12)
            return _State(1.0, 0.0, 0.0, width, s.pos), (var, 0.0, s.pos)
        if norm.kind == "rms":
            var = max(s.m, 1e-300)
            return _State(1.0, s.mab / var, s.mu / math.sqrt(var), width, s.pos), (var, 1.0, s.pos)
        offsets, keep = _group_kept(s.mab - s.mu * s.mu, norm.group)
        var = max(s.m - s.mu * s.mu - (offsets - keep), s.m * 1e-12, 1e-300)
        return _State(1.0, keep / var, 0.0, width, s.pos), (var, 1.0, s.pos)

    def _activation(self, item: Activation, s: _State) -> tuple[_State, tuple[float, float]]:
        act = item.activation
        mu = s.mu
        if act == "softmax":
            k = item.width
            if k == 1:
                return _State(1.0, 1.0, 1.0, 1, s.pos), (0.0, 0.0)  # the constant 1: no gradient at all
            if k is None:
                self.note("softmax width unknown: modelled as a 10-way softmax")
                k = 10
            act, mu = "sigmoid", mu - math.log(k - 1)
        name = canonical_activation(act)
        if name is None:
            self.note(f"activation {act!r} treated as identity")
            return s, (1.0, 1.0)
        v = max(s.m - s.mu * s.mu, 0.0)
        c = (s.mab - s.mu * s.mu) / v if v > 0 else 1.0
        st = shifted_moments(name, mu, v, _param(name, item.act_param), c)
        if self.depth == 0:
            kind = "softmax" if item.activation == "softmax" else name  # softmax: per unit sigmoid(u − ln(k − 1))
            self.head_in = HeadIn(item, kind, v, min(max(s.mab - s.mu * s.mu, 0.0), v), mu, st.d2)
        if not (math.isfinite(st.m2) and math.isfinite(st.d2)):
            self.note(f"activation moments overflow at {item.label or act}: clamped")
            return _State(_Q_CLAMP, _Q_CLAMP, math.sqrt(_Q_CLAMP), s.width, s.pos), (_Q_CLAMP, 1.0)
        return _State(st.m2, min(st.m_ab, st.m2), st.mean, s.width, s.pos), (st.d2, st.d_ab)

    def _block(self, block: Block, s: _State, main: bool) -> tuple[_State, tuple[object, ...]]:
        self.depth += 1
        tb, sb = self.forward(block.branch, s, main)
        ts, ss = self.forward(block.shortcut, s, main)
        self.depth -= 1
        if block.concat:
            ws = block.widths[0] or ss.width or 1
            wb = block.widths[1] or sb.width or 1
            t = ws + wb
            out = _State((ws * ss.m + wb * sb.m) / t, (ws * ss.mab + wb * sb.mab) / t, (ws * ss.mu + wb * sb.mu) / t,
                         t if block.widths[0] and block.widths[1] else None, sb.pos)
            return out, (tb, ts, ws / t, wb / t)
        cross = 2.0 * ss.mu * sb.mu
        out = _State(ss.m + sb.m + cross, ss.mab + sb.mab + cross, ss.mu + sb.mu, sb.width or ss.width, sb.pos)
        return out, (tb, ts, 1.0, 1.0)

    # --------------------------------------------------------------- backward

    def backward(self, tape: list[tuple[Item, object]], lg: float, c: Corr) -> tuple[float, Corr]:
        for item, info in reversed(tape):
            if not isinstance(item, WeightLayer):
                self.profile = None  # only a weight layer carries a stream's mix on (``forward``)
            if isinstance(item, WeightLayer):
                rec = info
                assert isinstance(rec, _Rec)
                if rec.mixed is not None and rec.mixed.trans:
                    # Each kind of example passes the gradient through its own live units (sparse.back).
                    gain, self.profile = back(rec.mixed.trans, rec.mixed.weights_in, self.profile)
                    rec.mix_factor = sum(w * g * r for w, g, r in zip(rec.mixed.weights_in, self.profile,
                                                                        rec.mixed.ratios_in, strict=True))
                    lg = lg + _ln(gain if not rec.mixed.dead else 0.0)
                else:
                    self.profile = None
                    lg = lg + _ln(rec.d2)
                if self.kappa > 0.0:
                    self.kappa *= _unit_d2(rec) / rec.d2 if rec.d2 > 0 else 0.0
                c = c.times(rec.dab / rec.d2 if rec.d2 > 0 else 0.0)
                if rec.norm_var is not None:
                    if rec.layer.norm_kind != "batch":
                        self.kappa = 0.0  # LayerNorm's Jacobian removes each example's mean over the units
                    width = rec.layer.fan_out
                    positions = max(rec.layer.out_positions, 1)
                    if width:  # γ, β see the gradient at the norm's output (before its 1/σ)
                        self._affine(width, lg, c, positions)
                    if rec.layer.norm_kind == "batch":
                        lg, c = self._batch_centred(lg, c, positions)
                    lg -= math.log(rec.norm_var)
                rec.lg, rec.corr = lg, c
                # Back through Wᵀ: ‖δ_in‖² = fan_in·E[W²]·‖δ_out‖² (σ_w², plus fan_in·E[W]² when not centred),
                # plus, for non-centred weights, μ²·fan_in·(fan_out − 1)·κ of a δ common to the units.
                lg = lg + _ln(self._transposed(rec)) if not rec.layer.embedding else -math.inf
            elif isinstance(item, Block):
                self.kappa = 0.0  # not followed through a merge (kept out, as before it was modelled)
                tb, ts, fs, fb = cast("tuple[list[tuple[Item, object]], list[tuple[Item, object]], float, float]", info)
                lb, cb = self.backward(tb, lg + _ln(fb), c)
                ls, cs = self.backward(ts, lg + _ln(fs), c)
                total = _logaddexp(ls, lb)
                if total == -math.inf:
                    c = Corr(0.0, 0.0, 0.0)
                else:
                    ws = math.exp(ls - total) if ls > -math.inf else 0.0
                    wb = math.exp(lb - total) if lb > -math.inf else 0.0
                    c = Corr(cs.r0 * ws + cb.r0 * wb, cs.r1 * ws + cb.r1 * wb, cs.rs * ws + cb.rs * wb)
                lg = total
            elif isinstance(item, Norm):
                var, _, positions = cast("tuple[float, float, int]", info)
                width = item.width
                if width:
                    self._affine(width, lg, c, positions)
                if item.kind == "batch":
                    lg, c = self._batch_centred(lg, c, positions)
                lg -= math.log(var)
            elif isinstance(item, Activation):
                d2, dab = cast("tuple[float, float]", info)
                self.kappa = 0.0
                lg += _ln(d2)
                c = c.times(dab / d2 if d2 > 0 else 0.0)
            elif isinstance(item, Scale):
                if item.params:
                    self._learned_scale(item, cast("_State", info), lg, c)
                lg += _ln(item.value ** 2)
            elif isinstance(item, Dropout):  # an independent mask per term: correlations of δ × (1 − p)
                lg += _ln(item.backward_gain())
                c, self.kappa = c.times(1.0 - item.rate), self.kappa * (1.0 - item.rate)
            elif isinstance(item, Gated):
                g = info
                assert isinstance(g, _State)
                lg += _ln(g.m)
                c = c.times(g.mab / g.m if g.m > 0 else 0.0)
            elif isinstance(item, SpatialMean):
                positions = cast("int", info)
                k = min(item.k, positions) if item.k else positions
                lg -= math.log(max(k, 1))  # each input position gets 1/k of its window's gradient
                # The positions of one window share their gradient: within an example, a share
                # (k − 1)/(P − 1) of the position pairs are now perfectly correlated.
                share = (k - 1) / (positions - 1) if positions > 1 else 0.0
                c = Corr(c.r0, c.r0 if k >= positions else c.r1, c.rs + (1.0 - c.rs) * share)
            elif isinstance(item, Flatten):
                # A dense layer over (channel, position) features has its own weights per position: the
                # gradients at two positions share nothing, in one example or across two.
                c = Corr(c.r0, 0.0, 0.0)
        return lg, c

    def _batch_centred(self, lg: float, c: Corr, positions: int) -> tuple[float, Corr]:
        """BatchNorm's backward pass removes the mean of the gradient over the batch and the positions:
        the part every (example, position) pair shares."""
        if positions <= 1:
            frac = c.r0
        else:
            frac = c.r1 + (c.rs - c.r1) / self.batch + (c.r0 - c.r1) / positions
        frac = min(max(frac, 0.0), 1.0 - 1e-12)
        lg += _ln(max(1.0 - frac, 1e-300))
        return lg, Corr(0.0, 0.0, max(c.rs - frac, 0.0) / (1.0 - frac) if positions > 1 else 0.0)

    def _learned_scale(self, item: Scale, s: _State, lg: float, c: Corr) -> None:
        """A learned factor γ on a stream x (ReZero α, SkipInit, layer scale): ∂L/∂γ = Σ δ·x over the batch
        (and the units, for a scalar), so ‖∂γ‖² ≈ B·‖δ‖²·E[x²]·(coherence over the batch, ρ_x = mab/m),
        δ the gradient at its output. It does not vanish with γ: a zero-init α on a branch whose output
        is large gets a large gradient (measured: ReZero over 6 ELU blocks at N(0, 1), ‖∂L/∂θ‖/‖θ‖ 10^3.4
        while every weight's is 10^0.7)."""
        if s.m <= 0 or lg == -math.inf:
            return
        b = self.batch
        rho = min(max(s.mab / s.m, 0.0), 1.0)
        grad = lg + math.log(b) + math.log(s.m) + math.log(c.coherence(b, s.pos, rho))
        self.params.append((grad, _ln(item.params * item.value ** 2)))

    def _affine(self, width: int, lg: float, c: Corr, positions: int) -> None:
        """γ (ones) and β (zeros) of a norm: ‖∂γ‖² ≈ B·‖δ‖², ‖∂β‖² ≈ B·‖δ‖²·(coherence over B·P terms)."""
        b = self.batch
        grad = lg + math.log(b) + math.log(1.0 + c.coherence(b, positions))
        self.params.append((grad, math.log(width)))


@dataclass(frozen=True)
class Corr:
    """How the gradient δ of two different terms of a batch-and-position sum correlates: ``r0`` two
    examples at the same position (the only pairs when there are no positions), ``r1`` two examples at
    different positions, ``rs`` two positions of one example."""

    r0: float
    r1: float
    rs: float

    def times(self, f: float) -> Corr:
        return Corr(self.r0 * f, self.r1 * f, self.rs * f)

    def coherence(self, batch: int, positions: int, rho: float = 1.0) -> float:
        """Σ over the B·P terms of (δ·x)'s pair correlations, per term: 1 + Σ_pairs ρ_x·r (ρ_x = ``rho``,
        the same for every pair of inputs: shared per-unit offsets), at least 1/(B·P)."""
        u = max(positions, 1)
        total = 1.0 + rho * ((u - 1) * self.rs + (batch - 1) * self.r0 + (batch - 1) * (u - 1) * self.r1)
        return max(total, 1.0 / (batch * u))


# φ(u) = u·φ′(u): Euler holds (the thresholded ReLU too: u on its live units, 0 elsewhere).
_HOMOGENEOUS_ACTS = frozenset({"relu", "leaky_relu", "linear", "thresholded_relu"})
_PROBABILITY_HEADS = frozenset({"sigmoid", "softmax"})
#: Activations whose derivative is exactly 0 outside a band (a unit there is dead, not just slow).
_KINKED_ACTS = frozenset({"relu", "relu6"})


@functools.lru_cache(maxsize=64)
def _max_moments(k: int) -> tuple[float, float]:
    """(E[M_k], Var[M_k]) of the largest of k standard normals (midpoint rule on [−8, 8])."""
    steps = 1600
    dz = 16.0 / steps
    first = second = 0.0
    for i in range(steps):
        z = -8.0 + (i + 0.5) * dz
        w = k * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi) * _phi_cdf(z) ** (k - 1) * dz
        first += z * w
        second += z * z * w
    return first, max(second - first * first, 0.0)


def _max_pool(s: _State, k: int) -> _State:
    if k <= 1:
        return s
    mean_k, var_k = _max_moments(k)
    shared = max(s.mab - s.mu * s.mu, 0.0)  # per-unit offsets: the same across the window
    fluct = max(s.m - s.mab, 0.0)
    mu = s.mu + math.sqrt(fluct) * mean_k
    return _State(shared + mu * mu + fluct * var_k, shared + mu * mu, mu, s.width, max(s.pos // k, 1))


def _group_kept(offsets: float, group: int | None) -> tuple[float, float]:
    """(the per-channel offsets' variance, what a norm over groups of ``group`` channels keeps of it). A
    group norm subtracts each example's mean over its group, and with it the mean of the group's k
    channel offsets: 1/k of their variance goes (k = 1, InstanceNorm: all of it; LayerNorm: ≈ none).
    Measured, 12 × Conv2d(32) → GroupNorm(G, 32) → sigmoid on 8×8 inputs, first/last ratio: k = 1
    10^-2.6, k = 2 10^-3.5, k = 4 10^-4.7, k = 8 10^-5.4, k = 32 10^-6.0."""
    offsets = max(offsets, 0.0)
    return offsets, offsets * (1.0 - 1.0 / group) if group else offsets


def _scaled(s: _State, item: Scale) -> _State:
    """The stream times ``item.value`` plus ``item.shift``: second moments
    E[(v·x + c)²] = v²·E[x²] + 2·v·c·E[x] + c² (likewise across examples)."""
    v, c = item.value, item.shift
    if not c:
        return _State(s.m * v ** 2, s.mab * v ** 2, s.mu * abs(v), s.width, s.pos)
    cross = 2.0 * v * c * s.mu + c * c
    return _State(max(s.m * v ** 2 + cross, 0.0), max(s.mab * v ** 2 + cross, 0.0), v * s.mu + c, s.width,
                  s.pos)


def _spatial_mean(s: _State, k: int) -> _State:
    k = min(k, s.pos) if k else s.pos
    if k <= 1:
        return s
    fluct = max(s.m - s.mab, 0.0)
    return _State(s.mab + fluct / k, s.mab, s.mu, s.width, max(s.pos // k, 1))


def _homogeneous(item: Item, smooth: bool = False) -> bool:
    """Positively homogeneous of degree 1 in its input (ReLU, linear maps, sums of such). ``smooth``: a
    weight layer with any activation counts (the coherent prediction term follows its signal moment)."""
    if isinstance(item, (MaxPool, SpatialMean, Flatten)):
        return True
    if isinstance(item, WeightLayer):
        return not item.normalized and (smooth or canonical_activation(item.activation) in _HOMOGENEOUS_ACTS)
    if isinstance(item, Activation):
        return item.activation in _HOMOGENEOUS_ACTS
    if isinstance(item, Scale):
        return not item.shift
    if isinstance(item, Dropout):
        return not item.alpha
    if isinstance(item, Block):
        return all(_homogeneous(i) for i in item.branch + item.shortcut)
    if isinstance(item, ResidualBlock):
        return not item.normalized_branch and all(_homogeneous(i) for i in item.branch)
    return False


def _residual_branch(block: ResidualBlock) -> list[Item]:
    """The :class:`ResidualBlock` of the chain API as a :class:`Block` branch."""
    items: list[Item] = []
    if block.normalized_branch:
        items.append(Norm(block.norm_kind))
    items.extend(block.branch)
    if block.zero_init_last:
        items.append(Scale(0.0))
    return items


def propagate(
    items: Sequence[Item],
    *,
    batch_size: int = 128,
    ends_output: bool = True,
    n_out: int | None = None,
    input_m: float = 1.0,
) -> Propagation:
    """One forward and one backward pass over ``items`` at init (see the module docstring).

    ``ends_output``: the path ends the model, so the MSE loss's gradient is the start of the
    backward pass (absolute scale); otherwise the backward pass starts at ‖δ‖ = 1 and only
    ratios mean something. ``n_out``: outputs per example (the last layer's width), at each of the
    output's spatial positions (a conv head: its channels)."""
    b = max(1, batch_size)
    p = _Pass(b)
    tape, out = p.forward(items, _State(input_m, 0.0, 0.0))
    main = [r for r in p.recs if r.key_path]
    n = n_out or (main[-1].layer.fan_out if main else None) or out.width
    if ends_output and not n:
        p.note("number of outputs unknown: taken as 1")
    n = n or 1
    m_y = out.m
    loss = m_y + 1.0
    positions = max(out.pos, 1)  # a conv head: the MSE averages over its positions too
    dead, head_q, ln_head = dead_head(items, p.head_in, b, n * positions) if ends_output else (None, None, 0.0)
    if ends_output:
        lg0 = math.log(4.0 * loss / (b * b * n * positions))
        r0 = out.mab / loss  # what two outputs share: the per-unit offsets, at any position
    else:
        lg0, r0 = 0.0, 0.0
    # A saturated head passes a typical batch far less than the mean field says: every gradient
    # behind it shrinks by the same factor (the ratios do not change).
    p.backward(tape, lg0 + ln_head, Corr(r0, r0, r0))
    nonfinite = p.max_m >= F32_MAX * F32_MAX * 1e-1 or (ends_output and loss >= F32_MAX)
    coherent_of = _coherent_prediction(main, m_y)
    layers: list[LayerFlow] = []
    grad_terms: list[float] = [g for g, _ in p.params]
    weight_terms: list[float] = [w for _, w in p.params]
    for index, rec in enumerate(main):
        fan_in = rec.layer.fan_in or 1
        fan_out = rec.layer.fan_out or fan_in
        m_in = rec.m_in
        ln_grad = -math.inf
        corr = rec.corr or Corr(0.0, 0.0, 0.0)
        if rec.lg > -math.inf and m_in > 0:
            # Each weight's gradient sums B·uses terms (a conv weight: every position it is applied at).
            boost = corr.coherence(b, rec.layer.uses, rec.mab_in / m_in)
            ln_grad = math.log(b) + rec.lg + math.log((1 if rec.layer.embedding else fan_in) * m_in * boost
                                                      * max(rec.mix_factor, 1e-300))
        rows = rec.layer.rows or fan_in
        # ‖W‖² = fan_out·rows·E[W²] (rows = fan_in but for an embedding, and a transposed conv whose
        # forward fan-in is a share of its kernel): the variance and, for a non-centred init, its mean².
        ln_w = _ln((rec.sw2 + fan_in * rec.layer.weight_mean ** 2) * fan_out * rows / fan_in)
        coherent = abs(coherent_of[index])
        if ends_output and rec.breaks == p.breaks and ln_w > -math.inf and not rec.layer.embedding and coherent > 0:
            # The prediction part of the MSE gradient adds up coherently over the batch: for the part
            # of y of degree 1 in W (Euler), its component along W is 2·m_y/‖W‖ (dominant once m_y ≫ 1).
            ln_grad = _logaddexp(ln_grad, math.log(4.0) + 2.0 * math.log(coherent) - ln_w)  # no underflow
        grad_terms.append(ln_grad)
        weight_terms.append(ln_w)
        if rec.layer.bias_width and rec.lg > -math.inf:
            grad_terms.append(math.log(b) + rec.lg + math.log(corr.coherence(b, rec.layer.out_positions)))
            bias2 = rec.sb2 + rec.layer.bias_mean ** 2  # E[b²]: its variance and its constant
            if bias2 > 0:
                weight_terms.append(math.log(bias2 * rec.layer.bias_width))
        chi = rec.sw2 * rec.d2 / (rec.norm_var or 1.0)
        layers.append(LayerFlow(rec.layer.label, rec.q, rec.q_pre, chi, 0.5 * ln_grad / math.log(10),
                                0.5 * ln_w / math.log(10), 0.5 * rec.lg / math.log(10), rec.layer.key,
                                rec.layer.embedding, rec.depth, rec.alive, rec.layer.bias_mean,
                                rec.mixed.d2 if rec.mixed is not None and rec.act in SPARSE_ACTS else None))
    total_g = _logsum(grad_terms)
    total_w = _logsum(weight_terms)
    rel = 0.5 * (total_g - total_w) / math.log(10) if ends_output and total_w > -math.inf else None
    first = next((lf for lf in layers if lf.log10_grad > -math.inf), None)
    last = layers[-1] if layers else None
    if first is not None and last is not None and last.log10_grad > -math.inf:
        ratio = first.log10_grad - last.log10_grad
        back = first.log10_backward - last.log10_backward
    elif last is not None and last.log10_grad == -math.inf:
        ratio, back = math.nan, math.nan
    else:
        ratio, back = 0.0, 0.0
    if dead is not None:
        p.note(dead + ": every gradient is exactly 0 in float32")
    # Cross-entropy's (p − y) at the logits does not survive a head saturated in float32 (p rounds to
    # 0 or 1, its clamps cut the rest): no rescue for a sparse head.
    ce = _ce_rescale(tape, main, lg0, b * math.sqrt(positions)) if ends_output and ln_head == 0.0 else None
    return Propagation(
        layers=layers,
        log10_ratio=ratio,
        log10_backward_ratio=back,
        log10_out_m=math.log10(m_y) if m_y > 0 else -math.inf,
        log10_max_m=math.log10(p.max_m) if p.max_m > 0 else -math.inf,
        log10_loss=math.log10(loss) if ends_output else None,
        log10_relative_grad=rel,
        nonfinite=nonfinite,
        dead_head=dead,
        head_q=head_q,
        log10_head_factor=0.5 * ln_head / math.log(10),
        head_activation=p.head_in.act if p.head_in is not None and head_q is not None else None,
        exact=p.exact,
        assumptions=p.notes,
        log10_ce_rescale=ce,
        killed=p.killed,
        log10_logit_ce_rescale=0.5 * (-math.log(b * b * positions) - lg0) / math.log(10) if ends_output else None,
        n_out=n)


def _signal(rec: _Rec) -> float | None:
    """E[ε·φ(u)·φ′(u)]/Var(ε) of a layer's smooth activation, u = c + ε its pre-activation around a
    constant bias c (negative where φ′ falls with u: a unit shifted into saturation); None for a
    homogeneous one (the caller uses E[φ(u)²]/q, shifts included)."""
    act = canonical_activation(rec.layer.activation) or "linear"
    if act in _HOMOGENEOUS_ACTS:
        return None
    c = rec.layer.bias_mean if not rec.layer.normalized else 0.0
    v = rec.q - c * c
    if v <= 0 or rec.layer.weight_mean > 0:
        return 0.0
    return signal_moment(act, v, _param(act, rec.layer.act_param), c) / v


def _coherent_prediction(main: list[_Rec], m_y: float) -> list[float]:
    """E[y·Dy] per main-path layer, Dy the change of the output when the layer's weights are scaled
    (Euler: ⟨W, ∂L/∂W⟩ = 2·mean((y − t)·Dy) ≈ 2·E[y·Dy]): the prediction part of the MSE gradient that
    adds up over every (example, position) term of a batch instead of averaging out — over a conv
    layer's B·P terms it is often most of the gradient. The share of a layer's pre-activation variance
    that scales with its weights is s = σ_w²·m_in/q (biases added downstream do not); through the next
    activation a share s of u passes on s·E[u·φ(u)·φ′(u)] of E[φ·Dφ] (a homogeneous φ: s·E[φ²]), and the
    next layer takes σ_w²/q of it. (Measured, 6 tanh conv layers at kaiming init on 32×32 inputs: the
    hidden layers' gradients 0.6–0.8 decades above their incoherent part, at any width.)"""
    out = [0.0] * len(main)
    if not main:
        return out
    if canonical_activation(main[-1].layer.activation) in _PROBABILITY_HEADS:
        return out  # trained with cross-entropy (the frozen check is judged so): not this MSE term
    head = _signal(main[-1])
    # Per layer: out = σ_w²·m_in·F, F = E[φ·Dφ]/Cov(Du, u) after its activation times what the layers
    # after it pass on (a homogeneous φ: E[φ²]/q, the output's m_y/q for the head); signed, it enters squared.
    last = main[-1]
    acc = (m_y / last.q_pre if last.q_pre > 0 else 0.0) if head is None else head
    for i in range(len(main) - 1, -1, -1):
        rec = main[i]
        if rec.q_pre <= 0:
            acc = 0.0
            continue
        out[i] = rec.sw2 * rec.m_in * acc
        if i > 0:
            before = main[i - 1]
            own = _signal(before)
            acc *= rec.sw2 * ((rec.m_in / before.q_pre if before.q_pre > 0 else 0.0) if own is None else own)
    return out


def _ce_rescale(tape: list[tuple[Item, object]], main: list[_Rec], lg0: float, b: float) -> float | None:
    """log10 of (cross-entropy gradient at the logits) / (MSE gradient there), for a probability head."""
    d2: float | None = None
    share = 1.0  # ‖p − y‖² per example: ≈ 1 for a softmax over k classes, ≈ ¼ for a sigmoid unit
    for item, info in reversed(tape):
        if isinstance(item, (Scale, Norm)):
            continue
        if isinstance(item, Activation) and item.activation in ("softmax", "sigmoid"):
            d2 = info[0]  # type: ignore[index]
            share = 1.0 if item.activation == "softmax" else 0.25 * (item.width or 1)
        elif isinstance(item, WeightLayer) and canonical_activation(item.activation) == "sigmoid" and main:
            d2 = main[-1].d2
            share = 0.25 * (item.fan_out or 1)
        break
    if d2 is None or d2 <= 0:
        return None
    return 0.5 * (math.log(share / (b * b)) - (lg0 + math.log(d2))) / math.log(10)


def _logsum(terms: Sequence[float]) -> float:
    acc = -math.inf
    for t in terms:
        acc = _logaddexp(acc, t)
    return acc
