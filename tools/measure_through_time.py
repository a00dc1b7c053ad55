"""Measure the gradient through time of one recurrent model file: ‖∂L/∂x_1‖/‖∂L/∂x_T‖ at init, by the
protocol of docs/calibration.md's every-step table (batch 32, seeds 0-2, MSE to N(0, 1) targets of the
output's shape), and print the per-seed values and their median.

    .venv/bin/python tools/measure_through_time.py FILE.py CLASS 400,8 [--time-axis 1]

Only the file's imports, constants, functions and classes are run (its training loop is not): the
model is built as ``CLASS()``. The input shape is per batch without the batch axis (``400,8``: T, F);
``--time-axis`` is the axis of the full input (batch included) holding time (1: batch first, 0: time
major, whose shape is then given as T,F too and laid out (T, B, F)). ``--tokens V --embedding ATTR``: the
input is token ids ``randint(0, V, (B, T))`` (shape ``T``) and the ratio is taken on the output of the
model's embedding ``model.ATTR`` (‖∂L/∂e_1‖/‖∂L/∂e_T‖).
"""

from __future__ import annotations

import argparse
import ast
import math
import statistics
from pathlib import Path

BATCH = 32


def load_class(path: Path, name: str) -> type:
    """``name`` from ``path``, running only definitions (no training loop, no ``__main__`` block)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    keep = (ast.Import, ast.ImportFrom, ast.ClassDef, ast.FunctionDef)
    body = [s for s in tree.body if isinstance(s, keep) or (
        isinstance(s, ast.Assign) and all(isinstance(t, (ast.Name, ast.Tuple)) for t in s.targets)
        and isinstance(s.value, (ast.Constant, ast.Tuple)))]
    namespace: dict = {"__name__": "measured"}
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    return namespace[name]


def measure(cls: type, shape: tuple[int, ...], time_axis: int, seed: int, tokens: int | None = None,
            embedding: str | None = None) -> float:
    import torch

    torch.manual_seed(seed)
    model = cls()
    full = (BATCH, *shape) if time_axis == 1 else (shape[0], BATCH, *shape[1:])
    seen: list = []
    if tokens is not None and embedding is not None:
        x = torch.randint(0, tokens, full)
        def keep(module, inputs, output) -> None:  # type: ignore[no-untyped-def]
            output.retain_grad()
            seen.append(output)

        getattr(model, embedding).register_forward_hook(keep)
    else:
        x = torch.randn(*full, requires_grad=True)
    out = model(x)
    out = out[0] if isinstance(out, tuple) else out
    loss = (out - torch.randn_like(out)).pow(2).mean()
    loss.backward()
    grad = (seen[0].grad if seen else x.grad).movedim(time_axis, 0)
    first, last = grad[0].norm().item(), grad[-1].norm().item()
    return first / last if last > 0 else math.nan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("cls")
    parser.add_argument("shape")
    parser.add_argument("--time-axis", type=int, default=1)
    parser.add_argument("--tokens", type=int)
    parser.add_argument("--embedding")
    opts = parser.parse_args(argv)
    cls = load_class(opts.file, opts.cls)
    shape = tuple(int(d) for d in opts.shape.split(","))
    values = [measure(cls, shape, opts.time_axis, seed, opts.tokens, opts.embedding) for seed in range(3)]

    def log(v: float) -> str:
        if v == 0:
            return "-inf: float32 underflow"
        return f"{math.log10(v):+.1f}" if v > 0 and math.isfinite(v) else str(v)

    print(f"‖∂L/∂x_1‖/‖∂L/∂x_T‖ seeds 0-2: {', '.join(f'{v:.2g}' for v in values)} "
          f"(log10 {', '.join(log(v) for v in values)}); median {statistics.median(values):.2g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
