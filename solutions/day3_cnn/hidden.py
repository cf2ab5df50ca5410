"""Hidden tests of DAY 3. Five of nine are judged outside the student's process (autograder/judge.py):
the ``_run`` half of the visible check in the kernel with fresh seeds, its ``_verdict`` half in the
grader (convolution arithmetic, conv2d, pooling, the residual and dense blocks). The Conv2d module,
the depthwise-separable conv, SimpleCNN and transfer are still the visible checks again with fresh seeds
(new shapes and data order), decided in the kernel. Nothing here imports the reference: the kernel
cannot see it (autograder/kernel_sandbox.py)."""
from __future__ import annotations

from autograder.hidden import run_hidden as _run
from autograder.judge import cell_function, per_seed
from course.checks import check_conv2d_module, check_depthwise_separable, check_simple_cnn, check_transfer
from course.checks import conv_pieces as conv

# The bug planted in the bundled "buggy" sample: a residual block without its shortcut.
SAMPLE_BUG = {
    "cell": "residual_block",
    "replace": [("        return F.relu(self.branch(x) + x)\n", "        return F.relu(self.branch(x))\n")],
}


# Keyed by the test cell's grade_id.
JUDGED = {
    "test_conv_output_size": per_seed("conv_output_size", conv.conv_output_size_run, conv.conv_output_size_verdict),
    "test_conv2d": per_seed("conv2d", conv.conv2d_run, conv.conv2d_verdict, gradcheck=False),
    "test_pooling": per_seed("max_pool2d and avg_pool2d", conv.pooling_run, conv.pooling_verdict),
    "test_residual_block": per_seed("ResidualBlock", conv.residual_block_run, conv.residual_block_verdict),
    "test_dense_block": per_seed("DenseBlock", conv.dense_block_run, conv.dense_block_verdict),
}

hidden_conv_output_size = cell_function(JUDGED, "test_conv_output_size")
hidden_conv2d = cell_function(JUDGED, "test_conv2d")
hidden_pooling = cell_function(JUDGED, "test_pooling")  # (max_pool2d, avg_pool2d)
hidden_residual_block = cell_function(JUDGED, "test_residual_block")
hidden_dense_block = cell_function(JUDGED, "test_dense_block")


def hidden_conv2d_module(Conv2d):
    _run("Conv2d", check_conv2d_module, Conv2d)


def hidden_depthwise_separable(DepthwiseSeparableConv, conv_cost):
    _run("DepthwiseSeparableConv and conv_cost", check_depthwise_separable, DepthwiseSeparableConv, conv_cost)


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
