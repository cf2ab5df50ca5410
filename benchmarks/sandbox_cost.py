"""What the kernel's OS sandbox (autograder/kernel_sandbox.py) costs per notebook.

For every DAY, executes its reference sample as the grader does (COURSE_GRADING=1, one thread per
kernel, nbclient) twice, alternating: once with jupyter's plain kernel manager and once with
``nbgrader_ext.SandboxedKernelManager``; prints the best of ``--repeat`` runs of each and the extra
time in percent. Also the bare start-up cost of the sandbox (a kernel-less ``python -c pass``).
nbgrader's bookkeeping and the feedback are the same either way, so this is the sandbox's whole cost,
against the notebook's execution alone (the stricter comparison). Target (issue 33): at most +20 %.

    sudo python benchmarks/sandbox_cost.py [--repeat 2] [--days day1_optimization day6_dqn]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import nbformat  # noqa: E402
from jupyter_client import AsyncKernelManager  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

from autograder import kernel_sandbox  # noqa: E402
from autograder.build import sample_path  # noqa: E402
from autograder.nbgrader_ext import SandboxedKernelManager, kernel_environment  # noqa: E402
from course.days import assignments  # noqa: E402


def execute(aid: str, manager) -> float:
    nb = nbformat.read(sample_path(aid, "reference"), as_version=4)
    with tempfile.TemporaryDirectory(prefix="course-bench-") as cwd:
        t0 = time.perf_counter()
        NotebookClient(nb, kernel_manager_class=manager, timeout=600, allow_errors=False).execute(cwd=cwd)
        return time.perf_counter() - t0


def startup(wrapped: bool, n: int = 5) -> float:
    cmd = [sys.executable, "-c", "pass"]
    with tempfile.TemporaryDirectory(prefix="course-bench-") as cwd:
        t0 = time.perf_counter()
        for _ in range(n):
            subprocess.run(kernel_sandbox.wrap(cmd, "") if wrapped else cmd, check=True, cwd=cwd)
        return (time.perf_counter() - t0) / n


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=2, help="runs of each setting per DAY; the best counts")
    p.add_argument("--days", nargs="*", default=list(assignments()), help="assignment ids (default: all)")
    args = p.parse_args()
    works, why = kernel_sandbox.available()
    if not works:
        print(f"no kernel sandbox on this machine: {why}", file=sys.stderr)
        return 1
    os.environ.update(kernel_environment(threads=1))
    plain, boxed = startup(False), startup(True)
    print(f"start-up: python -c pass {plain * 1000:.0f} ms, in the sandbox {boxed * 1000:.0f} ms "
          f"(+{(boxed - plain) * 1000:.0f} ms per kernel)")
    print(f"{'DAY':<20} {'plain s':>8} {'sandbox s':>10} {'extra':>7}")
    worst = 0.0
    for aid in args.days:
        times = {"plain": [], "sandbox": []}
        for _ in range(args.repeat):
            times["plain"].append(execute(aid, AsyncKernelManager))
            times["sandbox"].append(execute(aid, SandboxedKernelManager))
        a, b = min(times["plain"]), min(times["sandbox"])
        worst = max(worst, b / a - 1)
        print(f"{aid:<20} {a:>8.1f} {b:>10.1f} {100 * (b / a - 1):>+6.1f}%", flush=True)
    print(f"worst extra: {100 * worst:+.1f}% (target: at most +20%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
