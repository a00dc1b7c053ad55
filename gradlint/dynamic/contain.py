"""Process containment for the dynamic check: nothing a model starts outlives its measurement.

Each model runs in its own session (so its process group is its own), under a process that is
a *child subreaper* (Linux ``PR_SET_CHILD_SUBREAPER``): processes the model starts and
orphans -- a double-forked daemon, one that called ``setsid()`` to leave the group -- are
re-parented to that process instead of to init, so they stay findable as its descendants.
When the model finishes or times out, the whole tree is killed: every descendant (found
through ``/proc``) and every member of the process group. Elsewhere (no ``/proc``, no prctl)
the process group kill is what remains.

Also: reading what a child wrote, bounded (the head of a result, the tail of a log).

Never imports torch or keras (the parent uses it too).
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import time
from pathlib import Path

_PR_SET_CHILD_SUBREAPER = 36
LOG_TAIL_BYTES = 64 * 1024  # what is kept of a worker's stderr (user prints, tracebacks)
RESULT_BYTES = 32 * 1024 * 1024  # a result JSON larger than this is not ours


def become_subreaper() -> bool:
    """Orphaned descendants are re-parented to this process (Linux >= 3.4); False elsewhere."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _parents() -> dict[int, int] | None:
    """pid -> parent pid of every process, from /proc (None when there is no /proc)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    out: dict[int, int] = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read(4096)
        except OSError:
            continue  # gone already
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses; split after the last ')'
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) >= 2:
            out[int(name)] = int(fields[1])
    return out


def descendants(pid: int) -> list[int]:
    """Every living descendant of ``pid`` (children first), from /proc; [] without /proc."""
    parents = _parents()
    if not parents:
        return []
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    out: list[int] = []
    todo = list(children.get(pid, []))
    seen = {pid}
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def children_of(pid: int) -> list[int]:
    """The living direct children of ``pid`` (from /proc; [] without it)."""
    parents = _parents() or {}
    return [child for child, parent in parents.items() if parent == pid]


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def kill_tree(pid: int, include_root: bool = True, group: bool = True) -> int:
    """SIGKILL ``pid``'s descendants (repeatedly, until none is left: a forking process may
    add some while we kill), its process group (``pid`` leads its own session) and ``pid``
    itself. Returns how many descendants were found."""
    found = 0
    for _ in range(20):
        tree = descendants(pid)
        if group:
            _kill_group(pid)
        if not tree:
            break
        found += len(tree)
        for child in tree:
            _kill(child)
        time.sleep(0.005)
    if include_root:
        _kill(pid)
    return found


def reap_children_quietly() -> None:
    """Collect exited children (zombies) of this process without blocking."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            return
        if pid == 0:
            return


def read_head(path: str | Path, limit: int = RESULT_BYTES) -> bytes | None:
    """At most ``limit`` bytes from the start of a regular file; None if missing or larger."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    return None if len(data) > limit else data


def read_tail(path: str | Path, limit: int = LOG_TAIL_BYTES) -> str:
    """The last ``limit`` bytes of a log as text (a model may print gigabytes: never read whole)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        skipped = max(0, size - limit)
        handle.seek(skipped)
        data = handle.read(limit)
    text = data.decode("utf-8", errors="replace")
    if skipped:
        text = f"[... {skipped} earlier bytes of output not read ...]\n" + text[text.find("\n") + 1:]
    return text
