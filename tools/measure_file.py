"""Measure one model file by the protocol (gradgen's: batch 128, seeds 0-2, medians) and print the
fixture header lines.

    .venv/bin/python tools/measure_file.py FILE.py 100,16      # input shape per example
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gradgen  # noqa: E402


def main(argv: list[str]) -> int:
    path, shape = Path(argv[0]), tuple(int(d) for d in argv[1].split(","))
    out = gradgen.measure(path, shape)
    print(f"# label: {out['label']}")
    print(f"# measured: weight-gradient ratio first/last = {out['ratio']:.1e} (median of 3 seeds, batch "
          f"{gradgen.BATCH}); loss at init {out['loss']:.1e}; ‖∂L/∂θ‖/‖θ‖ {out['rel']:.1e}; first-layer "
          f"‖∂W‖/‖W‖ {out['first_rel']:.1e}" + ("; loss/gradients non-finite" if out["nonfinite"] else ""))
    print("per-layer log10 ‖∂W‖:", [round(v, 1) if math.isfinite(v) else v for v in out["per_layer"]])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
