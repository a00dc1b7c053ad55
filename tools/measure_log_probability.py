"""Run a training program of fixtures/programs4_numerics for real and say when its loss or gradients first
become non-finite (inf/NaN), per seed.

Usage:
    python tools/measure_log_probability.py FILE.py [--seeds 0,1,2]                  # torch programs
    /tmp/tfvenv/bin/python tools/measure_log_probability.py FILE.py                 # TF1 graph programs

Each seed runs the program in its own subprocess with ``random``/``numpy``/``torch`` (and TensorFlow's graph
seed) seeded, so the synthetic data and the init both vary. TF1 graph code runs on ``tf.compat.v1`` with v2
behaviour disabled, in a separate environment that has TensorFlow (never gradlint's own):
``python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu``.

Recorded, per seed, at every training step (counted from 1): torch: a global optimizer step pre-hook checks
every parameter's gradient and counts the steps; the largest |output| (one unit) or logit gap (several) of an
``nn.Linear`` with at most 10 outputs (the programs' output layers) is kept by patching its forward.
TF: ``Session.run`` is wrapped; each call that runs a training op counts a step and checks the fetched loss
and its gradient with respect to every trainable variable (computed before the step runs, on the weights the
step starts from), and the largest logit gap of what the graph feeds a softmax
(``tf.nn.softmax`` or ``softmax_cross_entropy_with_logits``).
Prints one JSON line per seed: first non-finite step (null: none), steps run, largest logit (gap) seen, the
program's last printed line.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

_CHILD = "GRADLINT_LOGPROB_CHILD"


def _finite(value: object) -> bool:
    import numpy as np
    return bool(np.all(np.isfinite(np.asarray(value, dtype=np.float64))))


def _run_torch(source: str, path: str, seed: int) -> dict[str, object]:
    import torch
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    state: dict[str, object] = {"steps": 0, "first_nonfinite": None, "largest_logit": 0.0}

    def pre_step(optimizer, args, kwargs):  # type: ignore[no-untyped-def]
        state["steps"] = int(state["steps"]) + 1  # type: ignore[call-overload]
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if state["first_nonfinite"] is None and not all(bool(torch.isfinite(g).all()) for g in grads):
            state["first_nonfinite"] = state["steps"]

    from torch.optim.optimizer import register_optimizer_step_pre_hook
    register_optimizer_step_pre_hook(pre_step)
    original_forward = torch.nn.Linear.forward

    def forward(self, x):  # type: ignore[no-untyped-def]
        out = original_forward(self, x)
        if out.shape[-1] <= 10:  # the output layer (the hidden layers of these programs are wider)
            top = float(out.detach().abs().max()) if out.shape[-1] == 1 else \
                float((out.detach().max(-1).values - out.detach().min(-1).values).max())
            if math.isfinite(top):
                state["largest_logit"] = max(float(state["largest_logit"]), top)  # type: ignore[arg-type]
        return out

    torch.nn.Linear.forward = forward  # type: ignore[method-assign]
    return _exec(source, path, state)


def _run_tf1(source: str, path: str, seed: int) -> dict[str, object]:
    import tensorflow.compat.v1 as tf
    tf.disable_v2_behavior()
    tf.set_random_seed(seed)
    sys.modules["tensorflow"] = tf  # type: ignore[assignment]
    state: dict[str, object] = {"steps": 0, "first_nonfinite": None, "largest_logit": 0.0}
    original_run = tf.Session.run
    checks: dict[int, object] = {}

    def run(self, fetches, feed_dict=None, **kwargs):  # type: ignore[no-untyped-def]
        items = fetches if isinstance(fetches, (list, tuple)) else [fetches]
        losses = [f for f in items if isinstance(f, tf.Tensor)]
        trains = any(isinstance(f, tf.Operation) and f.type == "NoOp" for f in items)
        if not trains or not losses:  # (the variables' initializer is a NoOp fetched alone)
            return original_run(self, fetches, feed_dict, **kwargs)
        state["steps"] = int(state["steps"]) + 1  # type: ignore[call-overload]
        key = id(self.graph)
        if key not in checks and losses:
            grads = [g for g in tf.gradients(losses[0], tf.trainable_variables()) if g is not None]
            softmax_inputs = [op.inputs[0] for op in self.graph.get_operations()
                              if op.type in ("Softmax", "SoftmaxCrossEntropyWithLogits")]
            gaps = [tf.reduce_max(tf.reduce_max(t, 1) - tf.reduce_min(t, 1)) for t in softmax_inputs]
            checks[key] = (grads, gaps)
        if key in checks:
            grads, gaps = checks[key]  # type: ignore[misc]
            values = original_run(self, [losses[0], *grads, *gaps], feed_dict)
            if gaps and _finite(values[-1]):
                state["largest_logit"] = max(float(state["largest_logit"]), float(values[-1]))  # type: ignore[arg-type]
            n = 1 + len(grads)
            if state["first_nonfinite"] is None and not all(_finite(v) for v in values[:n]):
                state["first_nonfinite"] = state["steps"]
        return original_run(self, fetches, feed_dict, **kwargs)

    tf.Session.run = run  # type: ignore[method-assign]
    return _exec(source, path, state)


def _exec(source: str, path: str, state: dict[str, object]) -> dict[str, object]:
    out = io.StringIO()
    try:
        with redirect_stdout(out):
            exec(compile(source, path, "exec"), {"__name__": "__main__", "__file__": path})
    except Exception as error:  # the program's own failure is a result too
        state["error"] = f"{type(error).__name__}: {error}"
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    state["last_print"] = lines[-1] if lines else None
    largest = state["largest_logit"]
    state["largest_logit"] = round(float(largest), 1)  # type: ignore[arg-type]
    return state


def _child(path: str, seed: int) -> None:
    random.seed(seed)
    import numpy as np
    np.random.seed(seed)
    source = Path(path).read_text()
    tf1 = "import tensorflow" in source and "tf.placeholder" in source
    result = _run_tf1(source, path, seed) if tf1 else _run_torch(source, path, seed)
    print(json.dumps({"file": Path(path).name, "seed": seed, **result}))


def main(argv: list[str]) -> int:
    if os.environ.get(_CHILD):
        _child(argv[0], int(argv[1]))
        return 0
    seeds = [0, 1, 2]
    if "--seeds" in argv:
        i = argv.index("--seeds")
        seeds = [int(s) for s in argv[i + 1].split(",")]
        argv = argv[:i] + argv[i + 2:]
    for path in argv:
        for seed in seeds:
            env = {**os.environ, _CHILD: "1", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
            proc = subprocess.run([sys.executable, __file__, path, str(seed)], env=env, capture_output=True,
                                  text=True, timeout=900)
            lines = proc.stdout.strip().splitlines()
            print(lines[-1] if lines else json.dumps({"file": path, "seed": seed, "error": proc.stderr[-500:]}),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
