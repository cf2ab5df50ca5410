"""`course grade` and real signals: nothing it started outlives it, and a killed worker is named.

One batch, graded twice with ``--jobs 1``:

1. The worker of the first student is killed with SIGKILL while its kernel sleeps in a cell: that row
   says which cell was running ("the grading process was killed by signal 9 while running cell N"),
   and the batch goes on.
2. `course grade` itself gets SIGTERM while the second student's kernel sleeps: it ends every worker
   and kernel it started, keeps the finished row, exits 128 + 15 and says so in one sentence.
3. The same command again resumes: the finished row is kept, the rest is graded. One more student's
   kernel tries to SIGKILL every ancestor up to `course grade`; where the sandbox gives each worker
   its own PID namespace (root on Linux), it cannot reach them, and the batch completes (the attacker's
   blank notebook is graded to the end: 0 points, every test run).

Every process of the run carries a marker in its environment, so the test can see that none is left.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from autograder import sandbox
from autograder.build import sample_path
from tests.samples import without_experiments

REPO = Path(__file__).resolve().parents[1]
AID, NAME = "day1_optimization", "optimization"
SLEEP = "import time as _time\n_time.sleep(120)\n"
# What a hostile kernel does: walk up its ancestors through /proc and SIGKILL each, up to `course grade`.
KILL_ANCESTORS = """import os as _os, signal as _signal
_pid = int(open("/proc/self/stat").read().split()[0])  # this kernel, as /proc numbers it
for _ in range(6):
    _pid = int(open(f"/proc/{_pid}/stat").read().rsplit(")", 1)[1].split()[1])
    try:
        _os.kill(_pid, _signal.SIGKILL)
    except OSError:
        pass
    if b"course.cli" in open(f"/proc/{_pid}/cmdline", "rb").read():
        break
"""


def _notebook(prefix: str, sample: str = "reference") -> tuple[nbformat.NotebookNode, int]:
    """A DAY 1 sample with ``prefix`` at the top of its first exercise; and that cell's index."""
    nb = without_experiments(nbformat.read(sample_path(AID, sample), as_version=4))
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "sgd")
    nb.cells[index].source = prefix + nb.cells[index].source
    return nb, index


def _tagged(tag: str) -> dict[int, str]:
    """pid -> command line of every process whose environment holds the marker."""
    found = {}
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"COURSE_TEST_TAG={tag}".encode() in env.read_bytes().split(b"\0"):
                found[int(env.parent.name)] = (env.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
    return found


def _wait_for(predicate, what: str, timeout: float = 180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _sleeping_in_cell(student: str, cell: int):
    """True once the kernel grading ``student`` runs ``cell`` (its worker's progress file says so)."""
    for progress in Path("/tmp").glob(f"course-grade-*/{student}--{AID}/progress.json"):
        try:
            if json.loads(progress.read_text())["cell"] == cell:
                return True
        except (OSError, ValueError, KeyError):
            pass
    return False


def _rows(out: Path) -> dict[str, dict]:
    return {r["student_id"]: r for r in csv.DictReader(open(out / "grades.csv"))} if (out / "grades.csv").exists() \
        else {}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_signals_end_every_process_and_a_rerun_resumes(tmp_path):
    subs, out, tag = tmp_path / "subs", tmp_path / "out", uuid.uuid4().hex
    sleeper, cell = _notebook(SLEEP)
    for who in ("a-victim", "b-sleeper"):
        (subs / who / AID).mkdir(parents=True)
        nbformat.write(sleeper, subs / who / AID / f"{NAME}.ipynb")
    cmd = [sys.executable, "-m", "course.cli", "grade", str(subs), "--out", str(out), "--jobs", "1",
           "--cell-timeout", "15"]
    env = dict(os.environ, COURSE_TEST_TAG=tag)
    grader = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # 1. the first worker is killed while its kernel sleeps in the sgd cell
        _wait_for(lambda: _sleeping_in_cell("a-victim", cell), "the first kernel to reach its sleeping cell")
        (worker,) = [pid for pid, line in _tagged(tag).items() if "autograder.worker" in line and "a-victim" in line
                     and "autograder.sandbox" not in line]
        os.kill(worker, signal.SIGKILL)
        _wait_for(lambda: "a-victim" in _rows(out), "the killed worker's row")
        # 2. course grade gets SIGTERM while the second kernel sleeps
        _wait_for(lambda: _sleeping_in_cell("b-sleeper", cell), "the second kernel to reach its sleeping cell")
        grader.send_signal(signal.SIGTERM)
        stdout, stderr = grader.communicate(timeout=60)
    finally:
        if grader.poll() is None:
            grader.kill()
    assert grader.returncode == 128 + signal.SIGTERM, stderr
    assert len(stderr.strip().splitlines()) == 1 and "stopped by SIGTERM" in stderr and "Traceback" not in stderr
    time.sleep(1)
    assert _tagged(tag) == {}, "processes outlived course grade"
    rows = _rows(out)
    assert set(rows) == {"a-victim"}
    victim = rows["a-victim"]
    assert victim["status"] == "error" and float(victim["score"]) == 0, victim
    assert f"the grading process was killed by signal 9 while running cell {cell}" in victim["problem"], victim
    assert "TCP" not in victim["problem"]

    # 3. resume, with one more student whose kernel attacks its ancestors
    attacker, _ = _notebook(KILL_ANCESTORS, "blank")  # the blank is quicker to grade; the attack is the same
    (subs / "c-attacker" / AID).mkdir(parents=True)
    nbformat.write(attacker, subs / "c-attacker" / AID / f"{NAME}.ipynb")
    isolated, _ = sandbox.available()
    if not isolated:  # without a PID namespace the attack would work: grade the others only
        (subs / "c-attacker" / AID / f"{NAME}.ipynb").unlink()
        (subs / "c-attacker" / AID).rmdir()
        (subs / "c-attacker").rmdir()
    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "1 submission(s) already graded" in again.stdout
    rows = _rows(out)
    assert rows["a-victim"] == victim  # kept as it was
    sleeper_row = rows["b-sleeper"]
    assert sleeper_row["status"] == "graded" and "cell limit" in sleeper_row["problem"], sleeper_row
    assert float(sleeper_row["score"]) == 17 and sleeper_row["failed_tests"] == "test_sgd", sleeper_row
    if isolated:
        assert (rows["c-attacker"]["status"], float(rows["c-attacker"]["score"])) == ("graded", 0), rows["c-attacker"]
        assert len(rows["c-attacker"]["failed_tests"].split()) == 9, rows["c-attacker"]  # every test ran
    assert _tagged(tag) == {}
