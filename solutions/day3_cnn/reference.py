"""DAY 3, convolutional networks (畳み込みニューラルネットワーク): reference solutions and experiments.

Single source of truth for the DAY 3 notebook (see solutions/day1_optimization/reference.py
for how `course build` uses it).

References:
    - Goodfellow et al., *Deep Learning*, ch. 9 (convolution, pooling, im2col).
    - Dumoulin & Visin 2016, "A guide to convolution arithmetic for deep learning" (output sizes).
    - He et al. 2016 (ResNet, identity shortcuts); Huang et al. 2017 (DenseNet);
      Howard et al. 2017 (MobileNet, depthwise-separable convolutions).
    - torch.nn.Conv2d / F.unfold / F.max_pool2d docs, which the exercises reproduce.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pair(v) -> tuple[int, int]:
    """3 -> (3, 3); (2, 1) -> (2, 1). Sizes, strides and paddings may be given either way."""
    return (v, v) if isinstance(v, int) else tuple(v)


# ----------------------------------------------------------------------------- convolution

def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length along one spatial dim of a convolution or pooling layer.

    O = ⌊(I + 2P − D(K − 1) − 1) / S⌋ + 1, where D(K − 1) + 1 is the span of a dilated kernel.
    """
    ### BEGIN SOLUTION
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    ### END SOLUTION


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride=1, padding=0) -> torch.Tensor:
    """2-D cross-correlation, as F.conv2d computes it, written as im2col + one matrix product.

    1. pad H and W with zeros on both sides;
    2. F.unfold cuts every K_h × K_w patch into a column: (N, C·K_h·K_w, L), L = H_out·W_out;
    3. weight.view(M, C·K_h·K_w) @ columns gives (N, M, L); add the bias per output channel;
    4. reshape to (N, M, H_out, W_out).

    Shape: x (N, C, H, W), weight (M, C, K_h, K_w), bias (M,) or None -> (N, M, H_out, W_out).
    stride and padding are ints or (h, w) pairs.
    """
    N, C, H, W = x.shape
    M, _, kh, kw = weight.shape
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    ### BEGIN SOLUTION
    x = F.pad(x, (pw, pw, ph, ph))
    cols = F.unfold(x, (kh, kw), stride=(sh, sw))
    out = weight.reshape(M, -1) @ cols
    if bias is not None:
        out = out + bias.reshape(1, M, 1)
    h_out = conv_output_size(H, kh, sh, ph)
    w_out = conv_output_size(W, kw, sw, pw)
    return out.reshape(N, M, h_out, w_out)
    ### END SOLUTION


def max_pool2d(x: torch.Tensor, kernel_size, stride=None) -> torch.Tensor:
    """Max pooling (最大値プーリング) over K × K windows; stride defaults to kernel_size.

    Taking the max with torch's reductions sends each window's gradient to its largest
    entry only (the "switch"), as F.max_pool2d does.
    Shape: (N, C, H, W) -> (N, C, H_out, W_out).
    """
    N, C, H, W = x.shape
    (kh, kw) = pair(kernel_size)
    (sh, sw) = pair(stride if stride is not None else kernel_size)
    ### BEGIN SOLUTION
    cols = F.unfold(x.reshape(N * C, 1, H, W), (kh, kw), stride=(sh, sw))  # (N·C, K·K, L)
    out = cols.max(dim=1).values
    return out.reshape(N, C, conv_output_size(H, kh, sh), conv_output_size(W, kw, sw))
    ### END SOLUTION


def avg_pool2d(x: torch.Tensor, kernel_size, stride=None) -> torch.Tensor:
    """Average pooling (平均値プーリング) over K × K windows; stride defaults to kernel_size.

    Shape: (N, C, H, W) -> (N, C, H_out, W_out).
    """
    N, C, H, W = x.shape
    (kh, kw) = pair(kernel_size)
    (sh, sw) = pair(stride if stride is not None else kernel_size)
    ### BEGIN SOLUTION
    cols = F.unfold(x.reshape(N * C, 1, H, W), (kh, kw), stride=(sh, sw))
    out = cols.mean(dim=1)
    return out.reshape(N, C, conv_output_size(H, kh, sh), conv_output_size(W, kw, sw))
    ### END SOLUTION


class Conv2d(nn.Module):
    """A drop-in for nn.Conv2d (groups=1, dilation=1) built on ``conv2d`` above.

    Same names and shapes as torch, so state_dicts load both ways: ``weight`` (M, C, K, K)
    and ``bias`` (M,) or None. torch's initialisation: both uniform in ±1/√fan_in with
    fan_in = C·K·K (kaiming_uniform_ with a=√5 gives exactly that bound for the weight).
    Shape: (N, C, H, W) -> (N, M, H_out, W_out).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = pair(kernel_size), pair(stride), pair(padding)
        ### BEGIN SOLUTION
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        bound = fan_in ** -0.5
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound)) if bias else None
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)
        ### END SOLUTION


# ----------------------------------------------------------------------------- MobileNet

class DepthwiseSeparableConv(nn.Module):
    """MobileNet's block: a depthwise K × K conv (one filter per channel, groups=in_ch)
    followed by a pointwise 1 × 1 conv that mixes channels. No biases (a BatchNorm follows
    each in MobileNet), so the parameter count is exactly K·K·C + C·M.

    Attributes ``depthwise`` and ``pointwise`` are nn.Conv2d layers.
    Shape: (N, C, H, W) -> (N, M, H_out, W_out), the same H_out, W_out as a K × K conv.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0):
        super().__init__()
        ### BEGIN SOLUTION
        self.depthwise = nn.Conv2d(in_ch, in_ch, kernel_size, stride, padding, groups=in_ch, bias=False)
        self.pointwise = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.pointwise(self.depthwise(x))
        ### END SOLUTION


def conv_cost(in_ch: int, out_ch: int, kernel_size: int, out_h: int, out_w: int,
              depthwise_separable: bool = False) -> tuple[int, int]:
    """(multiply-adds, parameters) of a K × K conv layer without bias producing an
    out_h × out_w map, standard or depthwise-separable.

    Standard:              K·K·C·M per output position, K·K·C·M weights.
    Depthwise-separable:   K·K·C (depthwise) + C·M (pointwise) per position and in weights.
    Multiply-adds are per output position times out_h·out_w.
    """
    ### BEGIN SOLUTION
    k2 = kernel_size * kernel_size
    per_position = k2 * in_ch + in_ch * out_ch if depthwise_separable else k2 * in_ch * out_ch
    return per_position * out_h * out_w, per_position
    ### END SOLUTION


# ----------------------------------------------------------------------------- ResNet, DenseNet

class ResidualBlock(nn.Module):
    """ResNet's basic block with the identity shortcut (スキップ接続):

        y = ReLU(F(x) + x),  F = conv3×3 → BN → ReLU → conv3×3 → BN

    ``self.branch`` is that nn.Sequential (convs without bias, padding 1, so shapes are kept).
    The "+ x" gives the gradient a path that skips the branch: ∂y/∂x ∋ I.
    Shape: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels: int):
        super().__init__()
        ### BEGIN SOLUTION
        self.branch = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return F.relu(self.branch(x) + x)
        ### END SOLUTION


class DenseBlock(nn.Module):
    """DenseNet's block: layer i sees the concatenation of the input and every earlier
    layer's output, and adds ``growth_rate`` new channels.

    ``self.layers[i]`` = BN(C_i) → ReLU → conv3×3(C_i → growth_rate, padding 1, no bias),
    with C_i = in_ch + i·growth_rate. The block returns the concatenation of all of them,
    in_ch + num_layers·growth_rate channels (input first).
    Shape: (N, in_ch, H, W) -> (N, in_ch + num_layers·growth_rate, H, W).
    """

    def __init__(self, in_ch: int, growth_rate: int, num_layers: int):
        super().__init__()
        ### BEGIN SOLUTION
        self.layers = nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(in_ch + i * growth_rate), nn.ReLU(),
                          nn.Conv2d(in_ch + i * growth_rate, growth_rate, 3, padding=1, bias=False))
            for i in range(num_layers))
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)
        ### END SOLUTION


# ----------------------------------------------------------------------------- a CNN for digits

class SimpleCNN(nn.Module):
    """A small VGG-style network for 1 × 28 × 28 digits (≈ 0.2 M parameters).

    ``features``: [conv3×3 → BN → ReLU] × 2 → maxpool 2 → conv3×3 → BN → ReLU → maxpool 2
    ``head``:     flatten → Linear → ReLU → Dropout → Linear(…, num_classes), the last layer
    being the one ``replace_head`` swaps.
    Shape: (N, 1, 28, 28) -> (N, num_classes) logits.
    """

    def __init__(self, num_classes: int = 10, width: int = 16):
        super().__init__()
        ### BEGIN SOLUTION
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2),    # 28 -> 14
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2))  # 14 -> 7
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * w * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.3),
                                  nn.Linear(128, num_classes))
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.head(self.features(x))
        ### END SOLUTION


# ----------------------------------------------------------------------------- transfer learning

def freeze(module: nn.Module) -> nn.Module:
    """Stop training every parameter of ``module`` (requires_grad = False); return it."""
    ### BEGIN SOLUTION
    for p in module.parameters():
        p.requires_grad_(False)
    return module
    ### END SOLUTION


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Swap the *last* nn.Linear of ``model`` (wherever it is nested) for a fresh, trainable
    nn.Linear(in_features, num_classes) on the same device and dtype; return ``model``.

    Works for SimpleCNN (head[-1]), torchvision's ResNet (fc) and VGG (classifier[6]).
    """
    ### BEGIN SOLUTION
    name, old = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None,
                    device=old.weight.device, dtype=old.weight.dtype)
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child, new)
    return model
    ### END SOLUTION


def split_digits(X: torch.Tensor, y: torch.Tensor, digits) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples whose label is in ``digits``, relabelled 0..len(digits)−1."""
    digits = torch.as_tensor(list(digits))
    keep = torch.isin(y, digits)
    return X[keep], torch.searchsorted(digits, y[keep])


def few_labels(X: torch.Tensor, y: torch.Tensor, per_class: int, generator=None):
    """``per_class`` random samples of every class."""
    idx = torch.cat([torch.nonzero(y == c).flatten()[torch.randperm(int((y == c).sum()), generator=generator)[:per_class]]
                     for c in y.unique()])
    return X[idx], y[idx]
