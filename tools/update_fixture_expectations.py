"""Regenerate ``fixtures/**/<name>.expected`` from gradlint's current output.

Review the diff before committing: an expectation changes only when a finding really should.
Usage: python tools/update_fixture_expectations.py [fixtures/...]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lint(paths: list[str]) -> dict[str, list[str]]:
    proc = subprocess.run([sys.executable, "-m", "gradlint", "--format", "json", *paths],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode not in (0, 1):
        raise SystemExit(proc.stderr or proc.stdout)
    found: dict[str, list[str]] = {}
    for diag in json.loads(proc.stdout)["diagnostics"]:
        path = str(Path(diag["path"]).resolve())
        found.setdefault(path, []).append(f"{diag['line']}:{diag['column']} {diag['code']}")
    return found


def main() -> None:
    roots = sys.argv[1:] or ["fixtures"]
    files = sorted(p for r in roots for p in Path(ROOT, r).rglob("*.py"))
    found = lint([str(p) for p in files])
    for path in files:
        lines = sorted(found.get(str(path.resolve()), []), key=lambda s: (int(s.split(":")[0]), s))
        path.with_suffix(".expected").write_text("".join(f"{line}\n" for line in lines))
    print(f"wrote {len(files)} expectation files")


if __name__ == "__main__":
    main()
