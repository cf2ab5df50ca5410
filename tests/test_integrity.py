"""autograder/integrity.py: deleted, duplicated, edited and bloated cells are repaired and reported."""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest

from autograder.integrity import repair

REPO = Path(__file__).resolve().parents[1]
RELEASE = nbformat.read(REPO / "assignments" / "day1_optimization" / "optimization.ipynb", as_version=4)
REFERENCE = nbformat.read(REPO / "solutions" / "day1_optimization" / "samples" / "reference.ipynb",
                          as_version=4)


def _gids(nb):
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade_id")]


def _cell(nb, gid):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


@pytest.fixture
def nb():
    return copy.deepcopy(REFERENCE)


def test_an_intact_submission_is_untouched(nb):
    before = [(c.cell_type, c.source) for c in nb.cells]
    assert repair(nb, RELEASE) == []
    assert [(c.cell_type, c.source) for c in nb.cells] == before


def test_deleted_test_cell_is_restored_in_place(nb):
    nb.cells.remove(_cell(nb, "test_momentum"))
    problems = repair(nb, RELEASE)
    assert problems == ["locked cell test_momentum was deleted; the original was restored and graded"]
    assert _gids(nb) == _gids(RELEASE)
    assert _cell(nb, "test_momentum").source == _cell(RELEASE, "test_momentum").source


def test_edited_test_cell_gets_its_original_back(nb):
    _cell(nb, "test_adam").source = "pass  # trust me"
    _cell(nb, "test_sgd").cell_type = "markdown"  # a trick to skip a test
    problems = repair(nb, RELEASE)
    assert problems == ["locked cell test_sgd, test_adam was edited; the original was restored and graded"]
    assert _cell(nb, "test_adam").source == _cell(RELEASE, "test_adam").source
    assert _cell(nb, "test_sgd").cell_type == "code"


def test_whitespace_only_changes_are_not_edits(nb):
    _cell(nb, "test_adam").source += "\n\n   "
    assert repair(nb, RELEASE) == []


def test_duplicated_solution_cell_still_runs_but_is_graded_once(nb):
    sol = _cell(nb, "adam")
    idx = nb.cells.index(sol)
    nb.cells.insert(idx + 1, copy.deepcopy(sol))
    nb.cells.insert(idx + 2, copy.deepcopy(_cell(nb, "test_adam")))
    n = len(nb.cells)
    problems = repair(nb, RELEASE)
    assert problems == ["duplicated solution cell adam: the first copy is graded, later copies still run as plain cells",
                        "duplicated test cell test_adam: the copies were removed"]
    assert _gids(nb) == _gids(RELEASE) and len(nb.cells) == n - 1
    assert nb.cells[idx + 1].source == sol.source and "nbgrader" not in nb.cells[idx + 1].metadata


def test_deleted_solution_cell_is_put_back_blank(nb):
    nb.cells.remove(_cell(nb, "nesterov"))
    problems = repair(nb, RELEASE)
    assert problems == ["solution cell nesterov was deleted; it was put back blank (its tests score 0)"]
    assert "NotImplementedError" in _cell(nb, "nesterov").source
    assert _gids(nb) == _gids(RELEASE)


def test_huge_outputs_are_cleared_and_reported(nb):
    big = nbformat.v4.new_output("stream", name="stdout", text="x" * (6 * 2**20))
    _cell(nb, "sgd").outputs = [big]
    problems = repair(nb, RELEASE)
    assert problems == ["the notebook carried 6 MB of cell outputs; they were cleared before grading"]
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_everything_deleted_gives_back_the_release_structure():
    empty = nbformat.v4.new_notebook()
    problems = repair(empty, RELEASE)
    assert _gids(empty) == _gids(RELEASE)
    assert any("locked cell setup, test_sgd" in p for p in problems)
    assert any("solution cell sgd, momentum" in p for p in problems)
