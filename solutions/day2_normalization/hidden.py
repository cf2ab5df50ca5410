"""Hidden tests of DAY 2: the visible checks again with fresh seeds and other settings."""
from __future__ import annotations

from autograder.hidden import run_hidden as _run
from course.checks import (check_activations, check_batch_norm, check_batch_norm_backward, check_batchnorm2d,
                           check_dropout, check_group_norm, check_instance_norm, check_layer_norm, check_penalties)

# The bug planted in the bundled "buggy" sample: normalising with the unbiased variance.
SAMPLE_BUG = {
    "cell": "batch_norm_forward",
    "replace": [("        var = x.var(dim=dims, unbiased=False)\n", "        var = x.var(dim=dims, unbiased=True)\n")],
}


def hidden_activations(sigmoid, tanh, relu, leaky_relu, softmax):
    _run("activations", check_activations, sigmoid, tanh, relu, leaky_relu, softmax)


def hidden_batch_norm(batch_norm):
    _run("batch_norm (momentum 0.3, eps 1e-3)", check_batch_norm, batch_norm, momentum=0.3, eps=1e-3)


def hidden_batch_norm_backward(BatchNormFunction):
    _run("BatchNormFunction backward", check_batch_norm_backward, BatchNormFunction)


def hidden_batchnorm2d(BatchNorm2d):
    _run("BatchNorm2d", check_batchnorm2d, BatchNorm2d, steps=8, repeats=1)


def hidden_layer_norm(layer_norm):
    _run("layer_norm", check_layer_norm, layer_norm)


def hidden_instance_norm(instance_norm):
    _run("instance_norm", check_instance_norm, instance_norm)


def hidden_group_norm(group_norm):
    _run("group_norm", check_group_norm, group_norm)


def hidden_dropout(dropout):
    _run("dropout", check_dropout, dropout)


def hidden_weight_penalties(l1_penalty, l2_penalty):
    _run("weight penalties (λ = 0.03)", check_penalties, l1_penalty, l2_penalty, lam=0.03)
