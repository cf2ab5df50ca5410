"""DAY 6: how fast CartPole steps, how fast the reference DQN trains, and how many steps it needs.

Measures
  1. raw CartPole-v1 environment steps per second (random actions, one process);
  2. the reference training loop's env steps per second (acting, storing, learning, evaluating);
  3. steps-to-475 for each of N seeds: the first evaluation (every 2,500 steps, 20 greedy
     episodes) whose mean return is at least 475, training stopped there; runs in parallel,
     one process and one thread per seed.

Target (issue 7): a mean greedy return >= 475 within <= 50,000 env steps for at least 4 of 5 seeds.

    python benchmarks/dqn_speed.py [--seeds 5] [--device cpu|cuda] [--max-steps 50000]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from solutions.day6_dqn.reference import DQNConfig, make_env, run_experiments, train_dqn  # noqa: E402


def env_steps_per_second(steps: int = 50_000) -> float:
    env = make_env(0)
    env.reset(seed=0)
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - t0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ...) for steps-to-475 (default 5)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the networks live (default cpu)")
    p.add_argument("--max-steps", type=int, default=50_000, help="env-step budget per seed (default 50,000)")
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda was given but this machine has no CUDA GPU; use --device cpu.")
        return 2
    torch.set_num_threads(1)
    print(f"machine: {os.cpu_count()} CPU cores, torch {torch.__version__}, device {args.device}")

    print(f"1. CartPole-v1, random actions: {env_steps_per_second():,.0f} env steps/s")

    t0 = time.perf_counter()
    log = train_dqn(DQNConfig(total_steps=10_000, stop_when_solved=False), seed=0, device=args.device)
    dt = time.perf_counter() - t0
    print(f"2. reference DQN loop (10,000 steps, {len(log['losses']):,} gradient steps, 4 evaluations): "
          f"{10_000 / dt:,.0f} env steps/s ({dt:.1f}s)")

    seeds = tuple(range(args.seeds))
    t0 = time.perf_counter()
    logs = run_experiments(args.max_steps, seeds, {"DQN": {}}, device=args.device, stop_when_solved=True)["DQN"]
    wall = time.perf_counter() - t0
    solved = [run["solved_step"] for run in logs if run["solved_step"] is not None]
    print(f"3. steps to a greedy return >= 475 (budget {args.max_steps:,}), {len(seeds)} seeds in parallel, "
          f"{wall:.0f}s wall:")
    for run in logs:
        print(f"   seed {run['seed']}: {run['solved_step'] if run['solved_step'] else 'not solved':>8} "
              f"({run['seconds']:.0f}s; evaluations {[round(s) for _, s in run['evals']]})")
    need = max(1, len(seeds) - 1)
    verdict = "meets" if len(solved) >= need else "MISSES"
    print(f"   solved {len(solved)}/{len(seeds)} seeds; median steps to 475: "
          f"{statistics.median(solved) if solved else float('nan'):,.0f}; target >= {need}/{len(seeds)}: {verdict}")
    return 0 if len(solved) >= need else 1


if __name__ == "__main__":
    sys.exit(main())
