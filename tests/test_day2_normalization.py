"""DAY 2: checks pass the reference and correct variants, and catch realistic mutants."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from solutions.day2_normalization import hidden
from course.checks import day2_normalization as day2
from course.checks import norms_dropout_penalties as norms
from course.checks import (check_activations, check_batch_norm, check_batch_norm_backward, check_batchnorm2d,
                           check_dropout, check_group_norm, check_instance_norm, check_layer_norm, check_penalties)
from solutions.day2_normalization import reference as ref
from tests.mutation import doctored_observations_fail, exercise_tests, seed_sweep_tests

ACTS = dict(sigmoid=ref.sigmoid, tanh=ref.tanh, relu=ref.relu, leaky_relu=ref.leaky_relu, softmax=ref.softmax)

# grade_id -> (function that runs the visible check on a dict of student objects, hidden test, reference objects)
EXERCISES = {
    "activations": (lambda o: check_activations(*o.values()), lambda o: hidden.hidden_activations(*o.values()), ACTS),
    "batch_norm_forward": (lambda o: check_batch_norm(o["batch_norm"]), lambda o: hidden.hidden_batch_norm(o["batch_norm"]),
                           {"batch_norm": ref.batch_norm}),
    "batch_norm_backward": (lambda o: check_batch_norm_backward(o["BatchNormFunction"]),
                            lambda o: hidden.hidden_batch_norm_backward(o["BatchNormFunction"]),
                            {"BatchNormFunction": ref.BatchNormFunction}),
    "batchnorm2d": (lambda o: check_batchnorm2d(o["BatchNorm2d"]), lambda o: hidden.hidden_batchnorm2d(o["BatchNorm2d"]),
                    {"BatchNorm2d": ref.BatchNorm2d}),
    "layer_norm": (lambda o: check_layer_norm(o["layer_norm"]), lambda o: hidden.hidden_layer_norm(o["layer_norm"]),
                   {"layer_norm": ref.layer_norm}),
    "instance_norm": (lambda o: check_instance_norm(o["instance_norm"]),
                      lambda o: hidden.hidden_instance_norm(o["instance_norm"]), {"instance_norm": ref.instance_norm}),
    "group_norm": (lambda o: check_group_norm(o["group_norm"]), lambda o: hidden.hidden_group_norm(o["group_norm"]),
                   {"group_norm": ref.group_norm}),
    "dropout": (lambda o: check_dropout(o["dropout"]), lambda o: hidden.hidden_dropout(o["dropout"]),
                {"dropout": ref.dropout}),
    "weight_penalties": (lambda o: check_penalties(o["l1_penalty"], o["l2_penalty"]),
                         lambda o: hidden.hidden_weight_penalties(o["l1_penalty"], o["l2_penalty"]),
                         {"l1_penalty": ref.l1_penalty, "l2_penalty": ref.l2_penalty}),
}

UNBIASED = ("        var = x.var(dim=dims, unbiased=False)\n", "        var = x.var(dim=dims, unbiased=True)\n")

# (grade_id, name, object to mutate, replacements, words expected in the visible message)
MUTANTS = [
    ("activations", "softmax without subtracting the max", "softmax",
     [("z = x - x.amax(dim=dim, keepdim=True)", "z = x")], "Subtract the maximum"),
    ("activations", "softmax normalised over the wrong dim", "softmax",
     [("e / e.sum(dim=dim, keepdim=True)", "e / e.sum(dim=-1, keepdim=True)")], "softmax"),
    ("activations", "leaky slope on the positive side", "leaky_relu",
     [("torch.where(x > 0, x, negative_slope * x)", "torch.where(x > 0, negative_slope * x, x)")], "negative inputs"),
    ("activations", "tanh as 2σ(x) − 1", "tanh", [("2 * sigmoid(2 * x) - 1", "2 * sigmoid(x) - 1")], "tanh"),
    ("activations", "calls torch.sigmoid", "sigmoid", [("1 / (1 + torch.exp(-x))", "torch.sigmoid(x)")],
     "without calling torch.sigmoid"),
    ("batch_norm_forward", "normalises with the unbiased variance", "batch_norm", [UNBIASED], "unbiased variance"),
    ("batch_norm_forward", "optimizer-style momentum", "batch_norm",
     [("running_mean.mul_(1 - momentum).add_(momentum * mean)", "running_mean.mul_(momentum).add_((1 - momentum) * mean)"),
      ("running_var.mul_(1 - momentum).add_(momentum * var * n / (n - 1))",
       "running_var.mul_(momentum).add_((1 - momentum) * var * n / (n - 1))")], "weights the new batch"),
    ("batch_norm_forward", "running variance biased", "batch_norm",
     [("momentum * var * n / (n - 1)", "momentum * var")], "unbiased variance"),
    ("batch_norm_forward", "running stats rebound, not updated", "batch_norm",
     [("running_mean.mul_(1 - momentum).add_(momentum * mean)", "running_mean = (1 - momentum) * running_mean + momentum * mean")],
     "in place"),
    ("batch_norm_forward", "statistics over dim 0 only", "batch_norm",
     [("mean = x.mean(dim=dims)", "mean = x.mean(dim=0).reshape(x.shape[1], -1).mean(1)"),
      ("var = x.var(dim=dims, unbiased=False)", "var = x.var(dim=0, unbiased=False).reshape(x.shape[1], -1).mean(1)")],
     "batch_norm"),
    ("batch_norm_backward", "drops the x̂·mean(dy·x̂) term", "BatchNormFunction",
     [(" - x_hat * (g * x_hat).mean(dim=dims, keepdim=True)", "")], "both mean terms"),
    ("batch_norm_backward", "dγ without x̂", "BatchNormFunction", [("dgamma = (dy * x_hat).sum(dim=dims)", "dgamma = dy.sum(dim=dims)")],
     "∂L/∂γ"),
    ("batch_norm_backward", "forgets γ in dx", "BatchNormFunction", [("g = dy * gamma.reshape(shape)", "g = dy")], "∂L/∂x"),
    ("batchnorm2d", "running_var starts at zero", "BatchNorm2d",
     [('self.register_buffer("running_var", torch.ones(num_features))',
       'self.register_buffer("running_var", torch.zeros(num_features))')], "running_var=1"),
    ("batchnorm2d", "eval mode still uses batch statistics", "BatchNorm2d",
     [("self.running_var,\n                          self.training,", "self.running_var,\n                          True,")],
     "running statistics"),
    ("batchnorm2d", "no num_batches_tracked buffer", "BatchNorm2d",
     [('self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))', "self.num_batches_tracked = 0")],
     "register_buffer"),
    ("batchnorm2d", "statistics kept as plain attributes", "BatchNorm2d",
     [('self.register_buffer("running_mean", torch.zeros(num_features))', "self.running_mean = torch.zeros(num_features)")],
     "register_buffer"),
    ("layer_norm", "normalises over the batch dim", "layer_norm",
     [("mean = x.mean(dim=dims, keepdim=True)", "mean = x.mean(dim=0, keepdim=True)"),
      ("var = x.var(dim=dims, unbiased=False, keepdim=True)", "var = x.var(dim=0, unbiased=False, keepdim=True)")],
     "last len"),
    ("layer_norm", "unbiased variance", "layer_norm", [("unbiased=False", "unbiased=True")], "layer_norm"),
    ("instance_norm", "statistics over (C, H, W)", "instance_norm",
     [("dim=(2, 3), keepdim=True)\n    var", "dim=(1, 2, 3), keepdim=True)\n    var"), ("dim=(2, 3), unbiased", "dim=(1, 2, 3), unbiased")],
     "separately for every sample and channel"),
    ("instance_norm", "eps outside the square root", "instance_norm", [("torch.sqrt(var + eps)", "(torch.sqrt(var) + eps)")],
     "instance_norm"),
    ("group_norm", "groups formed across the wrong axis", "group_norm",
     [("g = x.reshape(N, num_groups, C // num_groups, H, W)", "g = x.reshape(N, C // num_groups, num_groups, H, W).transpose(1, 2)"),
      ("((g - mean) / torch.sqrt(var + eps)).reshape(N, C, H, W)", "((g - mean) / torch.sqrt(var + eps)).transpose(1, 2).reshape(N, C, H, W)")],
     "consecutive channels"),
    ("group_norm", "unbiased variance", "group_norm", [("unbiased=False", "unbiased=True")], "group_norm"),
    ("dropout", "forgets the 1/(1−p) scaling", "dropout", [("return x * keep.to(x.device) / (1 - p)", "return x * keep.to(x.device)")],
     "1/\\(1 − p\\)"),
    ("dropout", "keeps with probability p", "dropout", [("torch.rand(x.shape, generator=generator) >= p",
                                                         "torch.rand(x.shape, generator=generator) < p")], "probability 1 − p"),
    ("dropout", "ignores the generator", "dropout", [("keep = torch.rand(x.shape, generator=generator)", "keep = torch.rand(x.shape)")],
     "generator"),
    ("dropout", "one mask shared by all rows", "dropout", [("keep = torch.rand(x.shape, generator=generator)",
                                                            "keep = torch.rand(x.shape[-1:], generator=generator)")], "every row"),
    # The escape classes of issue 32, one row per bug: hyper-parameters ignored, values right but gradients
    # wrong, counters kept wrongly, a penalty on the wrong set of parameters.
    ("batchnorm2d", "eps ignored (always 1e-5)", "BatchNorm2d", [("self.momentum, self.eps)", "self.momentum, 1e-5)")],
     "own eps and momentum"),
    ("batchnorm2d", "momentum ignored (always 0.1)", "BatchNorm2d", [("self.momentum, self.eps)", "0.1, self.eps)")],
     "running_mean after step 1"),
    ("batchnorm2d", "counts in eval mode too", "BatchNorm2d", [("if self.training:", "if True:")],
     "counts training forwards only"),
    ("batchnorm2d", "a float counter", "BatchNorm2d", [("torch.tensor(0, dtype=torch.long)", "torch.tensor(0.0)")],
     "0-dim long tensor"),
    ("batch_norm_forward", "batch statistics detached", "batch_norm",
     [("mean = x.mean(dim=dims)", "mean = x.mean(dim=dims).detach()"),
      ("var = x.var(dim=dims, unbiased=False)", "var = x.var(dim=dims, unbiased=False).detach()")], "gradient w.r.t. x"),
    ("batch_norm_forward", "eps ignored", "batch_norm",
     [("torch.sqrt(var.reshape(shape) + eps)", "torch.sqrt(var.reshape(shape) + 1e-5)")], "eps=0.5: y"),
    ("layer_norm", "eps ignored", "layer_norm", [("torch.sqrt(var + eps)", "torch.sqrt(var + 1e-5)")], "eps=0.5"),
    ("layer_norm", "variance detached", "layer_norm",
     [("var = x.var(dim=dims, unbiased=False, keepdim=True)", "var = x.var(dim=dims, unbiased=False, keepdim=True).detach()")],
     "gradient w.r.t. x"),
    ("instance_norm", "eps ignored", "instance_norm", [("torch.sqrt(var + eps)", "torch.sqrt(var + 1e-5)")], "eps=0.5"),
    ("instance_norm", "mean detached", "instance_norm",
     [("mean = x.mean(dim=(2, 3), keepdim=True)", "mean = x.mean(dim=(2, 3), keepdim=True).detach()")], "gradient w.r.t. x"),
    ("group_norm", "eps ignored", "group_norm", [("torch.sqrt(var + eps)", "torch.sqrt(var + 1e-5)")], "eps=0.5"),
    ("group_norm", "mean detached", "group_norm",
     [("mean = g.mean(dim=(2, 3, 4), keepdim=True)", "mean = g.mean(dim=(2, 3, 4), keepdim=True).detach()")],
     "gradient w.r.t. x"),
    ("weight_penalties", "L2 skips the norm layers' weights", "l2_penalty",
     [('if name.endswith("weight")', 'if name.endswith("weight") and p.dim() > 1')], "norm layer's weight"),
    ("weight_penalties", "L1 skips the norm layers' weights", "l1_penalty",
     [('if name.endswith("weight")', 'if name.endswith("weight") and p.dim() > 1')], "norm layer's weight"),
    ("activations", "leaky slope fixed at 0.01", "leaky_relu", [("negative_slope * x)", "0.01 * x)")], "negative_slope=0.2"),
    ("weight_penalties", "L2 includes the biases", "l2_penalty", [('if name.endswith("weight")', "")], "biases"),
    ("weight_penalties", "L2 without the ½", "l2_penalty", [("return 0.5 * sum(", "return sum(")], "½"),
    ("weight_penalties", "L1 with squares", "l1_penalty", [("p.abs().sum()", "(p ** 2).sum()")], "l1_penalty"),
    ("weight_penalties", "returns a float", "l1_penalty", [("p.abs().sum() for name", "p.abs().sum().item() for name")],
     "0-dim tensor"),
]




# ---------------------------------------------------------------- correct, differently written versions

def _bn_variant(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    xt = x.transpose(0, 1).reshape(x.shape[1], -1)  # (C, N·H·W)
    if training:
        mean, var_u = xt.mean(1), xt.var(1)  # unbiased
        n = xt.shape[1]
        var = var_u * (n - 1) / n
        running_mean.lerp_(mean.detach(), momentum)
        running_var.lerp_(var_u.detach(), momentum)
    else:
        mean, var = running_mean, running_var
    shape = [1, -1] + [1] * (x.dim() - 2)
    return (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + eps) * gamma.view(shape) + beta.view(shape)


class _BNVariantFunction(torch.autograd.Function):
    """Backward written in the "staged" form of the computational graph."""

    @staticmethod
    def forward(ctx, x, gamma, beta, eps=1e-5):
        return ref.BatchNormFunction.forward(ctx, x, gamma, beta, eps)

    @staticmethod
    def backward(ctx, dy):
        x_hat, sigma, gamma = ctx.saved_tensors
        dims, shape = ctx.dims, ctx.shape
        m = x_hat.numel() // x_hat.shape[1]
        dxhat = dy * gamma.view(shape)
        dvar = (dxhat * x_hat * -0.5 / sigma ** 2).sum(dims, keepdim=True)  # via σ² = var + eps
        dmean = (-dxhat / sigma).sum(dims, keepdim=True)
        dx = dxhat / sigma + dvar * 2 * x_hat * sigma / m + dmean / m
        return dx, (dy * x_hat).sum(dims), dy.sum(dims), None


def _gn_variant(x, num_groups, weight=None, bias=None, eps=1e-5):
    N, C, H, W = x.shape
    flat = x.reshape(N * num_groups, -1)
    y = ((flat - flat.mean(1, keepdim=True)) / (flat.var(1, unbiased=False, keepdim=True) + eps).sqrt()).view_as(x)
    y = y * weight.view(1, C, 1, 1) if weight is not None else y
    return y + bias.view(1, C, 1, 1) if bias is not None else y


def _dropout_variant(x, p, training, generator=None):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    u = torch.rand(x.shape, generator=generator).to(x.device)
    return torch.where(u < p, torch.zeros_like(x), x / (1 - p))


class _BN2dVariant(nn.BatchNorm2d):
    """Subclassing torch's module is a legitimate way to get the same names; forward is ours."""

    def forward(self, x):
        if self.training:
            self.num_batches_tracked.add_(1)
        return ref.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var, self.training,
                              self.momentum, self.eps)


def _bn_loop_variant(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """One channel at a time, statistics by hand, running stats updated through copy_."""
    outs = []
    for c in range(x.shape[1]):
        xc = x[:, c]
        if training:
            mean = xc.mean()
            var = ((xc - mean) ** 2).mean()
            n = xc.numel()
            running_mean[c].copy_((1 - momentum) * running_mean[c] + momentum * mean.detach())
            running_var[c].copy_((1 - momentum) * running_var[c] + momentum * var.detach() * n / (n - 1))
        else:
            mean, var = running_mean[c], running_var[c]
        outs.append(gamma[c] * (xc - mean) / (var + eps).sqrt() + beta[c])
    return torch.stack(outs, dim=1)


def _bn_var_mean_variant(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    dims = tuple(d for d in range(x.dim()) if d != 1)
    if training:
        var, mean = torch.var_mean(x, dim=dims, correction=0)
        with torch.no_grad():
            n = x.numel() / x.shape[1]
            running_mean.lerp_(mean, momentum)
            running_var.lerp_(var * (n / (n - 1)), momentum)
    else:
        var, mean = running_var, running_mean
    view = (1, -1) + (1,) * (x.dim() - 2)
    return torch.addcmul(beta.view(view), (x - mean.view(view)) / torch.sqrt(var.view(view) + eps), gamma.view(view))


class _BNCompactBackward(_BNVariantFunction):
    """The compact form (CS231n): dx = γ/(mσ) · (m·dy − Σdy − x̂·Σ(dy·x̂))."""

    @staticmethod
    def backward(ctx, dy):
        x_hat, sigma, gamma = ctx.saved_tensors
        m = dy.numel() // dy.shape[1]
        s_dy, s_dyx = dy.sum(ctx.dims, keepdim=True), (dy * x_hat).sum(ctx.dims, keepdim=True)
        dx = gamma.view(ctx.shape) / (m * sigma) * (m * dy - s_dy - x_hat * s_dyx)
        return dx, s_dyx.flatten(), s_dy.flatten(), None


class _BNInPlaceBackward(_BNCompactBackward):
    """The same gradient built in place on a copy."""

    @staticmethod
    def backward(ctx, dy):
        x_hat, sigma, gamma = ctx.saved_tensors
        g = dy.mul(gamma.reshape(ctx.shape))
        dx = g.clone().sub_(g.mean(ctx.dims, keepdim=True)).sub_(x_hat * (g * x_hat).mean(ctx.dims, keepdim=True))
        return dx.div_(sigma), (dy * x_hat).sum(ctx.dims), dy.sum(ctx.dims), None


class _BN2dOtherOrder(nn.Module):
    """Buffers before parameters, bias before weight, add_ for the counter, its own normalisation."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.register_buffer("num_batches_tracked", torch.zeros((), dtype=torch.long))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.weight = nn.Parameter(torch.ones(num_features))
        self.num_features, self.momentum, self.eps = num_features, momentum, eps

    def forward(self, x):
        if self.training:
            self.num_batches_tracked.add_(1)
        return _bn_var_mean_variant(x, self.weight, self.bias, self.running_mean, self.running_var, self.training,
                                    self.momentum, self.eps)


class _BN2dSequentialStyle(nn.Module):
    """Calls the loop version; keeps the hyper-parameters under other names."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(num_features)), nn.Parameter(torch.zeros(num_features))
        for name, value in (("running_mean", torch.zeros(num_features)), ("running_var", torch.ones(num_features)),
                            ("num_batches_tracked", torch.tensor(0))):
            self.register_buffer(name, value)
        self.hp = {"eps": eps, "momentum": momentum}

    def forward(self, x):
        self.num_batches_tracked += int(self.training)
        return _bn_loop_variant(x, self.weight, self.bias, self.running_mean, self.running_var, self.training,
                                self.hp["momentum"], self.hp["eps"])


def _ln_var_mean(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    dims = tuple(range(-len(normalized_shape), 0))
    var, mean = torch.var_mean(x, dim=dims, correction=0, keepdim=True)
    y = (x - mean) * torch.rsqrt(var + eps)
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


def _ln_flatten(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    lead = x.shape[:x.dim() - len(normalized_shape)]
    flat = x.reshape(*lead, -1)
    centred = flat - flat.mean(-1, keepdim=True)
    y = (centred / (centred.pow(2).mean(-1, keepdim=True) + eps).sqrt()).reshape(x.shape)
    y = y * weight if weight is not None else y
    return y + bias if bias is not None else y


def _in_loop(x, weight=None, bias=None, eps=1e-5):
    rows = []
    for n in range(x.shape[0]):
        chans = []
        for c in range(x.shape[1]):
            v = x[n, c]
            out = (v - v.mean()) / torch.sqrt(v.var(unbiased=False) + eps)
            out = out * weight[c] if weight is not None else out
            chans.append(out + bias[c] if bias is not None else out)
        rows.append(torch.stack(chans))
    return torch.stack(rows)


def _in_var_mean(x, weight=None, bias=None, eps=1e-5):
    var, mean = torch.var_mean(x, dim=(-2, -1), correction=0, keepdim=True)
    y = (x - mean) / (var + eps).sqrt()
    C = x.shape[1]
    return y * (weight.view(1, C, 1, 1) if weight is not None else 1) + (bias.view(1, C, 1, 1) if bias is not None else 0)


def _gn_loop(x, num_groups, weight=None, bias=None, eps=1e-5):
    size = x.shape[1] // num_groups
    parts = []
    for g in range(num_groups):
        chunk = x[:, g * size:(g + 1) * size]
        var, mean = torch.var_mean(chunk, dim=(1, 2, 3), correction=0, keepdim=True)
        parts.append((chunk - mean) / torch.sqrt(var + eps))
    y = torch.cat(parts, dim=1)
    if weight is not None:
        y = y * weight[None, :, None, None]
    return y + bias[None, :, None, None] if bias is not None else y


def _gn_chunks(x, num_groups, weight=None, bias=None, eps=1e-5):
    y = torch.cat([(c - c.mean((1, 2, 3), keepdim=True)) / (c.var((1, 2, 3), unbiased=False, keepdim=True) + eps).sqrt()
                   for c in x.chunk(num_groups, dim=1)], dim=1)
    y = y * weight.view(1, -1, 1, 1) if weight is not None else y
    return y + bias.view(1, -1, 1, 1) if bias is not None else y


def _dropout_bernoulli(x, p, training, generator=None):
    if not training or p == 0:
        return x
    keep = torch.bernoulli(torch.full(x.shape, 1 - p, dtype=torch.float64), generator=generator).to(x)
    return x * keep / (1 - p)


def _dropout_inplace(x, p, training, generator=None):
    if not training:
        return x
    if p >= 1:
        return x * 0
    y = x.clone()
    y[torch.rand(x.shape, generator=generator) < p] = 0
    return y.mul_(1 / (1 - p))


def _l1_loop(model):
    total = 0
    for name, p in model.named_parameters():
        if name.split(".")[-1] == "weight":
            total = total + p.abs().sum()
    return total


def _l2_modules(model):
    weights = [m.weight for m in model.modules() if isinstance(getattr(m, "weight", None), nn.Parameter)]
    return torch.stack([w.square().sum() for w in weights]).sum() * 0.5


VARIANTS = [
    ("activations", dict(ACTS, sigmoid=lambda x: torch.exp(-torch.logaddexp(torch.zeros_like(x), -x)),
                         softmax=lambda x, dim: torch.exp(x - torch.logsumexp(x, dim, keepdim=True)),
                         relu=lambda x: x.clamp(min=0), leaky_relu=lambda x, negative_slope=0.01: torch.maximum(x, negative_slope * x))),
    ("batch_norm_forward", {"batch_norm": _bn_variant}),
    ("batch_norm_backward", {"BatchNormFunction": _BNVariantFunction}),
    ("batchnorm2d", {"BatchNorm2d": _BN2dVariant}),
    ("layer_norm", {"layer_norm": lambda x, s, w=None, b=None, eps=1e-5: ref.group_norm(
        x.reshape(-1, 1, 1, x[0].numel() if len(s) == x.dim() - 1 else x.shape[-1]), 1, None, None, eps).reshape(x.shape)
        * (w if w is not None else 1) + (b if b is not None else 0)}),
    ("instance_norm", {"instance_norm": lambda x, w=None, b=None, eps=1e-5: _gn_variant(x, x.shape[1], w, b, eps)}),
    ("group_norm", {"group_norm": _gn_variant}),
    ("dropout", {"dropout": _dropout_variant}),
    ("activations", dict(ACTS, sigmoid=lambda x: torch.where(x >= 0, 1 / (1 + torch.exp(-x)), torch.exp(x) / (1 + torch.exp(x))),
                         tanh=lambda x: torch.sign(x) * (1 - torch.exp(-2 * x.abs())) / (1 + torch.exp(-2 * x.abs())),
                         relu=lambda x: x * (x > 0), leaky_relu=lambda x, negative_slope=0.01: x.clamp(min=0)
                         + negative_slope * x.clamp(max=0),
                         softmax=lambda x, dim: (lambda e: e / e.sum(dim, keepdim=True))(
                             (x - x.max(dim, keepdim=True).values).exp()))),
    ("activations", dict(ACTS, sigmoid=lambda x: torch.reciprocal(1 + torch.exp(-x)),
                         tanh=lambda x: 2 / (1 + torch.exp(-2 * x)) - 1,
                         relu=lambda x: (lambda y: y.masked_fill_(y < 0, 0))(x.clone()),
                         leaky_relu=lambda x, negative_slope=0.01: (lambda y: y.mul_(torch.where(
                             y > 0, torch.ones_like(y), torch.full_like(y, negative_slope))))(x.clone()),
                         softmax=lambda x, dim: (lambda e: e.div_(e.sum(dim, keepdim=True)))(
                             x.sub(x.amax(dim, keepdim=True)).exp_()))),
    ("batch_norm_forward", {"batch_norm": _bn_loop_variant}),
    ("batch_norm_forward", {"batch_norm": _bn_var_mean_variant}),
    ("batch_norm_backward", {"BatchNormFunction": _BNCompactBackward}),
    ("batch_norm_backward", {"BatchNormFunction": _BNInPlaceBackward}),
    ("batchnorm2d", {"BatchNorm2d": _BN2dOtherOrder}),
    ("batchnorm2d", {"BatchNorm2d": _BN2dSequentialStyle}),
    ("layer_norm", {"layer_norm": _ln_var_mean}),
    ("layer_norm", {"layer_norm": _ln_flatten}),
    ("instance_norm", {"instance_norm": _in_loop}),
    ("instance_norm", {"instance_norm": _in_var_mean}),
    ("group_norm", {"group_norm": _gn_loop}),
    ("group_norm", {"group_norm": _gn_chunks}),
    ("dropout", {"dropout": _dropout_bernoulli}),
    ("dropout", {"dropout": _dropout_inplace}),
    ("weight_penalties", {"l1_penalty": _l1_loop, "l2_penalty": _l2_modules}),
    ("weight_penalties", {"l1_penalty": lambda m: sum(p.abs().sum() for n, p in m.named_parameters() if n.endswith(".weight")),
                          "l2_penalty": lambda m: sum(torch.sum(p * p) for n, p in m.named_parameters()
                                                      if n.rsplit(".", 1)[-1] == "weight") / 2}),
    ("weight_penalties", {"l1_penalty": lambda m: sum(torch.linalg.vector_norm(p, 1) for n, p in m.named_parameters() if "weight" in n),
                          "l2_penalty": lambda m: sum(p.pow(2).sum() / 2 for n, p in m.named_parameters() if "weight" in n)}),
]


# reference passes, mutants caught (≥ 2 per exercise), variants pass: see tests/mutation.py
globals().update(exercise_tests(ref, EXERCISES, MUTANTS, VARIANTS))
globals().update(seed_sweep_tests(ref, EXERCISES, MUTANTS, VARIANTS))


def test_verdicts_decide_on_doctored_observations():
    """The judge's verdicts check everything a pass rests on: the reference's honest observations pass,
    and each one doctored as a hostile kernel could (a running mean off by 1e-6, eval mode changing the
    statistics, a source that calls torch, two gradients instead of three, a step left out, a wrong
    counter, a penalty that cannot be backpropagated, a mask that ignores its generator) fails."""
    honest = {
        day2.activations_verdict: day2.activations_run(*ACTS.values(), seed=1),
        day2.batch_norm_verdict: day2.batch_norm_run(ref.batch_norm, seed=1, momentum=0.3, eps=1e-3),
        day2.batch_norm_backward_verdict: day2.batch_norm_backward_run(ref.BatchNormFunction, seed=1, gradcheck=False),
        day2.batchnorm2d_verdict: day2.batchnorm2d_run(ref.BatchNorm2d, seed=1, steps=3),
        norms.dropout_verdict: norms.dropout_run(ref.dropout, seed=1),
        norms.penalties_verdict: norms.penalties_run(ref.l1_penalty, ref.l2_penalty, seed=1, lam=0.03),
    }
    settings = {day2.batch_norm_verdict: dict(momentum=0.3, eps=1e-3), day2.batch_norm_backward_verdict:
                dict(gradcheck=False), day2.batchnorm2d_verdict: dict(steps=3), norms.penalties_verdict: dict(lam=0.03)}
    doctored = [  # (verdict, doctor, what the message says)
        (day2.activations_verdict, lambda r: r["sources"].__setitem__("sigmoid", "def sigmoid(x):\n    return "
                                                                       "torch.sigmoid(x)\n"), "torch.sigmoid"),
        (day2.batch_norm_verdict, lambda r: r["shapes"][1]["train"]["rm"].add_(1e-6), "running_mean"),
        (day2.batch_norm_verdict, lambda r: r["shapes"][0]["eval"]["rv"].mul_(2), "eval mode must only read"),
        (day2.batch_norm_backward_verdict, lambda r: r[0]["grads"].pop(), "three gradients"),
        (day2.batchnorm2d_verdict, lambda r: r["steps"].pop(1), "3 training steps"),
        (day2.batchnorm2d_verdict, lambda r: r["steps"][2].__setitem__("num_batches_tracked", torch.tensor(2)),
         "num_batches_tracked"),
        (norms.penalties_verdict, lambda r: r["l2_penalty"].__setitem__("usable", False), "0-dim tensor"),
        (norms.penalties_verdict, lambda r: r.__setitem__("after_step", None), "after one SGD step"),
        (norms.dropout_verdict, lambda r: r.__setitem__("other_seed", r["same_seed"]), "different generator seeds"),
    ]
    doctored_observations_fail(honest, doctored, seed=1, settings=settings)


def test_a_returned_non_tensor_is_named_in_the_verdict():
    """What the kernel sends for a value that is not a tensor (observed()) keeps its type name."""
    run = norms.layer_norm_run(lambda x, shape, w=None, b=None, eps=1e-5: np.zeros(3), seed=0)
    with pytest.raises(AssertionError, match="returned ndarray"):
        norms.layer_norm_verdict(run, seed=0)
