"""Mutation score of the checks: cosmic-ray mutates every solution region of every reference.py, and
each DAY's check-level tests must notice.

For each DAY, in a copy of this working tree (the mutants are written to disk, so the checkout is
never touched): ``cosmic-ray init`` over ``solutions/<day>/reference.py``, ``cr-filter-lines`` to keep
only the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION``, then ``cosmic-ray exec``.
The test command runs the DAY's "the reference passes" tests (its visible checks and hidden tests on
the reference, on fresh seeds): a mutant is killed when they fail.

Prints the score per DAY and per exercise (grade_id), and every survivor with its diff. A survivor
listed in tests/equivalent_mutants.md (a reviewed file: DAY, the line before and after, and why it
changes nothing a docstring promises) counts as equivalent, not as a miss. Not part of `make test`:
it takes as long as it takes (a few seconds per mutant; DAYs run in parallel with --jobs).

    python benchmarks/mutation_score.py [--days day6_dqn ...] [--jobs 2] [--keep DIR] [--recheck OLD]
    make mutation

``--recheck OLD`` (a folder an earlier run kept with --keep) reruns only that run's survivors against
the checks as they are now, and scores them with the earlier run's killed mutants: the way to measure
"after" once the checks were strengthened, in minutes instead of hours. It refuses a DAY whose solution
regions changed since (the mutants' positions would no longer be valid); run that DAY in full.
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from course.days import assignments  # noqa: E402

EQUIVALENT = REPO / "tests" / "equivalent_mutants.md"
COPIED = ["autograder", "course", "data", "solutions", "tests", "nbgrader_config.py", "pyproject.toml"]
TIMEOUT = 300.0  # seconds per test run: a mutant that loops forever counts as killed


def solution_lines(source: str) -> list[tuple[int, int]]:
    """The 1-based line ranges strictly between each ``### BEGIN SOLUTION`` and ``### END SOLUTION``."""
    ranges, start = [], None
    for number, line in enumerate(source.splitlines(), 1):
        if line.strip() == "### BEGIN SOLUTION":
            start = number + 1
        elif line.strip() == "### END SOLUTION" and start is not None:
            if number - 1 >= start:
                ranges.append((start, number - 1))
            start = None
    return ranges


def exercise_of_line(source: str, exercises: dict[str, list[str]]) -> dict[int, str]:
    """Line number -> the grade_id whose objects (top-level functions and classes) hold it."""
    owner = {name: gid for gid, names in exercises.items() for name in names}
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in owner:
            for number in range(node.lineno, node.end_lineno + 1):
                found[number] = owner[node.name]
    return found


def exercises_of(day: str) -> dict[str, list[str]]:
    """grade_id -> the reference's object names its solution cell includes: the ``# include:`` line
    under each ``# %% tags=["solution:<grade_id>"]`` of solutions/<day>/notebook.py."""
    found, gid = {}, None
    for line in (REPO / "solutions" / day / "notebook.py").read_text(encoding="utf-8").splitlines():
        tag = re.match(r'# %% tags=\["solution:([\w-]+)"\]', line)
        if tag:
            gid = tag.group(1)
        elif gid and line.startswith("# include:"):
            found.setdefault(gid, []).extend(n.strip() for n in line.split(":", 1)[1].split(",") if n.strip())
        elif not line.startswith("#"):
            gid = None
    return found


def equivalent_mutants() -> set[tuple[str, str, str]]:
    """(DAY, the line before, after) of each reviewed equivalent mutant: the file's table rows
    ``| day | `before` | `after` | why |``."""
    found = set()
    if not EQUIVALENT.exists():
        return found
    for line in EQUIVALENT.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0] in assignments() and cells[1].startswith("`"):
            found.add((cells[0], cells[1].strip("`"), cells[2].strip("`")))
    return found


def changed_lines(diff: str) -> tuple[str, str]:
    """The first removed and added line of a unified diff, stripped."""
    before = next((line[1:].strip() for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")), "")
    after = next((line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")), "")
    return before, after


def copy_course(root: Path) -> None:
    """The files a DAY's tests need (:data:`COPIED`), copied under ``root``."""
    for name in COPIED:
        src = REPO / name
        (shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__")) if src.is_dir()
         else shutil.copy(src, root / name))


def prepare(day: str, root: Path) -> tuple[Path, Path]:
    """A copy of the course under ``root``, and its cosmic-ray config and (initialised, filtered) session."""
    copy_course(root)
    module = f"solutions/{day}/reference.py"
    ranges = solution_lines((root / module).read_text(encoding="utf-8"))
    test = f"{sys.executable} -m pytest -x -q -p no:cacheprovider tests/test_{day}.py -k 'reference and not cuda'"
    config = root / "cosmic-ray.toml"
    config.write_text("\n".join([
        "[cosmic-ray]", f'module-path = "{module}"', f"timeout = {TIMEOUT}", "excluded-modules = []",
        f'test-command = "{test}"', "", "[cosmic-ray.distributor]", 'name = "local"', "",
        "[cosmic-ray.filters.line-filter]", f'lines = {{ "{module}" = [{", ".join(f"{chr(34)}{a}-{b}{chr(34)}" for a, b in ranges)}] }}',
        ""]), encoding="utf-8")
    session = root / "session.sqlite"
    bin_dir = Path(sys.executable).parent
    for cmd in ([bin_dir / "cosmic-ray", "init", config, session], [bin_dir / "cr-filter-lines", "--config", config, session]):
        subprocess.run([str(c) for c in cmd], cwd=root, check=True, capture_output=True, text=True, env=_env(root))
    return config, session


def reuse(day: str, root: Path, old: Path) -> tuple[Path, Path]:
    """A fresh copy of the course under ``root`` whose session is ``old``'s, its survivors' results
    removed so that ``cosmic-ray exec`` runs them again; refused if the solution regions changed."""
    copy_course(root)
    module = f"solutions/{day}/reference.py"
    now, then = ((base / module).read_text(encoding="utf-8").splitlines() for base in (root, old / day))
    ranges = solution_lines("\n".join(now))
    if len(now) != len(then) or ranges != solution_lines("\n".join(then)) or \
            any(now[a - 1:b] != then[a - 1:b] for a, b in ranges):
        raise SystemExit(f"{module} changed inside or before its solution regions since {old} (or that run was "
                         f"stopped while a mutant was applied to its copy); the earlier mutants do not apply to it. "
                         f"Run {day} in full (without --recheck).")
    config, session = root / "cosmic-ray.toml", root / "session.sqlite"
    shutil.copy(old / day / "cosmic-ray.toml", config)  # its paths are relative to the copy
    shutil.copy(old / day / "session.sqlite", session)
    with sqlite3.connect(session) as db:
        db.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'")
    return config, session


def _env(root: Path) -> dict:
    """The environment of a copy's runs: its own course, autograder and solutions come first."""
    return dict(os.environ, PYTHONPATH=str(root))


def pending(session: Path) -> tuple[int, int]:
    """(mutants to run, of which done) in a session."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome

    with use_db(str(session), WorkDB.Mode.open) as db:
        results = [r for _, r in db.results]
        skipped = sum(r.worker_outcome == WorkerOutcome.SKIPPED for r in results)
        return db.num_work_items - skipped, len(results) - skipped


def score(day: str, root: Path, session: Path, equivalent: set) -> tuple[Counter, list[str]]:
    """Per exercise: killed, survived and equivalent counts; and a report line per survivor."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    source = (root / "solutions" / day / "reference.py").read_text(encoding="utf-8")
    owner = exercise_of_line(source, exercises_of(day))
    counts: Counter = Counter()
    survivors = []
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                continue
            line = item.mutations[0].start_pos[0]
            gid = owner.get(line, "(no exercise)")
            if result.test_outcome != TestOutcome.SURVIVED:
                counts[gid, "killed"] += 1
                continue
            before, after = changed_lines(result.diff or "")
            if (day, before, after) in equivalent:
                counts[gid, "equivalent"] += 1
                continue
            counts[gid, "survived"] += 1
            survivors.append(f"  {day} {gid} line {line} ({item.mutations[0].operator_name}): `{before}` -> `{after}`")
    return counts, survivors


def run_day(day: str, root: Path, config: Path, session: Path, failures: dict) -> None:
    proc = subprocess.run([str(Path(sys.executable).parent / "cosmic-ray"), "exec", str(config), str(session)],
                          cwd=root, capture_output=True, text=True, env=_env(root))
    if proc.returncode != 0:
        failures[day] = proc.stderr.strip()[-500:]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", nargs="*", default=None, help="assignment ids (default: every DAY)")
    p.add_argument("--jobs", type=int, default=2, help="DAYs mutated at the same time (each in its own copy)")
    p.add_argument("--keep", type=Path, default=None, help="keep the copies and sessions in this folder")
    p.add_argument("--recheck", type=Path, default=None, metavar="OLD",
                   help="rerun only the survivors of an earlier --keep folder against the checks as they are now")
    args = p.parse_args()
    days = args.days or list(assignments())
    unknown = [d for d in days if d not in assignments()]
    if unknown:
        p.error(f"unknown assignment id(s) {', '.join(unknown)}; choose from {', '.join(assignments())}")
    if shutil.which("cosmic-ray", path=str(Path(sys.executable).parent)) is None:
        p.error("cosmic-ray is not installed in this environment; run `make mutation` (it installs it)")
    work = args.keep or Path(tempfile.mkdtemp(prefix="course-mutation-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    sessions = {}
    if args.recheck is not None:
        missing = [d for d in days if not (args.recheck / d / "session.sqlite").exists()]
        if missing:
            p.error(f"{args.recheck} holds no kept session for {', '.join(missing)}; give a folder of --keep")
    for day in tqdm(days, desc="preparing", unit="DAY"):
        (work / day).mkdir(exist_ok=True)
        sessions[day] = prepare(day, work / day) if args.recheck is None else reuse(day, work / day, args.recheck)
    failures: dict[str, str] = {}
    queue = list(days)
    running: list[threading.Thread] = []
    total = sum(pending(s)[0] for _, s in sessions.values())
    with tqdm(total=total, desc="mutants", unit="mutant") as bar:
        while queue or running:
            running = [t for t in running if t.is_alive()]
            while queue and len(running) < args.jobs:
                day = queue.pop(0)
                t = threading.Thread(target=run_day, args=(day, work / day, *sessions[day], failures), daemon=True)
                t.start()
                running.append(t)
            bar.n = sum(pending(s)[1] for _, s in sessions.values())
            bar.refresh()
            time.sleep(2)
        bar.n = sum(pending(s)[1] for _, s in sessions.values())
        bar.refresh()
    equivalent = equivalent_mutants()
    all_survivors, totals = [], Counter()
    print(f"\nmutation score (killed / (killed + survived); equivalent ones listed in {EQUIVALENT.relative_to(REPO)} "
          "are left out)")
    for day in days:
        counts, survivors = score(day, work / day, sessions[day][1], equivalent)
        all_survivors += survivors
        killed = sum(v for (g, k), v in counts.items() if k == "killed")
        survived = sum(v for (g, k), v in counts.items() if k == "survived")
        eq = sum(v for (g, k), v in counts.items() if k == "equivalent")
        totals.update(killed=killed, survived=survived, equivalent=eq)
        print(f"{day}: {killed}/{killed + survived} killed ({100 * killed / max(killed + survived, 1):.1f}%), "
              f"{eq} equivalent" + (f"; cosmic-ray failed: {failures[day]}" if day in failures else ""))
        for gid in sorted({g for g, _ in counts}):
            k, s, e = counts[gid, "killed"], counts[gid, "survived"], counts[gid, "equivalent"]
            print(f"    {gid:24s} {k}/{k + s} killed" + (f", {e} equivalent" if e else ""))
    k, s = totals["killed"], totals["survived"]
    print(f"all: {k}/{k + s} killed ({100 * k / max(k + s, 1):.1f}%), {totals['equivalent']} equivalent, "
          f"in {time.time() - started:.0f} s")
    if all_survivors:
        print("survivors:")
        print("\n".join(all_survivors))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
