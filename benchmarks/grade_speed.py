"""Grading speed of DAY 1 on this machine.

Measures
  1. for every DAY, the wall time to execute its reference notebook as the grader does
     (COURSE_GRADING=1, nbclient, all cores), without nbgrader's bookkeeping;
  2. the wall time of `course grade` for one submission (execution + autograde + feedback);
  3. throughput of `course grade --jobs 1` against `--jobs 2` on N copies of the reference.

Targets (issue 2): (1) <= 60 s on a 2-core CPU; --jobs 2 at least 1.6x faster than --jobs 1.

    python benchmarks/grade_speed.py [--copies 8] [--exec-only]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

from course.days import assignments  # noqa: E402

ASSIGNMENTS = assignments()
from autograder.build import sample_path  # noqa: E402
from autograder.grade import GradeOptions, grade  # noqa: E402
from autograder.nbgrader_ext import kernel_environment  # noqa: E402

AID = "day1_optimization"
NAME = ASSIGNMENTS[AID]
SAMPLE = sample_path(AID, "reference")


def execute_once(tmp: Path, aid: str = AID) -> float:
    os.environ.update(kernel_environment())
    nb = nbformat.read(sample_path(aid, "reference"), as_version=4)
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp)}}).execute()
    return time.perf_counter() - t0


def grade_copies(tmp: Path, copies: int, jobs: int) -> tuple[float, list]:
    subs = tmp / f"subs{copies}"
    if not subs.exists():
        for i in range(copies):
            (subs / f"student{i:02d}" / AID).mkdir(parents=True)
            shutil.copy(SAMPLE, subs / f"student{i:02d}" / AID / f"{NAME}.ipynb")
    t0 = time.perf_counter()
    results = grade(subs, tmp / f"out-j{jobs}-{copies}", options=GradeOptions(jobs=jobs, progress=False))
    return time.perf_counter() - t0, results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--exec-only", action="store_true", help="only measure 1.")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for aid in ASSIGNMENTS:
            t_exec = execute_once(tmp, aid)
            print(f"1. execute {aid} reference notebook (grading mode): {t_exec:.1f} s (target <= 60 s)")
        if args.exec_only:
            return
        t_one, res = grade_copies(tmp, 1, 1)
        print(f"2. course grade, 1 submission: {t_one:.1f} s (score {res[0].score:g}/{res[0].max_score:g})")
        t1, r1 = grade_copies(tmp, args.copies, 1)
        t2, r2 = grade_copies(tmp, args.copies, 2)
        assert all(r.score == r.max_score for r in r1 + r2), "every copy of the reference must get full marks"
        print(f"3. course grade, {args.copies} copies: --jobs 1 {t1:.1f} s ({args.copies / t1 * 60:.1f} nb/min), "
              f"--jobs 2 {t2:.1f} s ({args.copies / t2 * 60:.1f} nb/min): speed-up {t1 / t2:.2f}x (target >= 1.6x)")


if __name__ == "__main__":
    main()
