"""The monitors' shared core: norms from ``.grad``, the verdict, alerts, plateau, log, plots.

Both front ends (``GradientMonitor`` for PyTorch loops, ``GradientMonitorCallback`` for Keras 3
on the torch backend) record through ``MonitorCore``: the same quantities, the same verdict
(``gradlint.verdict.judge``, the dynamic check's), the same log records. Imports torch (the
monitor runs inside the user's training process, where torch is loaded anyway).
"""

from __future__ import annotations

import json
import math
import re
import statistics
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from gradlint.dynamic.layers import Unit, combine_norms, is_symmetric, tensor_norms
from gradlint.dynamic.results import LayerMeasurement
from gradlint.monitor.common import Alert, PlateauDetector, plot_record
from gradlint.verdict import Quantities, Thresholds, judge

__all__ = ["MonitorCore", "monitor_thresholds"]

# Order in which flags are reported and alerts raised.
_KINDS = ("nan", "exploding", "vanishing", "symmetric", "plateau")
# Norms of the last records the growth rule compares against (median).
_GROWTH_HISTORY = 5
# Keys of the dynamic check's per-layer JSON that the monitor does not measure (it runs no
# forward pass of its own, so it sees no activations): dropped from the log to keep it small.
_UNMEASURED = ("output_grad_norm", "saturation", "dead_fraction")


def monitor_thresholds(vanishing_ratio: float | None, exploding_ratio: float | None,
                       thresholds: Thresholds | None) -> Thresholds:
    """The protocol's thresholds, with the two ratio bounds the constructors take by name."""
    base = thresholds or Thresholds()
    changes = {}
    if vanishing_ratio is not None:
        changes["vanishing_ratio"] = float(vanishing_ratio)
    if exploding_ratio is not None:
        changes["exploding_ratio"] = float(exploding_ratio)
    return replace(base, **changes)


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _clean(obj: Any) -> Any:
    """JSON has no NaN/Infinity: non-finite floats become null; others keep 6 significant
    digits (8-12 characters instead of up to 24 for a float64 repr), recursively."""
    if isinstance(obj, float):
        return float(f"{obj:.6g}") if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _dense(t: torch.Tensor) -> torch.Tensor:
    """Sparse gradients (``nn.Embedding(sparse=True)``): the norm of their stored values."""
    return t.coalesce().values() if t.is_sparse else t


_MONITOR_DIR = str(Path(__file__).resolve().parent)


def _user_stacklevel() -> int:
    """``stacklevel`` that makes a warning point at the user's line (``monitor.step(loss)``,
    ``model.fit(...)``): the first frame outside gradlint.monitor, Keras and torch."""
    import sys

    internal = [_MONITOR_DIR]
    for package in ("keras", "torch"):
        module = sys.modules.get(package)
        location = getattr(module, "__file__", None) if module is not None else None
        if location:
            internal.append(str(Path(location).resolve().parent))
    frame: Any = sys._getframe(2)  # the caller of warnings.warn is level 1
    level = 2
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(tuple(internal)):
        frame = frame.f_back
        level += 1
    return level if frame is not None else 2


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "model"


class MonitorCore:
    """Framework-neutral part: step counting, norms, verdict, flags, plateau, alerts, log, plots."""

    def __init__(
        self,
        *,
        framework: str,
        every: int,
        log_path: str | Path | None,
        plot_dir: str | Path | None,
        thresholds: Thresholds,
        growth_ratio: float,
        plateau_window: int,
        plateau_threshold: float,
        on_alert: Callable[[Alert], Any] | None,
        warn: bool,
        name: str | None,
    ) -> None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.framework = framework
        self.every = every
        self.log_path = Path(log_path) if log_path else None
        self.plot_dir = Path(plot_dir) if plot_dir else None
        self.limits = thresholds
        self.growth_ratio = float(growth_ratio)
        self.plateau_window = int(plateau_window)
        self.plateau_threshold = float(plateau_threshold)
        self.on_alert = on_alert
        self.warn = warn
        self.name = name
        self.steps = 0  # training steps counted so far (``tick``)
        self.latest: dict[str, Any] | None = None  # the full record of the last recorded step
        self.history: list[dict[str, Any]] = []  # one short summary per record (no layers)
        self.alerts: list[Alert] = []
        self._active: set[str] = set()  # conditions present at the last record
        self._plateau = PlateauDetector(plateau_window, plateau_threshold)
        self._norms: deque[float] = deque(maxlen=_GROWTH_HISTORY)
        self._log_started = False
        self._plots_ok = True
        self._warned_no_grads = False
        self._t0 = time.perf_counter()

    # -- public helpers -------------------------------------------------------------------

    def tick(self) -> int | None:
        """Count one training step; its number when it is a recording step (0, every, ...), else None."""
        step = self.steps
        self.steps = step + 1
        return None if step % self.every else step

    @property
    def flags(self) -> frozenset[str]:
        """Conditions present at the last recorded step ('nan', 'exploding', 'vanishing', 'symmetric', 'plateau')."""
        return frozenset(self._active)

    @property
    def vanishing_ratio(self) -> float:
        return self.limits.vanishing_ratio

    @property
    def exploding_ratio(self) -> float:
        return self.limits.exploding_ratio

    @property
    def thresholds(self) -> dict[str, float]:
        """The verdict's thresholds (gradlint.verdict.Thresholds) and the monitor's own two rules."""
        return {
            **self.limits.to_json(),
            "growth_ratio": self.growth_ratio,
            "plateau_window": self.plateau_window,
            "plateau_threshold": self.plateau_threshold,
        }

    def plot(self, path: str | Path, record: dict[str, Any] | None = None) -> str:
        """The dynamic check's gradient-flow PNG for the latest record (or ``record``)."""
        record = record or self.latest
        if record is None:
            raise RuntimeError("nothing recorded yet: the first record is taken at step 0")
        return plot_record(record, path)

    # -- one record -----------------------------------------------------------------------

    def _measure(self, units: Sequence[Unit], grad_scale: float) -> tuple[list[dict[str, Any]], float, float, bool]:
        """Per unit its weights' gradient and weight norms; totals over every tensor (biases too)."""
        tensors = [p for u in units for p in u.tensors]
        grads = [p.grad for p in tensors]
        present = [i for i, g in enumerate(grads) if g is not None]
        grad_norms = [0.0] * len(tensors)
        for i, value in zip(present, tensor_norms([_dense(g) for g in grads if g is not None]), strict=True):
            grad_norms[i] = value / grad_scale
        weight_norms = tensor_norms([_dense(p) for p in tensors])
        layers = []
        start = 0
        for unit in units:
            count = len(unit.params)
            g = combine_norms(grad_norms[start : start + count])
            w = combine_norms(weight_norms[start : start + count])
            numel = sum(p.numel() for p in unit.params)
            start += count + len(unit.extra)
            layers.append({"unit": unit, "grad_norm": g, "weight_norm": w, "numel": numel})
        return layers, combine_norms(grad_norms), combine_norms(weight_norms), bool(present)

    def _finish(
        self,
        step: int,
        loss: float | None,
        units: Sequence[Unit],
        *,
        grad_scale: float = 1.0,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Measure, decide, alert, log. Returns the record (also kept as ``latest``)."""
        measured, total, total_weight, has_grads = self._measure(units, grad_scale)
        layer_json = []
        nonfinite_layers = []
        symmetric = []
        max_rms = 0.0
        # First/last: the dynamic check's choice (first and last non-norm layer with a >=2-D weight).
        candidates = [i for i, u in enumerate(units) if not u.is_norm and u.main is not None]
        for index, m in enumerate(measured):
            unit, g, w = m["unit"], m["grad_norm"], m["weight_norm"]
            finite = math.isfinite(g)
            if not finite:
                nonfinite_layers.append(unit.name)
            elif m["numel"]:
                max_rms = max(max_rms, g / math.sqrt(m["numel"]))
            # Hidden layers only (the output layer's units are the outputs), as the dynamic check.
            sym = bool(has_grads and finite and candidates and index != candidates[-1]
                       and is_symmetric(unit, self.limits.symmetry_tol))
            if sym:
                symmetric.append(unit.name)
            entry = LayerMeasurement(
                name=unit.name,
                kind=unit.kind,
                grad_norm=g,
                weight_norm=w,
                relative_grad=(g / w if w > 0 else math.inf) if finite else math.nan,
                saturation=None,
                dead_fraction=None,
                is_norm=unit.is_norm,
                symmetric=sym,
            ).to_json()
            for key in _UNMEASURED:
                entry.pop(key, None)
            layer_json.append(entry)

        ratio: float | None = None
        first_rel: float | None = None
        first_name = last_name = None
        if candidates:
            first, last = candidates[0], candidates[-1]
            first_name, last_name = units[first].name, units[last].name
            gf, gl = measured[first]["grad_norm"], measured[last]["grad_norm"]
            if not (math.isfinite(gf) and math.isfinite(gl)):
                ratio = math.nan
            elif gl == 0:
                ratio = math.nan if gf == 0 else math.inf
            else:
                ratio = gf / gl
            wf = measured[first]["weight_norm"]
            first_rel = gf / wf if wf > 0 else None
        relative = total / total_weight if total_weight > 0 and math.isfinite(total) else None

        loss_finite = loss is None or math.isfinite(loss)
        nonfinite = bool(nonfinite_layers) or not loss_finite
        flags: set[str] = set()
        reasons: dict[str, str] = {}
        verdict: str | None = None
        reason = "no gradients: every .grad is None"
        if nonfinite:
            flags.add("nan")
            verdict = "exploding"  # the dynamic check's word for NaN/Inf
            what = []
            if not loss_finite:
                what.append(f"loss = {loss}")
            if nonfinite_layers:
                shown = ", ".join(nonfinite_layers[:4]) + (", ..." if len(nonfinite_layers) > 4 else "")
                what.append(f"gradients of {len(nonfinite_layers)} layer(s): {shown}")
            reason = reasons["nan"] = "NaN/Inf in " + "; ".join(what)
        elif has_grads:
            judged = judge(
                Quantities(ratio=ratio, loss=loss, relative_grad=relative, first_relative_grad=first_rel,
                           symmetric=symmetric, first=first_name, last=last_name),
                self.limits,
            )
            verdict, reason = judged.label, judged.reason
            recent = [n for n in self._norms if n > 0]
            if not judged.problem and recent and total > self.growth_ratio * statistics.median(recent):
                # The monitor's own rule: a sudden jump of the whole gradient (e.g. a diverging
                # learning rate), which the ratio misses because every layer grows alike.
                jump = total / statistics.median(recent)
                verdict = "exploding"
                reason = (
                    f"gradient norm {total:.2e} is {jump:.1e}x the median of the last {len(recent)} records "
                    f"(> {self.growth_ratio:g}x)"
                )
            if verdict in ("vanishing", "exploding", "symmetric"):
                flags.add(verdict)
                reasons[verdict] = reason
            if math.isfinite(total):
                self._norms.append(total)
        elif not self._warned_no_grads:
            self._warned_no_grads = True
            warnings.warn(
                f"gradlint monitor: no gradients at step {step} (every .grad is None): record after "
                "loss.backward() and before optimizer.zero_grad()",
                RuntimeWarning,
                stacklevel=_user_stacklevel(),
            )

        # Plateau on the recorded losses (the rule: gradlint.monitor.PlateauDetector).
        if self._plateau.update(loss, step):
            flags.add("plateau")
            p = self._plateau
            reasons["plateau"] = (
                f"the loss (median of the last {p.half} records) has not improved by {self.plateau_threshold:.0%} "
                f"for {p.since} records (~{p.since * self.every} steps): {p.median:.4g} now, best {p.best:.4g} "
                f"at step {p.best_step}"
            )

        name = self.name or "model"
        record: dict[str, Any] = {
            "step": step,
            "model": name,
            "framework": self.framework,
            "elapsed": round(time.perf_counter() - self._t0, 3),
            "loss": _finite(loss),
            **(extra or {}),
            "grad_norm": total,
            "ratio": ratio,
            "relative_grad": relative,
            "first_relative_grad": first_rel,
            "first": first_name,
            "last": last_name,
            "max_grad_rms": max_rms,
            "nonfinite": nonfinite,
            "nonfinite_layers": nonfinite_layers,
            "symmetric_layers": symmetric,
            "has_grads": has_grads,
            "verdict": verdict,
            "reason": reason,
            "flags": [k for k in _KINDS if k in flags],
            "plateau": self._plateau.state(),
            "alerts": [],
            "plot": None,
            "layers": layer_json,
        }
        new = [k for k in _KINDS if k in flags and k not in self._active]
        self._active = flags
        alerts = [Alert(kind, step, self._message(kind, step, reasons[kind], name), record) for kind in new]
        record["alerts"] = [{"kind": a.kind, "message": a.message} for a in alerts]
        if alerts and self.plot_dir is not None:
            record["plot"] = self._plot_quietly(record, self.plot_dir / f"{_safe_name(name)}-step{step:07d}.png")
        record = _clean(record)
        for alert in alerts:
            alert.record = record
        self.latest = record
        self.history.append({k: record[k] for k in ("step", "loss", "grad_norm", "ratio", "flags")})
        self._write(record)
        for alert in alerts:
            self.alerts.append(alert)
            if self.warn:
                warnings.warn(alert.message, alert.category, stacklevel=_user_stacklevel())
            if self.on_alert is not None:
                self.on_alert(alert)
        return record

    def _message(self, kind: str, step: int, reason: str, name: str) -> str:
        clip = (
            "torch.nn.utils.clip_grad_norm_" if self.framework == "torch"
            else "the optimizer's clipnorm/global_clipnorm"
        )
        advice = {
            "nan": f"Lower the learning rate, clip gradients ({clip}), check the data and the loss for "
            "log(0) or division by zero.",
            "exploding": f"Clip gradients ({clip}), lower the learning rate, or reduce the init scale.",
            "vanishing": "The first layers barely learn: use ReLU-family activations with He init, add "
            "normalization or residual connections (`gradlint --dynamic` shows the same at init).",
            "symmetric": "Units that start identical get identical updates and stay copies: initialize the "
            "weights randomly (the framework default, He or Glorot) instead of with a constant.",
            "plateau": "If the gradients are vanishing too, fix those first; otherwise adjust the learning rate.",
        }[kind]
        return f"gradlint monitor: {name} step {step}: {kind}: {reason}. {advice}"

    def _plot_quietly(self, record: dict[str, Any], path: Path) -> str | None:
        if not self._plots_ok:
            return None
        try:
            return plot_record(_clean(record), path)
        except ImportError as exc:  # matplotlib missing: warn once, keep training
            self._plots_ok = False
            warnings.warn(
                f"gradlint monitor: no plots ({exc}); pip install matplotlib", RuntimeWarning,
                stacklevel=_user_stacklevel(),
            )
            return None

    def _write(self, record: dict[str, Any]) -> None:
        if self.log_path is None:
            return
        # Opened per record (every `every` steps): nothing stays open, every line is flushed,
        # and a crash loses nothing. The first record of a monitor truncates an old log.
        mode = "a" if self._log_started else "w"
        if not self._log_started:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, mode, encoding="utf-8") as handle:
            handle.write(json.dumps(record, allow_nan=False) + "\n")
        self._log_started = True

    def _final_plot(self) -> None:
        if self.plot_dir is not None and self.latest is not None:
            self._plot_quietly(self.latest, self.plot_dir / f"{_safe_name(self.latest['model'])}-final.png")


