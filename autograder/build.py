"""`course build`: instructor notebooks, student notebooks and sample submissions.

For each assignment ``<aid>`` with notebook name ``<name>`` (found by course/days.py):

1. ``solutions/<aid>/notebook.py`` (jupytext percent format) is read. Code cells get their
   ``# include: Name, ...`` lines replaced by the source of those definitions in
   ``solutions/<aid>/reference.py``, then ``reference_*.py`` (a long reference split in parts),
   then ``experiment.py`` (the single source of truth), preceded by the imports of that file
   which the included code needs and no earlier cell made; tags become nbgrader metadata.
   Result: ``solutions/<aid>/<name>.ipynb``.
2. ``nbgrader generate_assignment`` turns it into ``assignments/<aid>/<name>.ipynb``.
3. Three sample submissions go to ``solutions/<aid>/samples/{reference,blank,buggy}.ipynb``:
   the student notebook with the reference solutions filled in, the untouched student
   notebook, and the reference with the bug named in ``solutions/<aid>/hidden.py:SAMPLE_BUG``.

Cell tags in notebook.py:
    ``solution:<grade_id>``            an exercise (graded by the tests after it)
    ``test:<grade_id>:<points>``       an autograded test cell (read-only)
    ``locked:<grade_id>``              a read-only cell restored before grading
"""
from __future__ import annotations

import ast
import importlib
import os
import sys
import tempfile
from pathlib import Path

import jupytext
import nbformat

from course.days import assignments as known_assignments
from course.days import notebook_name

REPO = Path(__file__).resolve().parents[1]
SAMPLE_STUDENTS = ("reference", "blank", "buggy")


def _sources(aid: str) -> list[Path]:
    """The files of a DAY that `# include:` takes definitions from, first match first."""
    folder = REPO / "solutions" / aid
    return [folder / "reference.py", *sorted(folder.glob("reference_*.py")), folder / "experiment.py"]


class BuildError(Exception):
    """A problem in a notebook source that the author must fix."""


def _definitions(module_path: Path) -> dict[str, str]:
    """Source text of each top-level def/class in a module, decorators included."""
    text = module_path.read_text(encoding="utf-8")
    lines = text.splitlines()
    out = {}
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            end = node.end_lineno  # the AST ends at the last statement; keep trailing
            while end < len(lines) and lines[end].strip().startswith("#") and \
                    len(lines[end]) - len(lines[end].lstrip()) > node.col_offset:  # indented comments
                end += 1
            out[node.name] = "\n".join(lines[start - 1:end])
    body = ast.parse(text).body
    for i, node in enumerate(body):  # constants: NAME = ... (with the docstring line after it, if any)
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [n.id for t in targets for n in ([t] if isinstance(t, ast.Name) else getattr(t, "elts", []))
                     if isinstance(n, ast.Name)]
            end = node.end_lineno
            nxt = body[i + 1] if i + 1 < len(body) else None
            if isinstance(nxt, ast.Expr) and isinstance(getattr(nxt, "value", None), ast.Constant) and \
                    isinstance(nxt.value.value, str):
                end = nxt.end_lineno
            for name in names:
                out.setdefault(name, "\n".join(lines[node.lineno - 1:end]))
    return out


def _top_imports(module_path: Path) -> dict[str, str]:
    """name -> the import line at the top of a module that binds it (``from __future__`` left out)."""
    text = module_path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found: dict[str, str] = {}
    for node in ast.parse(text).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "module", None) != "__future__":
            line = "\n".join(lines[node.lineno - 1:node.end_lineno]).split("  #")[0].rstrip()
            for alias in node.names:
                found.setdefault((alias.asname or alias.name).split(".")[0], line)
    return found


def _names_used(source: str) -> set[str]:
    """Every plain name that a piece of code reads (``torch`` of ``torch.nn.Linear`` included)."""
    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}


def _names_bound(sources: list[str]) -> set[str]:
    """Names that earlier notebook cells import or define (cells that are not plain Python are skipped)."""
    bound: set[str] = set()
    for src in sources:
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in tree.body:  # module level only: a name bound inside a function does not count
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
                bound.add(node.name)
            else:
                bound |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return bound


def _meta(kind: str, grade_id: str, points: int | None = None) -> dict:
    base = {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3,
            "solution": False, "task": False}
    if kind == "solution":
        base.update(solution=True)
    elif kind == "test":
        base.update(grade=True, locked=True, points=points)
    elif kind == "locked":
        base.update(locked=True)
    return base


def instructor_notebook(aid: str) -> nbformat.NotebookNode:
    """Render solutions/<aid>/notebook.py into the nbgrader instructor notebook."""
    src = REPO / "solutions" / aid / "notebook.py"
    if not src.exists():
        raise BuildError(f"{src.relative_to(REPO)} is missing: every assignment needs a notebook source")
    defs: dict[str, str] = {}
    imports: dict[str, str] = {}
    for path in _sources(aid):  # a name defined twice comes from the first file
        if path.exists():
            defs = _definitions(path) | defs
            imports = _top_imports(path) | imports
    imports = {k: v for k, v in imports.items() if not v.startswith("from solutions")}  # the notebook has those
    nb = jupytext.read(src)
    seen: set[str] = set()
    earlier: list[str] = []  # sources of the code cells above the current one
    for i, cell in enumerate(nb.cells):
        tags = cell.metadata.pop("tags", [])
        cell.metadata = {}
        cell.id = f"cell-{i:03d}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            new_lines = []
            included = False
            for line in cell.source.splitlines():
                if line.startswith("# include:"):
                    included = True
                    for name in (n.strip() for n in line.split(":", 1)[1].split(",")):
                        if name not in defs:
                            raise BuildError(f"{src.name}: '# include: {name}' but no reference*.py nor experiment.py "
                                             f"defines {name}")
                        if defs[name] not in new_lines:  # "# include: PAD, BOS" share one line
                            new_lines += [defs[name], "", ""]
                else:
                    new_lines.append(line)
            cell.source = "\n".join(new_lines).strip("\n")
            # included code keeps working on its own: the imports it needs that no earlier cell made
            missing = sorted(_names_used(cell.source) & set(imports) - _names_bound(earlier + [cell.source]))
            needed = list(dict.fromkeys(imports[n] for n in missing))
            if needed and included:
                cell.source = "\n".join(needed) + "\n\n\n" + cell.source
            earlier.append(cell.source)
        for tag in tags:
            kind, _, rest = tag.partition(":")
            if kind not in ("solution", "test", "locked"):
                continue
            grade_id, _, points = rest.partition(":")
            if grade_id in seen:
                raise BuildError(f"{src.name}: grade_id {grade_id!r} is used twice")
            seen.add(grade_id)
            if kind == "test" and not (grade_id.startswith("test_") and points.isdigit()):
                raise BuildError(f"{src.name}: test tag {tag!r} must look like test:test_<name>:<points>")
            if kind == "solution" and "### BEGIN SOLUTION" not in cell.source:
                raise BuildError(f"{src.name}: solution cell {grade_id!r} has no ### BEGIN SOLUTION region")
            cell.metadata["nbgrader"] = _meta(kind, grade_id, int(points) if kind == "test" else None)
            if kind != "solution":
                cell.id = grade_id.replace("_", "-")
            else:
                cell.id = f"sol-{grade_id.replace('_', '-')}"
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    return nb


def nbgrader_env(extra: dict | None = None) -> dict[str, str]:
    """The environment for an nbgrader subprocess: this interpreter's bin/ first on PATH (nbgrader
    shells out to `alembic` for migrations, which lives there in a virtual environment)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(extra or {})
    return env


def write_course_config(course_root: Path) -> None:
    """An nbgrader_config.py for a scratch course directory, with the course's settings."""
    (course_root / "nbgrader_config.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from autograder.nbgrader_ext import configure\n"
        "c = get_config()\n"
        f"configure(c, {str(course_root)!r})\n", encoding="utf-8")


def generate_student(aid: str, name: str, instructor: nbformat.NotebookNode, workdir: Path):
    """Run nbgrader generate_assignment (in this process) in a scratch course directory.

    Returns the student notebook and the path of the gradebook that now describes the
    assignment (grading workers start from a copy of it). Not thread-safe: nbgrader's apps are not.
    """
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    from autograder.nbgrader_ext import configure

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "source" / aid).mkdir(parents=True, exist_ok=True)
    nbformat.write(instructor, workdir / "source" / aid / f"{name}.ipynb")
    config = Config()
    configure(config, workdir)
    config.Application.log_level = "WARN"
    res = NbGraderAPI(config=config).generate_assignment(aid, force=True)
    out = workdir / "release" / aid / f"{name}.ipynb"
    if not res.get("success") or not out.exists():
        raise BuildError(f"nbgrader generate_assignment {aid} failed:\n{res.get('log', '')}\n{res.get('error', '')}")
    return nbformat.read(out, as_version=4), workdir / "gradebook.db"


def sample_submissions(aid: str, instructor, student) -> dict[str, nbformat.NotebookNode]:
    """The reference, blank and buggy submissions, all made from the student notebook."""
    solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in instructor.cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    reference = nbformat.reads(nbformat.writes(student), as_version=4)
    for cell in reference.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = solutions[gid]
    bug = importlib.import_module(f"solutions.{aid}.hidden").SAMPLE_BUG
    buggy = nbformat.reads(nbformat.writes(reference), as_version=4)
    cell = next(c for c in buggy.cells if c.metadata.get("nbgrader", {}).get("grade_id") == bug["cell"])
    for old, new in bug["replace"]:
        if old not in cell.source:
            raise BuildError(f"SAMPLE_BUG of {aid}: {old!r} not found in cell {bug['cell']!r}")
        cell.source = cell.source.replace(old, new)
    return {"reference": reference, "blank": student, "buggy": buggy}


def sample_path(aid: str, who: str) -> Path:
    """Where `course build` writes the sample submission ``who`` (reference, blank or buggy) of a DAY."""
    return REPO / "solutions" / aid / "samples" / f"{who}.ipynb"


def lay_out_samples(dest: Path, assignments: list[str] | None = None, who=SAMPLE_STUDENTS) -> Path:
    """Copy the sample submissions into ``dest/<who>/<aid>/<name>.ipynb``, the layout `course grade` reads."""
    for aid in assignments or list(known_assignments()):
        for student in who:
            target = dest / student / aid / f"{notebook_name(aid)}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(sample_path(aid, student).read_bytes())
    return dest


def outputs(aid: str, workdir: Path) -> dict[Path, str]:
    """Every file `course build` writes for one assignment: path -> notebook JSON."""
    name = notebook_name(aid)
    instructor = instructor_notebook(aid)
    student, _ = generate_student(aid, name, instructor, workdir / aid)
    files = {REPO / "solutions" / aid / f"{name}.ipynb": instructor,
             REPO / "assignments" / aid / f"{name}.ipynb": student}
    for who, nb in sample_submissions(aid, instructor, student).items():
        files[sample_path(aid, who)] = nb
    return {path: nbformat.writes(nb) + "\n" for path, nb in files.items()}


def build(check: bool = False, assignments: list[str] | None = None, log=print) -> int:
    """Write (or with ``check``, compare) every generated notebook. Returns an exit code."""
    stale = []
    with tempfile.TemporaryDirectory(prefix="course-build-") as tmp:
        for aid in assignments or list(known_assignments()):
            for path, text in outputs(aid, Path(tmp)).items():
                current = path.read_text(encoding="utf-8") if path.exists() else None
                if current == text:
                    continue
                if check:
                    stale.append(path.relative_to(REPO))
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text, encoding="utf-8")
                    log(f"wrote {path.relative_to(REPO)}")
            if not check:
                log(f"{aid}: notebooks up to date")
    if check and stale:
        log("These generated notebooks are out of date; run `course build` and commit them:")
        for p in stale:
            log(f"  {p}")
        return 1
    if check:
        log("all generated notebooks are up to date")
    return 0
