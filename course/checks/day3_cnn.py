"""DAY 3 visible checks: convolution arithmetic, im2col convolution, pooling, CNN building blocks.

Functions are compared with torch.nn.functional in float64 (tolerance 1e-10 + 1e-8·|expected|),
gradients included; modules are compared with a module built from the structure their
docstring states, after loading the student's state_dict into it.

Every check is split into a ``_run`` half (the kernel) and a ``_verdict`` half (the grader), so that
the hidden tests are judged outside the student's process (solutions/day3_cnn/hidden.py). They live in
three modules, re-exported here: conv_pieces.py (convolution arithmetic, conv2d, pooling, the residual
and dense blocks), cnn_models.py (the Conv2d module, the depthwise-separable conv, count_mult_adds) and
simple_cnn_transfer.py (SimpleCNN, freeze and replace_head).
"""
from __future__ import annotations

from course.checks.cnn_models import check_conv2d_module, check_depthwise_separable, count_mult_adds
from course.checks.common import TOL
from course.checks.conv_pieces import (CONV_FORBIDDEN, check_conv2d, check_conv_output_size, check_dense_block,
                                       check_pooling, check_residual_block)
from course.checks.simple_cnn_transfer import check_simple_cnn, check_transfer

__all__ = ["TOL", "CONV_FORBIDDEN", "count_mult_adds", "check_conv_output_size", "check_conv2d", "check_pooling",
           "check_conv2d_module", "check_depthwise_separable", "check_residual_block", "check_dense_block",
           "check_simple_cnn", "check_transfer"]
