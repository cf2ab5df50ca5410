"""DAY 1 visible checks: optimizers here; schedules, mini-batches and initialisation in
course/checks/schedules_batches_init.py (re-exported below, so both import from here).

Each check is a ``*_run`` (calls the student's code, returns what it saw) and a ``*_verdict``
(decides, without the student's code): the visible check is ``verdict(run(...))``, and the hidden
tests judge with the same two halves outside the kernel (autograder/judge.py). See
course/checks/__init__.py for the conventions shared by every check.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch

from course.checks.common import CheckFailed, _fail, _ok, call_student
from course.checks.schedules_batches_init import (INIT_STD, _close, check_init, check_minibatches, check_schedule,
                                                  init_run, init_verdict, minibatch_run, minibatch_verdict,
                                                  schedule_run, schedule_verdict)
from course.device import get_device, strict_numerics

__all__ = ["OPT_TOL", "CLOSURE_EVERY", "STOP_CHECK_STEPS", "INIT_STD", "check_optimizer", "optimizer_run",
           "optimizer_verdict", "optimizer_kind", "check_schedule", "schedule_run", "schedule_verdict",
           "check_minibatches", "minibatch_run", "minibatch_verdict", "check_init", "init_run", "init_verdict"]


# (atol, rtol) per dtype. Chosen from float64 runs: correct but differently written
# implementations (Adam's "efficient" form, Nesterov's lookahead form) differ from torch
# by < 1e-13 in float64 and < 1e-6 in float32 over 100 steps; every mutant we know of
# differs by > 1e-7 (float64) within a few steps. float32 is looser: over 120+ steps with
# betas (0.5, 0.9) the reference itself drifted 2e-4 from torch (rounding amplified by √v + eps).
OPT_TOL = {torch.float64: (1e-10, 1e-8), torch.float32: (1e-4, 1e-3)}
CLOSURE_EVERY = 10  # every 10th step of a check goes through step(closure)
STOP_CHECK_STEPS = 2  # optimizer_run compares with torch for this many steps, to stop a wrong one early


# ----------------------------------------------------------------------------- optimizers

def _test_problem(seed: int, dtype: torch.dtype, device: torch.device):
    """Start points and targets of a smooth, non-quadratic test loss (4 tensors, 2 groups)."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(6, 4), (4,), (3, 5), (5,)]
    starts = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    targets = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    cast = lambda ts: [t.to(device=device, dtype=dtype) for t in ts]  # noqa: E731
    return cast(starts), cast(targets)


def _test_loss(params, targets):
    """sum (p - t)^2 + 0.1 cos(3p) + 0.01 p^4: curved differently everywhere."""
    return sum(((p - t) ** 2 + 0.1 * torch.cos(3 * p) + 0.01 * p ** 4).sum() for p, t in zip(params, targets))


def _set_test_grads(params, targets) -> None:
    """p.grad = ∂(_test_loss)/∂p = 2(p − t) − 0.3 sin(3p) + 0.04 p³, written directly: a hidden test
    takes thousands of steps, and this costs a fifth of loss.backward() on tensors this small."""
    with torch.no_grad():
        grads = torch._foreach_sub(params, targets)  # one call per operation for all the tensors
        torch._foreach_mul_(grads, 2.0)
        curve = torch._foreach_mul(params, 3.0)
        torch._foreach_sin_(curve)
        torch._foreach_add_(grads, curve, alpha=-0.3)
        cubes = torch._foreach_pow(params, 3)
        torch._foreach_add_(grads, cubes, alpha=0.04)
        for p, g in zip(params, grads):
            p.grad = g


def _make_groups(starts, group_overrides):
    params = [s.clone().requires_grad_(True) for s in starts]
    unused = torch.zeros(3, dtype=starts[0].dtype, device=starts[0].device, requires_grad=True)
    groups = [{"params": [params[0], params[1], unused]}, {"params": [params[2], params[3]], **group_overrides}]
    return params, unused, groups


def _call_step(opt, closure=None):
    args = (closure,) if closure is not None else ()
    return call_student(opt.step, *args, what=f"{type(opt).__name__}.step()")


def _probe_updates(student_cls, torch_cls, hparams, torch_extra, grad: float, steps: int = 3):
    """Updates Δθ_t of a single scalar parameter under a constant gradient ``grad``."""
    out = []
    for cls, extra in ((student_cls, {}), (torch_cls, torch_extra)):
        p = torch.zeros((), dtype=torch.float64, requires_grad=True)
        opt = cls([p], **hparams, **extra)
        deltas = []
        for _ in range(steps):
            before = p.detach().clone()
            p.grad = torch.full_like(p, grad)
            _call_step(opt)
            deltas.append((p.detach() - before).item())
        out.append(deltas)
    return out


def _diagnose(kind: str, student_cls, torch_cls, hparams: dict, torch_extra: dict) -> str:
    """Probe a scalar parameter with constant gradients and name the likely mistake."""
    try:
        s, t = _probe_updates(student_cls, torch_cls, hparams, torch_extra, grad=0.5)
    except CheckFailed as e:
        return str(e)
    if all(d == 0 for d in s):
        return ("step() did not change the parameter. Update it in place (p.add_(...), p.addcdiv_(...)); "
                "`p = p - ...` only rebinds a local name.")
    if _close(s[0], -t[0]):
        return "the first update has the wrong sign: you moved uphill. Gradient descent subtracts the step."
    lr = hparams.get("lr", 1e-3)
    r1 = s[0] / t[0] if t[0] else float("nan")
    if kind == "adam":
        b1, b2 = hparams.get("betas", (0.9, 0.999))
        table = [((1 - b1) / math.sqrt(1 - b2), "neither moment is bias-corrected: divide m by (1-β1^t) and v by (1-β2^t)"),
                 (1 - b1, "the first moment m is not bias-corrected: m̂ = m / (1-β1^t)"),
                 (1 / math.sqrt(1 - b2), "the second moment v is not bias-corrected: v̂ = v / (1-β2^t)")]
        for ratio, msg in table:
            if _close(r1, ratio, 1e-3):
                return f"your first update is {r1:.3g}× torch's, which means {msg}."
    if kind == "rmsprop":
        alpha = hparams.get("alpha", 0.99)
        if _close(r1, math.sqrt(1 - alpha), 1e-2):
            return ("your first update is √(1-α) times torch's: the running average of g² should be "
                    "r ← α r + (1-α) g² (it looks like you accumulate g² as AdaGrad does, or swapped α and 1-α).")
    if kind == "nesterov":
        mu = hparams.get("momentum", 0.9)
        if _close(r1, 1 / (1 + mu), 1e-6):
            return ("your first update equals plain momentum's. In the variable-change form the stored point "
                    "moves by v_{t+1} + ρ (v_{t+1} - v_t).")
    if not _close(s[0], t[0]):
        return f"the very first update differs: yours {s[0]:.6g}, torch {t[0]:.6g} (lr={lr})."
    if not all(_close(a, b) for a, b in zip(s, t)):
        if _close(s[1], s[0]) and not _close(t[1], t[0]):
            return ("the first update is right but the second repeats it: the state (velocity, moments) is not "
                    "carried between steps. Keep it in self.state[p].")
        return (f"the first update is right but step 2 differs (yours {s[1]:.6g}, torch {t[1]:.6g}): check how the "
                "state is updated from one step to the next.")
    if kind in ("adagrad", "rmsprop", "adam"):
        eps = hparams.get("eps", 1e-8)
        s, t = _probe_updates(student_cls, torch_cls, hparams, torch_extra, grad=math.sqrt(eps))
        if not all(_close(a, b) for a, b in zip(s, t)):
            return ("updates agree for ordinary gradients but not for tiny ones: ε is added to the square root, "
                    "ε + √r, not inside it (√(r + ε)).")
    return ("a single scalar parameter is updated correctly, so look at the bookkeeping: read hyper-parameters "
            "from each param group (group['lr'], not self.defaults), keep state per parameter, and skip "
            "parameters whose .grad is None.")


def _hparams(d: dict) -> dict:
    """Hyper-parameters as the optimizers take them (a challenge's JSON turns tuples into lists)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in (d or {}).items()}


def optimizer_run(student_cls, hparams: dict, group_overrides: dict, *, seed: int, dtype: torch.dtype,
                  steps: int, device, stop_unlike=None) -> dict:
    """What ``student_cls(params, **hparams)`` does on the test problem: the half of the check that
    calls the student's code. Every :data:`CLOSURE_EVERY`-th step goes through ``step(closure)``.

    ``stop_unlike``: (torch class, its extra arguments) to step alongside for the first
    :data:`STOP_CHECK_STEPS` steps, stopping where the two differ (most wrong optimizers differ at once,
    and are then told so without running every step). That only saves time: :func:`optimizer_verdict`
    decides, and a run that stopped early never passes it.

    Returns {"name", "trajectory": (steps or fewer, D) the parameters after each step, "unused_moved": per
    step, whether the parameter without a gradient changed, "closure_losses": what each closure step
    returned}."""
    __tracebackhide__ = True
    name = student_cls.__name__
    starts, targets = _test_problem(seed, dtype, device)
    params, unused, groups = _make_groups(starts, group_overrides)
    opt = call_student(student_cls, groups, **hparams, what=f"{name}(params, {hparams})")
    if stop_unlike is not None:
        twin_params, _, twin_groups = _make_groups(starts, group_overrides)
        twin = stop_unlike[0](twin_groups, **hparams, **stop_unlike[1])
        atol, rtol = OPT_TOL[dtype]
    trajectory, unused_moved, closure_losses = [], [], []
    for step in range(1, steps + 1):
        if step % CLOSURE_EVERY == 0:
            computed = []

            def closure():
                if not torch.is_grad_enabled():
                    _fail(f"{name}.step(closure) called the closure with autograd off: call it under "
                          "torch.enable_grad(), since a closure usually runs loss.backward().")
                with torch.no_grad():
                    loss = _test_loss(params, targets)
                _set_test_grads(params, targets)
                computed.append(loss)
                return loss
            returned = _call_step(opt, closure)
            if not computed or returned is not computed[0]:
                _fail(f"{name}.step(closure) must call the closure (under torch.enable_grad()) and return its "
                      f"loss; it returned {returned!r}.")
            closure_losses.append(returned.detach().cpu())
        else:
            _set_test_grads(params, targets)
            _call_step(opt)
        trajectory.append(torch.cat([p.detach().flatten() for p in params]).cpu())
        unused_moved.append(bool(unused.detach().any()))
        if stop_unlike is not None and step <= STOP_CHECK_STEPS:
            _set_test_grads(twin_params, targets)
            twin.step()
            want = torch.cat([p.detach().flatten() for p in twin_params]).cpu()
            if unused_moved[-1] or not ((trajectory[-1] - want).abs() <= atol + rtol * want.abs()).all():
                break
    return {"name": name, "trajectory": torch.stack(trajectory), "unused_moved": unused_moved,
            "closure_losses": closure_losses}


def optimizer_verdict(run: dict, torch_cls, hparams: dict, group_overrides: dict, *, seed: int,
                      dtype: torch.dtype, steps: int, device, torch_extra: dict, hint) -> float:
    """Fail unless ``run`` (from :func:`optimizer_run`) follows ``torch_cls`` step by step; return the max
    error. The half of the check that decides: it never calls the student's code. ``hint``: the likely
    mistake, a string or a function that finds it (:func:`_diagnose`)."""
    __tracebackhide__ = True
    name, atol, rtol = run["name"], *OPT_TOL[dtype]
    starts, targets = _test_problem(seed, dtype, device)
    params, _, groups = _make_groups(starts, group_overrides)
    opt = torch_cls(groups, **hparams, **torch_extra)
    sizes = [p.numel() for p in params]
    trajectory, closure_losses = run["trajectory"], list(run["closure_losses"])
    if not torch.is_tensor(trajectory) or trajectory.dim() != 2 or not 1 <= len(trajectory) <= steps or \
            trajectory.shape[1] != sum(sizes):
        _fail(f"{name}: the parameters after each of {steps} steps did not come back as a ({steps}, {sum(sizes)}) "
              f"tensor (got {getattr(trajectory, 'shape', type(trajectory).__name__)}).")
    wants, losses = [], {}  # torch's parameters after each step, and its loss at each closure step
    for step in range(1, len(trajectory) + 1):
        if step % CLOSURE_EVERY == 0:
            with torch.no_grad():
                losses[step] = float(_test_loss(params, targets))
        _set_test_grads(params, targets)
        opt.step()
        wants.append(torch.cat([p.detach().flatten() for p in params]))
    mine, want = trajectory.to(device=device, dtype=torch.float64), torch.stack(wants).double()
    err = (mine - want).abs()
    bad = (~torch.isfinite(mine) | (err > atol + rtol * want.abs())).any(1).tolist()
    for step in range(1, len(trajectory) + 1):  # the first thing that went wrong, in step order
        if step in losses:
            got = closure_losses.pop(0) if closure_losses else None
            if not torch.is_tensor(got) or got.numel() != 1 or not _close(float(got), losses[step], 1e-6):
                _fail(f"{name}.step(closure) must return the closure's loss at step {step} ({losses[step]:.6g}); "
                      f"it returned {got!r}.")
        if run["unused_moved"][step - 1]:
            _fail(f"{name} changed a parameter whose .grad is None (step {step}): skip such parameters.")
        if bad[step - 1]:
            row, row_err = mine[step - 1], err[step - 1]
            first = int(torch.nonzero(~torch.isfinite(row) | (row_err > atol + rtol * want[step - 1].abs()))[0])
            tensor = next(i for i, end in enumerate(torch.tensor(sizes).cumsum(0).tolist()) if first < end)
            group, index = (0, tensor) if tensor < 2 else (1, tensor - 2)
            why = (hint() if callable(hint) else hint) or "compare each line of step() with the update rule above."
            if not torch.isfinite(row).all():
                _fail(f"{name} ({str(dtype)[6:]}, step {step}, param group {group}): parameters became "
                      f"inf/NaN. {why}")
            _fail(f"{name} differs from {torch_cls.__name__} at step {step} ({str(dtype)[6:]}, param group {group}, "
                  f"tensor {index}): max abs err {row_err.max().item():.2e} (tolerance {atol:g} + {rtol:g}·|θ|). "
                  f"Hint: {why}")
    worst = err.nan_to_num(0.0).max().item()
    if len(trajectory) < steps:
        _fail(f"{name} stopped after {len(trajectory)} of {steps} steps.")
    return worst


def optimizer_kind(torch_cls, hparams: dict, torch_extra: dict) -> str:
    """Which family of mistakes :func:`_diagnose` looks for, from the torch optimizer it is compared with."""
    kind = torch_cls.__name__.lower()
    if kind == "sgd" and hparams.get("momentum"):
        kind = "nesterov" if torch_extra.get("nesterov") else "momentum"
    return kind


def check_optimizer(student_cls, torch_cls, *, steps: int = 100, seed: int = 0, device=None,
                    dtypes: Iterable[torch.dtype] = (torch.float64, torch.float32),
                    group_overrides: dict | None = None, torch_extra: dict | None = None,
                    kind: str | None = None, verbose: bool = True, **hparams) -> None:
    """Check that ``student_cls(params, **hparams)`` follows ``torch_cls`` step by step.

    The test loss is smooth and non-quadratic, over four tensors in two param groups
    (the second group overrides ``group_overrides``, by default half the lr), plus one
    parameter that never receives a gradient. Parameters are compared after every step
    for ``steps`` steps in each dtype, and ``step(closure)`` must return the closure's loss.

    Args:
        torch_extra: extra keyword arguments for the torch optimizer only
            (e.g. ``nesterov=True``).
        kind: which family of mistakes to look for in the diagnosis (default: from
            ``torch_cls`` and ``torch_extra``: adam, rmsprop, adagrad, nesterov, momentum, sgd).
    """
    __tracebackhide__ = True
    strict_numerics()
    device = get_device(device)
    torch_extra = torch_extra or {}
    kind = kind or optimizer_kind(torch_cls, hparams, torch_extra)
    overrides = {"lr": hparams["lr"] * 0.5} if group_overrides is None else group_overrides
    worst = {}
    for dtype in dtypes:
        run = optimizer_run(student_cls, hparams, overrides, seed=seed, dtype=dtype, steps=steps, device=device,
                            stop_unlike=(torch_cls, torch_extra))
        worst[str(dtype)[6:]] = optimizer_verdict(
            run, torch_cls, hparams, overrides, seed=seed, dtype=dtype, steps=steps, device=device,
            torch_extra=torch_extra, hint=lambda: _diagnose(kind, student_cls, torch_cls, hparams, torch_extra))
    if verbose:
        errs = ", ".join(f"{k} max err {v:.1e}" for k, v in worst.items())
        _ok(f"{student_cls.__name__} follows torch.optim.{torch_cls.__name__} for {steps} steps, 2 param groups, "
            f"closure and grad=None ({errs}).")
