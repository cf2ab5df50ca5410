"""Hidden tests of DAY 6, all judged outside the student's process (autograder/judge.py): the ``_run``
half of the visible check in the kernel with fresh seeds, its ``_verdict`` half in the grader. The
learning step's expected step uses the student's own target and loss functions, so that a mistake there
is not charged twice: the kernel sends what they returned along that step (the targets, the loss's
value and gradient), and the grader replays the step itself (course/checks/dqn_learning_step.py).
Nothing here imports the reference: the kernel cannot see it (autograder/kernel_sandbox.py)."""
from __future__ import annotations

from autograder.judge import cell_function, per_seed, warm_up_optimizers
from course.checks import day6_dqn as day6
from course.checks import dqn_learning_step as step
from course.checks import dqn_pieces as dqn

# The bug planted in the bundled "buggy" sample: bootstrapping through terminal states.
SAMPLE_BUG = {
    "cell": "td_target",
    "replace": [("        return rewards + gamma * (1.0 - dones) * next_q\n", "        return rewards + gamma * next_q\n")],
}

# Keyed by the test cell's grade_id.
JUDGED = {
    "test_replay_buffer": per_seed("ReplayBuffer", day6.replay_buffer_run, day6.replay_buffer_verdict),
    "test_select_action": per_seed("select_action", day6.select_action_run, day6.select_action_verdict),
    "test_epsilon_schedule": per_seed("linear_epsilon", dqn.epsilon_run, dqn.epsilon_verdict),
    "test_q_network": per_seed("QNetwork", dqn.q_network_run, dqn.q_network_verdict),
    "test_td_target": per_seed("td_targets and double_dqn_targets", dqn.td_targets_run, dqn.td_targets_verdict),
    "test_dqn_loss": per_seed("dqn_loss and clip_reward", dqn.dqn_loss_run, dqn.dqn_loss_verdict),
    "test_target_update": per_seed("update_target", dqn.target_update_run, dqn.target_update_verdict),
    "test_reinforce": per_seed("discounted_returns and reinforce_loss", dqn.reinforce_run, dqn.reinforce_verdict),
    "test_train": per_seed("dqn_update", step.dqn_update_run, step.dqn_update_verdict),
}

hidden_replay_buffer = cell_function(JUDGED, "test_replay_buffer")  # (ReplayBuffer)
hidden_select_action = cell_function(JUDGED, "test_select_action")
hidden_epsilon_schedule = cell_function(JUDGED, "test_epsilon_schedule")  # (linear_epsilon)
hidden_q_network = cell_function(JUDGED, "test_q_network")
hidden_td_target = cell_function(JUDGED, "test_td_target")  # (td_targets, double_dqn_targets)
hidden_dqn_loss = cell_function(JUDGED, "test_dqn_loss")  # (dqn_loss, clip_reward)
hidden_target_update = cell_function(JUDGED, "test_target_update")
hidden_reinforce = cell_function(JUDGED, "test_reinforce")  # (discounted_returns, reinforce_loss)
hidden_train = cell_function(JUDGED, "test_train")  # (dqn_update, td_targets, double_dqn_targets, dqn_loss)

warm_up = warm_up_optimizers  # run by the grader while the kernel starts (judge.judged_tests): the step uses Adam
