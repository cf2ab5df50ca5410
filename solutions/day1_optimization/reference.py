"""DAY 1, optimization (学習と最適化計算): reference solutions and the full-scale experiment.

This module is the single source of truth: `course build` copies each definition below
into the instructor notebook, nbgrader strips the ``### BEGIN/END SOLUTION`` regions to
make the student notebook, and the hidden tests and `course run day1_optimization`
import it from here.

References:
    - Goodfellow, Bengio, Courville, *Deep Learning*, ch. 8 (SGD, momentum, Nesterov,
      AdaGrad, RMSProp, Adam; learning-rate conditions).
    - Kingma & Ba, "Adam: A Method for Stochastic Optimization", 2015 (bias correction).
    - Sutskever et al., "On the importance of initialization and momentum", 2013.
    - Glorot & Bengio 2010 (Xavier); He et al. 2015 (He initialisation).
    - torch.optim's documented update rules, which these classes reproduce exactly.
"""
from __future__ import annotations

import math

import torch
from torch import nn


# ----------------------------------------------------------------------------- optimizers
# Each class follows torch's conventions: hyper-parameters live in param groups, state in
# self.state[p], parameters without a gradient are skipped, and step(closure) returns the
# closure's loss. Only the update rule itself is the exercise.

class SGD(torch.optim.Optimizer):
    """Plain stochastic gradient descent (確率的勾配降下法).

    θ ← θ − ε g

    Shape: every parameter keeps its own shape; g = p.grad has the same shape.
    """

    def __init__(self, params, lr: float):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                ### BEGIN SOLUTION
                p.add_(p.grad, alpha=-group["lr"])
                ### END SOLUTION
        return loss


class Momentum(torch.optim.Optimizer):
    """Momentum SGD (モメンタム) in the lecture's velocity form.

    v ← α v − ε g,   θ ← θ + v        (v starts at 0)

    torch writes the same rule as b ← α b + g, θ ← θ − ε b, i.e. v = −ε b; the two agree
    while ε is constant. Note: this α (momentum) is unrelated to BatchNorm's "momentum".
    """

    def __init__(self, params, lr: float, momentum: float = 0.9):
        super().__init__(params, dict(lr=lr, momentum=momentum))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                ### BEGIN SOLUTION
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p)
                v = state["velocity"]
                v.mul_(group["momentum"]).add_(p.grad, alpha=-group["lr"])
                p.add_(v)
                ### END SOLUTION
        return loss


class Nesterov(torch.optim.Optimizer):
    """Nesterov momentum (ネステロフのモメンタム) in the lecture's variable-change form.

    The gradient is taken at the look-ahead point x̃ = x + ρ v, and we store x̃ itself:

    v_{t+1} = ρ v_t − ε ∇f(x̃_t),   x̃_{t+1} = x̃_t + v_{t+1} + ρ (v_{t+1} − v_t)

    This equals torch.optim.SGD(momentum=ρ, nesterov=True).
    """

    def __init__(self, params, lr: float, momentum: float = 0.9):
        super().__init__(params, dict(lr=lr, momentum=momentum))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                ### BEGIN SOLUTION
                rho = group["momentum"]
                v_old = state.get("velocity", torch.zeros_like(p))
                v = rho * v_old - group["lr"] * p.grad
                p.add_(v + rho * (v - v_old))
                state["velocity"] = v
                ### END SOLUTION
        return loss


class AdaGrad(torch.optim.Optimizer):
    """AdaGrad: a per-coordinate step size from the accumulated squared gradients.

    r ← r + g ⊙ g,   θ ← θ − ε g / (δ + √r)        (δ = eps, outside the square root)
    """

    def __init__(self, params, lr: float = 0.01, eps: float = 1e-10):
        super().__init__(params, dict(lr=lr, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                ### BEGIN SOLUTION
                if "sum_sq" not in state:
                    state["sum_sq"] = torch.zeros_like(p)
                r = state["sum_sq"]
                r.addcmul_(p.grad, p.grad)
                p.addcdiv_(p.grad, r.sqrt().add_(group["eps"]), value=-group["lr"])
                ### END SOLUTION
        return loss


class RMSProp(torch.optim.Optimizer):
    """RMSProp: AdaGrad with an exponential moving average instead of a sum.

    r ← α r + (1 − α) g ⊙ g,   θ ← θ − ε g / (δ + √r)

    α is torch's ``alpha`` (the lecture's decay_rate).
    """

    def __init__(self, params, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                ### BEGIN SOLUTION
                if "square_avg" not in state:
                    state["square_avg"] = torch.zeros_like(p)
                r = state["square_avg"]
                r.mul_(group["alpha"]).addcmul_(p.grad, p.grad, value=1 - group["alpha"])
                p.addcdiv_(p.grad, r.sqrt().add_(group["eps"]), value=-group["lr"])
                ### END SOLUTION
        return loss


class Adam(torch.optim.Optimizer):
    """Adam: momentum on g plus RMSProp on g², both bias-corrected.

    m ← β1 m + (1 − β1) g,      v ← β2 v + (1 − β2) g ⊙ g
    m̂ = m / (1 − β1^t),          v̂ = v / (1 − β2^t)
    θ ← θ − ε m̂ / (√v̂ + δ)                      (t counts steps from 1)

    Without the correction, m and v start near 0 and the first steps are badly scaled.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                ### BEGIN SOLUTION
                beta1, beta2 = group["betas"]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["step"] += 1
                t, m, v = state["step"], state["m"], state["v"]
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                m_hat = m / (1 - beta1 ** t)
                v_hat = v / (1 - beta2 ** t)
                p.addcdiv_(m_hat, v_hat.sqrt().add_(group["eps"]), value=-group["lr"])
                ### END SOLUTION
        return loss


# ----------------------------------------------------------------------------- schedules

def inverse_time_decay(lr0: float, delta: float):
    """ε_t = ε_0 / (1 + δ t). Returns a function of the step t (t = 0, 1, 2, ...).

    Use it with ``LambdaLR`` by giving the optimizer ``lr=1.0``: LambdaLR multiplies the
    optimizer's lr by the function's value.
    """
    ### BEGIN SOLUTION
    def schedule(t: int) -> float:
        return lr0 / (1.0 + delta * t)
    ### END SOLUTION
    return schedule


def power_decay(lr0: float, delta: float):
    """ε_t = ε_0 / t^δ for t ≥ 1, and ε_0 at t = 0 (LambdaLR starts counting at 0).

    The lecture takes 0.5 < δ ≤ 1, so that Σ ε_t = ∞ while Σ ε_t² < ∞.
    """
    ### BEGIN SOLUTION
    def schedule(t: int) -> float:
        return lr0 / max(t, 1) ** delta
    ### END SOLUTION
    return schedule


# ----------------------------------------------------------------------------- data

def minibatches(X: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool = True,
                generator: torch.Generator | None = None):
    """Yield ``(X[idx], y[idx])`` mini-batches that cover every sample once per epoch.

    The last batch is smaller when N is not a multiple of batch_size. With
    ``shuffle=True`` the order is a fresh ``torch.randperm`` drawn from ``generator``.

    Shape: X (N, ...), y (N,) -> batches (B, ...), (B,) with B ≤ batch_size.
    """
    n = len(X)
    ### BEGIN SOLUTION
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        yield X[idx], y[idx]
    ### END SOLUTION


# ----------------------------------------------------------------------------- initialisation

def init_weights(model: nn.Module, scheme: str) -> nn.Module:
    """Re-initialise every nn.Linear and nn.Conv2d in ``model`` (in place) and return it.

    Weights ~ N(0, σ²) with σ = 0.01 ("normal"), √(1/n_in) ("xavier") or √(2/n_in) ("he"),
    where n_in is the fan-in (in_features, or in_channels · kH · kW). Biases are set to 0.
    """
    if scheme not in ("normal", "xavier", "he"):
        raise ValueError(f"unknown scheme {scheme!r}: use 'normal', 'xavier' or 'he'")
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            ### BEGIN SOLUTION
            n_in = m.weight[0].numel()
            std = {"normal": 0.01, "xavier": math.sqrt(1 / n_in), "he": math.sqrt(2 / n_in)}[scheme]
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
            ### END SOLUTION
    return model
