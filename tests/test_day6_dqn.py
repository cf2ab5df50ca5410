"""DAY 6: checks pass the reference and correct variants, and catch realistic mutants; the reference trains."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from solutions.day6_dqn import hidden
from course.checks import day6_dqn as day6
from course.checks import dqn_learning_step as step
from course.checks import dqn_pieces as dqn
from course.checks.day6_dqn import (check_dqn_loss, check_dqn_update, check_epsilon, check_q_network, check_reinforce,
                                check_replay_buffer, check_select_action, check_target_update, check_td_targets)
from solutions.day6_dqn import experiment as exp
from solutions.day6_dqn import reference as ref
from tests.mutation import doctored_observations_fail, exercise, exercise_tests, mutate, seed_sweep_tests


def _ex(check, hidden_test, names):
    return exercise(check, hidden_test, names, ref)


EXERCISES = {
    "replay_buffer": _ex(check_replay_buffer, hidden.hidden_replay_buffer, ["ReplayBuffer"]),
    "epsilon_schedule": _ex(check_epsilon, hidden.hidden_epsilon_schedule, ["linear_epsilon"]),
    "select_action": _ex(check_select_action, hidden.hidden_select_action, ["select_action"]),
    "q_network": _ex(check_q_network, hidden.hidden_q_network, ["QNetwork"]),
    "td_target": _ex(check_td_targets, hidden.hidden_td_target, ["td_targets", "double_dqn_targets"]),
    "dqn_loss": _ex(check_dqn_loss, hidden.hidden_dqn_loss, ["dqn_loss", "clip_reward"]),
    "target_update": _ex(check_target_update, hidden.hidden_target_update, ["update_target"]),
    "train": _ex(check_dqn_update, hidden.hidden_train, ["dqn_update", "td_targets", "double_dqn_targets", "dqn_loss"]),
    "reinforce": _ex(check_reinforce, hidden.hidden_reinforce, ["discounted_returns", "reinforce_loss"]),
}

MUTANTS = [
    ("replay_buffer", "no wrap-around when full", "ReplayBuffer",
     [("self.pos = (self.pos + 1) % self.capacity", "self.pos = self.pos + 1")], "wrap round"),
    ("replay_buffer", "samples slots never filled", "ReplayBuffer",
     [("torch.randint(self.size,", "torch.randint(self.capacity,")], "never filled"),
    ("replay_buffer", "len grows past capacity", "ReplayBuffer",
     [("self.size = min(self.size + 1, self.capacity)", "self.size = self.size + 1")], "never more than capacity"),
    ("replay_buffer", "sampling ignores the generator", "ReplayBuffer",
     [("(batch_size,), generator=generator).to", "(batch_size,)).to")], "same seed"),
    ("replay_buffer", "a run of neighbouring slots (right marginals, correlated rows)", "ReplayBuffer",
     [("idx = torch.randint(self.size, (batch_size,), generator=generator).to(self.device)",
       "idx = ((torch.randint(self.size, (1,), generator=generator) + torch.arange(batch_size)) % self.size).to(self.device)")],
     "independently"),
    ("replay_buffer", "one slot for the whole batch", "ReplayBuffer",
     [("idx = torch.randint(self.size, (batch_size,), generator=generator).to(self.device)",
       "idx = torch.randint(self.size, (1,), generator=generator).expand(batch_size).to(self.device)")], "uniform"),
    ("replay_buffer", "generator re-seeded inside sample (every batch the same)", "ReplayBuffer",
     [("(batch_size,), generator=generator).to", "(batch_size,), generator=torch.Generator().manual_seed(generator.initial_seed())).to")],
     "re-seeded"),
    ("replay_buffer", "actions stored as float", "ReplayBuffer",
     [("self.actions = torch.zeros(capacity, dtype=torch.int64", "self.actions = torch.zeros(capacity, dtype=torch.float32")],
     "int64"),
    # The escape classes of issue 32 that DAY 6 did not have yet: an optional argument ignored.
    ("train", "loss_fn ignored", "dqn_update",
     [("loss = (loss_fn or dqn_loss)(q_values, actions, targets)", "loss = dqn_loss(q_values, actions, targets)")],
     "passes loss_fn"),
    ("epsilon_schedule", "no clamp after duration", "linear_epsilon",
     [("min(step / duration, 1.0)", "step / duration")], "clamp the fraction"),
    ("epsilon_schedule", "a one-step schedule starts at end", "linear_epsilon",
     [("if duration > 0 else 1.0", "if duration > 1 else 1.0")], "duration=1\\)"),
    ("epsilon_schedule", "integer division", "linear_epsilon", [("min(step / duration", "min(step // duration")],
     "float division"),
    ("epsilon_schedule", "from end to start", "linear_epsilon",
     [("return start + frac * (end - start)", "return end + frac * (start - end)")], "other way round"),
    ("select_action", "explores when u > ε", "select_action", [("item() < epsilon", "item() > epsilon")],
     "ε = 0 must always exploit"),
    ("select_action", "never explores", "select_action", [("item() < epsilon", "item() < 0.0")],
     "pick uniformly among all n actions"),
    ("select_action", "exploration excludes the greedy action", "select_action",
     [("return int(torch.randint(q.shape[-1], (), generator=generator))",
       "return int((q.argmax() + 1 + torch.randint(q.shape[-1] - 1, (), generator=generator)) % q.shape[-1])")],
     "greedy one included"),
    ("select_action", "forward pass with autograd", "select_action",
     [("    with torch.no_grad():\n        q = q_net(obs.unsqueeze(0))[0]\n", "    q = q_net(obs.unsqueeze(0))[0]\n")],
     "torch.no_grad"),
    ("select_action", "returns a tensor", "select_action", [("return int(q.argmax())", "return q.argmax()")],
     "Python int"),
    ("select_action", "coin from the global RNG", "select_action",
     [("torch.rand((), generator=generator).item()", "torch.rand(()).item()")], "same seed"),
    ("q_network", "ReLU on the Q-values", "QNetwork",
     [("layers.append(nn.Linear(width, n_actions))", "layers += [nn.Linear(width, n_actions), nn.ReLU()]")],
     "never negative"),
    ("q_network", "hidden sizes ignored", "QNetwork", [("for h in hidden:", "for h in (120, 84):")],
     "not built as its docstring says"),
    ("q_network", "no ReLU between layers", "QNetwork",
     [("layers += [nn.Linear(width, h), nn.ReLU()]", "layers += [nn.Linear(width, h)]")], "Linear → ReLU"),
    ("td_target", "bootstraps through terminal states", "td_targets",
     [("rewards + gamma * (1.0 - dones) * next_q", "rewards + gamma * next_q")], "multiply γ·max Q by \\(1 − done\\)"),
    ("td_target", "mask the wrong way round", "td_targets",
     [("rewards + gamma * (1.0 - dones) * next_q", "rewards + gamma * dones * next_q")], "wrong way round"),
    ("td_target", "targets carry gradients", "td_targets",
     [("    with torch.no_grad():\n        next_q", "    if True:\n        next_q")], "requires grad"),
    ("td_target", "Double DQN chooses with the target net", "double_dqn_targets",
     [("best = q_net(next_obs)", "best = target_net(next_obs)")], "plain DQN"),
    ("td_target", "Double DQN evaluates with the online net", "double_dqn_targets",
     [("next_q = target_net(next_obs).gather", "next_q = q_net(next_obs).gather")], "Both choice and evaluation"),
    ("dqn_loss", "squared error instead of Huber", "dqn_loss",
     [("torch.where(x.abs() <= delta, quadratic, linear)", "quadratic")], "squared error"),
    ("dqn_loss", "max Q instead of the taken action's", "dqn_loss",
     [("q_values.gather(1, actions.unsqueeze(1)).squeeze(1)", "q_values.max(1).values")], "action taken"),
    ("dqn_loss", "x² without the 1/2", "dqn_loss", [("quadratic = 0.5 * x**2", "quadratic = x**2")],
     "dqn_loss \\(delta = 1\\)"),
    ("dqn_loss", "clip_reward with sign()", "clip_reward", [("return reward.clamp(-1.0, 1.0)", "return torch.sign(reward)")],
     "not sign"),
    ("dqn_loss", "clip_reward drops negative rewards", "clip_reward",
     [("return reward.clamp(-1.0, 1.0)", "return reward.clamp(0.0, 1.0)")], "Negative rewards"),
    ("target_update", "τ applied the wrong way round", "update_target",
     [("p_target.mul_(1.0 - tau).add_(p, alpha=tau)", "p_target.mul_(tau).add_(p, alpha=1.0 - tau)")],
     "τ = 1 copies the online net"),
    ("target_update", "in-place update with autograd on", "update_target",
     [("    with torch.no_grad():\n        for", "    if True:\n        for")], "torch.no_grad"),
    ("target_update", "hard update shares memory", "update_target",
     [("p_target.mul_(1.0 - tau).add_(p, alpha=tau)",
       "if tau == 1.0:\n                p_target.data = p.data\n            else:\n"
       "                p_target.mul_(1.0 - tau).add_(p, alpha=tau)")], "share memory"),
    ("target_update", "updates the online net instead", "update_target",
     [("zip(target_net.parameters(), q_net.parameters())", "zip(q_net.parameters(), target_net.parameters())")],
     "changed the online q_net"),
    ("train", "no zero_grad", "dqn_update", [("    optimizer.zero_grad()\n", "")], "zero_grad"),
    ("train", "double flag ignored", "dqn_update", [("    if double:", "    if False:")], "double_dqn_targets"),
    ("train", "targets from the online network", "dqn_update",
     [("td_targets(rewards, next_obs, dones, target_net, gamma)", "td_targets(rewards, next_obs, dones, q_net, gamma)")],
     "targets from td_targets with target_net"),
    ("train", "step before backward", "dqn_update",
     [("    loss.backward()\n    optimizer.step()\n", "    optimizer.step()\n    loss.backward()\n")],
     "did not change q_net"),
    ("train", "returns tensors", "dqn_update",
     [("return loss.item(), q_taken.mean().item()", "return loss, q_taken.mean()")], "Python floats"),
    ("reinforce", "returns summed forwards in time", "discounted_returns",
     [("for t in range(len(rewards) - 1, -1, -1):", "for t in range(len(rewards)):")], "reward-to-go"),
    ("reinforce", "gradient leaks into the baseline", "reinforce_loss",
     [("advantage = (returns - baseline).detach()", "advantage = returns - baseline")], "into the baseline"),
    ("reinforce", "gradient ascent sign", "reinforce_loss",
     [("return -(log_probs * advantage).mean()", "return (log_probs * advantage).mean()")], "Sign"),
    ("reinforce", "baseline not subtracted", "reinforce_loss",
     [("advantage = (returns - baseline).detach()", "advantage = returns.detach()")], "Subtract the baseline"),
]


def test_sample_bug_is_one_of_the_mutants():
    """The planted bug of the 'buggy' sample (bootstrapping through terminal states) is caught."""
    (old, new), = hidden.SAMPLE_BUG["replace"]
    buggy = mutate(ref.td_targets, [(old.strip(), new.strip())])
    with pytest.raises(AssertionError, match="1 − done"):
        check_td_targets(buggy, ref.double_dqn_targets)


# ---------------------------------------------------------------- correct, differently written versions

class _ListBuffer:
    """Python lists of transitions, stacked at sampling time."""

    def __init__(self, capacity, obs_shape, device="cpu"):
        self.capacity, self.device, self.data, self.next = capacity, device, [], 0

    def __len__(self):
        return len(self.data)

    def add(self, obs, action, reward, next_obs, done):
        item = (torch.tensor(obs, dtype=torch.float32) if not torch.is_tensor(obs) else obs.float(), action, reward,
                torch.as_tensor(next_obs).float(), done)
        if len(self.data) < self.capacity:
            self.data.append(item)
        else:
            self.data[self.next] = item
        self.next = (self.next + 1) % self.capacity

    def sample(self, batch_size, generator=None):
        idx = torch.randint(len(self.data), (batch_size,), generator=generator).tolist()
        rows = [self.data[i] for i in idx]
        return (torch.stack([r[0] for r in rows]).to(self.device),
                torch.tensor([r[1] for r in rows], dtype=torch.long, device=self.device),
                torch.tensor([r[2] for r in rows], dtype=torch.float32, device=self.device),
                torch.stack([r[3] for r in rows]).to(self.device),
                torch.tensor([float(r[4]) for r in rows], device=self.device))


def _epsilon_variant(step, start, end, duration):
    return max(end, start - (start - end) * step / duration)


def _select_variant(q_net, obs, epsilon, generator):
    explore = torch.rand(1, generator=generator).item() < epsilon  # the coin first, then the forward pass
    with torch.inference_mode():
        q = q_net(obs[None])
    if explore:
        return torch.randint(0, q.shape[-1], (1,), generator=generator).item()
    return q.argmax(dim=-1).item()


class _QNetworkVariant(nn.Module):
    def __init__(self, obs_dim, n_actions, hidden=(120, 84)):
        super().__init__()
        sizes = [obs_dim, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = nn.Linear(sizes[-1], n_actions)

    def forward(self, x):
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.out(x)


def _td_variant(rewards, next_obs, dones, target_net, gamma):
    next_q = target_net(next_obs).detach().max(dim=-1)[0]
    return torch.where(dones.bool(), rewards, rewards + gamma * next_q)


def _double_variant(rewards, next_obs, dones, q_net, target_net, gamma):
    with torch.no_grad():
        a = q_net(next_obs).argmax(-1)
        v = target_net(next_obs)[torch.arange(len(a)), a]
    return rewards + gamma * v * (1 - dones)


def _loss_variant(q_values, actions, targets, delta=1.0):
    x = (q_values[torch.arange(len(actions)), actions] - targets).abs()
    quad = x.clamp(max=delta)
    return (0.5 * quad**2 + delta * (x - quad)).mean()


def _clip_variant(reward):
    return torch.clip(reward, min=-1, max=1)


def _target_variant(q_net, target_net, tau=1.0):
    for p_t, p in zip(target_net.parameters(), q_net.parameters()):
        p_t.data.copy_(tau * p.data + (1 - tau) * p_t.data)


def _update_variant(q_net, target_net, optimizer, batch, gamma, double=False, loss_fn=None):
    obs, actions, rewards, next_obs, dones = batch
    y = (ref.double_dqn_targets(rewards, next_obs, dones, q_net, target_net, gamma) if double
         else ref.td_targets(rewards, next_obs, dones, target_net, gamma))
    q = q_net(obs)[torch.arange(len(actions)), actions]
    loss = (ref.dqn_loss if loss_fn is None else loss_fn)(q_net(obs), actions, y)
    optimizer.zero_grad(set_to_none=False)
    loss.backward()
    optimizer.step()
    return float(loss.detach()), float(q.detach().mean())


def _returns_variant(rewards, gamma):
    T = len(rewards)
    k = torch.arange(T)
    powers = torch.where(k[None, :] >= k[:, None], gamma ** (k[None, :] - k[:, None]).clamp(min=0).double(),
                         torch.zeros((), dtype=torch.float64)).to(rewards.dtype)
    return powers @ rewards


def _reinforce_variant(log_probs, returns, baseline):
    return -torch.sum(log_probs * (returns - baseline.detach())) / len(log_probs)


class _NumpyBuffer:
    """numpy storage, a "full" flag instead of a size counter, tensors made at sampling time."""

    def __init__(self, capacity, obs_shape, device="cpu"):
        self.capacity, self.device = capacity, torch.device(device)
        self.s, self.s2 = np.zeros((capacity, *obs_shape), np.float32), np.zeros((capacity, *obs_shape), np.float32)
        self.a, self.r, self.d = np.zeros(capacity, np.int64), np.zeros(capacity, np.float32), np.zeros(capacity, np.float32)
        self.pos, self.full = 0, False

    def __len__(self):
        return self.capacity if self.full else self.pos

    def add(self, obs, action, reward, next_obs, done):
        i = self.pos
        self.s[i], self.s2[i] = np.asarray(obs, np.float32), np.asarray(next_obs, np.float32)
        self.a[i], self.r[i], self.d[i] = action, reward, done
        self.pos = (i + 1) % self.capacity
        self.full = self.full or self.pos == 0

    def sample(self, batch_size, generator=None):
        idx = torch.randint(len(self), (batch_size,), generator=generator).numpy()
        return tuple(torch.from_numpy(x[idx]).to(self.device) for x in (self.s, self.a, self.r, self.s2, self.d))


class _DictBuffer:
    """One preallocated tensor per field in a dict; the count kept with a counter of all adds."""

    def __init__(self, capacity, obs_shape, device="cpu"):
        self.capacity, self.added = capacity, 0
        self.store = {"obs": torch.empty(capacity, *obs_shape), "next_obs": torch.empty(capacity, *obs_shape),
                      "actions": torch.empty(capacity, dtype=torch.long), "rewards": torch.empty(capacity),
                      "dones": torch.empty(capacity)}
        self.store = {k: v.to(device) for k, v in self.store.items()}

    def __len__(self):
        return min(self.added, self.capacity)

    def add(self, obs, action, reward, next_obs, done):
        slot = self.added % self.capacity
        for key, value in zip(self.store, (obs, next_obs, action, reward, done)):
            self.store[key][slot] = torch.as_tensor(np.asarray(value, dtype=np.float64)).to(self.store[key].dtype)
        self.added += 1

    def sample(self, batch_size, generator=None):
        i = torch.randint(len(self), (batch_size,), generator=generator)
        s = {k: v[i.to(v.device)] for k, v in self.store.items()}
        return s["obs"], s["actions"], s["rewards"], s["next_obs"], s["dones"]


@torch.no_grad()
def _select_decorated(q_net, obs, epsilon, generator):
    q = q_net(obs.reshape(1, -1)).squeeze(0)
    u = torch.rand((), generator=generator)
    return int(torch.randint(len(q), (), generator=generator)) if u < epsilon else int(torch.argmax(q))


def _select_grad_disabled(q_net, obs, epsilon, generator):
    with torch.set_grad_enabled(False):
        values = q_net(torch.stack([obs]))[0]
    if float(torch.rand((), generator=generator)) >= epsilon:
        return values.argmax().item()
    return torch.randint(values.numel(), (), generator=generator).item()


class _QNetworkOutOfOrder(nn.Module):
    """Layers declared output first, under their own names; the checks copy weights in the order of use."""

    def __init__(self, obs_dim, n_actions, hidden=(120, 84)):
        super().__init__()
        widths = [obs_dim, *hidden]
        self.head = nn.Linear(widths[-1], n_actions)
        self.trunk = nn.ModuleList([nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])][::-1])

    def forward(self, obs):
        for layer in reversed(self.trunk):
            obs = F.relu(layer(obs))
        return self.head(obs)


class _QNetworkNamedSequential(nn.Sequential):
    def __init__(self, obs_dim, n_actions, hidden=(120, 84)):
        widths, layers = [obs_dim, *hidden], OrderedDict()
        for k, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers[f"fc{k}"], layers[f"relu{k}"] = nn.Linear(a, b), nn.ReLU()
        layers["q"] = nn.Linear(widths[-1], n_actions)
        super().__init__(layers)


def _td_amax(rewards, next_obs, dones, target_net, gamma):
    with torch.no_grad():
        return torch.addcmul(rewards, 1 - dones, target_net(next_obs).amax(1), value=gamma)


def _double_gather_loop(rewards, next_obs, dones, q_net, target_net, gamma):
    with torch.no_grad():
        q_next, t_next = q_net(next_obs), target_net(next_obs)
        v = torch.stack([t_next[i, q_next[i].argmax()] for i in range(len(rewards))])
    return rewards + (1 - dones) * gamma * v


def _loss_loop(q_values, actions, targets, delta=1.0):
    terms = []
    for q, a, y in zip(q_values, actions, targets):
        x = q[a] - y
        terms.append(0.5 * x * x if x.abs() <= delta else delta * (x.abs() - delta / 2))
    return torch.stack(terms).mean()


def _loss_where(q_values, actions, targets, delta=1.0):
    err = q_values.gather(-1, actions[:, None])[:, 0] - targets
    return torch.where(err.abs() > delta, delta * err.abs() - delta ** 2 / 2, err.square() / 2).mean()


def _target_lerp(q_net, target_net, tau=1.0):
    with torch.no_grad():
        for theirs, mine in zip(target_net.parameters(), q_net.parameters()):
            theirs.lerp_(mine, tau)


def _target_state_dict(q_net, target_net, tau=1.0):
    online, target = q_net.state_dict(), target_net.state_dict()
    target_net.load_state_dict({k: tau * online[k] + (1 - tau) * v for k, v in target.items()})


def _update_with_given_loss(q_net, target_net, optimizer, batch, gamma, double=False, loss_fn=None):
    """Keyword arguments, the targets function chosen up front, mean Q from the same forward pass."""
    obs, actions, rewards, next_obs, dones = batch
    if double:
        targets = ref.double_dqn_targets(rewards, next_obs, dones, q_net=q_net, target_net=target_net, gamma=gamma)
    else:
        targets = ref.td_targets(rewards, next_obs, dones, target_net=target_net, gamma=gamma)
    q_values = q_net(obs)
    loss = loss_fn(q_values, actions, targets) if loss_fn else ref.dqn_loss(q_values, actions, targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item(), q_values.gather(1, actions[:, None]).mean().item()


def _returns_list(rewards, gamma):
    out, g = [], 0.0
    for r in reversed(rewards.tolist()):
        g = r + gamma * g
        out.append(g)
    return torch.tensor(out[::-1], dtype=rewards.dtype, device=rewards.device)


def _reinforce_no_grad(log_probs, returns, baseline):
    with torch.no_grad():
        weight = returns - baseline
    return (-log_probs * weight).mean()


VARIANTS = [
    ("replay_buffer", {"ReplayBuffer": _NumpyBuffer}),
    ("replay_buffer", {"ReplayBuffer": _DictBuffer}),
    ("epsilon_schedule", {"linear_epsilon": lambda step, start, end, duration: end + (start - end)
                          * max(0.0, 1.0 - step / duration)}),
    ("epsilon_schedule", {"linear_epsilon": lambda step, start, end, duration: float(
        torch.tensor(step / duration, dtype=torch.float64).clamp(max=1.0) * (end - start) + start)}),
    ("select_action", {"select_action": _select_decorated}),
    ("select_action", {"select_action": _select_grad_disabled}),
    ("q_network", {"QNetwork": _QNetworkOutOfOrder}),
    ("q_network", {"QNetwork": _QNetworkNamedSequential}),
    ("td_target", {"td_targets": _td_amax, "double_dqn_targets": _double_gather_loop}),
    ("td_target", {"td_targets": _td_variant, "double_dqn_targets": _double_gather_loop}),
    ("dqn_loss", {"dqn_loss": _loss_loop, "clip_reward": lambda r: r.clamp(min=-1.0, max=1.0)}),
    ("dqn_loss", {"dqn_loss": _loss_where, "clip_reward": lambda r: torch.maximum(torch.minimum(r, torch.ones_like(r)),
                                                                                   -torch.ones_like(r))}),
    ("target_update", {"update_target": _target_lerp}),
    ("target_update", {"update_target": _target_state_dict}),
    ("train", {"dqn_update": _update_with_given_loss, "td_targets": ref.td_targets,
               "double_dqn_targets": ref.double_dqn_targets, "dqn_loss": ref.dqn_loss}),
    ("reinforce", {"discounted_returns": _returns_list, "reinforce_loss": _reinforce_no_grad}),
    ("reinforce", {"discounted_returns": _returns_variant, "reinforce_loss": _reinforce_no_grad}),
    ("replay_buffer", {"ReplayBuffer": _ListBuffer}),
    ("epsilon_schedule", {"linear_epsilon": _epsilon_variant}),
    ("select_action", {"select_action": _select_variant}),
    ("q_network", {"QNetwork": _QNetworkVariant}),
    ("td_target", {"td_targets": _td_variant, "double_dqn_targets": _double_variant}),
    ("dqn_loss", {"dqn_loss": _loss_variant, "clip_reward": _clip_variant}),
    ("target_update", {"update_target": _target_variant}),
    ("train", {"dqn_update": _update_variant, "td_targets": ref.td_targets,
               "double_dqn_targets": ref.double_dqn_targets, "dqn_loss": ref.dqn_loss}),
    ("reinforce", {"discounted_returns": _returns_variant, "reinforce_loss": _reinforce_variant}),
]

globals().update(exercise_tests(ref, EXERCISES, MUTANTS, VARIANTS))
globals().update(seed_sweep_tests(ref, EXERCISES, MUTANTS, VARIANTS))


def test_dqn_update_not_charged_for_a_wrong_td_target():
    """A wrong td_targets fails its own check; dqn_update written correctly around it still passes."""
    wrong_td = mutate(ref.td_targets, [("rewards + gamma * (1.0 - dones) * next_q", "rewards + gamma * next_q")])

    def update(q_net, target_net, optimizer, batch, gamma, double=False, loss_fn=None):
        ns = dict(vars(ref), td_targets=wrong_td)
        fn = type(ref.dqn_update)(ref.dqn_update.__code__, ns, None, ref.dqn_update.__defaults__)
        return fn(q_net, target_net, optimizer, batch, gamma, double, loss_fn)

    check_dqn_update(update, wrong_td, ref.double_dqn_targets, ref.dqn_loss)


# ---------------------------------------------------------------- the reference itself

def test_buffer_on_the_training_path_stores_terminated_not_truncated():
    """The loop stores done = terminated: a time-limit truncation still bootstraps."""
    import inspect
    src = inspect.getsource(exp.train_dqn)
    assert "buffer.add(obs, action, reward, next_obs, terminated)" in src


def test_grading_mode_run_meets_the_stated_bar():
    """The notebook's grading run (10,000 steps, seed 0) reaches the best greedy return of 100 it states."""
    torch.set_num_threads(1)
    log = exp.train_dqn(exp.DQNConfig(total_steps=10_000), seed=0)
    assert max(score for _, score in log["evals"]) >= 100, log["evals"]
    assert len(log["evals"]) == 4 and log["episode_returns"] and log["q_means"]


def test_evaluate_random_network_is_poor_and_deterministic():
    torch.manual_seed(0)
    net = ref.QNetwork(4, 2)
    a, b = exp.evaluate(net, episodes=5), exp.evaluate(net, episodes=5)
    assert a == b and a < 200


def test_ablation_switches_change_the_loop():
    """no target network: the target is the online net itself; no replay: a memory of train_every steps."""
    cfg = exp.DQNConfig(total_steps=1_300, learning_starts=500, train_every=256, gradient_steps=2, eval_every=10_000,
                        target_net=False, replay=False)
    log = exp.train_dqn(cfg, seed=1)
    assert log["steps"] == 1_300 and log["q_means"]


def test_reinforce_learns_something():
    """After 80 episodes, REINFORCE's last 20 returns beat its first 20 (seed 0; a smoke test, not a quality bar)."""
    history = exp.train_reinforce(episodes=80, lr=1e-2)
    assert len(history) == 80
    assert sum(history[-20:]) > 1.5 * sum(history[:20]), history


def test_verdicts_decide_on_doctored_observations():
    """The judge's verdicts check everything a pass rests on: the reference's honest observations pass,
    and each one doctored as a hostile kernel could fails (actions as int32, batches from generators
    seeded alike that differ, a buffer sampled twice alike, a batch on another device, autograd on while choosing, ε as a tensor, a Q-value off by 1e-6, targets
    that require grad, a loss with no gradient, an online net that moved, a target sharing memory, a
    gradient into the baseline; for the learning step, q_net off by 1e-6 after a call, a moved target
    net, a gradient left in it, a loss returned as a tensor, the student's loss seen at other Q-values
    than the expected step's, targets or the loss's gradient left out)."""
    honest = {
        day6.replay_buffer_verdict: day6.replay_buffer_run(ref.ReplayBuffer, seed=4),
        day6.select_action_verdict: day6.select_action_run(ref.select_action, seed=4),
        dqn.epsilon_verdict: dqn.epsilon_run(ref.linear_epsilon, seed=4),
        dqn.q_network_verdict: dqn.q_network_run(ref.QNetwork, seed=4),
        dqn.td_targets_verdict: dqn.td_targets_run(ref.td_targets, ref.double_dqn_targets, seed=4),
        dqn.dqn_loss_verdict: dqn.dqn_loss_run(ref.dqn_loss, ref.clip_reward, seed=4),
        dqn.target_update_verdict: dqn.target_update_run(ref.update_target, seed=4),
        dqn.reinforce_verdict: dqn.reinforce_run(ref.discounted_returns, ref.reinforce_loss, seed=4),
        step.dqn_update_verdict: step.dqn_update_run(ref.dqn_update, ref.td_targets, ref.double_dqn_targets,
                                                     ref.dqn_loss, seed=4),
    }
    doctored = [  # (verdict, doctor, what the message says)
        (day6.replay_buffer_verdict, lambda o: o["full"]["batch"].__setitem__(1, o["full"]["batch"][1].int()), "int64"),
        (day6.replay_buffer_verdict, lambda o: o["seeded"].__setitem__(1, o["in_a_row"][0]), "same seed"),
        (day6.replay_buffer_verdict, lambda o: o["in_a_row"].__setitem__(1, o["in_a_row"][0]), "re-seeded"),
        (day6.replay_buffer_verdict, lambda o: o["three"].__setitem__("devices", ["meta"] * 5), "the buffer's device"),
        (day6.select_action_verdict, lambda o: o.__setitem__("grad_enabled_calls", 1), "autograd on"),
        (day6.select_action_verdict, lambda o: o["picks"][1].reverse(), "same seed"),
        (dqn.epsilon_verdict, lambda o: o.__setitem__(3, torch.tensor(o[3])), "Python float"),
        (dqn.q_network_verdict, lambda o: o[2].add_(1e-6), "output"),
        (dqn.td_targets_verdict, lambda o: o[1]["double"].__setitem__("requires_grad", True), "requires grad"),
        (dqn.dqn_loss_verdict, lambda o: o["losses"][1].__setitem__("grad", None), "not connected"),
        (dqn.target_update_verdict, lambda o: o[1]["online"][0].add_(1.0), "changed the online"),
        (dqn.target_update_verdict, lambda o: o[2].__setitem__("shared", True), "share memory"),
        (dqn.reinforce_verdict, lambda o: o["grads"].__setitem__(1, torch.ones(20, dtype=torch.float64)), "baseline"),
        (step.dqn_update_verdict, lambda o: o["calls"][1]["q"][0].add_(1e-6), "q_net.0.weight after"),
        (step.dqn_update_verdict, lambda o: o["calls"][2]["target"][1].add_(1e-3), "changed target_net"),
        (step.dqn_update_verdict, lambda o: o["calls"][0]["target_grads"].__setitem__(0, torch.ones(16, 4)),
         "gradients in target_net"),
        (step.dqn_update_verdict, lambda o: o["calls"][0]["returned"].__setitem__(0, torch.tensor(1.0)),
         "two Python floats"),
        (step.dqn_update_verdict, lambda o: o["calls"][1]["loss"]["q_values"].add_(1e-3), "Q-values your dqn_loss"),
        (step.dqn_update_verdict, lambda o: o["calls"][2].__setitem__("targets", None), "targets of your target"),
        (step.dqn_update_verdict, lambda o: o["calls"][0]["loss"].pop("grad"), "gradient of your dqn_loss"),
    ]
    doctored_observations_fail(honest, doctored, seed=4)


def test_dqn_update_is_not_blamed_for_wrong_targets():
    """The learning step is checked with the student's own target function, so bootstrapping through
    terminal states costs only td_target; so does the judged hidden test, whose verdict replays the step
    with the targets the kernel saw. A step that uses the stated targets instead then differs."""
    wrong = mutate(ref.td_targets, [("(1.0 - dones) * ", "")])
    update = mutate(ref.dqn_update, [("targets = td_targets(", "targets = wrong_td(")])
    update.__globals__["wrong_td"] = wrong
    check_dqn_update(update, wrong, ref.double_dqn_targets, ref.dqn_loss)
    hidden.hidden_train(update, wrong, ref.double_dqn_targets, ref.dqn_loss)
    with pytest.raises(AssertionError, match="Your step's loss was"):
        hidden.hidden_train(ref.dqn_update, wrong, ref.double_dqn_targets, ref.dqn_loss)
