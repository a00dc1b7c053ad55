"""The dynamic check's fork server: ``python -m gradlint.dynamic.forkserver FRAMEWORK...``.

Child side of ``gradlint.dynamic.runner.ForkServer``; each job runs in a forked child through
``gradlint.dynamic.worker.run_guarded``, as a fresh worker would run it.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import traceback
from typing import Any

from gradlint.dynamic.worker import run_guarded

# --------------------------------------------------------------------------- fork server
#
# Importing torch (and keras) costs seconds per process; the model's own forward/backward
# is usually milliseconds. The server imports them once and forks one child per job: every
# model still gets its own process (own memory cap, own session for the timeout kill, a
# crash or segfault takes only that child), without paying the imports again.
# Protocol on stdin/stdout, one JSON object per line:
#   server -> parent  {"ready": true|false, "error"?: str}
#   parent -> server  a job plus "id", "cwd", "memory_mb", "result_path", "log_path"
#   server -> parent  {"id", "pid"} once forked, then {"id", "pid", "exit"} when reaped
#                     (exit: the exit code, or -N for signal N)


def _fork_child(job: dict[str, Any], protocol_fd: int) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        os.setsid()  # own process group: the parent's timeout kill reaches the model's children
        from gradlint.dynamic.contain import become_subreaper, kill_tree

        become_subreaper()  # what the model starts and orphans stays our descendant
        os.close(protocol_fd)
        log = os.open(job["log_path"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        from gradlint.dynamic.runner import apply_limits

        apply_limits(int(job.get("memory_mb") or 0))
        os.chdir(job["cwd"])
        faulthandler.enable(file=sys.stderr)
        result = run_guarded(job)
        tmp = job["result_path"] + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(result))
        os.replace(tmp, job["result_path"])  # the parent never reads a half-written result
        kill_tree(os.getpid(), include_root=False, group=False)  # nothing the model started outlives it
    except BaseException:  # noqa: BLE001 -- nothing may escape into the server's loop
        code = 70
    finally:
        os._exit(code)


def _fork_selftest() -> str | None:
    """Fork once and run a multi-threaded op in the child: after an OpenMP pool has started,
    a forked child hangs; the parent then falls back to one fresh interpreter per model."""
    import select
    import signal
    import time

    pid = os.fork()
    if pid == 0:
        try:
            import torch

            torch.nn.functional.conv2d(torch.randn(4, 16, 32, 32), torch.randn(16, 16, 3, 3)).sum().item()
        finally:
            os._exit(0)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return None if os.waitstatus_to_exitcode(status) == 0 else "fork self-test failed"
        select.select([], [], [], 0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "a forked child hangs after the imports (OpenMP already started)"


def serve(frameworks: list[str]) -> None:
    import select

    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)

    def send(message: dict[str, Any]) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    try:
        import torch  # noqa: F401 -- the point of the server: children inherit it imported

        if "keras" in frameworks:
            import keras  # noqa: F401
        error = _fork_selftest()
    except BaseException as exc:  # noqa: BLE001
        error = traceback.format_exception_only(type(exc), exc)[-1].strip()
    send({"ready": error is None, "error": error})
    if error is not None:
        return
    from gradlint.dynamic.contain import become_subreaper, children_of, kill_tree

    # Processes that escape a model's session (setsid, then their parent dies) are re-parented
    # here, not to init: they are killed whenever a model ends and when the server stops.
    become_subreaper()

    def kill_strays() -> None:
        for pid in children_of(os.getpid()):
            if pid not in children:
                kill_tree(pid)

    children: dict[int, Any] = {}
    stdin_fd = sys.stdin.fileno()
    buffer = b""
    open_input = True
    while open_input or children:
        readable, _, _ = select.select([stdin_fd] if open_input else [], [], [], 0.02)
        if readable:
            chunk = os.read(stdin_fd, 65536)
            if not chunk:
                open_input = False  # the parent is done (or gone): finish the running children
                if children:
                    _kill_children(children)
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    job = json.loads(line)
                    pid = _fork_child(job, protocol.fileno())
                    children[pid] = job["id"]
                    send({"id": job["id"], "pid": pid})
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            job_id = children.pop(pid, None)
            if job_id is not None:
                kill_tree(pid, include_root=False)  # its group: whatever it left running
                kill_strays()
                send({"id": job_id, "pid": pid, "exit": os.waitstatus_to_exitcode(status)})
    kill_strays()
    protocol.flush()


def _kill_children(children: dict[int, Any]) -> None:
    from gradlint.dynamic.contain import kill_tree

    for pid in children:
        kill_tree(pid)


if __name__ == "__main__":
    serve(sys.argv[1:])
