"""Every DAY's reference experiment has a quick path, and CI runs it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from course.days import assignments

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("aid", list(assignments()))
def test_quick_reference_run(aid, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "course.cli", "run", aid, "--quick", "--device", "cpu"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith(aid), last
    assert any(tmp_path.glob(f"runs/{aid}/*.png"))
