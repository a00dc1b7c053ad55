"""The dynamic check's data: targets, options, per-layer measurements and results.

Pure Python (no torch): the parent process, the renderers, the monitor and the CLI share
these types; the worker subprocess produces their JSON form.
"""

from __future__ import annotations

import math
from dataclasses import field
from typing import Any

from gradlint.model import InputHint
from gradlint.records import dataclass
from gradlint.verdict import PROBLEMS, Thresholds

__all__ = ["DynamicOptions", "DynamicResult", "DynamicTarget", "InputHint", "LayerMeasurement", "hint_json"]


def hint_json(hint: InputHint | None) -> dict[str, Any] | None:
    """The worker's JSON form of an input hint."""
    if hint is None:
        return None
    return {"kind": hint.kind, "shape": list(hint.shape) if hint.shape else None, "vocab": hint.vocab}


@dataclass
class DynamicTarget:
    """One model the static pass found, and how to build it."""

    path: str  # file to load
    model: str  # display name, e.g. "DeepSigmoidNet" or "model"
    line: int  # definition line (for output)
    # 'class' (instantiate symbol()), 'factory' (call symbol()), 'variable' (module-level object),
    # 'script' (a raw-tensor script run up to its first backward; symbol: the variable holding its output)
    kind: str
    symbol: str  # name to look up in the loaded module namespace
    framework: str  # 'torch' | 'keras'
    input_hint: InputHint | None = None
    # 'variable' targets in script-style files: the last top-level line that builds the model.
    # Top-level statements after it (e.g. ``model.fit(...)``) are not run.
    end_line: int | None = None


@dataclass
class DynamicOptions:
    """Knobs of the dynamic check. Threshold sources are in docs/dynamic.md."""

    timeout: float = 60.0  # seconds per model (all seeds together), wall clock
    memory_mb: int = 4096  # address-space cap of each worker (RLIMIT_AS); 0 disables it
    seeds: int = 3  # models are built and measured once per seed; numbers are medians
    # None: 128 (the protocol's) for inputs of up to 4096 values per sample, 32 above (worker.batch_size)
    batch_size: int | None = None
    model_args: dict[str, dict[str, Any]] = field(default_factory=dict)  # model name -> constructor kwargs
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # model name -> per-sample shape
    # The measurement protocol's thresholds (gradlint.verdict; sources in docs/dynamic.md).
    thresholds: Thresholds = field(default_factory=Thresholds)
    sequence_length: int = 16  # T when a sequence/token length is unknown
    image_size: int = 32  # spatial size when only the channel count is known
    plot_dir: str | None = None  # write <model>.png gradient-flow plots here
    progress: bool = False  # progress line on stderr (only when it is a TTY and >1 model)
    jobs: int = 1  # models measured concurrently (each still in its own subprocess)
    python: str | None = None  # interpreter for the worker; default: the running one
    # Linux: import torch/keras once in a server process and fork one child per model
    # (still one process per model); False: a fresh interpreter per model (~2-5 s each).
    fork_server: bool = True

    def __post_init__(self) -> None:
        """Every limit in its range (gradlint.limits): a bad one is a ValueError, never rounded."""
        from gradlint.limits import limit_error

        checks = [("timeout", self.timeout), ("seeds", self.seeds),
                  ("jobs", self.jobs), ("sequence-length", self.sequence_length), ("image-size", self.image_size)]
        if self.batch_size is not None:  # None: chosen per input (worker.batch_size)
            checks.append(("batch-size", self.batch_size))
        if self.memory_mb != 0:  # 0: no memory cap (the API's explicit opt-out)
            checks.append(("memory-mb", self.memory_mb))
        for key, value in checks:
            problem = limit_error(key, value)
            if problem is not None:
                raise ValueError(problem)

    def thresholds_json(self) -> dict[str, float]:
        return self.thresholds.to_json()


def _finite_or_none(value: float | None) -> float | None:
    # JSON has no NaN/Infinity; non-finite numbers become null (the verdict says why).
    if value is None or not math.isfinite(value):
        return None
    return value


@dataclass
class LayerMeasurement:
    """One weight layer, in execution order. Norms are medians over seeds."""

    name: str  # module path (torch) or layer name (keras)
    kind: str  # class name, e.g. "Linear", "Conv2d", "Dense"
    grad_norm: float  # ‖∂L/∂W‖ over the layer's weights (biases excluded)
    weight_norm: float  # ‖W‖ over the same tensors
    relative_grad: float  # grad_norm / weight_norm
    saturation: float | None  # share of sigmoid/tanh pre-activations beyond ±saturation_bound
    dead_fraction: float | None  # share of ReLU units that are zero for the whole batch
    # ‖∂L/∂y‖ of the layer's output y (batch-summed loss gradient wrt the pre-activation):
    # the activation gradient the mean-field estimate ∏√χ is about; None if not captured.
    output_grad_norm: float | None = None
    is_norm: bool = False  # normalization layer (never first/last for the ratio)
    symmetric: bool = False  # identical weight rows and gradient rows (hidden layers only)
    # False: no gradient at all reached it (autograd left it unset: not connected to the loss)
    connected: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "grad_norm": _finite_or_none(self.grad_norm),
            "weight_norm": _finite_or_none(self.weight_norm),
            "relative_grad": _finite_or_none(self.relative_grad),
            "output_grad_norm": _finite_or_none(self.output_grad_norm),
            "saturation": self.saturation,
            "dead_fraction": self.dead_fraction,
            "is_norm": self.is_norm,
            "symmetric": self.symmetric,
            "connected": self.connected,
            "finite": math.isfinite(self.grad_norm),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LayerMeasurement:
        def num(key: str) -> float:
            value = data.get(key)
            return float("nan") if value is None else float(value)

        return cls(
            name=str(data["name"]),
            kind=str(data.get("kind", "")),
            grad_norm=num("grad_norm"),
            weight_norm=num("weight_norm"),
            relative_grad=num("relative_grad"),
            output_grad_norm=data.get("output_grad_norm"),
            saturation=data.get("saturation"),
            dead_fraction=data.get("dead_fraction"),
            is_norm=bool(data.get("is_norm", False)),
            symmetric=bool(data.get("symmetric", False)),
            connected=bool(data.get("connected", True)),
        )


@dataclass
class DynamicResult:
    """Outcome for one target. ``to_json`` is what goes into the JSON report's ``dynamic`` list."""

    path: str
    model: str
    line: int
    status: str  # 'measured' | 'skipped' | 'failed'
    verdict: str | None = None  # gradlint.verdict.LABELS: vanishing/exploding/symmetric/healthy/borderline
    # ‖∂L/∂W_first‖ / ‖∂L/∂W_last‖: weight gradients of the first and last non-normalization
    # weight layers in execution order, median over seeds.
    ratio: float | None = None
    layers: list[LayerMeasurement] = field(default_factory=list)
    reason: str | None = None  # why skipped/failed, or what decided the verdict
    # (fields above keep the documented positional order; extras below)
    # The same ratio on the layers' output gradients ‖∂L/∂y‖ (activation gradients), the
    # quantity the static estimate ∏√χ predicts; weight gradients also scale with activations.
    activation_ratio: float | None = None
    input_shape: tuple[int, ...] | None = None  # the synthetic batch's full shape
    input_kind: str | None = None
    seeds: int = 0
    seconds: float | None = None  # wall time of the worker
    plot: str | None = None  # PNG written for this model, if any
    # The protocol's other two quantities (gradlint.verdict), medians over seeds: the loss
    # (MSE to N(0, 1) targets), ‖∂L/∂θ‖/‖θ‖ over every trainable tensor, the first weight
    # layer's ‖∂W‖/‖W‖; and the saturation/dead-unit evidence shown with the verdict.
    loss: float | None = None
    relative_grad: float | None = None
    first_relative_grad: float | None = None
    evidence: list[str] = field(default_factory=list)

    @property
    def problem(self) -> bool:
        """A measured problem: vanishing, exploding or symmetric (``gradlint.verdict.PROBLEMS``)."""
        return self.status == "measured" and self.verdict in PROBLEMS

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "model": self.model,
            "line": self.line,
            "status": self.status,
            "verdict": self.verdict,
            "ratio": _finite_or_none(self.ratio),
            "activation_ratio": _finite_or_none(self.activation_ratio),
            "loss": _finite_or_none(self.loss),
            "relative_grad": _finite_or_none(self.relative_grad),
            "first_relative_grad": _finite_or_none(self.first_relative_grad),
            "evidence": list(self.evidence),
            "layers": [layer.to_json() for layer in self.layers],
            "reason": self.reason,
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "input_kind": self.input_kind,
            "seeds": self.seeds,
            "seconds": self.seconds,
            "plot": self.plot,
        }
