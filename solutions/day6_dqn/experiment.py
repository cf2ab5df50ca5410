"""DAY 6, deep reinforcement learning (深層強化学習): the reference experiment of `course run day6_dqn`.

What the DAY's notebook trains and plots, at full scale (or ``--quick``): the training loops,
the experiment's configuration, its plots and ``main``. The exercises themselves are in
``reference.py``; the notebook includes what it needs from both files.
"""
from __future__ import annotations

import copy
import multiprocessing as mp
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from course import get_device
from course.plotting import save
from solutions.day6_dqn.reference import (PolicyNetwork, QNetwork, ReplayBuffer, clip_reward, discounted_returns,
                                          dqn_update, linear_epsilon, reinforce_loss, select_action, update_target)


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
                    workers: int | None = None, progress: bool = True, stop_when_solved: bool = False,
                    config: dict | None = None) -> dict[str, list[dict]]:
    """Every variant × seed for ``steps`` env steps (by default with no early stop), in parallel worker
    processes; ``config``: more DQNConfig fields for every run."""
    jobs = [(name, seed, dict(kw, **(config or {}), total_steps=steps, stop_when_solved=stop_when_solved), str(device))
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
    dev = get_device(device)
    out = Path("runs/day6_dqn")
    steps, seeds = (1_500, (0,)) if quick else (50_000, (0, 1, 2, 3, 4))  # quick: a smoke run,
    config = {"eval_every": 1_500, "eval_episodes": 5} if quick else {}  # two training rounds, one evaluation
    print(f"day6_dqn: {len(VARIANTS)} variants × {len(seeds)} seeds × {steps:,} env steps on {dev}")
    t0 = time.perf_counter()
    logs = run_experiments(steps, seeds, device=dev, config=config)
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
    history = train_reinforce(episodes=15 if quick else 500)
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
