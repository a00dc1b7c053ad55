# ruff: noqa: E501, B007, B023 (model sources as strings; small closures in a loop)
"""The exploding-gradient audit corpus (docs/calibration.md, *Exploding models across styles*).

    .venv/bin/python tools/explode_audit/gen.py && for g in gen2 gen3 gen4 gen5 gen7; do \
        .venv/bin/python tools/explode_audit/$g.py; done        # write build/explode_audit/cases
    .venv/bin/python tools/explode_audit/run.py [NAME-PARTS...]  # measure (new/changed only), lint, compare

Each case is measured by the protocol (tools/gradgen.py ``measure``: batch 128, seeds 0-2, medians) and
the result kept in docs/explode_audit.json with the source's SHA-256; gradlint's static verdict and its
estimates (ratio, loss, ‖∂L/∂θ‖/‖θ‖, first-layer ‖∂W‖/‖W‖; log10, measured/estimated) are printed per
case, then recall on the exploding models and false alarms on the healthy ones. ``GL_ROOT=DIR`` lints
with another checkout's gradlint (its tools/gradgen.py on sys.path first).
"""
import hashlib
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ROOT = Path(os.environ.get("GL_ROOT", REPO))
CASES = REPO / "build" / "explode_audit" / "cases"
LABELS = REPO / "docs" / "explode_audit.json"
sys.path.insert(0, str(ROOT / "tools"))
import gradgen  # noqa: E402


def lg(v):
    return math.log10(v) if isinstance(v, (int, float)) and v > 0 and math.isfinite(v) else float("nan")


def main() -> int:
    measure_only = "--measure" in sys.argv
    pat = [a for a in sys.argv[1:] if not a.startswith("--")]
    shapes = json.loads((CASES / "shapes.json").read_text())
    table = json.loads(LABELS.read_text()) if LABELS.exists() else {}
    import torch

    torch.set_num_threads(1)
    rows = []
    for name, shape in shapes.items():
        if pat and not any(p in name for p in pat):
            continue
        src = (CASES / f"{name}.py").read_text()
        sha = hashlib.sha256(src.encode()).hexdigest()
        if table.get(name, {}).get("sha256") != sha:
            try:
                m = gradgen.measure(CASES / f"{name}.py", tuple(shape))
            except Exception as exc:  # a model the harness cannot measure (no nn.Linear/conv to hook)
                print("not measured", name, type(exc).__name__, exc)
                continue
            table[name] = {k: v for k, v in m.items() if k != "per_layer"} | {"sha256": sha, "input": shape}
            LABELS.write_text(json.dumps(table, indent=0, sort_keys=True, default=str) + "\n")
        if measure_only:
            continue
        m = table[name]
        st = gradgen.static(src)
        e = st["estimate"] or {}
        ok = m["label"] == st["label"] or m["label"] == "borderline"

        def f(k):
            est = e.get(k)
            return f"{lg(m[k]):6.1f}/{est if est is not None else float('nan'):6.1f}"
        print(f"{name:42s} {m['label']:10s} {st['label']:10s} ratio {f('ratio')} loss {f('loss')} rel {f('rel')} "
              f"first {f('first_rel')} {','.join(st['codes'])}{'' if ok else '  <-- MISS'}")
        rows.append((name, m["label"], st["label"]))
    for cls in ("exploding", "healthy"):
        sel = [r for r in rows if r[1] == cls]
        print(f"{cls}: {sum(r[2] == cls for r in sel)}/{len(sel)} static agrees")
    print("false alarms on healthy:", sum(r[1] == "healthy" and r[2] != "healthy" for r in rows),
          " borderline:", sum(r[1] == "borderline" for r in rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
