"""Machine-readable output: one JSON object with ``diagnostics`` and ``summary``."""

from __future__ import annotations

import json
import math

from gradlint import __version__
from gradlint.reporters.report import Report, printable_tree


def _finite(value: object) -> object:
    """JSON has no NaN/Infinity: non-finite numbers become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def render_json(report: Report) -> str:
    counts = report.counts()
    payload: dict[str, object] = {
        "version": __version__,
        "diagnostics": [d.to_json() for d in report.diagnostics],
        "summary": {
            "files": report.files_linted,
            "models": report.models,
            "models_understood": report.models_understood,
            "diagnostics": len(report.diagnostics),
            "errors": counts["error"],
            "warnings": counts["warning"],
            "infos": counts["info"],
        },
    }
    if report.baseline is not None:
        payload["summary"]["baseline"] = report.baseline.to_json()  # type: ignore[index]
    payload.update(report.extra)
    payload = printable_tree(_finite(payload))  # type: ignore[assignment]
    return json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n"
