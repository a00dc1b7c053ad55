"""Training monitor: per-layer gradient norms during real training runs (opt-in).

Two front ends share one core:

- ``GradientMonitor`` (``gradlint.monitor.torch_monitor``): call ``monitor.step(loss)`` after
  ``loss.backward()`` in a PyTorch loop, or use it as a context manager;
- ``GradientMonitorCallback`` (``gradlint.monitor.keras_callback``): a Keras 3 callback for
  ``model.fit`` on the torch backend.

Every ``every`` steps they record the gradient norm of each weight layer (in execution order,
found with the dynamic check's layer discovery), the first/last ratio, NaN/Inf, raise an alert
when vanishing / exploding / NaN gradients or a loss plateau appear, and write one JSON object
per recorded step to a JSON-lines log. Between recordings they only count steps.

Importing this package is cheap: it imports neither torch, keras nor matplotlib; the two
front ends are loaded on first access (``gradlint.monitor.GradientMonitor``). See
docs/monitor.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gradlint.monitor.common import (
    Alert,
    GradientAlert,
    LossPlateauAlert,
    PlateauDetector,
    plot_record,
    read_log,
)

__all__ = [
    "Alert",
    "GradientAlert",
    "GradientMonitor",
    "GradientMonitorCallback",
    "LossPlateauAlert",
    "PlateauDetector",
    "plot_record",
    "read_log",
]

if TYPE_CHECKING:  # pragma: no cover
    from gradlint.monitor.keras_callback import GradientMonitorCallback
    from gradlint.monitor.torch_monitor import GradientMonitor


_FRONT_ENDS = {"GradientMonitor": "torch_monitor", "GradientMonitorCallback": "keras_callback"}


def __getattr__(name: str) -> Any:
    # Lazy: importing gradlint.monitor must not import torch or keras.
    if name not in _FRONT_ENDS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    try:
        module = importlib.import_module(f"{__name__}.{_FRONT_ENDS[name]}")
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing == "tensorflow":  # Keras 3 defaults to the TensorFlow backend
            raise ImportError(f"gradlint.monitor.{name} runs Keras on the torch backend: set "
                              f"KERAS_BACKEND=torch before keras is imported", name=missing) from None
        if missing not in ("torch", "keras"):
            raise
        # One line that says what to do, instead of a traceback ending in torch's absence.
        raise ImportError(f"gradlint.monitor.{name} needs {missing}, which is not installed: "
                          f"pip install -e '.[dynamic]' (torch, keras, matplotlib)", name=missing) from None
    return getattr(module, name)
