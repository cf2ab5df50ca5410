"""A minimal training loop: visible, short, and with a progress bar."""
from __future__ import annotations

import sys
from typing import Callable, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm


def fit(model: nn.Module, optimizer: torch.optim.Optimizer,
        batches: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]], *, epochs: int = 1,
        loss_fn: Callable = nn.functional.cross_entropy, device: torch.device | str = "cpu",
        desc: str = "train", progress: bool = True) -> list[float]:
    """Train ``model`` and return the loss of every step.

    Args:
        batches: called once per epoch; yields ``(x, y)`` mini-batches.
        progress: show a progress bar (on stdout, so graded cells stay clean).
    """
    model.to(device).train()
    losses: list[float] = []
    bar = tqdm(total=epochs, desc=desc, disable=not progress, file=sys.stdout, leave=False)
    for _ in range(epochs):
        for x, y in batches():
            x, y = x.to(device), y.to(device)
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}" if losses else "n/a")
        bar.update()
    bar.close()
    return losses


@torch.no_grad()
def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, batch_size: int = 1000,
             device: torch.device | str = "cpu") -> float:
    """Fraction of correctly classified samples."""
    model.to(device).eval()
    correct = 0
    for i in range(0, len(X), batch_size):
        logits = model(X[i:i + batch_size].to(device))
        correct += (logits.argmax(1).cpu() == y[i:i + batch_size]).sum().item()
    return correct / len(X)


def train_classifier(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, epochs: int, lr: float = 3e-3,
                     batch_size: int = 64, shift: int = 2, device="cpu", generator=None, progress: bool = True,
                     desc: str = "train") -> list[float]:
    """Adam with a one-cycle learning rate and random shifts; returns the loss of every step.

    Only parameters with requires_grad are optimised, so a frozen backbone stays frozen, and
    frozen BatchNorm layers stay in eval mode: they keep the statistics they were trained with.
    """
    from course.data import random_shift

    model.to(device).train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr / 10)
    steps = epochs * -(-len(X) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    losses = []
    for _ in tqdm(range(epochs), desc=desc, disable=not progress, file=sys.stdout, leave=False):
        for idx in torch.randperm(len(X), generator=generator).split(batch_size):
            xb = X[idx].to(device)
            if shift:
                xb = random_shift(xb, shift, generator)
            loss = nn.functional.cross_entropy(model(xb), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
    return losses
