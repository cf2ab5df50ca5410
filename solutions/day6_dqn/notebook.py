# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # DAY 6 — Deep Q-networks (深層強化学習: DQN)
#
# In reinforcement learning (強化学習) nobody gives the right answer. An **agent** sees a
# **state** $s_t$, takes an **action** $a_t$, and the **environment** returns a **reward** $r_t$
# and the next state. The goal is a **policy** (方策) $\pi(a \mid s)$ that collects as much
# discounted reward $G_t = r_t + \gamma r_{t+1} + \gamma^2 r_{t+2} + \dots$ as possible.
#
# Two value functions (価値関数) say how good things are under a policy:
#
# - the **state-value function** (状態価値関数) $V^\pi(s) = \mathbb E_\pi[G_t \mid s_t = s]$;
# - the **action-value function** (行動価値関数) $Q^\pi(s, a) = \mathbb E_\pi[G_t \mid s_t = s, a_t = a]$.
#
# **Q-learning** (Q学習) learns the optimal $Q^*$ from single steps, moving $Q(s, a)$ towards the
# target $r + \gamma \max_{a'} Q(s', a')$. **DQN = Q-learning + a deep network** that
# approximates $Q^*$. Doing only that is unstable, and DQN adds four stabilisers (安定化の4つの工夫):
#
# 1. **Experience Replay**: learn from random minibatches of stored past steps, not from
#    the latest, strongly correlated ones;
# 2. **Fixed Target Q-Network**: compute the targets with a separate, slowly updated copy
#    of the network, so the target does not move with every step;
# 3. **reward clipping** (報酬のclipping): clip rewards into $[-1, 1]$ so that one set of
#    hyper-parameters suits games with very different scores;
# 4. **the Huber loss** (Huber関数): quadratic for small errors and linear for large
#    ones, so the gradient is bounded.
#
# The task is CartPole-v1 (gymnasium): push a cart left or right to keep a pole upright, +1
# per step, at most 500 steps. Fill in every `# YOUR CODE HERE`.

# %% tags=["locked:setup"]
import copy
import statistics
import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course import get_device, grading_mode, quick_mode
from course.checks.day6_dqn import (check_dqn_loss, check_dqn_update, check_epsilon, check_q_network, check_reinforce,
                                check_replay_buffer, check_select_action, check_target_update, check_td_targets)

device = torch.device("cpu")  # tiny networks and one environment: the CPU is faster than a GPU here
QUICK = quick_mode()
print(f"quick experiments={QUICK}, grading={grading_mode()}")

# %% [markdown]
# ## 0. The environment
#
# The state is 4 numbers (cart position and velocity, pole angle and angular velocity); the
# 2 actions push left or right. `terminated` means the pole fell (a real end); `truncated`
# means the 500-step time limit was hit (the episode was cut, the game was not over).
# A policy that pushes at random keeps the pole up for about 20 steps.

# %%
# include: make_env

# %%
env = make_env(seed=0)
returns = []
for episode in range(20):
    obs, _ = env.reset(seed=episode)
    done, total = False, 0.0
    while not done:
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        total += reward
        done = terminated or truncated
    returns.append(total)
print(f"random policy: mean return {statistics.mean(returns):.1f} over 20 episodes; state {obs.round(3)}")

# %% [markdown]
# ## 1. Experience replay (経験再生)
#
# Consecutive steps of one episode are almost identical, and learning from them in order
# is like training a classifier on one class at a time. The replay memory keeps the last
# `capacity` transitions $(s, a, r, s', \text{done})$ and hands out uniformly random
# minibatches. Once full, it overwrites the oldest transition (a circular buffer). Store
# everything in preallocated tensors: sampling is then one indexing operation.

# %% tags=["solution:replay_buffer"]
# include: ReplayBuffer

# %% tags=["test:test_replay_buffer:2"]
"""ReplayBuffer: capacity, dtypes, uniform sampling over filled slots, circular overwrite (2 points)."""
check_replay_buffer(ReplayBuffer)
### BEGIN HIDDEN TESTS
from solutions.day6_dqn.hidden import hidden_replay_buffer
hidden_replay_buffer(ReplayBuffer)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Exploration and exploitation (探索と利用)
#
# Always taking the best-looking action (exploitation, 利用) never tries anything new, and the
# estimates of untried actions stay wrong; always acting at random (exploration, 探索) never
# uses what was learnt. The two trade off. **ε-greedy** explores with probability $\varepsilon$
# and exploits otherwise, and $\varepsilon$ falls from 1 to a small value over training.

# %% tags=["solution:epsilon_schedule"]
# include: linear_epsilon

# %% tags=["test:test_epsilon_schedule:1"]
"""linear_epsilon falls linearly, then stays at the end value (1 point)."""
check_epsilon(linear_epsilon)
### BEGIN HIDDEN TESTS
from solutions.day6_dqn.hidden import hidden_epsilon_schedule
hidden_epsilon_schedule(linear_epsilon)
### END HIDDEN TESTS

# %% tags=["solution:select_action"]
# include: select_action

# %% tags=["test:test_select_action:2"]
"""select_action is ε-greedy, checked statistically (2 points)."""
check_select_action(select_action)
### BEGIN HIDDEN TESTS
from solutions.day6_dqn.hidden import hidden_select_action
hidden_select_action(select_action)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. The Q-network
#
# One network outputs $Q(s, a)$ for every action at once, so the greedy action is one forward
# pass and an argmax. CleanRL's DQN uses two hidden layers of 120 and 84 units.

# %% tags=["solution:q_network"]
# include: QNetwork

# %% tags=["test:test_q_network:1"]
"""QNetwork is the stated MLP (1 point)."""
check_q_network(QNetwork)
### BEGIN HIDDEN TESTS
from solutions.day6_dqn.hidden import hidden_q_network
hidden_q_network(QNetwork)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. TD targets and the Fixed Target Q-Network
#
# The temporal-difference (TD) target of one transition is
#
# $$y = r + \gamma\,(1 - \text{done})\,\max_{a'} Q_{\theta^-}(s', a')$$
#
# where $\theta^-$ are the **target network**'s parameters, a copy of the online network
# refreshed only now and then. Two details:
#
# - after a **termination** there is no future: $y = r$. A time-limit **truncation** is not a
#   termination, and the loop below stores `done = terminated` only, so such steps still
#   bootstrap;
# - the target is a constant for the loss: no gradient flows through it.
#
# The max in $y$ over-estimates: the max of noisy estimates is biased upwards. **Double DQN**
# lets the online network choose $a^* = \arg\max_{a'} Q_\theta(s', a')$ and the target
# network evaluate it: $y = r + \gamma (1 - \text{done})\, Q_{\theta^-}(s', a^*)$.

# %% tags=["solution:td_target"]
# include: td_targets, double_dqn_targets

# %% tags=["test:test_td_target:2"]
"""TD targets mask terminal states and use the right networks (2 points)."""
check_td_targets(td_targets, double_dqn_targets)
### BEGIN HIDDEN TESTS
from solutions.day6_dqn.hidden import hidden_td_target
hidden_td_target(td_targets, double_dqn_targets)
### END HIDDEN TESTS

# %% [markdown]
# ## 5. The Huber loss and reward clipping
#
# With $x = Q(s, a) - y$, the squared error's gradient is $x$ and grows without bound when a
# target jumps. The Huber loss (Huber関数) is quadratic near 0 and linear beyond $\delta$, so
# its gradient is clipped to $\pm\delta$:
#
# $$\ell_\delta(x) = \begin{cases} \tfrac12 x^2 & |x| \le \delta \\ \delta\,(|x| - \tfrac12\delta) & \text{otherwise} \end{cases}$$
#
# Only the action actually taken has a target: pick its Q-value with `gather`. Write the loss
# by hand (the check compares it with `F.huber_loss`).

# %% tags=["solution:dqn_loss"]
# include: clip_reward, dqn_loss

# %% tags=["test:test_dqn_loss:2"]
"""dqn_loss is the Huber loss of the taken actions; clip_reward clamps (2 points)."""
check_dqn_loss(dqn_loss, clip_reward)
### BEGIN HIDDEN TESTS
from solutions.day6_dqn.hidden import hidden_dqn_loss
hidden_dqn_loss(dqn_loss, clip_reward)
### END HIDDEN TESTS

# %%
x = torch.linspace(-4, 4, 201, requires_grad=True)
huber = torch.where(x.abs() <= 1, 0.5 * x**2, x.abs() - 0.5)
(g_huber,) = torch.autograd.grad(huber.sum(), x)
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
axes[0].plot(x.detach(), 0.5 * x.detach()**2, label="squared error / 2"); axes[0].plot(x.detach(), huber.detach(), label="Huber (δ = 1)")
axes[1].plot(x.detach(), x.detach(), label="squared error / 2"); axes[1].plot(x.detach(), g_huber, label="Huber (δ = 1)")
axes[0].set(title="loss", xlabel="x = Q(s, a) − y"); axes[1].set(title="gradient", xlabel="x = Q(s, a) − y")
axes[0].legend(); plt.show()

# %% [markdown]
# ## 6. Updating the target network
#
# DQN copies the online parameters into the target network every few hundred steps
# ($\tau = 1$). A common alternative is a small step every time, the Polyak average
# $\theta^- \leftarrow \tau\theta + (1 - \tau)\theta^-$ with e.g. $\tau = 0.005$.

# %% tags=["solution:target_update"]
# include: update_target

# %% tags=["test:test_target_update:1"]
"""update_target: hard copy at τ = 1, Polyak average otherwise (1 point)."""
check_target_update(update_target)
### BEGIN HIDDEN TESTS
from solutions.day6_dqn.hidden import hidden_target_update
hidden_target_update(update_target)
### END HIDDEN TESTS

# %% [markdown]
# ## 7. One learning step, then the whole loop
#
# `dqn_update` puts the pieces together for one sampled minibatch. The loop around it is
# given below: act ε-greedily, store the transition, and every `train_every` = 256 steps
# take 128 gradient steps on random minibatches, refresh the target network every 256
# steps, and every 2,500 steps measure the greedy policy on 20 episodes. These
# hyper-parameters start from the rl-baselines3-zoo settings for CartPole.

# %% tags=["solution:train"]
# include: dqn_update

# %% tags=["test:test_train:3"]
"""dqn_update takes exactly the stated gradient step, plain and Double DQN (3 points)."""
check_dqn_update(dqn_update, td_targets, double_dqn_targets, dqn_loss)
### BEGIN HIDDEN TESTS
from solutions.day6_dqn.hidden import hidden_train
hidden_train(dqn_update, td_targets, double_dqn_targets, dqn_loss)
### END HIDDEN TESTS

# %%
# include: DQNConfig, evaluate, train_dqn

# %% [markdown]
# ### Experiment: train DQN on CartPole
#
# The full run stops as soon as the greedy return over 20 episodes reaches 475 (the
# reference does so within 50,000 steps for each of 5 seeds, in about half a minute of CPU).
# While grading, a 10,000-step run stands in for it; its bar is a best greedy return of at
# least **100** (a random policy scores about 20).

# %%
steps = 10_000 if grading_mode() else 50_000
log = train_dqn(DQNConfig(total_steps=steps), seed=0, device=device, progress=not grading_mode())
best = max(score for _, score in log["evals"])
print(f"{log['steps']:,} env steps in {log['seconds']:.0f}s; greedy returns {[round(s) for _, s in log['evals']]}; "
      f"solved at step {log['solved_step']}")
if grading_mode():
    print(f"grading run: best greedy return {best:.0f} ({'meets' if best >= 100 else 'below'} the bar of 100)")
fig, ax = plt.subplots(figsize=(8, 3.5))
ax.plot(*zip(*log["episode_returns"]), ".", ms=3, alpha=0.5, label="training episodes (ε-greedy)")
ax.plot(*zip(*log["evals"]), "o-", label="greedy evaluation (20 episodes)")
ax.set(xlabel="environment steps", ylabel="return"); ax.legend(); plt.show()

# %% [markdown]
# ### Experiment: do the stabilisers matter? (ablations)
#
# The same loop with one stabiliser removed at a time: **no replay** (the memory holds only
# the latest 256 steps), **no target network** (targets from the online network itself),
# and the **squared error** instead of Huber. Reward clipping changes nothing on CartPole,
# whose rewards are all +1; it matters in Atari, where scores range from 1 to thousands.
# The notebook runs one seed of 15,000 steps each on a CPU; `course run day6_dqn` runs 5
# seeds of 50,000 steps and saves runs/day6_dqn/learning_curves.png. Measured there (5 seeds):
# DQN and Double DQN reach 475 in 5 of 5 seeds, without replay or without a target network
# in 0 of 5 (without a target network the greedy policy never learns at all). The squared
# error also reached 475 in 5 of 5: with rewards of +1 the TD errors stay small, and the
# Huber loss only differs from it for errors above δ = 1, as with large or noisy game scores.

# %%
# include: VARIANTS, plot_learning_curves, plot_q_values

# %%
if grading_mode():
    print("ablations are skipped while grading")
else:
    ab_steps, ab_seeds = (15_000, (0,)) if QUICK else (50_000, (0, 1, 2))
    runs = {name: [dict(train_dqn(DQNConfig(total_steps=ab_steps, stop_when_solved=False, **kw), seed=s,
                                  device=device, progress=True), seed=s) for s in ab_seeds]
            for name, kw in VARIANTS.items()}
    fig, ax = plt.subplots(figsize=(8, 4.5))
    plot_learning_curves(ax, runs); plt.show()

# %% [markdown]
# ### Experiment: over-estimation and Double DQN
#
# The mean $Q(s, a)$ of the training batches over time. A return of at most 500 steps of +1
# reward, discounted with $\gamma = 0.99$, is below $1/(1-\gamma) = 100$; estimates above that
# line are certainly over-estimates. Double DQN's targets do not take the max of the same
# noisy estimates they evaluate, so its estimates are lower. On CartPole the gap is modest
# (in `course run day6_dqn`, Double DQN's curves sit below DQN's from about 15,000 steps on);
# on Atari, van Hasselt et al. found DQN's estimates several times too high.

# %%
if not grading_mode():
    fig, ax = plt.subplots(figsize=(8, 3.5))
    plot_q_values(ax, {k: runs[k] for k in ("DQN", "Double DQN")}); plt.show()

# %% [markdown]
# ## 8. Optional extra: REINFORCE, a policy-gradient method (方策勾配法)
#
# Instead of learning $Q$ and acting greedily, learn the policy $\pi_\theta(a \mid s)$ itself
# and climb $J(\theta)$, the expected return: $\theta \leftarrow \theta + \epsilon \nabla J(\theta)$.
# The **policy gradient theorem** (方策勾配定理) gives
#
# $$\nabla_\theta J(\theta) = \mathbb E_{\pi_\theta}\!\left[\nabla_\theta \log \pi_\theta(a \mid s)\, Q^\pi(s, a)\right]$$
#
# REINFORCE estimates $Q^\pi(s_t, a_t)$ by the return-to-go $G_t$ of a sampled episode.
# Subtracting a **baseline** $b(s_t)$, here a learned $V(s_t)$, leaves the expectation unchanged
# and lowers the variance. The loss to minimise is
# $L = -\frac1T \sum_t \log \pi_\theta(a_t \mid s_t)\,(G_t - b_t)$, with $G_t - b_t$ a constant.

# %% tags=["solution:reinforce"]
# include: discounted_returns, reinforce_loss

# %% tags=["test:test_reinforce:2"]
"""discounted_returns and reinforce_loss follow the formulas (2 points)."""
check_reinforce(discounted_returns, reinforce_loss)
### BEGIN HIDDEN TESTS
from solutions.day6_dqn.hidden import hidden_reinforce
hidden_reinforce(discounted_returns, reinforce_loss)
### END HIDDEN TESTS

# %%
# include: PolicyNetwork, train_reinforce

# %%
episodes = 20 if grading_mode() else (150 if QUICK else 500)
history = train_reinforce(episodes=episodes)
print(f"REINFORCE: mean return of the last 20 of {episodes} episodes: {statistics.mean(history[-20:]):.0f}")
plt.figure(figsize=(7, 3)); plt.plot(history); plt.xlabel("episode"); plt.ylabel("return"); plt.show()

# %% [markdown]
# ## Summary
#
# - DQN approximates $Q^*$ with a network and learns it from TD targets
#   $r + \gamma(1 - \text{done})\max_{a'} Q_{\theta^-}(s', a')$.
# - Its four stabilisers: experience replay (decorrelated minibatches), a fixed target
#   network (targets that hold still), reward clipping (one scale for every game) and the
#   Huber loss (bounded gradients). On CartPole, replay and the target network are the ones
#   that decide success; clipping and Huber matter when rewards are large and varied.
# - Mask terminations, not time limits; never backpropagate into the target.
# - Double DQN reduces over-estimation by separating the choice of $a^*$ from its evaluation.
# - Policy-gradient methods such as REINFORCE learn $\pi$ directly; AlphaGo's policy network
#   was trained this way, and its value network learns $V$ the way the baseline does here.
