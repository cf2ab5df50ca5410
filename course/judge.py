"""A small MNIST classifier that judges generated digits (DAY 5), shipped as data/mnist_judge.pt.

The weights are trained by this module from the bundled MNIST subset, so anyone can rebuild
them offline and get the same network:

    python -m course.judge --retrain

Metrics for a batch of generated images in [-1, 1] (see :func:`judge_samples`):
    - ``confident``: fraction of samples whose top class has probability ≥ 0.9;
    - ``class_entropy``: entropy (nats) of the histogram of predicted classes; ln 10 ≈ 2.30
      means all ten digits equally often, a collapsed generator scores near 0;
    - ``fcd``: the Fréchet distance between Gaussians fitted to the judge's penultimate
      features of the samples and of real test digits (FID's formula on a digit classifier,
      so "Fréchet classifier distance"; lower is better, real vs real ≈ 0).
"""
from __future__ import annotations

import argparse

import torch
from torch import nn

JUDGE_FILE = "mnist_judge.pt"


class Judge(nn.Module):
    """conv(32) → pool → conv(64) → pool → fc(64) → fc(10); ``features`` is the 64-d penultimate layer.

    Shape: x (N, 1, 28, 28) in [0, 1] → logits (N, 10).
    """

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # (N, 32, 14, 14)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, 64, 7, 7)
            nn.Flatten(), nn.Linear(64 * 7 * 7, 64), nn.ReLU(),           # (N, 64)
        )
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_judge(epochs: int = 15, seed: int = 0, progress: bool = True) -> Judge:
    """Train the judge on the bundled 4,000-digit training split (CPU, about a minute)."""
    from course.data import load_mnist
    from course.train import train_classifier

    torch.manual_seed(seed)
    X, y = load_mnist("train", full=False)
    judge = Judge()
    train_classifier(judge, X, y, epochs=epochs, generator=torch.Generator().manual_seed(seed), progress=progress,
                     desc="judge")
    return judge.eval()


def load_judge(device="cpu") -> Judge:
    """The shipped judge in eval mode, with gradients off."""
    from course.data import data_root

    path = data_root() / JUDGE_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; restore it from the repository or run "
                                "`python -m course.judge --retrain` (about a minute on a CPU).")
    judge = Judge()
    judge.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    judge.requires_grad_(False)
    return judge.to(device).eval()


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2}) for feature rows a (N, D) and b (M, D), in float64.

    Tr((Σ_a Σ_b)^{1/2}) is the sum of the square roots of the eigenvalues of Σ_a^{1/2} Σ_b Σ_a^{1/2},
    which is symmetric, so an eigendecomposition suffices (no scipy needed).
    """
    a, b = a.double().cpu(), b.double().cpu()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    evals, evecs = torch.linalg.eigh(cov_a)
    sqrt_a = evecs @ torch.diag(evals.clamp(min=0).sqrt()) @ evecs.T
    cross = torch.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


@torch.no_grad()
def judge_samples(images: torch.Tensor, judge: Judge | None = None, labels: torch.Tensor | None = None,
                  real: torch.Tensor | None = None) -> dict[str, float]:
    """Score generated images (N, 1, 28, 28) in [-1, 1]: ``confident``, ``class_entropy``, and
    ``label_accuracy`` when the requested ``labels`` (N,) are given, ``fcd`` when ``real`` images
    in [0, 1] are given."""
    judge = judge or load_judge(images.device)
    dev = next(judge.parameters()).device
    x = ((images.float() + 1) / 2).clamp(0, 1).to(dev)
    feats = torch.cat([judge.features(chunk) for chunk in x.split(500)])
    probs = judge.head(feats).softmax(dim=1)
    conf, pred = probs.max(dim=1)
    hist = torch.bincount(pred, minlength=10).double() / len(pred)
    out = {"confident": (conf >= 0.9).double().mean().item(),
           "class_entropy": float(-(hist[hist > 0] * hist[hist > 0].log()).sum())}
    if labels is not None:
        out["label_accuracy"] = (pred.cpu() == labels.cpu()).double().mean().item()
    if real is not None:
        real_feats = torch.cat([judge.features(chunk.to(dev)) for chunk in real.float().split(500)])
        out["fcd"] = frechet_distance(feats, real_feats)
    return out


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.judge",
                                     description="Show (or rebuild) the MNIST judge used to score DAY 5's GAN samples.")
    parser.add_argument("--retrain", action="store_true", help=f"train it again and overwrite data/{JUDGE_FILE}")
    args = parser.parse_args(argv)
    from course.data import data_root, load_mnist

    if args.retrain:
        judge = train_judge()
        path = data_root() / JUDGE_FILE
        torch.save(judge.state_dict(), path)
        print(f"wrote {path}")
    judge = load_judge()
    X, y = load_mnist("test", full=False)
    with torch.no_grad():
        probs = judge(X).softmax(dim=1)
    acc = (probs.argmax(1) == y).double().mean().item()
    real = judge_samples(X * 2 - 1, judge, labels=y)
    print(f"judge: test accuracy {acc:.4f} on the bundled 1,000 test digits; real digits: "
          f"confident {real['confident']:.3f}, class entropy {real['class_entropy']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
