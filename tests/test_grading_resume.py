"""`course grade` resumes: a re-run keeps finished, unchanged rows; --force grades again; a grader
killed with SIGKILL mid-batch loses nothing and changes no grade when run again."""
from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.build import ASSIGNMENTS

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "autograder" / "samples"
AID, NAME = "day1_optimization", ASSIGNMENTS["day1_optimization"]


def _grade(subs: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "course.cli", "grade", str(subs), "--out", str(out), "--jobs", "1",
                           *extra], capture_output=True, text=True, timeout=600, cwd=REPO)


def _rows(out: Path) -> dict[tuple[str, str], dict]:
    return {(r["student_id"], r["assignment"]): r for r in csv.DictReader(open(out / "grades.csv"))}


@pytest.mark.slow
def test_rerun_keeps_unchanged_rows_regrades_changed_ones_and_force(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    (subs / "ann" / AID).mkdir(parents=True)
    shutil.copy(SAMPLES / "reference" / AID / f"{NAME}.ipynb", subs / "ann" / AID)
    (subs / "bob" / AID).mkdir(parents=True)
    (subs / "bob" / AID / f"{NAME}.ipynb").write_text("not a notebook")
    first = _grade(subs, out)
    assert first.returncode == 0, first.stderr
    rows = _rows(out)
    assert rows["ann", AID]["score"] == "18" and rows["bob", AID]["status"] == "invalid"
    ann_log = out / "logs" / f"ann--{AID}.log"
    stamp = ann_log.stat().st_mtime_ns

    shutil.copy(SAMPLES / "blank" / AID / f"{NAME}.ipynb", subs / "bob" / AID)  # bob resubmits
    second = _grade(subs, out)
    assert second.returncode == 0, second.stderr
    assert "1 submission(s) already graded" in second.stdout
    rows2 = _rows(out)
    assert rows2["ann", AID] == rows["ann", AID] and ann_log.stat().st_mtime_ns == stamp  # not graded again
    assert rows2["bob", AID]["status"] == "graded" and rows2["bob", AID]["score"] == "0"  # the new file was

    third = _grade(subs, out, "--force")
    assert third.returncode == 0 and "already graded" not in third.stdout
    assert ann_log.stat().st_mtime_ns != stamp and _rows(out) == rows2


@pytest.mark.slow
def test_sigkill_mid_batch_then_resume_loses_and_changes_nothing(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    for who in ("a1", "a2", "a3"):
        (subs / who / AID).mkdir(parents=True)
        shutil.copy(SAMPLES / ("buggy" if who == "a2" else "reference") / AID / f"{NAME}.ipynb", subs / who / AID)
    proc = subprocess.Popen([sys.executable, "-m", "course.cli", "grade", str(subs), "--out", str(out), "--jobs", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, start_new_session=True)
    deadline = time.time() + 400
    while time.time() < deadline and proc.poll() is None:
        if (out / "grades.csv").exists() and len(_rows(out)) >= 1:
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the batch finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)  # the grader and its kernels, like kill -9 on a process group
    proc.wait()
    done_before = _rows(out)
    assert 1 <= len(done_before) < 3

    resumed = _grade(subs, out)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(done_before)} submission(s) already graded" in resumed.stdout
    rows = _rows(out)
    assert {k: r for k, r in rows.items() if k in done_before} == done_before  # nothing changed or lost
    assert {k: (r["score"], r["status"]) for k, r in rows.items()} == {
        ("a1", AID): ("18", "graded"), ("a2", AID): ("15", "graded"), ("a3", AID): ("18", "graded")}
