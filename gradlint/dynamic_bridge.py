"""Connects static results to the dynamic check: which models to build, and whether the
measurement confirms each static finding. Imported only when ``--dynamic`` is given."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from gradlint.dynamic import DynamicOptions, DynamicResult, DynamicTarget, run_dynamic
from gradlint.engine import FileResult

# What each static code predicts the measurement will show.
EXPECTED_VERDICT = {
    "GRD001": {"vanishing"},
    "GRD002": {"symmetric", "vanishing"},  # zero weights under ReLU pass no gradient at all
    "GRD003": {"vanishing"},
    "GRD004": {"vanishing", "exploding"},
    "GRD005": {"vanishing", "exploding"},
    "GRD006": {"exploding"},
}


def targets_for(results: Sequence[FileResult]) -> tuple[list[DynamicTarget], list[DynamicResult]]:
    """Buildable models as targets; the others as ``skipped`` results saying why."""
    targets: list[DynamicTarget] = []
    skipped: list[DynamicResult] = []
    for result in results:
        for model in result.models:
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


def _mark_findings(results: Sequence[FileResult], measured: Sequence[DynamicResult]) -> None:
    """Each static finding on a measured model: ``confirmed`` or ``not reproduced``."""
    by_model = {(r.path, r.model): r for r in measured if r.status == "measured"}
    for result in results:
        for diag in result.diagnostics:
            expected = EXPECTED_VERDICT.get(diag.code)
            outcome = by_model.get((diag.path, diag.model or ""))
            if expected is None or outcome is None:
                continue
            confirmed = outcome.verdict in expected
            ratio = f"{outcome.ratio:.1e}" if outcome.ratio is not None else "n/a"
            diag.extra["dynamic"] = {"status": "confirmed" if confirmed else "not reproduced",
                                     "verdict": outcome.verdict, "ratio": outcome.ratio}
            diag.message += (f" [dynamic: {'confirmed' if confirmed else 'NOT reproduced'} — measured "
                             f"{outcome.verdict}, ratio {ratio}]")
