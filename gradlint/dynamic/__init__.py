"""Opt-in dynamic check: build each model in a subprocess and measure real gradients.

This package EXECUTES the user's model code (in a child process, see ``worker.py``).
Importing it must stay cheap: nothing here imports torch, keras or matplotlib; only the
worker subprocess does, and ``plot.py`` is imported lazily when a plot is asked for.

Public API (used by the CLI): ``InputHint``, ``DynamicTarget``, ``DynamicOptions``,
``LayerMeasurement``, ``DynamicResult``, ``run_dynamic``, ``render_results``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

__all__ = [
    "InputHint",
    "DynamicTarget",
    "DynamicOptions",
    "LayerMeasurement",
    "DynamicResult",
    "run_dynamic",
    "render_results",
]


@dataclass
class InputHint:
    """What the static pass knows about a model's input (per sample, no batch axis)."""

    kind: str  # 'features' | 'image' | 'tokens' | 'sequence' | 'unknown'
    # features (20,); image (3, 32, 32) for torch (channels first), (32, 32, 3) for keras
    # (channels last); sequence (T, F); tokens (T,)
    shape: tuple[int, ...] | None
    vocab: int | None = None  # tokens: ids are drawn below this

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "shape": list(self.shape) if self.shape else None, "vocab": self.vocab}


@dataclass
class DynamicTarget:
    """One model the static pass found, and how to build it."""

    path: str  # file to load
    model: str  # display name, e.g. "DeepSigmoidNet" or "model"
    line: int  # definition line (for output)
    kind: str  # 'class' (instantiate symbol()), 'factory' (call symbol()), 'variable' (module-level object)
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
    batch_size: int = 32
    model_args: dict[str, dict[str, Any]] = field(default_factory=dict)  # model name -> constructor kwargs
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # model name -> per-sample shape
    # Verdict thresholds on ratio = ‖∂L/∂W_first‖ / ‖∂L/∂W_last‖ (AUTOTRAINER: 1e-3 and 70).
    # Calibrated in docs/dynamic.md: healthy models measured up to ~33 (ResNet-50), chaotic
    # tanh nets from ~1.4e2; growth is capped by saturation, so explosion shows at smaller
    # ratios than vanishing does.
    vanishing_ratio: float = 1e-3
    exploding_ratio: float = 1e3
    # A layer whose gradient RMS (‖g‖/√numel) exceeds this is exploding whatever the ratio
    # (TheDeepChecker: mean |grad| > 1e6) -- catches nets whose forward pass blows up evenly.
    exploding_grad_rms: float = 1e6
    saturation_bound: float = 5.0  # |pre-activation| beyond this counts as saturated (DeepDiagnosis)
    symmetry_tol: float = 1e-6  # rows equal within tol * max|row| count as identical
    sequence_length: int = 16  # T when a sequence/token length is unknown
    image_size: int = 32  # spatial size when only the channel count is known
    plot_dir: str | None = None  # write <model>.png gradient-flow plots here
    progress: bool = False  # progress line on stderr (only when it is a TTY and >1 model)
    jobs: int = 1  # models measured concurrently (each still in its own subprocess)
    python: str | None = None  # interpreter for the worker; default: the running one
    # Linux: import torch/keras once in a server process and fork one child per model
    # (still one process per model); False: a fresh interpreter per model (~2-5 s each).
    fork_server: bool = True

    def thresholds_json(self) -> dict[str, float]:
        return {
            "vanishing_ratio": self.vanishing_ratio,
            "exploding_ratio": self.exploding_ratio,
            "exploding_grad_rms": self.exploding_grad_rms,
            "saturation_bound": self.saturation_bound,
            "symmetry_tol": self.symmetry_tol,
        }


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
            "finite": math.isfinite(self.grad_norm),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "LayerMeasurement":
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
        )


@dataclass
class DynamicResult:
    """Outcome for one target. ``to_json`` is what goes into the JSON report's ``dynamic`` list."""

    path: str
    model: str
    line: int
    status: str  # 'measured' | 'skipped' | 'failed'
    verdict: str | None = None  # 'vanishing' | 'exploding' | 'symmetric' | 'healthy'
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

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "model": self.model,
            "line": self.line,
            "status": self.status,
            "verdict": self.verdict,
            "ratio": _finite_or_none(self.ratio),
            "activation_ratio": _finite_or_none(self.activation_ratio),
            "layers": [layer.to_json() for layer in self.layers],
            "reason": self.reason,
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "input_kind": self.input_kind,
            "seeds": self.seeds,
            "seconds": self.seconds,
            "plot": self.plot,
        }


def run_dynamic(targets: Sequence[DynamicTarget], options: DynamicOptions | None = None) -> list[DynamicResult]:
    """Measure every target, each in its own subprocess; results come back in target order."""
    from gradlint.dynamic.runner import run_dynamic as _run

    return _run(targets, options or DynamicOptions())


def render_results(results: Sequence[DynamicResult], color: bool = False) -> str:
    """Terminal tables, one per model, with a log-scale bar per layer."""
    from gradlint.dynamic.render import render_results as _render

    return _render(results, color)
