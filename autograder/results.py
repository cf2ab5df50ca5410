"""Results: one row per (student, assignment), ``grades.csv`` and the state that makes a re-run resume."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from course.days import notebook_name

# Next to grades.csv: the SHA-256 of each graded file, so an interrupted run resumes.
STATE_FILE = "grading-state.json"
COLUMNS = ["student_id", "assignment", "score", "max_score", "status", "problem", "failed_tests", "seconds"]
# The kinds of the worker's findings (autograder/worker.py) that go into the problem column.
REPORTED = ("repair", "memory", "cell_timeout", "kernel_died", "tampering", "guard_failed")


@dataclass
class Result:
    student: str
    assignment: str
    score: float
    max_score: float
    status: str  # graded | flagged | missing | invalid | error | timeout | stopped | not_run (no sandbox there)
    problem: str = ""
    failed_tests: list[str] = field(default_factory=list)
    feedback: Path | None = None
    seconds: float = 0.0
    digest: str = ""  # of the submitted file, so a re-run knows whether it changed
    cell_errors: list[dict] = field(default_factory=list)  # every cell that raised, graded or not


def from_worker(data: dict, student: str, assignment: str, problems: list[str]) -> Result:
    """The row for one worker's result.json (``problems``: found before grading, e.g. a misnamed file)."""
    findings = data.get("findings", [])
    problems = problems + [f["text"] for f in findings if f["kind"] in REPORTED]  # in the worker's order
    if data.get("error"):
        problems.append(data["error"])
    if not data.get("feedback"):
        problems.append("no feedback HTML could be generated")
    failed = [gid for gid, (score, most) in data.get("tests", {}).items() if score < most]
    flagged = any(f["kind"] == "tampering" for f in findings)
    status = "error" if data.get("error") else "flagged" if flagged else "graded"
    return Result(student, assignment, float(data.get("score", 0.0)), float(data.get("max_score", 0.0)), status,
                  "; ".join(problems), failed,
                  cell_errors=[f for f in findings if f["kind"] == "cell_error"])


def previous_results(out: Path) -> dict[tuple[str, str], Result]:
    """Rows of an earlier run's OUT/grades.csv whose digest is known (OUT/grading-state.json)."""
    csv_path, state_path = out / "grades.csv", out / STATE_FILE
    if not csv_path.exists() or not state_path.exists():
        return {}
    try:
        digests = json.loads(state_path.read_text())
        found = {}
        with open(csv_path, newline="") as f:
            for r in csv.DictReader(f):
                key = (r["student_id"], r["assignment"])
                try:
                    name = notebook_name(key[1])
                except ValueError:
                    name = ""
                feedback = out / "feedback" / key[0] / key[1] / f"{name}.html"
                found[key] = Result(key[0], key[1], float(r["score"]), float(r["max_score"]), r["status"],
                                    r["problem"], r["failed_tests"].split(), feedback if feedback.exists() else None,
                                    float(r.get("seconds") or 0.0), digests.get(f"{key[0]}/{key[1]}", ""))
        return found
    except (OSError, ValueError, KeyError, AttributeError):
        return {}  # an unreadable earlier state is ignored: everything is graded again


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
        w.writerow(COLUMNS)
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
