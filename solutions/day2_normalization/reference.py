"""DAY 2, normalization and regularization (前処理と工夫): reference solutions and experiments.

Single source of truth for the DAY 2 notebook (see solutions/day1_optimization/reference.py
for how `course build` uses it).

References:
    - Ioffe & Szegedy 2015 (Batch Normalization); Ba et al. 2016 (Layer Normalization);
      Ulyanov et al. 2016 (Instance Normalization); Wu & He 2018 (Group Normalization).
    - Srivastava et al. 2014 (Dropout); Goodfellow et al., *Deep Learning*, ch. 7.
    - torch.nn.functional.batch_norm / layer_norm / instance_norm / group_norm docs.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

# ----------------------------------------------------------------------------- activations


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """σ(x) = 1 / (1 + e^{−x}). Shape: any -> same."""
    ### BEGIN SOLUTION
    return 1 / (1 + torch.exp(-x))
    ### END SOLUTION


def tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) = 2σ(2x) − 1. Shape: any -> same."""
    ### BEGIN SOLUTION
    return 2 * sigmoid(2 * x) - 1
    ### END SOLUTION


def relu(x: torch.Tensor) -> torch.Tensor:
    """max(0, x). Shape: any -> same."""
    ### BEGIN SOLUTION
    return torch.where(x > 0, x, torch.zeros_like(x))
    ### END SOLUTION


def leaky_relu(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """x for x > 0, negative_slope · x otherwise. Shape: any -> same."""
    ### BEGIN SOLUTION
    return torch.where(x > 0, x, negative_slope * x)
    ### END SOLUTION


def softmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """exp(x_i) / Σ_j exp(x_j) along ``dim``, computed stably: subtract the max first.

    Shape: any -> same; entries along ``dim`` sum to 1.
    """
    ### BEGIN SOLUTION
    z = x - x.amax(dim=dim, keepdim=True)
    e = torch.exp(z)
    return e / e.sum(dim=dim, keepdim=True)
    ### END SOLUTION


# ----------------------------------------------------------------------------- batch norm

def batch_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, running_mean: torch.Tensor,
               running_var: torch.Tensor, training: bool, momentum: float = 0.1, eps: float = 1e-5) -> torch.Tensor:
    """Batch normalization (バッチ正規化) over every dim except the channel dim 1.

    Training:  μ, σ² = mean and *biased* variance over (N, H, W) per channel;
               y = γ (x − μ) / √(σ² + ε) + β;
               running_mean ← (1 − momentum) running_mean + momentum μ        (in place)
               running_var  ← (1 − momentum) running_var + momentum σ²_unbiased
    Eval:      the running statistics replace μ and σ².

    Note: BatchNorm's momentum weights the *new* value, the opposite of optimizer momentum.
    Shape: x (N, C) or (N, C, H, W); gamma, beta, running_* (C,) -> y like x.
    """
    dims = [0] + list(range(2, x.dim()))  # every dim but the channels
    shape = [1, -1] + [1] * (x.dim() - 2)  # (1, C) or (1, C, 1, 1) to broadcast per channel
    if training:
        ### BEGIN SOLUTION
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, unbiased=False)
        n = x.numel() // x.shape[1]
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(momentum * mean)
            running_var.mul_(1 - momentum).add_(momentum * var * n / (n - 1))
        ### END SOLUTION
    else:
        mean, var = running_mean, running_var
    ### BEGIN SOLUTION
    x_hat = (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps)
    return gamma.reshape(shape) * x_hat + beta.reshape(shape)
    ### END SOLUTION


class BatchNormFunction(torch.autograd.Function):
    """Training-mode batch norm with a hand-written backward pass.

    Forward: y = γ x̂ + β, x̂ = (x − μ) / σ, σ = √(var + ε), statistics over all dims but 1.
    Backward, with m the number of values per channel and sums over those values:
        ∂L/∂β = Σ dy,    ∂L/∂γ = Σ dy · x̂,
        ∂L/∂x = (γ / σ) · (dy − mean(dy) − x̂ · mean(dy · x̂))

    Shape: x (N, C) or (N, C, H, W); gamma, beta (C,).
    """

    @staticmethod
    def forward(ctx, x, gamma, beta, eps=1e-5):
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        mean = x.mean(dim=dims, keepdim=True)
        sigma = torch.sqrt(x.var(dim=dims, unbiased=False, keepdim=True) + eps)
        x_hat = (x - mean) / sigma
        ctx.save_for_backward(x_hat, sigma, gamma)
        ctx.dims, ctx.shape = dims, shape
        return gamma.reshape(shape) * x_hat + beta.reshape(shape)

    @staticmethod
    def backward(ctx, dy):
        x_hat, sigma, gamma = ctx.saved_tensors
        dims, shape = ctx.dims, ctx.shape
        ### BEGIN SOLUTION
        dbeta = dy.sum(dim=dims)
        dgamma = (dy * x_hat).sum(dim=dims)
        g = dy * gamma.reshape(shape)  # ∂L/∂x̂
        dx = (g - g.mean(dim=dims, keepdim=True) - x_hat * (g * x_hat).mean(dim=dims, keepdim=True)) / sigma
        ### END SOLUTION
        return dx, dgamma, dbeta, None


class BatchNorm2d(nn.Module):
    """A drop-in for nn.BatchNorm2d built on ``batch_norm`` above.

    Same names as torch, so state_dicts load both ways: parameters ``weight`` (γ, ones)
    and ``bias`` (β, zeros); buffers ``running_mean`` (zeros), ``running_var`` (ones) and
    ``num_batches_tracked`` (a long scalar, +1 per training forward).
    Shape: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        ### BEGIN SOLUTION
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        if self.training:
            self.num_batches_tracked += 1
        return batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var,
                          self.training, self.momentum, self.eps)
        ### END SOLUTION


# ----------------------------------------------------------------------------- other norms

def layer_norm(x: torch.Tensor, normalized_shape: tuple[int, ...], weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None, eps: float = 1e-5) -> torch.Tensor:
    """Layer normalization: statistics over the last len(normalized_shape) dims of each sample.

    Shape: x (..., *normalized_shape); weight, bias normalized_shape -> like x.
    """
    dims = tuple(range(x.dim() - len(normalized_shape), x.dim()))
    ### BEGIN SOLUTION
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, unbiased=False, keepdim=True)
    y = (x - mean) / torch.sqrt(var + eps)
    ### END SOLUTION
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def instance_norm(x: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                  eps: float = 1e-5) -> torch.Tensor:
    """Instance normalization: statistics over (H, W) for each sample and channel.

    Shape: x (N, C, H, W); weight, bias (C,) -> (N, C, H, W).
    """
    ### BEGIN SOLUTION
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), unbiased=False, keepdim=True)
    y = (x - mean) / torch.sqrt(var + eps)
    ### END SOLUTION
    if weight is not None:
        y = y * weight.reshape(1, -1, 1, 1)
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return y


def group_norm(x: torch.Tensor, num_groups: int, weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None, eps: float = 1e-5) -> torch.Tensor:
    """Group normalization: channels are split into ``num_groups`` consecutive groups;
    statistics over (C/G, H, W) per sample and group. G = 1 is LayerNorm over (C, H, W),
    G = C is InstanceNorm.

    Shape: x (N, C, H, W); weight, bias (C,) -> (N, C, H, W).
    """
    N, C, H, W = x.shape
    ### BEGIN SOLUTION
    g = x.reshape(N, num_groups, C // num_groups, H, W)  # consecutive channels share a group
    mean = g.mean(dim=(2, 3, 4), keepdim=True)
    var = g.var(dim=(2, 3, 4), unbiased=False, keepdim=True)
    y = ((g - mean) / torch.sqrt(var + eps)).reshape(N, C, H, W)
    ### END SOLUTION
    if weight is not None:
        y = y * weight.reshape(1, -1, 1, 1)
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return y


# ----------------------------------------------------------------------------- regularization

def dropout(x: torch.Tensor, p: float, training: bool, generator: torch.Generator | None = None) -> torch.Tensor:
    """Inverted dropout: zero each entry with probability p and scale survivors by 1/(1 − p),
    so the expected value is unchanged and evaluation needs no rescaling.

    The mask is drawn with ``torch.rand(x.shape, generator=generator)`` on the CPU.
    Shape: any -> same.
    """
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    ### BEGIN SOLUTION
    keep = torch.rand(x.shape, generator=generator) >= p
    return x * keep.to(x.device) / (1 - p)
    ### END SOLUTION


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """Σ |w| over every parameter named ``*.weight`` (biases excluded)."""
    ### BEGIN SOLUTION
    return sum(p.abs().sum() for name, p in model.named_parameters() if name.endswith("weight"))
    ### END SOLUTION


def l2_penalty(model: nn.Module) -> torch.Tensor:
    """½ Σ w² over every parameter named ``*.weight`` (biases excluded).

    The ½ makes the gradient of λ · l2_penalty equal λ w: exactly SGD's weight_decay=λ.
    """
    ### BEGIN SOLUTION
    return 0.5 * sum((p ** 2).sum() for name, p in model.named_parameters() if name.endswith("weight"))
    ### END SOLUTION


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
    from course.train import accuracy

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
    import matplotlib.pyplot as plt

    from course import get_device, seed_everything
    from course.data import load_mnist
    from course.plotting import save
    from course.train import accuracy

    cfg = Config(norm_train=2000, overfit_epochs=30) if quick else Config()
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
