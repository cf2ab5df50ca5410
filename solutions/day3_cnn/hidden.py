"""Hidden tests of DAY 3, all judged outside the student's process (autograder/judge.py): the ``_run``
half of the visible check in the kernel with fresh seeds, its ``_verdict`` half in the grader. SimpleCNN
is two parts: its shapes on fresh seeds, and a training run on one fixed seed. Nothing here imports the
reference: the kernel cannot see it (autograder/kernel_sandbox.py)."""
from __future__ import annotations

from autograder.judge import cell_function, in_turn, per_seed
from course.checks import cnn_models as models
from course.checks import conv_pieces as conv
from course.checks import simple_cnn_transfer as cnn

# The bug planted in the bundled "buggy" sample: a residual block without its shortcut.
SAMPLE_BUG = {
    "cell": "residual_block",
    "replace": [("        return F.relu(self.branch(x) + x)\n", "        return F.relu(self.branch(x))\n")],
}


# Training accuracy after 150 steps varies by about ±0.01 from seed to seed, so the training run uses
# one fixed seed (weights, sample order, dropout): its verdict is the same at every grading.
TRAINING_SEED = 0
SIMPLE_CNN_SHAPES = per_seed("SimpleCNN (shapes and logits)", cnn.simple_cnn_run, cnn.simple_cnn_verdict, train=False)
SIMPLE_CNN_TRAINING = per_seed("SimpleCNN (150 training steps)", cnn.simple_cnn_run, cnn.simple_cnn_verdict,
                               seed=TRAINING_SEED, train=True)

# Keyed by the test cell's grade_id.
JUDGED = {
    "test_conv_output_size": per_seed("conv_output_size", conv.conv_output_size_run, conv.conv_output_size_verdict),
    "test_conv2d": per_seed("conv2d", conv.conv2d_run, conv.conv2d_verdict, gradcheck=False),
    "test_pooling": per_seed("max_pool2d and avg_pool2d", conv.pooling_run, conv.pooling_verdict),
    "test_residual_block": per_seed("ResidualBlock", conv.residual_block_run, conv.residual_block_verdict),
    "test_dense_block": per_seed("DenseBlock", conv.dense_block_run, conv.dense_block_verdict),
    "test_conv2d_module": per_seed("Conv2d", models.conv2d_module_run, models.conv2d_module_verdict),
    "test_depthwise_separable": per_seed("DepthwiseSeparableConv and conv_cost", models.depthwise_separable_run,
                                         models.depthwise_separable_verdict),
    "test_simple_cnn": in_turn("SimpleCNN", SIMPLE_CNN_SHAPES, SIMPLE_CNN_TRAINING),
    "test_transfer": per_seed("freeze and replace_head", cnn.transfer_run, cnn.transfer_verdict),
}

hidden_conv_output_size = cell_function(JUDGED, "test_conv_output_size")
hidden_conv2d = cell_function(JUDGED, "test_conv2d")
hidden_pooling = cell_function(JUDGED, "test_pooling")  # (max_pool2d, avg_pool2d)
hidden_conv2d_module = cell_function(JUDGED, "test_conv2d_module")
hidden_depthwise_separable = cell_function(JUDGED, "test_depthwise_separable")  # (DepthwiseSeparableConv, conv_cost)
hidden_residual_block = cell_function(JUDGED, "test_residual_block")
hidden_dense_block = cell_function(JUDGED, "test_dense_block")
hidden_simple_cnn = cell_function(JUDGED, "test_simple_cnn")
hidden_transfer = cell_function(JUDGED, "test_transfer")  # (freeze, replace_head)
