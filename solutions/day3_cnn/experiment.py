"""DAY 3, convolutional networks (畳み込みニューラルネットワーク): the reference experiment of `course run day3_cnn`.

What the DAY's notebook trains and plots, at full scale (or ``--quick``): the training loops,
the experiment's configuration, its plots and ``main``. The exercises themselves are in
``reference.py``; the notebook includes what it needs from both files.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from course import get_device, seed_everything
from course.data import full_mnist_available, load_mnist
from course.plotting import save
from course.train import accuracy, train_classifier
from solutions.day3_cnn.reference import SimpleCNN, conv_cost, few_labels, freeze, replace_head, split_digits


def transfer_experiment(backbone_state: dict, Xtr, ytr, Xte, yte, per_class: int, *, steps: int, seed: int,
                        device="cpu") -> dict[str, float]:
    """Digits 5–9 with ``per_class`` labels each: frozen pretrained backbone (転移学習),
    fine-tuned pretrained network (ファインチューニング), and a network trained from scratch.

    Every method gets the same number of optimizer ``steps`` whatever the label count.
    """
    results = {}
    for method, lr in (("frozen", 1e-2), ("fine-tune", 1e-3), ("scratch", 3e-3)):
        gen = seed_everything(seed)
        Xs, ys = few_labels(Xtr, ytr, per_class, gen)
        model = SimpleCNN(num_classes=5)
        if method != "scratch":
            model.load_state_dict(backbone_state)
        if method == "frozen":
            freeze(model)
        replace_head(model, 5)
        batch = min(32, len(Xs))
        epochs = -(-steps // -(-len(Xs) // batch))
        train_classifier(model, Xs, ys, epochs=epochs, lr=lr, batch_size=batch, device=device, generator=gen,
                         progress=False)
        results[method] = accuracy(model, Xte, yte, device=device)
    return results


# ----------------------------------------------------------------------------- experiments

@dataclass
class Config:
    """The full-scale run: SimpleCNN on MNIST, the 0–4 → 5–9 transfer, and conv costs."""
    epochs: int = 8
    """Epochs for SimpleCNN on all ten digits (8 reach ≥ 97% on the bundled subset)."""
    epochs_full: int = 12
    """Epochs when full MNIST (60,000 digits) is present."""
    pretrain_epochs: int = 8
    """Epochs on digits 0–4 before the transfer."""
    transfer_steps: int = 200
    """Optimizer steps on the few labelled 5–9 digits."""
    labels_per_class: tuple[int, ...] = (1, 5, 10, 50)
    """Labelled samples per class compared in the transfer experiment."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds averaged in the transfer experiment."""
    seed: int = 0
    """Seed for the main run."""
    out_dir: str = "runs/day3_cnn"
    """Where the plots go."""


def plot_filters_and_maps(model: SimpleCNN, digit: torch.Tensor):
    """First-layer filters, and the first layer's feature maps of one digit."""
    conv = model.features[0]
    w = conv.weight.detach().cpu()[:, 0]
    with torch.no_grad():
        maps = F.relu(model.features[1](conv(digit[None].to(conv.weight.device))))[0].cpu()
    n = w.shape[0]
    fig, axes = plt.subplots(3, n, figsize=(n * 0.9, 3.2))
    for i in range(n):
        axes[0, i].imshow(w[i], cmap="bwr", vmin=-w.abs().max(), vmax=w.abs().max())
        axes[1, i].imshow(maps[i], cmap="gray")
        axes[2, i].imshow(digit[0].cpu(), cmap="gray") if i == 0 else None
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].set_title("filters", fontsize=8, loc="left")
    axes[1, 0].set_title("feature maps (after BN, ReLU)", fontsize=8, loc="left")
    axes[2, 0].set_title("input", fontsize=8, loc="left")
    fig.suptitle("SimpleCNN, first convolution layer")
    return fig


def plot_costs(channels=(16, 32, 64, 128, 256, 512), kernel_size: int = 3, size: int = 14):
    """Parameters and multiply-adds of a standard vs a depthwise-separable conv (C → C)."""
    std = [conv_cost(c, c, kernel_size, size, size) for c in channels]
    sep = [conv_cost(c, c, kernel_size, size, size, depthwise_separable=True) for c in channels]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, i, what in ((axes[0], 1, "parameters"), (axes[1], 0, f"multiply-adds ({size}×{size} output)")):
        ax.loglog(channels, [s[i] for s in std], "o-", label=f"standard {kernel_size}×{kernel_size}")
        ax.loglog(channels, [s[i] for s in sep], "s-", label="depthwise-separable")
        ax.set(xlabel="channels C = M", ylabel=what, title=what)
        ax.legend()
    ratio = std[-1][0] / sep[-1][0]
    fig.suptitle(f"Depthwise-separable saves 1/(1/M + 1/K²): ×{ratio:.1f} at C = M = {channels[-1]}")
    return fig


def main(device: str = "auto", quick: bool = False) -> dict[str, float]:
    """SimpleCNN on MNIST, the transfer experiment, conv costs; plots; metrics on the last line."""
    cfg = Config(epochs=1, epochs_full=1, pretrain_epochs=1, transfer_steps=30, labels_per_class=(5, 50),
                 seeds=(0,)) if quick else Config()
    dev = get_device(device)
    out = Path(cfg.out_dir)
    X, y = load_mnist("train")
    Xte, yte = load_mnist("test")
    full = full_mnist_available()
    epochs = cfg.epochs_full if full else cfg.epochs
    print(f"day3_cnn: {'full MNIST' if full else 'the bundled MNIST subset (not full MNIST)'}: "
          f"{len(X)} training digits, {epochs} epochs on {dev}")
    results: dict[str, float] = {}

    # 1. SimpleCNN on the ten digits
    gen = seed_everything(cfg.seed)
    model = SimpleCNN()
    t0 = time.perf_counter()
    losses = train_classifier(model, X, y, epochs=epochs, device=dev, generator=gen, desc="SimpleCNN")
    results["simple_cnn"] = accuracy(model, Xte, yte, device=dev)
    print(f"  SimpleCNN: test accuracy {results['simple_cnn']:.4f} ({time.perf_counter() - t0:.1f}s, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters)")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.semilogy(losses, alpha=0.6)
    ax.set(xlabel="step", ylabel="training loss", title="SimpleCNN on MNIST")
    print(f"saved {save(fig, out / 'simple_cnn_loss.png')}")
    print(f"saved {save(plot_filters_and_maps(model, Xte[0]), out / 'filters_and_feature_maps.png')}")

    # 2. transfer: pretrain on 0–4, then 5–9 with few labels
    Xa, ya = split_digits(X, y, range(5))
    Xb, yb = split_digits(X, y, range(5, 10))
    Xb_te, yb_te = split_digits(Xte, yte, range(5, 10))
    gen = seed_everything(cfg.seed)
    pre = SimpleCNN(num_classes=5)
    train_classifier(pre, Xa, ya, epochs=cfg.pretrain_epochs, device=dev, generator=gen, desc="pretrain 0-4")
    state = {k: v.cpu() for k, v in pre.state_dict().items()}
    table = {m: [] for m in ("frozen", "fine-tune", "scratch")}
    for k in cfg.labels_per_class:
        runs = [transfer_experiment(state, Xb, yb, Xb_te, yb_te, k, steps=cfg.transfer_steps, seed=s, device=dev)
                for s in cfg.seeds]
        for m in table:
            table[m].append(sum(r[m] for r in runs) / len(runs))
            results[f"transfer/{m}@{k}"] = table[m][-1]
        print(f"  5-9 with {k:>3} labels/class: " + ", ".join(f"{m} {table[m][-1]:.3f}" for m in table))
    fig, ax = plt.subplots(figsize=(6, 4))
    for m, accs in table.items():
        ax.semilogx(cfg.labels_per_class, accs, "o-", label=m)
    ax.set(xlabel="labelled digits per class (5–9)", ylabel="test accuracy on 5–9",
           title="Transfer from digits 0–4 to 5–9", ylim=(0, 1))
    ax.legend()
    print(f"saved {save(fig, out / 'transfer.png')}")

    # 3. costs
    print(f"saved {save(plot_costs(), out / 'conv_costs.png')}")
    sys.stdout.flush()
    print("day3_cnn test accuracy: " + " ".join(f"{k}={v:.4f}" for k, v in results.items()))
    return results
