"""`course grade --executor dask`: each submission is one task on an existing Dask cluster
(a LocalCluster with worker processes stands in for a real one)."""
from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.build import lay_out_samples, sample_path
from course.days import assignments

distributed = pytest.importorskip("distributed")

REPO = Path(__file__).resolve().parents[1]
AID, NAME = "day6_dqn", assignments()["day6_dqn"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "course.cli", "grade", *args], capture_output=True, text=True,
                          timeout=600, cwd=REPO)


@pytest.mark.slow
def test_dask_cluster_grades_like_the_local_pool(tmp_path, monkeypatch):
    subs, out = tmp_path / "subs", tmp_path / "out"
    # the quickest notebook: this test is about routing, test_grading about scores
    lay_out_samples(subs, [AID], who=("blank",))
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the workers import autograder/ from the repository
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        proc = _cli(str(subs), "--out", str(out), "--executor", "dask", "--scheduler", cluster.scheduler_address)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {r["student_id"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    r = rows["blank"]
    assert (r["score"], r["max_score"], r["status"], len(r["failed_tests"].split())) == ("0", "16", "graded", 9), rows
    assert (out / "feedback" / "blank" / AID / f"{NAME}.html").exists()
    assert not [p for p in out.iterdir() if p.name.startswith("course-grade-")]  # the shared scratch is gone


def test_unreachable_scheduler_is_one_clear_sentence(tmp_path):
    (tmp_path / "s" / "ann" / AID).mkdir(parents=True)
    shutil.copy(sample_path(AID, 'blank'), tmp_path / "s" / "ann" / AID)
    proc = _cli(str(tmp_path / "s"), "--out", str(tmp_path / "o"), "--executor", "dask",
                "--scheduler", "tcp://127.0.0.1:9")
    assert proc.returncode == 2 and "could not reach the Dask scheduler at tcp://127.0.0.1:9" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_dask_flags_must_come_together(tmp_path, capsys):
    from course.cli import main

    assert main(["grade", str(tmp_path), "--executor", "dask"]) == 2
    assert "--executor dask needs --scheduler" in capsys.readouterr().err
    assert main(["grade", str(tmp_path), "--scheduler", "tcp://x:1"]) == 2
    assert "--scheduler is only used with --executor dask" in capsys.readouterr().err
