"""Connects static results to the dynamic check: which models to build, whether the measurement
confirms each static finding, and a diagnostic (GRD801) for each measured problem that no
static finding covers. Imported only when ``--dynamic`` is given."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

from gradlint.diagnostics import Diagnostic
from gradlint.dynamic import DynamicOptions, DynamicResult, DynamicTarget, run_dynamic
from gradlint.engine import FileResult, LintConfig, fingerprint
from gradlint.rule import Severity
from gradlint.suppress import Suppressions
from gradlint.verdict import PROBLEMS

MEASURED_CODE = "GRD801"
MEASURED_NAME = "measured-gradient-problem"

# What each static code predicts the measurement will show. A code not listed here covers what
# its estimate predicts: the estimate's ``verdict`` when it has one, else the direction of its ratio.
EXPECTED_VERDICT = {
    "GRD001": {"vanishing"},
    # zero weights under ReLU pass no gradient at all; a constant stack's shared signal can blow up
    "GRD002": {"symmetric", "vanishing", "exploding"},
    "GRD003": {"vanishing"},
    "GRD004": {"vanishing", "exploding"},
    "GRD005": {"vanishing", "exploding"},
    "GRD006": {"exploding"},
    "GRD010": {"vanishing", "exploding"},  # every gradient exactly 0: measured as 0/0 or after a blow-up
    "GRD011": {"vanishing"},  # dead ReLU units: no gradient reaches the first layers
    "GRD012": {"vanishing"},  # a gradient stop: the layers behind it get no gradient at all (disconnected)
}


def targets_for(results: Sequence[FileResult]) -> tuple[list[DynamicTarget], list[DynamicResult]]:
    """Buildable models as targets; the others as ``skipped`` results saying why."""
    targets: list[DynamicTarget] = []
    skipped: list[DynamicResult] = []
    for result in results:
        # Every model the file defines, also those no rule could see (opaque: their forward
        # always raises or returns None): the report says what became of each.
        for model in [*result.models, *result.opaque]:
            if model.symbol is None or model.build is None:
                skipped.append(DynamicResult(result.path, model.name, model.span.line, "skipped", None, None, [],
                                             "built inside a function or class the check cannot call on its own"))
                continue
            targets.append(DynamicTarget(
                path=result.path, model=model.name, line=model.span.line, kind=model.build, symbol=model.symbol,
                framework=model.framework, input_hint=model.input_hint, end_line=model.end_line))
    return targets, skipped


def unmatched_options(options: DynamicOptions, targets: Sequence[DynamicTarget],
                      skipped: Sequence[DynamicResult]) -> list[str]:
    """Warnings for --model-args / --input-shape entries that name no model found."""
    keys: set[str] = {"*"}
    for t in targets:
        keys |= {t.model, t.symbol, f"{t.path}:{t.model}"}
    keys |= {r.model for r in skipped} | {f"{r.path}:{r.model}" for r in skipped}
    found = sorted({t.model for t in targets} | {r.model for r in skipped})
    listed = ", ".join(found) if found else "none"
    warnings = []
    for option, mapping in (("--model-args", options.model_args), ("--input-shape", options.input_shapes)):
        for name in mapping:
            if name not in keys:
                warnings.append(f"{option} names {name!r}, but no model of that name was found "
                                f"(models found: {listed}); it is not used")
    return warnings


def run_dynamic_check(results: Sequence[FileResult], options: DynamicOptions, progress: bool = False,
                      warn: Callable[[str], None] | None = None) -> list[DynamicResult]:
    targets, skipped = targets_for(results)
    if warn is not None:
        for message in unmatched_options(options, targets, skipped):
            warn(message)
    if "*" in options.input_shapes:
        shared = options.input_shapes["*"]
        shapes = {t.model: shared for t in targets} | {k: v for k, v in options.input_shapes.items() if k != "*"}
        options = replace(options, input_shapes=shapes)
    measured = run_dynamic(targets, replace(options, progress=progress and len(targets) > 1))
    _mark_findings(results, measured)
    return measured + skipped


def covers(diag: Diagnostic, verdict: str | None, disconnected: bool = False) -> bool:
    """Whether a static finding predicts this measured verdict; ``disconnected``: some weight layer
    got no gradient at all, what a gradient stop (GRD012) predicts wherever it cuts."""
    if diag.code == "GRD012" and disconnected:
        return True
    expected = EXPECTED_VERDICT.get(diag.code)
    if expected is not None:
        return verdict in expected
    estimate = diag.estimate
    if estimate is None or diag.severity == Severity.INFO:
        return False
    predicted = getattr(estimate, "verdict", None)  # the static estimate's own protocol verdict
    if isinstance(predicted, str) and predicted in PROBLEMS:
        return verdict == predicted
    gain = estimate.log10_weight_ratio
    if not math.isfinite(gain) or getattr(estimate, "overflows", False):
        return verdict in ("vanishing", "exploding")
    return verdict == ("exploding" if gain > 0 else "vanishing")


def _mark_findings(results: Sequence[FileResult], measured: Sequence[DynamicResult]) -> None:
    """Each static finding on a measured model: ``confirmed`` or ``not reproduced``."""
    by_model = {(r.path, r.model): r for r in measured if r.status == "measured"}
    for result in results:
        for diag in result.diagnostics:
            outcome = by_model.get((diag.path, diag.model or ""))
            # Only findings that predict a verdict of the protocol: GRD008 (through time), GRD007 or
            # GRD009 (training code) say nothing the layer measurement could confirm.
            predicts = diag.code in EXPECTED_VERDICT or getattr(diag.estimate, "verdict", None) in PROBLEMS
            if outcome is None or not predicts:
                continue
            confirmed = covers(diag, outcome.verdict, any(not layer.connected for layer in outcome.layers))
            ratio = f"{outcome.ratio:.1e}" if outcome.ratio is not None else "n/a"
            diag.extra["dynamic"] = {"status": "confirmed" if confirmed else "not reproduced",
                                     "verdict": outcome.verdict, "ratio": _finite(outcome.ratio)}
            diag.message += (f" [dynamic: {'confirmed' if confirmed else 'NOT reproduced'} — measured "
                             f"{outcome.verdict}, ratio {ratio}]")


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None  # JSON has no NaN/inf


def _num(value: float | None) -> str:
    if value is None:
        return "n/a"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf"
    return f"{value:.1e}"


def measured_diagnostics(results: Sequence[FileResult], measured: Sequence[DynamicResult],
                         config: LintConfig) -> list[Diagnostic]:
    """GRD801 for every measured problem (vanishing/exploding/symmetric) that no static finding
    on the same model covers; placed at the model's definition, severity error."""
    files = {r.path: r for r in results}
    out: list[Diagnostic] = []
    for outcome in measured:
        if not outcome.problem:
            continue
        result = files.get(outcome.path)
        if result is None or not config.selection_for(outcome.path).enabled(MEASURED_CODE):
            continue
        model = next((m for m in result.models if m.name == outcome.model and m.span.line == outcome.line), None)
        if model is None:
            continue
        if any(d.model == outcome.model and covers(d, outcome.verdict) for d in result.diagnostics):
            continue
        try:
            with open(outcome.path, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError):
            text = ""
        suppressions = Suppressions(text)
        if suppressions.file_level or suppressions.suppresses(MEASURED_CODE, {model.span.line}):
            continue
        evidence = "".join(f"; {e}" for e in outcome.evidence)
        message = (f"{outcome.model} measured {outcome.verdict} at init: {outcome.reason}{evidence} "
                   f"(loss {_num(outcome.loss)}, ‖∂L/∂θ‖/‖θ‖ {_num(outcome.relative_grad)}, first layer "
                   f"‖∂W‖/‖W‖ {_num(outcome.first_relative_grad)}; median of {outcome.seeds} seed"
                   f"{'s' if outcome.seeds != 1 else ''}, MSE to N(0,1) targets); no static finding explains it")
        span = model.span
        diag = Diagnostic(outcome.path, span.line, span.col + 1, span.end_line, span.end_col + 1, MEASURED_CODE,
                          MEASURED_NAME, Severity.ERROR, message, outcome.model,
                          extra={"dynamic": {"status": "measured", "verdict": outcome.verdict,
                                             "ratio": _finite(outcome.ratio), "loss": _finite(outcome.loss),
                                             "relative_grad": _finite(outcome.relative_grad),
                                             "first_relative_grad": _finite(outcome.first_relative_grad),
                                             "evidence": list(outcome.evidence)}})
        diag.fingerprint = fingerprint(diag, text.splitlines())
        out.append(diag)
    return out
