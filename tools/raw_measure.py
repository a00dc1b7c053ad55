"""Measure a raw-tensor PyTorch model file by the protocol (reference.md §1b), the way its fixture
header states it.

    .venv/bin/python tools/raw_measure.py FILE.py [--input 256] [--output y_pred]

Raw-tensor models keep their weights as plain tensors (``torch.randn(n, m, requires_grad=True)``,
``nn.Parameter(...)`` outside a class, a module attribute that is no registered parameter), so
forward hooks on ``nn.Linear`` see nothing. Here a ``TorchFunctionMode`` records every leaf tensor
that requires grad in the order the forward first uses it: the ≥ 2-D ones are the weight layers
(first and last in execution order), all of them are the trainable parameters.

* A file with an ``nn.Module`` class (the last one defined) is built with no arguments and run on
  N(0, 1) input of ``--input`` features, batch 128.
* A script without one runs as written until its first ``loss.backward()`` (stopped there); the
  model output is the module-level ``--output`` variable and the input is the script's own data
  tensor.

Then: MSE (mean) to N(0, 1) targets (norms in float64, as the dynamic check takes them), seeds 0, 1, 2,
medians, label from ``gradlint.verdict.judge``.
Symmetry is checked on both orientations of each hidden weight (rows of ``F.linear``'s ``w``,
columns of ``x @ w``'s): with a random init neither has identical rows, with a constant init both.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gradlint.verdict import Quantities, judge  # noqa: E402

BATCH = 128
SEEDS = (0, 1, 2)


class _Stop(Exception):
    pass


def _recorder():  # type: ignore[no-untyped-def]
    import torch
    from torch.overrides import TorchFunctionMode

    class Record(TorchFunctionMode):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list = []

        def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            for a in list(args) + list((kwargs or {}).values()):
                for t in (a if isinstance(a, (list, tuple)) else (a,)):
                    if isinstance(t, torch.Tensor) and t.is_leaf and t.requires_grad \
                            and not any(t is s for s in self.seen):
                        self.seen.append(t)
            return func(*args, **(kwargs or {}))

    return Record()


def _run(path: Path, seed: int, n_in: int, output: str):  # type: ignore[no-untyped-def]
    import torch

    torch.manual_seed(seed)
    spec = importlib.util.spec_from_file_location(f"raw_{seed}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    source = path.read_text(encoding="utf-8")
    has_class = "nn.Module)" in source
    backward = torch.Tensor.backward
    rec = _recorder()
    if has_class:
        spec.loader.exec_module(module)
        classes = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, torch.nn.Module)
                   and v.__module__ == module.__name__]
        model = classes[-1]()
        x = torch.randn(BATCH, n_in, generator=torch.Generator().manual_seed(1000 + seed))
        with rec:
            y = model(x)
        params = list(rec.seen) + [p for p in model.parameters() if not any(p is s for s in rec.seen)]
    else:
        def stop(*_a, **_k):  # type: ignore[no-untyped-def]
            raise _Stop

        torch.Tensor.backward = stop  # type: ignore[method-assign]
        try:
            with rec:
                spec.loader.exec_module(module)
        except _Stop:
            pass
        finally:
            torch.Tensor.backward = backward  # type: ignore[method-assign]
        y = getattr(module, output)
        params = list(rec.seen)
    params = [p for p in params if p.requires_grad]
    weights = [p for p in params if p.dim() >= 2]
    return y, weights, params


def _symmetric(weights) -> bool:  # type: ignore[no-untyped-def]
    for w in weights[:-1]:
        if w.grad is None:
            continue
        for rows, grads in ((w, w.grad), (w.T, w.grad.T)):
            if rows.shape[0] < 2:
                continue
            tol_w = 1e-6 * float(rows.detach().abs().max()) + 1e-12
            tol_g = 1e-6 * float(grads.abs().max()) + 1e-30
            same_rows = float((rows - rows[0]).detach().abs().max()) <= tol_w
            if same_rows and float((grads - grads[0]).abs().max()) <= tol_g:
                return True
    return False


def measure(path: Path, n_in: int, output: str) -> dict:
    import torch

    rows = []
    for seed in SEEDS:
        y, weights, params = _run(path, seed, n_in, output)
        for p in params:
            p.grad = None
        t = torch.randn(y.shape, generator=torch.Generator().manual_seed(2000 + seed))
        loss = torch.nn.functional.mse_loss(y, t)
        loss.backward()
        g = [float(w.grad.double().norm()) if w.grad is not None else 0.0 for w in weights]
        grad2 = sum(float(p.grad.double().norm()) ** 2 for p in params if p.grad is not None)
        par2 = sum(float(p.detach().double().norm()) ** 2 for p in params)
        w0 = float(weights[0].detach().norm())
        rows.append({
            "ratio": g[0] / g[-1] if g[-1] > 0 else (math.nan if g[0] == 0 else math.inf),
            "loss": float(loss.detach()), "rel": math.sqrt(grad2 / par2) if par2 > 0 else math.nan,
            "first_rel": g[0] / w0 if w0 > 0 else math.nan,
            "nonfinite": not math.isfinite(float(loss.detach())) or not all(math.isfinite(v) for v in g)
            or not math.isfinite(grad2),
            "symmetric": _symmetric(weights), "layers": len(weights),
        })
    out: dict = {}
    for key in ("ratio", "loss", "rel", "first_rel"):
        finite = [r[key] for r in rows if not math.isnan(r[key])]
        out[key] = statistics.median(finite) if finite else math.nan
        out[key + "_seeds"] = [r[key] for r in rows]
    out["nonfinite"] = sum(r["nonfinite"] for r in rows) >= 2
    out["symmetric"] = sum(r["symmetric"] for r in rows) >= 2
    out["layers"] = rows[0]["layers"]
    q = Quantities(ratio=out["ratio"], loss=out["loss"], nonfinite=out["nonfinite"], relative_grad=out["rel"],
                   first_relative_grad=out["first_rel"], symmetric=["hidden"] if out["symmetric"] else ())
    verdict = judge(q)
    out["label"], out["reason"] = verdict.label, verdict.reason
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--input", type=int, default=256, help="input features of a class-based model")
    parser.add_argument("--output", default="y_pred", help="a script's module-level output variable")
    args = parser.parse_args(argv)
    for path in args.files:
        m = measure(path, args.input, args.output)
        print(f"{path.name}: {m['label']} ({m['reason']}) layers={m['layers']}")
        print(f"  # measured: weight-gradient ratio first/last = {m['ratio']:.1e} (median of 3 seeds, batch 128); "
              f"loss at init {m['loss']:.1e}; ‖∂L/∂θ‖/‖θ‖ {m['rel']:.1e}; first-layer ‖∂W‖/‖W‖ {m['first_rel']:.1e}"
              + ("; loss/gradients non-finite" if m["nonfinite"] else "")
              + ("; identical weight and gradient rows in a hidden layer" if m["symmetric"] else ""))
        print("  seeds: ratio " + ", ".join(f"{v:.1e}" for v in m["ratio_seeds"])
              + " | loss " + ", ".join(f"{v:.1e}" for v in m["loss_seeds"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
