"""Message helpers shared by the gradient rules (not a rule: no Rule subclass here).

Messages follow the estimate: they name the quantity that decided (the first/last ratio, the
loss at init, float32 overflow, the relative gradient of a frozen first layer, a dead head),
with its number, and only recommend what the estimate says helps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from gradlint.analysis.inits import describe_inits
from gradlint.analysis.triage import Diagnosis
from gradlint.analysis.units import Unit
from gradlint.estimate import FLOAT32_MAX_LOG10, approx, format_ratio
from gradlint.gradflow.chain import WeightLayer
from gradlint.gradflow.propagate import Block, Norm
from gradlint.model import Span
from gradlint.rule import RuleOptions, Severity


def run_span(units: list[Unit]) -> Span:
    first, last = units[0].layer.span, units[-1].layer.span
    if (last.end_line, last.end_col) < (first.line, first.col):
        # The last layer was built before the first (a helper defined earlier): point at the first.
        return first
    return Span(first.line, first.col, last.end_line, last.end_col)


def severity_for(log10_ratio: float, options: RuleOptions) -> Severity:
    return Severity.ERROR if abs(log10_ratio) >= options.error_log10 else Severity.WARNING


def diagnosis_severity(diagnosis: Diagnosis, options: RuleOptions) -> Severity:
    """Error when training cannot recover: the ratio beyond error-log10, inf/NaN, a dead output,
    a loss ≥ 1e12, ‖∂L/∂θ‖/‖θ‖ ≥ 1e8 or a first layer frozen below 1e-10 of its weights."""
    e = diagnosis.estimate
    criterion = diagnosis.criterion
    if criterion in ("nonfinite", "dead_output"):
        return Severity.ERROR
    if criterion == "loss" and e.log10_loss is not None:
        return Severity.ERROR if e.log10_loss >= 12 else Severity.WARNING
    if criterion == "relative_grad" and e.log10_relative_grad is not None:
        return Severity.ERROR if e.log10_relative_grad >= 8 else Severity.WARNING
    if criterion == "frozen" and e.log10_first_relative_grad is not None:
        return Severity.ERROR if e.log10_first_relative_grad <= -10 else Severity.WARNING
    return severity_for(e.log10_weight_ratio, options)


def activations_text(units: list[Unit]) -> str:
    counts = Counter(u.activation for u in units)
    return "/".join(name for name, _ in counts.most_common())


def lines_text(units: list[Unit]) -> str:
    lines = sorted({u.layer.span.line for u in units})
    if len(lines) == 1:
        return f"line {lines[0]}"
    return f"lines {lines[0]}–{lines[-1]}"


def path_text(diagnosis: Diagnosis) -> str:
    """What sits between the layers: "no normalization or residual connection", "LayerNorm", ..."""
    seg = diagnosis.segment
    if seg is None:
        return "with no normalization or residual connection"
    kinds: set[str] = set()

    def visit(items: Sequence[object]) -> None:
        for item in items:
            if isinstance(item, WeightLayer) and item.normalized:
                kinds.add(item.norm_kind)
            elif isinstance(item, Norm):
                kinds.add(item.kind)
            elif isinstance(item, Block):
                kinds.add("residual")
                visit(item.branch)
                visit(item.shortcut)

    visit(seg.items)
    if not kinds:
        return "with no normalization or residual connection"
    names = {"batch": "BatchNorm", "layer": "LayerNorm", "rms": "RMSNorm", "residual": "residual connections"}
    return "with " + " and ".join(names[k] for k in sorted(kinds, key=list(names).index))


def quantity_text(diagnosis: Diagnosis) -> str:
    """The deciding quantity, with its number, as the protocol would state it."""
    e = diagnosis.estimate
    n = e.layers
    criterion = diagnosis.criterion
    if criterion == "nonfinite":
        peak = (e.max_log10_q if e.max_log10_q is not None else 0.0) / 2
        size = ("beyond float32's range" if peak > FLOAT32_MAX_LOG10 else
                f"to ≈ {approx(peak, plain=True)}, and their squares beyond float32's range")
        return (f"the forward pass overflows float32 (activations grow {size}), so the loss and the gradients "
                f"are inf/NaN")
    if criterion == "loss" and e.log10_loss is not None:
        growth = e.log10_forward_growth
        per = f", ×{10 ** (growth / 2 / max(n, 1)):.2g} in scale per layer" if growth is not None and n else ""
        return (f"the forward pass blows up: the output variance for a unit-variance input is "
                f"{approx(growth, plain=True) if growth is not None else '?'}{per}, and the loss at init "
                f"≈ {approx(e.log10_loss, plain=True)} (MSE to unit-variance targets)")
    if criterion == "relative_grad" and e.log10_relative_grad is not None:
        return (f"‖∂L/∂θ‖/‖θ‖ ≈ {approx(e.log10_relative_grad, plain=True)} at init: one step of any usual "
                f"learning rate moves the weights far beyond their own scale")
    if criterion == "frozen" and e.log10_first_relative_grad is not None:
        return (f"the first layer's gradient is {approx(e.log10_first_relative_grad)} of its weights "
                f"(‖∂L/∂W‖/‖W‖): it is frozen — below Adam's ε and too small for SGD — while the ratio "
                f"first/last is ≈ {format_ratio(e.log10_weight_ratio)}, so every layer is starved alike")
    word = "attenuation" if e.log10_weight_ratio < 0 else "growth"
    return (f"estimated gradient {word} {approx(e.log10_weight_ratio)} between the first and the last of {n} "
            f"weight layers")


def estimate_text(diagnosis: Diagnosis, inits: bool = True) -> str:
    units = diagnosis.units
    what = f"{activations_text(units)}, {describe_inits(units)}" if inits else activations_text(units)
    return f"{quantity_text(diagnosis)} ({what})"


def matched_text(diagnosis: Diagnosis) -> str:
    """What the matching init would give: " (with it: ratio ≈ 0.3)" when it is a fix, else says so."""
    m = diagnosis.matched
    if m is None:
        return ""
    parts = [f"ratio ≈ {format_ratio(m.log10_weight_ratio)}"]
    if m.log10_loss is not None and diagnosis.criterion in ("loss", "nonfinite"):
        parts.append(f"loss ≈ {approx(m.log10_loss, plain=True)}")
    if m.log10_first_relative_grad is not None and diagnosis.criterion == "frozen":
        parts.append(f"first layer ‖∂W‖/‖W‖ ≈ {approx(m.log10_first_relative_grad, plain=True)}")
    if diagnosis.matched_ok:
        return f" (with it: {', '.join(parts)})"
    return f" (not enough on its own: with it, {', '.join(parts)})"
