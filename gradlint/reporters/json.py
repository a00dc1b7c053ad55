"""Machine-readable output: one JSON object with ``diagnostics`` and ``summary``."""

from __future__ import annotations

import json

from gradlint import __version__
from gradlint.reporters import Report


def render_json(report: Report) -> str:
    counts = report.counts()
    payload: dict[str, object] = {
        "version": __version__,
        "diagnostics": [d.to_json() for d in report.diagnostics],
        "summary": {
            "files": report.files_linted,
            "models": report.models,
            "diagnostics": len(report.diagnostics),
            "errors": counts["error"],
            "warnings": counts["warning"],
            "infos": counts["info"],
        },
    }
    payload.update(report.extra)
    return json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n"
