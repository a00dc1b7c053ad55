"""The monitor's framework-neutral parts: alerts, the loss-plateau rule, the log, plots.

Pure Python (no torch, keras or matplotlib at import): ``gradlint.monitor`` re-exports these,
and both front ends (``torch_monitor``, ``keras_callback``) build on them.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import deque
from dataclasses import field
from pathlib import Path
from typing import Any

from gradlint.records import dataclass

__all__ = ["Alert", "GradientAlert", "LossPlateauAlert", "PlateauDetector", "plot_record", "read_log"]


class GradientAlert(UserWarning):
    """Warning category of every monitor alert: vanishing, exploding, NaN/Inf, loss plateau.

    Silence them with ``warnings.simplefilter("ignore", GradientAlert)``, turn them into
    exceptions with ``"error"``.
    """


class LossPlateauAlert(GradientAlert):
    """The loss stopped improving (a subclass, so it can be silenced on its own)."""


@dataclass
class Alert:
    """What ``on_alert`` receives: one condition that appeared at a recorded step."""

    kind: str  # 'vanishing' | 'exploding' | 'nan' | 'plateau'
    step: int
    message: str
    record: dict[str, Any] = field(repr=False, default_factory=dict)  # the full log record of that step

    @property
    def category(self) -> type[GradientAlert]:
        return LossPlateauAlert if self.kind == "plateau" else GradientAlert


class PlateauDetector:
    """The loss-plateau rule: Keras EarlyStopping's patience, on a rolling median.

    After each recorded loss, ``median`` is the median of the last ``window // 2`` finite
    recorded losses (a median, so single noisy batches do not count). It is an improvement
    when it is below ``best - threshold * |best|``; then ``best`` becomes it. A plateau is
    ``window`` records in a row without an improvement; it ends at the next improvement.
    Non-finite losses are skipped (NaN has its own alert).
    """

    def __init__(self, window: int, threshold: float) -> None:
        if window < 2:
            raise ValueError(f"plateau_window must be >= 2 recorded steps, got {window!r}")
        self.window = int(window)
        self.threshold = float(threshold)
        self.half = self.window // 2
        self._recent: deque[float] = deque(maxlen=self.half)
        self.median: float | None = None
        self.best: float | None = None
        self.best_step: int | None = None
        self.since = 0  # records since the last improvement
        self.active = False

    def update(self, loss: float | None, step: int) -> bool:
        """Feed one recorded loss; return whether the loss is on a plateau now."""
        if loss is None or not math.isfinite(loss):
            return self.active
        self._recent.append(float(loss))
        if len(self._recent) < self.half:
            return False
        self.median = statistics.median(self._recent)
        if self.best is None or self.median < self.best - self.threshold * abs(self.best):
            self.best, self.best_step, self.since, self.active = self.median, step, 0, False
        else:
            self.since += 1
            self.active = self.since >= self.window
        return self.active

    def state(self) -> dict[str, Any]:
        return {"median": self.median, "best": self.best, "best_step": self.best_step, "since": self.since}


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a monitor's JSON-lines log, in order (blank lines ignored)."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def plot_record(record: dict[str, Any], path: str | Path) -> str:
    """Write the dynamic check's gradient-flow PNG for one log record; return the path.

    Works on a record read back from a log (``read_log``) as well as on ``monitor.latest``.
    Needs matplotlib (imported here, on first use). The plot is
    ``gradlint.dynamic.plot.plot_result`` unchanged: this adapter turns the record into a
    ``DynamicResult`` (title "<model> (step:<N>) — <verdict>, first/last ratio ...") and moves
    the file, which ``plot_result`` names after the model, to ``path``.
    """
    import os
    import tempfile

    from gradlint.dynamic.plot import plot_result
    from gradlint.dynamic.results import DynamicResult, LayerMeasurement

    def number(value: Any) -> float | None:
        return None if value is None else float(value)

    ratio = number(record.get("ratio"))
    result = DynamicResult(
        path="step",
        model=str(record.get("model") or "model"),
        line=int(record.get("step", 0)),
        status="measured",
        verdict=record.get("verdict"),
        ratio=ratio,
        layers=[LayerMeasurement.from_json(layer) for layer in record.get("layers", [])],
        reason=record.get("reason"),
        seeds=1,
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        os.replace(plot_result(result, tmp), target)
    return str(target)
