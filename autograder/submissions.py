"""Finding the submissions under ``SUBMISSIONS/<student>/<assignment>/<name>.ipynb``, and what is
wrong with them before anything runs (a missing folder, a misnamed or unreadable notebook)."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from course.days import assignments as known_assignments

# A submitted file larger than this is not read at all (a notebook with cleared outputs is < 1 MB).
MAX_NOTEBOOK_MB = 300
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")


class GradeError(Exception):
    """The command itself cannot run (bad arguments); nothing was graded."""


@dataclass
class Submission:
    student: str
    assignment: str
    path: Path | None
    problem: str = ""  # found before grading: missing, unreadable, wrongly named ...

    def resolved(self) -> "Submission":
        """The same submission with an absolute path (a Dask worker has another working directory)."""
        return Submission(self.student, self.assignment, self.path.resolve() if self.path else None, self.problem)


def check_root(root: Path) -> None:
    """Raise GradeError unless ``root`` is a folder (the folder of student folders)."""
    if not root.is_dir():
        raise GradeError(f"{root} is not a folder; pass the folder that holds <student>/<assignment>/<name>.ipynb")


def find_submissions(root: Path, assignments: list[str] | None) -> list[Submission]:
    """List (student, assignment) pairs under ``root/<student>/<assignment>/<name>.ipynb``.

    Without ``assignments``, every known assignment that appears for any student is
    expected from every student, so a missing one shows up as a row.
    """
    known = known_assignments()
    check_root(root)
    unknown = [a for a in assignments or [] if a not in known]
    if unknown:
        raise GradeError(f"unknown assignment {unknown[0]!r}; known: {', '.join(known)}")
    students = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not students:
        raise GradeError(f"{root} holds no student folders; expected <student>/<assignment>/<name>.ipynb")
    wanted = assignments or [a for a in known if any((s / a).is_dir() for s in students)]
    if not wanted:
        raise GradeError(f"no assignment folders ({', '.join(known)}) found under {root}/<student>/")
    subs = []
    for s in students:
        for aid in wanted:
            name = known[aid]
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


def unreadable(sub: Submission) -> str:
    """Why ``sub``'s file cannot be graded at all (too big, not a notebook), or "" when it can."""
    size_mb = sub.path.stat().st_size / 2**20
    if size_mb > MAX_NOTEBOOK_MB:
        return (f"{sub.path.name} is {size_mb:.0f} MB (limit {MAX_NOTEBOOK_MB} MB); clear its outputs "
                "(Kernel > Restart Kernel and Clear Outputs), save and resubmit")
    try:
        nbformat.read(sub.path, as_version=4)
    except Exception as e:  # malformed JSON, not a notebook, unreadable file
        return (f"{sub.path.name} is not a readable notebook ({type(e).__name__}: "
                f"{(str(e).splitlines() or [''])[0][:120]}); re-download it from Jupyter and resubmit")
    return ""


def digest(sub: Submission) -> str:
    """What identifies this submission's content: the file's SHA-256, or its problem when there is no file."""
    if sub.path is None:
        return "missing: " + sub.problem
    try:
        return hashlib.sha256(sub.path.read_bytes()).hexdigest()
    except OSError as e:
        return f"unreadable: {e}"
