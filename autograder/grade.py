"""`course grade`: grade a folder of submissions with nbgrader, in parallel.

Each (student, assignment) is graded by ``nbgrader autograde`` in a scratch course
directory of its own, with its own copy of the assignment's gradebook. Workers therefore
share no database and can run side by side; one broken submission cannot disturb
another. Results are gathered into ``OUT/grades.csv`` and ``OUT/feedback/``.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from tqdm import tqdm

from autograder.build import ASSIGNMENTS, generate_student, instructor_notebook, nbgrader_env, write_course_config
from autograder import sandbox
from autograder.integrity import repair
from autograder.nbgrader_ext import kernel_environment

# Seconds one whole submission may take (execution, grading and feedback) before it is
# stopped and reported.
SUBMISSION_TIMEOUT = 900
# Memory one submission's processes may each allocate (RLIMIT_DATA, inherited by the
# kernel). A DAY notebook needs well under 2 GB; a runaway allocation then fails inside
# the student's cell with MemoryError instead of starving the machine and other workers.
MEMORY_LIMIT_GB = 4.0
# A submitted file larger than this is not read at all (a notebook with cleared outputs is < 1 MB).
MAX_NOTEBOOK_MB = 300
# Next to grades.csv: the SHA-256 of each graded file, so an interrupted run resumes.
STATE_FILE = "grading-state.json"
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")


@dataclass
class Submission:
    student: str
    assignment: str
    path: Path | None
    problem: str = ""  # found before grading: missing, unreadable, wrongly named ...

    def resolved(self) -> "Submission":
        """The same submission with an absolute path (a Dask worker has another working directory)."""
        return Submission(self.student, self.assignment, self.path.resolve() if self.path else None, self.problem)


@dataclass
class Result:
    student: str
    assignment: str
    score: float
    max_score: float
    status: str  # graded | missing | invalid | error | timeout
    problem: str = ""
    failed_tests: list[str] = field(default_factory=list)
    feedback: Path | None = None
    seconds: float = 0.0
    digest: str = ""  # of the submitted file, so a re-run knows whether it changed


class GradeError(Exception):
    """The command itself cannot run (bad arguments); nothing was graded."""


def find_submissions(root: Path, assignments: list[str] | None) -> list[Submission]:
    """List (student, assignment) pairs under ``root/<student>/<assignment>/<name>.ipynb``.

    Without ``assignments``, every known assignment that appears for any student is
    expected from every student, so a missing one shows up as a row.
    """
    if not root.is_dir():
        raise GradeError(f"{root} is not a folder; pass the folder that holds <student>/<assignment>/<name>.ipynb")
    unknown = [a for a in assignments or [] if a not in ASSIGNMENTS]
    if unknown:
        raise GradeError(f"unknown assignment {unknown[0]!r}; known: {', '.join(ASSIGNMENTS)}")
    students = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not students:
        raise GradeError(f"{root} holds no student folders; expected <student>/<assignment>/<name>.ipynb")
    wanted = assignments or [a for a in ASSIGNMENTS if any((s / a).is_dir() for s in students)]
    if not wanted:
        raise GradeError(f"no assignment folders ({', '.join(ASSIGNMENTS)}) found under {root}/<student>/")
    subs = []
    for s in students:
        for aid in wanted:
            name = ASSIGNMENTS[aid]
            folder, expected = s / aid, s / aid / f"{name}.ipynb"
            if not SAFE_ID.match(s.name):
                subs.append(Submission(s.name, aid, None, f"student folder name {s.name!r} has unusual characters; "
                                                          "rename it to letters, digits, '_', '-', '.' or '@'"))
            elif expected.is_file():
                subs.append(Submission(s.name, aid, expected))
            elif not folder.is_dir():
                subs.append(Submission(s.name, aid, None, f"no {aid}/ folder was submitted"))
            else:
                others = sorted(folder.glob("*.ipynb"))
                if len(others) == 1:
                    subs.append(Submission(s.name, aid, others[0],
                                           f"notebook is named {others[0].name}, expected {name}.ipynb (graded anyway)"))
                else:
                    subs.append(Submission(s.name, aid, None, f"no {name}.ipynb in {aid}/" +
                                           (f" (found {', '.join(o.name for o in others)})" if others else "")))
    return subs


def _limit_memory(gb: float):
    """A preexec_fn that caps the data segment of the child and everything it starts."""
    def apply():
        limit = int(gb * 2**30)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    return apply


def _run(cmd: list[str], cwd: Path, env: dict, timeout: float, log, memory_gb: float | None = None) -> int | None:
    """Run a command in its own process group; kill the whole group on timeout (None)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_limit_memory(memory_gb) if memory_gb else None)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


def _last_error(log_path: Path) -> str:
    lines = [ln.strip() for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln or "Error" in ln]
    text = (errors or lines or ["no output"])[-1]
    return re.sub(r"^\[\w+ \| \w+\]\s*", "", text)[:300]


def runaway_problems(notebook: Path, cell_timeout: float | None, memory_gb: float | None) -> list[str]:
    """One sentence per kind of runaway code seen in an autograded notebook's outputs."""
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception:
        return []
    found: dict[str, int] = {}
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and out.get("ename") in ("KernelDied", "CellTimeoutError",
                                                                          "MemoryError"):
                found.setdefault(out["ename"], i)
    texts = {"KernelDied": "the kernel died in cell {i} (crash, os._exit or out of memory); later tests got 0",
             "CellTimeoutError": f"cell {{i}} ran past the {int(cell_timeout or 180)} s cell limit and was interrupted",
             "MemoryError": f"cell {{i}} hit the {memory_gb or 'system'} GB memory limit (MemoryError)"}
    return [texts[k].format(i=i) for k, i in sorted(found.items(), key=lambda kv: kv[1])]


def tampering_problems(notebook: Path) -> tuple[list[str], list[str]]:
    """(flags, notes): what the tamper guard (autograder/guard.py) found in an autograded notebook,
    as one "flagged for review" sentence; and a note if the guard itself could not start."""
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception:
        return [], []
    failed = nb.metadata.get("course_guard", {}).get("failed")
    notes = [f"the tamper guard could not start ({failed[:150]}); graded without it"] if failed else []
    found, tests = [], 0
    for cell in nb.cells:
        msgs = [o.get("evalue", "") for o in cell.get("outputs", []) if o.get("output_type") == "error"
                and "TAMPERING: " in o.get("evalue", "")]
        if msgs:
            tests += 1
            text = msgs[0].split("TAMPERING: ", 1)[1].replace(" This test gets no credit.", "")
            found += [t for t in text.rstrip(".").split("; ") if t not in found]
    if not found:
        return [], notes
    return [f"FLAGGED for review: {'; '.join(found[:5])}" + (f" (and {len(found) - 5} more)" if len(found) > 5 else "")
            + f"; {tests} test(s) got no credit"], notes


def worker_environment(threads: int, workdir: Path, cell_timeout: float | None = None,
                       device: str | None = None) -> dict[str, str]:
    """The environment of the process that grades one submission (and of its kernel)."""
    env = nbgrader_env(kernel_environment(threads))
    env["COURSE_GUARD_PROTECT"] = str(workdir)  # every student's scratch copy, templates and gradebooks
    if cell_timeout:
        env["COURSE_CELL_TIMEOUT"] = str(int(cell_timeout))
    if device in ("cpu", "cuda"):
        env["COURSE_DEVICE"] = device  # course.get_device() in notebooks and checks obeys it
    return env


def grade_one(sub: Submission, template_db: Path, max_score: float, release: Path | None, workdir: Path, out: Path,
              threads: int, timeout: float, cell_timeout: float | None = None,
              memory_gb: float | None = MEMORY_LIMIT_GB, device: str | None = None) -> Result:
    """Autograde one submission in a scratch course directory and collect its result.

    ``release`` is the student notebook as released; the submission's graded cells are
    repaired against it first (autograder/integrity.py)."""
    from nbgrader.api import Gradebook, MissingEntry

    t0 = time.perf_counter()
    if threads <= 0:  # on a Dask worker: share this machine's cores among the worker's task threads
        try:
            from distributed import get_worker
            per_task = getattr(get_worker(), "nthreads", 1) or 1
        except (ImportError, ValueError):
            per_task = 1
        threads = max(1, (os.cpu_count() or 1) // per_task)
    aid, student, name = sub.assignment, sub.student, ASSIGNMENTS[sub.assignment]
    unscored = lambda status, problem: Result(student, aid, 0.0, max_score, status, problem,  # noqa: E731
                                             seconds=time.perf_counter() - t0)
    if sub.path is None:
        return unscored("missing", sub.problem)
    size_mb = sub.path.stat().st_size / 2**20
    if size_mb > MAX_NOTEBOOK_MB:
        return unscored("invalid", f"{sub.path.name} is {size_mb:.0f} MB (limit {MAX_NOTEBOOK_MB} MB); clear its "
                                   "outputs (Kernel > Restart Kernel and Clear Outputs), save and resubmit")
    try:
        nb = nbformat.read(sub.path, as_version=4)
    except Exception as e:  # malformed JSON, not a notebook, unreadable file
        return unscored("invalid", f"{sub.path.name} is not a readable notebook ({type(e).__name__}: "
                                  f"{(str(e).splitlines() or [''])[0][:120]}); re-download it from Jupyter and resubmit")
    repairs = repair(nb, nbformat.read(release, as_version=4)) if release else []
    course = workdir / f"{student}--{aid}"
    shutil.rmtree(course, ignore_errors=True)
    (course / "submitted" / student / aid).mkdir(parents=True)
    write_course_config(course)
    shutil.copy(template_db, course / "gradebook.db")
    nbformat.write(nb, course / "submitted" / student / aid / f"{name}.ipynb")
    env = worker_environment(threads, workdir, cell_timeout, device)
    log_path = out / "logs" / f"{student}--{aid}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        # nbgrader autograde + generate_feedback in one process (worker.py); the student's code runs
        # in there, without network access where the OS allows it (sandbox.py)
        rc = _run(sandbox.wrap([sys.executable, "-m", "autograder.worker", aid, student]), course, env, timeout, log,
                  memory_gb)
        if rc is None:
            return unscored("timeout", f"grading took longer than {timeout:.0f} s and was stopped")
        fb_rc, rc = (rc, 0) if rc == 2 else (rc, rc)  # 2: graded, but the feedback failed
    try:
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            s = gb.find_submission(aid, student)
            score = float(s.score)
            nb = gb.find_submission_notebook(name, aid, student)
            failed = [g.name for g in nb.grades if g.max_score and (g.score or 0) < g.max_score]
    except MissingEntry:
        return unscored("error", f"nbgrader could not grade it: {_last_error(log_path)}")
    problems = ([sub.problem] if sub.problem else []) + repairs
    graded_nb = course / "autograded" / student / aid / f"{name}.ipynb"
    problems += runaway_problems(graded_nb, cell_timeout, memory_gb)
    tampering, guard_notes = tampering_problems(graded_nb)
    problems += tampering + guard_notes
    if rc != 0:
        problems.append(f"nbgrader reported: {_last_error(log_path)}")
    feedback = None
    fb_src = course / "feedback" / student / aid / f"{name}.html"
    if fb_rc == 0 and fb_src.exists():
        feedback = out / "feedback" / student / aid / f"{name}.html"
        feedback.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(fb_src, feedback)
    else:
        problems.append("no feedback HTML could be generated")
    shutil.rmtree(course, ignore_errors=True)
    status = "error" if rc != 0 else "flagged" if tampering else "graded"
    return Result(student, aid, score, max_score, status, "; ".join(problems), failed,
                  feedback, time.perf_counter() - t0)


def prepare_templates(aids: list[str], workdir: Path, jobs: int = 1) -> dict[str, tuple[Path, float, Path]]:
    """For each assignment: a gradebook describing it (from generate_assignment), its max score,
    and the released student notebook. ``jobs`` assignments are prepared at once."""
    from nbgrader.api import Gradebook

    def one(aid):
        student, db = generate_student(aid, ASSIGNMENTS[aid], instructor_notebook(aid), workdir / "_templates" / aid)
        release = workdir / "_templates" / f"{aid}.release.ipynb"
        nbformat.write(student, release)
        with Gradebook(f"sqlite:///{db}") as gb:
            return aid, (db, float(gb.find_assignment(aid).max_score), release)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return dict(pool.map(one, aids))


def digest(sub: Submission) -> str:
    """What identifies this submission's content: the file's SHA-256, or its problem when there is no file."""
    if sub.path is None:
        return "missing: " + sub.problem
    try:
        return hashlib.sha256(sub.path.read_bytes()).hexdigest()
    except OSError as e:
        return f"unreadable: {e}"


def previous_results(out: Path) -> dict[tuple[str, str], Result]:
    """Rows of an earlier run's OUT/grades.csv whose digest is known (OUT/grading-state.json)."""
    csv_path, state_path = out / "grades.csv", out / STATE_FILE
    if not csv_path.exists() or not state_path.exists():
        return {}
    try:
        digests = json.loads(state_path.read_text())
        rows = list(csv.DictReader(open(csv_path, newline="")))
        found = {}
        for r in rows:
            key = (r["student_id"], r["assignment"])
            feedback = out / "feedback" / key[0] / key[1] / f"{ASSIGNMENTS.get(key[1], '')}.html"
            found[key] = Result(key[0], key[1], float(r["score"]), float(r["max_score"]), r["status"], r["problem"],
                                r["failed_tests"].split(), feedback if feedback.exists() else None,
                                float(r.get("seconds") or 0.0),
                                digests.get(f"{key[0]}/{key[1]}", ""))
        return found
    except (OSError, ValueError, KeyError):
        return {}  # an unreadable earlier state is ignored: everything is graded again


@contextlib.contextmanager
def _executor(jobs: int, scheduler: str | None):
    """(submit, as_completed) for a local thread pool, or for an existing Dask cluster at ``scheduler``."""
    if scheduler is None:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            yield pool.submit, as_completed
        return
    try:
        from distributed import Client
        from distributed import as_completed as dask_as_completed
    except ImportError:
        raise GradeError("--executor dask needs dask.distributed: pip install 'dl-course[dask]' "
                         "(or pip install 'dask[distributed]')") from None
    try:
        client = Client(scheduler, timeout=10)
    except (OSError, TimeoutError, ValueError) as e:
        raise GradeError(f"could not reach the Dask scheduler at {scheduler} ({type(e).__name__}: {e}); "
                         "start one with `dask scheduler`, or check the address") from None
    try:
        yield (lambda fn, *args: client.submit(fn, *args, pure=False)), dask_as_completed
    finally:
        client.close()


def grade(submissions: Path, out: Path, assignments: list[str] | None = None, jobs: int | None = None,
          timeout: float = SUBMISSION_TIMEOUT, progress: bool = True, cell_timeout: float | None = None,
          memory_gb: float | None = MEMORY_LIMIT_GB, force: bool = False, log=print,
          scheduler: str | None = None, shard: tuple[int, int] | None = None,
          device: str | None = None) -> list[Result]:
    """Grade everything under ``submissions``; write grades.csv and feedback under ``out``.

    Resumable: a submission already in OUT/grades.csv from an earlier (possibly interrupted) run,
    whose file has not changed since, keeps its row and is not graded again unless ``force``.

    With ``scheduler`` (a Dask scheduler address), each submission is graded as one task on that
    existing Dask cluster instead of in a local thread pool; ``jobs`` is then ignored (the
    workers' threads set the concurrency) and the workers must see ``submissions`` and ``out``
    at the same paths (a shared filesystem). This process alone writes grades.csv.

    ``shard = (i, n)`` grades only the students whose position in the sorted list of student
    folders is i modulo n (for a SLURM job array: one shard per array task, each with its own ``out``).
    """
    subs = find_submissions(submissions, assignments)
    if shard:
        i, n = shard
        students = sorted({s.student for s in subs})
        mine = {st for k, st in enumerate(students) if k % n == i}
        subs = [s for s in subs if s.student in mine]
    jobs = max(1, jobs or os.cpu_count() or 1)
    # cores per kernel, so parallel jobs do not oversubscribe; 0 = decided on each Dask worker
    threads = 0 if scheduler else max(1, (os.cpu_count() or 1) // jobs)
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    earlier = previous_results(out)
    results: list[Result] = []
    todo = []
    for s in subs:
        d = digest(s)
        old = earlier.get((s.student, s.assignment))
        if old is not None and old.digest == d and not force:
            results.append(old)
        else:
            todo.append((s, d))
    isolated, why = sandbox.available() if todo and not scheduler else (True, "")
    if not isolated:
        log(f"note: submissions run with network access ({why}); see docs/INSTRUCTOR.md, 'Network'")
    if results:
        log(f"{len(results)} submission(s) already graded in {out / 'grades.csv'} and unchanged: kept "
            "(--force grades them again)")
    # rows of earlier runs that this run does not cover (e.g. other assignments) stay in grades.csv
    covered = {(s.student, s.assignment) for s in subs}
    results += [r for key, r in earlier.items() if key not in covered]
    # Dask workers on other machines must see the scratch folder: put it under OUT (shared).
    scratch_parent = out if scheduler else None
    remove_stale_scratch(Path(scratch_parent or tempfile.gettempdir()))
    with tempfile.TemporaryDirectory(prefix=f"course-grade-{os.getpid()}-", dir=scratch_parent) as tmp, \
            _executor(jobs, scheduler) as (submit, completed):
        templates = prepare_templates(sorted({s.assignment for s, _ in todo}), Path(tmp), jobs)
        bar = tqdm(total=len(todo), desc="grading", unit="nb", disable=not progress, file=sys.stdout)
        futures = {submit(grade_one, s.resolved(), *templates[s.assignment], Path(tmp), out, threads, timeout,
                          cell_timeout, memory_gb, device): (s, d) for s, d in todo}
        for fut in completed(futures):
            s, d = futures[fut]
            try:
                r = fut.result()
                r.digest = d
            except Exception as e:
                # The grader itself failed (e.g. a Dask worker died): report it and go on. The row
                # gets no digest, so the next run grades this submission again.
                r = Result(s.student, s.assignment, 0.0, templates[s.assignment][1], "error",
                           f"grading failed outside the notebook ({type(e).__name__}: {str(e)[:200]}); "
                           "run the command again to retry it")
            results.append(r)
            bar.set_postfix_str(f"{r.student}/{r.assignment}: {r.status}")
            bar.update()
            write_csv(results, out / "grades.csv")  # after every result: nothing is lost on a crash
        bar.close()
    results.sort(key=lambda r: (r.student, r.assignment))
    write_csv(results, out / "grades.csv")
    return results


def remove_stale_scratch(parent: Path) -> list[Path]:
    """Remove the scratch folders (``course-grade-<pid>-*``) that killed runs on this machine left
    behind: those whose grader process no longer exists. Returns what was removed."""
    removed = []
    for folder in parent.glob("course-grade-*-*"):
        m = re.match(r"course-grade-(\d+)-", folder.name)
        if not m or not folder.is_dir():
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue  # that grader is still running
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue  # another user's process, or not a pid
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def write_csv(results: list[Result], path: Path) -> None:
    """Write grades.csv and, next to it, the digests that make a re-run resumable; both atomically
    (write a temporary file, then rename), so a kill -9 at any moment leaves the previous version."""
    state = path.parent / STATE_FILE
    tmp_state = state.with_suffix(".tmp")
    tmp_state.write_text(json.dumps({f"{r.student}/{r.assignment}": r.digest for r in results}, indent=0))
    tmp_state.replace(state)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student_id", "assignment", "score", "max_score", "status", "problem", "failed_tests", "seconds"])
        for r in sorted(results, key=lambda r: (r.student, r.assignment)):
            w.writerow([r.student, r.assignment, f"{r.score:g}", f"{r.max_score:g}", r.status, r.problem,
                        " ".join(r.failed_tests), f"{r.seconds:.1f}"])
    tmp.replace(path)


def format_table(results: list[Result]) -> str:
    rows = [("student", "assignment", "score", "status", "problem / failed tests")]
    for r in results:
        note = r.problem or (("failed: " + ", ".join(r.failed_tests)) if r.failed_tests else "")
        rows.append((r.student, r.assignment, f"{r.score:g}/{r.max_score:g}", r.status, note))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4] for row in rows]
    lines.insert(1, "-" * min(100, max(len(ln) for ln in lines)))
    return "\n".join(line.rstrip() for line in lines)
