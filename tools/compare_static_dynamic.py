"""Run gradlint statically and dynamically over the labelled fixtures and compare.

Prints, per fixture: the measured label in its header, the dynamic verdict, the static codes,
and every static finding the measurement does not reproduce. Usage:
    python tools/compare_static_dynamic.py [fixtures/...]
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    roots = sys.argv[1:] or ["fixtures"]
    proc = subprocess.run([sys.executable, "-m", "gradlint", "--dynamic", "--format", "json", *roots],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode not in (0, 1):
        print(proc.stderr, file=sys.stderr)
        return 2
    payload = json.loads(proc.stdout)
    results: dict[str, list[dict]] = {}
    for item in payload.get("dynamic", []):
        results.setdefault(item["path"], []).append(item)
    static: dict[str, set[str]] = {}
    for diag in payload["diagnostics"]:
        static.setdefault(diag["path"], set()).add(diag["code"])
    agree = disagree = unmeasured = not_reproduced = 0
    for path, items in sorted(results.items()):
        header = re.search(r"^# label: (\w+)", (ROOT / path).read_text(encoding="utf-8"), re.MULTILINE)
        label = header.group(1) if header else None
        measured = [i for i in items if i["status"] == "measured"]
        if not measured:
            unmeasured += 1
            print(f"UNMEASURED {path}: {items[0]['status']} ({items[0].get('reason')})")
            continue
        verdict = measured[0]["verdict"]
        if label and verdict != label:
            disagree += 1
            print(f"DISAGREE   {path}: label {label}, dynamic {verdict} (ratio {measured[0]['ratio']}), "
                  f"static {sorted(static.get(path, []))}")
        else:
            agree += 1
    for diag in payload["diagnostics"]:
        status = diag.get("dynamic", {}).get("status")
        if status == "not reproduced":
            not_reproduced += 1
            where = f"{diag['path']}:{diag['line']} {diag['code']}"
            print(f"NOT REPRODUCED {where} (measured {diag['dynamic']['verdict']})")
    print(f"label vs dynamic: {agree} agree, {disagree} disagree, {unmeasured} not measured; "
          f"static findings not reproduced: {not_reproduced}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
