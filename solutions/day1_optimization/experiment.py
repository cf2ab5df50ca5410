"""DAY 1, optimization (学習と最適化計算): the reference experiment of `course run day1_optimization`.

What the DAY's notebook trains and plots, at full scale (or ``--quick``): the training loops,
the experiment's configuration, its plots and ``main``. The exercises themselves are in
``reference.py``; the notebook includes what it needs from both files.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from course import get_device, seed_everything
from course.data import load_mnist
from course.plotting import plot_losses, save
from course.train import accuracy, fit
from solutions.day1_optimization.reference import AdaGrad, Adam, Momentum, Nesterov, RMSProp, SGD, minibatches


# ----------------------------------------------------------------------------- experiment

OPTIMIZERS = {
    "SGD": (SGD, dict(lr=0.1)),
    "Momentum": (Momentum, dict(lr=0.01, momentum=0.9)),
    "Nesterov": (Nesterov, dict(lr=0.01, momentum=0.9)),
    "AdaGrad": (AdaGrad, dict(lr=0.01)),
    "RMSProp": (RMSProp, dict(lr=1e-3)),
    "Adam": (Adam, dict(lr=1e-3)),
}


@dataclass
class Config:
    """The full-scale run: a small MLP on MNIST trained with each of the six optimizers."""
    epochs: int = 10
    """Passes over the training set per optimizer."""
    batch_size: int = 128
    """Mini-batch size."""
    hidden: int = 256
    """Width of the two hidden layers."""
    seed: int = 0
    """Seed for initialisation and shuffling (the same for every optimizer)."""
    out_dir: str = "runs/day1_optimization"
    """Where the plots go."""


def mlp(hidden: int) -> nn.Module:
    """784 → hidden → hidden → 10 with ReLU. Shape: (N, 1, 28, 28) -> (N, 10)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(),
                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def main(device: str = "auto", quick: bool = False) -> dict[str, float]:
    """Train the MLP with each optimizer; save loss curves; return test accuracy per optimizer."""
    cfg = Config(epochs=3, batch_size=64, hidden=128) if quick else Config()
    dev = get_device(device)
    Xtr, ytr = load_mnist("train")
    Xte, yte = load_mnist("test")
    if quick:
        Xtr, ytr = Xtr[:4000], ytr[:4000]
    print(f"day1_optimization: {len(Xtr)} training digits, {cfg.epochs} epoch(s) per optimizer on {dev}")
    curves, results = {}, {}
    for name, (cls, hp) in OPTIMIZERS.items():
        gen = seed_everything(cfg.seed)
        model = mlp(cfg.hidden).to(dev)
        t0 = time.perf_counter()
        curves[name] = fit(model, cls(model.parameters(), **hp),
                           lambda: minibatches(Xtr, ytr, cfg.batch_size, generator=gen),
                           epochs=cfg.epochs, device=dev, desc=f"{name:>8}")
        results[name] = accuracy(model, Xte, yte, device=dev)
        print(f"  {name:>8}: test accuracy {results[name]:.4f} ({time.perf_counter() - t0:.1f}s)")
    ax = plot_losses(curves, title="MLP on MNIST: training loss per optimizer", logy=True, smooth=20)
    path = save(ax.figure, Path(cfg.out_dir) / "loss_curves.png")
    print(f"saved {path}")
    sys.stdout.flush()
    print("day1_optimization test accuracy: " + " ".join(f"{k}={v:.4f}" for k, v in results.items()))
    return results
