"""Reproducibility: one call seeds Python, NumPy and torch and hands back a Generator."""
from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed every global RNG and return a CPU ``torch.Generator`` seeded the same way.

    Pass the returned generator to functions that take ``generator=`` so that their
    randomness does not depend on what ran before.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
