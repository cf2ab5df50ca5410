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


# Training accuracy after 150 steps varies by about ±0.01 from seed to seed, so the training run uses
# one fixed seed (weights, sample order, dropout): its verdict is the same at every grading.
TRAINING_SEED = 0


def hidden_simple_cnn(SimpleCNN):
    hidden_simple_cnn_shapes(SimpleCNN)
    hidden_simple_cnn_training(SimpleCNN)


def hidden_simple_cnn_shapes(SimpleCNN):
    _run("SimpleCNN (shapes and logits)", check_simple_cnn, SimpleCNN, train=False)


def hidden_simple_cnn_training(SimpleCNN):
    _run("SimpleCNN (150 training steps)", check_simple_cnn, SimpleCNN, seed=TRAINING_SEED, train=True)


def hidden_transfer(freeze, replace_head):
    _run("freeze and replace_head", check_transfer, freeze, replace_head)
