"""Grade one submission in a scratch course directory and write its result as data:
``python -m autograder.worker ASSIGNMENT STUDENT NAME --release RELEASE.ipynb``.

The submission is at ``submitted/<STUDENT>/<ASSIGNMENT>/<NAME>.ipynb`` of the working directory,
which also holds the course's ``nbgrader_config.py`` and a copy of the assignment's gradebook.
In one process (importing nbgrader costs about 4 s on a small CPU, so once rather than twice):

1. repair the graded cells against the released notebook (integrity.py);
2. ``nbgrader autograde`` (the student's code runs in a kernel started from here);
3. read the score and each test's outcome from the gradebook, and what the executed notebook
   shows (a dead kernel, a timed-out cell, a memory cap hit, tampering, cells that raised);
4. ``nbgrader generate_feedback``;
5. write everything to ``result.json`` (:data:`RESULT_FILE`): the one thing `course grade` reads.

While the notebook runs, ``progress.json`` names the cell being executed, so when this process is
killed `course grade` can say where.
"""
from __future__ import annotations

import argparse
import enum
import json
import os
import sys
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps import NbGraderAPI
from traitlets.config import Config

from autograder import nbgrader_ext
from autograder.guard import PREFIX as TAMPERING
from autograder.integrity import repair

RESULT_FILE = "result.json"
PROGRESS_FILE = "progress.json"


class Exit(enum.IntEnum):
    """The worker's exit status. The result file says what happened in each case but USAGE."""
    DONE = 0  # graded, feedback written
    AUTOGRADE_FAILED = 1  # nbgrader could not grade the notebook
    FEEDBACK_FAILED = 2  # graded, but no feedback HTML
    NO_SANDBOX = 3  # not run: this machine cannot sandbox the kernel, and --unsafe-no-sandbox was not given
    USAGE = 64  # wrong arguments


def finding(kind: str, text: str, cell: int | None = None) -> dict:
    """One thing worth telling the instructor. ``kind``: repair, kernel_died, cell_timeout, memory,
    tampering, guard_failed or cell_error (a cell that raised; not shown in the problem column)."""
    return {"kind": kind, "cell": cell, "text": text}


def notebook_findings(nb: nbformat.NotebookNode, cell_timeout: int, memory_gb: str) -> list[dict]:
    """What the executed notebook's outputs show, one finding per kind (its first cell), plus every cell error."""
    found, seen = [], set()
    texts = {"KernelDied": ("kernel_died", "the kernel died in cell {i} (crash, os._exit or out of memory); "
                                          "later tests got 0"),
             "CellTimeoutError": ("cell_timeout", f"cell {{i}} ran past the {cell_timeout} s cell limit and was "
                                                  "interrupted"),
             "MemoryError": ("memory", f"cell {{i}} hit the {memory_gb} GB memory limit (MemoryError)")}
    tampering, tampered_tests = [], 0
    for i, cell in enumerate(nb.cells):
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        for out in errors:
            ename, evalue = out.get("ename", ""), out.get("evalue", "")
            if ename != "NotRun":
                found.append(finding("cell_error", f"{ename}: {evalue}"[:300], i))
            if ename in texts and ename not in seen:
                seen.add(ename)
                kind, text = texts[ename]
                found.append(finding(kind, text.format(i=i), i))
        messages = [o["evalue"] for o in errors if TAMPERING in o.get("evalue", "")]
        if messages:
            tampered_tests += 1
            text = messages[0].split(TAMPERING, 1)[1].replace(" This test gets no credit.", "")
            tampering += [t for t in text.rstrip(".").split("; ") if t not in tampering]
    if tampering:
        more = f" (and {len(tampering) - 5} more)" if len(tampering) > 5 else ""
        found.append(finding("tampering", f"FLAGGED for review: {'; '.join(tampering[:5])}{more}; "
                                          f"{tampered_tests} test(s) got no credit"))
    failed = nb.metadata.get(nbgrader_ext.GUARD_MARK, {}).get("failed")
    if failed:
        found.append(finding("guard_failed", f"the tamper guard could not start ({failed[:150]}); graded without it"))
    return found


def gradebook_scores(aid: str, student: str, name: str) -> tuple[float, float, dict[str, list[float]]]:
    """(score, max score, {test grade_id: [score, max score]}) from this directory's gradebook."""
    with Gradebook(f"sqlite:///{Path.cwd() / 'gradebook.db'}") as gb:
        submission = gb.find_submission(aid, student)
        notebook = gb.find_submission_notebook(name, aid, student)
        tests = {g.name: [float(g.score or 0), float(g.max_score)] for g in notebook.grades if g.max_score}
        return float(submission.score), float(submission.max_score), tests


def grade(aid: str, student: str, name: str, release: Path) -> tuple[dict, Exit]:
    refusal = nbgrader_ext.sandbox_refusal()  # a Dask worker's machine may differ from course grade's
    if refusal:
        return {"score": 0.0, "max_score": 0.0, "tests": {}, "findings": [], "feedback": None,
                "error": f"not graded: {refusal}"}, Exit.NO_SANDBOX
    submitted = Path("submitted") / student / aid / f"{name}.ipynb"
    nb = nbformat.read(submitted, as_version=4)
    findings = [finding("repair", text) for text in repair(nb, nbformat.read(release, as_version=4))]
    nbformat.write(nb, submitted)
    config = Config()
    nbgrader_ext.configure(config, Path.cwd())
    config.Application.log_level = "WARN"
    nbgrader_ext.CrashTolerantExecute.progress_file = str(Path.cwd() / PROGRESS_FILE)
    api = NbGraderAPI(config=config)
    result = {"score": 0.0, "max_score": 0.0, "tests": {}, "findings": findings, "feedback": None, "error": None}
    graded = api.autograde(aid, student, force=True)
    print(graded.get("log", ""), flush=True)  # nbgrader's log, kept in OUT/logs/ for the instructor
    try:
        result["score"], result["max_score"], result["tests"] = gradebook_scores(aid, student, name)
    except MissingEntry:
        result["error"] = f"nbgrader could not grade it: {_first_line(graded.get('error') or graded.get('log'))}"
        return result, Exit.AUTOGRADE_FAILED
    executed = Path("autograded") / student / aid / f"{name}.ipynb"
    if executed.exists():
        findings += notebook_findings(nbformat.read(executed, as_version=4), int(config.Execute.timeout),
                                      os.environ.get("COURSE_MEMORY_GB", "system"))
    if not graded.get("success"):
        result["error"] = f"nbgrader reported: {_first_line(graded.get('error') or graded.get('log'))}"
    feedback = api.generate_feedback(aid, student, force=True)
    html = Path("feedback") / student / aid / f"{name}.html"
    if feedback.get("success") and html.exists():
        html.write_text(nbgrader_ext.make_offline(html.read_text(encoding="utf-8")), encoding="utf-8")
        result["feedback"] = str(html)
        return result, Exit.DONE if not result["error"] else Exit.AUTOGRADE_FAILED
    print(feedback.get("log", ""), flush=True)
    return result, Exit.FEEDBACK_FAILED


def _first_line(text: str | None) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "rror" in ln]
    return ((errors or lines or ["no output"])[-1])[:300]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder.worker", description=__doc__.splitlines()[0])
    p.add_argument("assignment")
    p.add_argument("student")
    p.add_argument("name", help="the notebook's name without .ipynb")
    p.add_argument("--release", type=Path, required=True, help="the student notebook as released")
    try:
        args = p.parse_args(argv)
    except SystemExit:
        return Exit.USAGE
    result, code = grade(args.assignment, args.student, args.name, args.release)
    tmp = Path(RESULT_FILE + ".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(RESULT_FILE)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
