"""Hidden tests of DAY 6. Six are judged outside the student's process (autograder/judge.py): the
``_run`` half of the visible check in the kernel with fresh seeds, its ``_verdict`` half in the grader.
The replay buffer, ε-greedy and the learning step are still the visible checks again with fresh seeds
(new networks, batches and coins), decided in the kernel. Nothing here imports the reference: the
kernel cannot see it (autograder/kernel_sandbox.py)."""
from __future__ import annotations

from autograder.hidden import run_hidden as _run
from autograder.judge import cell_function, per_seed
from course.checks import dqn_pieces as dqn
from course.checks.day6_dqn import check_dqn_update, check_replay_buffer, check_select_action

# The bug planted in the bundled "buggy" sample: bootstrapping through terminal states.
SAMPLE_BUG = {
    "cell": "td_target",
    "replace": [("        return rewards + gamma * (1.0 - dones) * next_q\n", "        return rewards + gamma * next_q\n")],
}

# Keyed by the test cell's grade_id.
JUDGED = {
    "test_epsilon_schedule": per_seed("linear_epsilon", dqn.epsilon_run, dqn.epsilon_verdict),
    "test_q_network": per_seed("QNetwork", dqn.q_network_run, dqn.q_network_verdict),
    "test_td_target": per_seed("td_targets and double_dqn_targets", dqn.td_targets_run, dqn.td_targets_verdict),
    "test_dqn_loss": per_seed("dqn_loss and clip_reward", dqn.dqn_loss_run, dqn.dqn_loss_verdict),
    "test_target_update": per_seed("update_target", dqn.target_update_run, dqn.target_update_verdict),
    "test_reinforce": per_seed("discounted_returns and reinforce_loss", dqn.reinforce_run, dqn.reinforce_verdict),
}

hidden_epsilon_schedule = cell_function(JUDGED, "test_epsilon_schedule")  # (linear_epsilon)
hidden_q_network = cell_function(JUDGED, "test_q_network")
hidden_td_target = cell_function(JUDGED, "test_td_target")  # (td_targets, double_dqn_targets)
hidden_dqn_loss = cell_function(JUDGED, "test_dqn_loss")  # (dqn_loss, clip_reward)
hidden_target_update = cell_function(JUDGED, "test_target_update")
hidden_reinforce = cell_function(JUDGED, "test_reinforce")  # (discounted_returns, reinforce_loss)


def hidden_replay_buffer(ReplayBuffer):
    _run("ReplayBuffer", check_replay_buffer, ReplayBuffer)


def hidden_select_action(select_action):
    _run("select_action", check_select_action, select_action)


def hidden_train(dqn_update, td_targets, double_dqn_targets, dqn_loss):
    _run("dqn_update", check_dqn_update, dqn_update, td_targets, double_dqn_targets, dqn_loss)
