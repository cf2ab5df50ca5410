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
# # DAY 1 — Optimization (学習と最適化計算)
#
# Training a network means minimising the **empirical loss** (経験損失)
#
# $$J(\theta) = \frac{1}{m}\sum_{i=1}^{m} L\big(f(x^{(i)};\theta),\, y^{(i)}\big),$$
#
# a stand-in for the expected loss over the true data distribution, which we cannot compute.
# Computing $J$ exactly on every step is wasteful: many quick, noisy steps on
# **mini-batches** (ミニバッチ) beat a few exact ones. Today you will write the optimizers
# of the lecture as real `torch.optim.Optimizer` subclasses, the learning-rate schedules,
# the mini-batch sampler and the weight initialisations, and then see each of them at work.
#
# **How this notebook works.** Fill in every `# YOUR CODE HERE`. The cell after each exercise
# runs a visible check that compares your code with torch and says what is wrong in plain
# words. Hidden tests with fresh random inputs run when the notebook is graded.
# Experiments shrink automatically on a CPU; set `COURSE_FULL=1` for full size.

# %% tags=["locked:setup"]
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from course import get_device, grading_mode, quick_mode, seed_everything
from course.checks import check_init, check_minibatches, check_optimizer, check_schedule
from course.data import load_mnist
from course.plotting import plot_losses, plot_trajectories
from course.train import accuracy, fit

device = get_device("auto")
QUICK = quick_mode()
print(f"device={device}, quick experiments={QUICK}")

# %% [markdown]
# ## 1. Stochastic gradient descent (確率的勾配降下法)
#
# $$\theta \leftarrow \theta - \epsilon\, g, \qquad g = \nabla_\theta \frac{1}{m}\sum_{i\in\text{batch}} L(f(x^{(i)};\theta), y^{(i)})$$
#
# $\epsilon$ is the learning rate (学習率), the single most important hyper-parameter.
#
# Each optimizer below is a `torch.optim.Optimizer`. The skeleton already does torch's
# bookkeeping: hyper-parameters live in `self.param_groups` (one dict per group, so groups can
# have different learning rates), per-parameter state lives in `self.state[p]`, parameters
# whose `.grad` is `None` are skipped, and `step(closure)` re-evaluates the loss when given a
# closure. You write the update itself, **in place** (`p.add_`, `p.addcdiv_`, …).

# %% tags=["solution:sgd"]
# include: SGD

# %% [markdown]
# A tiny example you can check by hand: on $f(\theta)=\theta^2$ from $\theta=1$ with
# $\epsilon=0.1$, one step gives $\theta = 1 - 0.1\cdot 2 = 0.8$.

# %%
theta = torch.tensor(1.0, requires_grad=True)
opt = SGD([theta], lr=0.1)
(theta ** 2).backward()
opt.step()
print(theta.item())  # 0.8

# %% tags=["test:test_sgd:1"]
"""SGD follows torch.optim.SGD step by step (1 point)."""
check_optimizer(SGD, torch.optim.SGD, lr=0.05)
### BEGIN HIDDEN TESTS
from solutions.day1_optimization.hidden import hidden_sgd
hidden_sgd(SGD)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Momentum (モメンタム)
#
# SGD zig-zags across narrow valleys and crawls along them. Momentum keeps a velocity $v$
# that remembers past updates:
#
# $$v \leftarrow \alpha v - \epsilon g, \qquad \theta \leftarrow \theta + v, \qquad \alpha\in[0,1)\ (\text{typically } 0.5, 0.9, 0.99).$$
#
# *Convention trap:* torch stores $b = -v/\epsilon$ and writes $b \leftarrow \alpha b + g$,
# $\theta \leftarrow \theta - \epsilon b$. Same trajectory while $\epsilon$ is constant.
# (And this "momentum" has nothing to do with BatchNorm's `momentum`, which you meet on DAY 2.)

# %% tags=["solution:momentum"]
# include: Momentum

# %% tags=["test:test_momentum:2"]
"""Momentum follows torch.optim.SGD(momentum=...) (2 points)."""
check_optimizer(Momentum, torch.optim.SGD, lr=0.02, momentum=0.9)
### BEGIN HIDDEN TESTS
from solutions.day1_optimization.hidden import hidden_momentum
hidden_momentum(Momentum)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Nesterov momentum (ネステロフのモメンタム)
#
# Nesterov evaluates the gradient where the velocity is about to carry us:
#
# $$v_{t+1} = \rho v_t - \epsilon \nabla f(x_t + \rho v_t), \qquad x_{t+1} = x_t + v_{t+1}.$$
#
# An optimizer only ever sees the gradient at the stored parameters, so the lecture changes
# variables to the look-ahead point $\tilde x_t = x_t + \rho v_t$ (変数変換) and stores $\tilde x$:
#
# $$v_{t+1} = \rho v_t - \epsilon \nabla f(\tilde x_t), \qquad
#   \tilde x_{t+1} = \tilde x_t + v_{t+1} + \rho\,(v_{t+1} - v_t).$$
#
# Implement this form. It reproduces `torch.optim.SGD(momentum=ρ, nesterov=True)` exactly.

# %% tags=["solution:nesterov"]
# include: Nesterov

# %% tags=["test:test_nesterov:2"]
"""Nesterov follows torch.optim.SGD(momentum=..., nesterov=True) (2 points)."""
check_optimizer(Nesterov, torch.optim.SGD, lr=0.02, momentum=0.9, torch_extra=dict(nesterov=True))
### BEGIN HIDDEN TESTS
from solutions.day1_optimization.hidden import hidden_nesterov
hidden_nesterov(Nesterov)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. AdaGrad
#
# A step size per coordinate: directions with large past gradients get small steps.
#
# $$r \leftarrow r + g\odot g, \qquad \theta \leftarrow \theta - \frac{\epsilon}{\delta + \sqrt{r}}\odot g$$
#
# $\delta$ (`eps`) sits **outside** the square root, as in torch. Since $r$ only grows,
# AdaGrad's steps shrink forever and it can stall before reaching the minimum.

# %% tags=["solution:adagrad"]
# include: AdaGrad

# %% tags=["test:test_adagrad:2"]
"""AdaGrad follows torch.optim.Adagrad (2 points)."""
check_optimizer(AdaGrad, torch.optim.Adagrad, lr=0.1, eps=1e-10)
### BEGIN HIDDEN TESTS
from solutions.day1_optimization.hidden import hidden_adagrad
hidden_adagrad(AdaGrad)
### END HIDDEN TESTS

# %% [markdown]
# ## 5. RMSProp
#
# AdaGrad's fix: forget old gradients with an exponential moving average (減衰率 $\alpha$):
#
# $$r \leftarrow \alpha r + (1-\alpha)\, g\odot g, \qquad \theta \leftarrow \theta - \frac{\epsilon}{\delta + \sqrt{r}}\odot g$$

# %% tags=["solution:rmsprop"]
# include: RMSProp

# %% tags=["test:test_rmsprop:2"]
"""RMSProp follows torch.optim.RMSprop (2 points)."""
check_optimizer(RMSProp, torch.optim.RMSprop, lr=0.01, alpha=0.99, eps=1e-8)
### BEGIN HIDDEN TESTS
from solutions.day1_optimization.hidden import hidden_rmsprop
hidden_rmsprop(RMSProp)
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Adam (Adaptive Moment Estimation)
#
# Momentum on $g$ plus RMSProp on $g^2$:
#
# $$m \leftarrow \beta_1 m + (1-\beta_1) g, \qquad v \leftarrow \beta_2 v + (1-\beta_2)\, g\odot g$$
# $$\hat m = \frac{m}{1-\beta_1^t}, \qquad \hat v = \frac{v}{1-\beta_2^t}, \qquad
#   \theta \leftarrow \theta - \epsilon\,\frac{\hat m}{\sqrt{\hat v} + \delta}$$
#
# $t$ counts steps from 1. Think about the lecture's question first: without the
# bias correction (バイアス補正), what is the very first update when $m$ and $v$ start at 0?

# %% tags=["solution:adam"]
# include: Adam

# %% tags=["test:test_adam:3"]
"""Adam follows torch.optim.Adam, bias correction included (3 points)."""
check_optimizer(Adam, torch.optim.Adam, lr=0.01, betas=(0.9, 0.999), eps=1e-8)
### BEGIN HIDDEN TESTS
from solutions.day1_optimization.hidden import hidden_adam
hidden_adam(Adam)
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Experiment: pathological curvature
#
# Run all six optimizers from the same start on an ill-conditioned quadratic
# $f(x, y) = x^2/20 + y^2$ (curvature 20× larger along $y$) and on Rosenbrock's banana
# $f(x,y) = (1-x)^2 + 100\,(y-x^2)^2$. Watch SGD zig-zag, momentum overshoot, and the
# adaptive methods rescale each coordinate.

# %%
def quadratic(x, y):
    return x ** 2 / 20 + y ** 2


def rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def trajectory(opt_cls, hparams, f, start, steps):
    """Points visited by `opt_cls` minimising f from `start`. Shape: (steps + 1, 2)."""
    xy = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = opt_cls([xy], **hparams)
    path = [xy.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        f(xy[0], xy[1]).backward()
        opt.step()
        path.append(xy.detach().clone())
    return torch.stack(path).numpy()


settings = {
    "quadratic": (quadratic, (-7.0, 2.0), 60, dict(xlim=(-8, 8), ylim=(-3, 3), minimum=(0, 0)),
                  {"SGD": (SGD, dict(lr=0.9)), "Momentum": (Momentum, dict(lr=0.1, momentum=0.8)),
                   "Nesterov": (Nesterov, dict(lr=0.1, momentum=0.8)), "AdaGrad": (AdaGrad, dict(lr=1.5)),
                   "RMSProp": (RMSProp, dict(lr=0.3, alpha=0.9)), "Adam": (Adam, dict(lr=0.5))}),
    "rosenbrock": (rosenbrock, (-1.5, 2.0), 300 if grading_mode() else 2000, dict(xlim=(-2, 2), ylim=(-1, 3), minimum=(1, 1)),
                   {"SGD": (SGD, dict(lr=1e-3)), "Momentum": (Momentum, dict(lr=2e-4, momentum=0.9)),
                    "Nesterov": (Nesterov, dict(lr=2e-4, momentum=0.9)), "AdaGrad": (AdaGrad, dict(lr=0.5)),
                    "RMSProp": (RMSProp, dict(lr=0.01)), "Adam": (Adam, dict(lr=0.05))}),
}
fig, axes = plt.subplots(1, 2, figsize=(13, 5))
for ax, (fname, (f, start, steps, view, opts)) in zip(axes, settings.items()):
    paths = {name: trajectory(cls, hp, f, start, steps) for name, (cls, hp) in opts.items()}
    plot_trajectories(lambda x, y: f(x, y), paths, ax=ax, title=f"{fname}, {steps} steps", **view)
    for name, path in paths.items():
        print(f"{fname:>10} {name:>8}: final loss {f(*path[-1]):.2e}")
plt.show()

# %% [markdown]
# ## 8. Learning-rate schedules (学習率の減衰)
#
# SGD converges when $\sum_t \epsilon_t = \infty$ and $\sum_t \epsilon_t^2 < \infty$. Two
# common schedules with a constant $\delta$:
#
# $$\epsilon_t = \frac{\epsilon_0}{1 + \delta t} \qquad\qquad \epsilon_t = \frac{\epsilon_0}{t^{\delta}}\ (t \ge 1,\ 0.5 < \delta \le 1)$$
#
# Each function returns a schedule `t -> learning rate` (a Python float). torch's
# `LambdaLR` *multiplies* the optimizer's `lr` by the schedule's value and starts counting at
# $t=0$, so give the optimizer `lr=1.0`, and let `power_decay` return $\epsilon_0$ at $t = 0$.

# %% tags=["solution:lr_schedules"]
# include: inverse_time_decay, power_decay

# %% tags=["test:test_lr_schedules:2"]
"""Both schedules match their formulas and work with LambdaLR (2 points)."""
check_schedule(inverse_time_decay, lambda lr0, d, t: lr0 / (1 + d * t), name="inverse_time_decay")
check_schedule(power_decay, lambda lr0, d, t: lr0 / max(t, 1) ** d, name="power_decay")
### BEGIN HIDDEN TESTS
from solutions.day1_optimization.hidden import hidden_lr_schedules
hidden_lr_schedules(inverse_time_decay, power_decay)
### END HIDDEN TESTS

# %% [markdown]
# ## 9. Mini-batches (ミニバッチ)
#
# Shuffle before every epoch (so batches are unbiased samples), then cut the data into
# batches of `batch_size`; the last one may be smaller. Use the `generator` you are given so
# that runs are reproducible.

# %% tags=["solution:minibatches"]
# include: minibatches

# %% tags=["test:test_minibatches:2"]
"""minibatches covers every sample once, keeps the last batch, shuffles reproducibly (2 points)."""
check_minibatches(minibatches)
### BEGIN HIDDEN TESTS
from solutions.day1_optimization.hidden import hidden_minibatches
hidden_minibatches(minibatches)
### END HIDDEN TESTS

# %% [markdown]
# ### Experiment: gradient noise against batch size
#
# The lecture's question: if one example's loss has standard deviation $\sigma$, what is the
# standard deviation of a mini-batch's mean loss? Averaging $n$ independent terms gives
# $\sigma/\sqrt{n}$, so a 100× bigger batch only buys 10× less noise. We measure it for the
# loss and for the gradient of a small classifier.

# %%
Xtr, ytr = load_mnist("train")
gen = seed_everything(0)
probe = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
per_sample = nn.functional.cross_entropy(probe(Xtr), ytr, reduction="none").detach()
sigma = per_sample.std().item()
sizes = [1, 4, 16, 64, 256]
loss_sd, grad_sd = [], []
for n in sizes:
    means, grads = [], []
    for i, (xb, yb) in enumerate(minibatches(Xtr, ytr, n, generator=gen)):
        if i == 100:
            break
        probe.zero_grad()
        loss = nn.functional.cross_entropy(probe(xb), yb)
        loss.backward()
        means.append(loss.item())
        grads.append(probe[1].bias.grad.clone())
    loss_sd.append(np.std(means))
    grad_sd.append(torch.stack(grads).std(0).norm().item())
plt.figure(figsize=(5, 4))
plt.loglog(sizes, loss_sd, "o-", label="std of mini-batch loss")
plt.loglog(sizes, [sigma / math.sqrt(n) for n in sizes], "k--", label=r"$\sigma/\sqrt{n}$")
plt.loglog(sizes, grad_sd, "s-", label="std of gradient (bias, norm)")
plt.xlabel("batch size n"); plt.legend(); plt.title("Noise shrinks like 1/√n")
plt.show()

# %% [markdown]
# ## 10. Weight initialisation (パラメータの初期化戦略)
#
# Weights must break symmetry, and their scale decides whether signals survive many layers.
# With $n_\text{in}$ the fan-in of a layer (inputs per output unit):
#
# | scheme | std of $W$ | suited to |
# |---|---|---|
# | `normal` | $0.01$ | shallow nets only |
# | `xavier` (Glorot) | $\sqrt{1/n_\text{in}}$ | sigmoid, tanh |
# | `he` (Kaiming) | $\sqrt{2/n_\text{in}}$ | ReLU |
#
# For a `Conv2d`, $n_\text{in} = C_\text{in}\cdot k_H \cdot k_W$ (`m.weight[0].numel()`).
# Biases start at zero.

# %% tags=["solution:init_weights"]
# include: init_weights

# %% tags=["test:test_init_weights:2"]
"""init_weights draws N(0, σ²) with the scheme's σ and zeroes biases (2 points)."""
check_init(init_weights)
### BEGIN HIDDEN TESTS
from solutions.day1_optimization.hidden import hidden_init_weights
hidden_init_weights(init_weights)
### END HIDDEN TESTS

# %% [markdown]
# ### Experiment: the lecture's 5-layer network
#
# Push 1,000 random inputs through 5 layers of 100 ReLU units and look at each layer's
# non-zero activations, all on the same scale. With std 0.01 the signal dies; Xavier (made for tanh) shrinks it by about
# $\sqrt{2}$ per ReLU layer; He keeps it steady. Then train the same 5-layer net on MNIST.

# %%
def five_layer(width=100, act=nn.ReLU):
    layers, d = [nn.Flatten()], 784
    for _ in range(5):
        layers += [nn.Linear(d, width), act()]
        d = width
    return nn.Sequential(*layers, nn.Linear(d, 10))


seed_everything(0)
x = torch.randn(1000, 1, 28, 28)
fig, axes = plt.subplots(3, 5, figsize=(14, 7), sharey="row")
for row, scheme in enumerate(["normal", "xavier", "he"]):
    net = init_weights(five_layer(), scheme)
    h, k = x, 0
    with torch.no_grad():
        for layer in net:
            h = layer(h)
            if isinstance(layer, nn.ReLU):
                active = h[h > 0]  # ReLU zeroes about half; plot the rest on one common scale
                axes[row, k].hist(active.numpy(), bins=30, range=(0, 3))
                axes[row, k].set_title(f"{scheme}: layer {k + 1}, std {h.std():.1e}", fontsize=8)
                k += 1
plt.tight_layout()
plt.show()

n_train, epochs = (1000, 1) if grading_mode() else (len(Xtr), 3) if QUICK else (len(Xtr), 20)  # graded: the cell runs
curves = {}
for scheme in ["normal", "xavier", "he"]:
    gen = seed_everything(1)
    net = init_weights(five_layer(), scheme)
    curves[scheme] = fit(net, torch.optim.SGD(net.parameters(), lr=0.05),
                         lambda: minibatches(Xtr[:n_train], ytr[:n_train], 64, generator=gen),
                         epochs=epochs, device=device, desc=scheme)
plot_losses(curves, title="5-layer ReLU net on MNIST, SGD lr=0.05", smooth=5)
plt.show()

# %% [markdown]
# ## 11. Experiment: all six optimizers on MNIST
#
# A small MLP trained with each of your optimizers (the same initial weights and batches for
# every one). On a CPU this is a short run on the bundled digits; `course run day1_optimization`
# runs the full-scale version.
#
# Look closely at AdaGrad (ε = 0.01) and RMSProp (ε = 0.001, α = 0.99): for the first
# ~$1/(1-\alpha) = 100$ steps their curves nearly coincide. While $\alpha^t \approx 1 - t(1-\alpha)$,
# RMSProp's average is $r_t \approx (1-\alpha)\sum_s g_s^2$, i.e. AdaGrad's sum scaled by $1-\alpha$,
# so RMSProp with $\epsilon$ acts like AdaGrad with $\epsilon/\sqrt{1-\alpha}$. They part ways later,
# when AdaGrad's sum keeps growing and RMSProp forgets.

# %%
Xte, yte = load_mnist("test")
n_train, epochs = (1000, 1) if grading_mode() else (len(Xtr), 3) if QUICK else (len(Xtr), 20)  # graded: the cell runs
optimizers = {"SGD": (SGD, dict(lr=0.1)), "Momentum": (Momentum, dict(lr=0.01, momentum=0.9)),
              "Nesterov": (Nesterov, dict(lr=0.01, momentum=0.9)), "AdaGrad": (AdaGrad, dict(lr=0.01)),
              "RMSProp": (RMSProp, dict(lr=1e-3)), "Adam": (Adam, dict(lr=1e-3))}
curves = {}
for name, (cls, hp) in optimizers.items():
    gen = seed_everything(0)
    net = init_weights(nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)), "he")
    curves[name] = fit(net, cls(net.parameters(), **hp),
                       lambda: minibatches(Xtr[:n_train], ytr[:n_train], 64, generator=gen),
                       epochs=epochs, device=device, desc=name)
    print(f"{name:>8}: test accuracy {accuracy(net, Xte, yte, device=device):.3f}")
plot_losses(curves, title="MLP on MNIST", logy=True, smooth=10)
plt.show()

# %% [markdown]
# ## Summary (まとめ)
#
# - SGD is the core; momentum and Nesterov add inertia, AdaGrad/RMSProp rescale each
#   coordinate, and Adam does both, with a bias correction for its zero-initialised moments.
# - Learning-rate decay trades exploration for convergence.
# - Mini-batch noise falls like $1/\sqrt{n}$.
# - Initialisation must match the activation: He for ReLU, Xavier for tanh/sigmoid.
