"""Opt-in dynamic check: build each model in a subprocess and measure real gradients.

This package EXECUTES the user's model code (in a child process, see ``worker.py``).
Importing it must stay cheap: nothing here imports torch, keras or matplotlib; only the
worker subprocess does, and ``plot.py`` is imported lazily when a plot is asked for.

Public API: the types in ``results`` (``InputHint``, ``DynamicTarget``, ``DynamicOptions``,
``LayerMeasurement``, ``DynamicResult``), ``run_dynamic`` and ``render_results``. The
verdict and its thresholds are ``gradlint.verdict`` (pure Python, shared with the monitor);
the weight-layer discovery the monitor reuses is ``gradlint.dynamic.layers`` (imports torch).

Submodules never import this package's ``__init__``: they import ``results`` (and each other)
directly, so the import graph has no cycle.
"""

from __future__ import annotations

from collections.abc import Sequence

from gradlint.dynamic.results import (
    DynamicOptions,
    DynamicResult,
    DynamicTarget,
    InputHint,
    LayerMeasurement,
)

__all__ = [
    "DynamicOptions",
    "DynamicResult",
    "DynamicTarget",
    "InputHint",
    "LayerMeasurement",
    "render_results",
    "run_dynamic",
]


def run_dynamic(targets: Sequence[DynamicTarget], options: DynamicOptions | None = None) -> list[DynamicResult]:
    """Measure every target, each in its own subprocess; results come back in target order."""
    from gradlint.dynamic.runner import (
        run_dynamic as _run,  # subprocess machinery: only when used
    )

    return _run(targets, options or DynamicOptions())


def render_results(results: Sequence[DynamicResult], color: bool = False) -> str:
    """Terminal tables, one per model, with a log-scale bar per layer."""
    from gradlint.dynamic.render import render_results as _render

    return _render(results, color)
