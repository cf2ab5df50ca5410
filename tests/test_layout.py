"""One folder per DAY: the list of DAYs is found from the folders, every DAY has the same files,
and no module of the machinery (autograder/, course/) spells a DAY id."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import course.checks
from course import days

REPO = Path(__file__).resolve().parents[1]
PER_DAY = ("reference.py", "experiment.py", "notebook.py", "hidden.py")


def test_days_are_found_from_the_solution_folders():
    found = days.assignments()
    assert list(found) == sorted((p.parent.name for p in REPO.glob("solutions/day*/notebook.py")),
                                 key=lambda a: int(a[3:].split("_")[0]))
    assert len(found) >= 6 and all(name == aid.split("_", 1)[1] for aid, name in found.items())
    assert days.resolve("4") == days.resolve("day4") == days.resolve("rnn") == "day4_rnn"
    assert days.resolve("day99") is None


def test_every_day_has_its_folder_checks_and_tests_named_after_it():
    aids = list(days.assignments())
    assert days.check_modules() == aids  # course/checks/<aid>.py, found the same way by the checks package
    for aid in aids:
        folder = REPO / "solutions" / aid
        assert all((folder / f).is_file() for f in PER_DAY), aid
        assert (folder / f"{days.notebook_name(aid)}.ipynb").is_file(), aid
        assert all((folder / "samples" / f"{who}.ipynb").is_file() for who in ("reference", "blank", "buggy")), aid
        assert (REPO / "assignments" / aid / f"{days.notebook_name(aid)}.ipynb").is_file(), aid
        assert (REPO / "tests" / f"test_{aid}.py").is_file(), aid


def test_no_module_of_the_machinery_names_a_day():
    """autograder/ and course/ are machinery: a new DAY needs no edit there (course/checks/<aid>.py
    aside, which is that DAY's own file)."""
    aids = list(days.assignments())
    spelled = re.compile(r"\bday\d+(_[a-z0-9]+)?\b")
    offenders = []
    for path in [*REPO.glob("autograder/**/*.py"), *REPO.glob("course/**/*.py")]:
        if path.parent.name == "checks" and path.stem in aids:
            continue
        for m in spelled.finditer(path.read_text(encoding="utf-8")):
            offenders.append(f"{path.relative_to(REPO)}: {m.group(0)}")
    assert offenders == []
    assert not any(p.stem in aids for p in REPO.glob("autograder/**/*")), "a file of autograder/ is named after a DAY"


def test_students_import_every_days_checks_from_the_package():
    for aid in days.check_modules():
        module = __import__(f"course.checks.{aid}", fromlist=["_"])
        checks = [n for n in getattr(module, "__all__", vars(module)) if n.startswith("check_")
                  and callable(getattr(module, n))]  # its own, or re-exported from the modules it is split into
        assert checks and all(getattr(course.checks, n) is getattr(module, n) for n in checks), aid


def test_reference_modules_keep_their_imports_at_the_top_and_stay_short():
    for aid in days.assignments():
        for name in ("reference.py", "experiment.py"):
            path = REPO / "solutions" / aid / name
            tree = ast.parse(path.read_text(encoding="utf-8"))
            inner = [f"{node.name}: line {sub.lineno}" for node in tree.body if isinstance(node, ast.FunctionDef)
                     for sub in ast.walk(node) if isinstance(sub, (ast.Import, ast.ImportFrom))]
            assert inner == [], f"{aid}/{name} imports inside functions: {inner}"
            assert "__import__(" not in path.read_text(encoding="utf-8"), f"{aid}/{name}"


def test_hidden_tests_import_only_what_the_kernel_sandbox_shows():
    """The kernel that runs the hidden tests sees only course/, autograder/, data/ and the hidden-test
    modules of solutions/ (autograder/kernel_sandbox.py), so a hidden test that imported a reference or
    an experiment would fail under grading."""
    from autograder.kernel_sandbox import hidden_test_modules

    visible = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
               for p in hidden_test_modules(REPO)}
    for aid in days.assignments():
        tree = ast.parse((REPO / "solutions" / aid / "hidden.py").read_text(encoding="utf-8"))
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        names += [f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
                  and n.module.startswith("solutions") for a in n.names]
        for name in names:
            top = name.split(".")[0]
            assert top != "solutions" or name in visible, f"{aid}/hidden.py imports {name}, which the kernel cannot see"
