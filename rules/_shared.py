"""Message helpers shared by the gradient rules (not a rule: no Rule subclass here)."""

from __future__ import annotations

from collections import Counter

from gradlint.analysis.inits import describe_inits
from gradlint.analysis.triage import Diagnosis
from gradlint.analysis.units import Unit
from gradlint.estimate import format_ratio
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


def activations_text(units: list[Unit]) -> str:
    counts = Counter(u.activation for u in units)
    return "/".join(name for name, _ in counts.most_common())


def lines_text(units: list[Unit]) -> str:
    lines = sorted({u.layer.span.line for u in units})
    if len(lines) == 1:
        return f"line {lines[0]}"
    return f"lines {lines[0]}–{lines[-1]}"


def estimate_text(diagnosis: Diagnosis) -> str:
    units = diagnosis.units
    estimate = diagnosis.estimate
    word = "attenuation" if estimate.log10_weight_ratio < 0 else "growth"
    text = (f"estimated gradient {word} ≈ {format_ratio(estimate.log10_weight_ratio)} across "
            f"{len(units)} layers ({activations_text(units)}, {describe_inits(units)})")
    if estimate.overflows and estimate.max_log10_q is not None:
        text += (f"; activations grow to ~1e{estimate.max_log10_q / 2:.0f}, beyond float32, so the loss and "
                 f"gradients become inf/NaN")
    return text
