"""DAY 6, deep reinforcement learning (深層強化学習): DQN on CartPole-v1, reference solutions.

Single source of truth for the DAY 6 notebook (see solutions/day1_optimization/reference.py
for how `course build` uses it).

References:
    - Mnih et al. 2015, "Human-level control through deep reinforcement learning" (DQN:
      experience replay, a fixed target network, reward clipping, the Huber loss).
    - van Hasselt et al. 2016, "Deep Reinforcement Learning with Double Q-learning".
    - Williams 1992 (REINFORCE); Sutton & Barto, *Reinforcement Learning*, ch. 6 and 13.
    - CleanRL's dqn.py (one-file DQN; QNetwork 120-84) and the rl-baselines3-zoo
      hyper-parameters for CartPole-v1, from which DQNConfig starts.
"""
from __future__ import annotations

import torch
from torch import nn


# ----------------------------------------------------------------------------- experience replay


class ReplayBuffer:
    """Experience replay memory (経験再生): the last ``capacity`` transitions (s, a, r, s', done).

    Storage is preallocated on ``device``: ``obs`` and ``next_obs`` (capacity, *obs_shape)
    float32, ``actions`` (capacity,) int64, ``rewards`` and ``dones`` (capacity,) float32.
    ``add`` writes at position ``pos`` and moves it on by one, wrapping round to 0 when the
    buffer is full, so the oldest transition is overwritten first. ``len(buffer)`` is the
    number of filled slots (at most ``capacity``).
    """

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], device="cpu"):
        self.capacity = capacity
        self.device = torch.device(device)
        ### BEGIN SOLUTION
        self.obs = torch.zeros((capacity, *obs_shape), dtype=torch.float32, device=self.device)
        self.next_obs = torch.zeros_like(self.obs)
        self.actions = torch.zeros(capacity, dtype=torch.int64, device=self.device)
        self.rewards = torch.zeros(capacity, dtype=torch.float32, device=self.device)
        self.dones = torch.zeros(capacity, dtype=torch.float32, device=self.device)
        self.pos = 0
        self.size = 0
        ### END SOLUTION

    def __len__(self) -> int:
        ### BEGIN SOLUTION
        return self.size
        ### END SOLUTION

    def add(self, obs, action: int, reward: float, next_obs, done: bool) -> None:
        """Store one transition; ``obs``/``next_obs`` may be numpy arrays or tensors."""
        ### BEGIN SOLUTION
        self.obs[self.pos] = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        self.next_obs[self.pos] = torch.as_tensor(next_obs, dtype=torch.float32, device=self.device)
        self.actions[self.pos] = int(action)
        self.rewards[self.pos] = float(reward)
        self.dones[self.pos] = float(done)
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        ### END SOLUTION

    def sample(self, batch_size: int, generator: torch.Generator | None = None):
        """``batch_size`` transitions drawn uniformly, with replacement, from the filled slots only:
        indices from ``torch.randint(len(self), (batch_size,), generator=generator)``.

        Returns the tuple (obs, actions, rewards, next_obs, dones) of tensors on ``device``.
        """
        ### BEGIN SOLUTION
        idx = torch.randint(self.size, (batch_size,), generator=generator).to(self.device)
        return self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.dones[idx]
        ### END SOLUTION


# ----------------------------------------------------------------------------- exploration


def linear_epsilon(step: int, start: float, end: float, duration: int) -> float:
    """ε for ε-greedy exploration: ``start`` at step 0, falling linearly to ``end`` at step
    ``duration``, and ``end`` from then on."""
    ### BEGIN SOLUTION
    frac = min(step / duration, 1.0) if duration > 0 else 1.0
    return start + frac * (end - start)
    ### END SOLUTION


def select_action(q_net: nn.Module, obs: torch.Tensor, epsilon: float, generator: torch.Generator) -> int:
    """ε-greedy action for one observation ``obs`` (shape (obs_dim,), on q_net's device).

    Draw ``u = torch.rand((), generator=generator)``. If ``u < epsilon``, explore (探索): return
    ``torch.randint(n_actions, (), generator=generator)`` (any action, the greedy one
    included). Otherwise exploit (活用): return the argmax of ``q_net``'s Q-values. The
    Q-values are computed without building a graph. Returns a Python int.
    """
    ### BEGIN SOLUTION
    with torch.no_grad():
        q = q_net(obs.unsqueeze(0))[0]
    if torch.rand((), generator=generator).item() < epsilon:
        return int(torch.randint(q.shape[-1], (), generator=generator))
    return int(q.argmax())
    ### END SOLUTION


# ----------------------------------------------------------------------------- the Q-network


class QNetwork(nn.Module):
    """Action-value function (行動価値関数) Q(s, ·): obs (N, obs_dim) → Q-values (N, n_actions).

    Layers: Linear(obs_dim, hidden[0]) → ReLU → Linear(hidden[0], hidden[1]) → ReLU →
    Linear(hidden[1], n_actions); in general one Linear + ReLU per entry of ``hidden``, then
    a Linear to the actions with no activation (Q-values can be any real number).
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden: tuple[int, ...] = (120, 84)):
        super().__init__()
        ### BEGIN SOLUTION
        layers, width = [], obs_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_actions))
        self.net = nn.Sequential(*layers)
        ### END SOLUTION

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.net(obs)
        ### END SOLUTION


# ----------------------------------------------------------------------------- TD targets


def td_targets(rewards: torch.Tensor, next_obs: torch.Tensor, dones: torch.Tensor, target_net: nn.Module,
               gamma: float) -> torch.Tensor:
    """Q-learning targets y = r + γ · (1 − done) · max_a' Q_target(s', a'), shape (B,).

    ``dones`` is 1.0 where the episode *terminated* at s' (no future reward to bootstrap
    from). The targets are constants for the loss: no gradient flows into ``target_net``.
    """
    ### BEGIN SOLUTION
    with torch.no_grad():
        next_q = target_net(next_obs).max(dim=1).values
        return rewards + gamma * (1.0 - dones) * next_q
    ### END SOLUTION


def double_dqn_targets(rewards: torch.Tensor, next_obs: torch.Tensor, dones: torch.Tensor, q_net: nn.Module,
                       target_net: nn.Module, gamma: float) -> torch.Tensor:
    """Double DQN targets: the online ``q_net`` chooses a* = argmax_a' Q(s', a'), the
    ``target_net`` evaluates it: y = r + γ · (1 − done) · Q_target(s', a*). No gradient."""
    ### BEGIN SOLUTION
    with torch.no_grad():
        best = q_net(next_obs).argmax(dim=1, keepdim=True)
        next_q = target_net(next_obs).gather(1, best).squeeze(1)
        return rewards + gamma * (1.0 - dones) * next_q
    ### END SOLUTION


# ----------------------------------------------------------------------------- the loss


def clip_reward(reward: torch.Tensor) -> torch.Tensor:
    """Reward clipping (報酬のclipping): every reward clamped into [-1, 1] (for integer game
    scores: +1 for any gain, −1 for any loss, 0 for nothing)."""
    ### BEGIN SOLUTION
    return reward.clamp(-1.0, 1.0)
    ### END SOLUTION


def dqn_loss(q_values: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Mean Huber loss (Huber関数) between Q(s, a) of the actions taken and the targets.

    ``q_values`` (B, n_actions), ``actions`` (B,) int64, ``targets`` (B,). With
    x = Q(s, a) − y: 0.5·x² where |x| ≤ delta, else delta·(|x| − 0.5·delta). Written by hand
    (not with F.smooth_l1_loss / F.huber_loss).
    """
    ### BEGIN SOLUTION
    q_taken = q_values.gather(1, actions.unsqueeze(1)).squeeze(1)
    x = q_taken - targets
    quadratic = 0.5 * x**2
    linear = delta * (x.abs() - 0.5 * delta)
    return torch.where(x.abs() <= delta, quadratic, linear).mean()
    ### END SOLUTION


# ----------------------------------------------------------------------------- the target network


def update_target(q_net: nn.Module, target_net: nn.Module, tau: float = 1.0) -> None:
    """Move ``target_net``'s parameters towards ``q_net``'s: θ⁻ ← τ·θ + (1 − τ)·θ⁻, in place and
    without autograd. τ = 1 is DQN's hard copy; a small τ is a Polyak (soft) update."""
    ### BEGIN SOLUTION
    with torch.no_grad():
        for p_target, p in zip(target_net.parameters(), q_net.parameters()):
            p_target.mul_(1.0 - tau).add_(p, alpha=tau)
    ### END SOLUTION


# ----------------------------------------------------------------------------- one learning step


def dqn_update(q_net: nn.Module, target_net: nn.Module, optimizer: torch.optim.Optimizer, batch, gamma: float,
               double: bool = False, loss_fn=None) -> tuple[float, float]:
    """One gradient step of DQN on a sampled ``batch`` = (obs, actions, rewards, next_obs, dones).

    1. targets: ``double_dqn_targets`` if ``double`` else ``td_targets`` (both from target_net);
    2. loss: ``dqn_loss`` on ``q_net(obs)`` (or ``loss_fn(q_values, actions, targets)`` if given);
    3. ``optimizer.zero_grad()``, backward, ``optimizer.step()``.
    Returns (loss, mean Q(s, a) of the batch's actions) as Python floats.
    """
    ### BEGIN SOLUTION
    obs, actions, rewards, next_obs, dones = batch
    if double:
        targets = double_dqn_targets(rewards, next_obs, dones, q_net, target_net, gamma)
    else:
        targets = td_targets(rewards, next_obs, dones, target_net, gamma)
    q_values = q_net(obs)
    loss = (loss_fn or dqn_loss)(q_values, actions, targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    q_taken = q_values.detach().gather(1, actions.unsqueeze(1))
    return loss.item(), q_taken.mean().item()
    ### END SOLUTION


# ----------------------------------------------------------------------------- REINFORCE (optional extra)


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """Return-to-go of one episode: G_t = r_t + γ·r_{t+1} + γ²·r_{t+2} + … for every t, shape (T,).

    Computed backwards in one pass: G_{T-1} = r_{T-1}, G_t = r_t + γ·G_{t+1}.
    """
    ### BEGIN SOLUTION
    returns = torch.empty_like(rewards)
    running = torch.zeros((), dtype=rewards.dtype, device=rewards.device)
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns
    ### END SOLUTION


def reinforce_loss(log_probs: torch.Tensor, returns: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
    """REINFORCE with a baseline: L = −mean_t[ log π(a_t | s_t) · (G_t − b_t) ].

    ``log_probs`` (T,) carries the policy's gradient; the advantage G_t − b_t is a constant
    weight, so no gradient flows into ``baseline`` (it is trained by its own loss). Minimising
    L follows the policy gradient theorem's ∇J = E[∇ log π(a|s) · Q(s, a)].
    """
    ### BEGIN SOLUTION
    advantage = (returns - baseline).detach()
    return -(log_probs * advantage).mean()
    ### END SOLUTION


class PolicyNetwork(nn.Module):
    """π(a | s) as logits, and a state-value baseline V(s) (状態価値関数) from a second head."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh())
        self.policy = nn.Linear(hidden, n_actions)
        self.value = nn.Linear(hidden, 1)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(obs)
        return self.policy(h), self.value(h).squeeze(-1)
