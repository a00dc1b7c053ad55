"""Parent side of the dynamic check: one subprocess per model, timeout, memory cap, progress.

Never imports torch or keras: the worker (``python -m gradlint.dynamic.worker``) does.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

from gradlint.dynamic import DynamicOptions, DynamicResult, DynamicTarget, LayerMeasurement

# The directory that holds the `gradlint` package, so the worker imports this same copy.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def _fmt_seconds(seconds: float) -> str:
    return f"{seconds:g}"


def _lookup(mapping: dict[str, Any], target: DynamicTarget) -> Any:
    """Per-model options are keyed by display name; the symbol and path:name work too."""
    for key in (f"{target.path}:{target.model}", target.model, target.symbol):
        if key in mapping:
            return mapping[key]
    return None


def build_job(target: DynamicTarget, options: DynamicOptions, threads: int | None = None) -> dict[str, Any]:
    shape = _lookup(options.input_shapes, target)
    return {
        "path": str(Path(target.path).resolve()),
        "model": target.model,
        "line": target.line,
        "kind": target.kind,
        "symbol": target.symbol,
        "framework": target.framework,
        "end_line": target.end_line,
        "input_hint": target.input_hint.to_json() if target.input_hint else None,
        "input_shape": list(shape) if shape else None,
        "model_args": _lookup(options.model_args, target) or {},
        "seeds": options.seeds,
        "batch_size": options.batch_size,
        "sequence_length": options.sequence_length,
        "image_size": options.image_size,
        "thresholds": options.thresholds_json(),
        "threads": threads,
    }


def _limits(memory_mb: int) -> Callable[[], None]:
    def apply() -> None:  # runs in the child between fork and exec
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a segfaulting model leaves no core file
        if memory_mb > 0:
            cap = memory_mb * 1024 * 1024
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard != resource.RLIM_INFINITY:
                cap = min(cap, hard)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    return apply


def _framework_missing(framework: str) -> str | None:
    # find_spec locates a package without importing it.
    needed = ["torch"] + (["keras"] if framework == "keras" else [])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        return f"{' and '.join(missing)} not installed; install the dynamic extra: pip install -e '.[dynamic]'"
    return None


def _signal_reason(returncode: int) -> str:
    number = -returncode
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = "unknown signal"
    reason = f"killed by signal {number} ({name})"
    if number == signal.SIGKILL:
        reason += "; the system may have run out of memory"
    return reason


def _stderr_tail(stderr: str, lines: int = 3) -> str:
    tail = [line for line in stderr.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(line.strip() for line in tail)


def run_one(target: DynamicTarget, options: DynamicOptions, threads: int | None = None) -> DynamicResult:
    """Measure one target in its own subprocess; never raises for problems of the model."""
    result = DynamicResult(path=target.path, model=target.model, line=target.line, status="failed")
    missing = _framework_missing(target.framework)
    if missing:
        result.status, result.reason = "skipped", missing
        return result
    if not Path(target.path).is_file():
        result.status, result.reason = "skipped", f"file not found: {target.path}"
        return result

    env = dict(os.environ)
    env["KERAS_BACKEND"] = "torch"  # gradients are taken with torch autograd, Keras included
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONFAULTHANDLER"] = "1"
    # glibc reserves 64 MB of address space per malloc arena (one per thread); without a cap
    # on arenas RLIMIT_AS can trip on many-core machines before any real allocation.
    env.setdefault("MALLOC_ARENA_MAX", "4")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    job = json.dumps(build_job(target, options, threads))
    python = options.python or sys.executable
    started = time.monotonic()
    proc = subprocess.Popen(
        [python, "-m", "gradlint.dynamic.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=str(Path(target.path).resolve().parent),  # relative paths in the user's file resolve as for a script
        env=env,
        start_new_session=True,  # its own process group: a timeout kills the model's children too
        preexec_fn=_limits(options.memory_mb),
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    try:
        stdout, stderr = proc.communicate(job, timeout=options.timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        result.reason = f"timed out after {_fmt_seconds(options.timeout)} s"
        result.seconds = round(time.monotonic() - started, 3)
        return result
    except BaseException:  # KeyboardInterrupt: do not leave the model running
        _kill_group(proc)
        proc.communicate()
        raise
    result.seconds = round(time.monotonic() - started, 3)

    payload = _parse_payload(stdout)
    if payload is None:
        if proc.returncode < 0:
            result.reason = _signal_reason(proc.returncode)
        else:
            tail = _stderr_tail(stderr)
            result.reason = f"worker exited with status {proc.returncode} without a result" + (f": {tail}" if tail else "")
        return result
    _fill(result, payload)
    return result


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _parse_payload(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and "status" in data:
            return data
    return None


def _fill(result: DynamicResult, payload: dict[str, Any]) -> None:
    result.status = payload["status"]
    result.reason = payload.get("reason")
    if result.status != "measured":
        return
    result.verdict = payload.get("verdict")
    ratio = payload.get("ratio")
    result.ratio = None if ratio is None else float(ratio)
    activation_ratio = payload.get("activation_ratio")
    result.activation_ratio = None if activation_ratio is None else float(activation_ratio)
    result.layers = [LayerMeasurement.from_json(layer) for layer in payload.get("layers", [])]
    shape = payload.get("input_shape")
    result.input_shape = tuple(shape) if shape else None
    result.input_kind = payload.get("input_kind")
    result.seeds = int(payload.get("seeds", 0))


class _Progress:
    """One self-overwriting status line on stderr, only on a TTY and for several models."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled and total > 1 and sys.stderr.isatty()
        self.lock = threading.Lock()

    def update(self, finished: DynamicResult | None = None, starting: DynamicTarget | None = None) -> None:
        if not self.enabled:
            return
        with self.lock:
            if finished is not None:
                self.done += 1
            label = f" {starting.model} ({Path(starting.path).name}:{starting.line})" if starting else ""
            sys.stderr.write(f"\r\x1b[2Kgradlint dynamic [{self.done}/{self.total}]{label}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()


def run_dynamic(targets: Sequence[DynamicTarget], options: DynamicOptions) -> list[DynamicResult]:
    jobs = max(1, min(options.jobs, len(targets) or 1))
    # Concurrent workers share the cores instead of each starting one thread per core.
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    progress = _Progress(len(targets), options.progress)

    def work(target: DynamicTarget) -> DynamicResult:
        progress.update(starting=target)
        result = run_one(target, options, threads)
        progress.update(finished=result)
        return result

    try:
        if jobs == 1:
            results = [work(t) for t in targets]
        else:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                results = list(pool.map(work, targets))
    finally:
        progress.close()

    if options.plot_dir:
        _plot_all(results, options.plot_dir)
    return results


def _plot_all(results: list[DynamicResult], plot_dir: str) -> None:
    try:
        from gradlint.dynamic import plot  # matplotlib only when plots are asked for
    except ImportError as exc:
        for result in results:
            if result.status == "measured":
                result.reason = f"{result.reason or ''} (no plot: {exc})".strip()
        return
    Path(plot_dir).mkdir(parents=True, exist_ok=True)
    for result in results:
        if result.status == "measured" and result.layers:
            result.plot = plot.plot_result(result, plot_dir)
