"""DAY 2 visible checks: activations, normalization layers, dropout, weight penalties.

Every function here compares with torch.nn.functional / torch.nn on random inputs in
float64 (tolerance 1e-10 + 1e-8·|expected|) and names the likely mistake when it can.

Each check is two halves, so that the hidden tests can be judged outside the student's process
(autograder/judge.py): ``<name>_run`` calls the student's code on inputs made from ``seed`` and
returns what it observed (plain tensors and numbers, :func:`~course.checks.common.observed`);
``<name>_verdict`` makes the same inputs again, computes what torch gives and compares. A visible
check is the one after the other.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course.checks.common import (GRADIENT_HINT, TOL, _fail, _ok, absent, call_student, compare, forbid_calls_in,
                                  observed, observed_grads, rand64, source_of, type_name)
from course.checks.norms_dropout_penalties import (check_dropout, check_group_norm, check_instance_norm,
                                                   check_layer_norm, check_penalties)

__all__ = ["TOL", "check_activations", "check_batch_norm", "check_batch_norm_backward", "check_batchnorm2d",
           "check_layer_norm", "check_instance_norm", "check_group_norm", "check_dropout", "check_penalties"]
# The rest of the DAY's checks (layer, instance and group norm, dropout, penalties) are in
# norms_dropout_penalties.py.



_rand = rand64  # seeded float64 normals (course.checks.common)


# ----------------------------------------------------------------------------- activations

ACTIVATION_CALLS = ["torch.sigmoid", "torch.tanh", "torch.relu", "F.relu", "F.leaky_relu", "F.sigmoid", "torch.softmax",
                    "F.softmax", "torch.nn.functional.softmax", ".softmax", ".sigmoid", ".tanh", ".relu"]
SLOPES, SOFTMAX_DIMS = (0.01, 0.2), (0, 1, -1)


def _activation_inputs(seed):
    x = torch.cat([_rand(200, seed=seed, scale=5), torch.tensor([-1000.0, -50.0, -1e-9, 0.0, 1e-9, 50.0, 1000.0],
                                                                 dtype=torch.float64)])
    z = _rand(3, 4, 5, seed=seed + 1, scale=3)
    z[0, 0, :] = torch.tensor([1000.0, -1000.0, 999.0, 0.0, 1.0])  # overflows exp() unless the max is subtracted
    return x, z


def activations_run(sigmoid, tanh, relu, leaky_relu, softmax, *, seed: int) -> dict:
    x, z = _activation_inputs(seed)
    fns = dict(sigmoid=sigmoid, tanh=tanh, relu=relu, leaky_relu=leaky_relu, softmax=softmax)
    run = {"sources": {name: source_of(fn) for name, fn in fns.items()}}
    for name in ("sigmoid", "tanh", "relu"):
        run[name] = observed(call_student(fns[name], x, what=f"{name}(x)"))
    run["leaky_relu"] = [observed(call_student(leaky_relu, x, s, what=f"leaky_relu(x, {s})")) for s in SLOPES]
    run["softmax"] = [observed(call_student(softmax, z, d, what=f"softmax(x, dim={d})")) for d in SOFTMAX_DIMS]
    return run


def activations_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    for name, src in run["sources"].items():
        forbid_calls_in(src, ACTIVATION_CALLS, name)
    x, z = _activation_inputs(seed)
    for name, torch_fn in (("sigmoid", torch.sigmoid), ("tanh", torch.tanh), ("relu", torch.relu)):
        compare(run[name], torch_fn(x), f"{name}(x)", **TOL)
    for slope, got in zip(SLOPES, run["leaky_relu"], strict=True):
        compare(got, F.leaky_relu(x, slope), f"leaky_relu(x, negative_slope={slope})", **TOL,
                hint="Only negative inputs are scaled by the slope.")
    for dim, got in zip(SOFTMAX_DIMS, run["softmax"], strict=True):
        compare(got, torch.softmax(z, dim), f"softmax(x, dim={dim})", **TOL,
                hint="Subtract the maximum along dim before exp() so that e^1000 never appears; "
                     "normalise along the dim you were given.")


def check_activations(sigmoid, tanh, relu, leaky_relu, softmax, *, seed: int = 0, verbose: bool = True) -> None:
    """Each activation against torch on random inputs and on extremes (±1000)."""
    __tracebackhide__ = True
    activations_verdict(activations_run(sigmoid, tanh, relu, leaky_relu, softmax, seed=seed), seed=seed)
    if verbose:
        _ok("sigmoid, tanh, relu, leaky_relu and softmax match torch, softmax stays finite at ±1000.")


# ----------------------------------------------------------------------------- batch norm

def _bn_inputs(shape, seed):
    C = shape[1]
    x = _rand(*shape, seed=seed, scale=3, shift=2)
    gamma, beta = _rand(C, seed=seed + 1, shift=1), _rand(C, seed=seed + 2)
    rm, rv = _rand(C, seed=seed + 3), _rand(C, seed=seed + 4).abs() + 0.5
    return x, gamma, beta, rm, rv


def _bn_hint(x, gamma, beta, rm0, rv0, y, rm, rv, momentum, eps) -> str:
    dims = [0] + list(range(2, x.dim()))
    shape = [1, -1] + [1] * (x.dim() - 2)
    mean, n = x.mean(dims), x.numel() // x.shape[1]
    var_b, var_u = x.var(dims, unbiased=False), x.var(dims, unbiased=True)
    close = lambda a, b: a is not None and torch.is_tensor(a) and a.shape == b.shape and torch.allclose(a, b)  # noqa
    y_unbiased = gamma.reshape(shape) * (x - mean.reshape(shape)) / torch.sqrt(var_u.reshape(shape) + eps) \
        + beta.reshape(shape)
    if close(y, y_unbiased):
        return "You normalise with the unbiased variance; use the biased one (unbiased=False) for y."
    if close(rm, rm0):
        return ("running_mean did not change: update it in place (running_mean.mul_(...).add_(...)); "
                "rebinding the name does not change the caller's tensor.")
    if close(rm, momentum * rm0 + (1 - momentum) * mean):
        return "BatchNorm's momentum weights the new batch: running = (1 − momentum)·running + momentum·batch."
    if close(rv, (1 - momentum) * rv0 + momentum * var_b):
        return f"running_var must use the unbiased variance σ²·n/(n−1) (here n = {n})."
    return "Statistics are per channel, over every dim except dim 1: (N,) for 2-D input, (N, H, W) for 4-D."


BN_OWN_SETTINGS = (0.5, 0.5)  # (momentum, eps) of the last shape, whatever the caller's: no default hides


def _bn_cases(momentum: float, eps: float):
    """(shape, momentum, eps) of each call: 2-D and 4-D input with the caller's settings, then a 4-D
    input whose every dim differs with :data:`BN_OWN_SETTINGS`."""
    return [((8, 5), momentum, eps), ((4, 3, 5, 6), momentum, eps), ((5, 4, 3, 2), *BN_OWN_SETTINGS)]


def batch_norm_run(batch_norm, *, seed: int, momentum: float, eps: float) -> dict:
    """For each case: y, its gradients w.r.t. x, γ and β, and the running statistics after a training
    call, then y and the statistics after an eval call."""
    runs = []
    for shape, m, e in _bn_cases(momentum, eps):
        x, gamma, beta, rm, rv = _bn_inputs(shape, seed)
        one = {}
        for training in (True, False):
            ins = [t.clone().requires_grad_(training) for t in (x, gamma, beta)]
            y = call_student(batch_norm, *ins, rm, rv, training, m, e,
                             what=f"batch_norm on shape {shape}, training={training}, momentum={m}, eps={e}")
            one[training] = {"y": observed(y), "rm": observed(rm), "rv": observed(rv)}
            if training:
                one[training]["grads"] = observed_grads(y, ins, _rand(*shape, seed=seed + 9))
        runs.append({"train": one[True], "eval": one[False]})
    return {"source": source_of(batch_norm), "shapes": runs}


def batch_norm_verdict(run: dict, *, seed: int, momentum: float, eps: float) -> None:
    __tracebackhide__ = True
    forbid_calls_in(run["source"], ["F.batch_norm", "torch.batch_norm", "torch.nn.functional.batch_norm"], "batch_norm")
    for (shape, momentum, eps), obs in zip(_bn_cases(momentum, eps), run["shapes"], strict=True):
        x, gamma, beta, rm0, rv0 = _bn_inputs(shape, seed)
        trm, trv = rm0.clone(), rv0.clone()
        what = f"batch_norm on shape {shape}, training=True, momentum={momentum}, eps={eps}"
        want = F.batch_norm(x, trm, trv, gamma, beta, True, momentum, eps)
        y, rm, rv = obs["train"]["y"], obs["train"]["rm"], obs["train"]["rv"]
        ok = torch.is_tensor(y) and y.shape == want.shape and y.dtype == want.dtype and torch.allclose(y, want, **TOL) \
            and torch.allclose(rm, trm, **TOL) and torch.allclose(rv, trv, **TOL)
        if not ok:
            hint = _bn_hint(x, gamma, beta, rm0, rv0, y, rm, rv, momentum, eps)
            compare(y, want, f"{what}: y", **TOL, hint=hint)
            compare(rm, trm, f"{what}: running_mean after the call", **TOL, hint=hint)
            compare(rv, trv, f"{what}: running_var after the call", **TOL, hint=hint)
        ins = [t.clone().requires_grad_() for t in (x, gamma, beta)]
        wants = torch.autograd.grad(F.batch_norm(ins[0], None, None, ins[1], ins[2], True, momentum, eps), ins,
                                    _rand(*shape, seed=seed + 9))
        grads = obs["train"]["grads"]
        if not isinstance(grads, list) or len(grads) != 3:
            _fail(f"{what}: no gradient reaches x, γ and β. {GRADIENT_HINT}")
        for name, g, w in zip(("x", "γ", "β"), grads, wants):
            compare(absent("no gradient") if g is None else g, w, f"{what}: the gradient w.r.t. {name}", **TOL,
                    hint=GRADIENT_HINT + " The batch statistics too: gradients flow through the mean and variance.")
        what = f"batch_norm on shape {shape}, training=False, eps={eps}"
        compare(obs["eval"]["y"], F.batch_norm(x, trm, trv, gamma, beta, False, momentum, eps), what, **TOL,
                hint="In eval mode normalise with running_mean and running_var, and leave them unchanged.")
        if not (torch.equal(obs["eval"]["rm"], rm) and torch.equal(obs["eval"]["rv"], rv)):
            _fail(f"{what} changed the running statistics; eval mode must only read them.")


def check_batch_norm(batch_norm, *, seed: int = 0, momentum: float = 0.1, eps: float = 1e-5,
                     verbose: bool = True) -> None:
    """``batch_norm`` against ``F.batch_norm`` in training and eval mode, outputs and running stats."""
    __tracebackhide__ = True
    batch_norm_verdict(batch_norm_run(batch_norm, seed=seed, momentum=momentum, eps=eps), seed=seed,
                       momentum=momentum, eps=eps)
    if verbose:
        _ok(f"batch_norm matches F.batch_norm (train and eval, 2-D and 4-D input, momentum={momentum} and "
            f"{BN_OWN_SETTINGS[0]}), values and gradients.")


BN_BACKWARD_SHAPES = [(6, 4), (3, 2, 3, 3)]


def batch_norm_backward_run(BatchNormFunction, *, seed: int, gradcheck: bool = True) -> list[dict]:
    """For each shape: the three input gradients of the student's backward, and whether gradcheck passed
    (``gradcheck``: the visible check runs it; a judged test does not, as only the gradients, compared
    with autograd in the grader, are evidence there)."""
    runs = []
    for shape in BN_BACKWARD_SHAPES:
        x, gamma, beta, _, _ = _bn_inputs(shape, seed)
        dy = _rand(*shape, seed=seed + 9)
        ins = [t.clone().requires_grad_() for t in (x, gamma, beta)]
        out = call_student(BatchNormFunction.apply, *ins, 1e-5, what="BatchNormFunction.apply")
        grads = call_student(torch.autograd.grad, out, ins, dy, what="BatchNormFunction.backward")
        runs.append({"grads": observed(grads)})
        if gradcheck:
            fn = lambda a, b, c: BatchNormFunction.apply(a, b, c, 1e-5)  # noqa: E731
            runs[-1]["gradcheck"] = bool(call_student(
                torch.autograd.gradcheck, fn, tuple(t.clone().requires_grad_() for t in (x[:3], gamma, beta)),
                fast_mode=True, raise_exception=False, what="gradcheck of BatchNormFunction"))
    return runs


def batch_norm_backward_verdict(runs: list[dict], *, seed: int, gradcheck: bool = True) -> None:
    __tracebackhide__ = True
    hints = {"∂L/∂x": "∂L/∂x = (γ/σ)·(dy − mean(dy) − x̂·mean(dy·x̂)); both mean terms matter, means over "
                      "the m values of each channel.",
             "∂L/∂γ": "∂L/∂γ = Σ dy·x̂ (per channel).", "∂L/∂β": "∂L/∂β = Σ dy (per channel)."}
    for shape, run in zip(BN_BACKWARD_SHAPES, runs, strict=True):
        x, gamma, beta, _, _ = _bn_inputs(shape, seed)
        refs = [t.clone().requires_grad_() for t in (x, gamma, beta)]
        want = torch.autograd.grad(F.batch_norm(refs[0], None, None, refs[1], refs[2], True, 0.0, 1e-5), refs,
                                   _rand(*shape, seed=seed + 9))
        grads = run["grads"]
        if not isinstance(grads, list) or len(grads) != 3:
            _fail(f"BatchNormFunction.backward on shape {shape} must return three gradients (x, γ, β) and None for eps.")
        for (name, hint), g, w in zip(hints.items(), grads, want):
            compare(g, w, f"BatchNormFunction backward on shape {shape}: {name}", **TOL, hint=hint)
        if gradcheck and run["gradcheck"] is not True:
            _fail(f"gradcheck failed on shape {shape}: your backward disagrees with finite differences.")


def check_batch_norm_backward(BatchNormFunction, *, seed: int = 0, verbose: bool = True) -> None:
    """The hand-written backward against autograd through F.batch_norm, then gradcheck (float64)."""
    __tracebackhide__ = True
    batch_norm_backward_verdict(batch_norm_backward_run(BatchNormFunction, seed=seed), seed=seed)  # with gradcheck
    if verbose:
        _ok("BatchNormFunction's backward matches autograd through F.batch_norm and passes gradcheck (float64).")


def _names(m: nn.Module) -> list[list[str]]:
    return [sorted(n for n, _ in m.named_parameters()), sorted(n for n, _ in m.named_buffers())]


BN2D_ARGS = dict(eps=0.05, momentum=0.2)  # both non-default: a module that ignores either is caught
BN2D_INPUT = (4, 3, 5, 6)  # N, C, H, W all different


def _bn2d_start(C: int, seed: int) -> nn.BatchNorm2d:
    """torch's module as both start training: random γ and β, default buffers."""
    ref = nn.BatchNorm2d(C, **BN2D_ARGS).double()
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(_rand(C, seed=seed + 5, shift=1))
    return ref


def _bn2d_x(seed: int, step: int) -> torch.Tensor:
    return _rand(*BN2D_INPUT, seed=seed + 10 + step, scale=0.3, shift=1)  # variance ~0.09, so eps matters


def batchnorm2d_run(BatchNorm2d, *, seed: int, steps: int) -> dict:
    """Names, the initial state, then after loading torch's start: outputs, the gradients of the first
    output w.r.t. x, weight and bias, and the buffers over ``steps`` training steps; the eval output, the
    state after two eval calls, and the final state_dict."""
    C = BN2D_INPUT[1]
    mine = call_student(BatchNorm2d, C, **BN2D_ARGS, what=f"BatchNorm2d({C}, eps=0.05, momentum=0.2)").double()
    run = {"names": _names(mine), "initial": {k: observed(v) for k, v in mine.state_dict().items()}}
    if run["names"] != _names(nn.BatchNorm2d(C)):
        return run  # the verdict stops at the names
    mine.load_state_dict(_bn2d_start(C, seed).state_dict())
    mine.train()
    run["steps"] = []
    for step in range(steps):
        x = _bn2d_x(seed, step).requires_grad_(step == 0)
        y = call_student(mine, x, what=f"BatchNorm2d forward (train, step {step + 1})")
        run["steps"].append({"y": observed(y), "running_mean": observed(mine.running_mean),
                             "running_var": observed(mine.running_var),
                             "num_batches_tracked": observed(mine.num_batches_tracked)})
        if step == 0:
            run["grads"] = observed_grads(y, [x, mine.weight, mine.bias], _rand(*BN2D_INPUT, seed=seed + 8))
    mine.eval()
    x = _rand(2, C, 5, 6, seed=seed + 99, scale=0.3, shift=1)
    run["eval"] = observed(call_student(mine, x, what="BatchNorm2d forward (eval)"))
    call_student(mine, x, what="BatchNorm2d forward (eval)")
    run["final"] = {k: observed(v) for k, v in mine.state_dict().items()}
    return run


def _counter(count, when: str, expected: int) -> None:
    __tracebackhide__ = True
    if not torch.is_tensor(count) or count.numel() != 1 or count.dtype != torch.long:
        _fail(f"num_batches_tracked {when} is {type_name(count) if not torch.is_tensor(count) else count.dtype}; "
              "like torch's, it is a 0-dim long tensor (torch.tensor(0, dtype=torch.long)).")
    if int(count) != expected:
        _fail(f"num_batches_tracked is {int(count)} {when}, expected {expected}: it counts training forwards only "
              "(not eval ones).")


def batchnorm2d_verdict(run: dict, *, seed: int, steps: int) -> None:
    __tracebackhide__ = True
    C = BN2D_INPUT[1]
    if run["names"] != _names(nn.BatchNorm2d(C)):
        _fail(f"BatchNorm2d has parameters/buffers {run['names']}, torch has {_names(nn.BatchNorm2d(C))}. Use "
              "nn.Parameter for weight and bias and register_buffer for running_mean, running_var and "
              "num_batches_tracked.")
    _counter(run["initial"]["num_batches_tracked"], "in a new module", 0)
    for k, v in nn.BatchNorm2d(C, **BN2D_ARGS).double().state_dict().items():
        compare(run["initial"][k], v, f"a new BatchNorm2d's {k}", atol=0, rtol=0,
                hint="Start with weight=1, bias=0, running_mean=0, running_var=1, num_batches_tracked=0.")
    ref = _bn2d_start(C, seed)
    ref.train()
    if len(run["steps"]) != steps:
        _fail(f"expected {steps} training steps, got {len(run['steps'])}.")
    for step, obs in enumerate(run["steps"]):
        x = _bn2d_x(seed, step).requires_grad_(step == 0)
        want = ref(x)
        compare(obs["y"], want, f"BatchNorm2d(3, eps=0.05, momentum=0.2) output in train mode at step {step + 1}",
                **TOL, hint="Pass the module's own eps and momentum to batch_norm, not the defaults.")
        for k in ("running_mean", "running_var"):
            compare(obs[k], getattr(ref, k), f"BatchNorm2d.{k} after step {step + 1}", **TOL,
                    hint="The module must pass its momentum and its own buffers to batch_norm.")
        _counter(obs["num_batches_tracked"], f"after {step + 1} training steps", step + 1)
        if step == 0:
            wants = torch.autograd.grad(want, [x, ref.weight, ref.bias], _rand(*BN2D_INPUT, seed=seed + 8))
            grads = run["grads"] if isinstance(run["grads"], list) else [None] * 3
            for name, g, w in zip(("x", "weight", "bias"), grads, wants, strict=True):
                compare(absent("no gradient") if g is None else g, w,
                        f"BatchNorm2d's gradient w.r.t. {name} (train mode)", **TOL, hint=GRADIENT_HINT)
    ref.eval()
    x = _rand(2, C, 5, 6, seed=seed + 99, scale=0.3, shift=1)
    compare(run["eval"], ref(x), "BatchNorm2d output in eval mode", **TOL,
            hint="In eval mode (self.training is False) use the running statistics.")
    _counter(run["final"].get("num_batches_tracked"), f"after {steps} training and 2 eval forwards", steps)
    back = nn.BatchNorm2d(C, **BN2D_ARGS).double()
    back.load_state_dict(run["final"])
    back.eval()
    compare(back(x), ref(x), "nn.BatchNorm2d loaded from your state_dict", **TOL)


def check_batchnorm2d(BatchNorm2d, *, seed: int = 0, steps: int = 5, verbose: bool = True) -> None:
    """Module names, initial state, several training steps, eval, and state_dict both ways."""
    __tracebackhide__ = True
    batchnorm2d_verdict(batchnorm2d_run(BatchNorm2d, seed=seed, steps=steps), seed=seed, steps=steps)
    if verbose:
        _ok(f"BatchNorm2d matches nn.BatchNorm2d over {steps} training steps and in eval mode; state_dicts "
            "load both ways.")
