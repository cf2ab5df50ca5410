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

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
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


# ----------------------------------------------------------------------------- the full loop


@dataclass
class DQNConfig:
    """Hyper-parameters of the reference DQN on CartPole-v1 (step counts are environment steps)."""

    total_steps: int = 50_000
    buffer_size: int = 50_000
    batch_size: int = 64
    lr: float = 2.3e-3
    gamma: float = 0.99
    hidden: tuple[int, ...] = (120, 84)
    learning_starts: int = 1_000
    train_every: int = 256        # collect this many env steps with a fixed policy, then ...
    gradient_steps: int = 128     # ... take this many gradient steps
    target_every: int = 256       # env steps between target-network updates (Fixed Target Q-Network)
    tau: float = 1.0              # 1.0: hard copy
    eps_start: float = 1.0
    eps_end: float = 0.04
    eps_duration: int = 8_000
    double: bool = False          # Double DQN targets
    huber: bool = True            # False: mean squared error (ablation)
    replay: bool = True           # False: the memory holds only the latest `train_every` transitions (ablation)
    target_net: bool = True       # False: targets from the online network itself (ablation)
    eval_every: int = 2_500
    eval_episodes: int = 20
    solved_at: float = 475.0      # stop once the greedy evaluation return reaches this
    stop_when_solved: bool = True


def make_env(seed: int | None = None):
    """CartPole-v1 (gymnasium): push a cart left or right to keep a pole upright; +1 per step,
    at most 500 steps."""
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env


@torch.no_grad()
def evaluate(q_net: nn.Module, episodes: int = 20, seed: int = 10_000, device="cpu") -> float:
    """Mean return of ``episodes`` greedy (ε = 0) episodes, all stepped together (one batched
    forward pass per time step)."""
    envs = [make_env() for _ in range(episodes)]
    obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    returns = [0.0] * episodes
    alive = list(range(episodes))
    while alive:
        batch = torch.as_tensor(np.array([obs[i] for i in alive]), dtype=torch.float32, device=device)
        actions = q_net(batch).argmax(1).tolist()
        still = []
        for i, a in zip(alive, actions):
            obs[i], r, terminated, truncated, _ = envs[i].step(a)
            returns[i] += r
            if not (terminated or truncated):
                still.append(i)
        alive = still
    for env in envs:
        env.close()
    return sum(returns) / episodes


def train_dqn(cfg: DQNConfig = DQNConfig(), seed: int = 0, device="cpu", progress: bool = False) -> dict:
    """Train DQN on CartPole-v1 with the four stabilisers switchable in ``cfg``.

    Returns a dict: ``q_net``; ``episode_returns`` [(env step, return)]; ``evals`` [(env step,
    greedy mean return)]; ``q_means`` [(env step, mean Q(s, a) of the last batch)];
    ``losses``; ``solved_step`` (the first evaluation step with return ≥ cfg.solved_at, or None);
    ``steps`` (env steps taken) and ``seconds``.
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    env = make_env(seed)
    obs_dim, n_actions = env.observation_space.shape[0], int(env.action_space.n)
    q_net = QNetwork(obs_dim, n_actions, cfg.hidden).to(device)
    target_net = copy.deepcopy(q_net) if cfg.target_net else q_net
    optimizer = torch.optim.Adam(q_net.parameters(), lr=cfg.lr)
    buffer = ReplayBuffer(cfg.buffer_size if cfg.replay else cfg.train_every, (obs_dim,), device)
    loss_fn = None if cfg.huber else (lambda q, a, y: F.mse_loss(q.gather(1, a.unsqueeze(1)).squeeze(1), y))

    log = dict(episode_returns=[], evals=[], q_means=[], losses=[], solved_step=None)
    obs, _ = env.reset(seed=seed)
    episode_return = 0.0
    t0 = time.perf_counter()
    bar = tqdm(range(1, cfg.total_steps + 1), desc=f"DQN seed {seed}", disable=not progress, mininterval=1.0)
    step = 0
    for step in bar:
        eps = linear_epsilon(step, cfg.eps_start, cfg.eps_end, cfg.eps_duration)
        action = select_action(q_net, torch.as_tensor(obs, dtype=torch.float32, device=device), eps, gen)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        # Only a real termination stops bootstrapping; the 500-step time limit does not.
        buffer.add(obs, action, reward, next_obs, terminated)
        obs = next_obs
        episode_return += reward
        if terminated or truncated:
            log["episode_returns"].append((step, episode_return))
            obs, _ = env.reset()
            episode_return = 0.0

        if step >= cfg.learning_starts and step % cfg.train_every == 0:
            for _ in range(cfg.gradient_steps):
                obs_b, act_b, rew_b, next_b, done_b = buffer.sample(cfg.batch_size, gen)
                batch = (obs_b, act_b, clip_reward(rew_b), next_b, done_b)
                loss, q_mean = dqn_update(q_net, target_net, optimizer, batch, cfg.gamma, cfg.double, loss_fn)
                log["losses"].append(loss)
            log["q_means"].append((step, q_mean))
        if cfg.target_net and step % cfg.target_every == 0:
            update_target(q_net, target_net, cfg.tau)

        if step % cfg.eval_every == 0:
            score = evaluate(q_net, cfg.eval_episodes, device=device)
            log["evals"].append((step, score))
            bar.set_postfix(eval=f"{score:.0f}", eps=f"{eps:.2f}")
            if score >= cfg.solved_at and log["solved_step"] is None:
                log["solved_step"] = step
                if cfg.stop_when_solved:
                    break
    env.close()
    log.update(q_net=q_net.eval(), steps=step, seconds=time.perf_counter() - t0)
    return log


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


def train_reinforce(episodes: int = 500, lr: float = 3e-3, gamma: float = 0.99, seed: int = 0) -> list[float]:
    """REINFORCE with a learned baseline on CartPole-v1, one update per episode; returns each episode's return."""
    torch.manual_seed(seed)
    env = make_env(seed)
    net = PolicyNetwork(env.observation_space.shape[0], int(env.action_space.n))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    history = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        log_probs, values, rewards = [], [], []
        done = False
        while not done:
            logits, value = net(torch.as_tensor(obs, dtype=torch.float32))
            log_pi = logits.log_softmax(-1)
            action = int(torch.multinomial(log_pi.exp(), 1))  # a ~ π(· | s)
            obs, reward, terminated, truncated, _ = env.step(action)
            log_probs.append(log_pi[action])
            values.append(value)
            rewards.append(float(reward))
            done = terminated or truncated
        returns = discounted_returns(torch.tensor(rewards), gamma)
        values_t = torch.stack(values)
        loss = reinforce_loss(torch.stack(log_probs), returns, values_t) + 0.5 * F.mse_loss(values_t, returns) / 100
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(sum(rewards))
    env.close()
    return history


# ----------------------------------------------------------------------------- experiments

VARIANTS = {
    "DQN": {},
    "Double DQN": {"double": True},
    "no replay": {"replay": False},
    "no target network": {"target_net": False},
    "MSE instead of Huber": {"huber": False},
}


def _run_one(job: tuple[str, int, dict, str]) -> tuple[str, int, dict]:
    """One training run in a worker process (one CPU thread each); returns what the plots need."""
    name, seed, kwargs, device = job
    torch.set_num_threads(1)
    log = train_dqn(DQNConfig(**kwargs), seed=seed, device=device)
    log.pop("q_net")
    log.pop("losses")
    return name, seed, log


def run_experiments(steps: int, seeds: tuple[int, ...], variants: dict = VARIANTS, device="cpu",
                    workers: int | None = None, progress: bool = True, stop_when_solved: bool = False
                    ) -> dict[str, list[dict]]:
    """Every variant × seed for ``steps`` env steps (by default with no early stop), in parallel worker processes."""
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm

    jobs = [(name, seed, dict(kw, total_steps=steps, stop_when_solved=stop_when_solved), str(device))
            for name, kw in variants.items() for seed in seeds]
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    logs: dict[str, list[dict]] = {name: [] for name in variants}
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_run_one, job) for job in jobs]
        for fut in tqdm(as_completed(futures), total=len(jobs), desc="DQN runs", disable=not progress):
            name, seed, log = fut.result()
            logs[name].append(dict(log, seed=seed))
    for name in logs:
        logs[name].sort(key=lambda log: log["seed"])
    return logs


def plot_learning_curves(ax, logs: dict[str, list[dict]], solved_at: float = 475.0) -> None:
    """Greedy evaluation return vs env steps: the mean over seeds as a line, min–max as a band."""
    for name, runs in logs.items():
        steps = [s for s, _ in runs[0]["evals"]]
        scores = torch.tensor([[r for _, r in run["evals"]][:len(steps)] for run in runs])
        line, = ax.plot(steps, scores.mean(0), label=f"{name} ({len(runs)} seeds)")
        ax.fill_between(steps, scores.min(0).values, scores.max(0).values, color=line.get_color(), alpha=0.15)
    ax.axhline(solved_at, color="gray", ls="--", lw=1)
    ax.set(xlabel="environment steps", ylabel="greedy return (20 episodes)", title="CartPole-v1 learning curves")
    ax.legend(fontsize=8)


def plot_q_values(ax, logs: dict[str, list[dict]], gamma: float = 0.99) -> None:
    """Mean Q(s, a) of the training batches over time, one line per run."""
    for name, runs in logs.items():
        for i, run in enumerate(runs):
            steps, q = zip(*run["q_means"])
            ax.plot(steps, q, color="C0" if name == "DQN" else "C1", alpha=0.6, lw=1, label=name if i == 0 else None)
    ax.axhline(1 / (1 - gamma), color="gray", ls="--", lw=1, label=f"1/(1−γ) = {1 / (1 - gamma):.0f}: the largest true value")
    ax.set(xlabel="environment steps", ylabel="mean Q(s, a) of a batch", title="Q-value estimates")
    ax.legend(fontsize=8)


def main(device: str = "auto", quick: bool = False) -> dict[str, float]:
    """DQN and its ablations over seeds, Double DQN's Q-values, REINFORCE; plots; metrics on the last line."""
    import statistics
    import sys
    from pathlib import Path

    import matplotlib.pyplot as plt

    from course import get_device
    from course.plotting import save

    dev = get_device(device)
    out = Path("runs/day6_dqn")
    steps, seeds = (7_500, (0,)) if quick else (50_000, (0, 1, 2, 3, 4))
    print(f"day6_dqn: {len(VARIANTS)} variants × {len(seeds)} seeds × {steps:,} env steps on {dev}")
    t0 = time.perf_counter()
    logs = run_experiments(steps, seeds, device=dev)
    print(f"  {len(VARIANTS) * len(seeds)} runs in {time.perf_counter() - t0:.0f}s")
    results: dict[str, float] = {}
    for name, runs in logs.items():
        solved = [run["solved_step"] for run in runs if run["solved_step"] is not None]
        key = name.lower().replace(" ", "_")
        results[f"{key}_solved"] = len(solved)
        results[f"{key}_final_eval"] = statistics.mean(run["evals"][-1][1] for run in runs)
        median = f"median {statistics.median(solved):,.0f}" if solved else "none"
        print(f"  {name:22s} solved (greedy return ≥ 475) in {len(solved)}/{len(runs)} seeds; steps to 475: "
              f"{solved or '-'} ({median}); final greedy return "
              f"{results[f'{key}_final_eval']:.0f}; {statistics.mean(r['seconds'] for r in runs):.0f}s per run")
    results["dqn_median_steps_to_475"] = statistics.median(
        [run["solved_step"] for run in logs["DQN"] if run["solved_step"] is not None] or [float("nan")])
    for name in ("DQN", "Double DQN"):
        results[f"{name.lower().replace(' ', '_')}_final_q"] = statistics.mean(run["q_means"][-1][1] for run in logs[name])

    fig, ax = plt.subplots(figsize=(8, 5))
    plot_learning_curves(ax, logs)
    print(f"saved {save(fig, out / 'learning_curves.png')}")
    fig, ax = plt.subplots(figsize=(8, 4))
    plot_q_values(ax, {k: logs[k] for k in ("DQN", "Double DQN")})
    print(f"saved {save(fig, out / 'q_values.png')}")

    t0 = time.perf_counter()
    history = train_reinforce(episodes=60 if quick else 500)
    results["reinforce_last50"] = statistics.mean(history[-50:])
    print(f"  REINFORCE: mean return of the last 50 of {len(history)} episodes {results['reinforce_last50']:.0f} "
          f"({time.perf_counter() - t0:.0f}s)")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(history, alpha=0.5)
    ax.set(xlabel="episode", ylabel="return", title="REINFORCE with a baseline on CartPole-v1")
    print(f"saved {save(fig, out / 'reinforce.png')}")
    sys.stdout.flush()
    print("day6_dqn results: " + " ".join(f"{k}={v:.4g}" for k, v in results.items()))
    return results
