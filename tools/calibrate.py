"""Run the calibration grid and print the table of docs/calibration.md (markdown).

    .venv/bin/python tools/calibrate.py            # full grid (636 cells, a few minutes)
    .venv/bin/python tools/calibrate.py --ci       # the subset tests/test_calibration.py runs

Measurement and comparison code lives in tests/calibration_support.py (shared with the test).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import calibration_support as cs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ci", action="store_true", help="only the CI subset")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args(argv)
    cells = cs.ci_grid() if args.ci else cs.grid()
    t0 = time.perf_counter()
    rows = cs.run_grid(cells, threads=args.threads)
    elapsed = time.perf_counter() - t0
    print(cs.markdown(rows))
    print(f"<!-- {len(cells)} cells, {elapsed:.0f} s -->")
    fails = [f for r in rows if not cs.excluded(r.cfg) for f in r.failures()]
    for f in fails:
        print(f"OUTSIDE 10x: {f}", file=sys.stderr)
    return 1 if fails else 0


if __name__ == "__main__":
    raise SystemExit(main())
