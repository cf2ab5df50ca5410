"""DAY 1 visible checks, continued: learning-rate schedules, mini-batches, initialisation.

Each check is a ``*_run`` (calls the student's code, returns what it saw) and a ``*_verdict`` (decides,
without the student's code), so the hidden tests can judge outside the kernel (autograder/judge.py).
Re-exported by DAY 1's checks module.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from course.checks.common import _fail, _ok, call_student


def _close(a: float, b: float, rtol: float = 1e-6) -> bool:
    return abs(a - b) <= rtol * max(abs(a), abs(b)) + 1e-15


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
