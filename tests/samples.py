"""Sample notebooks made cheaper to grade, for the tests that grade whole notebooks."""
from __future__ import annotations

import ast

import nbformat


def without_experiments(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` without its ungraded cells that only compute (no def, class or import): the experiments,
    which change no grade. The shared grading run's references still run every cell
    (tests/test_grading.py:test_every_cell_of_the_reference_notebook_runs); elsewhere this keeps the
    suite's time down."""
    def keeps(cell) -> bool:
        if cell.cell_type != "code" or cell.metadata.get("nbgrader"):
            return True
        try:
            body = ast.parse(cell.source).body
        except SyntaxError:
            return True
        return any(isinstance(s, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)) for s in body)
    nb.cells = [c for c in nb.cells if keeps(c)]
    return nb
