"""Visible checks of DAY 6 (DQN on CartPole, and REINFORCE).

Deterministic pieces (targets, losses, the target update, one learning step) are compared
with formulas written here with torch in float64 (tolerance 1e-10 + 1e-8·|expected|).
Random pieces (the replay buffer's sampling, ε-greedy) are checked statistically, with
bounds of 6 standard deviations, so a correct implementation fails with probability
about 2e-9 per count: the checks never flake, and a biased sampler still fails by far.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course.checks.common import TOL, _fail, _ok, call_student, observed, rand64, type_name
from course.checks.dqn_pieces import (check_dqn_loss, check_epsilon, check_q_network, check_reinforce,
                                      check_target_update, check_td_targets, q_network_spec)
from course.checks.dqn_learning_step import check_dqn_update

__all__ = ["TOL", "SIGMAS", "check_replay_buffer", "check_epsilon", "check_select_action", "check_q_network",
           "check_td_targets", "check_dqn_loss", "check_target_update", "check_dqn_update", "check_reinforce",
           "q_network_spec"]
# Every check is split into a _run half (the kernel) and a _verdict half (the grader): the replay buffer
# and ε-greedy here, ε's schedule, the Q-network, TD targets, the loss, the target update and REINFORCE
# in dqn_pieces.py, the learning step in dqn_learning_step.py (see solutions/<day>/hidden.py).

# Count tests allow 6 standard deviations: a correct sampler fails one with probability ~2e-9. The
# sample sizes below put each slip they are there to catch ≥ 5 standard deviations beyond that bound.
SIGMAS = 6.0

_rand = rand64  # seeded float64 normals (course.checks.common)


def _count_within(count: int, n: int, p: float, what: str, hint: str) -> None:
    """Fail unless ``count`` successes out of ``n`` are within SIGMAS standard deviations of n·p."""
    __tracebackhide__ = True
    sd = math.sqrt(n * p * (1 - p))
    if abs(count - n * p) > SIGMAS * sd + 1e-9:
        _fail(f"{what}: {count} of {n} ({count / n:.3f}); expected about {p:.3f} "
              f"(±{SIGMAS * sd / n:.3f} allowed). {hint}".strip())


# ----------------------------------------------------------------------------- replay buffer


def _transition(i: int, obs_dim: int = 3):
    """Transition number i (i ≥ 1): every field encodes i, so a sampled row can be traced back."""
    obs = np.arange(obs_dim, dtype=np.float64) / 10 + i             # numpy, like gymnasium gives
    return obs, i % 2, float(i) * 10, torch.as_tensor(obs + 100), i % 3 == 0


BATCH_FIELDS = ("obs", "actions", "rewards", "next_obs", "dones")


def _sample(buf, batch_size, gen, what) -> dict:
    """What one call of ``buf.sample`` returned, as observed, and on which devices its tensors were."""
    out = call_student(buf.sample, batch_size, gen, what=what)
    devices = [t.device.type for t in out] if isinstance(out, (tuple, list)) and all(torch.is_tensor(t) for t in out) \
        else []
    return {"batch": observed(out), "devices": devices}


def _checked_batch(sampled: dict, batch_size: int, what: str, device: str = "cpu"):
    """The five tensors of a sampled batch, after checking their types, shapes, dtypes and device."""
    __tracebackhide__ = True
    out = sampled["batch"]
    if not isinstance(out, list) or len(out) != 5:
        _fail(f"{what} returned {type_name(out)}; expected a tuple (obs, actions, rewards, next_obs, dones).")
    want = {"obs": ((batch_size, 3), torch.float32), "actions": ((batch_size,), torch.int64),
            "rewards": ((batch_size,), torch.float32), "next_obs": ((batch_size, 3), torch.float32),
            "dones": ((batch_size,), torch.float32)}
    for name, t in zip(BATCH_FIELDS, out):
        shape, dtype = want[name]
        if not torch.is_tensor(t):
            _fail(f"{what}: {name} is a {type_name(t)}; expected a tensor (store everything in tensors).")
        if tuple(t.shape) != shape or t.dtype != dtype:
            _fail(f"{what}: {name} has shape {tuple(t.shape)} and dtype {t.dtype}; expected {shape} and {dtype}. "
                  + ("Actions index Q-values, so they must be int64 (torch.long)." if name == "actions" else
                     "Store dones as float (1.0 = terminated) so they can multiply γ·max Q." if name == "dones" else ""))
    for kind in sampled["devices"]:
        if kind != torch.device(device).type:
            _fail(f"buffer.sample returned a tensor on {kind}; expected {device} (the buffer's device).")
    return out


def _ids(batch, what) -> list[int]:
    """Which transitions a sampled batch holds; fail if a row mixes fields of different transitions."""
    __tracebackhide__ = True
    obs, actions, rewards, next_obs, dones = (t.detach().cpu() for t in batch)
    ids = obs[:, 0].round().long()
    if (obs[:, 0] == 0).any():
        _fail(f"{what} returned an all-zero observation: it sampled a slot that was never filled. "
              "Draw indices from the filled slots only: torch.randint(len(self), ...).")
    expected = (torch.arange(obs.shape[1], dtype=torch.float64) / 10 + ids[:, None]).float()  # _transition's obs
    ok = ((obs - expected).abs().max(1).values < 1e-5) & (actions == ids % 2) & ((rewards - ids * 10.0).abs() < 1e-4) \
        & ((next_obs - expected - 100).abs().max(1).values < 1e-4) & (dones == (ids % 3 == 0).float())
    if not ok.all():
        j = int(torch.nonzero(~ok)[0])
        _fail(f"{what}: row {j} does not match any stored transition (obs {obs[j].tolist()}, action {int(actions[j])}, "
              f"reward {float(rewards[j])}, next_obs {next_obs[j].tolist()}, done {float(dones[j])}). "
              "Index all five tensors with the same indices, and store each field in its own slot.")
    return ids.tolist()


SAMPLES = 1500


def replay_buffer_run(ReplayBuffer, *, seed: int, device="cpu") -> dict:
    """len when new, after 3 adds to 5 slots and after 8; 1,500 samples after 3 and after 8 adds; two
    batches in a row from one generator; two from generators seeded alike (the global seed changed)."""
    buf = call_student(ReplayBuffer, 5, (3,), device, what="ReplayBuffer(5, (3,), device)")
    run = {"len": [observed(call_student(len, buf, what="len(buffer)"))]}
    for i in (1, 2, 3):
        call_student(buf.add, *_transition(i), what=f"buffer.add (transition {i})")
    run["len"].append(observed(call_student(len, buf, what="len(buffer)")))
    if run["len"] != [0, 3]:
        return run  # the verdict stops at the length, before sampling a buffer whose size is wrong
    gen = torch.Generator().manual_seed(seed)
    run["three"] = _sample(buf, SAMPLES, gen, f"buffer.sample({SAMPLES}) with 3 of 5 slots filled")
    for i in range(4, 9):  # 8 transitions into 5 slots: 1, 2, 3 are overwritten
        call_student(buf.add, *_transition(i), what=f"buffer.add (transition {i}, buffer full)",
                     hint="When pos reaches capacity, wrap round to 0: pos = (pos + 1) % capacity.")
    run["len"].append(observed(call_student(len, buf, what="len(buffer)")))
    if run["len"][2] != 5:
        return run
    run["full"] = _sample(buf, SAMPLES, gen, f"buffer.sample({SAMPLES}) after 8 adds to 5 slots")
    run["in_a_row"] = [_sample(buf, 16, gen, "buffer.sample") for _ in range(2)]
    run["seeded"] = [_sample(buf, 16, torch.Generator().manual_seed(seed + 1), "buffer.sample")]
    torch.manual_seed(seed + 12345)  # the global RNG must not matter
    run["seeded"].append(_sample(buf, 16, torch.Generator().manual_seed(seed + 1), "buffer.sample"))
    return run


def replay_buffer_verdict(run: dict, *, seed: int, device="cpu") -> None:
    __tracebackhide__ = True
    n = SAMPLES
    if run["len"][0] != 0:
        _fail("A new ReplayBuffer must have len 0.")
    if len(run["len"]) < 2 or run["len"][1] != 3:
        _fail(f"After 3 adds to a buffer of capacity 5, len(buffer) is {run['len'][1]}; expected 3 (the filled slots).")
    ids = _ids(_checked_batch(run["three"], n, f"buffer.sample({n}) with 3 of 5 slots filled", device), "buffer.sample")
    for i in (1, 2, 3):
        _count_within(ids.count(i), n, 1 / 3, f"buffer.sample with 3 filled slots drew transition {i}",
                      "Sampling must be uniform over the filled slots.")
    if len(run["len"]) < 3 or run["len"][2] != 5:
        _fail(f"After 8 adds to a buffer of capacity 5, len(buffer) is {run['len'][2]}; expected 5 (never more than capacity).")
    ids = _ids(_checked_batch(run["full"], n, f"buffer.sample({n}) after 8 adds to 5 slots", device), "buffer.sample")
    if set(ids) != {4, 5, 6, 7, 8}:
        _fail(f"After adding transitions 1..8 to a buffer of capacity 5, samples contain transitions {sorted(set(ids))}; "
              "expected exactly 4..8: the oldest transition is the one overwritten (circular buffer).")
    for i in range(4, 9):
        _count_within(ids.count(i), n, 1 / 5, f"buffer.sample of a full buffer drew transition {i}",
                      "Sampling must be uniform over all slots.")
    # independent draws: the step from one row to the next is uniform too (consecutive slots, or one slot
    # repeated, have the right marginals but correlated rows)
    steps = [(b - a) % 5 for a, b in zip(ids, ids[1:])]
    for d in range(5):
        _count_within(steps.count(d), len(steps), 1 / 5, f"in one batch, a row {d} slots after the previous row came",
                      "Draw every row independently (torch.randint(len(self), (batch_size,), generator=...)), "
                      "not a run of neighbouring slots or one slot repeated.")
    first, second = (_ids(_checked_batch(b, 16, "buffer.sample", device), "buffer.sample") for b in run["in_a_row"])
    if first == second:
        _fail("Two calls of buffer.sample(16, generator) in a row returned the same batch: the generator is being "
              "re-seeded or copied inside sample. Draw from the generator you are given, so each call advances it.")
    a, b = (_checked_batch(s, 16, "buffer.sample", device) for s in run["seeded"])
    if not all(torch.equal(x, y) for x, y in zip(a, b)):
        _fail("buffer.sample gave different batches for two generators with the same seed: "
              "pass generator=generator to torch.randint, so that runs are reproducible.")


def check_replay_buffer(ReplayBuffer, *, seed: int = 0, verbose: bool = True, device="cpu") -> None:
    """len, dtypes and shapes; consistent rows; uniform sampling over filled slots only;
    circular overwrite of the oldest transition; reproducible with a seeded generator."""
    __tracebackhide__ = True
    replay_buffer_verdict(replay_buffer_run(ReplayBuffer, seed=seed, device=device), seed=seed, device=device)
    if verbose:
        _ok("ReplayBuffer: len, dtypes and shapes right; rows are whole transitions; uniform over filled slots; "
            "the oldest transition is overwritten first; reproducible with a generator.")


# ----------------------------------------------------------------------------- exploration


class _Recorder(nn.Module):
    """A fixed linear Q-network that records whether autograd was on during its forward passes."""

    def __init__(self, obs_dim: int, n_actions: int, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(n_actions, obs_dim, generator=g))
        self.bias = nn.Parameter(torch.randn(n_actions, generator=g))
        self.grad_enabled_calls = 0

    def forward(self, x):
        self.grad_enabled_calls += int(torch.is_grad_enabled())
        return F.linear(x, self.weight, self.bias)


SELECT = dict(n_actions=3, obs_dim=4)


def _select_inputs(seed):
    """The recording Q-network, the generator the calls share (after the states are drawn from it), the
    200 states and their greedy actions."""
    q_net = _Recorder(SELECT["obs_dim"], SELECT["n_actions"], seed)
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(200, SELECT["obs_dim"], generator=g)
    with torch.no_grad():
        greedy = q_net(states).argmax(1)
    return q_net, g, states, greedy


def select_action_run(select_action, *, seed: int) -> dict:
    """The actions chosen at ε = 0 (50 states), how many of those forward passes had autograd on, two
    runs at ε = 0.5 from generators seeded alike (the global seed changed in between), 300 at ε = 1
    and 300 at ε = 0.3, the calls sharing one generator."""
    q_net, g, states, greedy = _select_inputs(seed)
    q_net.grad_enabled_calls = 0
    call = lambda eps, i, gen, what: observed(call_student(select_action, q_net, states[i % 200], eps, gen,  # noqa: E731
                                                           what=what))
    run = {"greedy": [call(0.0, i, g, "select_action(q_net, obs, epsilon=0.0, generator)") for i in range(50)],
           "grad_enabled_calls": q_net.grad_enabled_calls, "picks": []}
    if run["greedy"] != greedy[:50].tolist() or run["grad_enabled_calls"]:
        return run  # the verdict fails on the ε = 0 phase whatever follows: stop here (saves 650 calls)
    for k in range(2):
        torch.manual_seed(seed + 777 + k)  # the global RNG must not matter
        gen = torch.Generator().manual_seed(seed + 1)
        run["picks"].append([call(0.5, i, gen, "select_action(epsilon=0.5)") for i in range(50)])
    run["uniform"] = [call(1.0, i, g, "select_action(epsilon=1.0)") for i in range(300)]
    run["mixed"] = [call(0.3, i, g, "select_action(epsilon=0.3)") for i in range(300)]
    return run


def select_action_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    n_actions = SELECT["n_actions"]
    q_net, _, states, greedy = _select_inputs(seed)
    if len(run["greedy"]) != 50:
        _fail("select_action: expected 50 actions at epsilon = 0.")
    for i, a in enumerate(run["greedy"]):
        if not isinstance(a, int) or isinstance(a, bool):
            _fail(f"select_action returned {type_name(a)}; expected a Python int (use int(...)): "
                  "gymnasium's env.step wants a plain integer action.")
        if a != int(greedy[i]):
            with torch.no_grad():
                q = q_net(states[i]).tolist()
            _fail(f"With epsilon = 0, select_action chose action {a} but the argmax of the Q-values "
                  f"{q} is {int(greedy[i])}. ε = 0 must always exploit (argmax).")
    if run["grad_enabled_calls"] != 0:
        _fail("select_action ran the Q-network with autograd on: wrap the forward pass in torch.no_grad() "
              "(choosing an action needs no gradient, and a graph per step wastes time and memory).")
    if len(run.get("uniform", ())) != 300 or len(run.get("mixed", ())) != 300:
        _fail("select_action: expected 300 actions at epsilon = 1 and 300 at epsilon = 0.3.")
    if len(run["picks"]) != 2 or run["picks"][0] != run["picks"][1]:
        _fail("select_action gave different actions for two generators with the same seed: draw both the coin "
              "(torch.rand) and the random action (torch.randint) with generator=generator.")
    # ε = 1: each action, and the greedy one, with probability 1/n (whatever the Q-net's argmaxes are)
    chosen, n = run["uniform"], 300
    uniform_hint = ("ε = 1 must pick uniformly among all n actions, the greedy one included: "
                    "torch.randint(n_actions, (), generator=generator).")
    _count_within(sum(a == int(greedy[i % 200]) for i, a in enumerate(chosen)), n, 1 / n_actions,
                  "With epsilon = 1, the greedy action was chosen", uniform_hint)
    for a in range(n_actions):
        _count_within(chosen.count(a), n, 1 / n_actions, f"With epsilon = 1, action {a} was chosen", uniform_hint)
    # ε = 0.3: greedy with probability 1 − ε + ε/n = 0.8. ε = 1 above already catches "never explores" and
    # "exploration skips the greedy action"; 300 draws here catch "explores when u > ε" (0.53) by 9 SD.
    eps = 0.3
    hits = sum(a == int(greedy[i % 200]) for i, a in enumerate(run["mixed"]))
    p = 1 - eps + eps / n_actions
    hint = ("Explore when u < epsilon, not u > epsilon." if abs(hits / n - (eps + (1 - eps) / n_actions)) < 0.08 else
            "Exploration picks any action, the greedy one included (probability 1 − ε + ε/n of greedy)."
            if abs(hits / n - (1 - eps)) < 0.05 else "")
    _count_within(hits, n, p, f"With epsilon = {eps} and {n_actions} actions, the greedy action was chosen", hint)


def check_select_action(select_action, *, seed: int = 0, verbose: bool = True) -> None:
    """ε = 0 greedy; ε = 1 uniform over all actions; ε = 0.3 greedy with probability 0.7 + 0.3/n;
    a Python int; reproducible with the generator; no autograd graph."""
    __tracebackhide__ = True
    select_action_verdict(select_action_run(select_action, seed=seed), seed=seed)
    if verbose:
        _ok("select_action: greedy at ε = 0, uniform at ε = 1, the right mix at ε = 0.3; a Python int; "
            "no autograd; reproducible.")
