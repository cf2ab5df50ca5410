# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # DAY 2 — Normalization and regularization (正規化と正則化)
#
# Deep networks are hard to train for two reasons that today's tools address:
#
# - **Signals and gradients vanish or explode** (勾配消失問題) as they pass through many layers.
#   Remedies: activations whose derivative does not saturate, and **normalization layers** that
#   keep each layer's inputs at zero mean and unit variance.
# - **Overfitting** (過学習): a big model memorises a small training set. Remedies:
#   **dropout**, **weight penalties** (L1/L2, 正則化), early stopping and data augmentation.
#
# Fill in every `# YOUR CODE HERE`; the check after each exercise compares your code with
# `torch.nn.functional` on random inputs in float64.

# %% tags=["locked:setup"]
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from course import get_device, grading_mode, quick_mode, seed_everything
from course.checks import (check_activations, check_batch_norm, check_batch_norm_backward, check_batchnorm2d,
                           check_dropout, check_group_norm, check_instance_norm, check_layer_norm, check_penalties)
from course.data import load_mnist
from course.train import accuracy

device = get_device("auto")
QUICK = quick_mode()
print(f"device={device}, quick experiments={QUICK}")

# %% [markdown]
# ## 1. Activation functions (活性化関数)
#
# $$\sigma(x) = \frac{1}{1+e^{-x}}, \quad \tanh(x) = 2\sigma(2x) - 1, \quad
#   \mathrm{ReLU}(x) = \max(0, x), \quad \mathrm{LeakyReLU}(x) = \begin{cases} x & x > 0 \\ a x & x \le 0\end{cases}$$
#
# $$\mathrm{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}} = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}}, \quad m = \max_j x_j$$
#
# The sigmoid's derivative $\sigma(1-\sigma) \le 1/4$ shrinks gradients at every layer; ReLU's
# derivative is exactly 1 for positive inputs. For softmax, subtracting the maximum changes
# nothing mathematically but keeps $e^{x}$ from overflowing: try $x = 1000$.
# Write them with elementary operations (`torch.exp`, `torch.where`, …), not torch's versions.

# %% tags=["solution:activations"]
# include: sigmoid, tanh, relu, leaky_relu, softmax

# %% tags=["test:test_activations:2"]
"""The five activations match torch, and softmax is stable at ±1000 (2 points)."""
check_activations(sigmoid, tanh, relu, leaky_relu, softmax)
### BEGIN HIDDEN TESTS
from solutions.day2_normalization.hidden import hidden_activations
hidden_activations(sigmoid, tanh, relu, leaky_relu, softmax)
### END HIDDEN TESTS

# %% [markdown]
# ### Experiment: vanishing gradients
#
# A 10-layer MLP (width 64) with each activation, one batch of digits, PyTorch's default
# initialisation. The plot shows the gradient norm of each layer's weights: with the sigmoid
# the first layers receive almost nothing.

# %%
class Act(nn.Module):
    """Wrap an activation function as a module."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


Xtr, ytr = load_mnist("train")
xb, yb = Xtr[:256], ytr[:256]
plt.figure(figsize=(6, 4))
for name, fn in {"sigmoid": sigmoid, "tanh": tanh, "ReLU": relu, "Leaky ReLU": leaky_relu}.items():
    seed_everything(0)
    layers, d = [nn.Flatten()], 784
    for _ in range(10):
        layers += [nn.Linear(d, 64), Act(fn)]
        d = 64
    net = nn.Sequential(*layers, nn.Linear(64, 10))
    F.cross_entropy(net(xb), yb).backward()
    norms = [m.weight.grad.norm().item() for m in net if isinstance(m, nn.Linear)]
    plt.semilogy(range(1, len(norms) + 1), norms, "o-", label=name)
plt.xlabel("layer (1 = next to the input)"); plt.ylabel("‖∂L/∂W‖"); plt.legend()
plt.title("Gradient norm per layer, 10-layer MLP")
plt.show()

# %% [markdown]
# ## 2. Batch normalization, forward (バッチ正規化)
#
# For each channel $c$, over the $m$ values in the mini-batch (and, for images, over $H \times W$):
#
# $$\mu_c = \frac{1}{m}\sum x, \qquad \sigma_c^2 = \frac{1}{m}\sum (x-\mu_c)^2, \qquad
#   y = \gamma_c \frac{x - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}} + \beta_c$$
#
# At test time there may be a single input, so the network uses running averages collected
# during training (移動平均):
#
# $$\hat\mu \leftarrow (1-\text{momentum})\,\hat\mu + \text{momentum}\cdot\mu, \qquad
#   \hat\sigma^2 \leftarrow (1-\text{momentum})\,\hat\sigma^2 + \text{momentum}\cdot\frac{m}{m-1}\sigma^2$$
#
# Two conventions trip people up, and torch follows both:
# - normalise with the **biased** variance $\sigma^2$, but store the **unbiased** $\frac{m}{m-1}\sigma^2$;
# - BatchNorm's `momentum` is the weight of the **new** batch (0.1), the opposite of an
#   optimizer's momentum (the weight of the old velocity, 0.9).
#
# Update `running_mean` and `running_var` **in place**: the caller owns those tensors.

# %% tags=["solution:batch_norm_forward"]
# include: batch_norm

# %% tags=["test:test_batch_norm_forward:2"]
"""batch_norm matches F.batch_norm, running statistics included (2 points)."""
check_batch_norm(batch_norm)
### BEGIN HIDDEN TESTS
from solutions.day2_normalization.hidden import hidden_batch_norm
hidden_batch_norm(batch_norm)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Batch normalization, backward
#
# Write the backward pass of training-mode batch norm by hand, as a `torch.autograd.Function`.
# With $\hat x = (x-\mu)/\sigma$, $\sigma = \sqrt{\sigma^2+\epsilon}$, upstream gradient $dy$,
# and means over the $m$ values of each channel:
#
# $$\frac{\partial L}{\partial \beta} = \sum dy, \qquad \frac{\partial L}{\partial \gamma} = \sum dy\,\hat x, \qquad
#   \frac{\partial L}{\partial x} = \frac{\gamma}{\sigma}\Big(dy - \overline{dy} - \hat x\;\overline{dy\,\hat x}\Big)$$
#
# The two mean terms appear because $\mu$ and $\sigma$ depend on every $x$ in the batch.
# Derive it once on paper; the check compares with autograd and runs `gradcheck`.

# %% tags=["solution:batch_norm_backward"]
# include: BatchNormFunction

# %% tags=["test:test_batch_norm_backward:3"]
"""The hand-written backward matches autograd and gradcheck in float64 (3 points)."""
check_batch_norm_backward(BatchNormFunction)
### BEGIN HIDDEN TESTS
from solutions.day2_normalization.hidden import hidden_batch_norm_backward
hidden_batch_norm_backward(BatchNormFunction)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. A `BatchNorm2d` module
#
# Package `batch_norm` as a module that can replace `nn.BatchNorm2d`, down to the names in its
# `state_dict`: learnable `weight` (γ) and `bias` (β) are `nn.Parameter`s; `running_mean`,
# `running_var` and `num_batches_tracked` are **buffers** (`register_buffer`): saved and moved
# with the model, but not trained. `self.training` (set by `.train()` / `.eval()`) picks the mode.

# %% tags=["solution:batchnorm2d"]
# include: BatchNorm2d

# %% tags=["test:test_batchnorm2d:2"]
"""BatchNorm2d behaves like nn.BatchNorm2d and shares its state_dict (2 points)."""
check_batchnorm2d(BatchNorm2d)
### BEGIN HIDDEN TESTS
from solutions.day2_normalization.hidden import hidden_batchnorm2d
hidden_batchnorm2d(BatchNorm2d)
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Layer, instance and group normalization
#
# BatchNorm's statistics depend on the other samples in the batch, which breaks down for tiny
# batches and for sequences. The alternatives normalise each sample on its own; they differ only
# in **which values share a mean and variance**. For an image batch $(N, C, H, W)$:
#
# | method | statistics over | per |
# |---|---|---|
# | BatchNorm | $(N, H, W)$ | channel |
# | LayerNorm | $(C, H, W)$ (the last dims) | sample |
# | InstanceNorm | $(H, W)$ | sample and channel |
# | GroupNorm ($G$ groups) | $(C/G, H, W)$ | sample and group of consecutive channels |
#
# All use the biased variance, and $\gamma, \beta$ per channel (LayerNorm: per normalised element).

# %% tags=["solution:layer_norm"]
# include: layer_norm

# %% tags=["test:test_layer_norm:1"]
"""layer_norm matches F.layer_norm (1 point)."""
check_layer_norm(layer_norm)
### BEGIN HIDDEN TESTS
from solutions.day2_normalization.hidden import hidden_layer_norm
hidden_layer_norm(layer_norm)
### END HIDDEN TESTS

# %% tags=["solution:instance_norm"]
# include: instance_norm

# %% tags=["test:test_instance_norm:1"]
"""instance_norm matches F.instance_norm (1 point)."""
check_instance_norm(instance_norm)
### BEGIN HIDDEN TESTS
from solutions.day2_normalization.hidden import hidden_instance_norm
hidden_instance_norm(instance_norm)
### END HIDDEN TESTS

# %% tags=["solution:group_norm"]
# include: group_norm

# %% tags=["test:test_group_norm:2"]
"""group_norm matches F.group_norm for several group counts (2 points)."""
check_group_norm(group_norm)
### BEGIN HIDDEN TESTS
from solutions.day2_normalization.hidden import hidden_group_norm
hidden_group_norm(group_norm)
### END HIDDEN TESTS

# %% [markdown]
# ### Experiment: normalization against batch size
#
# The same MLP with no normalization, BatchNorm, LayerNorm and GroupNorm, trained on the same
# digits with batch size 2 and 64 (the same number of samples seen). At batch size 2 the batch
# statistics are so noisy that BatchNorm's running averages no longer describe the data; the
# per-sample methods do not care.

# %%
def norm_mlp(norm, width=128, groups=8):
    make = {"none": lambda: nn.Identity(), "BatchNorm": lambda: nn.BatchNorm1d(width),
            "LayerNorm": lambda: nn.LayerNorm(width), "GroupNorm": lambda: nn.GroupNorm(groups, width)}[norm]
    return nn.Sequential(nn.Flatten(), nn.Linear(784, width), make(), nn.ReLU(),
                         nn.Linear(width, width), make(), nn.ReLU(), nn.Linear(width, 10))


Xte, yte = load_mnist("test")
n_seen = 300 if grading_mode() else 1000 if QUICK else len(Xtr)  # autograding only needs the cell to run
results = {}
for norm in ["none", "BatchNorm", "LayerNorm", "GroupNorm"]:
    for bs in (2, 64):
        gen = seed_everything(0)
        net = norm_mlp(norm).to(device).train()
        opt = torch.optim.SGD(net.parameters(), lr=0.01 * math.sqrt(bs), momentum=0.9)
        for idx in torch.randperm(n_seen, generator=gen).split(bs):
            loss = F.cross_entropy(net(Xtr[idx].to(device)), ytr[idx].to(device))
            opt.zero_grad(); loss.backward(); opt.step()
        results[norm, bs] = accuracy(net, Xte, yte, device=device)
        print(f"{norm:>9}, batch {bs:>2}: test accuracy {results[norm, bs]:.3f}")
plt.figure(figsize=(6, 4))
names = ["none", "BatchNorm", "LayerNorm", "GroupNorm"]
for i, bs in enumerate((2, 64)):
    plt.bar([j + 0.4 * i for j in range(4)], [results[n, bs] for n in names], width=0.4, label=f"batch size {bs}")
plt.xticks([j + 0.2 for j in range(4)], names); plt.ylabel("test accuracy"); plt.ylim(0, 1); plt.legend()
plt.title("Normalization against batch size")
plt.show()

# %% [markdown]
# ## 6. Dropout (ドロップアウト)
#
# During training, zero each activation independently with probability $p$; at test time use
# them all. **Inverted** dropout scales the survivors by $1/(1-p)$ during training, so that
# $\mathbb{E}[y] = x$ and evaluation needs no change:
#
# $$y = \frac{m \odot x}{1-p}, \qquad m_i \sim \mathrm{Bernoulli}(1-p)$$
#
# Draw the mask with `torch.rand(x.shape, generator=generator)` (on the CPU, then move it), so
# that runs are reproducible.

# %% tags=["solution:dropout"]
# include: dropout

# %% tags=["test:test_dropout:2"]
"""dropout: identity in eval, drops a fraction p, preserves the mean, follows its generator (2 points)."""
check_dropout(dropout)
### BEGIN HIDDEN TESTS
from solutions.day2_normalization.hidden import hidden_dropout
hidden_dropout(dropout)
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Weight penalties (L1 / L2 正則化)
#
# Add $\lambda\,\Omega(w)$ to the loss to keep weights small:
#
# $$\Omega_{L1}(w) = \sum |w|, \qquad \Omega_{L2}(w) = \tfrac{1}{2}\sum w^2$$
#
# over the weights only (biases are few and penalising them does not reduce overfitting).
# With the $\tfrac12$, the gradient of $\lambda\,\Omega_{L2}$ is $\lambda w$: exactly what
# `torch.optim.SGD(weight_decay=λ)` adds to each gradient ("weight decay", 荷重減衰).
# L1 pushes weights to exactly zero (sparsity); L2 shrinks them all.

# %% tags=["solution:weight_penalties"]
# include: l1_penalty, l2_penalty

# %% tags=["test:test_weight_penalties:2"]
"""l1/l2 penalties match their formulas, and λ·l2 equals SGD weight decay (2 points)."""
check_penalties(l1_penalty, l2_penalty)
### BEGIN HIDDEN TESTS
from solutions.day2_normalization.hidden import hidden_weight_penalties
hidden_weight_penalties(l1_penalty, l2_penalty)
### END HIDDEN TESTS

# %% [markdown]
# ### Experiment: overfitting, and three cures
#
# A wide MLP trained on only a few hundred digits, split the lecture's way into **train**
# (to fit), **validation** (to choose: here, when to stop) and **test** (to report once).
# Plain training drives the training loss to zero while the validation loss turns up: that
# turning point is where **early stopping** (早期終了) stops. Dropout and L2 delay or prevent it.

# %%
class Dropout(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        return dropout(x, self.p, self.training)


def wide_mlp(p):
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), Dropout(p),
                         nn.Linear(512, 512), nn.ReLU(), Dropout(p), nn.Linear(512, 10))


gen = seed_everything(0)
perm = torch.randperm(len(Xtr), generator=gen)
n_small, epochs = (300, 5) if grading_mode() else (300, 25) if QUICK else (1000, 100)  # graded: the cell runs
tr, va = perm[:n_small], perm[n_small:n_small + 1000]
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for name, p, lam in [("plain", 0.0, 0.0), ("dropout 0.5", 0.5, 0.0), ("L2 λ=1e-3", 0.0, 1e-3)]:
    gen = seed_everything(0)
    net = wide_mlp(p).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    train_loss, val_loss = [], []
    for epoch in range(epochs):
        net.train()
        for idx in tr[torch.randperm(len(tr), generator=gen)].split(50):
            loss = F.cross_entropy(net(Xtr[idx].to(device)), ytr[idx].to(device))
            opt.zero_grad(); (loss + lam * l2_penalty(net)).backward(); opt.step()
        net.eval()
        with torch.no_grad():
            train_loss.append(F.cross_entropy(net(Xtr[tr].to(device)), ytr[tr].to(device)).item())
            val_loss.append(F.cross_entropy(net(Xtr[va].to(device)), ytr[va].to(device)).item())
    best = min(range(epochs), key=val_loss.__getitem__)
    axes[0].plot(train_loss, label=name)
    axes[1].plot(val_loss, label=f"{name}: early stop at epoch {best}")
    print(f"{name:>12}: train loss {train_loss[-1]:.3f}, val loss {val_loss[-1]:.3f} (best {val_loss[best]:.3f} "
          f"at epoch {best}), test accuracy {accuracy(net, Xte, yte, device=device):.3f}")
axes[0].set(title="training loss", xlabel="epoch", yscale="log"); axes[0].legend()
axes[1].set(title="validation loss", xlabel="epoch"); axes[1].legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Summary (まとめ)
#
# - Saturating activations shrink gradients layer after layer; ReLU-family activations do not.
# - BatchNorm normalises per channel over the batch and keeps running averages for test time
#   (biased variance to normalise, unbiased to store; momentum weights the new batch).
# - Layer/Instance/Group norm normalise each sample on its own and work at any batch size.
# - Inverted dropout scales by $1/(1-p)$ in training; λ·½Σw² is SGD's weight decay.
