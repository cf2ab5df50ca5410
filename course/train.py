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
