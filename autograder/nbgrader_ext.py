"""nbgrader configuration shared by the course root and by every grading worker.

``configure(c, course_root)`` is called from ``nbgrader_config.py`` files, so running
``nbgrader autograde`` by hand from the repository root and ``course grade`` execute
notebooks the same way.
"""
from __future__ import annotations

import os
from pathlib import Path

from nbclient.exceptions import DeadKernelError
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbformat.v4 import new_output
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests, Execute,
                                    GetGrades, IgnorePattern, LimitOutput, NbGraderPreprocessor, SaveAutoGrades)

REPO_ROOT = Path(__file__).resolve().parents[1]

# Seconds one cell may run before nbgrader interrupts it (the cell then shows a
# CellTimeoutError and grading goes on with the next cell). A whole DAY notebook runs in
# under 20 s on a 2-core CPU. `course grade --cell-timeout` sets COURSE_CELL_TIMEOUT.
CELL_TIMEOUT = 180


class CrashTolerantExecute(Execute):
    """nbgrader's Execute, but a dying kernel (segfault, os._exit, OOM kill) does not void
    the whole notebook: cells that ran keep their outputs and points, the crashing cell
    shows why, and every later test cell is marked as not run (an unexecuted test cell
    would otherwise look like a pass to nbgrader)."""

    def preprocess(self, nb, resources=None, km=None):
        self.died_in = None
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        if self.died_in is None:
            try:
                return super().preprocess_cell(cell, resources, index)
            except DeadKernelError:
                self.died_in = index
                cell.outputs.append(new_output("error", ename="KernelDied", evalue=(
                    "the Python kernel died while running this cell (a crash, os._exit() or running out of "
                    "memory); later cells were not run"), traceback=[]))
                return cell, resources
        if cell.cell_type == "code":
            cell.outputs = []
            if cell.metadata.get("nbgrader", {}).get("grade"):
                cell.outputs.append(new_output("error", ename="NotRun", evalue=(
                    f"not run: the kernel died in cell {self.died_in} (see above)"), traceback=[]))
        return cell, resources


class HarmlessStderr(NbGraderPreprocessor):
    """Turn stderr output of test cells into stdout, so a warning never costs points.

    nbgrader gives 0 to a graded cell with *any* stderr output. A real failure is an
    exception (an ``error`` output), which this leaves alone.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream" and out.get("name") == "stderr":
                    out["name"] = "stdout"
        return cell, resources


class ScrubTestTracebacks(NbGraderPreprocessor):
    """In feedback, reduce a failed test cell's traceback to its message.

    The traceback frames would show the hidden tests' source lines and the grader's
    paths; the message (written to teach) is what the student needs.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    out["traceback"] = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
        return cell, resources


def kernel_environment(threads: int | None = None) -> dict[str, str]:
    """Environment variables for the kernels that execute submissions."""
    paths = [str(REPO_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                if p and p != str(REPO_ROOT)]
    env = {"COURSE_GRADING": "1", "PYTHONPATH": os.pathsep.join(paths)}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def configure(c, course_root: Path | str, *, repo_layout: bool = False) -> None:
    """Fill an nbgrader config object ``c``.

    Args:
        course_root: nbgrader's CourseDirectory.root.
        repo_layout: True for the repository itself, whose instructor notebooks are in
            ``solutions/`` and student notebooks in ``assignments/``.
    """
    c.CourseDirectory.root = str(course_root)
    if repo_layout:
        c.CourseDirectory.source_directory = "solutions"
        c.CourseDirectory.release_directory = "assignments"
    # Reference modules and notebook sources sit next to the instructor notebooks; they
    # must never be copied into a release or a graded submission.
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py", "*.md"]
    c.Execute.timeout = int(os.environ.get("COURSE_CELL_TIMEOUT", CELL_TIMEOUT))
    c.Autograde.autograde_preprocessors = [CrashTolerantExecute, HarmlessStderr, IgnorePattern, ClearMetadataPreprocessor,
                                           LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    # Feedback shows the student's test cells without the hidden tests' source or frames.
    c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, ScrubTestTracebacks, CSSHTMLHeaderPreprocessor]
    os.environ.update(kernel_environment())  # inherited by the kernels nbgrader starts
