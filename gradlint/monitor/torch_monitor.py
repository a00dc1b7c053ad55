"""PyTorch training monitor.

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
the weights), a record is built and judged (``gradlint.monitor.core``), and one line is
appended to the log.

Layers are the dynamic check's weight layers (``gradlint.dynamic.layers.torch_units``:
one per module owning parameters, biases kept apart, raw parameters one each, norm layers
marked). Their execution order -- which the dynamic check finds with a TorchFunctionMode
during a forward pass it runs itself -- is read here, without running anything, from the
autograd graph of the first recorded loss: each parameter's position is the sequence number
of the first graph node that consumed it (autograd numbers nodes in creation order, i.e. the
order of the forward pass). Without a loss tensor the registration order is used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gradlint.dynamic.layers import Unit, torch_units
from gradlint.monitor.common import Alert
from gradlint.monitor.core import MonitorCore, monitor_thresholds
from gradlint.verdict import Thresholds

__all__ = ["GradientMonitor", "torch_execution_order"]


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

    Verdicts and thresholds are the dynamic check's (``gradlint.verdict``; ``thresholds``
    replaces them all, ``vanishing_ratio``/``exploding_ratio`` the two ratio bounds), plus the
    monitor's own jump rule (``growth_ratio``) and the loss plateau.

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
        vanishing_ratio: float | None = None,
        exploding_ratio: float | None = None,
        plateau_window: int = 10,
        on_alert: Callable[[Alert], Any] | None = None,
        *,
        plateau_threshold: float = 0.01,
        thresholds: Thresholds | None = None,
        growth_ratio: float = 1e3,
        warn: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(
            framework="torch",
            every=every,
            log_path=log_path,
            plot_dir=plot_dir,
            thresholds=monitor_thresholds(vanishing_ratio, exploding_ratio, thresholds),
            growth_ratio=growth_ratio,
            plateau_window=plateau_window,
            plateau_threshold=plateau_threshold,
            on_alert=on_alert,
            warn=warn,
            name=name or type(model).__name__,
        )
        self.model = model
        self.order_source: str | None = None  # 'autograd graph' | 'registration'
        self._units: list[Unit] | None = None
        self._param_count = -1

    def step(self, loss: Any = None) -> dict[str, Any] | None:
        """Count one training step; on recording steps measure and return the record."""
        step = self.tick()
        return None if step is None else self._record(loss, step)

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
            self._units, self.order_source = torch_execution_order(torch_units(self.model), loss)
        return self._units

    def close(self) -> None:
        """Write the final plot (when ``plot_dir`` is set). The log needs no closing."""
        self._final_plot()

    def __enter__(self) -> GradientMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _loss_value(loss: Any) -> float | None:
    if loss is None:
        return None
    if isinstance(loss, torch.Tensor):
        loss = loss.detach()
        return float(loss if loss.numel() == 1 else loss.float().mean())
    return float(loss)
