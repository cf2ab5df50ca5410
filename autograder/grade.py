"""`course grade`: grade a folder of submissions with nbgrader, in parallel.

Each (student, assignment) is graded by a worker process (autograder/worker.py) in a scratch
course directory of its own, with its own copy of the assignment's gradebook. Workers
therefore share no database and can run side by side; one broken submission cannot disturb
another. Each worker leaves one ``result.json``, the only thing read back from it; the rows are
gathered into ``OUT/grades.csv`` and the feedback into ``OUT/feedback/``.

Where submissions run: a local pool of ``jobs`` threads each waiting on one worker process
(the default), an existing Dask cluster (``scheduler``), or one shard of the class (``shard``,
for a SLURM job array).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nbformat
from tqdm import tqdm

from autograder import kernel_sandbox, processes, sandbox
from autograder.build import generate_student, instructor_notebook, nbgrader_env, write_course_config
from autograder.nbgrader_ext import UNSAFE_NO_SANDBOX, kernel_environment, sandbox_refusal
from autograder.results import STATE_FILE, Result, format_table, from_worker, previous_results, write_csv  # noqa: F401
from autograder.submissions import GradeError, Submission, digest, find_submissions, unreadable  # noqa: F401
from autograder.worker import PROGRESS_FILE, RESULT_FILE, Exit
from course.days import notebook_name


@dataclass
class GradeOptions:
    """How `course grade` runs. Each field is a command-line option of the same name."""
    jobs: int | None = None
    """Submissions graded at once on this machine (default: the number of cores)."""
    timeout: float = 900
    """Seconds one whole submission may take (execution, grading and feedback) before it is stopped."""
    cell_timeout: float | None = None
    """Seconds one cell may run before it is interrupted (default: nbgrader_ext.CELL_TIMEOUT)."""
    memory_gb: float | None = 4.0
    """Memory each submission's processes may allocate (RLIMIT_DATA, inherited by the kernel). A DAY
    needs well under 2 GB; a runaway allocation then fails inside the student's cell."""
    force: bool = False
    """Grade everything again; without it a re-run keeps unchanged rows (so an interrupted run resumes)."""
    scheduler: str | None = None
    """A Dask scheduler address: grade each submission as a task on that existing cluster."""
    shard: tuple[int, int] | None = None
    """(i, n): grade only the students whose position in the sorted list is i modulo n."""
    device: str | None = None
    """cpu or cuda: COURSE_DEVICE in every kernel; None lets each kernel choose (auto)."""
    progress: bool = True
    """Show a progress bar."""
    unsafe_no_sandbox: bool = False
    """Run the students' kernels without the OS sandbox (kernel_sandbox.py) where the machine has none."""


@dataclass
class Template:
    """What every submission of one assignment is graded against."""
    gradebook: Path  # describes the assignment (from nbgrader generate_assignment)
    max_score: float
    release: Path  # the student notebook as released


def worker_environment(threads: int, workdir: Path, options: GradeOptions) -> dict[str, str]:
    """The environment of the process that grades one submission (and of its kernel)."""
    env = nbgrader_env(kernel_environment(threads))
    env["COURSE_GUARD_PROTECT"] = str(workdir)  # every student's scratch copy, templates and gradebooks
    if options.cell_timeout:
        env["COURSE_CELL_TIMEOUT"] = str(int(options.cell_timeout))
    env["COURSE_MEMORY_GB"] = f"{options.memory_gb:g}" if options.memory_gb else "system"
    if options.device in ("cpu", "cuda"):
        env["COURSE_DEVICE"] = options.device  # course.get_device() in notebooks and checks obeys it
    if options.unsafe_no_sandbox:
        env[UNSAFE_NO_SANDBOX] = "1"
    return env


def threads_per_kernel(options: GradeOptions) -> int:
    """Cores for each kernel, so that parallel submissions do not oversubscribe the CPU: the cores this
    process may run on, shared among the submissions graded at once (on a Dask worker, among that
    worker's task threads). An ``OMP_NUM_THREADS`` already set in the environment caps it."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if options.scheduler:
        try:
            from distributed import get_worker
            at_once = getattr(get_worker(), "nthreads", 1) or 1
        except (ImportError, ValueError):
            at_once = 1
    else:
        at_once = options.jobs or cores
    share = max(1, cores // max(1, at_once))
    cap = os.environ.get("OMP_NUM_THREADS", "")
    return min(share, int(cap)) if cap.isdigit() and int(cap) > 0 else share


def killed_problem(rc: int | None, course: Path) -> str:
    """What to say when a worker left no result: where it was when it ended."""
    try:
        where = f" while running cell {json.loads((course / PROGRESS_FILE).read_text())['cell']}"
    except (OSError, ValueError, KeyError):
        where = " before it ran any cell"
    how = f"was killed by signal {rc - 128 if rc > 128 else -rc}" if rc and (rc < 0 or rc > 128) else \
        f"ended with status {rc} without a result"
    return f"the grading process {how}{where}; nothing was graded"


def grade_one(sub: Submission, template: Template, workdir: Path, out: Path, options: GradeOptions) -> Result:
    """Autograde one submission in a scratch course directory; its worker's result.json becomes the row."""
    t0 = time.perf_counter()
    aid, student, name = sub.assignment, sub.student, notebook_name(sub.assignment)

    def unscored(status: str, problem: str) -> Result:
        return Result(student, aid, 0.0, template.max_score, status, problem, seconds=time.perf_counter() - t0)

    if sub.path is None:
        return unscored("missing", sub.problem)
    why = unreadable(sub)
    if why:
        return unscored("invalid", why)
    course = workdir / f"{student}--{aid}"
    shutil.rmtree(course, ignore_errors=True)
    (course / "submitted" / student / aid).mkdir(parents=True)
    write_course_config(course)
    shutil.copy(template.gradebook, course / "gradebook.db")
    shutil.copy(sub.path, course / "submitted" / student / aid / f"{name}.ipynb")
    log_path = out / "logs" / f"{student}--{aid}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        # repair + autograde + feedback in one process (worker.py); the student's code runs in there,
        # without network access and unable to see the grader where the OS allows it (sandbox.py)
        cmd = sandbox.wrap([sys.executable, "-m", "autograder.worker", aid, student, name,
                            "--release", str(template.release)])
        rc = processes.run(cmd, course, worker_environment(threads_per_kernel(options), workdir, options),
                           options.timeout, log, options.memory_gb)
    try:
        if rc is None:
            return unscored("timeout", f"grading took longer than {options.timeout:.0f} s and was stopped")
        try:
            data = json.loads((course / RESULT_FILE).read_text())
        except (OSError, ValueError):
            return unscored("error", killed_problem(rc, course))
        if rc == Exit.NO_SANDBOX:  # that machine refused to run it; a re-run grades it (no digest kept)
            return unscored("not_run", data["error"])
        result = from_worker(data, student, aid, [sub.problem] if sub.problem else [])
        kept = out / "results" / student / f"{aid}.json"  # the worker's result as data, for tools after grading
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text(json.dumps(data, indent=1))
        if data.get("feedback"):
            result.feedback = out / "feedback" / student / aid / f"{name}.html"
            result.feedback.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(course / data["feedback"], result.feedback)
        result.seconds = time.perf_counter() - t0
        return result
    finally:
        shutil.rmtree(course, ignore_errors=True)


def prepare_templates(aids: list[str], workdir: Path) -> dict[str, Template]:
    """For each assignment, what its submissions are graded against (about 1 s each, one at a time)."""
    from nbgrader.api import Gradebook

    templates = {}
    for aid in aids:
        student, db = generate_student(aid, notebook_name(aid), instructor_notebook(aid), workdir / "_templates" / aid)
        release = workdir / "_templates" / f"{aid}.release.ipynb"
        nbformat.write(student, release)
        with Gradebook(f"sqlite:///{db}") as gb:
            templates[aid] = Template(db, float(gb.find_assignment(aid).max_score), release)
    return templates


@contextlib.contextmanager
def _executor(jobs: int, scheduler: str | None):
    """(submit, as_completed) for a local thread pool, or for an existing Dask cluster."""
    if scheduler is None:
        pool = ThreadPoolExecutor(max_workers=jobs)
        try:
            yield pool.submit, as_completed
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    try:
        from distributed import Client
        from distributed import as_completed as dask_as_completed
    except ImportError:
        raise GradeError("--executor dask needs dask.distributed: pip install 'dl-course[dask]' "
                         "(or pip install 'dask[distributed]')") from None
    try:
        _probe(scheduler)  # a refused connection fails at once, not after the client's 10 s of retries
        client = Client(scheduler, timeout=10)
    except (OSError, TimeoutError, ValueError) as e:
        raise GradeError(f"could not reach the Dask scheduler at {scheduler} ({type(e).__name__}: {e}); "
                         "start one with `dask scheduler`, or check the address") from None
    try:
        yield (lambda fn, *args: client.submit(fn, *args, pure=False)), dask_as_completed
    finally:
        client.close()


def _probe(scheduler: str) -> None:
    """Raise OSError when nothing accepts a TCP connection at a ``tcp://HOST:PORT`` address (others pass)."""
    scheme, _, where = scheduler.rpartition("://")
    host, _, port = where.rpartition(":")
    if scheme in ("", "tcp") and host and port.isdigit():
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()


def _plan(subs: list[Submission], out: Path, force: bool) -> tuple[list[Result], list[tuple[Submission, str]]]:
    """(rows kept from an earlier run, submissions to grade with their digests)."""
    earlier = previous_results(out)
    kept, todo = [], []
    for s in subs:
        d = digest(s)
        old = earlier.get((s.student, s.assignment))
        if old is not None and old.digest == d and not force:
            kept.append(old)
        else:
            todo.append((s, d))
    covered = {(s.student, s.assignment) for s in subs}  # rows this run does not cover (other DAYs) stay
    return kept + [r for key, r in earlier.items() if key not in covered], todo


def grade(submissions: Path, out: Path, assignments: list[str] | None = None,
          options: GradeOptions | None = None, log=print) -> list[Result]:
    """Grade everything under ``submissions``; write grades.csv and feedback under ``out``.

    Resumable: a submission already in OUT/grades.csv from an earlier (possibly interrupted) run,
    whose file has not changed since, keeps its row and is not graded again unless ``force``.
    With a Dask ``scheduler``, ``jobs`` is ignored (the workers' threads set the concurrency) and the
    workers must see ``submissions`` and ``out`` at the same paths. This process alone writes grades.csv.
    Raises :class:`processes.Stopped` (after writing what it has and ending every worker) on a signal.
    """
    options = options or GradeOptions()
    processes.reset()
    subs = find_submissions(submissions, assignments)
    if options.shard:
        i, n = options.shard
        students = sorted({s.student for s in subs})
        subs = [s for s in subs if s.student in {st for k, st in enumerate(students) if k % n == i}]
    jobs = max(1, options.jobs or os.cpu_count() or 1)
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    results, todo = _plan(subs, out, options.force)
    local = todo and not options.scheduler  # a Dask worker checks its own machine (worker.py)
    refusal = sandbox_refusal() if local and not options.unsafe_no_sandbox else None
    if refusal:
        raise GradeError(f"nothing graded: {refusal}.")
    if local and not kernel_sandbox.available()[0]:
        log(f"note: --unsafe-no-sandbox: the students' kernels run as this user, without the OS sandbox "
            f"({kernel_sandbox.available()[1]}); see docs/INSTRUCTOR.md, 'The sandbox'")
    isolated, why = sandbox.available() if local else (True, "")
    if not isolated:
        log(f"note: submissions run with network access ({why}); see docs/INSTRUCTOR.md, 'Network'")
    kept = len(subs) - len(todo)
    if kept:
        log(f"{kept} submission(s) already graded in {out / 'grades.csv'} and unchanged: kept "
            "(--force grades them again)")
    scratch_parent = out if options.scheduler else None  # Dask workers elsewhere must see the scratch folder
    remove_stale_scratch(Path(scratch_parent or tempfile.gettempdir()))
    stopped = None
    with tempfile.TemporaryDirectory(prefix=f"course-grade-{os.getpid()}-", dir=scratch_parent) as tmp, \
            _executor(jobs, options.scheduler) as (submit, completed):
        try:
            templates = prepare_templates(sorted({s.assignment for s, _ in todo}), Path(tmp))
            bar = tqdm(total=len(todo), desc="grading", unit="nb", disable=not options.progress, file=sys.stdout)
            futures = {submit(grade_one, s.resolved(), templates[s.assignment], Path(tmp), out, options): (s, d)
                       for s, d in todo}
            for fut in completed(futures):
                s, d = futures[fut]
                try:
                    r = fut.result()
                    r.digest = d if r.status != "not_run" else ""
                except processes.Stopped:
                    continue
                except Exception as e:
                    # The grader itself failed (e.g. a Dask worker died): report it and go on. The row
                    # gets no digest, so the next run grades this submission again.
                    r = Result(s.student, s.assignment, 0.0, templates[s.assignment].max_score, "error",
                               f"grading failed outside the notebook ({type(e).__name__}: {str(e)[:200]}); "
                               "run the command again to retry it")
                results.append(r)
                bar.set_postfix_str(f"{r.student}/{r.assignment}: {r.status}")
                bar.update()
                write_csv(results, out / "grades.csv")  # after every result: nothing is lost on a crash
            bar.close()
        except (processes.Stopped, KeyboardInterrupt) as e:
            stopped = processes.Stopped(getattr(e, "signal_name", "SIGINT"))
            processes.stop_all()  # every worker and kernel of this run, so the pool drains at once
    if stopped:
        write_csv(results, out / "grades.csv")
        raise stopped
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
