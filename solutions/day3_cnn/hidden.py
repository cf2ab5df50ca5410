"""Hidden tests of DAY 3: the visible checks again with fresh seeds (new shapes and data order)."""
from __future__ import annotations

from autograder.hidden import run_hidden as _run
from course.checks import (check_conv2d, check_conv2d_module, check_conv_output_size, check_dense_block,
                           check_depthwise_separable, check_pooling, check_residual_block, check_simple_cnn,
                           check_transfer)

# The bug planted in the bundled "buggy" sample: a residual block without its shortcut.
SAMPLE_BUG = {
    "cell": "residual_block",
    "replace": [("        return F.relu(self.branch(x) + x)\n", "        return F.relu(self.branch(x))\n")],
}


def hidden_conv_output_size(conv_output_size):
    _run("conv_output_size", check_conv_output_size, conv_output_size)


def hidden_conv2d(conv2d):
    _run("conv2d", check_conv2d, conv2d)


def hidden_pooling(max_pool2d, avg_pool2d):
    _run("max_pool2d and avg_pool2d", check_pooling, max_pool2d, avg_pool2d)


def hidden_conv2d_module(Conv2d):
    _run("Conv2d", check_conv2d_module, Conv2d)


def hidden_depthwise_separable(DepthwiseSeparableConv, conv_cost):
    _run("DepthwiseSeparableConv and conv_cost", check_depthwise_separable, DepthwiseSeparableConv, conv_cost)


def hidden_residual_block(ResidualBlock):
    _run("ResidualBlock", check_residual_block, ResidualBlock)


def hidden_dense_block(DenseBlock):
    _run("DenseBlock", check_dense_block, DenseBlock)


def hidden_simple_cnn(SimpleCNN):
    _run("SimpleCNN (trained on a fresh sample order)", check_simple_cnn, SimpleCNN, repeats=1)


def hidden_transfer(freeze, replace_head):
    _run("freeze and replace_head", check_transfer, freeze, replace_head)
