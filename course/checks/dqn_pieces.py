"""DAY 6 visible checks, continued: ε's schedule, the Q-network, TD targets, the loss, the target
update and REINFORCE. Each is a ``_run`` half (calls the student's code on inputs made from ``seed``,
returns what it observed) and a ``_verdict`` half (makes the same inputs again and compares), so
that their hidden tests are judged outside the student's process (autograder/judge.py); a visible
check is the one after the other. The DAY's own module in this folder re-exports them.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from course.checks.common import (TOL, _fail, _ok, call_student, compare, copy_by_use, forbid_calls_in, observed,
                                  observed_grads, rand64, source_of, type_name)

__all__ = ["check_epsilon", "check_q_network", "check_td_targets", "check_dqn_loss", "check_target_update",
           "check_reinforce", "q_network_spec"]

_rand = rand64


# ----------------------------------------------------------------------------- exploration

def _epsilon_cases(seed):
    g = torch.Generator().manual_seed(seed)
    cases = [(1.0, 0.05, 10_000), (0.5, 0.1, 300), (1.0, 0.1, 1)]  # the last: ε is `start` at step 0 even then
    cases.append((float(torch.rand((), generator=g)) * 0.5 + 0.5, float(torch.rand((), generator=g)) * 0.2,
                  int(torch.randint(50, 5000, (), generator=g))))
    return [(start, end, duration, step) for start, end, duration in cases
            for step in sorted({0, 1, duration // 3, duration // 2, duration - 1, duration, duration + 1, 3 * duration})]


def epsilon_run(linear_epsilon, *, seed: int) -> list:
    return [observed(call_student(linear_epsilon, step, start, end, duration,
                                  what=f"linear_epsilon({step}, {start:g}, {end:g}, {duration})"))
            for start, end, duration, step in _epsilon_cases(seed)]


def epsilon_verdict(runs: list, *, seed: int) -> None:
    __tracebackhide__ = True
    for (start, end, duration, step), got in zip(_epsilon_cases(seed), runs, strict=True):
        want = start + min(step / duration, 1.0) * (end - start)
        if not isinstance(got, (float, int)) or isinstance(got, bool):
            _fail(f"linear_epsilon returned {type_name(got)}; expected a Python float.")
        if abs(got - want) > 1e-9:
            frac = step / duration
            guesses = {
                "After `duration` steps ε stays at `end`: clamp the fraction, min(step / duration, 1).":
                    start + frac * (end - start),
                "ε starts at `start` and falls to `end`, not the other way round.":
                    end + min(frac, 1.0) * (start - end),
                "Use float division, step / duration (step // duration is 0 until the end).":
                    start + min(step // duration, 1) * (end - start),
            }
            hint = next((h for h, v in guesses.items() if abs(got - v) < 1e-9), "")
            _fail(f"linear_epsilon({step}, start={start:g}, end={end:g}, duration={duration}) = {got:.6g}; "
                  f"expected {want:.6g}. {hint}".strip())


def check_epsilon(linear_epsilon, *, seed: int = 0, verbose: bool = True) -> None:
    """ε(step) = start + min(step / duration, 1)·(end − start), as a float."""
    __tracebackhide__ = True
    epsilon_verdict(epsilon_run(linear_epsilon, seed=seed), seed=seed)
    if verbose:
        _ok("linear_epsilon: from start to end in `duration` steps, then constant.")


# ----------------------------------------------------------------------------- Q-network

Q_NETWORK_CASES = ((4, 2, None), (6, 3, (32,)), (5, 4, (16, 8, 12)), (3, 5, (8, 8)))  # the last: equal widths


def q_network_spec(obs_dim: int, n_actions: int, hidden: tuple[int, ...]) -> nn.Sequential:
    """The QNetwork of the notebook's docstring, built from torch.nn."""
    layers, width = [], obs_dim
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, n_actions))


def _q_spec(obs_dim, n_actions, hidden, seed):
    spec = q_network_spec(obs_dim, n_actions, hidden or (120, 84)).double()
    g = torch.Generator().manual_seed(seed + obs_dim)
    with torch.no_grad():
        for p in spec.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) / math.sqrt(p.shape[-1]))
    return spec


def q_network_run(QNetwork, *, seed: int) -> list:
    runs = []
    for obs_dim, n_actions, hidden in Q_NETWORK_CASES:
        args = (obs_dim, n_actions) if hidden is None else (obs_dim, n_actions, hidden)
        what = f"QNetwork{args}"
        net = call_student(QNetwork, *args, what=what).double()
        x = _rand(7, obs_dim, seed=seed + 3, scale=2.0)
        copy_by_use(_q_spec(obs_dim, n_actions, hidden, seed), net, (x,), what)
        runs.append(observed(call_student(net, x, what=f"{what} forward on a (7, {obs_dim}) batch")))
    return runs


def q_network_verdict(runs: list, *, seed: int) -> None:
    __tracebackhide__ = True
    for (obs_dim, n_actions, hidden), got in zip(Q_NETWORK_CASES, runs, strict=True):
        args = (obs_dim, n_actions) if hidden is None else (obs_dim, n_actions, hidden)
        with torch.no_grad():
            want = _q_spec(obs_dim, n_actions, hidden, seed)(_rand(7, obs_dim, seed=seed + 3, scale=2.0))
        hint = ""
        if torch.is_tensor(got) and got.shape == want.shape and got.min() >= 0 and want.min() < 0:
            hint = "Your Q-values are never negative: no ReLU after the last Linear (Q-values can be any real number)."
        compare(got, want, f"QNetwork{args} output (same weights as the stated layers)", **TOL,
                hint=hint or "Order: Linear → ReLU for each hidden width, then a plain Linear to the actions.")


def check_q_network(QNetwork, *, seed: int = 0, verbose: bool = True) -> None:
    """The stated MLP (one Linear + ReLU per hidden width, a plain Linear to the actions)."""
    __tracebackhide__ = True
    q_network_verdict(q_network_run(QNetwork, seed=seed), seed=seed)
    if verbose:
        _ok("QNetwork: Linear + ReLU per hidden width, then a Linear to the actions; any `hidden` works.")


# ----------------------------------------------------------------------------- TD targets

def nets(obs_dim: int, n_actions: int, seed: int):
    """An online and a target network, each from its own seed."""
    made = []
    for k in range(2):
        torch.manual_seed(seed + k)
        made.append(nn.Sequential(nn.Linear(obs_dim, 16), nn.ReLU(), nn.Linear(16, n_actions)).double())
    return made


def where_nets_disagree(next_obs, dones, q_net, target_net, g, need: int = 4):
    """``next_obs``/``dones`` with their first ``need`` rows replaced by non-terminal next states on which
    the online and the target network choose different actions. There Double DQN's target differs from
    DQN's, so a step that ignores ``double`` fails for every seed (random batches alone miss it for some)."""
    found = []
    with torch.no_grad():
        for attempt in range(100):  # wider and wider: two nets that agree near 0 still differ somewhere
            scale = (1.0, 3.0, 10.0, 30.0)[attempt % 4]
            candidates = scale * torch.randn(64, next_obs.shape[1], generator=g, dtype=next_obs.dtype)
            found += list(candidates[q_net(candidates).argmax(1) != target_net(candidates).argmax(1)])
            if len(found) >= need:
                break
    next_obs, dones = next_obs.clone(), dones.clone()
    if found:  # none: the two nets choose alike on every state tried (the caller can draw other nets)
        next_obs[:len(found[:need])] = torch.stack(found[:need])
        dones[:len(found[:need])] = 0.0
    return next_obs, dones, len(found)


def td_batch(seed: int, batch: int = 32, obs_dim: int = 4):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(batch, generator=g, dtype=torch.float64)
    next_obs = torch.randn(batch, obs_dim, generator=g, dtype=torch.float64)
    dones = (torch.rand(batch, generator=g) < 0.3).double()
    dones[0], dones[1] = 1.0, 0.0
    return rewards, next_obs, dones


GAMMAS = (0.99, 0.5)


def _td_inputs(seed):
    q_net, target_net = nets(4, 3, seed)
    rewards, next_obs, dones = td_batch(seed + 7)
    # some next states where the two nets choose differently, so Double DQN's choice matters for every seed
    next_obs, dones, _ = where_nets_disagree(next_obs, dones, q_net, target_net, torch.Generator().manual_seed(seed))
    return q_net, target_net, rewards, next_obs, dones


def _with_grad_flag(value) -> dict:
    return {"value": observed(value), "requires_grad": bool(torch.is_tensor(value) and value.requires_grad)}


def td_targets_run(td_targets, double_dqn_targets, *, seed: int) -> list:
    q_net, target_net, rewards, next_obs, dones = _td_inputs(seed)
    return [{"td": _with_grad_flag(call_student(td_targets, rewards, next_obs, dones, target_net, gamma,
                                                what="td_targets")),
             "double": _with_grad_flag(call_student(double_dqn_targets, rewards, next_obs, dones, q_net, target_net,
                                                    gamma, what="double_dqn_targets"))} for gamma in GAMMAS]


def td_targets_verdict(runs: list, *, seed: int) -> None:
    __tracebackhide__ = True
    q_net, target_net, rewards, next_obs, dones = _td_inputs(seed)
    with torch.no_grad():
        tq, oq = target_net(next_obs), q_net(next_obs)
    for gamma, run in zip(GAMMAS, runs, strict=True):
        want = rewards + gamma * (1 - dones) * tq.max(1).values
        got = run["td"]["value"]
        hint = ""
        if torch.is_tensor(got) and got.shape == want.shape and got.dtype == want.dtype:
            if torch.allclose(got, rewards + gamma * tq.max(1).values):
                hint = "Terminal transitions (done = 1) have no future: multiply γ·max Q by (1 − done)."
            elif torch.allclose(got, rewards + gamma * dones * tq.max(1).values):
                hint = "The mask is the wrong way round: (1 − done), so that terminal transitions get just r."
            elif torch.allclose(got, gamma * (rewards + (1 - dones) * tq.max(1).values)):
                hint = "γ discounts the future only: y = r + γ·(1 − done)·max Q, not γ·(r + …)."
            elif torch.allclose(got, rewards + gamma * (1 - dones) * tq.mean(1)):
                hint = "Use the max over next actions (Q-learning's greedy target), not the mean."
        compare(got, want, f"td_targets (γ = {gamma})", **TOL, hint=hint)
        if run["td"]["requires_grad"]:
            _fail("td_targets returned a tensor that requires grad: the targets are constants for the loss. "
                  "Compute them under torch.no_grad() (or .detach()).")
        chosen = tq.gather(1, oq.argmax(1, keepdim=True)).squeeze(1)
        want = rewards + gamma * (1 - dones) * chosen
        got = run["double"]["value"]
        hint = ""
        if torch.is_tensor(got) and got.shape == want.shape and got.dtype == want.dtype:
            if torch.allclose(got, rewards + gamma * (1 - dones) * tq.max(1).values):
                hint = "That is plain DQN: the online q_net chooses a* = argmax Q(s', ·), the target_net evaluates it."
            elif torch.allclose(got, rewards + gamma * (1 - dones) * oq.max(1).values):
                hint = "Both choice and evaluation use q_net: evaluate a* with target_net."
            elif torch.allclose(got, rewards + gamma * (1 - dones) * oq.gather(1, tq.argmax(1, keepdim=True)).squeeze(1)):
                hint = "The roles are swapped: q_net chooses (argmax), target_net evaluates (gather)."
            elif torch.allclose(got, rewards + gamma * chosen):
                hint = "Terminal transitions (done = 1) have no future: multiply by (1 − done)."
        compare(got, want, f"double_dqn_targets (γ = {gamma})", **TOL, hint=hint)
        if run["double"]["requires_grad"]:
            _fail("double_dqn_targets returned a tensor that requires grad: compute the targets under torch.no_grad().")


def check_td_targets(td_targets, double_dqn_targets, *, seed: int = 0, verbose: bool = True) -> None:
    """y = r + γ(1 − done)·max Q_target(s'), and the Double DQN version; constants for the loss."""
    __tracebackhide__ = True
    td_targets_verdict(td_targets_run(td_targets, double_dqn_targets, seed=seed), seed=seed)
    if verbose:
        _ok("td_targets and double_dqn_targets: r + γ(1 − done)·Q(s', a*), with a* and its value from the right "
            "networks, and no gradient.")


# ----------------------------------------------------------------------------- loss

DELTAS, CLIP_REWARDS = (1.0, 2.0), [-5.0, -1.0, -0.3, 0.0, 0.5, 1.0, 3.0]
HUBER_CALLS = ["F.smooth_l1_loss", "F.huber_loss", "smooth_l1_loss", "huber_loss", "nn.HuberLoss", "nn.SmoothL1Loss"]


def _loss_cases(seed):
    """(q_values, actions, targets, delta) for each delta, drawn in order from one generator."""
    g = torch.Generator().manual_seed(seed)
    B, A = 64, 3
    actions = torch.randint(A, (B,), generator=g)
    cases = []
    for delta in DELTAS:
        q_values = torch.randn(B, A, generator=g, dtype=torch.float64) * 3
        cases.append((q_values, actions, torch.randn(B, generator=g, dtype=torch.float64) * 3, delta))
    return cases


def dqn_loss_run(dqn_loss, clip_reward, *, seed: int) -> dict:
    """The loss and its gradient w.r.t. q_values (None when not connected) per delta; clip_reward's output."""
    losses = []
    for q_values, actions, targets, delta in _loss_cases(seed):
        q_values = q_values.clone().requires_grad_()
        args = (q_values, actions, targets) if delta == 1.0 else (q_values, actions, targets, delta)
        got = call_student(dqn_loss, *args, what=f"dqn_loss (delta = {delta:g})")
        grads = observed_grads(got, [q_values])
        losses.append({"value": observed(got), "grad": grads[0] if grads else None})
    clipped = call_student(clip_reward, torch.tensor(CLIP_REWARDS, dtype=torch.float64), what="clip_reward")
    return {"source": source_of(dqn_loss), "losses": losses, "clipped": observed(clipped)}


def dqn_loss_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    forbid_calls_in(run["source"], HUBER_CALLS, "dqn_loss")
    for (q_values, actions, targets, delta), obs in zip(_loss_cases(seed), run["losses"], strict=True):
        q_values = q_values.clone().requires_grad_()
        q_taken = q_values.gather(1, actions.unsqueeze(1)).squeeze(1)
        want = F.huber_loss(q_taken, targets, delta=delta)
        (want_grad,) = torch.autograd.grad(want, q_values)
        got, want, B = obs["value"], want.detach(), len(targets)
        hint = ""
        if torch.is_tensor(got) and got.dim() == 0 and got.dtype == want.dtype:
            x = (q_taken - targets).detach()
            if torch.isclose(got, (0.5 * x**2).mean()):
                hint = "That is the squared error: beyond |x| > delta the Huber loss grows linearly, delta·(|x| − delta/2)."
            elif torch.isclose(got, (0.5 * x**2).sum()) or torch.isclose(got, want * B):
                hint = "Average over the batch (mean), do not sum."
            elif torch.isclose(got, 2 * want):
                hint = "The quadratic part is 0.5·x², not x²."
            elif torch.isclose(got, F.huber_loss(q_values.detach().max(1).values, targets, delta=delta)):
                hint = "Use Q(s, a) of the action taken (q_values.gather(1, actions[:, None])), not the max."
        compare(got, want, f"dqn_loss (delta = {delta:g})", **TOL, hint=hint)
        if obs["grad"] is None:
            _fail("dqn_loss is not connected to q_values: the loss must backpropagate into the Q-network.")
        compare(obs["grad"], want_grad, f"∂ dqn_loss / ∂ q_values (delta = {delta:g})", **TOL,
                hint="Only the taken actions' Q-values get a gradient, and it is clipped to ±delta.")
    r, got = torch.tensor(CLIP_REWARDS, dtype=torch.float64), run["clipped"]
    hint = ""
    if torch.is_tensor(got) and got.shape == r.shape:
        if torch.equal(got, torch.sign(r)):
            hint = "Clamp into [-1, 1] (rewards already inside, like 0.5, stay as they are), not sign()."
        elif (got >= 0).all():
            hint = "Negative rewards are clipped at −1, not at 0."
    compare(got, r.clamp(-1, 1), "clip_reward", **TOL, hint=hint)


def check_dqn_loss(dqn_loss, clip_reward, *, seed: int = 0, verbose: bool = True) -> None:
    """Huber loss of Q(s, a) for the taken actions, equal to F.huber_loss; clip_reward clamps to [-1, 1]."""
    __tracebackhide__ = True
    dqn_loss_verdict(dqn_loss_run(dqn_loss, clip_reward, seed=seed), seed=seed)
    if verbose:
        _ok("dqn_loss equals F.huber_loss on the taken actions (value and gradient); clip_reward clamps to [-1, 1].")


# ----------------------------------------------------------------------------- target network

TAUS = (1.0, 0.1, 0.5)


def target_update_run(update_target, *, seed: int) -> list:
    """After each call (the target moved away by +1 first): both nets' parameters, whether the target's
    carry an autograd graph, and whether any shares memory with the online net's."""
    q_net, target_net = nets(4, 2, seed)
    runs = []
    for tau in TAUS:
        for p in target_net.parameters():  # start far from q_net
            with torch.no_grad():
                p.add_(1.0)
        call_student(update_target, q_net, target_net, tau, what=f"update_target(q_net, target_net, tau={tau})",
                     hint="Update in place under torch.no_grad() (the target's parameters are leaves that require grad).")
        runs.append({"online": [observed(p) for p in q_net.parameters()],
                     "target": {n: observed(p) for n, p in target_net.named_parameters()},
                     "graph": any(p.grad_fn is not None for p in target_net.parameters()),
                     "shared": any(p.data_ptr() == pt.data_ptr() for p, pt in zip(q_net.parameters(),
                                                                                  target_net.parameters()))})
    return runs


def target_update_verdict(runs: list, *, seed: int) -> None:
    __tracebackhide__ = True
    q_net, target_net = nets(4, 2, seed)
    online = [p.detach() for p in q_net.parameters()]
    current = {n: p.detach() for n, p in target_net.named_parameters()}  # the target before each call, less the +1
    for tau, run in zip(TAUS, runs, strict=True):
        if len(run["online"]) != len(online) or not all(torch.is_tensor(p) and torch.equal(p, o)
                                                        for p, o in zip(run["online"], online)):
            _fail("update_target changed the online q_net: only target_net moves (check the order of the "
                  "arguments: update_target(q_net, target_net, tau)).")
        if set(run["target"]) != set(current):
            _fail(f"target_net's parameters are {sorted(run['target'])} after update_target; expected {sorted(current)}.")
        for (name, b), o in zip(current.items(), online):
            b, p = b + 1.0, run["target"][name]
            want = tau * o + (1 - tau) * b
            hint = ""
            if torch.is_tensor(p) and p.shape == b.shape and torch.allclose(p, b):
                hint = ("The target network did not change: update its parameters in place (p_target.copy_(...)), "
                        "and mind the order, θ⁻ ← τ·θ + (1 − τ)·θ⁻: τ = 1 copies the online net, it is not a no-op.")
            elif torch.is_tensor(p) and p.shape == b.shape and torch.allclose(p, (1 - tau) * o + tau * b):
                hint = "τ is applied the wrong way round: θ⁻ ← τ·θ + (1 − τ)·θ⁻ (τ = 1 copies the online net)."
            compare(p, want, f"target parameter {name} after update_target(tau={tau})", **TOL, hint=hint)
        if run["graph"] is not False:
            _fail("The target's parameters now carry an autograd graph: update them under torch.no_grad().")
        if run["shared"] is not False:
            _fail(f"After update_target(tau={tau}), target_net's parameters share memory with q_net's, so every "
                  "later step of q_net would move the target too. Copy the values (p_target.copy_(p)).")
        current = run["target"]


def check_target_update(update_target, *, seed: int = 0, verbose: bool = True) -> None:
    """τ = 1 copies (without sharing memory); τ < 1 gives θ⁻ ← τθ + (1 − τ)θ⁻; no autograd graph."""
    __tracebackhide__ = True
    target_update_verdict(target_update_run(update_target, seed=seed), seed=seed)
    if verbose:
        _ok("update_target: hard copy at τ = 1, Polyak average otherwise, in place and without autograd.")


# ----------------------------------------------------------------------------- REINFORCE

RETURN_CASES = ((1, 0.9), (7, 0.9), (50, 0.99))


def _reinforce_inputs(seed):
    """The rewards of each returns case, then logits, actions, returns and baseline for the loss."""
    g = torch.Generator().manual_seed(seed)
    rewards = [torch.randn(T, generator=g, dtype=torch.float64) for T, _ in RETURN_CASES]
    T = 20
    logits = torch.randn(T, 2, generator=g, dtype=torch.float64)
    actions = torch.randint(2, (T,), generator=g)
    returns = torch.randn(T, generator=g, dtype=torch.float64) * 5 + 10
    baseline = torch.randn(T, generator=g, dtype=torch.float64) * 5 + 10
    return rewards, logits, actions, returns, baseline


def reinforce_run(discounted_returns, reinforce_loss, *, seed: int) -> dict:
    rewards, logits, actions, returns, baseline = _reinforce_inputs(seed)
    run = {"returns": [observed(call_student(discounted_returns, r.clone(), gamma, what=f"discounted_returns (T = {T})"))
                       for r, (T, gamma) in zip(rewards, RETURN_CASES)]}
    logits, baseline = logits.clone().requires_grad_(), baseline.clone().requires_grad_()
    log_probs = logits.log_softmax(-1).gather(1, actions.unsqueeze(1)).squeeze(1)
    got = call_student(reinforce_loss, log_probs, returns, baseline, what="reinforce_loss")
    run["loss"], run["grads"] = observed(got), observed_grads(got, [logits, baseline]) or [None, None]
    return run


def reinforce_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    rewards_list, logits, actions, returns, baseline = _reinforce_inputs(seed)
    for rewards, (T, gamma), got in zip(rewards_list, RETURN_CASES, run["returns"], strict=True):
        want = torch.stack([sum(gamma**k * rewards[t + k] for k in range(T - t)) for t in range(T)])
        hint = ""
        if torch.is_tensor(got) and got.shape == want.shape and got.dtype == want.dtype and T > 1:
            fwd = torch.stack([sum(gamma**(t - k) * rewards[k] for k in range(t + 1)) for t in range(T)])
            if torch.allclose(got, fwd):
                hint = "That sums the past: G_t is the reward-to-go, r_t + γ·r_{t+1} + …; loop backwards from the end."
            elif torch.allclose(got, gamma * want):
                hint = "r_t itself is not discounted: G_t = r_t + γ·G_{t+1}."
        compare(got, want, f"discounted_returns (T = {T}, γ = {gamma})", **TOL, hint=hint)
    logits = logits.clone().requires_grad_()
    log_probs = logits.log_softmax(-1).gather(1, actions.unsqueeze(1)).squeeze(1)
    want = -(log_probs * (returns - baseline)).mean()
    want_grad = torch.autograd.grad(want, logits)[0]
    got, want, T = run["loss"], want.detach(), len(returns)
    hint = ""
    if torch.is_tensor(got) and got.dim() == 0 and got.dtype == want.dtype:
        if torch.isclose(got, -want):
            hint = "Sign: minimising L must increase log π of actions with a positive advantage, so L = −mean(...)."
        elif torch.isclose(got, want * T):
            hint = "Average over the episode's steps (mean), do not sum."
        elif torch.isclose(got, -(log_probs * returns).mean().detach()):
            hint = "Subtract the baseline: weight log π by G_t − b_t."
    compare(got, want, "reinforce_loss", **TOL, hint=hint)
    grads = run["grads"]
    if not isinstance(grads, list) or len(grads) != 2 or grads[0] is None:
        _fail("reinforce_loss is not connected to log_probs: the policy gradient flows through log π.")
    compare(grads[0], want_grad, "∂ reinforce_loss / ∂ policy logits", **TOL)
    if grads[1] is not None and (not torch.is_tensor(grads[1]) or grads[1].abs().max() > 0):
        _fail("reinforce_loss sends a gradient into the baseline: the advantage (G − b) is a constant weight; "
              "use (returns - baseline).detach(). The baseline learns from its own loss.")


def check_reinforce(discounted_returns, reinforce_loss, *, seed: int = 0, verbose: bool = True) -> None:
    """G_t = r_t + γG_{t+1}; L = −mean(log π · (G − b)) with no gradient into the baseline."""
    __tracebackhide__ = True
    reinforce_verdict(reinforce_run(discounted_returns, reinforce_loss, seed=seed), seed=seed)
    if verbose:
        _ok("discounted_returns and reinforce_loss follow the formulas; the baseline gets no policy gradient.")
