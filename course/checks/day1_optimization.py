"""DAY 1 visible checks: optimizers, schedules, mini-batches, initialisation.

See course/checks/__init__.py for the conventions shared by every check.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
from torch import nn

from course.checks.common import CheckFailed, _fail, _ok, call_student
from course.device import get_device, strict_numerics


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


def _close(a: float, b: float, rtol: float = 1e-6) -> bool:
    return abs(a - b) <= rtol * max(abs(a), abs(b)) + 1e-15


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


# ----------------------------------------------------------------------------- schedules

def schedule_run(make_schedule: Callable, *, name: str, lr0: float, deltas, ts) -> dict:
    """The schedule's values at ``ts`` for each delta, (len(deltas), len(ts)), and the learning rates
    LambdaLR sets with it over 5 steps (optimizer lr = 1.0)."""
    __tracebackhide__ = True
    values = []
    for delta in deltas:
        got = call_student(lambda: [make_schedule(lr0, delta)(t) for t in ts], what=f"{name}({lr0}, {delta})(t)")
        for t, g in zip(ts, got):
            if not isinstance(g, (float, int)) or isinstance(g, bool):
                _fail(f"{name}(lr0={lr0}, delta={delta})({t}) returned a {type(g).__name__}; return a Python float.")
        values.append([float(g) for g in got])
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1.0)
    try:
        lam = torch.optim.lr_scheduler.LambdaLR(opt, make_schedule(lr0, deltas[0]))
    except Exception as e:
        _fail(f"LambdaLR(optimizer, {name}({lr0}, {deltas[0]})) failed at t=0 with {type(e).__name__}: {e}")
    lrs = []
    for _ in range(5):
        opt.step()
        lam.step()
        lrs.append(float(opt.param_groups[0]["lr"]))
    return {"values": torch.tensor(values, dtype=torch.float64), "lambda_lrs": torch.tensor(lrs, dtype=torch.float64)}


def schedule_verdict(run: dict, formula: Callable[[float, float, int], float], *, name: str, lr0: float, deltas,
                     ts) -> None:
    __tracebackhide__ = True
    values, lrs = run["values"], run["lambda_lrs"]
    if tuple(values.shape) != (len(deltas), len(ts)) or tuple(lrs.shape) != (5,):
        _fail(f"{name}: expected {len(deltas)} × {len(ts)} values and 5 LambdaLR steps.")
    for delta, row in zip(deltas, values.tolist()):
        for t, g in zip(ts, row):
            want = formula(lr0, delta, t)
            if not _close(g, want, 1e-9):
                _fail(f"{name}(lr0={lr0}, delta={delta})({t}) = {g:.6g}, expected {want:.6g}.")
    for t, lr in enumerate(lrs.tolist(), start=1):
        if not _close(lr, formula(lr0, deltas[0], t), 1e-9):
            _fail(f"With LambdaLR (optimizer lr=1.0), step {t} gave lr={lr:.6g}, "
                  f"expected {formula(lr0, deltas[0], t):.6g}.")


def check_schedule(make_schedule: Callable, formula: Callable[[float, float, int], float], *, name: str,
                   lr0: float = 0.1, deltas=(0.01, 0.5, 1.0), ts=(0, 1, 2, 5, 10, 100, 1000),
                   verbose: bool = True) -> None:
    """Check a learning-rate schedule against its formula and with ``LambdaLR``.

    ``make_schedule(lr0, delta)`` must return a function t -> learning rate (a float).
    With an optimizer built with ``lr=1.0``, ``LambdaLR(opt, schedule)`` then sets the
    learning rate to exactly ``schedule(t)`` at step t.
    """
    __tracebackhide__ = True
    run = schedule_run(make_schedule, name=name, lr0=lr0, deltas=deltas, ts=ts)
    schedule_verdict(run, formula, name=name, lr0=lr0, deltas=deltas, ts=ts)
    if verbose:
        _ok(f"{name} matches its formula for δ in {list(deltas)} and drives LambdaLR.")


# ----------------------------------------------------------------------------- mini-batches

def minibatch_run(minibatches: Callable, *, n: int, batch_size: int, seed: int) -> dict:
    """Four epochs of ``minibatches`` over rows 0..n-1 (row i is all i, its label 7 i): in order; shuffled
    with a generator seeded ``seed``; shuffled again with a new generator seeded alike (after changing the
    global seed); and again with the first generator. Each epoch: {"x": [first column of each batch],
    "y": [labels of each batch]}."""
    __tracebackhide__ = True
    X = torch.arange(n, dtype=torch.float32).unsqueeze(1).repeat(1, 3)  # (N, 3); row i is all i
    y = torch.arange(n) * 7

    def epoch(**kw):
        batches = call_student(lambda: list(minibatches(X, y, batch_size, **kw)),
                               what=f"minibatches(X, y, {batch_size}, {kw})")
        for batch in batches:
            if not (isinstance(batch, tuple | list) and len(batch) == 2 and all(map(torch.is_tensor, batch))):
                _fail("each batch must be a pair of tensors (x_batch, y_batch) of the same length.")
            if batch[0].dim() != 2 or batch[0].shape[1:] != X.shape[1:]:
                _fail(f"each x_batch must be rows of X, shape (batch, {X.shape[1]}); got {tuple(batch[0].shape)}.")
        # three tensors, not two per batch: serialising thousands of small tensors costs more than the test
        return {"x": torch.cat([xb[:, 0] for xb, _ in batches]) if batches else torch.zeros(0),
                "y": torch.cat([yb for _, yb in batches]) if batches else torch.zeros(0, dtype=torch.long),
                "sizes": torch.tensor([[len(xb), len(yb)] for xb, yb in batches], dtype=torch.long).view(-1, 2)}

    g1 = torch.Generator().manual_seed(seed)
    runs = {"in order": epoch(shuffle=False), "shuffled": epoch(shuffle=True, generator=g1)}
    torch.manual_seed(seed + 12345)  # a different global seed must not matter
    runs["seeded alike"] = epoch(shuffle=True, generator=torch.Generator().manual_seed(seed))
    runs["same generator again"] = epoch(shuffle=True, generator=g1)
    return runs


def minibatch_verdict(runs: dict, *, n: int, batch_size: int) -> None:
    __tracebackhide__ = True
    orders = {}
    for which, batches in runs.items():
        x, y, sizes = batches["x"], batches["y"], batches["sizes"]
        if sizes.shape[0] == 0:
            _fail("minibatches yielded nothing: it must yield (x_batch, y_batch) pairs.")
        if not torch.equal(sizes[:, 0], sizes[:, 1]) or x.shape != (int(sizes[:, 0].sum()),) or x.shape != y.shape:
            _fail("each batch must be a pair of tensors (x_batch, y_batch) of the same length.")
        if not torch.equal(x.long() * 7, y):
            _fail("x and y got out of step: shuffle both with the same permutation.")
        orders[which] = x.long()
    sizes = runs["in order"]["sizes"][:, 0].tolist()
    want = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    if sizes != want:
        hint = " The last, smaller batch is missing." if sizes == want[:-1] else ""
        _fail(f"with N={n} and batch_size={batch_size} the batch sizes should be {want}, got {sizes}.{hint}")
    if not torch.equal(orders["in order"], torch.arange(n)):
        _fail("with shuffle=False the samples must come in their original order.")
    seen = orders["shuffled"]
    if not torch.equal(seen.sort().values, torch.arange(n)):
        _fail("with shuffle=True every sample must appear exactly once per epoch (no repeats, none dropped).")
    if torch.equal(seen, torch.arange(n)):
        _fail("shuffle=True returned the original order: permute the indices (torch.randperm).")
    if not torch.equal(seen, orders["seeded alike"]):
        _fail("two epochs with generators seeded alike gave different orders: pass generator= to torch.randperm.")
    if torch.equal(seen, orders["same generator again"]):
        _fail("the second epoch from the same generator repeated the first order: draw a fresh permutation "
              "each epoch from the generator you were given.")


def check_minibatches(minibatches: Callable, *, n: int = 103, batch_size: int = 10, seed: int = 0,
                      verbose: bool = True) -> None:
    """Check that ``minibatches`` covers each sample once per epoch, keeps X and y aligned,
    keeps the last short batch, shuffles only when asked, and obeys its generator."""
    __tracebackhide__ = True
    minibatch_verdict(minibatch_run(minibatches, n=n, batch_size=batch_size, seed=seed), n=n, batch_size=batch_size)
    if verbose:
        want = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
        _ok(f"minibatches covers all {n} samples once per epoch in batches {want[:2]}…{want[-1:]}, "
            "shuffles reproducibly with its generator.")


# ----------------------------------------------------------------------------- initialisation

INIT_STD = {"normal": lambda fan_in: 0.01, "xavier": lambda fan_in: math.sqrt(1 / fan_in),
            "he": lambda fan_in: math.sqrt(2 / fan_in)}


def _fan_in(m: nn.Module) -> int:
    return m.weight[0].numel()  # in_features, or in_channels/groups · kH · kW


def _init_test_model() -> nn.Module:
    """Linear and Conv2d layers with fan-in ≠ fan-out, nested in Sequential."""
    return nn.Sequential(nn.Conv2d(16, 64, 3), nn.ReLU(), nn.Sequential(nn.Flatten(), nn.Linear(576, 128)),
                         nn.Linear(128, 40))


def _weighted_layers(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}


def init_run(init_weights: Callable, *, seed: int) -> dict:
    """The weights and biases ``init_weights`` gives the test model for each scheme, and the name of the
    exception it raises for an unknown scheme ("" when none)."""
    __tracebackhide__ = True
    schemes = {}
    for scheme in INIT_STD:
        torch.manual_seed(seed)
        model = _init_test_model()
        out = call_student(init_weights, model, scheme, what=f"init_weights(model, {scheme!r})")
        if out is not None and out is not model:
            _fail("init_weights must change the model in place (return it or nothing).")
        schemes[scheme] = {name: {"weight": m.weight.detach().cpu().clone(),
                                  "bias": None if m.bias is None else m.bias.detach().cpu().clone()}
                           for name, m in _weighted_layers(model).items()}
    try:
        init_weights(nn.Linear(3, 3), "glorot-ish")
        unknown = ""
    except Exception as e:
        unknown = type(e).__name__
    return {"schemes": schemes, "unknown_scheme": unknown}


def init_verdict(run: dict) -> None:
    """Each weight must have mean ≈ 0 and the scheme's std within ±10% (the sampling error of the std
    is ≤ 1.1% for these sizes, so this never flakes), look normal (excess kurtosis within ±0.6, a
    uniform has −1.2), and every bias must be exactly zero."""
    __tracebackhide__ = True
    with torch.device("meta"):  # the layers' names and shapes only, without initialising them
        expected = _weighted_layers(_init_test_model())
    for scheme, std_of in INIT_STD.items():
        layers = run["schemes"][scheme]
        for mname, m in expected.items():
            where = f"init_weights(model, {scheme!r}) on {type(m).__name__} {mname!r} (fan_in={_fan_in(m)})"
            w, b = layers[mname]["weight"], layers[mname]["bias"]
            if tuple(w.shape) != tuple(m.weight.shape):
                _fail(f"{where}: the weight's shape changed to {tuple(w.shape)}.")
            w, want = w.double().flatten(), std_of(_fan_in(m))
            std = w.std().item()
            if abs(w.mean().item()) > 0.1 * want:
                _fail(f"{where}: weight mean {w.mean().item():.2e}, expected ≈ 0.")
            if abs(std / want - 1) > 0.10:
                close = [k for k, f in INIT_STD.items() if abs(std / f(_fan_in(m)) - 1) < 0.1]
                extra = f" That is the std of {close[0]!r}." if close else ""
                if abs(std / math.sqrt((2 if scheme == 'he' else 1) / m.weight.shape[0]) - 1) < 0.1:
                    extra = " It looks like you used fan_out (out_features) instead of fan_in."
                _fail(f"{where}: weight std {std:.4g}, expected {want:.4g} (±10%).{extra}")
            kurt = (((w - w.mean()) / w.std()) ** 4).mean().item() - 3
            if abs(kurt) > 0.6:
                _fail(f"{where}: the weights do not look normal (excess kurtosis {kurt:.2f}; a uniform gives -1.2). "
                      "Draw from a normal distribution (nn.init.normal_ or torch.randn).")
            if b is None or tuple(b.shape) != tuple(m.bias.shape) or b.abs().max().item() != 0:
                _fail(f"{where}: biases must be set to zero.")
    if run["unknown_scheme"] != "ValueError":
        _fail(f"an unknown scheme should raise ValueError, not {run['unknown_scheme']}." if run["unknown_scheme"]
              else "init_weights(model, 'glorot-ish') should raise ValueError for an unknown scheme.")


def check_init(init_weights: Callable, *, seed: int = 0, verbose: bool = True) -> None:
    """Check ``init_weights(model, scheme)`` statistically (see :func:`init_verdict`) on a model with
    Linear and Conv2d layers."""
    __tracebackhide__ = True
    init_verdict(init_run(init_weights, seed=seed))
    if verbose:
        _ok("init_weights gives std 0.01 / √(1/n_in) / √(2/n_in) normal weights and zero biases "
            "on every Linear and Conv2d.")
