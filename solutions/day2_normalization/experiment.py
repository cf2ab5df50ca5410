"""DAY 2, normalization and regularization (前処理と工夫): the reference experiment of `course run day2_normalization`.

What the DAY's notebook trains and plots, at full scale (or ``--quick``): the training loops,
the experiment's configuration, its plots and ``main``. The exercises themselves are in
``reference.py``; the notebook includes what it needs from both files.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn

from course import get_device, seed_everything
from course.data import load_mnist
from course.plotting import save
from course.train import accuracy
from solutions.day2_normalization.reference import dropout, l2_penalty


# ----------------------------------------------------------------------------- experiments

@dataclass
class Config:
    """The full-scale run: normalization against batch size, and regularization against overfitting."""
    batch_sizes: tuple[int, ...] = (2, 64)
    """Batch sizes compared for each normalization."""
    norm_train: int = 20000
    """Training digits for the batch-size experiment (all available if fewer)."""
    overfit_train: int = 1000
    """Training digits for the overfitting experiment (small on purpose)."""
    overfit_epochs: int = 100
    """Epochs for the overfitting experiment."""
    seed: int = 0
    """Seed for every run."""
    out_dir: str = "runs/day2_normalization"
    """Where the plots go."""


def norm_mlp(norm: str, width: int = 128, groups: int = 8) -> nn.Module:
    """784 → width → width → 10 with the chosen normalization after each hidden Linear.

    norm: "none", "batch", "layer" or "group". Shape: (N, 1, 28, 28) -> (N, 10).
    """
    def make():
        return {"none": nn.Identity(), "batch": nn.BatchNorm1d(width), "layer": nn.LayerNorm(width),
                "group": nn.GroupNorm(groups, width)}[norm]
    return nn.Sequential(nn.Flatten(), nn.Linear(784, width), make(), nn.ReLU(),
                         nn.Linear(width, width), make(), nn.ReLU(), nn.Linear(width, 10))


class Dropout(nn.Module):
    """``dropout`` as a module (active in train mode only)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        return dropout(x, self.p, self.training)


def overfit_mlp(p_drop: float = 0.0) -> nn.Module:
    """A wide MLP that memorises a small training set. Shape: (N, 1, 28, 28) -> (N, 10)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), Dropout(p_drop),
                         nn.Linear(512, 512), nn.ReLU(), Dropout(p_drop), nn.Linear(512, 10))


def train_curves(model, Xtr, ytr, Xva, yva, *, epochs, lr, batch_size, l2=0.0, device="cpu", generator=None):
    """Adam training; returns per-epoch train and validation loss and validation accuracy."""
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = {"train": [], "val": [], "val_acc": []}
    for _ in range(epochs):
        model.train()
        total = 0.0
        for idx in torch.randperm(len(Xtr), generator=generator).split(batch_size):
            x, y = Xtr[idx].to(device), ytr[idx].to(device)
            loss = nn.functional.cross_entropy(model(x), y)
            total += loss.item() * len(idx)
            if l2:
                loss = loss + l2 * l2_penalty(model)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            hist["train"].append(total / len(Xtr))
            hist["val"].append(nn.functional.cross_entropy(model(Xva.to(device)), yva.to(device)).item())
        hist["val_acc"].append(accuracy(model, Xva, yva, device=device))
    return hist


def main(device: str = "auto", quick: bool = False) -> dict[str, float]:
    """Run both experiments; save plots; print test accuracies on the last line."""
    cfg = Config(norm_train=500, overfit_epochs=6) if quick else Config()  # quick: a smoke run
    dev = get_device(device)
    X, y = load_mnist("train")
    Xte, yte = load_mnist("test")
    out = Path(cfg.out_dir)
    results: dict[str, float] = {}
    # 1. normalization against batch size: the same number of samples seen in every run
    n = min(cfg.norm_train, len(X))
    for norm in ("none", "batch", "layer", "group"):
        for bs in cfg.batch_sizes:
            gen = seed_everything(cfg.seed)
            model = norm_mlp(norm).to(dev)
            opt = torch.optim.SGD(model.parameters(), lr=0.01 * bs ** 0.5, momentum=0.9)
            model.train()
            for idx in torch.randperm(n, generator=gen).split(bs):
                if len(idx) < 2:
                    continue  # BatchNorm needs 2 samples
                loss = nn.functional.cross_entropy(model(X[idx].to(dev)), y[idx].to(dev))
                opt.zero_grad()
                loss.backward()
                opt.step()
            results[f"{norm}@{bs}"] = accuracy(model, Xte, yte, device=dev)
            print(f"  norm={norm:>5} batch={bs:>3}: test accuracy {results[f'{norm}@{bs}']:.3f}")
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, bs in enumerate(cfg.batch_sizes):
        ax.bar([j + 0.4 * i for j in range(4)], [results[f"{m}@{bs}"] for m in ("none", "batch", "layer", "group")],
               width=0.4, label=f"batch size {bs}")
    ax.set_xticks([j + 0.2 for j in range(4)], ["none", "BatchNorm", "LayerNorm", "GroupNorm"])
    ax.set(ylabel="test accuracy", title="BatchNorm needs large batches", ylim=(0, 1))
    ax.legend()
    print(f"saved {save(fig, out / 'norm_vs_batch_size.png')}")
    # 2. overfitting: small train set, validation split for early stopping, held-out test
    gen = seed_everything(cfg.seed)
    perm = torch.randperm(len(X), generator=gen)
    tr, va = perm[:cfg.overfit_train], perm[cfg.overfit_train:cfg.overfit_train + 1000]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for name, p_drop, l2 in (("plain", 0.0, 0.0), ("dropout0.5", 0.5, 0.0), ("l2_1e-3", 0.0, 1e-3)):
        seed_everything(cfg.seed)
        model = overfit_mlp(p_drop)
        h = train_curves(model, X[tr], y[tr], X[va], y[va], epochs=cfg.overfit_epochs, lr=1e-3, batch_size=50,
                         l2=l2, device=dev, generator=torch.Generator().manual_seed(cfg.seed))
        best = int(torch.tensor(h["val"]).argmin())
        axes[0].plot(h["train"], label=name)
        axes[1].plot(h["val"], label=f"{name} (best epoch {best})")
        axes[2].plot(h["val_acc"], label=name)
        results[f"overfit/{name}"] = accuracy(model, Xte, yte, device=dev)
        print(f"  {name:>11}: final train loss {h['train'][-1]:.3f}, val loss {h['val'][-1]:.3f} "
              f"(best {min(h['val']):.3f} at epoch {best}), test accuracy {results[f'overfit/{name}']:.3f}")
    for ax, t in zip(axes, ("train loss", "validation loss (early stopping: its minimum)", "validation accuracy")):
        ax.set(title=t, xlabel="epoch")
        ax.legend(fontsize=8)
    print(f"saved {save(fig, out / 'overfitting.png')}")
    sys.stdout.flush()
    print("day2_normalization test accuracy: " + " ".join(f"{k}={v:.3f}" for k, v in results.items()))
    return results
