"""The processes `course grade` starts, and how they all end.

Each submission is graded by a worker process (and the kernel it starts) in a process group of
its own. When grading stops early (a signal, Ctrl-C, a submission over its time), every worker
and every process below it is killed: its kernel included, which jupyter_client puts in a
session of its own, so killing the worker's group alone would leave it running. Where the
sandbox gives the worker its own PID namespace (sandbox.py), the kernel cannot outlive the
worker at all, nor see or signal the grader.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
STOP_SIGNALS = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT", signal.SIGHUP: "SIGHUP"}

_lock = threading.Lock()
_running: set[subprocess.Popen] = set()
_stopping = threading.Event()
_adopting = threading.Event()  # set once this process adopts orphans (the `course grade` command)


class Stopped(Exception):
    """Grading was told to stop (by a signal); ``signal_name`` says which."""

    def __init__(self, signal_name: str):
        super().__init__(signal_name)
        self.signal_name = signal_name


def _prctl(option: int, value: int) -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def adopt_orphans() -> None:
    """Make this process the one that orphans below it are handed to (Linux), so that a process
    whose parent died is still found by :func:`descendants` and ended."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _adopting.set()


def _children_table() -> dict[int, list[int]]:
    """parent pid -> its children's pids, read once from /proc ({} where there is no /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    return children


def descendants(pid: int, table: dict[int, list[int]] | None = None) -> list[int]:
    """Every process below ``pid`` (children first), from /proc (or from ``table``, read once)."""
    table = _children_table() if table is None else table
    found, todo = [], [pid]
    while todo:
        for child in table.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc``, its process group and everything below it, then reap it."""
    below = descendants(proc.pid)
    for pid in below:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _child_setup(memory_gb: float | None):
    """Run in the child before it starts: die with the grader; cap the data segment (inherited by the kernel)."""
    def setup():
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if memory_gb:
            limit = int(memory_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    return setup


def run(cmd: list[str], cwd: Path, env: dict, timeout: float, log, memory_gb: float | None = None) -> int | None:
    """Run ``cmd`` in its own process group and return its exit status (negative: killed by that signal).
    None when it ran past ``timeout`` seconds; it and everything below it were killed then.
    Raises :class:`Stopped` if grading is stopping (the command is not started, or killed)."""
    with _lock:
        if _stopping.is_set():
            raise Stopped("stop")
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_child_setup(memory_gb))
        _running.add(proc)
    try:
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_tree(proc)
            return None
        kill_orphans()  # the worker is gone; nothing it started may stay behind
        if _stopping.is_set():
            raise Stopped("stop")
        return rc
    finally:
        with _lock:
            _running.discard(proc)


def kill_orphans() -> None:
    """Kill the processes handed to this one (see :func:`adopt_orphans`) that are no running worker, and
    everything below them. Without the subreaper, orphans go to init instead and this finds none."""
    if not _adopting.is_set():
        return  # other children of this process (a test's Dask cluster, say) are not ours to end
    with _lock:  # no worker starts meanwhile, so every child that is not a running worker is an orphan
        workers = {p.pid for p in _running}
        table = _children_table()
        for pid in set(table.get(os.getpid(), [])) - workers:
            for p in [*descendants(pid, table), pid]:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(p, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)  # reap it: it is this process's child now


def stop_all() -> int:
    """Start no more commands and kill every running one with all its processes; returns how many.
    A later :func:`stop_on_signals` block starts afresh."""
    with _lock:
        _stopping.set()
        running = list(_running)
    for proc in running:
        kill_tree(proc)
    kill_orphans()
    return len(running)


def reset() -> None:
    """Allow commands again (a new grading run after a stopped one, in the same process)."""
    _stopping.clear()


@contextlib.contextmanager
def stop_on_signals():
    """Inside the block, SIGTERM, SIGINT and SIGHUP raise :class:`Stopped` in the main thread
    (where grading waits), instead of ending this process and leaving its workers running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if not _stopping.is_set():  # the first signal stops grading; more while it winds down are ignored
            _stopping.set()
            raise Stopped(STOP_SIGNALS[signum])

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
