"""Plot helpers shared by the notebooks and the reference runs."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

import matplotlib

if not matplotlib.get_backend().lower().startswith(("module://", "nbagg", "widget", "ipympl")):
    matplotlib.use("Agg")  # headless outside Jupyter
import matplotlib.pyplot as plt
import numpy as np


def plot_losses(curves: Mapping[str, Sequence[float]], *, ax=None, title: str = "", xlabel: str = "step",
                ylabel: str = "loss", logy: bool = False, smooth: int = 1):
    """One line per named loss curve. ``smooth`` > 1 applies a moving average."""
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    for name, ys in curves.items():
        ys = np.asarray(ys, dtype=float)
        if smooth > 1 and len(ys) >= smooth:
            ys = np.convolve(ys, np.ones(smooth) / smooth, mode="valid")
        ax.plot(ys, label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    return ax


def plot_trajectories(f: Callable[[np.ndarray, np.ndarray], np.ndarray], paths: Mapping[str, np.ndarray], *,
                      xlim=(-2, 2), ylim=(-1, 3), levels: int = 30, log_levels: bool = True, ax=None,
                      title: str = "", minimum: Sequence[float] | None = None):
    """Optimizer paths over the contour plot of a 2-D function.

    Args:
        f: vectorised function of two arrays (x, y) returning the loss surface.
        paths: name -> array of shape (T, 2), the visited points.
    """
    ax = ax or plt.subplots(figsize=(6, 5))[1]
    xs, ys = np.linspace(*xlim, 300), np.linspace(*ylim, 300)
    X, Y = np.meshgrid(xs, ys)
    Z = f(X, Y)
    if log_levels:
        Z = np.log1p(Z - Z.min())
    ax.contour(X, Y, Z, levels=levels, cmap="Greys", linewidths=0.6)
    for name, path in paths.items():
        path = np.asarray(path)
        ax.plot(path[:, 0], path[:, 1], ".-", ms=2, lw=1, label=name)
    if minimum is not None:
        ax.plot(*minimum, "k*", ms=12)
    ax.set(xlim=xlim, ylim=ylim, title=title)
    ax.legend(fontsize=8)
    return ax


def save(fig, path: str | Path) -> Path:
    """Save a figure (creating folders) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path
