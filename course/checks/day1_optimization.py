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
        for p, t in zip(params, targets):
            p.grad = 2 * (p - t) - 0.3 * torch.sin(3 * p) + 0.04 * p ** 3


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
    if kind is None:  # which mistakes to look for follows from the torch optimizer
        kind = torch_cls.__name__.lower()
        if kind == "sgd" and hparams.get("momentum"):
            kind = "nesterov" if torch_extra.get("nesterov") else "momentum"
    overrides = {"lr": hparams["lr"] * 0.5} if group_overrides is None else group_overrides
    name = student_cls.__name__
    worst = {}
    for dtype in dtypes:
        atol, rtol = OPT_TOL[dtype]
        starts, targets = _test_problem(seed, dtype, device)
        ps, unused_s, groups_s = _make_groups(starts, overrides)
        pt, unused_t, groups_t = _make_groups(starts, overrides)
        try:
            opt_s = student_cls(groups_s, **hparams)
        except Exception as e:
            _fail(f"{name}(params, {hparams}) raised {type(e).__name__}: {e}")
        opt_t = torch_cls(groups_t, **hparams, **torch_extra)
        worst_err = torch.zeros((), dtype=dtype, device=device)
        for step in range(1, steps + 1):
            use_closure = step % 10 == 0  # every 10th step goes through step(closure)
            returned, computed = [], []
            for opt, params in ((opt_s, ps), (opt_t, pt)):
                def closure(params=params):
                    if not torch.is_grad_enabled():
                        _fail(f"{name}.step(closure) called the closure with autograd off: call it under "
                              "torch.enable_grad(), since a closure usually runs loss.backward().")
                    with torch.no_grad():
                        loss = _test_loss(params, targets)
                    _set_test_grads(params, targets)
                    computed.append(loss)
                    return loss
                if use_closure:
                    returned.append(_call_step(opt, closure))
                else:
                    _set_test_grads(params, targets)
                    _call_step(opt)
            if use_closure and (not computed or returned[0] is not computed[0]):
                _fail(f"{name}.step(closure) must call the closure (under torch.enable_grad()) and return its "
                      f"loss; it returned {returned[0]!r}.")
            if unused_s.detach().any():
                _fail(f"{name} changed a parameter whose .grad is None (step {step}): skip such parameters.")
            a, b = (torch.cat([q.detach().flatten() for q in params]) for params in (ps, pt))
            err = (a - b).abs()
            worst_err = torch.maximum(worst_err, err.max())
            if not (torch.isfinite(a).all() and (err <= atol + rtol * b.abs()).all()):  # find which tensor
                for gi, (a_list, b_list) in enumerate(((ps[:2], pt[:2]), (ps[2:], pt[2:]))):
                    for pi, (a, b) in enumerate(zip(a_list, b_list)):
                        if not torch.isfinite(a).all():
                            _fail(f"{name} ({str(dtype)[6:]}, step {step}, param group {gi}): parameters became "
                                  f"inf/NaN. {_diagnose(kind, student_cls, torch_cls, hparams, torch_extra)}")
                        err = (a.detach() - b.detach()).abs()
                        if (err > atol + rtol * b.detach().abs()).any():
                            hint = _diagnose(kind, student_cls, torch_cls, hparams, torch_extra)
                            _fail(f"{name} differs from {torch_cls.__name__} at step {step} ({str(dtype)[6:]}, "
                                  f"param group {gi}, tensor {pi}): max abs err {err.max().item():.2e} "
                                  f"(tolerance {atol:g} + {rtol:g}·|θ|). Hint: {hint}")
        worst[str(dtype)[6:]] = worst_err.item()
    if verbose:
        errs = ", ".join(f"{k} max err {v:.1e}" for k, v in worst.items())
        _ok(f"{name} follows torch.optim.{torch_cls.__name__} for {steps} steps, 2 param groups, closure and "
            f"grad=None ({errs}).")


# ----------------------------------------------------------------------------- schedules

def check_schedule(make_schedule: Callable, formula: Callable[[float, float, int], float], *, name: str,
                   lr0: float = 0.1, deltas=(0.01, 0.5, 1.0), ts=(0, 1, 2, 5, 10, 100, 1000),
                   verbose: bool = True) -> None:
    """Check a learning-rate schedule against its formula and with ``LambdaLR``.

    ``make_schedule(lr0, delta)`` must return a function t -> learning rate (a float).
    With an optimizer built with ``lr=1.0``, ``LambdaLR(opt, schedule)`` then sets the
    learning rate to exactly ``schedule(t)`` at step t.
    """
    __tracebackhide__ = True
    for delta in deltas:
        got = call_student(lambda: [make_schedule(lr0, delta)(t) for t in ts], what=f"{name}({lr0}, {delta})(t)")
        for t, g in zip(ts, got):
            want = formula(lr0, delta, t)
            if not isinstance(g, (float, int)) or isinstance(g, bool):
                _fail(f"{name}(lr0={lr0}, delta={delta})({t}) returned a {type(g).__name__}; return a Python float.")
            if not _close(float(g), want, 1e-9):
                _fail(f"{name}(lr0={lr0}, delta={delta})({t}) = {g:.6g}, expected {want:.6g}.")
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1.0)
    try:
        lam = torch.optim.lr_scheduler.LambdaLR(opt, make_schedule(lr0, deltas[0]))
    except Exception as e:
        _fail(f"LambdaLR(optimizer, {name}({lr0}, {deltas[0]})) failed at t=0 with {type(e).__name__}: {e}")
    for t in range(1, 6):
        opt.step()
        lam.step()
        if not _close(opt.param_groups[0]["lr"], formula(lr0, deltas[0], t), 1e-9):
            _fail(f"With LambdaLR (optimizer lr=1.0), step {t} gave lr={opt.param_groups[0]['lr']:.6g}, "
                  f"expected {formula(lr0, deltas[0], t):.6g}.")
    if verbose:
        _ok(f"{name} matches its formula for δ in {list(deltas)} and drives LambdaLR.")


# ----------------------------------------------------------------------------- mini-batches

def check_minibatches(minibatches: Callable, *, n: int = 103, batch_size: int = 10, seed: int = 0,
                      verbose: bool = True) -> None:
    """Check that ``minibatches`` covers each sample once per epoch, keeps X and y aligned,
    keeps the last short batch, shuffles only when asked, and obeys its generator."""
    __tracebackhide__ = True
    X = torch.arange(n, dtype=torch.float32).unsqueeze(1).repeat(1, 3)  # (N, 3); row i is all i
    y = torch.arange(n) * 7  # label of row i is 7 i

    def epoch(**kw):
        batches = call_student(lambda: list(minibatches(X, y, batch_size, **kw)),
                               what=f"minibatches(X, y, {batch_size}, {kw})")
        if not batches:
            _fail("minibatches yielded nothing: it must yield (x_batch, y_batch) pairs.")
        for xb, yb in batches:
            if not (torch.is_tensor(xb) and torch.is_tensor(yb)) or len(xb) != len(yb):
                _fail("each batch must be a pair of tensors (x_batch, y_batch) of the same length.")
            if not torch.equal(xb[:, 0].long() * 7, yb):
                _fail("x and y got out of step: shuffle both with the same permutation.")
        return batches

    batches = epoch(shuffle=False)
    sizes = [len(xb) for xb, _ in batches]
    want = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    if sizes != want:
        hint = " The last, smaller batch is missing." if sizes == want[:-1] else ""
        _fail(f"with N={n} and batch_size={batch_size} the batch sizes should be {want}, got {sizes}.{hint}")
    order = torch.cat([xb[:, 0] for xb, _ in batches]).long()
    if not torch.equal(order, torch.arange(n)):
        _fail("with shuffle=False the samples must come in their original order.")
    g1 = torch.Generator().manual_seed(seed)
    b1 = epoch(shuffle=True, generator=g1)
    seen = torch.cat([xb[:, 0] for xb, _ in b1]).long()
    if not torch.equal(seen.sort().values, torch.arange(n)):
        _fail("with shuffle=True every sample must appear exactly once per epoch (no repeats, none dropped).")
    if torch.equal(seen, torch.arange(n)):
        _fail("shuffle=True returned the original order: permute the indices (torch.randperm).")
    torch.manual_seed(seed + 12345)  # a different global seed must not matter
    b2 = epoch(shuffle=True, generator=torch.Generator().manual_seed(seed))
    if not torch.equal(seen, torch.cat([xb[:, 0] for xb, _ in b2]).long()):
        _fail("two epochs with generators seeded alike gave different orders: pass generator= to torch.randperm.")
    b3 = epoch(shuffle=True, generator=g1)  # the same generator, advanced: a new order
    if torch.equal(seen, torch.cat([xb[:, 0] for xb, _ in b3]).long()):
        _fail("the second epoch from the same generator repeated the first order: draw a fresh permutation "
              "each epoch from the generator you were given.")
    if verbose:
        _ok(f"minibatches covers all {n} samples once per epoch in batches {want[:2]}…{want[-1:]}, "
            "shuffles reproducibly with its generator.")


# ----------------------------------------------------------------------------- initialisation

INIT_STD = {"normal": lambda fan_in: 0.01, "xavier": lambda fan_in: math.sqrt(1 / fan_in),
            "he": lambda fan_in: math.sqrt(2 / fan_in)}


def _fan_in(m: nn.Module) -> int:
    return m.weight[0].numel()  # in_features, or in_channels/groups · kH · kW


def check_init(init_weights: Callable, *, seed: int = 0, verbose: bool = True) -> None:
    """Check ``init_weights(model, scheme)`` statistically.

    The model has Linear and Conv2d layers with fan-in ≠ fan-out (nested in Sequential).
    Each weight must have mean ≈ 0 and the scheme's std within ±10% (the sampling error
    of the std is ≤ 1.1% for these sizes, so this never flakes), look normal (excess
    kurtosis within ±0.6, a uniform has −1.2), and every bias must be exactly zero.
    """
    __tracebackhide__ = True
    for scheme, std_of in INIT_STD.items():
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Conv2d(16, 64, 3), nn.ReLU(),
                              nn.Sequential(nn.Flatten(), nn.Linear(576, 128)), nn.Linear(128, 40))
        out = call_student(init_weights, model, scheme, what=f"init_weights(model, {scheme!r})")
        if out is not None and out is not model:
            _fail("init_weights must change the model in place (return it or nothing).")
        for mname, m in model.named_modules():
            if not isinstance(m, (nn.Linear, nn.Conv2d)):
                continue
            w = m.weight.detach().double().flatten()
            want = std_of(_fan_in(m))
            std = w.std().item()
            where = f"init_weights(model, {scheme!r}) on {type(m).__name__} {mname!r} (fan_in={_fan_in(m)})"
            if abs(w.mean().item()) > 0.1 * want:
                _fail(f"{where}: weight mean {w.mean().item():.2e}, expected ≈ 0.")
            if abs(std / want - 1) > 0.10:
                hints = {k: f(_fan_in(m)) for k, f in INIT_STD.items()}
                fo = m.weight.shape[0]
                close = [k for k, v in hints.items() if abs(std / v - 1) < 0.1]
                extra = f" That is the std of {close[0]!r}." if close else ""
                if abs(std / math.sqrt((2 if scheme == 'he' else 1) / fo) - 1) < 0.1:
                    extra = " It looks like you used fan_out (out_features) instead of fan_in."
                _fail(f"{where}: weight std {std:.4g}, expected {want:.4g} (±10%).{extra}")
            z = (w - w.mean()) / w.std()
            kurt = (z ** 4).mean().item() - 3
            if abs(kurt) > 0.6:
                _fail(f"{where}: the weights do not look normal (excess kurtosis {kurt:.2f}; a uniform gives -1.2). "
                      "Draw from a normal distribution (nn.init.normal_ or torch.randn).")
            if m.bias is not None and not torch.equal(m.bias.detach(), torch.zeros_like(m.bias)):
                _fail(f"{where}: biases must be set to zero.")
    try:
        init_weights(nn.Linear(3, 3), "glorot-ish")
    except ValueError:
        pass
    except Exception as e:
        _fail(f"an unknown scheme should raise ValueError, not {type(e).__name__}.")
    else:
        _fail("init_weights(model, 'glorot-ish') should raise ValueError for an unknown scheme.")
    if verbose:
        _ok("init_weights gives std 0.01 / √(1/n_in) / √(2/n_in) normal weights and zero biases "
            "on every Linear and Conv2d.")
