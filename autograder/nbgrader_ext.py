"""nbgrader configuration shared by the course root and by every grading worker.

``configure(c, course_root)`` is called from ``nbgrader_config.py`` files, so running
``nbgrader autograde`` by hand from the repository root and ``course grade`` execute
notebooks the same way.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from pathlib import Path

import latex2mathml.converter
import nbgrader
import nbgrader.api
from jupyter_client import AsyncKernelManager
from nbclient.exceptions import DeadKernelError
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbformat.v4 import new_code_cell, new_output
from autograder import judge, kernel_sandbox
from autograder.guard import PREFIX as TAMPERING  # the message prefix of a tampering verdict
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests, Execute,
                                    GetGrades, IgnorePattern, LimitOutput, NbGraderPreprocessor, SaveAutoGrades)

REPO_ROOT = Path(__file__).resolve().parents[1]

# Seconds one cell may run before nbgrader interrupts it (the cell then shows a
# CellTimeoutError and grading goes on with the next cell). A whole DAY notebook runs in
# under 20 s on a 2-core CPU. `course grade --cell-timeout` sets COURSE_CELL_TIMEOUT.
CELL_TIMEOUT = 180

# Set to 1 (by `course grade --unsafe-no-sandbox`) to run kernels without the OS sandbox where the
# machine cannot build it (where it can, kernels always run in it).
UNSAFE_NO_SANDBOX = "COURSE_UNSAFE_NO_SANDBOX"


def sandbox_refusal() -> str | None:
    """Why a submission must not run here (no kernel sandbox, and not told to go on without it), or None."""
    works, why = kernel_sandbox.available()
    if works or os.environ.get(UNSAFE_NO_SANDBOX) == "1":
        return None
    return (f"this machine cannot sandbox the student's kernel ({why}); on Linux allow user namespaces or "
            "run as root, or pass --unsafe-no-sandbox (course grade) or set COURSE_UNSAFE_NO_SANDBOX=1 "
            "(nbgrader) to grade without it (docs/INSTRUCTOR.md says what that risks)")


class SandboxedKernelManager(AsyncKernelManager):
    """The kernel manager nbgrader executes submissions with: every kernel starts inside the OS
    sandbox of autograder/kernel_sandbox.py; where there is none, only with COURSE_UNSAFE_NO_SANDBOX=1."""

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if kernel_sandbox.available()[0]:
            return kernel_sandbox.wrap(cmd, os.path.realpath(self.connection_file))
        refusal = sandbox_refusal()
        if refusal:
            raise RuntimeError(refusal)
        return cmd  # no sandbox here, and told to go on without it


class CrashTolerantExecute(Execute):
    """nbgrader's Execute, but a dying kernel (segfault, os._exit, OOM kill) does not void
    the whole notebook: cells that ran keep their outputs and points, the crashing cell
    shows why, and every later test cell is marked as not run (an unexecuted test cell
    would otherwise look like a pass to nbgrader).

    Before each cell it writes ``{"cell": N}`` to ``progress_file`` (when set; the worker sets it),
    so that if the whole grading process is killed, `course grade` can say in which cell."""

    progress_file: str | None = None

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = SandboxedKernelManager
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, km=None):
        self.died_in = None
        self.offset = int(bool(nb.cells) and GUARD_MARK in nb.cells[0].metadata)
        assignment = (resources or {}).get("nbgrader", {}).get("assignment")
        self.channel = judge.Channel(assignment) if assignment and judge.lists_judged_tests(assignment) else None
        if self.channel is None:
            return super().preprocess(nb, resources, km)
        os.environ[judge.CHANNEL] = str(self.channel.path)  # the kernel (and its sandbox) inherit it
        try:
            return super().preprocess(nb, resources, km)
        finally:
            os.environ.pop(judge.CHANNEL, None)
            self.channel.close()

    def preprocess_cell(self, cell, resources, index):
        if self.progress_file and cell.cell_type == "code":
            tmp = self.progress_file + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"cell": index - self.offset}, f)  # as the student counts: without the guard's cell
            os.replace(tmp, self.progress_file)
        if self.died_in is None:
            test_id = _nbg(cell).get("grade_id") if _is_test_cell(cell) else None
            judged = self.channel is not None and test_id is not None and test_id in self.channel.tests
            if judged:
                self.channel.before(test_id)
            try:
                cell, resources = super().preprocess_cell(cell, resources, index)
            except DeadKernelError:
                self.died_in = index - self.offset  # as the student counts: without the guard's cell
                cell.outputs.append(new_output("error", ename="KernelDied", evalue=(
                    "the Python kernel died while running this cell (a crash, os._exit() or running out of "
                    "memory); later cells were not run"), traceback=[]))
                return cell, resources
            if judged:
                self._add_verdict(cell, test_id)
            return cell, resources
        if cell.cell_type == "code":
            cell.outputs = []
            if cell.metadata.get("nbgrader", {}).get("grade"):
                cell.outputs.append(new_output("error", ename="NotRun", evalue=(
                    f"not run: the kernel died in cell {self.died_in} (see above)"), traceback=[]))
        return cell, resources

    def _add_verdict(self, cell, test_id: str) -> None:
        """The judge's verdict on the cell's observations, as its last output (judge.py)."""
        failed = self.channel.after(test_id)
        if any(o.get("output_type") == "error" for o in cell.outputs):
            return  # the cell failed in the kernel already: no points either way
        if failed:
            cell.outputs.append(new_output("error", ename="AssertionError", evalue=failed, traceback=[]))
        else:
            text = f"\u2713 hidden tests passed for {self.channel.tests[test_id].description} (judged by the grader)\n"
            cell.outputs.append(new_output("stream", name="stdout", text=text))


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


# Markdown math: $$display$$ and $inline$ (an escaped \$ or a lone $ is left alone); code is skipped.
_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE = re.compile(r"(?<![\\$])\$(?!\s)([^$\n]+?)(?<!\s)\$(?!\d)")


def math_to_mathml(markdown: str) -> str:
    """The markdown with its LaTeX math turned into MathML, which browsers draw without MathJax
    (so feedback shows its equations offline). Math that latex2mathml cannot read stays as it was."""
    def render(display: str):
        def one(m: re.Match) -> str:
            try:
                return latex2mathml.converter.convert(m.group(1).strip(), display=display)
            except Exception:  # an unusual macro: leave the LaTeX source visible rather than fail the feedback
                return m.group(0)
        return one

    parts = _CODE.split(markdown)
    for i in range(0, len(parts), 2):  # even parts are outside code
        parts[i] = _INLINE.sub(render("inline"), _DISPLAY.sub(render("block"), parts[i]))
    return "".join(parts)


class MathToMathML(NbGraderPreprocessor):
    """In feedback, render the markdown cells' equations as MathML (see :func:`math_to_mathml`)."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown":
            cell.source = math_to_mathml(cell.source)
        return cell, resources


_REMOTE_SCRIPT = re.compile(r"<script[^>]*\ssrc=\"https?://[^\"]*\"[^>]*>\s*</script>\s*|"
                            r"<script type=\"text/x-mathjax-config\">.*?</script>\s*", re.S)


def make_offline(html: str) -> str:
    """Feedback HTML without the scripts it would fetch from the internet (MathJax: the math is
    MathML already), so it opens the same with or without a network."""
    return _REMOTE_SCRIPT.sub("", html)


GUARD_MARK = "course_guard"
_STAMP = re.compile("\u200b\\[course-guard ([0-9a-f]+)\\]\u200b\n?")


def _nbg(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _is_test_cell(cell) -> bool:
    return cell.cell_type == "code" and bool(_nbg(cell).get("grade")) and not _nbg(cell).get("solution")


class ArmGuard(NbGraderPreprocessor):
    """Put the tamper guard (autograder/guard.py) in front of the submission's first cell.

    The guard is told which cells are the instructor's (locked cells, restored from the
    gradebook by now) and which are test cells, through a file it deletes before any student
    code runs. COURSE_GUARD_PROTECT (set by `course grade`) names the grading folder, which
    the student's cells must not read."""

    def preprocess(self, nb, resources):
        locked = [c.source for c in nb.cells if c.cell_type == "code" and _nbg(c).get("locked")]
        tests = [c.source for c in nb.cells if _is_test_cell(c)]
        preload = sorted({m for src in locked for m in re.findall(
            r"^\s*(?:from|import)\s+((?:autograder|solutions|course\.checks)[\w.]*)", src, flags=re.M)})
        protect = [str(REPO_ROOT / "solutions"), str(REPO_ROOT / "autograder")]
        protect += [p for p in os.environ.get("COURSE_GUARD_PROTECT", "").split(os.pathsep) if p]
        nonce = secrets.token_hex(8)
        fd, path = tempfile.mkstemp(prefix="course-guard-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump({"trusted": locked, "graded": tests, "preload": preload, "protected_dirs": protect,
                       "nonce": nonce}, f)
        os.environ[kernel_sandbox.GUARD_CONFIG] = path  # the sandbox carries it into the kernel's /tmp
        cell = new_code_cell(f"__import__('autograder.guard').guard.arm({path!r})")
        cell.metadata[GUARD_MARK] = nonce
        nb.cells.insert(0, cell)
        return nb, resources


class DisarmGuard(NbGraderPreprocessor):
    """After execution: take the guard's cell out again, remove its stamps from the test cells'
    outputs, and fail any test cell that ran without a stamp (the guard was switched off)."""

    def preprocess(self, nb, resources):
        if not nb.cells or GUARD_MARK not in nb.cells[0].metadata:
            return nb, resources
        guard = nb.cells.pop(0)
        nonce = guard.metadata[GUARD_MARK]
        errors = [o for o in guard.get("outputs", []) if o.get("output_type") == "error"]
        if errors:  # the guard itself could not start: grade without it, and say so
            nb.metadata[GUARD_MARK] = {"failed": f"{errors[0].get('ename')}: {errors[0].get('evalue')}"}
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            stamped = False
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream":
                    text = "".join(out.get("text", ""))
                    stamped = stamped or any(m.group(1) == nonce for m in _STAMP.finditer(text))
                    out["text"] = _STAMP.sub("", text)
            cell["outputs"] = [o for o in cell.get("outputs", []) if o.get("output_type") != "stream" or o["text"]]
            ran = cell.get("execution_count") is not None
            died = any(o.get("ename") in ("KernelDied", "NotRun") for o in cell.outputs if o.get("output_type") == "error")
            if _is_test_cell(cell) and ran and not died and not stamped and not errors:
                cell.outputs.append(new_output("error", ename="AssertionError", evalue=(
                    f"{TAMPERING}the grader's guard was switched off before this test cell ran. "
                    "This test gets no credit."), traceback=[]))
        return nb, resources


def kernel_environment(threads: int | None = None) -> dict[str, str]:
    """Environment variables for the kernels that execute submissions."""
    paths = [str(REPO_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                if p and p != str(REPO_ROOT)]
    env = {"COURSE_GRADING": "1", "PYTHONPATH": os.pathsep.join(paths)}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def gradebook_schema_version() -> str:
    """The revision a new gradebook is stamped with, read from nbgrader's migration scripts in this
    process: nbgrader itself runs the `alembic heads` command for it, about 4 s on a small CPU, and
    needs that command on PATH."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(Path(nbgrader.__file__).parent / "alembic")).get_current_head()


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
    # Reference modules, notebook sources and the sample submissions (the reference filled in) sit
    # next to the instructor notebooks; they must never be copied into a release or a graded submission.
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py", "*.md", "samples"]
    c.Execute.timeout = int(os.environ.get("COURSE_CELL_TIMEOUT", CELL_TIMEOUT))
    # Kill the kernel when the notebook is done rather than ask it to exit and wait (about 1 s a
    # notebook): it has nothing left to save, and the sandbox ends whatever it started.
    c.Execute.shutdown_kernel = "immediate"
    c.Autograde.autograde_preprocessors = [ArmGuard, CrashTolerantExecute, DisarmGuard, HarmlessStderr, IgnorePattern, ClearMetadataPreprocessor,
                                           LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    # Feedback shows the student's test cells without the hidden tests' source or frames.
    c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, ScrubTestTracebacks, MathToMathML,
                                        CSSHTMLHeaderPreprocessor]
    nbgrader.api.get_alembic_version = gradebook_schema_version
    if repo_layout:  # `nbgrader autograde` from the course root: its kernels inherit this environment
        os.environ.update(kernel_environment())
