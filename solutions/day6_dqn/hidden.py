"""Hidden tests of DAY 6: the visible checks again with fresh seeds (new networks, batches and coins)."""
from __future__ import annotations

from autograder.hidden import run_hidden as _run
from course.checks.day6_dqn import (check_dqn_loss, check_dqn_update, check_epsilon, check_q_network, check_reinforce,
                                check_replay_buffer, check_select_action, check_target_update, check_td_targets)

# The bug planted in the bundled "buggy" sample: bootstrapping through terminal states.
SAMPLE_BUG = {
    "cell": "td_target",
    "replace": [("        return rewards + gamma * (1.0 - dones) * next_q\n", "        return rewards + gamma * next_q\n")],
}


def hidden_replay_buffer(ReplayBuffer):
    _run("ReplayBuffer", check_replay_buffer, ReplayBuffer)


def hidden_epsilon_schedule(linear_epsilon):
    _run("linear_epsilon", check_epsilon, linear_epsilon)


def hidden_select_action(select_action):
    _run("select_action", check_select_action, select_action)


def hidden_q_network(QNetwork):
    _run("QNetwork", check_q_network, QNetwork)


def hidden_td_target(td_targets, double_dqn_targets):
    _run("td_targets and double_dqn_targets", check_td_targets, td_targets, double_dqn_targets)


def hidden_dqn_loss(dqn_loss, clip_reward):
    _run("dqn_loss and clip_reward", check_dqn_loss, dqn_loss, clip_reward)


def hidden_target_update(update_target):
    _run("update_target", check_target_update, update_target)


def hidden_train(dqn_update, td_targets, double_dqn_targets, dqn_loss):
    _run("dqn_update", check_dqn_update, dqn_update, td_targets, double_dqn_targets, dqn_loss)


def hidden_reinforce(discounted_returns, reinforce_loss):
    _run("discounted_returns and reinforce_loss", check_reinforce, discounted_returns, reinforce_loss)
