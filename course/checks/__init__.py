"""Visible checks: compare a student's code with torch and explain what is wrong.

Every check either prints one line starting with ``✓`` or raises :class:`CheckFailed`
(an ``AssertionError``) whose message says where the first difference appeared, how big
it is, the tolerance, and, when the symptom is recognisable, the likely mistake.

The checks compare against torch itself (``torch.optim.Adam``, ``F.batch_norm`` …) or
against formulas stated in the notebook. They never import the reference solutions.
"""
from course.checks.common import CheckFailed, compare
from course.checks.day1 import OPT_TOL, check_init, check_minibatches, check_optimizer, check_schedule
from course.checks.day2 import (check_activations, check_batch_norm, check_batch_norm_backward, check_batchnorm2d,
                                check_dropout, check_group_norm, check_instance_norm, check_layer_norm,
                                check_penalties)
from course.checks.day3 import (check_conv2d, check_conv2d_module, check_conv_output_size, check_dense_block,
                                check_depthwise_separable, check_pooling, check_residual_block, check_simple_cnn,
                                check_transfer, count_mult_adds)
from course.checks.day4 import (check_attention, check_bidirectional, check_bptt, check_grad_clipping, check_gru_cell,
                                check_lstm_cell, check_multi_head_attention, check_positional_encoding,
                                check_rnn_cell, check_seq2seq)
from course.checks.day5 import (check_conditional, check_discriminator, check_gan_losses, check_generator,
                                check_train_step, check_vae)

__all__ = ["CheckFailed", "compare", "OPT_TOL", "check_init", "check_minibatches", "check_optimizer",
           "check_schedule", "check_activations", "check_batch_norm", "check_batch_norm_backward",
           "check_batchnorm2d", "check_dropout", "check_group_norm", "check_instance_norm", "check_layer_norm",
           "check_penalties", "check_conv_output_size", "check_conv2d", "check_pooling", "check_conv2d_module",
           "check_depthwise_separable", "check_residual_block", "check_dense_block", "check_simple_cnn",
           "check_transfer", "count_mult_adds", "check_rnn_cell", "check_bptt", "check_lstm_cell", "check_gru_cell",
           "check_bidirectional", "check_grad_clipping", "check_attention", "check_multi_head_attention",
           "check_positional_encoding", "check_seq2seq", "check_generator", "check_discriminator", "check_gan_losses",
           "check_train_step", "check_conditional", "check_vae"]
