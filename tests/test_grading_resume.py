"""`course grade` resumes: a re-run keeps finished, unchanged rows; --force grades again; a grader
killed with SIGKILL mid-batch loses nothing and changes no grade when run again.

The bookkeeping is tested with a stand-in for `grade_one` (instant); one slow test kills a real
`course grade` with SIGKILL and resumes it."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch

from autograder import grade as grading
from autograder.build import sample_path
from course.days import assignments
from tests.samples import without_experiments

REPO = Path(__file__).resolve().parents[1]
AID, NAME = "day6_dqn", assignments()["day6_dqn"]  # the quickest DAY to grade


def _rows(out: Path) -> dict[tuple[str, str], dict]:
    return {(r["student_id"], r["assignment"]): r for r in csv.DictReader(open(out / "grades.csv"))}


@pytest.fixture
def fake_grader(monkeypatch):
    """grade_one replaced by a stand-in that scores a file by its length and records each call."""
    calls: list[str] = []

    def fake_grade_one(sub, template, workdir, out, options):
        calls.append(sub.student)
        return grading.Result(sub.student, sub.assignment, float(len(sub.path.read_bytes()) % 7), template.max_score,
                              "graded")

    monkeypatch.setattr(grading, "grade_one", fake_grade_one)
    monkeypatch.setattr(grading, "prepare_templates",
                        lambda aids, workdir: {a: grading.Template(None, 16.0, None) for a in aids})
    return calls


def _class(root: Path, names=("ann", "bob", "cy")) -> Path:
    for who in names:
        (root / who / AID).mkdir(parents=True)
        (root / who / AID / f"{NAME}.ipynb").write_text("{}" * (len(who) + 1))
    return root


def test_rerun_grades_only_new_or_changed_files(tmp_path, fake_grader):
    subs, out = _class(tmp_path / "subs"), tmp_path / "out"
    messages: list[str] = []
    grading.grade(subs, out, options=grading.GradeOptions(progress=False), log=messages.append)
    assert sorted(fake_grader) == ["ann", "bob", "cy"] and messages == []
    first = _rows(out)

    fake_grader.clear()
    grading.grade(subs, out, options=grading.GradeOptions(progress=False), log=messages.append)
    assert fake_grader == [] and _rows(out) == first
    assert messages == [f"3 submission(s) already graded in {out / 'grades.csv'} and unchanged: kept "
                        "(--force grades them again)"]

    (subs / "bob" / AID / f"{NAME}.ipynb").write_text("{}" * 10)  # bob resubmits
    (subs / "dee" / AID).mkdir(parents=True)  # a late submission
    (subs / "dee" / AID / f"{NAME}.ipynb").write_text("{}")
    fake_grader.clear()
    grading.grade(subs, out, options=grading.GradeOptions(progress=False), log=messages.append)
    assert sorted(fake_grader) == ["bob", "dee"]
    assert len(_rows(out)) == 4 and _rows(out)["ann", AID] == first["ann", AID]

    fake_grader.clear()
    grading.grade(subs, out, options=grading.GradeOptions(progress=False, force=True), log=messages.append)
    assert sorted(fake_grader) == ["ann", "bob", "cy", "dee"]


def test_rows_of_other_assignments_survive_a_partial_regrade(tmp_path, fake_grader):
    subs, out = _class(tmp_path / "subs"), tmp_path / "out"
    grading.grade(subs, out, options=grading.GradeOptions(progress=False), log=lambda m: None)
    rows = _rows(out)
    with open(out / "grades.csv", "a", newline="") as f:  # a row from an earlier DAY 1 run
        csv.writer(f).writerow(["ann", "day1_optimization", "18", "18", "graded", "", ""])
    grading.grade(subs, out, [AID], grading.GradeOptions(force=True, progress=False), log=lambda m: None)
    assert _rows(out)["ann", "day1_optimization"]["score"] == "18" and len(_rows(out)) == len(rows) + 1


def test_a_damaged_state_file_means_grading_everything_again(tmp_path, fake_grader):
    subs, out = _class(tmp_path / "subs"), tmp_path / "out"
    grading.grade(subs, out, options=grading.GradeOptions(progress=False), log=lambda m: None)
    (out / grading.STATE_FILE).write_text("{ not json")
    fake_grader.clear()
    grading.grade(subs, out, options=grading.GradeOptions(progress=False), log=lambda m: None)
    assert sorted(fake_grader) == ["ann", "bob", "cy"]


@pytest.mark.slow
def test_sigkill_mid_batch_then_resume_loses_and_changes_nothing(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    for who, sample in (("a1", "reference"), ("a2", "blank")):
        (subs / who / AID).mkdir(parents=True)
        nbformat.write(without_experiments(nbformat.read(sample_path(AID, sample), as_version=4)),
                       subs / who / AID / f"{NAME}.ipynb")
    (subs / "a3" / AID).mkdir(parents=True)
    (subs / "a3" / AID / f"{NAME}.ipynb").write_text("not a notebook")
    cmd = [sys.executable, "-m", "course.cli", "grade", str(subs), "--out", str(out), "--jobs", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (out / "grades.csv").exists() and len(_rows(out)) >= 1:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the batch finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)  # the grader and its kernels, like kill -9 on the process group
    proc.wait()
    done_before = _rows(out)
    assert 1 <= len(done_before) < 3

    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(done_before)} submission(s) already graded" in resumed.stdout
    rows = _rows(out)
    assert {k: r for k, r in rows.items() if k in done_before} == done_before  # nothing changed or lost
    assert {k: (r["score"], r["status"]) for k, r in rows.items()} == {
        ("a1", AID): ("16", "graded"), ("a2", AID): ("0", "graded"), ("a3", AID): ("0", "invalid")}


def test_shards_split_the_class_without_overlap(tmp_path, fake_grader):
    """--shard i/n (one SLURM array task each) covers every student exactly once."""
    subs = _class(tmp_path / "subs", names=("ann", "bob", "cy", "dee", "eve"))
    seen = []
    for i in range(3):
        fake_grader.clear()
        grading.grade(subs, tmp_path / f"out{i}", options=grading.GradeOptions(progress=False, shard=(i, 3)),
                      log=lambda m: None)
        seen += fake_grader
        assert sorted(_rows(tmp_path / f"out{i}")) == sorted((s, AID) for s in fake_grader)
    assert sorted(seen) == ["ann", "bob", "cy", "dee", "eve"]


def test_bad_shard_is_one_clear_sentence(tmp_path, capsys):
    from course.cli import main

    assert main(["grade", str(tmp_path), "--shard", "3/3"]) == 2
    assert "--shard takes I/N with 0 <= I < N" in capsys.readouterr().err


def test_device_and_limits_reach_the_grading_process(tmp_path, monkeypatch):
    """--device cpu/cuda becomes COURSE_DEVICE (which course.get_device obeys in notebooks and checks);
    auto leaves the choice to each kernel."""
    env = grading.worker_environment(3, tmp_path, grading.GradeOptions(cell_timeout=20, device="cpu"))
    assert (env["COURSE_DEVICE"], env["COURSE_CELL_TIMEOUT"], env["OMP_NUM_THREADS"]) == ("cpu", "20", "3")
    assert env["COURSE_GUARD_PROTECT"] == str(tmp_path) and env["COURSE_GRADING"] == "1"
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    assert "COURSE_DEVICE" not in grading.worker_environment(1, tmp_path, grading.GradeOptions(device=None))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_grade_on_cuda_without_gpu_is_one_sentence(tmp_path, capsys):
    from course.cli import main

    assert main(["grade", str(tmp_path), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "no CUDA GPU" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_scratch_left_by_killed_runs_is_removed_but_not_that_of_live_ones(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs (reuse within this test is vanishingly unlikely)
    stale = tmp_path / f"course-grade-{dead.pid}-abc123"
    live = tmp_path / f"course-grade-{os.getpid()}-def456"
    other = tmp_path / "course-grade-notapid"
    for d in (stale, live, other):
        (d / "_templates").mkdir(parents=True)
    assert grading.remove_stale_scratch(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and other.exists()


def test_kernels_share_the_cores_and_obey_an_omp_num_threads_already_set(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert [grading.threads_per_kernel(grading.GradeOptions(jobs=j)) for j in (1, 2, 3, 16)] == [8, 4, 2, 1]
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # e.g. a batch job's setting, or each pytest-xdist worker's share
    assert [grading.threads_per_kernel(grading.GradeOptions(jobs=j)) for j in (1, 2, 16)] == [2, 2, 1]
    monkeypatch.setenv("OMP_NUM_THREADS", "many")  # not a number: ignored
    assert grading.threads_per_kernel(grading.GradeOptions(jobs=2)) == 4
