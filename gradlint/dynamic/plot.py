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
from matplotlib.patches import Patch

from gradlint.dynamic.results import DynamicResult

MAX_WIDTH_IN = 14.0  # inches: ≈1,540 px at the 110 dpi the PNGs are saved with
MAX_NAMED_TICKS = 40  # more layers than this: numbered ticks, names in the text table
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

    count = len(layers)
    # A readable width whatever the depth: 0.35 in per bar up to 14 in (≈1,500 px at 110 dpi);
    # beyond ~40 layers the bars get thinner and only every step-th one is labelled.
    fig, ax = plt.subplots(figsize=(min(MAX_WIDTH_IN, max(6.0, 0.35 * count + 2)), 4.6))
    ax.bar(range(count), heights, color=colors, edgecolor="#333333" if count <= 80 else "none", linewidth=0.4,
           width=0.8 if count <= 80 else 1.0)
    for i, layer in enumerate(layers if count <= MAX_NAMED_TICKS else ()):  # wide plots: the legend says it
        if not math.isfinite(layer.grad_norm):
            ax.annotate("NaN/Inf", (i, floor), ha="center", va="bottom", fontsize=7, color="#c00000", rotation=90)
        elif layer.grad_norm == 0:
            ax.annotate("0", (i, floor), ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    if count <= MAX_NAMED_TICKS:
        ax.set_xticks(range(count))
        ax.set_xticklabels(names, rotation=70, ha="right", fontsize=7)
        ax.set_xlabel("weight layer, in execution order", fontsize=8)
    else:
        step = math.ceil(count / MAX_NAMED_TICKS)
        ticks = list(range(0, count, step))
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(i + 1) for i in ticks], fontsize=7)
        ax.set_xlabel(f"weight layer # in execution order ({count} layers; the text table names them)", fontsize=8)
    ax.set_xlim(-0.6, count - 0.4)
    handles = [Patch(facecolor=color, edgecolor="#333333", label=f"weight layer ({result.verdict or 'no verdict'})")]
    if any(layer.is_norm for layer in layers):
        handles.append(Patch(facecolor="#bbbbbb", edgecolor="#333333", label="normalization layer"))
    if any(not (math.isfinite(layer.grad_norm) and layer.grad_norm > 0) for layer in layers):
        handles.append(Patch(facecolor="white", edgecolor="#333333", label="0 or NaN/Inf: drawn at the floor"))
    ax.legend(handles=handles, fontsize=7, loc="best", framealpha=0.85)
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
