"""The `course` command.

    course build [--check]                    make the instructor/student notebooks
    course grade SUBMISSIONS [--out DIR] ...  autograde a class with nbgrader
    course run DAY [--device D] [--quick]     the reference experiment at full scale
    course demo                               build, grade the bundled samples, show grades

build, grade, demo and run are instructor commands: they need the ``solutions/`` and
``autograder/`` folders that sit next to ``course/`` in the course repository. They are
imported only when one of those commands runs, never by the student-facing library.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from course import days

REPO = Path(__file__).resolve().parents[1]


class UsageError(Exception):
    """An expected mistake: printed as one line, exit code 2."""


def _instructor_tools():
    """Make solutions/ and autograder/ importable, or explain why they are not there."""
    if not (REPO / "autograder").is_dir() or not (REPO / "solutions").is_dir():
        raise UsageError("this command needs the instructor's solutions/ and autograder/ folders next to "
                         f"course/ (looked in {REPO}); it is not available in the student edition")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def _resolve_day(day: str) -> str:
    aid = days.resolve(day)
    if aid is None:
        raise UsageError(f"unknown DAY {day!r}; choose one of: {', '.join(days.assignments())}")
    return aid


def cmd_build(args) -> int:
    _instructor_tools()
    from autograder.build import build

    aids = [_resolve_day(a) for a in args.assignment] if args.assignment else list(days.assignments())
    return build(check=args.check, assignments=aids)


def cmd_grade(args) -> int:
    _instructor_tools()
    from autograder.submissions import GradeError, check_root

    aids = [_resolve_day(a) for a in args.assignment] if args.assignment else None
    try:
        check_root(Path(args.submissions))  # answered before the slow imports below
    except GradeError as e:
        raise UsageError(str(e)) from None
    if args.executor == "dask" and not args.scheduler:
        raise UsageError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
    if args.scheduler and args.executor != "dask":
        raise UsageError("--scheduler is only used with --executor dask")
    shard = None
    if args.shard:
        m = re.fullmatch(r"(\d+)/(\d+)", args.shard)
        if not m or not 0 <= int(m.group(1)) < int(m.group(2)):
            raise UsageError(f"--shard takes I/N with 0 <= I < N (e.g. 3/10), not {args.shard!r}")
        shard = (int(m.group(1)), int(m.group(2)))
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda, but torch sees no CUDA GPU on this machine; use --device cpu or auto")
    from autograder import processes
    from autograder.grade import GradeOptions, format_table, grade

    out = Path(args.out)
    options = GradeOptions(jobs=args.jobs, timeout=args.timeout, cell_timeout=args.cell_timeout,
                           memory_gb=args.memory_gb or None, force=args.force,
                           scheduler=args.scheduler if args.executor == "dask" else None, shard=shard,
                           device=None if args.device == "auto" else args.device,
                           unsafe_no_sandbox=args.unsafe_no_sandbox)
    t0 = time.perf_counter()
    processes.adopt_orphans()  # a kernel whose worker died is still ours to end
    try:
        with processes.stop_on_signals():
            results = grade(Path(args.submissions), out, aids, options)
    except GradeError as e:
        raise UsageError(str(e)) from None
    except processes.Stopped as e:
        print(f"course grade: stopped by {e.signal_name}; every grading process it started was ended, the results "
              f"finished so far are kept in {out / 'grades.csv'}, and running the same command again grades the "
              "rest.", file=sys.stderr)
        return 128 + {"SIGHUP": 1, "SIGINT": 2, "SIGTERM": 15}.get(e.signal_name, 15)
    print(format_table(results))
    problems = [r for r in results if r.status != "graded" or r.problem]
    flagged = sum(r.status == "flagged" for r in results)
    print(f"\nGraded {len(results)} submission(s) in {time.perf_counter() - t0:.0f} s; "
          f"{len(problems)} with a problem (named above)"
          + (f", of which {flagged} flagged for review (tampering; see docs/INSTRUCTOR.md)." if flagged else "."))
    print(f"Grades: {out / 'grades.csv'}")
    print(f"Feedback: {out / 'feedback'}/<student>/<assignment>/<notebook>.html")
    return 0


def cmd_run(args) -> int:
    _instructor_tools()
    import importlib

    from course.device import get_device

    aid = _resolve_day(args.day)
    try:
        get_device(args.device)
    except ValueError as e:
        raise UsageError(str(e)) from None
    module = importlib.import_module(f"solutions.{aid}.experiment")
    module.main(device=args.device, quick=args.quick)
    return 0


def cmd_demo(args) -> int:
    _instructor_tools()
    from autograder.build import build, lay_out_samples
    from autograder.grade import GradeOptions, format_table, grade

    t0 = time.perf_counter()
    print("Step 1/2: building the notebooks (course build)")
    build()
    out = Path(args.out)
    print(f"\nStep 2/2: grading the sample submissions of every DAY (solutions/<day>/samples/: the reference, "
          f"the blank skeleton and a buggy one), laid out in {out / 'submissions'}/")
    # The samples are the course's own code: where the machine has no kernel sandbox, grade them anyway.
    results = grade(lay_out_samples(out / "submissions"), out,
                    options=GradeOptions(jobs=args.jobs, unsafe_no_sandbox=True))
    print("\n" + format_table(results))
    print(f"\nDemo finished in {time.perf_counter() - t0:.0f} s.")
    print(f"Grades: {out / 'grades.csv'}")
    print(f"Feedback HTML, one per student and assignment: {out / 'feedback'}/")
    for r in results:
        if r.feedback:
            print(f"  {r.feedback}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="course", description="PyTorch deep-learning course: build, grade, run.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser("build", help="generate instructor and student notebooks and the sample submissions",
                       description="Render solutions/<day>/notebook.py + reference.py into the nbgrader instructor "
                                   "notebook, generate the student notebook with nbgrader, and the sample "
                                   "submissions in solutions/<day>/samples/.")
    b.add_argument("--check", action="store_true", help="write nothing; exit 1 if a generated notebook is stale")
    b.add_argument("--assignment", action="append", metavar="DAY", help="only this DAY (repeatable)")
    b.set_defaults(func=cmd_build)

    g = sub.add_parser("grade", help="autograde a folder of submissions",
                       description="Autograde SUBMISSIONS/<student_id>/<assignment>/<name>.ipynb with nbgrader. "
                                   "Writes OUT/grades.csv and OUT/feedback/<student>/<assignment>/<name>.html. "
                                   "Exits 0 once every submission has been processed, even if some failed; "
                                   "each problem is named in the table and in grades.csv. On SIGTERM, SIGINT or "
                                   "SIGHUP it ends every grading process it started, keeps the finished results and "
                                   "exits 128 + the signal's number; the same command then resumes.")
    g.add_argument("submissions", help="folder laid out as <student_id>/<assignment>/<name>.ipynb")
    g.add_argument("--assignment", action="append", metavar="A", help="grade only this assignment (repeatable)")
    g.add_argument("--out", default="graded", help="output folder (default: %(default)s)")
    g.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: number of cores)")
    g.add_argument("--timeout", type=float, default=900, help="seconds allowed per submission (default: %(default)s)")
    g.add_argument("--cell-timeout", type=float, default=None,
                   help="seconds one cell may run before it is interrupted; later cells still run (default: 180)")
    g.add_argument("--memory-gb", type=float, default=4.0,
                   help="memory each submission's kernel may allocate; 0 for no limit (default: %(default)s)")
    g.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="local: --jobs submissions at once on this machine (default); dask: one task per "
                        "submission on an existing Dask cluster (needs --scheduler and a filesystem shared with "
                        "the workers; see docs/INSTRUCTOR.md)")
    g.add_argument("--scheduler", metavar="ADDRESS", help="the Dask scheduler, e.g. tcp://10.0.0.5:8786")
    g.add_argument("--shard", metavar="I/N",
                   help="grade only every N-th student folder, starting at the I-th (0-based), e.g. "
                        "--shard $SLURM_ARRAY_TASK_ID/10 in a SLURM job array; give each shard its own --out")
    g.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where notebooks and checks run: auto = CUDA when this machine has it (default), "
                        "cpu forces the CPU")
    g.add_argument("--force", action="store_true",
                   help="grade everything again; without it, a re-run into the same --out keeps the rows of "
                        "submissions already graded whose files have not changed (so an interrupted run resumes)")
    g.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="where this machine cannot sandbox the students' kernels (it needs Linux, as root or "
                        "with user namespaces), grade anyway, with the kernels running as you: a hostile submission can then read the "
                        "solutions and change other grades (docs/INSTRUCTOR.md, 'The sandbox')")
    g.set_defaults(func=cmd_grade)

    r = sub.add_parser("run", help="run a DAY's reference experiment",
                       description="Train the reference solution of DAY at full scale (or --quick), save plots "
                                   "under runs/<day>/, and print the final metrics on the last line.")
    r.add_argument("day", help="the DAY: its assignment id (day<N>_<topic>), day<N> or <topic>; one of "
                               f"{', '.join(days.assignments()) or 'none found'}")
    r.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto = cuda if available (COURSE_DEVICE overrides; default: %(default)s)")
    r.add_argument("--quick", action="store_true",
                   help="every experiment and plot at toy sizes, to check the pipeline (under a minute on a CPU)")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="build, grade the bundled samples, print the grade table",
                       description="Run course build, then course grade on the sample submissions of every DAY "
                                   "(reference, blank and buggy, from solutions/<day>/samples/), and show the grades "
                                   "and feedback files.")
    d.add_argument("--out", default="demo-output", help="output folder (default: %(default)s)")
    d.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: number of cores)")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as e:
        print(f"course {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; grades written so far are kept in grades.csv", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
