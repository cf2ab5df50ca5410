"""Hidden tests of DAY 2, judged outside the student's process (autograder/judge.py).

Each test is a challenge (fresh seeds, and other settings than the visible check's where a
hyper-parameter could be ignored), a scenario that runs the student's code in the kernel (the
``_run`` half of a visible check) and a verdict that the grader computes from what it observed (the
``_verdict`` half: the comparison with torch that the visible check makes). Nothing here imports the
reference: the kernel cannot see it (autograder/kernel_sandbox.py).
"""
from __future__ import annotations

from autograder.judge import cell_function, per_seed, warm_up_optimizers
from course.checks import day2_normalization as day2
from course.checks import norms_dropout_penalties as norms

# The bug planted in the bundled "buggy" sample: normalising with the unbiased variance.
SAMPLE_BUG = {
    "cell": "batch_norm_forward",
    "replace": [("        var = x.var(dim=dims, unbiased=False)\n", "        var = x.var(dim=dims, unbiased=True)\n")],
}


# Keyed by the test cell's grade_id.
JUDGED = {
    "test_activations": per_seed("activations", day2.activations_run, day2.activations_verdict),
    "test_batch_norm_forward": per_seed("batch_norm (momentum 0.3, eps 1e-3)", day2.batch_norm_run,
                                        day2.batch_norm_verdict, momentum=0.3, eps=1e-3),
    "test_batch_norm_backward": per_seed("BatchNormFunction backward", day2.batch_norm_backward_run,
                                         day2.batch_norm_backward_verdict, gradcheck=False),
    "test_batchnorm2d": per_seed("BatchNorm2d", day2.batchnorm2d_run, day2.batchnorm2d_verdict, repeats=1, steps=8),
    "test_layer_norm": per_seed("layer_norm", norms.layer_norm_run, norms.layer_norm_verdict),
    "test_instance_norm": per_seed("instance_norm", norms.instance_norm_run, norms.instance_norm_verdict),
    "test_group_norm": per_seed("group_norm", norms.group_norm_run, norms.group_norm_verdict),
    "test_dropout": per_seed("dropout", norms.dropout_run, norms.dropout_verdict),
    "test_weight_penalties": per_seed("weight penalties (λ = 0.03)", norms.penalties_run, norms.penalties_verdict,
                                      lam=0.03),
}


hidden_activations = cell_function(JUDGED, "test_activations")  # (sigmoid, tanh, relu, leaky_relu, softmax)
hidden_batch_norm = cell_function(JUDGED, "test_batch_norm_forward")  # (batch_norm)
hidden_batch_norm_backward = cell_function(JUDGED, "test_batch_norm_backward")  # (BatchNormFunction)
hidden_batchnorm2d = cell_function(JUDGED, "test_batchnorm2d")  # (BatchNorm2d)
hidden_layer_norm = cell_function(JUDGED, "test_layer_norm")
hidden_instance_norm = cell_function(JUDGED, "test_instance_norm")
hidden_group_norm = cell_function(JUDGED, "test_group_norm")
hidden_dropout = cell_function(JUDGED, "test_dropout")
hidden_weight_penalties = cell_function(JUDGED, "test_weight_penalties")  # (l1_penalty, l2_penalty)


warm_up = warm_up_optimizers  # run by the grader while the kernel starts (judge.judged_tests)
