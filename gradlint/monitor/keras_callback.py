"""Keras 3 callback for ``model.fit`` on the torch backend (``KERAS_BACKEND=torch``).

Usage (see docs/monitor.md)::

    model.fit(x, y, callbacks=[GradientMonitorCallback(every=100, log_path="gradlint-monitor.jsonl")])

Where the gradients come from: Keras 3's torch ``train_step`` calls ``self.zero_grad()``
(gradients set to None), ``loss.backward()``, then hands ``[v.value.grad for v in
trainable_weights]`` to ``optimizer.apply``; it never clears them afterwards. So in
``on_train_batch_end`` every trainable variable's torch tensor (``variable.value``, an
``nn.Parameter``) still holds the gradient of that batch's loss: the callback reads ``.grad``
on recording batches and computes nothing extra -- no second forward or backward pass, no
wrapped dataset. The gradient is that of the loss Keras minimises (including regularisation
losses); with a ``LossScaleOptimizer`` (mixed precision) it is divided by the loss scale.
Clipping (``clipnorm`` ...) happens inside ``optimizer.apply`` on copies: the log shows the
raw gradients.

Because the callback overrides ``on_train_batch_end``, Keras calls the batch-end callbacks
synchronously (it dispatches them to a thread only when no user callback needs the batch),
which is what reading ``.grad`` before the next batch's ``zero_grad`` requires.

Layer order: the dynamic check's Keras layer discovery (``gradlint.dynamic.layers.keras_units``: one unit per layer
owning trainable variables, biases excluded), ordered by the backward pass of the first
recorded batch -- a one-off gradient hook on each weight records the order in which autograd
finishes them (the reverse of the forward order); the hooks are removed at that batch's end.

Loss: Keras' batch logs hold the running mean of the loss over the epoch. The record's
``loss`` is the mean batch loss since the previous record, recovered from those running
means (exact for equal batch sizes); ``loss_epoch_mean`` is Keras' own number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras  # type: ignore[import-untyped]
import torch

from gradlint.dynamic.layers import Unit, keras_units
from gradlint.monitor.common import Alert
from gradlint.monitor.core import MonitorCore, monitor_thresholds
from gradlint.verdict import Thresholds

__all__ = ["GradientMonitorCallback", "keras_execution_order"]


def keras_execution_order(units: list[Unit], fired: list[int]) -> list[Unit]:
    """Units sorted by forward order, given the order their gradient hooks fired in backward.

    A unit's forward position is its last firing (its earliest use in forward is finished
    last in backward). Units whose hooks never fired did not take part: dropped. No firing at
    all: the discovery order (``model._flatten_layers``: topological for Sequential and
    functional models) is kept.
    """
    last: dict[int, int] = {}
    for position, index in enumerate(fired):
        last[index] = position
    if not last:
        return units
    return [units[i] for i in sorted(last, key=lambda i: -last[i])]


def _loss_scale(model: Any) -> float:
    """The LossScaleOptimizer's current scale (1.0 without one)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "scale_loss"):
        return 1.0
    try:
        scale = float(keras.ops.convert_to_numpy(optimizer.scale_loss(keras.ops.convert_to_tensor(1.0))))
    except Exception:  # noqa: BLE001 -- never let the monitor break training
        return 1.0
    return scale if math.isfinite(scale) and scale > 0 else 1.0


class GradientMonitorCallback(keras.callbacks.Callback):
    """Records per-layer gradient norms inside ``model.fit`` every ``every`` batches.

    Same records, alerts, thresholds and plateau rule as ``GradientMonitor``. Batches are
    counted across epochs and across ``fit`` calls from 0; batches 0, every, 2*every, ... are
    recorded. ``stop_on_nan=True`` sets ``model.stop_training`` when NaN/Inf appears.
    """

    def __init__(
        self,
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
        stop_on_nan: bool = False,
    ) -> None:
        super().__init__()
        self.core = MonitorCore(
            framework="keras",
            every=every,
            log_path=log_path,
            plot_dir=plot_dir,
            thresholds=monitor_thresholds(vanishing_ratio, exploding_ratio, thresholds),
            growth_ratio=growth_ratio,
            plateau_window=plateau_window,
            plateau_threshold=plateau_threshold,
            on_alert=on_alert,
            warn=warn,
            name=name,
        )
        self.every = every
        self.stop_on_nan = stop_on_nan
        self._units: list[Unit] | None = None
        self._hooks: list[Any] = []
        self._fired: list[int] = []
        self._units_pending: list[Unit] | None = None
        self._epoch = 0
        self._epoch_start = 0  # self.steps when the epoch began
        self._loss_base = 0.0  # sum of batch losses of the finished epochs of this fit
        self._previous: tuple[float, int] | None = None  # (cumulative loss sum, steps) at the last record

    # Shared state, for users and tests.
    latest = property(lambda self: self.core.latest)
    history = property(lambda self: self.core.history)
    alerts = property(lambda self: self.core.alerts)
    flags = property(lambda self: self.core.flags)

    @property
    def steps(self) -> int:
        """Batches seen, over all epochs and fit calls."""
        return self.core.steps

    @property
    def layers(self) -> list[str]:
        return [u.name for u in self._units or []]

    def plot(self, path: str | Path) -> str:
        """The dynamic check's gradient-flow PNG for the latest record."""
        return self.core.plot(path)

    # -- Keras hooks ----------------------------------------------------------------------

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        backend = keras.config.backend()
        if backend != "torch":
            raise RuntimeError(
                f"GradientMonitorCallback reads torch gradients: it needs KERAS_BACKEND=torch (got {backend!r})"
            )
        if self.core.name is None:
            self.core.name = self.model.name
        self._units = None  # trainable weights may have changed since the last fit
        self._loss_base = 0.0
        self._previous = (0.0, self.steps - 1)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        self._epoch_start = self.steps

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        mean = (logs or {}).get("loss")
        batches = self.steps - self._epoch_start
        if mean is not None and math.isfinite(mean):
            self._loss_base += batches * float(mean)
        else:  # a NaN mean would poison every later interval: start counting afresh
            self._loss_base = 0.0
            self._previous = None

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._units is None and self.steps % self.every == 0:
            self._arm_order_hooks()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step = self.core.tick()
        if step is not None:
            self._record(step, batch, logs or {})

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._disarm()
        self.core._final_plot()

    # -- internals ------------------------------------------------------------------------

    def _arm_order_hooks(self) -> None:
        self._disarm()
        units = keras_units(self.model)
        if not units:  # not built yet: order falls back to discovery order at batch end
            return
        self._units_pending = units
        self._fired = []
        for index, unit in enumerate(units):
            for p in unit.params:
                if isinstance(p, torch.Tensor) and p.requires_grad:
                    self._hooks.append(p.register_hook(self._make_hook(index)))

    def _make_hook(self, index: int) -> Callable[[torch.Tensor], None]:
        fired = self._fired

        def hook(grad: torch.Tensor) -> None:
            fired.append(index)

        return hook

    def _disarm(self) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks = []

    def _discover(self) -> list[Unit]:
        pending = self._units_pending
        self._disarm()
        if pending is not None and self._fired:
            units = keras_execution_order(pending, self._fired)
        else:
            units = keras_units(self.model)
        self._units_pending = None
        self._fired = []
        return units

    def _record(self, step: int, batch: int, logs: dict[str, Any]) -> None:
        if self._units is None:
            self._units = self._discover()
        running = logs.get("loss")
        running = float(running) if running is not None else None
        loss = running
        if running is not None and math.isfinite(running):
            # Keras logs the epoch's running mean; (batch + 1) * mean is the sum of this
            # epoch's batch losses, and differences of these sums give the interval mean.
            cumulative = self._loss_base + (batch + 1) * running
            if self._previous is not None and step > self._previous[1]:
                loss = (cumulative - self._previous[0]) / (step - self._previous[1])
            self._previous = (cumulative, step)
        extra = {"epoch": self._epoch, "batch": batch, "loss_epoch_mean": running}
        record = self.core._finish(step, loss, self._units, grad_scale=_loss_scale(self.model), extra=extra)
        if self.stop_on_nan and "nan" in record["flags"]:
            self.model.stop_training = True
