"""DAY 3: checks pass the reference and correct variants, and catch realistic mutants."""
from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.judge import hidden_test
from solutions.day3_cnn import hidden
from course.checks import cnn_models as models
from course.checks import conv_pieces as conv
from course.checks import simple_cnn_transfer as cnn
from course.checks import (check_conv2d, check_conv2d_module, check_conv_output_size, check_dense_block,
                           check_depthwise_separable, check_pooling, check_residual_block, check_simple_cnn,
                           check_transfer, count_mult_adds)
from solutions.day3_cnn import reference as ref
from tests.mutation import doctored_observations_fail, exercise, exercise_tests, seed_sweep_tests


def _ex(check, hidden_test, names):
    return exercise(check, hidden_test, names, ref)


# grade_id -> (visible check on a dict of student objects, hidden test, reference objects)
EXERCISES = {
    "conv_output_size": _ex(check_conv_output_size, hidden.hidden_conv_output_size, ["conv_output_size"]),
    "conv2d": _ex(check_conv2d, hidden.hidden_conv2d, ["conv2d"]),
    "pooling": _ex(check_pooling, hidden.hidden_pooling, ["max_pool2d", "avg_pool2d"]),
    "conv2d_module": _ex(check_conv2d_module, hidden.hidden_conv2d_module, ["Conv2d"]),
    "depthwise_separable": _ex(check_depthwise_separable, hidden.hidden_depthwise_separable,
                               ["DepthwiseSeparableConv", "conv_cost"]),
    "residual_block": _ex(check_residual_block, hidden.hidden_residual_block, ["ResidualBlock"]),
    "dense_block": _ex(check_dense_block, hidden.hidden_dense_block, ["DenseBlock"]),
    "simple_cnn": _ex(check_simple_cnn, hidden.hidden_simple_cnn, ["SimpleCNN"]),
    "transfer": _ex(check_transfer, hidden.hidden_transfer, ["freeze", "replace_head"]),
}

# (grade_id, name, object to mutate, replacements, words expected in the visible message)
MUTANTS = [
    ("conv_output_size", "off by one (no + 1)", "conv_output_size",
     [("// stride + 1", "// stride")], "forgot the \\+ 1"),
    ("conv_output_size", "padding counted once", "conv_output_size",
     [("size + 2 * padding", "size + padding")], "both sides"),
    ("conv_output_size", "dilation ignored", "conv_output_size",
     [("dilation * (kernel_size - 1) - 1", "kernel_size")], "dilated kernel"),
    ("conv_output_size", "true division", "conv_output_size",
     [("// stride + 1", "/ stride + 1")], "return an int"),
    ("conv2d", "kernel flipped (true convolution)", "conv2d",
     [("out = weight.reshape(M, -1) @ cols", "out = weight.flip(-1, -2).reshape(M, -1) @ cols")],
     "cross-correlation"),
    ("conv2d", "padding on one side only", "conv2d",
     [("x = F.pad(x, (pw, pw, ph, ph))", "x = F.pad(x, (pw, 0, ph, 0))")], "look at the padding"),
    ("conv2d", "stride ignored", "conv2d",
     [("cols = F.unfold(x, (kh, kw), stride=(sh, sw))", "cols = F.unfold(x, (kh, kw))")], "shape"),
    ("conv2d", "bias forgotten", "conv2d", [("out = out + bias.reshape(1, M, 1)", "pass")], "bias is missing"),
    ("conv2d", "padding height and width swapped", "conv2d",
     [("x = F.pad(x, (pw, pw, ph, ph))", "x = F.pad(x, (ph, ph, pw, pw))")], "shape"),
    ("conv2d", "weight detached", "conv2d",
     [("out = weight.reshape(M, -1) @ cols", "out = weight.detach().reshape(M, -1) @ cols")], "no gradient"),
    ("conv2d", "calls F.conv2d", "conv2d",
     [("x = F.pad(x, (pw, pw, ph, ph))", "return F.conv2d(x, weight, bias, stride, padding)")], "yourself"),
    ("pooling", "max pool gradient to every element", "max_pool2d",
     [("out = cols.max(dim=1).values", "out = cols.max(dim=1).values.detach() + cols.sum(1) - cols.sum(1).detach()")],
     "switch"),
    ("pooling", "stride defaults to 1", "max_pool2d",
     [("cols = F.unfold(x.reshape(N * C, 1, H, W), (kh, kw), stride=(sh, sw))  # (N·C, K·K, L)",
       "sh = sw = 1\n    cols = F.unfold(x.reshape(N * C, 1, H, W), (kh, kw), stride=(sh, sw))")],
     "stride equals kernel_size"),
    ("pooling", "average over K instead of K·K", "avg_pool2d",
     [("out = cols.mean(dim=1)", "out = cols.sum(dim=1) / kh")], "K_h·K_w"),
    ("pooling", "min instead of max", "max_pool2d", [("cols.max(dim=1)", "cols.min(dim=1)")], "max_pool2d"),
    ("conv2d_module", "weight as (in, out, K, K)", "Conv2d",
     [("torch.empty(out_channels, in_channels, *self.kernel_size)", "torch.empty(in_channels, out_channels, *self.kernel_size)")],
     "output channels first"),
    ("conv2d_module", "stride not passed on", "Conv2d",
     [("conv2d(x, self.weight, self.bias, self.stride, self.padding)", "conv2d(x, self.weight, self.bias, 1, self.padding)")],
     "Conv2d"),
    ("conv2d_module", "weight not an nn.Parameter", "Conv2d",
     [("self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size).uniform_(-bound, bound))",
       "self.register_buffer('weight', torch.empty(out_channels, in_channels, *self.kernel_size).uniform_(-bound, bound))")],
     "nn.Parameter"),
    ("conv2d_module", "randn initialisation", "Conv2d",
     [("torch.empty(out_channels, in_channels, *self.kernel_size).uniform_(-bound, bound)",
       "torch.randn(out_channels, in_channels, *self.kernel_size)")], "uniform"),
    ("conv2d_module", "bias kept when bias=False", "Conv2d", [(" if bias else None", "")], "bias=False"),
    ("depthwise_separable", "depthwise without groups", "DepthwiseSeparableConv",
     [("stride, padding, groups=in_ch, bias=False)", "stride, padding, bias=False)")], "one 3×3 filter per input"),
    ("depthwise_separable", "pointwise with a K×K kernel", "DepthwiseSeparableConv",
     [("nn.Conv2d(in_ch, out_ch, 1, bias=False)", "nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=False)")],
     "pointwise conv is 1×1"),
    ("depthwise_separable", "cost per position only", "conv_cost",
     [("return per_position * out_h * out_w, per_position", "return per_position, per_position")], "× the"),
    ("depthwise_separable", "depthwise cost K·K·C·M", "conv_cost",
     [("k2 * in_ch + in_ch * out_ch if", "k2 * in_ch * out_ch + in_ch * out_ch if")], "not K·K·C·M"),
    ("depthwise_separable", "(parameters, multiply-adds) order", "conv_cost",
     [("return per_position * out_h * out_w, per_position", "return per_position, per_position * out_h * out_w")],
     "order"),
    ("residual_block", "no shortcut", "ResidualBlock", [("F.relu(self.branch(x) + x)", "F.relu(self.branch(x))")],
     "shortcut is missing"),
    ("residual_block", "ReLU before the addition", "ResidualBlock",
     [("F.relu(self.branch(x) + x)", "F.relu(self.branch(x)) + x")], "after adding"),
    ("residual_block", "padding 0 (shapes shrink)", "ResidualBlock", [("3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()",
                                                                       "3, bias=False), nn.BatchNorm2d(channels), nn.ReLU()")],
     "padding=1"),
    ("residual_block", "shortcut added twice", "ResidualBlock", [("F.relu(self.branch(x) + x)", "F.relu(self.branch(x) + 2 * x)")],
     "ResidualBlock"),
    ("dense_block", "adds instead of concatenating", "DenseBlock",
     [("nn.BatchNorm2d(in_ch + i * growth_rate), nn.ReLU(),\n                          nn.Conv2d(in_ch + i * growth_rate, growth_rate",
       "nn.BatchNorm2d(in_ch), nn.ReLU(),\n                          nn.Conv2d(in_ch, in_ch"),
      ("""        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)""", """        for layer in self.layers:
            x = x + layer(x)
        return x""")], "Concatenate"),
    ("dense_block", "each layer sees only the previous output", "DenseBlock",
     [("nn.BatchNorm2d(in_ch + i * growth_rate), nn.ReLU(),\n                          nn.Conv2d(in_ch + i * growth_rate, growth_rate",
       "nn.BatchNorm2d(in_ch if i == 0 else growth_rate), nn.ReLU(),\n                          nn.Conv2d(in_ch if i == 0 else growth_rate, growth_rate"),
      ("features.append(layer(torch.cat(features, dim=1)))", "features.append(layer(features[-1]))")],
     "not built as the docstring says"),
    ("dense_block", "input left out of the output", "DenseBlock",
     [("return torch.cat(features, dim=1)", "return torch.cat(features[1:], dim=1)")], "channels"),
    ("dense_block", "new features put first", "DenseBlock",
     [("return torch.cat(features, dim=1)", "return torch.cat(features[::-1], dim=1)")], "input first"),
    ("simple_cnn", "softmax applied in forward", "SimpleCNN",
     [("return self.head(self.features(x))", "return self.head(self.features(x)).softmax(dim=1)")], "raw logits"),
    ("simple_cnn", "log_softmax applied in forward", "SimpleCNN",
     [("return self.head(self.features(x))", "return self.head(self.features(x)).log_softmax(dim=1)")], "raw logits"),
    ("simple_cnn", "Linear sized for no pooling", "SimpleCNN",
     [("nn.Linear(2 * w * 7 * 7, 128)", "nn.Linear(2 * w * 28 * 28, 128)")], "mat1 and mat2"),
    ("simple_cnn", "final layer has a fixed 10 outputs", "SimpleCNN",
     [("nn.Linear(128, num_classes)", "nn.Linear(128, 10)")], "num_classes=3"),
    # The escape classes of issue 32: a constructor argument stored but ignored, an optional argument
    # (bias=False) ignored, a class count hard-coded where the spec takes it.
    ("conv2d_module", "stride ignored in forward", "Conv2d",
     [("return conv2d(x, self.weight, self.bias, self.stride, self.padding)",
       "return conv2d(x, self.weight, self.bias, 1, self.padding)")], "stride=2"),
    ("conv2d_module", "bias=False ignored", "Conv2d",
     [("uniform_(-bound, bound)) if bias else None", "uniform_(-bound, bound))")], "bias=False"),
    ("pooling", "max_pool2d's stride ignored", "max_pool2d",
     [("cols = F.unfold(x.reshape(N * C, 1, H, W), (kh, kw), stride=(sh, sw))  # (N·C, K·K, L)",
       "cols = F.unfold(x.reshape(N * C, 1, H, W), (kh, kw), stride=(kh, kw))"),
      ("conv_output_size(H, kh, sh), conv_output_size(W, kw, sw))", "conv_output_size(H, kh, kh), conv_output_size(W, kw, kw))")],
     "stride=2"),
    ("depthwise_separable", "padding ignored", "DepthwiseSeparableConv",
     [("self.depthwise = nn.Conv2d(in_ch, in_ch, kernel_size, stride, padding,",
       "self.depthwise = nn.Conv2d(in_ch, in_ch, kernel_size, stride, 0,")], "padding=1"),
    ("simple_cnn", "num_classes hard-coded to 10", "SimpleCNN", [("nn.Linear(128, num_classes))", "nn.Linear(128, 10))")],
     "num_classes=3"),
    ("simple_cnn", "width ignored", "SimpleCNN", [("        w = width\n", "        w = 16\n")], "width=8"),
    ("transfer", "replace_head's num_classes hard-coded to 10", "replace_head",
     [("new = nn.Linear(old.in_features, num_classes,", "new = nn.Linear(old.in_features, 10,")], "replace_head"),
    ("transfer", "new head in the default dtype", "replace_head",
     [("device=old.weight.device, dtype=old.weight.dtype)", "device=old.weight.device)")], "dtype"),
    ("conv2d_module", "fan-in from one kernel side squared", "Conv2d",
     [("fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]",
       "fan_in = in_channels * self.kernel_size[1] * self.kernel_size[1]")], "both kernel sides"),
    ("conv2d_module", "bias uniform in [0, bound]", "Conv2d",
     [("uniform_(-bound, bound)) if bias else None", "uniform_(0, bound)) if bias else None")], "one sign"),
    ("transfer", "new head without its bias", "replace_head", [("bias=old.bias is not None,", "bias=old.bias is None,")],
     "no bias"),
    ("transfer", "freeze only the top-level parameters", "freeze",
     [("module.parameters()", "module.parameters(recurse=False)")], "nested"),
    ("transfer", "freeze returns nothing", "freeze", [("    return module\n", "")], "return the model"),
    ("transfer", "replace the first Linear", "replace_head",
     [("if isinstance(m, nn.Linear)][-1]", "if isinstance(m, nn.Linear)][0]")], "first Linear"),
    ("transfer", "new head in float32", "replace_head",
     [("device=old.weight.device, dtype=old.weight.dtype", "device=old.weight.device")], "dtype"),
    ("transfer", "head set on the top-level model", "replace_head",
     [("setattr(model.get_submodule(parent_name), child, new)", "setattr(model, child, new)")], "replace_head"),
]




def test_cost_formulas_agree_with_counting_real_layers():
    """The seed's formulas (K·K·C·M against K·K·C + C·M) and a hook count of a real forward pass."""
    for C, M, K, H in ((16, 32, 3, 14), (64, 128, 3, 7)):
        layer = ref.DepthwiseSeparableConv(C, M, K, padding=K // 2)
        madds, params = ref.conv_cost(C, M, K, H, H, depthwise_separable=True)
        assert count_mult_adds(layer, torch.zeros(1, C, H, H)) == madds
        assert sum(p.numel() for p in layer.parameters()) == params
        std_madds, _ = ref.conv_cost(C, M, K, H, H)
        assert std_madds / madds == pytest.approx(1 / (1 / M + 1 / K ** 2))


# ---------------------------------------------------------------- correct, differently written versions

def _conv2d_loops(x, weight, bias=None, stride=1, padding=0):
    """Shift and add: a loop over the kernel's offsets, one strided slice and one einsum per offset."""
    (sh, sw), (ph, pw) = ref.pair(stride), ref.pair(padding)
    x = F.pad(x, (pw, pw, ph, ph))
    M, _, kh, kw = weight.shape
    Ho, Wo = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    out = sum(torch.einsum("nchw,mc->nmhw", x[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw], weight[:, :, i, j])
              for i in range(kh) for j in range(kw))
    return out + bias.view(1, -1, 1, 1) if bias is not None else out


def _max_pool_unfold_view(x, kernel_size, stride=None):
    kh, kw = ref.pair(kernel_size)
    sh, sw = ref.pair(stride or kernel_size)
    return x.unfold(2, kh, sh).unfold(3, kw, sw).amax(dim=(-1, -2))


def _avg_pool_unfold_view(x, kernel_size, stride=None):
    kh, kw = ref.pair(kernel_size)
    sh, sw = ref.pair(stride or kernel_size)
    return x.unfold(2, kh, sh).unfold(3, kw, sw).mean(dim=(-1, -2))


class _Conv2dKaiming(nn.Module):
    """Initialised the way nn.Conv2d does it, with kaiming_uniform_(a=√5)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.stride, self.padding = stride, padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *ref.pair(kernel_size)))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        if bias:
            bound = 1 / (in_channels * self.weight[0, 0].numel()) ** 0.5
            self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound))
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        return _conv2d_loops(x, self.weight, self.bias, self.stride, self.padding)


class _DSCVariant(nn.Sequential):
    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0):
        super().__init__()
        self.add_module("depthwise", nn.Conv2d(in_ch, in_ch, kernel_size, stride, padding, groups=in_ch, bias=False))
        self.add_module("pointwise", nn.Conv2d(in_ch, out_ch, (1, 1), bias=False))


def _cost_variant(in_ch, out_ch, kernel_size, out_h, out_w, depthwise_separable=False):
    positions = out_h * out_w
    if depthwise_separable:
        dw, pw = kernel_size ** 2 * in_ch, in_ch * out_ch
        return positions * dw + positions * pw, dw + pw
    return positions * kernel_size ** 2 * in_ch * out_ch, kernel_size ** 2 * in_ch * out_ch


class _ResVariant(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.branch = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels),
                                    nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
                                    nn.BatchNorm2d(channels))
        self.act = nn.ReLU()

    def forward(self, x):
        out = self.branch(x)
        out += x  # in place on the branch output, as torchvision's BasicBlock does
        return self.act(out)


class _DenseVariant(nn.Module):
    """Keeps a growing tensor instead of a list."""

    def __init__(self, in_ch, growth_rate, num_layers):
        super().__init__()
        self.layers = nn.ModuleList()
        for i in range(num_layers):
            c = in_ch + i * growth_rate
            self.layers.append(nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, growth_rate, 3, padding=1, bias=False)))

    def forward(self, x):
        for layer in self.layers:
            x = torch.cat((x, layer(x)), 1)
        return x


class _LeNetish(nn.Module):
    """A different but working architecture: LeNet-5-like with ReLU, strided second conv."""

    def __init__(self, num_classes=10, width=16):
        super().__init__()
        w = 2 * width  # its own use of the width
        self.net = nn.Sequential(nn.Conv2d(1, w, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(w, 2 * w, 5, padding=2, stride=2), nn.ReLU(),
                                 nn.Flatten(), nn.Linear(2 * w * 7 * 7, 256), nn.ReLU(), nn.Linear(256, num_classes))

    def forward(self, x):
        return self.net(x)


def _freeze_variant(module):
    module.requires_grad_(False)
    return module


def _replace_head_variant(model, num_classes):
    """Walks the dotted name by hand, indexing Sequentials."""
    name = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    *parents, leaf = name.split(".")
    parent = model
    for part in parents:
        parent = parent[int(part)] if part.isdigit() else getattr(parent, part)
    old = parent[int(leaf)] if leaf.isdigit() else getattr(parent, leaf)
    new = nn.Linear(old.in_features, num_classes).to(old.weight)
    if leaf.isdigit():
        parent[int(leaf)] = new
    else:
        setattr(parent, leaf, new)
    return model


def _conv2d_per_position(x, weight, bias=None, stride=1, padding=0):
    """A loop over the output positions, one einsum per window."""
    (sh, sw), (ph, pw) = ref.pair(stride), ref.pair(padding)
    x = F.pad(x, (pw, pw, ph, ph))
    M, _, kh, kw = weight.shape
    Ho, Wo = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    out = x.new_zeros(x.shape[0], M, Ho, Wo)
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = torch.einsum("nckl,mckl->nm", x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw], weight)
    return out if bias is None else out + bias[None, :, None, None]


def _conv2d_unfold_padding(x, weight, bias=None, stride=1, padding=0):
    """F.unfold pads by itself; the columns are multiplied with einsum."""
    M, C, kh, kw = weight.shape
    (sh, sw), (ph, pw) = ref.pair(stride), ref.pair(padding)
    cols = F.unfold(x, (kh, kw), padding=(ph, pw), stride=(sh, sw))
    out = torch.einsum("mk,nkl->nml", weight.flatten(1), cols)
    if bias is not None:
        out = out + bias[:, None]
    Ho, Wo = (x.shape[2] + 2 * ph - kh) // sh + 1, (x.shape[3] + 2 * pw - kw) // sw + 1
    return out.view(x.shape[0], M, Ho, Wo)


def _pool_windows(x, kernel_size, stride, reduce):
    """Every window offset as one strided slice, stacked and reduced."""
    kh, kw = ref.pair(kernel_size)
    sh, sw = ref.pair(kernel_size if stride is None else stride)
    Ho, Wo = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    slices = [x[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw] for i in range(kh) for j in range(kw)]
    return reduce(torch.stack(slices))


def _pool_loops(x, kernel_size, stride, reduce):
    kh, kw = ref.pair(kernel_size)
    sh, sw = ref.pair(stride or kernel_size)
    rows = []
    for i in range(0, x.shape[2] - kh + 1, sh):
        rows.append(torch.stack([reduce(x[:, :, i:i + kh, j:j + kw].flatten(2)) for j in range(0, x.shape[3] - kw + 1, sw)],
                                dim=-1))
    return torch.stack(rows, dim=-2)


class _Conv2dRegistered(nn.Module):
    """register_parameter for both, kernel size kept as given, calls the reference conv2d."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        kh, kw = ref.pair(kernel_size)
        bound = 1 / math.sqrt(in_channels * kh * kw)
        self.register_parameter("weight", nn.Parameter(torch.rand(out_channels, in_channels, kh, kw) * 2 * bound - bound))
        self.register_parameter("bias", nn.Parameter(torch.rand(out_channels) * 2 * bound - bound) if bias else None)
        self.conv_args = dict(stride=stride, padding=padding)

    def forward(self, x):
        return ref.conv2d(x, self.weight, self.bias, **self.conv_args)


class _Conv2dInit(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.stride, self.padding = ref.pair(stride), ref.pair(padding)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *ref.pair(kernel_size)))
        bound = self.weight[0].numel() ** -0.5
        nn.init.uniform_(self.weight, -bound, bound)
        self.bias = nn.Parameter(nn.init.uniform_(torch.empty(out_channels), -bound, bound)) if bias else None

    def forward(self, x):
        return _conv2d_unfold_padding(x, self.weight, self.bias, self.stride, self.padding)


class _DSCPointwiseFirst(nn.Module):
    """Attributes declared pointwise first; explicit forward."""

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0):
        super().__init__()
        self.pointwise = nn.Conv2d(in_channels=in_ch, out_channels=out_ch, kernel_size=1, bias=False)
        self.depthwise = nn.Conv2d(in_channels=in_ch, out_channels=in_ch, kernel_size=kernel_size, stride=stride,
                                   padding=padding, groups=in_ch, bias=False)

    def forward(self, x):
        h = self.depthwise(x)
        return self.pointwise(h)


def _cost_from_layers(in_ch, out_ch, kernel_size, out_h, out_w, depthwise_separable=False):
    """Counts the weights of the real layers and multiplies by the positions."""
    if depthwise_separable:
        layers = [nn.Conv2d(in_ch, in_ch, kernel_size, groups=in_ch, bias=False, device="meta"),
                  nn.Conv2d(in_ch, out_ch, 1, bias=False, device="meta")]
    else:
        layers = [nn.Conv2d(in_ch, out_ch, kernel_size, bias=False, device="meta")]
    weights = sum(layer.weight.numel() for layer in layers)
    return weights * out_h * out_w, weights


class _ResFunctional(nn.Module):
    def __init__(self, channels):
        super().__init__()
        layers = []
        for last in (False, True):
            layers += [nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(channels)]
            if not last:
                layers.append(nn.ReLU())
        self.branch = nn.Sequential(*layers)

    def forward(self, x):
        return torch.relu(torch.add(x, self.branch(x)))


class _DenseUnpacked(nn.Module):
    """Layers appended in a loop; each step concatenates *features."""

    def __init__(self, in_ch, growth_rate, num_layers):
        super().__init__()
        self.layers = nn.ModuleList()
        channels = in_ch
        for _ in range(num_layers):
            self.layers.append(nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                                             nn.Conv2d(channels, growth_rate, kernel_size=3, padding=1, bias=False)))
            channels += growth_rate

    def forward(self, x):
        features = (x,)
        for layer in self.layers:
            features = (*features, layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


class _SimpleCNNExplicit(nn.Module):
    """The stated layers as named attributes and an explicit functional forward."""

    def __init__(self, num_classes=10, width=16):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width)
        self.fc1, self.drop, self.fc2 = nn.Linear(2 * width * 49, 128), nn.Dropout(0.3), nn.Linear(128, num_classes)

    def forward(self, x):
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        x = F.max_pool2d(F.relu(self.bn3(self.conv3(F.max_pool2d(x, 2)))), 2)
        return self.fc2(self.drop(F.relu(self.fc1(x.flatten(1)))))


def _freeze_loop(module):
    for p in module.parameters():
        p.requires_grad = False
    return module


def _replace_head_reversed(model, num_classes):
    """The last Linear found by walking the modules backwards; the parent found by its dotted name."""
    for name, m in reversed(list(model.named_modules())):
        if isinstance(m, nn.Linear):
            break
    parent, _, leaf = name.rpartition(".")
    holder = model.get_submodule(parent) if parent else model
    fresh = nn.Linear(m.in_features, num_classes, bias=m.bias is not None).to(device=m.weight.device, dtype=m.weight.dtype)
    holder.add_module(leaf, fresh)
    return model


VARIANTS = [
    ("conv_output_size", {"conv_output_size": lambda size, kernel_size, stride=1, padding=0, dilation=1:
                          math.floor((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1}),
    ("conv_output_size", {"conv_output_size": lambda size, kernel_size, stride=1, padding=0, dilation=1:
                          len(range(0, size + 2 * padding - dilation * (kernel_size - 1), stride))}),
    ("conv2d", {"conv2d": _conv2d_per_position}),
    ("conv2d", {"conv2d": _conv2d_unfold_padding}),
    ("pooling", {"max_pool2d": lambda x, k, stride=None: _pool_windows(x, k, stride, lambda t: t.amax(0)),
                 "avg_pool2d": lambda x, k, stride=None: _pool_windows(x, k, stride, lambda t: t.mean(0))}),
    ("pooling", {"max_pool2d": lambda x, k, stride=None: _pool_loops(x, k, stride, lambda t: t.max(-1).values),
                 "avg_pool2d": lambda x, k, stride=None: _pool_loops(x, k, stride, lambda t: t.sum(-1) / t.shape[-1])}),
    ("conv2d_module", {"Conv2d": _Conv2dRegistered}),
    ("conv2d_module", {"Conv2d": _Conv2dInit}),
    ("depthwise_separable", {"DepthwiseSeparableConv": _DSCPointwiseFirst, "conv_cost": _cost_from_layers}),
    ("depthwise_separable", {"DepthwiseSeparableConv": _DSCVariant, "conv_cost": _cost_from_layers}),
    ("residual_block", {"ResidualBlock": _ResFunctional}),
    ("dense_block", {"DenseBlock": _DenseUnpacked}),
    ("simple_cnn", {"SimpleCNN": _SimpleCNNExplicit}),
    ("transfer", {"freeze": _freeze_loop, "replace_head": _replace_head_reversed}),
    ("transfer", {"freeze": _freeze_variant, "replace_head": _replace_head_reversed}),
    ("conv_output_size", {"conv_output_size": lambda size, kernel_size, stride=1, padding=0, dilation=1:
                          int((size + 2 * padding - (dilation * (kernel_size - 1) + 1)) / stride) + 1}),
    ("conv2d", {"conv2d": _conv2d_loops}),
    ("pooling", {"max_pool2d": _max_pool_unfold_view, "avg_pool2d": _avg_pool_unfold_view}),
    ("conv2d_module", {"Conv2d": _Conv2dKaiming}),
    ("depthwise_separable", {"DepthwiseSeparableConv": _DSCVariant, "conv_cost": _cost_variant}),
    ("residual_block", {"ResidualBlock": _ResVariant}),
    ("dense_block", {"DenseBlock": _DenseVariant}),
    ("simple_cnn", {"SimpleCNN": _LeNetish}),
    ("transfer", {"freeze": _freeze_variant, "replace_head": _replace_head_variant}),
]


# SimpleCNN's hidden test trains on one fixed seed (solutions/day3_cnn/hidden.py): only its shape part is swept
SEED_FREE = {"simple_cnn": (lambda o: hidden_test("test_simple_cnn", hidden.SIMPLE_CNN_SHAPES, o["SimpleCNN"]),
                            lambda o: hidden_test("test_simple_cnn", hidden.SIMPLE_CNN_TRAINING, o["SimpleCNN"]))}
# reference passes, mutants caught (≥ 2 per exercise), variants pass: see tests/mutation.py
globals().update(exercise_tests(ref, EXERCISES, MUTANTS, VARIANTS, SEED_FREE))
globals().update(seed_sweep_tests(ref, EXERCISES, MUTANTS, VARIANTS, SEED_FREE))


def test_verdicts_decide_on_doctored_observations():
    """The judge's verdicts check everything a pass rests on: the reference's honest observations pass,
    and each one doctored as a hostile kernel could fails (a size as a float, a conv2d output off by
    1e-6, a missing weight gradient, a pooled output that needs no grad, a max-pool gradient spread over
    a window, a branch state_dict with a missing BatchNorm buffer, a shortcut gradient left out, a
    DenseBlock seen in one mode only, a Conv2d weight gradient doubled or initialised 3× too wide, a
    depthwise conv without groups, a cost pair reversed, softmax logits, a trained SimpleCNN that
    predicts one class, a head that is the old object, a layer un-frozen, ResNet's fc left alone)."""
    shapes = cnn.simple_cnn_run(ref.SimpleCNN, seed=5, train=False)
    trained = functools.partial(cnn.simple_cnn_verdict, train=True)  # its observations: labels as predictions
    honest = {
        conv.conv_output_size_verdict: conv.conv_output_size_run(ref.conv_output_size, seed=5),
        conv.conv2d_verdict: conv.conv2d_run(ref.conv2d, seed=5, gradcheck=False),
        conv.pooling_verdict: conv.pooling_run(ref.max_pool2d, ref.avg_pool2d, seed=5),
        conv.residual_block_verdict: conv.residual_block_run(ref.ResidualBlock, seed=5),
        conv.dense_block_verdict: conv.dense_block_run(ref.DenseBlock, seed=5),
        models.conv2d_module_verdict: models.conv2d_module_run(ref.Conv2d, seed=5),
        models.depthwise_separable_verdict: models.depthwise_separable_run(ref.DepthwiseSeparableConv, ref.conv_cost,
                                                                           seed=5),
        cnn.simple_cnn_verdict: shapes,
        trained: dict(shapes, predictions=cnn._test_labels().clone()),
        cnn.transfer_verdict: cnn.transfer_run(ref.freeze, ref.replace_head, seed=5),
    }
    settings = {conv.conv2d_verdict: {"gradcheck": False}, cnn.simple_cnn_verdict: {"train": False}}
    doctored = [  # (verdict, doctor, what the message says)
        (conv.conv_output_size_verdict, lambda o: o.__setitem__(7, float(o[7])), "return an int"),
        (conv.conv2d_verdict, lambda o: o["cases"][2]["y"].add_(1e-6), "max abs err"),
        (conv.conv2d_verdict, lambda o: o["cases"][1]["grads"].__setitem__(1, None), "no gradient reaches weight"),
        (conv.pooling_verdict, lambda o: o["cases"][3].__setitem__("requires_grad", False), "does not require grad"),
        (conv.pooling_verdict, lambda o: o["cases"][0]["grad"].add_(0.5), "only the largest entry"),
        (conv.residual_block_verdict, lambda o: o["modes"][1]["state"].pop("1.running_var"), "not built as"),
        (conv.residual_block_verdict, lambda o: o["zeroed"].__setitem__("grad", None), "shortcut"),
        (conv.dense_block_verdict, lambda o: o[2]["modes"].pop(), "train and eval"),
        (models.conv2d_module_verdict, lambda o: o["cases"][0]["shapes"].__setitem__("weight", [3, 5, 3, 3]),
         "output channels first"),
        (models.conv2d_module_verdict, lambda o: o["cases"][1]["y"].add_(1e-6), "max abs err"),
        (models.conv2d_module_verdict, lambda o: o["cases"][2]["grads"]["weight"].mul_(2), "gradient of sum"),
        (models.conv2d_module_verdict, lambda o: o["cases"][0]["grads"].__setitem__("bias", None), "no gradient"),
        (models.conv2d_module_verdict, lambda o: o["init"]["weight"].mul_(3), "initialise it like torch"),
        (models.depthwise_separable_verdict, lambda o: o["layers"][0]["depthwise"].__setitem__("groups", 1),
         "one 3×3 filter"),
        (models.depthwise_separable_verdict, lambda o: o["layers"][2]["y"].add_(1e-6), "max abs err"),
        (models.depthwise_separable_verdict, lambda o: o["costs"][1][1].reverse(), "order"),
        (cnn.simple_cnn_verdict, lambda o: o["models"][0].__setitem__("logits", o["models"][0]["logits"].softmax(1)),
         "raw logits"),
        (cnn.simple_cnn_verdict, lambda o: o["models"][1].__setitem__("last_linear", 10), "num_classes=3"),
        (cnn.simple_cnn_verdict, lambda o: o.__setitem__("n_params", 2_000_000), "1,000,000"),
        (trained, lambda o: o["predictions"].zero_(), "test accuracy"),
        (trained, lambda o: o.pop("predictions"), "test digits"),
        (cnn.transfer_verdict, lambda o: o["freeze"]["still"].append("0.0.weight"), "still require grad"),
        (cnn.transfer_verdict, lambda o: o["replace"][0].__setitem__("head_is_old", True), "new nn.Linear"),
        (cnn.transfer_verdict, lambda o: o["replace"][1].__setitem__("dtype", "torch.float32"), "dtype"),
        (cnn.transfer_verdict, lambda o: o["replace"][0]["layers"]["0.1"].__setitem__("frozen", False), "un-froze"),
        (cnn.transfer_verdict, lambda o: o["replace"][1]["layers"].pop("1.0"), "observed"),
        (cnn.transfer_verdict, lambda o: o["resnet"].__setitem__("replaced", False), "resnet.fc"),
    ]
    doctored_observations_fail(honest, doctored, seed=5, settings=settings)
