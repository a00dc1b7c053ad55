"""Gradient-flow plot per model: one bar per weight layer, log scale. Needs matplotlib.

Imported lazily (only when ``plot_dir`` is set), so the rest of gradlint never pays for it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never open a window (and no display is needed)
import matplotlib.pyplot as plt

from gradlint.dynamic.results import DynamicResult

_VERDICT_COLORS = {"healthy": "#2a9d8f", "vanishing": "#e9c46a", "exploding": "#e76f51", "symmetric": "#9b5de5"}


def plot_filename(result: DynamicResult) -> str:
    """`<file stem>.<model>.png`, safe for any filesystem; the stem keeps same-named models apart."""
    stem = Path(result.path).stem
    raw = f"{stem}.{result.model}" if result.model != stem else stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", raw) + ".png"


def plot_result(result: DynamicResult, plot_dir: str) -> str:
    """Write the PNG for one measured result; return its path."""
    layers = result.layers
    names = [layer.name for layer in layers]
    # Zero and non-finite norms cannot sit on a log axis: draw them at the floor, marked.
    finite = [layer.grad_norm for layer in layers if math.isfinite(layer.grad_norm) and layer.grad_norm > 0]
    floor = min(finite) / 10 if finite else 1e-12
    heights = [layer.grad_norm if math.isfinite(layer.grad_norm) and layer.grad_norm > 0 else floor for layer in layers]
    color = _VERDICT_COLORS.get(result.verdict or "", "#888888")
    colors = ["#bbbbbb" if layer.is_norm else color for layer in layers]

    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(layers) + 2), 4.2))
    ax.bar(range(len(layers)), heights, color=colors, edgecolor="#333333", linewidth=0.4)
    for i, layer in enumerate(layers):
        if not math.isfinite(layer.grad_norm):
            ax.annotate("NaN/Inf", (i, floor), ha="center", va="bottom", fontsize=7, color="#c00000", rotation=90)
        elif layer.grad_norm == 0:
            ax.annotate("0", (i, floor), ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels(names, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("‖∂L/∂W‖ (median over seeds)")
    ratio = "n/a" if result.ratio is None else f"{result.ratio:.2e}"
    ax.set_title(
        f"{result.model} ({Path(result.path).name}:{result.line}) — {result.verdict}, first/last ratio {ratio}",
        fontsize=9,
    )
    ax.grid(axis="y", which="major", alpha=0.3)
    fig.tight_layout()
    out = Path(plot_dir) / plot_filename(result)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return str(out)
