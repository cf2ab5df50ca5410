"""DAY 6 visible check, judged: one learning step (dqn_update), split into a ``_run`` half (the kernel)
and a ``_verdict`` half (the grader), as in dqn_pieces.py.

The expected step uses the student's own target and loss functions where they run, so that a mistake
there is not charged twice (dqn_update is checked for its wiring only). The grader cannot call them,
so the kernel computes the expected step alongside the student's and records what those functions
returned: the targets, and the loss's value and gradient at the Q-values it was called on. The grader
replays the expected step itself with these as stand-ins, checks that it meets the same Q-values, and
compares the student's parameters, returned loss and mean Q with it.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from course.checks.common import TOL, _fail, _ok, call_student, compare, observed, stand_in, type_name
from course.checks.dqn_pieces import nets, td_batch, where_nets_disagree

__all__ = ["check_dqn_update"]

B, OBS_DIM, N_ACTIONS, GAMMA = 16, 4, 2, 0.9
CALLS = ((False, False), (True, False), (False, False), (False, True))  # (double, with loss_fn) of the four calls
STALE = 5.0  # the gradient left in q_net before each call (as by a previous backward)


def _stated_td(rewards, next_obs, dones, target_net, gamma):
    with torch.no_grad():
        return rewards + gamma * (1 - dones) * target_net(next_obs).max(1).values


def _stated_double(rewards, next_obs, dones, q_net, target_net, gamma):
    with torch.no_grad():
        best = q_net(next_obs).argmax(1, keepdim=True)
        return rewards + gamma * (1 - dones) * target_net(next_obs).gather(1, best).squeeze(1)


def _stated_loss(q_values, actions, targets, delta=1.0):
    return F.huber_loss(q_values.gather(1, actions.unsqueeze(1)).squeeze(1), targets, delta=delta)


def given_loss(q_values, actions, targets):
    """The ``loss_fn`` the last call passes: mean squared TD error (not the Huber loss, so that a step
    that ignores ``loss_fn`` differs)."""
    return (q_values.gather(1, actions.unsqueeze(1)).squeeze(1) - targets).pow(2).mean()


def _runs(fn, *args) -> bool:
    """Whether the student's ``fn`` gives a finite tensor on ``args``; if not, the stated one stands in."""
    try:
        out = fn(*args)
        return bool(torch.is_tensor(out) and torch.isfinite(out).all())
    except Exception:  # noqa: BLE001 - the function is checked on its own
        return False


def _batches(g: torch.Generator, ref_q, ref_t, mine_t=None):
    """The four calls' (double, with loss_fn, batch), drawn from ``g``; before a Double DQN call the next states are moved to
    where the online and target nets disagree (new target weights are drawn, for both copies, where the
    online net has come to choose one action everywhere). A generator: each batch is drawn after the
    step before it."""
    for double, custom in CALLS:
        obs = torch.randn(B, OBS_DIM, generator=g, dtype=torch.float64)
        batch = (obs, torch.randint(N_ACTIONS, (B,), generator=g), torch.randn(B, generator=g, dtype=torch.float64),
                 torch.randn(B, OBS_DIM, generator=g, dtype=torch.float64), (torch.rand(B, generator=g) < 0.3).double())
        if double:
            s2, d, found = where_nets_disagree(batch[3], batch[4], ref_q, ref_t, g)
            for _ in range(5):
                if found:
                    break
                with torch.no_grad():
                    for k, pr in enumerate(ref_t.parameters()):
                        new = torch.randn(pr.shape, generator=g, dtype=pr.dtype)
                        pr.copy_(new)
                        if mine_t is not None:
                            list(mine_t.parameters())[k].copy_(new)
                s2, d, found = where_nets_disagree(batch[3], batch[4], ref_q, ref_t, g)
            batch = batch[:3] + (s2, d)
        yield double, custom, batch


def _setup(seed: int):
    with torch.random.fork_rng(devices=[]):
        q_net, target_net = nets(OBS_DIM, N_ACTIONS, seed)
    return q_net, target_net, torch.optim.Adam(q_net.parameters(), lr=0.01)


def dqn_update_run(dqn_update, td_targets, double_dqn_targets, dqn_loss, *, seed: int) -> dict:
    """Which of the student's functions run; per call, what the expected step got from them, and what
    the student's step returned and left in q_net and target_net (parameters and gradients)."""
    ref_q, ref_t, ref_opt = _setup(seed)
    probe_r, probe_s, probe_d = td_batch(seed)
    runs = {"td": _runs(td_targets, probe_r, probe_s, probe_d, ref_t, GAMMA),
            "double": _runs(double_dqn_targets, probe_r, probe_s, probe_d, ref_q, ref_t, GAMMA),
            "loss": _runs(dqn_loss, ref_q(probe_s), (probe_r > 0).long(), probe_r)}
    td = td_targets if runs["td"] else _stated_td
    dbl = double_dqn_targets if runs["double"] else _stated_double
    mine_q, mine_t = copy.deepcopy(ref_q), copy.deepcopy(ref_t)
    mine_opt = torch.optim.Adam(mine_q.parameters(), lr=0.01)
    run = {"runs": runs, "calls": []}
    for double, custom, batch in _batches(torch.Generator().manual_seed(seed), ref_q, ref_t, mine_t):
        o, a, r, s2, d = batch
        y = dbl(r, s2, d, ref_q, ref_t, GAMMA) if double else td(r, s2, d, ref_t, GAMMA)
        qv = ref_q(o)
        call = {"targets": observed(y)}
        if custom:
            loss = given_loss(qv, a, y)
        elif runs["loss"]:
            leaf = qv.detach().requires_grad_()
            value = dqn_loss(leaf, a, y)
            grad, = torch.autograd.grad(value, leaf)
            call["loss"] = {"q_values": observed(qv), "value": observed(value), "grad": observed(grad)}
            loss = stand_in(value.detach().reshape(()), [qv], [grad])
        else:
            loss = _stated_loss(qv, a, y)
        ref_opt.zero_grad()
        loss.backward()
        ref_opt.step()
        for p in mine_q.parameters():
            p.grad = torch.full_like(p, STALE)
        out = call_student(dqn_update, mine_q, mine_t, mine_opt, batch, GAMMA, double,
                           **({"loss_fn": given_loss} if custom else {}),
                           what=f"dqn_update call {len(run['calls']) + 1} (double={double}"
                                + (", loss_fn=mean squared error)" if custom else ")"))
        call.update(returned=observed(out), q=observed(list(mine_q.parameters())),
                    q_grads=observed([p.grad for p in mine_q.parameters()]),
                    target=observed(list(mine_t.parameters())), target_grads=observed([p.grad for p in mine_t.parameters()]))
        run["calls"].append(call)
    return run


def _tensors(values, like: list) -> bool:
    return isinstance(values, list) and len(values) == len(like) and \
        all(torch.is_tensor(v) and v.shape == w.shape and v.dtype == w.dtype for v, w in zip(values, like))


def dqn_update_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    ref_q, ref_t, ref_opt = _setup(seed)
    runs = run["runs"]
    before = [p.detach().clone() for p in ref_q.parameters()]
    if len(run["calls"]) != len(CALLS):
        _fail(f"dqn_update was observed for {len(run['calls'])} of {len(CALLS)} calls.")
    for n, ((double, custom, batch), call) in enumerate(zip(_batches(torch.Generator().manual_seed(seed), ref_q,
                                                                      ref_t), run["calls"])):
        what = f"dqn_update call {n + 1} (double={double}" + (", loss_fn=mean squared error)" if custom else ")")
        o, a, r, s2, d = batch
        if runs["double" if double else "td"]:
            y = call["targets"]
            if not torch.is_tensor(y) or y.shape != (B,):
                _fail(f"{what}: the targets of your target function along the expected step are missing.")
        else:
            y = _stated_double(r, s2, d, ref_q, ref_t, GAMMA) if double else _stated_td(r, s2, d, ref_t, GAMMA)
        qv = ref_q(o)
        if custom:
            loss = given_loss(qv, a, y)
        elif runs["loss"]:
            seen = call.get("loss", {})
            compare(seen.get("q_values"), qv.detach(), f"{what}: the Q-values your dqn_loss was called on in the "
                    "expected step", **TOL)
            if not torch.is_tensor(seen.get("value")) or not _tensors([seen.get("grad")], [qv]):
                _fail(f"{what}: the value and gradient of your dqn_loss along the expected step are missing.")
            loss = stand_in(seen["value"].reshape(()), [qv], [seen["grad"]])
        else:
            loss = _stated_loss(qv, a, y)
        ref_opt.zero_grad()
        loss.backward()
        ref_opt.step()
        want_loss, want_q = loss.item(), qv.detach().gather(1, a.unsqueeze(1)).mean().item()

        out = call["returned"]
        if not isinstance(out, list) or len(out) != 2:
            _fail(f"{what} returned {type_name(out)}; expected (loss, mean Q) as two Python floats.")
        got_loss, got_q = out
        if not all(isinstance(v, float) for v in out):
            _fail(f"{what} returned ({type_name(got_loss)}, {type_name(got_q)}); expected two Python floats "
                  "(use .item(): keeping tensors would keep their graphs alive in a log).")
        targets = list(ref_t.parameters())
        if not _tensors(call["target"], targets) or not all(torch.equal(p, pt.detach())
                                                            for p, pt in zip(call["target"], targets)):
            _fail(f"{what} changed target_net: only q_net learns; the target moves in update_target only.")
        if any(torch.is_tensor(g) and g.abs().sum() > 0 for g in call["target_grads"]):
            _fail(f"{what} left gradients in target_net: the targets must be computed without autograd.")
        params = list(ref_q.parameters())
        if not _tensors(call["q"], params):
            _fail(f"{what}: q_net's parameters were not observed.")
        if all(torch.equal(p, b) for p, b in zip(call["q"], before)):
            _fail(f"{what} did not change q_net: call loss.backward() and then optimizer.step().")
        stale = _tensors(call["q_grads"], params) and all(
            pr.grad is not None and torch.allclose(g, pr.grad + STALE) for g, pr in zip(call["q_grads"], params))
        if stale:
            hint = "Call optimizer.zero_grad() before loss.backward(): leftover gradients were added to yours."
        elif custom and abs(got_loss - want_loss) > 1e-8 * (1 + abs(want_loss)):
            hint = "This call passes loss_fn: use it instead of dqn_loss (loss_fn(q_values, actions, targets))."
        elif abs(got_loss - want_loss) > 1e-8 * (1 + abs(want_loss)):
            hint = (f"Your step's loss was {got_loss:.8g}, expected {want_loss:.8g}: "
                    + ("with double=True use double_dqn_targets (online net chooses, target net evaluates)." if double
                       else "targets from td_targets with target_net, then dqn_loss on q_net(obs)."))
        else:
            hint = "The loss is right, so check the order: zero_grad, backward, then one optimizer.step()."
        for (name, pr), p in zip(ref_q.named_parameters(), call["q"]):
            compare(p, pr.detach(), f"q_net.{name} after {what}", **TOL, hint=hint)
        if abs(got_loss - want_loss) > 1e-8 * (1 + abs(want_loss)):
            _fail(f"{what} returned loss {got_loss:.8g}; the step's loss is {want_loss:.8g}.")
        if abs(got_q - want_q) > 1e-8 * (1 + abs(want_q)):
            _fail(f"{what} returned mean Q {got_q:.8g}; expected {want_q:.8g}, the mean of Q(s, a) over the batch's "
                  "actions before the step.")
        before = [p.clone() for p in call["q"]]


def check_dqn_update(dqn_update, td_targets, double_dqn_targets, dqn_loss, *, seed: int = 0,
                     verbose: bool = True) -> None:
    """Four calls of dqn_update with Adam, plain and Double DQN and with a given loss_fn, against the stated step with the
    same (your) target and loss functions: parameters, returned loss and mean Q."""
    __tracebackhide__ = True
    dqn_update_verdict(dqn_update_run(dqn_update, td_targets, double_dqn_targets, dqn_loss, seed=seed), seed=seed)
    if verbose:
        _ok("dqn_update: targets from the target network, the loss, zero_grad, backward and one optimizer step, "
            "exactly; returns (loss, mean Q) as floats.")
