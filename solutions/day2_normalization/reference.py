"""DAY 2, normalization and regularization (前処理と工夫): reference solutions and experiments.

Single source of truth for the DAY 2 notebook (see solutions/day1_optimization/reference.py
for how `course build` uses it).

References:
    - Ioffe & Szegedy 2015 (Batch Normalization); Ba et al. 2016 (Layer Normalization);
      Ulyanov et al. 2016 (Instance Normalization); Wu & He 2018 (Group Normalization).
    - Srivastava et al. 2014 (Dropout); Goodfellow et al., *Deep Learning*, ch. 7.
    - torch.nn.functional.batch_norm / layer_norm / instance_norm / group_norm docs.
"""
from __future__ import annotations

import torch
from torch import nn


# ----------------------------------------------------------------------------- activations


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """σ(x) = 1 / (1 + e^{−x}). Shape: any -> same."""
    ### BEGIN SOLUTION
    return 1 / (1 + torch.exp(-x))
    ### END SOLUTION


def tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) = 2σ(2x) − 1. Shape: any -> same."""
    ### BEGIN SOLUTION
    return 2 * sigmoid(2 * x) - 1
    ### END SOLUTION


def relu(x: torch.Tensor) -> torch.Tensor:
    """max(0, x). Shape: any -> same."""
    ### BEGIN SOLUTION
    return torch.where(x > 0, x, torch.zeros_like(x))
    ### END SOLUTION


def leaky_relu(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """x for x > 0, negative_slope · x otherwise. Shape: any -> same."""
    ### BEGIN SOLUTION
    return torch.where(x > 0, x, negative_slope * x)
    ### END SOLUTION


def softmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """exp(x_i) / Σ_j exp(x_j) along ``dim``, computed stably: subtract the max first.

    Shape: any -> same; entries along ``dim`` sum to 1.
    """
    ### BEGIN SOLUTION
    z = x - x.amax(dim=dim, keepdim=True)
    e = torch.exp(z)
    return e / e.sum(dim=dim, keepdim=True)
    ### END SOLUTION


# ----------------------------------------------------------------------------- batch norm

def batch_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, running_mean: torch.Tensor,
               running_var: torch.Tensor, training: bool, momentum: float = 0.1, eps: float = 1e-5) -> torch.Tensor:
    """Batch normalization (バッチ正規化) over every dim except the channel dim 1.

    Training:  μ, σ² = mean and *biased* variance over (N, H, W) per channel;
               y = γ (x − μ) / √(σ² + ε) + β;
               running_mean ← (1 − momentum) running_mean + momentum μ        (in place)
               running_var  ← (1 − momentum) running_var + momentum σ²_unbiased
    Eval:      the running statistics replace μ and σ².

    Note: BatchNorm's momentum weights the *new* value, the opposite of optimizer momentum.
    Shape: x (N, C) or (N, C, H, W); gamma, beta, running_* (C,) -> y like x.
    """
    dims = [0] + list(range(2, x.dim()))  # every dim but the channels
    shape = [1, -1] + [1] * (x.dim() - 2)  # (1, C) or (1, C, 1, 1) to broadcast per channel
    if training:
        ### BEGIN SOLUTION
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, unbiased=False)
        n = x.numel() // x.shape[1]
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(momentum * mean)
            running_var.mul_(1 - momentum).add_(momentum * var * n / (n - 1))
        ### END SOLUTION
    else:
        mean, var = running_mean, running_var
    ### BEGIN SOLUTION
    x_hat = (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps)
    return gamma.reshape(shape) * x_hat + beta.reshape(shape)
    ### END SOLUTION


class BatchNormFunction(torch.autograd.Function):
    """Training-mode batch norm with a hand-written backward pass.

    Forward: y = γ x̂ + β, x̂ = (x − μ) / σ, σ = √(var + ε), statistics over all dims but 1.
    Backward, with m the number of values per channel and sums over those values:
        ∂L/∂β = Σ dy,    ∂L/∂γ = Σ dy · x̂,
        ∂L/∂x = (γ / σ) · (dy − mean(dy) − x̂ · mean(dy · x̂))

    Shape: x (N, C) or (N, C, H, W); gamma, beta (C,).
    """

    @staticmethod
    def forward(ctx, x, gamma, beta, eps=1e-5):
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        mean = x.mean(dim=dims, keepdim=True)
        sigma = torch.sqrt(x.var(dim=dims, unbiased=False, keepdim=True) + eps)
        x_hat = (x - mean) / sigma
        ctx.save_for_backward(x_hat, sigma, gamma)
        ctx.dims, ctx.shape = dims, shape
        return gamma.reshape(shape) * x_hat + beta.reshape(shape)

    @staticmethod
    def backward(ctx, dy):
        x_hat, sigma, gamma = ctx.saved_tensors
        dims, shape = ctx.dims, ctx.shape
        ### BEGIN SOLUTION
        dbeta = dy.sum(dim=dims)
        dgamma = (dy * x_hat).sum(dim=dims)
        g = dy * gamma.reshape(shape)  # ∂L/∂x̂
        dx = (g - g.mean(dim=dims, keepdim=True) - x_hat * (g * x_hat).mean(dim=dims, keepdim=True)) / sigma
        ### END SOLUTION
        return dx, dgamma, dbeta, None


class BatchNorm2d(nn.Module):
    """A drop-in for nn.BatchNorm2d built on ``batch_norm`` above.

    Same names as torch, so state_dicts load both ways: parameters ``weight`` (γ, ones)
    and ``bias`` (β, zeros); buffers ``running_mean`` (zeros), ``running_var`` (ones) and
    ``num_batches_tracked`` (a long scalar, +1 per training forward).
    Shape: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        ### BEGIN SOLUTION
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        if self.training:
            self.num_batches_tracked += 1
        return batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var,
                          self.training, self.momentum, self.eps)
        ### END SOLUTION


# ----------------------------------------------------------------------------- other norms

def layer_norm(x: torch.Tensor, normalized_shape: tuple[int, ...], weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None, eps: float = 1e-5) -> torch.Tensor:
    """Layer normalization: statistics over the last len(normalized_shape) dims of each sample.

    Shape: x (..., *normalized_shape); weight, bias normalized_shape -> like x.
    """
    dims = tuple(range(x.dim() - len(normalized_shape), x.dim()))
    ### BEGIN SOLUTION
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, unbiased=False, keepdim=True)
    y = (x - mean) / torch.sqrt(var + eps)
    ### END SOLUTION
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def instance_norm(x: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                  eps: float = 1e-5) -> torch.Tensor:
    """Instance normalization: statistics over (H, W) for each sample and channel.

    Shape: x (N, C, H, W); weight, bias (C,) -> (N, C, H, W).
    """
    ### BEGIN SOLUTION
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), unbiased=False, keepdim=True)
    y = (x - mean) / torch.sqrt(var + eps)
    ### END SOLUTION
    if weight is not None:
        y = y * weight.reshape(1, -1, 1, 1)
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return y


def group_norm(x: torch.Tensor, num_groups: int, weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None, eps: float = 1e-5) -> torch.Tensor:
    """Group normalization: channels are split into ``num_groups`` consecutive groups;
    statistics over (C/G, H, W) per sample and group. G = 1 is LayerNorm over (C, H, W),
    G = C is InstanceNorm.

    Shape: x (N, C, H, W); weight, bias (C,) -> (N, C, H, W).
    """
    N, C, H, W = x.shape
    ### BEGIN SOLUTION
    g = x.reshape(N, num_groups, C // num_groups, H, W)  # consecutive channels share a group
    mean = g.mean(dim=(2, 3, 4), keepdim=True)
    var = g.var(dim=(2, 3, 4), unbiased=False, keepdim=True)
    y = ((g - mean) / torch.sqrt(var + eps)).reshape(N, C, H, W)
    ### END SOLUTION
    if weight is not None:
        y = y * weight.reshape(1, -1, 1, 1)
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return y


# ----------------------------------------------------------------------------- regularization

def dropout(x: torch.Tensor, p: float, training: bool, generator: torch.Generator | None = None) -> torch.Tensor:
    """Inverted dropout: zero each entry with probability p and scale survivors by 1/(1 − p),
    so the expected value is unchanged and evaluation needs no rescaling.

    The mask is drawn with ``torch.rand(x.shape, generator=generator)`` on the CPU.
    Shape: any -> same.
    """
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    ### BEGIN SOLUTION
    keep = torch.rand(x.shape, generator=generator) >= p
    return x * keep.to(x.device) / (1 - p)
    ### END SOLUTION


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """Σ |w| over every parameter named ``*.weight`` (biases excluded)."""
    ### BEGIN SOLUTION
    return sum(p.abs().sum() for name, p in model.named_parameters() if name.endswith("weight"))
    ### END SOLUTION


def l2_penalty(model: nn.Module) -> torch.Tensor:
    """½ Σ w² over every parameter named ``*.weight`` (biases excluded).

    The ½ makes the gradient of λ · l2_penalty equal λ w: exactly SGD's weight_decay=λ.
    """
    ### BEGIN SOLUTION
    return 0.5 * sum((p ** 2).sum() for name, p in model.named_parameters() if name.endswith("weight"))
    ### END SOLUTION
