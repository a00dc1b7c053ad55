"""Baselines: record today's findings so CI gates only new ones.

Entries are keyed by (path, code, model, fingerprint) — the fingerprint hashes the reported
source line's text, not its number — and counted, so moving code around keeps old findings
matched while a second copy of a problem is new.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from gradlint.diagnostics import Diagnostic

_FORMAT = 1


def _key(diag: Diagnostic, root: Path) -> tuple[str, str, str, str]:
    try:
        rel = Path(os.path.relpath(os.path.abspath(diag.path), root)).as_posix()
    except ValueError:
        rel = diag.path
    return (rel, diag.code, diag.model or "", diag.fingerprint or f"line:{diag.line}")


def write_baseline(path: Path, diagnostics: Sequence[Diagnostic]) -> int:
    root = path.resolve().parent
    counts = Counter(_key(d, root) for d in diagnostics)
    entries = [{"path": p, "code": c, "model": m, "fingerprint": f, "count": n}
               for (p, c, m, f), n in sorted(counts.items())]
    payload = json.dumps({"gradlint-baseline": _FORMAT, "findings": entries}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.resolve().parent, prefix=".baseline-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(payload)
    os.replace(tmp, path)
    return sum(counts.values())


def load_baseline(path: Path) -> Counter[tuple[str, str, str, str]]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("gradlint-baseline") != _FORMAT:
            raise ValueError("not a gradlint baseline")
        return Counter({(e["path"], e["code"], e["model"], e["fingerprint"]): int(e["count"]) for e in raw["findings"]})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: cannot read the baseline: {exc}") from None


def new_findings(diagnostics: Sequence[Diagnostic], baseline: Counter[tuple[str, str, str, str]],
                 baseline_path: Path) -> list[Diagnostic]:
    """Findings not covered by the baseline (each baseline entry covers as many as it counts)."""
    root = baseline_path.resolve().parent
    remaining = Counter(baseline)
    out = []
    for diag in diagnostics:
        key = _key(diag, root)
        if remaining[key] > 0:
            remaining[key] -= 1
        else:
            out.append(diag)
    return out
