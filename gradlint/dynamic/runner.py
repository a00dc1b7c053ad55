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
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gradlint.dynamic.contain import kill_tree, read_head, read_tail
from gradlint.dynamic.results import (
    DynamicOptions,
    DynamicResult,
    DynamicTarget,
    LayerMeasurement,
    hint_json,
)
from gradlint.records import dataclass

# Written by the worker's guard when the model's own process died of a signal (worker.py).
_GUARD_MARKER = "gradlint-worker: the model's process ended by signal"
# The directory that holds the `gradlint` package, so the worker imports this same copy.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def _fmt_seconds(seconds: float) -> str:
    return f"{seconds:g}"


def _lookup(mapping: dict[str, Any], target: DynamicTarget) -> Any:
    """Per-model options are keyed by display name; path:name, the symbol and "*" work too."""
    for key in (f"{target.path}:{target.model}", target.model, target.symbol, "*"):
        if key in mapping:
            return mapping[key]
    return None


def build_job(target: DynamicTarget, options: DynamicOptions, threads: int | None = None) -> dict[str, Any]:
    shape = _lookup(options.input_shapes, target)
    return {
        "path": str(Path(target.path).resolve()),
        # relative paths in the user's file resolve as they would for the script itself
        "cwd": str(Path(target.path).resolve().parent),
        "model": target.model,
        "line": target.line,
        "kind": target.kind,
        "symbol": target.symbol,
        "framework": target.framework,
        "end_line": target.end_line,
        "input_hint": hint_json(target.input_hint),
        "input_shape": list(shape) if shape else None,
        "model_args": _lookup(options.model_args, target) or {},
        "seeds": options.seeds,
        "batch_size": options.batch_size,
        "sequence_length": options.sequence_length,
        "image_size": options.image_size,
        "thresholds": options.thresholds_json(),
        "threads": threads,
    }


def apply_limits(memory_mb: int) -> None:
    """Memory cap (RLIMIT_AS) and no core files, in the process that will run the model.

    Called between fork and exec for a fresh worker, and in each fork-server child.
    """
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a segfaulting model leaves no core file
    if memory_mb > 0:
        cap = memory_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


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


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["KERAS_BACKEND"] = "torch"  # gradients are taken with torch autograd, Keras included
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    # glibc reserves 64 MB of address space per malloc arena (one per thread); without a cap
    # on arenas RLIMIT_AS can trip on many-core machines before any real allocation.
    env.setdefault("MALLOC_ARENA_MAX", "4")
    # OpenMP threads that spin while waiting make every op of a small model crawl when the
    # machine is busy (measured on 2 shared cores: 16 s instead of 1 s for a 16-block MLP);
    # passive waiting costs nothing measurable when it is idle.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


@dataclass
class _Outcome:
    """How a worker process ended, whichever way it was started."""

    payload: dict[str, Any] | None  # the JSON result, if the worker wrote one
    exit_code: int | None  # -N: killed by signal N; None: timed out
    log: str  # the worker's stderr (user prints, tracebacks, faulthandler dumps)
    seconds: float
    guarded: bool = False  # a fresh worker: the model ran in a child of a guard process


def _interpret(result: DynamicResult, outcome: _Outcome, options: DynamicOptions) -> DynamicResult:
    result.seconds = round(outcome.seconds, 3)
    if outcome.exit_code is None:
        result.status, result.reason = "failed", f"timed out after {_fmt_seconds(options.timeout)} s"
    elif outcome.exit_code < 0 and outcome.guarded and _GUARD_MARKER not in outcome.log:
        # The guard between gradlint and the model died, not the model's own process. Checked
        # before the payload: the model's process may still have written a result before the
        # tree was killed (a race), but a model that kills its parent is not measured.
        result.status, result.reason = "failed", (f"the worker process was killed by signal {-outcome.exit_code} "
                                                  "while the model ran (did the model kill its parent process?)")
    elif outcome.payload is not None:
        _fill(result, outcome.payload)
    elif outcome.exit_code < 0:
        result.status, result.reason = "failed", _signal_reason(outcome.exit_code)
    else:
        tail = _stderr_tail(outcome.log)
        result.status = "failed"
        result.reason = (f"worker exited with status {outcome.exit_code} without a result"
                         + (f": {tail}" if tail else ""))
    return result


def _run_subprocess(job: dict[str, Any], options: DynamicOptions) -> _Outcome:
    """A fresh interpreter for one job: `python -m gradlint.dynamic.worker`, in its own session.

    Its stdout (the result) and stderr (the model's prints) go to files read back bounded;
    when it ends or times out, its whole process tree is killed (gradlint.dynamic.contain)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gradlint-worker-") as tmp:
        out_path, log_path = Path(tmp) / "result.json", Path(tmp) / "worker.log"
        with open(out_path, "wb") as out, open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [options.python or sys.executable, "-m", "gradlint.dynamic.worker"],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=log,
                cwd=job["cwd"],
                env=_worker_env(),
                start_new_session=True,  # its own process group: a timeout kills the model's children too
                preexec_fn=lambda: apply_limits(options.memory_mb),
            )
        timed_out = False
        try:
            try:
                assert proc.stdin is not None
                proc.stdin.write(json.dumps(job).encode())
                proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass  # the worker died at once: its exit status says why
            try:
                proc.wait(timeout=max(options.timeout - (time.monotonic() - started), 0.001))
            except subprocess.TimeoutExpired:
                timed_out = True
        finally:  # also on KeyboardInterrupt: never leave the model running
            kill_tree(proc.pid)
            proc.wait()
        log_text = read_tail(log_path)
        if timed_out:
            return _Outcome(None, None, log_text, time.monotonic() - started)
        raw = read_head(out_path)
        return _Outcome(_parse_payload(raw.decode("utf-8", "replace")) if raw else None, proc.returncode, log_text,
                        time.monotonic() - started, guarded=hasattr(os, "fork"))


class ForkServer:
    """Parent side of `python -m gradlint.dynamic.forkserver` (protocol in forkserver.py).

    torch/keras are imported once in the server; each job runs in a child forked from it.
    Thread-safe: run() may be called from several threads.
    """

    def __init__(self, frameworks: Sequence[str], options: DynamicOptions) -> None:
        self.options = options
        self.tmp = tempfile.TemporaryDirectory(prefix="gradlint-dynamic-")
        self.server_log = open(Path(self.tmp.name) / "server.log", "w+", encoding="utf-8")
        self.proc = subprocess.Popen(
            [options.python or sys.executable, "-m", "gradlint.dynamic.forkserver", *sorted(set(frameworks))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.server_log,
            env=_worker_env(),
            start_new_session=True,
            text=True,
            encoding="utf-8",
        )
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.messages: dict[Any, list[dict[str, Any]]] = {}
        self.ready: bool | None = None
        self.error: str | None = None
        self.next_id = 0
        self.died_with_job = False  # the server died while one of our jobs was in it
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self.changed:
                if "ready" in message:
                    self.ready, self.error = bool(message["ready"]), message.get("error")
                else:
                    self.messages.setdefault(message["id"], []).append(message)
                self.changed.notify_all()
        with self.changed:  # the server is gone: wake everyone up
            if self.ready is None:
                self.ready, self.error = False, "fork server exited during start-up"
            self.changed.notify_all()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float = 180.0) -> bool:
        with self.changed:
            self.changed.wait_for(lambda: self.ready is not None, timeout)
            return bool(self.ready)

    def _wait_message(self, job_id: int, key: str, timeout: float | None) -> dict[str, Any] | None:
        def found() -> dict[str, Any] | None:
            return next((m for m in self.messages.get(job_id, []) if key in m), None)

        with self.changed:
            self.changed.wait_for(lambda: found() is not None or not self.alive, timeout)
            return found()

    def run(self, job: dict[str, Any]) -> _Outcome | None:
        """Run one job in a forked child. None only when the job certainly did not start (the
        server was gone before it could read it): the caller may then run it elsewhere. A
        server that dies once the job is sent -- the model may have killed it -- gives a
        failed outcome: that model is never run again."""
        with self.lock:
            job_id = self.next_id
            self.next_id += 1
        files = Path(self.tmp.name)
        job = dict(job, id=job_id, memory_mb=self.options.memory_mb,
                   result_path=str(files / f"{job_id}.json"), log_path=str(files / f"{job_id}.log"))
        started = time.monotonic()
        if not self.alive:
            return None
        try:
            with self.lock:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps(job) + "\n")
                self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return None  # nothing was read: the job never started
        forked = self._wait_message(job_id, "pid", 30.0)
        if forked is None:
            return self._server_died(job, started)
        pid = int(forked["pid"])
        remaining = self.options.timeout - (time.monotonic() - started)
        ended = self._wait_message(job_id, "exit", max(remaining, 0.0))
        timed_out = False
        if ended is None:
            if not self.alive:
                kill_tree(pid)
                return self._server_died(job, started)
            timed_out = True
            kill_tree(pid)
            ended = self._wait_message(job_id, "exit", 30.0)
        kill_tree(pid, include_root=False)  # its session, whatever it left running
        seconds = time.monotonic() - started
        log = read_tail(job["log_path"])
        payload = None if timed_out else _load_json(job["result_path"])
        exit_code = None if timed_out else (int(ended["exit"]) if ended is not None else -signal.SIGKILL)
        return _Outcome(payload, exit_code, log, seconds)

    def _server_died(self, job: dict[str, Any], started: float) -> _Outcome:
        self.died_with_job = True
        tail = _stderr_tail(read_tail(job["log_path"]))
        return _Outcome({"status": "failed", "reason": (
            "the fork server running this model died (did the model kill its parent process?); "
            "the model was not run again" + (f": {tail}" if tail else ""))}, 0, "", time.monotonic() - started)

    def close(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # the server finishes and exits on end of input
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            kill_tree(self.proc.pid)
            self.proc.wait()
        kill_tree(self.proc.pid)  # its session: nothing a model started survives the run
        self.server_log.close()
        self.tmp.cleanup()


def _load_json(path: str) -> dict[str, Any] | None:
    raw = read_head(path)
    if raw is None:
        return None
    try:
        data = json.loads(raw.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and "status" in data else None


def run_one(
    target: DynamicTarget,
    options: DynamicOptions,
    threads: int | None = None,
    server: _Servers | ForkServer | None = None,
) -> DynamicResult:
    """Measure one target in its own process; never raises for problems of the model."""
    result = DynamicResult(path=target.path, model=target.model, line=target.line, status="failed")
    missing = _framework_missing(target.framework)
    if missing:
        result.status, result.reason = "skipped", missing
        return result
    if not Path(target.path).is_file():
        result.status, result.reason = "skipped", f"file not found: {target.path}"
        return result
    job = build_job(target, options, threads)
    outcome = server.run(job) if server is not None else None
    if outcome is None:  # no server, or it died: a fresh interpreter for this model
        outcome = _run_subprocess(job, options)
    return _interpret(result, outcome, options)


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
    for key in ("loss", "relative_grad", "first_relative_grad"):
        value = payload.get(key)
        setattr(result, key, None if value is None else float(value))
    result.evidence = [str(e) for e in payload.get("evidence") or []]
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


def _start_server(targets: Sequence[DynamicTarget], options: DynamicOptions) -> ForkServer | None:
    """A fork server when it is safe and pays off; None means one fresh interpreter per model."""
    if not options.fork_server or not hasattr(os, "fork") or sys.platform != "linux":
        return None  # fork after importing torch is only trusted on Linux
    frameworks = {t.framework for t in targets if t.framework in ("torch", "keras")}
    if not frameworks or any(_framework_missing(f) for f in frameworks):
        return None
    server = ForkServer(sorted(frameworks), options)
    if server.wait_ready():
        return server
    server.close()
    return None


class _Servers:
    """The fork server of a run, restarted (at most ``MAX_RESTARTS`` times) when a model kills
    it; after that, or when none can start, one fresh interpreter per model."""

    MAX_RESTARTS = 2

    def __init__(self, targets: Sequence[DynamicTarget], options: DynamicOptions) -> None:
        self.targets, self.options = targets, options
        self.lock = threading.Lock()
        self.current = _start_server(targets, options)
        self.restarts = 0

    def run(self, job: dict[str, Any]) -> _Outcome | None:
        server = self._live()
        return server.run(job) if server is not None else None

    def _live(self) -> ForkServer | None:
        with self.lock:
            server = self.current
            if server is None or server.alive:
                return server
            server.close()
            self.current = None
            if self.restarts < self.MAX_RESTARTS:
                self.restarts += 1
                self.current = _start_server(self.targets, self.options)
            return self.current

    def close(self) -> None:
        with self.lock:
            if self.current is not None:
                self.current.close()
                self.current = None


def run_dynamic(targets: Sequence[DynamicTarget], options: DynamicOptions) -> list[DynamicResult]:
    jobs = max(1, min(options.jobs, len(targets) or 1))
    # Concurrent workers share the cores instead of each starting one thread per core.
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    progress = _Progress(len(targets), options.progress)
    server = _Servers(targets, options) if targets else None

    def work(target: DynamicTarget) -> DynamicResult:
        progress.update(starting=target)
        result = run_one(target, options, threads, server)
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
        if server is not None:
            server.close()

    if options.plot_dir:
        _plot_all(results, options.plot_dir)
    return results


def _plot_all(results: list[DynamicResult], plot_dir: str) -> None:
    try:
        from gradlint.dynamic.plot import (
            plot_result,  # matplotlib only when plots are asked for
        )
    except ImportError as exc:
        for result in results:
            if result.status == "measured":
                result.reason = f"{result.reason or ''} (no plot: {exc})".strip()
        return
    Path(plot_dir).mkdir(parents=True, exist_ok=True)
    for result in results:
        if result.status == "measured" and result.layers:
            result.plot = plot_result(result, plot_dir)
