"""Whole-notebook grading through `course grade` (nbgrader underneath).

One grading run covers, for every DAY: the reference (full marks), the blank skeleton (0,
grader keeps going), the bundled buggy sample (loses exactly the points of the planted
bug); and for DAY 1: a tampered buggy notebook (edited, deleted and duplicated cells,
huge outputs: graded from the original tests, every repair reported), a cheater (whose honest first
exercise also emits a UserWarning and writes to stderr: no points lost), an attacker of the judge
(tests/judge_attacks.py: 0 points), and broken input (malformed JSON, a missing assignment folder)
that is reported without stopping the batch. Only the references run their experiment cells (see
``without_experiments``).
"""
from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder.build import lay_out_samples, sample_path
from course.days import assignments
from tests.judge_attacks import DQN_AID, attacker, dqn_attacker
from tests.samples import without_experiments

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = assignments()
AID, NAME = "day1_optimization", ASSIGNMENTS["day1_optimization"]


def _noisy_reference() -> nbformat.NotebookNode:
    nb = nbformat.read(sample_path(AID, 'reference'), as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "sgd")
    cell.source = cell.source.replace(
        '                p.add_(p.grad, alpha=-group["lr"])',
        '                import sys, warnings\n'
        '                warnings.warn("this is only a warning", UserWarning)\n'
        '                print("debug output on stderr", file=sys.stderr)\n'
        '                p.add_(p.grad, alpha=-group["lr"])')
    assert "warnings.warn" in cell.source
    return nb


def _tampered_buggy() -> nbformat.NotebookNode:
    """The buggy sample (fails test_adam) after a student 'fixes' it: the Adam test replaced by `pass`,
    the momentum test deleted, the SGD solution duplicated, and 6 MB of printed output left in."""
    nb = without_experiments(nbformat.read(sample_path(AID, 'buggy'), as_version=4))
    cell = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    cell["test_adam"].source = "pass"
    nb.cells.remove(cell["test_momentum"])
    copy = nbformat.from_dict(dict(cell["sgd"]))
    copy["id"] = "sgd-copy"  # Jupyter gives a pasted cell a new id; its nbgrader metadata is copied as is
    nb.cells.insert(nb.cells.index(cell["sgd"]) + 1, copy)
    cell["sgd"].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * (6 * 2**20))]
    return nb


# What the DAY 1 "cheater" does, in which solution cell (each realistic, each caught by autograder/guard.py).
CHEATS = {
    "adam": "from solutions.day1_optimization.reference import Adam  # the answer, imported",
    "lr_schedules": "torch.allclose = lambda *args, **kwargs: True  # every comparison passes",
    "minibatches": "import course, pathlib\n_hidden = (pathlib.Path(course.__file__).parents[1] / 'solutions' / "
                   "'day1_optimization' / 'hidden.py').read_text()  # the hidden tests, read from disk",
    "init_weights": "get_ipython().input_transformers_post.clear()  # switch the guard off",
}


def _cheater() -> nbformat.NotebookNode:
    """The noisy reference (full marks) with the cheats above added to four later solution cells."""
    nb = without_experiments(_noisy_reference())
    for c in nb.cells:
        gid = c.metadata.get("nbgrader", {}).get("grade_id")
        if gid in CHEATS:
            c.source += "\n" + CHEATS[gid] + "\n"
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    subs = tmp_path_factory.mktemp("submissions")
    lay_out_samples(subs)
    for aid, name in ASSIGNMENTS.items():
        buggy = subs / "buggy" / aid / f"{name}.ipynb"
        nbformat.write(without_experiments(nbformat.read(buggy, as_version=4)), buggy)
    victim = tmp_path_factory.mktemp("victim") / "victim.txt"
    victim.write_text("unchanged")
    (subs / "attacker" / AID).mkdir(parents=True)
    nbformat.write(attacker(victim), subs / "attacker" / AID / f"{NAME}.ipynb")
    (subs / "attacker" / DQN_AID).mkdir(parents=True)
    nbformat.write(dqn_attacker(without_experiments(nbformat.read(sample_path(DQN_AID, "reference"), as_version=4))),
                   subs / "attacker" / DQN_AID / f"{ASSIGNMENTS[DQN_AID]}.ipynb")
    (subs / "tampered" / AID).mkdir(parents=True)
    nbformat.write(_tampered_buggy(), subs / "tampered" / AID / f"{NAME}.ipynb")
    (subs / "cheater" / AID).mkdir(parents=True)
    nbformat.write(_cheater(), subs / "cheater" / AID / f"{NAME}.ipynb")
    (subs / "garbled" / AID).mkdir(parents=True)
    (subs / "garbled" / AID / f"{NAME}.ipynb").write_text('{"cells": [ this is not json')
    (subs / "nothing").mkdir()
    out = tmp_path_factory.mktemp("out")
    proc = subprocess.run([sys.executable, "-m", "course.cli", "grade", str(subs), "--out", str(out), "--jobs", "2"],
                          capture_output=True, text=True, timeout=900)
    rows = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(open(out / "grades.csv"))} \
        if (out / "grades.csv").exists() else {}
    return proc, rows, out, victim


# assignment -> (max score, test ids that the bundled buggy sample must fail)
EXPECTED = {
    "day1_optimization": (18.0, {"test_adam"}),
    "day2_normalization": (17.0, {"test_batch_norm_forward", "test_batchnorm2d"}),  # BatchNorm2d uses batch_norm
    "day3_cnn": (18.0, {"test_residual_block"}),
    "day4_rnn": (18.0, {"test_attention", "test_multi_head_attention"}),  # MultiHeadAttention uses the sdpa
    "day5_gan": (13.0, {"test_gan_losses"}),
    "day6_dqn": (16.0, {"test_td_target"}),
}


N_TESTS = {"day1_optimization": 9, "day2_normalization": 9, "day3_cnn": 9, "day4_rnn": 10, "day5_gan": 6, "day6_dqn": 9}


@pytest.mark.slow
def test_batch_completes_with_exit_code_zero(graded):
    proc, rows, _, _ = graded
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {s for s, _ in rows} == {"reference", "blank", "buggy", "tampered", "cheater", "garbled", "nothing",
                                    "attacker"}
    assert {a for _, a in rows} == set(ASSIGNMENTS) == set(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("aid", list(EXPECTED))
def test_reference_gets_full_marks(graded, aid):
    _, rows, out, _ = graded
    r = rows["reference", aid]
    assert (r["status"], float(r["score"]), float(r["max_score"])) == ("graded",) + (EXPECTED[aid][0],) * 2, r
    assert (out / "feedback" / "reference" / aid / f"{ASSIGNMENTS[aid]}.ipynb".replace(".ipynb", ".html")).exists()


@pytest.mark.slow
@pytest.mark.parametrize("aid", list(EXPECTED))
def test_blank_scores_zero_without_breaking(graded, aid):
    _, rows, _, _ = graded
    r = rows["blank", aid]
    assert r["status"] == "graded" and float(r["score"]) == 0.0, r
    assert len(r["failed_tests"].split()) == N_TESTS[aid]


@pytest.mark.slow
@pytest.mark.parametrize("aid", list(EXPECTED))
def test_buggy_sample_loses_the_planted_bug(graded, aid):
    _, rows, _, _ = graded
    r = rows["buggy", aid]
    assert set(r["failed_tests"].split()) == EXPECTED[aid][1], r
    assert 0 < float(r["score"]) < EXPECTED[aid][0]


@pytest.mark.slow
def test_feedback_teaches_and_hides_hidden_tests(graded):
    _, _, out, _ = graded
    html = (out / "feedback" / "buggy" / AID / f"{NAME}.html").read_text()
    assert "neither moment is bias-corrected" in html  # the teaching message reaches the student
    assert "hidden_adam" not in html and "BEGIN HIDDEN TESTS" not in html  # hidden tests do not leak


@pytest.mark.slow
@pytest.mark.parametrize("aid", list(EXPECTED))
def test_every_cell_of_the_reference_notebook_runs(graded, aid):
    """The whole notebook, graded or not, runs without an error when filled in with the reference (the
    worker's result lists every cell that raised): an experiment cell that breaks is caught here."""
    _, _, out, _ = graded
    result = json.loads((out / "results" / "reference" / f"{aid}.json").read_text())
    assert [f for f in result["findings"] if f["kind"] == "cell_error"] == []


@pytest.mark.slow
def test_feedback_shows_its_equations_without_a_network(graded):
    """Math is MathML in the HTML itself, and the HTML loads no script from the internet (nbconvert's
    template would fetch MathJax from a CDN)."""
    _, _, out, _ = graded
    for aid in EXPECTED:
        html = (out / "feedback" / "reference" / aid / f"{ASSIGNMENTS[aid]}.html").read_text()
        assert html.count("<math ") > 5, aid
        assert not re.search(r"<script[^>]+src=\"https?:", html) and "$$" not in html, aid


@pytest.mark.slow
def test_warnings_and_stderr_cost_no_points(graded):
    """The cheater's first exercise is honest but warns and prints to stderr: its test still passes."""
    _, rows, _, _ = graded
    r = rows["cheater", AID]
    assert "test_sgd" not in r["failed_tests"].split() and "stderr" not in r["problem"], r


@pytest.mark.slow
def test_broken_input_is_reported_not_fatal(graded):
    proc, rows, _, _ = graded
    assert rows["garbled", AID]["status"] == "invalid" and "not a readable notebook" in rows["garbled", AID]["problem"]
    assert rows["nothing", AID]["status"] == "missing" and AID in rows["nothing", AID]["problem"]
    assert rows["cheater", "day2_normalization"]["status"] == "missing"  # every DAY found is expected from everyone
    assert "garbled" in proc.stdout and "not a readable notebook" in proc.stdout


@pytest.mark.slow
def test_tampered_cells_are_restored_and_reported(graded):
    """Edited and deleted test cells are graded from the originals; the duplicate and the huge
    outputs do not break grading; every repair is named in the problem column."""
    _, rows, _, _ = graded
    r = rows["tampered", AID]
    assert r["status"] == "graded" and float(r["score"]) == 15.0 and r["failed_tests"] == "test_adam", r
    for words in ("test_adam was edited", "test_momentum was deleted", "duplicated solution cell sgd",
                  "6 MB of cell outputs"):
        assert words in r["problem"], r["problem"]


@pytest.mark.slow
def test_cheating_gets_no_credit_and_is_flagged(graded):
    """Importing the answer, patching torch.allclose, reading the hidden tests and switching the guard
    off: the tests from the first cheat on get 0, the earlier ones keep their points, and each cheat
    is named in a `flagged` row. The honest reference rows above show the guard flags nothing else."""
    _, rows, out, _ = graded
    r = rows["cheater", AID]
    release = nbformat.read(REPO / "assignments" / AID / f"{NAME}.ipynb", as_version=4)
    points = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"] for c in release.cells
              if c.metadata.get("nbgrader", {}).get("grade")}
    lost = {"test_adam", "test_lr_schedules", "test_minibatches", "test_init_weights"}
    assert r["status"] == "flagged" and set(r["failed_tests"].split()) == lost, r
    assert float(r["score"]) == 18.0 - sum(points[t] for t in lost), r
    for words in ("FLAGGED for review", "imported solutions.day1_optimization.reference", "replaced torch.allclose",
                  "solutions/day1_optimization/hidden.py", "guard was switched off", "4 test(s) got no credit"):
        assert words in r["problem"], r["problem"]
    html = (out / "feedback" / "cheater" / AID / f"{NAME}.html").read_text()
    assert "TAMPERING" in html and "course-guard" not in html  # the student sees why; the stamps are gone
    assert all(rows["reference", a]["status"] != "flagged" for a in ASSIGNMENTS)


@pytest.mark.slow
def test_attacks_on_the_comparison_get_nothing(graded):
    """tests/judge_attacks.py: a `__code__` swap of the verdict, widened tolerances, `sys.settrace`
    rewriting the verdict's locals, a tensor subclass whose differences are zero, pinned "fresh" seeds
    with a lookup table of torch's answers, the judge's channel removed, links planted in the judge's
    folder, the guard switched off. The grader decides, so every test scores 0; the link's target is
    untouched; the reference in the same run has full marks (test_reference_gets_full_marks)."""
    _, rows, out, victim = graded
    r = rows["attacker", AID]
    assert float(r["score"]) == 0 and len(r["failed_tests"].split()) == N_TESTS[AID], r
    assert victim.read_text() == "unchanged"
    html = (out / "feedback" / "attacker" / AID / f"{NAME}.html").read_text()
    assert "sent the grader no observations" in html  # the channel removed: the in-kernel verdict earns nothing
    assert "not plain tensors" in html  # the lying subclass never reaches a comparison


@pytest.mark.slow
def test_attacks_on_day6_comparisons_get_nothing(graded):
    """tests/judge_attacks.py:dqn_attacker, on DAY 6 where the isolation issue first tried them: every
    verdict half and compare() swapped for code that passes, the tolerance widened, the seeds pinned,
    a trace set, the channel removed, the guard switched off, and each solution wrong. Every test scores
    0, each failing in the grader with the first difference it found."""
    _, rows, out, _ = graded
    r = rows["attacker", DQN_AID]
    assert float(r["score"]) == 0 and len(r["failed_tests"].split()) == N_TESTS[DQN_AID], r
    html = (out / "feedback" / "attacker" / DQN_AID / f"{ASSIGNMENTS[DQN_AID]}.html").read_text()
    assert "sent the grader no observations" in html  # the train cell judged itself in the kernel: worth nothing
    assert html.count("judged by the grader") == 0


@pytest.mark.cuda
@pytest.mark.slow
def test_grading_on_cuda_gives_the_cpu_grades(tmp_path):
    """On a GPU machine, `course grade --device cuda` (checks on CUDA with TF32 off where they take the
    device) gives every reference full marks and every buggy sample exactly its planted failures,
    the grades of the CPU run above. Skipped where there is no CUDA GPU."""
    subs = tmp_path / "submissions"
    lay_out_samples(subs, who=("reference", "buggy"))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "course.cli", "grade", str(subs), "--out", str(out),
                           "--device", "cuda"], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(open(out / "grades.csv"))}
    for aid, (max_score, planted) in EXPECTED.items():
        ref, bug = rows["reference", aid], rows["buggy", aid]
        assert (ref["status"], float(ref["score"])) == ("graded", max_score), ref
        assert set(bug["failed_tests"].split()) == planted, bug


@pytest.mark.slow
def test_nbgrader_by_hand_grades_like_course_grade(graded, tmp_path):
    """`nbgrader generate_assignment` and `nbgrader autograde`, run by hand in a course root laid out like
    the repository (its nbgrader_config.py), score the buggy DAY 4 sample as `course grade` did."""
    _, rows, _, _ = graded
    aid, name = "day4_rnn", ASSIGNMENTS["day4_rnn"]
    for part in ("autograder", "course", "data"):  # read only; nbgrader writes into the copies below
        (tmp_path / part).symlink_to(REPO / part)
    for part in ("solutions", "assignments"):
        shutil.copytree(REPO / part / aid, tmp_path / part / aid, ignore=shutil.ignore_patterns("samples"))
    shutil.copy(REPO / "nbgrader_config.py", tmp_path)
    (tmp_path / "submitted" / "buggy" / aid).mkdir(parents=True)
    nbformat.write(without_experiments(nbformat.read(sample_path(aid, "buggy"), as_version=4)),
                   tmp_path / "submitted" / "buggy" / aid / f"{name}.ipynb")
    for step in (["generate_assignment", aid, "--force"], ["autograde", aid]):
        proc = subprocess.run([sys.executable, "-m", "nbgrader", *step], cwd=tmp_path, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        score = gb.find_submission(aid, "buggy").score
        failed = {g.name for g in gb.find_submission_notebook(name, aid, "buggy").grades
                  if g.max_score and (g.score or 0) < g.max_score}
    row = rows["buggy", aid]
    assert (score, failed) == (float(row["score"]), set(row["failed_tests"].split())) == (14.0, EXPECTED[aid][1])
