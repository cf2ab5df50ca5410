"""The list of DAYs, found from the folders (never kept by hand).

A DAY is a folder ``solutions/<assignment_id>/`` that holds a ``notebook.py``. Its assignment id
is ``day<N>_<topic>`` and its notebook is ``<topic>.ipynb``.
The visible checks of a DAY are ``course/checks/<assignment_id>.py``; students have those but
not ``solutions/``, so the checks package lists its own folder (:func:`check_modules`) and a
test proves the two lists agree.
"""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHECKS = Path(__file__).resolve().parent / "checks"
ASSIGNMENT_ID = re.compile(r"^day(\d+)_([a-z][a-z0-9]*)$")


def _ordered(ids) -> list[str]:
    return sorted(ids, key=lambda aid: (int(ASSIGNMENT_ID.match(aid).group(1)), aid))


def assignments(root: Path = REPO) -> dict[str, str]:
    """assignment id -> notebook name (without .ipynb), in DAY order, from ``root/solutions/*/notebook.py``."""
    ids = [p.parent.name for p in (root / "solutions").glob("*/notebook.py") if ASSIGNMENT_ID.match(p.parent.name)]
    return {aid: notebook_name(aid) for aid in _ordered(ids)}


def notebook_name(assignment_id: str) -> str:
    """``day<N>_<topic>`` -> ``<topic>``: the notebook of a DAY is named after its topic."""
    m = ASSIGNMENT_ID.match(assignment_id)
    if not m:
        raise ValueError(f"{assignment_id!r} is not an assignment id (day<N>_<topic>)")
    return m.group(2)


def check_modules() -> list[str]:
    """The assignment ids that have visible checks, ``course/checks/<assignment_id>.py``, in DAY order."""
    return _ordered(p.stem for p in CHECKS.glob("day*.py") if ASSIGNMENT_ID.match(p.stem))


def resolve(day: str, root: Path = REPO) -> str | None:
    """The assignment id that ``day`` names (``day<N>_<topic>``, ``day<N>``, ``<N>`` or ``<topic>``), or None."""
    for aid in assignments(root):
        number, _, topic = aid.partition("_")
        if day in (aid, number, number[3:], topic):
            return aid
    return None
