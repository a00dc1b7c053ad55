"""Step-time overhead of the training monitor at every=100, vs no monitor, in the same run.

    .venv/bin/python benchmarks/monitor_overhead.py [--steps N] [--blocks N] [--threads N] [--no-keras]

Each case trains one model on synthetic data. The run is cut into blocks of ``--steps``
training steps that alternate between *bare* (no monitor) and *monitored*
(``GradientMonitor.step(loss)`` after every backward, recording every 100 steps, JSON-lines
log written to a temporary file); so load drift on a shared machine hits both alike. The
monitor only sees (and counts) the monitored blocks, so it records once per 100 of its steps.
Reported: total time per step of each mode, the ratio monitored/bare (target <= 1.05), and
the two parts of the monitor's cost timed on their own: one call on a non-recording step
(a counter) and one recording step (norms from .grad, the record, one log line), with the
overhead they predict, (call + record / 100) / bare step.

Keras (torch backend): the same, alternating ``model.fit`` epochs without and with
``GradientMonitorCallback(every=100)`` on one compiled model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from gradlint.monitor.torch_monitor import GradientMonitor

EVERY = 100


def mlp() -> nn.Module:
    """784-1024-1024-1024-10 ReLU MLP (2.9 M parameters)."""
    return nn.Sequential(
        nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
        nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10),
    )


def cnn() -> nn.Module:
    """VGG-style CNN for 3x32x32 (6 conv layers with BatchNorm, 0.36 M parameters)."""
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(*block(3, 16), *block(16, 32), *block(32, 64), nn.Flatten(), nn.Linear(64 * 16, 256),
                         nn.ReLU(), nn.Linear(256, 10))


def torch_case(name: str, model: nn.Module, x: torch.Tensor, steps: int, blocks: int, log: Path) -> float:
    y = torch.randint(0, 10, (x.shape[0],))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    monitor = GradientMonitor(model, every=EVERY, log_path=log, warn=False)

    def train_step(observe: Callable[[torch.Tensor], Any] | None) -> None:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        if observe is not None:
            observe(loss)
        opt.step()

    for _ in range(5):  # warm-up: allocator, first-call costs
        train_step(None)
    totals = {"bare": 0.0, "monitored": 0.0}
    counts = {"bare": 0, "monitored": 0}
    for b in range(2 * blocks):
        mode = "bare" if b % 2 == 0 else "monitored"
        observe = monitor.step if mode == "monitored" else None
        start = time.perf_counter()
        for _ in range(steps):
            train_step(observe)
        totals[mode] += time.perf_counter() - start
        counts[mode] += steps
    bare = totals["bare"] / counts["bare"]
    monitored = totals["monitored"] / counts["monitored"]

    recorded = len(monitor.history)
    # The monitor's own costs, timed alone (gradients of the last step are still in .grad).
    loss = torch.tensor(1.0)
    monitor.steps = 1  # a non-recording step
    calls = 100_000
    start = time.perf_counter()
    for _ in range(calls):
        monitor.steps = 1
        monitor.step(loss)
    call = (time.perf_counter() - start) / calls
    records = []
    for _ in range(5):
        start = time.perf_counter()
        monitor.record(loss)
        records.append(time.perf_counter() - start)
    record = statistics.median(records)
    predicted = (call + record / EVERY) / bare
    print(
        f"{name:<30} bare {bare * 1e3:8.2f} ms/step   monitored {monitored * 1e3:8.2f} ms/step   "
        f"ratio {monitored / bare:6.3f}\n"
        f"{'':<30} non-recording call {call * 1e6:5.2f} us, recording step {record * 1e3:6.2f} ms "
        f"-> predicted overhead {100 * predicted:.2f} %  ({recorded} records in the run)"
    )
    return monitored / bare


def keras_case(steps: int, blocks: int, log: Path) -> float | None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError:
        print("keras not installed: Keras case skipped")
        return None
    if keras.config.backend() != "torch":
        print("Keras case skipped: KERAS_BACKEND is not torch")
        return None
    import numpy as np

    from gradlint.monitor.keras_callback import GradientMonitorCallback

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((784,))] + [keras.layers.Dense(1024, activation="relu") for _ in range(3)]
                             + [keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batch = 128
    x = np.random.default_rng(0).standard_normal((batch * steps, 784)).astype("float32")
    y = np.random.default_rng(1).integers(0, 10, batch * steps)
    callback = GradientMonitorCallback(every=EVERY, log_path=log, warn=False)
    model.fit(x[: batch * 5], y[: batch * 5], batch_size=batch, epochs=1, verbose=0)  # warm-up
    totals = {"bare": 0.0, "monitored": 0.0}
    for b in range(2 * blocks):
        mode = "bare" if b % 2 == 0 else "monitored"
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False,
                  callbacks=[callback] if mode == "monitored" else [])
        totals[mode] += time.perf_counter() - start
    bare = totals["bare"] / (blocks * steps)
    monitored = totals["monitored"] / (blocks * steps)
    recorded = len(callback.history)
    logs = {"loss": 1.0}
    calls = 100_000
    start = time.perf_counter()
    for _ in range(calls):
        callback.steps = 1  # a non-recording batch
        callback.on_train_batch_end(0, logs)
    call = (time.perf_counter() - start) / calls
    times = []
    for _ in range(5):  # the gradients of the last batch are still in .grad
        start = time.perf_counter()
        callback._record(0, 0, logs)
        times.append(time.perf_counter() - start)
    record = statistics.median(times)
    predicted = (call + record / EVERY) / bare
    print(
        f"{'Keras MLP 3x1024, batch 128':<30} bare {bare * 1e3:8.2f} ms/step   monitored {monitored * 1e3:8.2f} ms/step   "
        f"ratio {monitored / bare:6.3f}\n"
        f"{'':<30} non-recording call {call * 1e6:5.2f} us, recording step {record * 1e3:6.2f} ms "
        f"-> predicted overhead {100 * predicted:.2f} %  ({recorded} records in the run)"
    )
    return monitored / bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50, help="training steps per block")
    parser.add_argument("--blocks", type=int, default=8, help="blocks per mode (they alternate)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default); one "
                        "thread gives steadier figures on a shared machine")
    parser.add_argument("--no-keras", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, every={EVERY}, "
          f"{args.blocks} x {args.steps} steps per mode, blocks alternating")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        ratios.append(torch_case("MLP 784-3x1024-10, batch 128", mlp(), torch.randn(128, 784), args.steps,
                                 args.blocks, Path(tmp) / "mlp.jsonl"))
        ratios.append(torch_case("CNN 6 conv+BN, batch 64, 32px", cnn(), torch.randn(64, 3, 32, 32), args.steps,
                                 args.blocks, Path(tmp) / "cnn.jsonl"))
        if not args.no_keras:
            ratio = keras_case(args.steps, args.blocks, Path(tmp) / "keras.jsonl")
            if ratio is not None:
                ratios.append(ratio)
    worst = max(ratios)
    print(f"worst ratio {worst:.3f} ({100 * (worst - 1):+.1f} %; target <= +5 %)")


if __name__ == "__main__":
    main()
