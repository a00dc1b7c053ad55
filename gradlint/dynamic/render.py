"""Terminal rendering of dynamic results: one table per model, a log-scale bar per layer.

Pure text; no torch, no matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from gradlint.dynamic.results import DynamicResult, LayerMeasurement

BAR_WIDTH = 28
_EIGHTHS = " ▏▎▍▌▋▊▉█"

_COLORS = {
    "healthy": "32",  # green
    "vanishing": "33",  # yellow
    "exploding": "31",  # red
    "symmetric": "35",  # magenta
    "borderline": "36",  # cyan
    "failed": "31",
    "skipped": "2",  # dim
}


def _paint(text: str, code: str | None, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color and code else text


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf"
    if value == 0:
        return "0"
    return f"{value:.1e}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _decades(layers: Sequence[LayerMeasurement]) -> tuple[int, int]:
    """Whole decades spanning the finite positive gradient norms."""
    logs = [math.log10(x.grad_norm) for x in layers if math.isfinite(x.grad_norm) and x.grad_norm > 0]
    if not logs:
        return -1, 0
    lo, hi = math.floor(min(logs)), math.ceil(max(logs))
    return lo, max(hi, lo + 1)


def bar(value: float, lo: int, hi: int, width: int = BAR_WIDTH) -> str:
    """Bar whose length is log10(value) placed between the decades lo and hi, in eighths."""
    if not math.isfinite(value):
        return "!" * width
    if value <= 0:
        return ""
    share = (math.log10(value) - lo) / (hi - lo)
    eighths = max(1, round(min(max(share, 0.0), 1.0) * width * 8))  # a positive gradient always shows
    full, rest = divmod(eighths, 8)
    return ("█" * full + (_EIGHTHS[rest] if rest else "")).ljust(width)


def _title(result: DynamicResult, color: bool) -> str:
    state = result.verdict if result.status == "measured" else result.status
    label = _paint(f"{(state or '?').upper()}", _COLORS.get(state or ""), color)
    head = f"{_paint(result.model, '1', color)}  {result.path}:{result.line}  {label}"
    if result.status != "measured":
        return f"{head}  {result.reason or ''}".rstrip()
    seeds = f"{result.seeds} seed{'s' if result.seeds != 1 else ''}"
    ratio = f"  ratio {_num(result.ratio)} (‖∂L/∂W‖ first/last, median of {seeds})"
    return head + ratio


def render_result(result: DynamicResult, color: bool = False) -> str:
    lines = [_title(result, color)]
    if result.status != "measured":
        return "\n".join(lines)
    if result.reason:
        lines.append(f"  {result.reason}")
    quantities = [f"loss {_num(result.loss)}"] if result.loss is not None else []
    if result.relative_grad is not None:
        quantities.append(f"‖∂L/∂θ‖/‖θ‖ {_num(result.relative_grad)}")
    if result.first_relative_grad is not None:
        quantities.append(f"first layer ‖∂W‖/‖W‖ {_num(result.first_relative_grad)}")
    if quantities:
        lines.append("  " + ", ".join(quantities))
    lines.extend(f"  evidence: {line}" for line in result.evidence)
    if result.input_shape:
        lines.append(f"  input: {result.input_kind or 'features'} batch {tuple(result.input_shape)},"
                     " loss: MSE to N(0,1) targets")
    if result.plot:
        lines.append(f"  plot: {result.plot}")
    if not result.layers:
        return "\n".join(lines)
    lo, hi = _decades(result.layers)
    name_w = min(max(len(x.name) for x in result.layers), 32)
    kind_w = min(max(len(x.kind) for x in result.layers), 20)
    scale = f"1e{lo:+d}".ljust(BAR_WIDTH - 5) + f"1e{hi:+d}"
    header = (
        f"  {'#':>3}  {'layer':<{name_w}}  {'kind':<{kind_w}}  {'‖∂L/∂W‖':>8}  {scale}  "
        f"{'‖W‖':>8}  {'‖∂W‖/‖W‖':>8}  {'sat':>4}  {'dead':>4}"
    )
    lines.append(_paint(header, "2", color))
    bar_color = _COLORS.get(result.verdict or "")
    for i, layer in enumerate(result.layers, 1):
        name = layer.name if len(layer.name) <= name_w else "…" + layer.name[-(name_w - 1):]
        cells = bar(layer.grad_norm, lo, hi).ljust(BAR_WIDTH)
        painted = _paint(cells, "2" if layer.is_norm else bar_color, color)
        flag = "  ≡ symmetric" if layer.symmetric else ("  (norm)" if layer.is_norm else "")
        if not layer.connected:
            flag += "  ⊘ no gradient (not connected to the loss)"
        lines.append(
            f"  {i:>3}  {name:<{name_w}}  {layer.kind[:kind_w]:<{kind_w}}  {_num(layer.grad_norm):>8}  {painted}  "
            f"{_num(layer.weight_norm):>8}  {_num(layer.relative_grad):>8}  {_pct(layer.saturation):>4}  "
            f"{_pct(layer.dead_fraction):>4}{flag}"
        )
    return "\n".join(lines)


def render_results(results: Sequence[DynamicResult], color: bool = False) -> str:
    if not results:
        return "gradlint dynamic: no models to measure"
    blocks = [render_result(r, color) for r in results]
    counts: dict[str, int] = {}
    for r in results:
        key = r.verdict if r.status == "measured" and r.verdict else r.status
        counts[key] = counts.get(key, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    plots = [r.plot for r in results if r.plot]
    where = ""
    if plots:  # --plot DIR: say where the PNGs went
        directories = sorted({str(Path(p).parent) for p in plots})
        where = f"; {len(plots)} plot{'s' if len(plots) != 1 else ''} written to {', '.join(directories)}"
    return "\n\n".join(blocks) + (f"\n\ngradlint dynamic: {len(results)} model{'s' if len(results) != 1 else ''}: "
                                  f"{summary}{where}")
