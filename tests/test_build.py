"""`course build`: generated notebooks are current, well formed and leak no solutions."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat

from autograder import build as b
from course.days import assignments

REPO = Path(__file__).resolve().parents[1]


def test_committed_notebooks_are_up_to_date():
    proc = subprocess.run([sys.executable, "-m", "course.cli", "build", "--check"], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_reports_stale_and_missing_files(tmp_path, monkeypatch, capsys):
    stale, missing = tmp_path / "stale.ipynb", tmp_path / "missing.ipynb"
    stale.write_text("old")
    monkeypatch.setattr(b, "REPO", tmp_path)
    monkeypatch.setattr(b, "outputs", lambda aid, workdir: {stale: "new", missing: "new"})
    assert b.build(check=True, assignments=["day1_optimization"]) == 1
    assert "stale.ipynb" in capsys.readouterr().out and stale.read_text() == "old" and not missing.exists()
    monkeypatch.setattr(b, "outputs", lambda aid, workdir: {stale: "old"})
    assert b.build(check=True, assignments=["day1_optimization"]) == 0


def test_student_notebook_has_stubs_and_no_solutions():
    for aid, name in assignments().items():
        student = nbformat.read(REPO / "assignments" / aid / f"{name}.ipynb", as_version=4)
        instructor = nbformat.read(REPO / "solutions" / aid / f"{name}.ipynb", as_version=4)
        text = nbformat.writes(student)
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text and "autograder" not in text
        sol_cells = [c for c in student.cells if c.metadata.get("nbgrader", {}).get("solution")]
        assert sol_cells and all("raise NotImplementedError()" in c.source for c in sol_cells)
        ids = [c.metadata["nbgrader"]["grade_id"] for c in instructor.cells if "nbgrader" in c.metadata]
        assert len(ids) == len(set(ids))
        for c in instructor.cells:
            meta = c.metadata.get("nbgrader", {})
            if meta.get("grade"):
                assert meta["grade_id"].startswith("test_") and meta["points"] > 0
                assert c.source.lstrip().startswith('"""'), f"{meta['grade_id']} needs a one-line docstring"


def test_reference_definitions_are_copied_verbatim():
    defs = b._definitions(REPO / "solutions" / "day1_optimization" / "reference.py")
    nb = b.instructor_notebook("day1_optimization")
    adam = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "adam")
    assert defs["Adam"] in adam.source
    assert defs["minibatches"].rstrip().endswith("### END SOLUTION")  # trailing comments are kept
