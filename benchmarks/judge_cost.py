"""What the judge (autograder/judge.py) costs per notebook: `course grade` before and after it.

Grades the bundled reference and buggy samples of each DAY with ``--jobs 1``, alternately with this
checkout and with a ``git worktree`` of the commit before the judge landed (``--before``, by default the
parent of the commit that introduced autograder/judge.py), ``--repeat`` times each; prints the best
per-notebook seconds (grades.csv) of each and the extra time in percent. The whole grading counts:
kernel, hidden tests, the verdicts in the grader, feedback. Target (issue 33): the sandbox and the judge
together at most +20 % per notebook; benchmarks/sandbox_cost.py measures the sandbox alone.

    python benchmarks/judge_cost.py [--repeat 2] [--days day1_optimization] [--before REV]
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autograder.build import lay_out_samples  # noqa: E402


def first_judge_commit() -> str:
    out = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "--", "autograder/judge.py"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.split()
    return f"{out[-1]}~1"


def grade(tree: Path, subs: Path, out: Path) -> dict[str, float]:
    """Seconds per notebook ("student/assignment") of one `course grade` run with the code of ``tree``."""
    proc = subprocess.run([sys.executable, "-m", "course.cli", "grade", str(subs), "--out", str(out), "--jobs", "1",
                           "--force"], cwd=tree, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(tree)))  # that tree's course/ and autograder/
    if proc.returncode != 0:
        raise SystemExit(f"course grade failed in {tree}: {proc.stderr.strip()[-500:]}")
    return {f"{r['student_id']}/{r['assignment']}": float(r["seconds"]) for r in csv.DictReader(open(out / "grades.csv"))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=2, help="runs of each tree; the best counts")
    p.add_argument("--days", nargs="*", default=["day1_optimization"], help="assignment ids (default: DAY 1)")
    p.add_argument("--before", default=None, help="the commit to compare with (default: the one before the judge)")
    args = p.parse_args()
    before = args.before or first_judge_commit()
    with tempfile.TemporaryDirectory(prefix="course-judge-bench-") as tmp:
        old = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), before], cwd=REPO, check=True,
                       capture_output=True)
        try:
            subs = Path(tmp) / "subs"
            lay_out_samples(subs, args.days, who=("reference", "buggy"))
            best: dict[str, dict[str, float]] = {"before": {}, "after": {}}
            for i in range(args.repeat):
                for label, tree in (("before", old), ("after", REPO)):
                    for key, s in grade(tree, subs, Path(tmp) / f"out-{label}-{i}").items():
                        best[label][key] = min(s, best[label].get(key, float("inf")))
            print(f"before: {before}")
            print(f"{'notebook':<32} {'before s':>9} {'after s':>8} {'extra':>7}")
            for key in sorted(best["after"]):
                a, b = best["before"][key], best["after"][key]
                print(f"{key:<32} {a:>9.1f} {b:>8.1f} {100 * (b / a - 1):>+6.1f}%")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=REPO, capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
