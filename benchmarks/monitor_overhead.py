"""Step-time overhead of the training monitor at every=100, vs no monitor, in the same run.

    .venv/bin/python benchmarks/monitor_overhead.py [--blocks N] [--threads N] [--no-keras]

Each case trains one model on synthetic data. The run is cut into blocks of 100 training
steps (= ``every``) that alternate, in ABBA order, between *bare* (no monitor) and *monitored*
(``GradientMonitor.step(loss)`` after every backward, recording every 100 steps, JSON-lines
log written to a temporary file). The monitor only sees (and counts) the monitored blocks, so
each monitored block holds exactly one recording step: every block pays the full cost.
Reported per case:

- the **paired ratio**: the median over pairs of adjacent blocks of monitored/bare block time
  (robust to load drift and spikes on a shared machine; this is the figure for the 5 % target);
- the ratio of the total times (sensitive to the same load spikes);
- the monitor's own costs timed alone: one call on a non-recording step (a counter) and one
  recording step (norms from .grad, the record, one log line), and the overhead they predict,
  (call + record / 100) / bare step.

Keras (torch backend): the same with ``model.fit`` epochs of 100 batches, alternating without
and with ``GradientMonitorCallback(every=100)`` on one compiled model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def torch_case(name: str, model: nn.Module, x: torch.Tensor, blocks: int, log: Path) -> float:
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
    times: dict[str, list[float]] = {"bare": [], "monitored": []}
    for b in range(2 * blocks):
        mode = "bare" if b % 4 in (0, 3) else "monitored"  # ABBA: neither mode always goes first
        observe = monitor.step if mode == "monitored" else None
        start = time.perf_counter()
        for _ in range(EVERY):
            train_step(observe)
        times[mode].append((time.perf_counter() - start) / EVERY)
    paired, total = _ratios(times)

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
    _report(name, times, paired, total, call, record, recorded)
    return paired


def _ratios(times: dict[str, list[float]]) -> tuple[float, float]:
    """(median ratio over adjacent bare/monitored block pairs, ratio of total times)."""
    pairs = [m / b for b, m in zip(times["bare"], times["monitored"], strict=True)]  # ABBA: k-th of each are adjacent
    total = sum(times["monitored"]) / sum(times["bare"])
    return statistics.median(pairs), total


def _report(name: str, times: dict[str, list[float]], paired: float, total: float, call: float, record: float,
            recorded: int) -> None:
    bare = statistics.median(times["bare"])
    monitored = statistics.median(times["monitored"])
    predicted = (call + record / EVERY) / bare
    print(
        f"{name:<34} bare {bare * 1e3:7.2f} ms/step  monitored {monitored * 1e3:7.2f} ms/step  "
        f"paired ratio {paired:6.3f}  (totals {total:6.3f}, {len(times['bare'])} pairs)\n"
        f"{'':<34} non-recording call {call * 1e6:5.2f} us, recording step {record * 1e3:5.2f} ms "
        f"-> predicted overhead {100 * predicted:.2f} %  ({recorded} records in the run)"
    )


def keras_case(blocks: int, log: Path) -> float | None:
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
    x = np.random.default_rng(0).standard_normal((batch * EVERY, 784)).astype("float32")
    y = np.random.default_rng(1).integers(0, 10, batch * EVERY)
    callback = GradientMonitorCallback(every=EVERY, log_path=log, warn=False)
    model.fit(x[: batch * 5], y[: batch * 5], batch_size=batch, epochs=1, verbose=0)  # warm-up
    times: dict[str, list[float]] = {"bare": [], "monitored": []}
    for b in range(2 * blocks):
        mode = "bare" if b % 4 in (0, 3) else "monitored"  # ABBA: neither mode always goes first
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False,
                  callbacks=[callback] if mode == "monitored" else [])
        times[mode].append((time.perf_counter() - start) / EVERY)
    paired, total = _ratios(times)
    recorded = len(callback.history)
    logs = {"loss": 1.0}
    calls = 100_000
    start = time.perf_counter()
    for _ in range(calls):
        callback.steps = 1  # a non-recording batch
        callback.on_train_batch_end(0, logs)
    call = (time.perf_counter() - start) / calls
    record_times = []
    for _ in range(5):  # the gradients of the last batch are still in .grad
        start = time.perf_counter()
        callback._record(0, 0, logs)
        record_times.append(time.perf_counter() - start)
    record = statistics.median(record_times)
    _report("Keras MLP 784-3x1024-10, batch 128", times, paired, total, call, record, recorded)
    return paired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=8, help="blocks of 100 steps per mode (they alternate)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default); one "
                        "thread gives steadier figures on a shared machine")
    parser.add_argument("--no-keras", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), every={EVERY}, "
          f"{args.blocks} blocks of {EVERY} steps per mode, ABBA order; times are medians over blocks")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        ratios.append(torch_case("MLP 784-3x1024-10, batch 128", mlp(), torch.randn(128, 784), args.blocks,
                                 Path(tmp) / "mlp.jsonl"))
        ratios.append(torch_case("CNN 6 conv+BN, batch 32, 32px", cnn(), torch.randn(32, 3, 32, 32), args.blocks,
                                 Path(tmp) / "cnn.jsonl"))
        if not args.no_keras:
            ratio = keras_case(args.blocks, Path(tmp) / "keras.jsonl")
            if ratio is not None:
                ratios.append(ratio)
    worst = max(ratios)
    print(f"worst paired ratio {worst:.3f} ({100 * (worst - 1):+.1f} %; target <= +5 %)")


if __name__ == "__main__":
    main()
