"""PyTorch training monitor, and the core both monitors share.

Usage (see docs/monitor.md)::

    monitor = GradientMonitor(model, every=100, log_path="gradlint-monitor.jsonl")
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        monitor.step(loss)          # after backward, before the next zero_grad
        optimizer.step()            # (before or after monitor.step: it does not touch .grad)

Cost: ``step`` increments a counter and returns on all but every ``every``-th call. No hooks
are installed and nothing runs inside forward or backward. On a recording step the gradient
norms are read from ``.grad`` (one fused ``torch._foreach_norm`` over the gradients, one over
the weights), a record is built, and one line is appended to the log.

Layers are the dynamic check's weight layers (``gradlint.dynamic.measure._torch_units``:
one per module owning parameters, biases excluded, raw parameters one each, norm layers
marked). Their execution order -- which the dynamic check finds with a TorchFunctionMode
during a forward pass it runs itself -- is read here, without running anything, from the
autograd graph of the first recorded loss: each parameter's position is the sequence number
of the first graph node that consumed it (autograd numbers nodes in creation order, i.e. the
order of the forward pass). Without a loss tensor the registration order is used.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import time
import warnings
from collections import deque
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from gradlint.dynamic import LayerMeasurement
from gradlint.dynamic.measure import Unit, _tensor_norms, _torch_units, decide_verdict
from gradlint.monitor import Alert, PlateauDetector, plot_record

__all__ = ["GradientMonitor", "MonitorCore", "torch_execution_order"]

# Order in which flags are reported and alerts raised.
_KINDS = ("nan", "exploding", "vanishing", "plateau")
# Norms of the last records the growth rule compares against (median).
_GROWTH_HISTORY = 5
# Keys of the dynamic check's per-layer JSON that the monitor does not measure (no forward
# pass of its own): dropped from the log to keep it small.
_UNMEASURED = ("output_grad_norm", "saturation", "dead_fraction", "symmetric")


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
        if module is not None and getattr(module, "__file__", None):
            internal.append(str(Path(module.__file__).resolve().parent))
    frame = sys._getframe(2)  # the caller of warnings.warn is level 1
    level = 2
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(tuple(internal)):
        frame = frame.f_back
        level += 1
    return level if frame is not None else 2


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "model"


class MonitorCore:
    """Framework-neutral part: norms from ``.grad``, flags, plateau, alerts, the log, plots."""

    def __init__(
        self,
        *,
        framework: str,
        every: int,
        log_path: str | Path | None,
        plot_dir: str | Path | None,
        vanishing_ratio: float,
        exploding_ratio: float,
        exploding_grad_rms: float,
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
        self.vanishing_ratio = float(vanishing_ratio)
        self.exploding_ratio = float(exploding_ratio)
        self.exploding_grad_rms = float(exploding_grad_rms)
        self.growth_ratio = float(growth_ratio)
        self.plateau_window = int(plateau_window)
        self.plateau_threshold = float(plateau_threshold)
        self.on_alert = on_alert
        self.warn = warn
        self.name = name
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

    @property
    def flags(self) -> frozenset[str]:
        """Conditions present at the last recorded step ('nan', 'exploding', 'vanishing', 'plateau')."""
        return frozenset(self._active)

    @property
    def thresholds(self) -> dict[str, float]:
        return {
            "vanishing_ratio": self.vanishing_ratio,
            "exploding_ratio": self.exploding_ratio,
            "exploding_grad_rms": self.exploding_grad_rms,
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

    def _measure(self, units: Sequence[Unit], grad_scale: float) -> tuple[list[dict[str, Any]], bool]:
        params = [p for u in units for p in u.params]
        grads = [p.grad for p in params]
        present = [i for i, g in enumerate(grads) if g is not None]
        grad_norms = [0.0] * len(params)
        for i, value in zip(present, _tensor_norms([_dense(grads[i]) for i in present])):
            grad_norms[i] = value / grad_scale
        weight_norms = _tensor_norms([_dense(p) for p in params])
        layers = []
        start = 0
        for unit in units:
            count = len(unit.params)
            g = math.sqrt(sum(n * n for n in grad_norms[start : start + count]))
            w = math.sqrt(sum(n * n for n in weight_norms[start : start + count]))
            numel = sum(p.numel() for p in unit.params)
            start += count
            layers.append({"unit": unit, "grad_norm": g, "weight_norm": w, "numel": numel})
        return layers, bool(present)

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
        measured, has_grads = self._measure(units, grad_scale)
        layer_json = []
        nonfinite_layers = []
        max_rms = 0.0
        total_sq = 0.0
        for m in measured:
            unit, g, w = m["unit"], m["grad_norm"], m["weight_norm"]
            finite = math.isfinite(g)
            if not finite:
                nonfinite_layers.append(unit.name)
            elif m["numel"]:
                max_rms = max(max_rms, g / math.sqrt(m["numel"]))
            total_sq += g * g
            entry = LayerMeasurement(
                name=unit.name,
                kind=unit.kind,
                grad_norm=g,
                weight_norm=w,
                relative_grad=(g / w if w > 0 else math.inf) if finite else math.nan,
                saturation=None,
                dead_fraction=None,
                is_norm=unit.is_norm,
            ).to_json()
            for key in _UNMEASURED:
                entry.pop(key, None)
            layer_json.append(entry)
        total = math.sqrt(total_sq)

        # First/last: the dynamic check's choice (first and last non-norm layer with a >=2-D weight).
        candidates = [i for i, u in enumerate(units) if not u.is_norm and u.main is not None]
        ratio: float | None = None
        first = last = None
        if candidates:
            first, last = candidates[0], candidates[-1]
            gf, gl = measured[first]["grad_norm"], measured[last]["grad_norm"]
            if not (math.isfinite(gf) and math.isfinite(gl)):
                ratio = math.nan
            elif gl == 0:
                ratio = math.nan if gf == 0 else math.inf
            else:
                ratio = gf / gl

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
            verdict, reason = decide_verdict(ratio, False, [], max_rms, self.thresholds)
            if first is not None:
                reason += f" [first: {units[first].name}, last: {units[last].name}]"
            recent = [n for n in self._norms if n > 0]
            if verdict == "healthy" and recent and total > self.growth_ratio * statistics.median(recent):
                # The monitor's own rule: a sudden jump of the whole gradient (e.g. a diverging
                # learning rate), which the ratio misses because every layer grows alike.
                jump = total / statistics.median(recent)
                verdict = "exploding"
                reason = (
                    f"gradient norm {total:.2e} is {jump:.1e}x the median of the last {len(recent)} records "
                    f"(> {self.growth_ratio:g}x)"
                )
            if verdict in ("vanishing", "exploding"):
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
            "first": units[first].name if first is not None else None,
            "last": units[last].name if last is not None else None,
            "max_grad_rms": max_rms,
            "nonfinite": nonfinite,
            "nonfinite_layers": nonfinite_layers,
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
            "torch.nn.utils.clip_grad_norm_" if self.framework == "torch" else "the optimizer's clipnorm/global_clipnorm"
        )
        advice = {
            "nan": f"Lower the learning rate, clip gradients ({clip}), check the data and the loss for "
            "log(0) or division by zero.",
            "exploding": f"Clip gradients ({clip}), lower the learning rate, or reduce the init scale.",
            "vanishing": "The first layers barely learn: use ReLU-family activations with He init, add "
            "normalization or residual connections (`gradlint --dynamic` shows the same at init).",
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
                f"gradlint monitor: no plots ({exc}); pip install matplotlib", RuntimeWarning, stacklevel=_user_stacklevel()
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


def torch_execution_order(units: list[Unit], loss: Any) -> tuple[list[Unit], str]:
    """Units in forward execution order from ``loss``'s autograd graph; unused units dropped.

    Works after ``loss.backward()`` (the graph's nodes outlive their freed buffers). Falls
    back to registration order (``"registration"``) when there is no graph, or when a unit
    that has a gradient is missing from it (e.g. reentrant checkpointing hides parameters).
    """
    with_grad = [u for u in units if any(p.grad is not None for p in u.params)]
    fallback = (with_grad or units, "registration")
    root = getattr(loss, "grad_fn", None)
    if root is None or not hasattr(root, "_sequence_nr"):
        return fallback
    owner = {id(p): i for i, u in enumerate(units) for p in u.params}
    first: dict[int, int] = {}
    seen: set[Any] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        seq = node._sequence_nr()
        for nxt, _ in node.next_functions:
            if nxt is None:
                continue
            variable = getattr(nxt, "variable", None)  # AccumulateGrad: a leaf tensor
            if variable is not None:
                index = owner.get(id(variable))
                if index is not None and seq < first.get(index, seq + 1):
                    first[index] = seq
            elif nxt not in seen:
                stack.append(nxt)
    found = {id(units[i]) for i in first}
    if not found or any(id(u) not in found for u in with_grad):
        return fallback
    ordered = sorted(first, key=lambda i: (first[i], i))  # ties (one fused node): registration order
    return [units[i] for i in ordered], "autograd graph"


class GradientMonitor(MonitorCore):
    """Records per-layer gradient norms of a PyTorch model every ``every`` training steps.

    Call ``step(loss)`` once per optimizer step, after ``loss.backward()`` and before the next
    ``optimizer.zero_grad()``. ``optimizer.step()`` may come before or after it (it does not
    change ``.grad``). Call it before gradient clipping to see the raw gradients, after to see
    what the optimizer applies; with ``torch.amp.GradScaler`` call ``scaler.unscale_(optimizer)``
    first (scaled gradients are ~65536x too large, and the scaler's skipped inf steps would
    be reported as NaN/Inf).

    Steps are numbered from 0; steps 0, every, 2*every, ... are recorded. Alerts -- a
    ``GradientAlert`` warning (``LossPlateauAlert`` for plateaus), an entry in the record's
    ``alerts`` and ``on_alert(alert)`` -- are raised when a condition appears, not again while
    it persists. As a context manager it writes ``<plot_dir>/<model>-final.png`` on exit.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        every: int = 100,
        log_path: str | Path | None = "gradlint-monitor.jsonl",
        plot_dir: str | Path | None = None,
        vanishing_ratio: float = 1e-3,
        exploding_ratio: float = 1e3,
        plateau_window: int = 10,
        on_alert: Callable[[Alert], Any] | None = None,
        *,
        plateau_threshold: float = 0.01,
        exploding_grad_rms: float = 1e6,
        growth_ratio: float = 1e3,
        warn: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(
            framework="torch",
            every=every,
            log_path=log_path,
            plot_dir=plot_dir,
            vanishing_ratio=vanishing_ratio,
            exploding_ratio=exploding_ratio,
            exploding_grad_rms=exploding_grad_rms,
            growth_ratio=growth_ratio,
            plateau_window=plateau_window,
            plateau_threshold=plateau_threshold,
            on_alert=on_alert,
            warn=warn,
            name=name or type(model).__name__,
        )
        self.model = model
        self.steps = 0  # step() calls so far
        self.order_source: str | None = None  # 'autograd graph' | 'registration'
        self._units: list[Unit] | None = None
        self._param_count = -1

    def step(self, loss: Any = None) -> dict[str, Any] | None:
        """Count one training step; on recording steps measure and return the record."""
        step = self.steps
        self.steps = step + 1
        if step % self.every:
            return None
        return self._record(loss, step)

    def record(self, loss: Any = None) -> dict[str, Any]:
        """Record now, whatever the step count (e.g. after the last step)."""
        return self._record(loss, max(self.steps - 1, 0))

    def _record(self, loss: Any, step: int) -> dict[str, Any]:
        return self._finish(step, _loss_value(loss), self._layers(loss))

    @property
    def layers(self) -> list[str]:
        """Names of the monitored weight layers, in execution order (after the first record)."""
        return [u.name for u in self._units or []]

    def _layers(self, loss: Any) -> list[Unit]:
        # Re-discover when the set of trainable parameters changed (unfreezing, lazy modules).
        count = sum(1 for p in self.model.parameters() if p.requires_grad)
        if self._units is None or count != self._param_count:
            self._param_count = count
            self._units, self.order_source = torch_execution_order(_torch_units(self.model), loss)
        return self._units

    def close(self) -> None:
        """Write the final plot (when ``plot_dir`` is set). The log needs no closing."""
        self._final_plot()

    def __enter__(self) -> "GradientMonitor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _loss_value(loss: Any) -> float | None:
    if loss is None:
        return None
    if isinstance(loss, torch.Tensor):
        loss = loss.detach()
        return float(loss if loss.numel() == 1 else loss.float().mean())
    return float(loss)
