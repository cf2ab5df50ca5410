"""Put a submitted notebook's graded structure back before nbgrader sees it.

Students delete, duplicate, retype and edit cells; plain nbgrader then crashes or grades the
wrong thing (jupyter/nbgrader#1083, #1682). ``repair`` compares the submission with the
released student notebook, by ``grade_id``, and fixes what would break grading or let tests
be skipped, saying what it did in one short sentence per kind of change:

- outputs are cleared (nbgrader re-executes everything anyway); huge ones are reported;
- a duplicated solution cell keeps its grade_id on the first copy; later copies become plain
  code cells, so the notebook still runs exactly as the student left it;
- duplicated test or setup cells (locked cells) are removed;
- a deleted locked cell is put back where it was; an edited one (source or cell type) gets
  its original back, so the original tests are the ones graded;
- a deleted solution cell is put back blank, so its tests fail cleanly instead of the grader.
"""
from __future__ import annotations

import json

import nbformat

# Outputs larger than this (bytes of JSON, whole notebook) are reported when cleared.
HUGE_OUTPUTS = 5 * 2**20


def _nbg(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def _gid(cell) -> str | None:
    return _nbg(cell).get("grade_id")


def _norm(src) -> str:
    return "\n".join(line.rstrip() for line in "".join(src).strip().splitlines())


def _plural(ids: list[str]) -> str:
    return ", ".join(ids[:4]) + (f" and {len(ids) - 4} more" if len(ids) > 4 else "")


def repair(nb: nbformat.NotebookNode, release: nbformat.NotebookNode) -> list[str]:
    """Repair ``nb`` in place against the ``release`` notebook; return one sentence per kind of fix."""
    problems: list[str] = []

    size = sum(len(json.dumps(c.get("outputs", []))) for c in nb.cells if c.get("cell_type") == "code")
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    if size > HUGE_OUTPUTS:
        problems.append(f"the notebook carried {size / 2**20:.0f} MB of cell outputs; they were cleared before grading")

    released = {_gid(c): c for c in release.cells if _gid(c)}
    order = [_gid(c) for c in release.cells if _gid(c)]

    # duplicated grade_ids
    seen: set[str] = set()
    keep, demoted, dropped = [], [], []
    for cell in nb.cells:
        gid = _gid(cell)
        if gid is None or gid not in seen:
            if gid is not None:
                seen.add(gid)
            keep.append(cell)
            continue
        if _nbg(cell).get("locked") or (gid in released and _nbg(released[gid]).get("locked")):
            dropped.append(gid)  # a copy of a test/setup cell: the original (restored below) is enough
            continue
        del cell.metadata["nbgrader"]  # a copy of a solution cell: keep running it, not grading it
        demoted.append(gid)
        keep.append(cell)
    nb.cells = keep
    if demoted:
        problems.append(f"duplicated solution cell {_plural(sorted(set(demoted)))}: the first copy is graded, "
                        "later copies still run as plain cells")
    if dropped:
        problems.append(f"duplicated test cell {_plural(sorted(set(dropped)))}: the copies were removed")

    # deleted or edited cells
    deleted_locked, deleted_solution, edited = [], [], []
    for i, gid in enumerate(order):
        original = released[gid]
        here = next((c for c in nb.cells if _gid(c) == gid), None)
        if here is None:
            anchor = next((j for prev in reversed(order[:i])
                           for j, c in enumerate(nb.cells) if _gid(c) == prev), -1)
            nb.cells.insert(anchor + 1, nbformat.from_dict(json.loads(json.dumps(original))))
            (deleted_locked if _nbg(original).get("locked") else deleted_solution).append(gid)
        elif _nbg(original).get("locked") and (here.get("cell_type") != original.get("cell_type")
                                               or _norm(here.get("source", "")) != _norm(original.get("source", ""))):
            idx = nb.cells.index(here)
            nb.cells[idx] = nbformat.from_dict(json.loads(json.dumps(original)))
            edited.append(gid)
    if deleted_locked:
        problems.append(f"locked cell {_plural(deleted_locked)} was deleted; the original was restored and graded")
    if edited:
        problems.append(f"locked cell {_plural(edited)} was edited; the original was restored and graded")
    if deleted_solution:
        problems.append(f"solution cell {_plural(deleted_solution)} was deleted; it was put back blank "
                        "(its tests score 0)")
    return problems
