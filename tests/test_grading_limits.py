"""Runaway submissions: an infinite loop is stopped by the per-cell timeout, a memory bomb by
the memory cap, and a kernel that dies (os._exit) does not void what already ran. The
tests that did run keep their points, each problem is named, and the batch completes.
The same submission tries to send data to a server on this machine: where the OS allows a
network namespace (root on Linux), nothing arrives."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import sandbox

REPO = Path(__file__).resolve().parents[1]
AID, NAME = "day1_optimization", "optimization"


def _with_prefix(nb, grade_id: str, code: str) -> None:
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    cell.source = code + "\n" + cell.source


@pytest.mark.slow
def test_loop_memory_bomb_and_crash_lose_only_their_own_points(tmp_path, loopback_server):
    nb = nbformat.read(REPO / "solutions" / AID / "samples" / "reference.ipynb", as_version=4)
    _with_prefix(nb, "sgd", "import socket as _socket\ntry:\n    _socket.create_connection(('127.0.0.1', "
                            f"{loopback_server.port}), timeout=5).sendall(b'stolen')\nexcept OSError:\n    pass\n")
    _with_prefix(nb, "minibatches", "while True:\n    pass\n")  # runs before minibatches is defined
    _with_prefix(nb, "lr_schedules", "_hog = [bytearray(2**30) for _ in range(8)]  # 8 GB\n")
    _with_prefix(nb, "init_weights", "import os\nos._exit(1)\n")  # the kernel dies; later cells never run
    (tmp_path / "subs" / "runaway" / AID).mkdir(parents=True)
    nbformat.write(nb, tmp_path / "subs" / "runaway" / AID / f"{NAME}.ipynb")
    proc = subprocess.run([sys.executable, "-m", "course.cli", "grade", str(tmp_path / "subs"), "--out",
                           str(tmp_path / "out"), "--cell-timeout", "10", "--memory-gb", "1.5"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = csv.DictReader(open(tmp_path / "out" / "grades.csv"))
    assert row["status"] == "graded", row
    assert set(row["failed_tests"].split()) == {"test_lr_schedules", "test_minibatches", "test_init_weights"}, row
    assert float(row["score"]) == 18 - 2 - 2 - 2
    for words in ("memory limit", "cell limit", "kernel died"):
        assert words in row["problem"], row["problem"]
    isolated, why = sandbox.available()
    received = loopback_server.stop()
    assert received == ([] if isolated else [b"stolen"]), (received, why)  # without a namespace, the data gets out
    assert isolated or "network access" in proc.stdout
    log = (tmp_path / "out" / "logs" / f"runaway--{AID}.log").read_text()
    html = (tmp_path / "out" / "feedback" / "runaway" / AID / f"{NAME}.html").read_text()
    assert "MemoryError" in html and "Timeout" in html + log and "kernel died" in html
