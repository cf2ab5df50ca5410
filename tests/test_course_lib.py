"""The student-facing library: device, seeding, data, plotting, training, CLI errors."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from course import data, get_device, seed_everything
from course.device import quick_mode
from course.plotting import plot_losses, plot_trajectories, save
from course.train import accuracy, fit

REPO = Path(__file__).resolve().parents[1]


def test_device_choice_and_env_override(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    assert get_device("cpu").type == "cpu"
    assert get_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert get_device("cuda").type == "cpu"  # the environment wins
    monkeypatch.setenv("COURSE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="unknown device"):
        get_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a CPU-only machine")
def test_cuda_without_gpu_says_so(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        get_device("cuda")


def test_quick_mode_follows_grading_and_override(monkeypatch):
    monkeypatch.setenv("COURSE_GRADING", "1")
    monkeypatch.delenv("COURSE_FULL", raising=False)
    assert quick_mode()
    monkeypatch.setenv("COURSE_FULL", "1")
    assert not quick_mode()


def test_seeding_is_reproducible():
    g1 = seed_everything(3)
    a = torch.randn(4), torch.randn(2, generator=g1)
    g2 = seed_everything(3)
    b = torch.randn(4), torch.randn(2, generator=g2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_bundled_mnist_subset(capsys):
    X, y = data.load_mnist("train")
    Xt, yt = data.load_mnist("test")
    assert X.shape == (4000, 1, 28, 28) and Xt.shape == (1000, 1, 28, 28)
    assert X.dtype == torch.float32 and 0 <= X.min() and X.max() <= 1 and y.dtype == torch.int64
    assert torch.bincount(y).tolist() == [400] * 10 and torch.bincount(yt).tolist() == [100] * 10
    assert "bundled 5,000-digit MNIST subset" in capsys.readouterr().out or data._warned
    with pytest.raises(ValueError):
        data.load_mnist("validation")


def test_missing_data_file_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="mnist_5k.npz is missing"):
        data.load_mnist("train", root=tmp_path)


def test_fit_lowers_the_loss_and_accuracy_is_a_fraction():
    gen = seed_everything(0)
    X, y = torch.randn(256, 1, 4, 4), torch.randint(0, 3, (256,))
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    batches = lambda: zip(X.split(32), y.split(32))  # noqa: E731
    losses = fit(model, torch.optim.SGD(model.parameters(), lr=0.5), batches, epochs=20, progress=False)
    assert len(losses) == 20 * 8 and sum(losses[-8:]) < sum(losses[:8])
    assert 0.0 <= accuracy(model, X, y) <= 1.0
    del gen


def test_plots_are_saved(tmp_path):
    import numpy as np

    ax = plot_losses({"a": [3, 2, 1], "b": [2, 2, 2]}, logy=True)
    assert save(ax.figure, tmp_path / "x" / "loss.png").stat().st_size > 1000
    ax = plot_trajectories(lambda x, y: x ** 2 + y ** 2, {"p": np.array([[1.0, 1.0], [0.5, 0.5]])}, minimum=(0, 0))
    assert len(ax.lines) >= 2


def test_student_library_never_imports_instructor_code():
    code = ("import sys, course, course.checks, course.data, course.plotting, course.train; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('solutions', 'autograder')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO / "tests")


@pytest.mark.parametrize("args,message", [
    (["grade", "/nonexistent/folder"], "is not a folder"),
    (["run", "day9_nothing"], "unknown DAY"),
    (["grade", "solutions", "--assignment", "day9"], "unknown DAY"),
])
def test_cli_expected_mistakes_get_one_line(args, message):
    proc = subprocess.run([sys.executable, "-m", "course.cli", *args], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_cli_run_on_cuda_without_gpu(monkeypatch):
    env = {k: v for k, v in __import__("os").environ.items() if k != "COURSE_DEVICE"}
    proc = subprocess.run([sys.executable, "-m", "course.cli", "run", "day1", "--device", "cuda"],
                          capture_output=True, text=True, cwd=REPO, env=env)
    assert proc.returncode == 2 and "no CUDA GPU" in proc.stderr


def test_help_lists_every_command():
    proc = subprocess.run([sys.executable, "-m", "course.cli", "--help"], capture_output=True, text=True)
    assert all(c in proc.stdout for c in ("build", "grade", "run", "demo"))
