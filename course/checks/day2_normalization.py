"""DAY 2 visible checks: activations, normalization layers, dropout, weight penalties.

Every function here compares with torch.nn.functional / torch.nn on random inputs in
float64 (tolerance 1e-10 + 1e-8·|expected|) and names the likely mistake when it can.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from course.checks.common import _fail, _ok, call_student, compare, forbid_calls, rand64

TOL = dict(atol=1e-10, rtol=1e-8)


_rand = rand64  # seeded float64 normals (course.checks.common)


# ----------------------------------------------------------------------------- activations

def check_activations(sigmoid, tanh, relu, leaky_relu, softmax, *, seed: int = 0, verbose: bool = True) -> None:
    """Each activation against torch on random inputs and on extremes (±1000)."""
    __tracebackhide__ = True
    for fn in (sigmoid, tanh, relu, leaky_relu, softmax):
        forbid_calls(fn, ["torch.sigmoid", "torch.tanh", "torch.relu", "F.relu", "F.leaky_relu", "F.sigmoid",
                          "torch.softmax", "F.softmax", "torch.nn.functional.softmax", ".softmax", ".sigmoid",
                          ".tanh", ".relu"], fn.__name__)
    x = torch.cat([_rand(200, seed=seed, scale=5), torch.tensor([-1000.0, -50.0, -1e-9, 0.0, 1e-9, 50.0, 1000.0],
                                                                 dtype=torch.float64)])
    compare(call_student(sigmoid, x, what="sigmoid(x)"), torch.sigmoid(x), "sigmoid(x)", **TOL)
    compare(call_student(tanh, x, what="tanh(x)"), torch.tanh(x), "tanh(x)", **TOL)
    compare(call_student(relu, x, what="relu(x)"), torch.relu(x), "relu(x)", **TOL)
    for slope in (0.01, 0.2):
        got = call_student(leaky_relu, x, slope, what=f"leaky_relu(x, {slope})")
        compare(got, F.leaky_relu(x, slope), f"leaky_relu(x, negative_slope={slope})", **TOL,
                hint="Only negative inputs are scaled by the slope.")
    z = _rand(3, 4, 5, seed=seed + 1, scale=3)
    z[0, 0, :] = torch.tensor([1000.0, -1000.0, 999.0, 0.0, 1.0])  # overflows exp() unless the max is subtracted
    for dim in (0, 1, -1):
        got = call_student(softmax, z, dim, what=f"softmax(x, dim={dim})")
        compare(got, torch.softmax(z, dim), f"softmax(x, dim={dim})", **TOL,
                hint="Subtract the maximum along dim before exp() so that e^1000 never appears; "
                     "normalise along the dim you were given.")
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


def check_batch_norm(batch_norm, *, seed: int = 0, momentum: float = 0.1, eps: float = 1e-5,
                     verbose: bool = True) -> None:
    """``batch_norm`` against ``F.batch_norm`` in training and eval mode, outputs and running stats."""
    __tracebackhide__ = True
    forbid_calls(batch_norm, ["F.batch_norm", "torch.batch_norm", "torch.nn.functional.batch_norm"], "batch_norm")
    for shape in [(8, 5), (4, 3, 5, 6)]:
        x, gamma, beta, rm0, rv0 = _bn_inputs(shape, seed)
        rm, rv, trm, trv = rm0.clone(), rv0.clone(), rm0.clone(), rv0.clone()
        what = f"batch_norm on shape {shape}, training=True"
        y = call_student(batch_norm, x, gamma, beta, rm, rv, True, momentum, eps, what=what)
        want = F.batch_norm(x, trm, trv, gamma, beta, True, momentum, eps)
        ok = torch.is_tensor(y) and y.shape == want.shape and torch.allclose(y, want, **TOL) \
            and torch.allclose(rm, trm, **TOL) and torch.allclose(rv, trv, **TOL)
        if not ok:
            hint = _bn_hint(x, gamma, beta, rm0, rv0, y, rm, rv, momentum, eps)
            compare(y, want, f"{what}: y", **TOL, hint=hint)
            compare(rm, trm, f"{what}: running_mean after the call", **TOL, hint=hint)
            compare(rv, trv, f"{what}: running_var after the call", **TOL, hint=hint)
        what = f"batch_norm on shape {shape}, training=False"
        rm_before, rv_before = rm.clone(), rv.clone()
        y = call_student(batch_norm, x, gamma, beta, rm, rv, False, momentum, eps, what=what)
        compare(y, F.batch_norm(x, trm, trv, gamma, beta, False, momentum, eps), what, **TOL,
                hint="In eval mode normalise with running_mean and running_var, and leave them unchanged.")
        if not (torch.equal(rm, rm_before) and torch.equal(rv, rv_before)):
            _fail(f"{what} changed the running statistics; eval mode must only read them.")
    if verbose:
        _ok(f"batch_norm matches F.batch_norm (train and eval, 2-D and 4-D input, momentum={momentum}).")


def check_batch_norm_backward(BatchNormFunction, *, seed: int = 0, verbose: bool = True) -> None:
    """The hand-written backward against autograd through F.batch_norm, then gradcheck (float64)."""
    __tracebackhide__ = True
    for shape in [(6, 4), (3, 2, 3, 3)]:
        x, gamma, beta, _, _ = _bn_inputs(shape, seed)
        dy = _rand(*shape, seed=seed + 9)
        ins = [t.clone().requires_grad_() for t in (x, gamma, beta)]
        out = call_student(BatchNormFunction.apply, *ins, 1e-5, what="BatchNormFunction.apply")
        grads = call_student(torch.autograd.grad, out, ins, dy, what="BatchNormFunction.backward")
        refs = [t.clone().requires_grad_() for t in (x, gamma, beta)]
        want = torch.autograd.grad(F.batch_norm(refs[0], None, None, refs[1], refs[2], True, 0.0, 1e-5), refs, dy)
        hints = {"∂L/∂x": "∂L/∂x = (γ/σ)·(dy − mean(dy) − x̂·mean(dy·x̂)); both mean terms matter, means over "
                          "the m values of each channel.",
                 "∂L/∂γ": "∂L/∂γ = Σ dy·x̂ (per channel).", "∂L/∂β": "∂L/∂β = Σ dy (per channel)."}
        for (name, hint), g, w in zip(hints.items(), grads, want):
            compare(g, w, f"BatchNormFunction backward on shape {shape}: {name}", **TOL, hint=hint)
        fn = lambda a, b, c: BatchNormFunction.apply(a, b, c, 1e-5)  # noqa: E731
        if not torch.autograd.gradcheck(fn, tuple(t.clone().requires_grad_() for t in (x[:3], gamma, beta)), fast_mode=True,
                                        raise_exception=False):
            _fail(f"gradcheck failed on shape {shape}: your backward disagrees with finite differences.")
    if verbose:
        _ok("BatchNormFunction's backward matches autograd through F.batch_norm and passes gradcheck (float64).")


def check_batchnorm2d(BatchNorm2d, *, seed: int = 0, steps: int = 5, verbose: bool = True) -> None:
    """Module names, initial state, several training steps, eval, and state_dict both ways."""
    __tracebackhide__ = True
    C = 3
    mine = call_student(BatchNorm2d, C, momentum=0.2, what="BatchNorm2d(3, momentum=0.2)").double()
    ref = nn.BatchNorm2d(C, momentum=0.2).double()
    names = lambda m: (sorted(n for n, _ in m.named_parameters()), sorted(n for n, _ in m.named_buffers()))  # noqa
    if names(mine) != names(ref):
        _fail(f"BatchNorm2d has parameters/buffers {names(mine)}, torch has {names(ref)}. Use nn.Parameter for "
              "weight and bias and register_buffer for running_mean, running_var and num_batches_tracked.")
    for k, v in ref.state_dict().items():
        compare(mine.state_dict()[k].to(v.dtype), v, f"a new BatchNorm2d's {k}", atol=0, rtol=0,
                hint="Start with weight=1, bias=0, running_mean=0, running_var=1, num_batches_tracked=0.")
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(_rand(C, seed=seed + 5, shift=1))
    mine.load_state_dict(ref.state_dict())
    mine.train(), ref.train()
    for step in range(steps):
        x = _rand(4, C, 5, 5, seed=seed + 10 + step, scale=2, shift=1)
        y = call_student(mine, x, what=f"BatchNorm2d forward (train, step {step + 1})")
        compare(y, ref(x), f"BatchNorm2d output in train mode at step {step + 1}", **TOL)
        for k in ("running_mean", "running_var"):
            compare(getattr(mine, k), getattr(ref, k), f"BatchNorm2d.{k} after step {step + 1}", **TOL,
                    hint="The module must pass momentum and its own buffers to batch_norm.")
        if int(mine.num_batches_tracked) != int(ref.num_batches_tracked):
            _fail(f"num_batches_tracked is {int(mine.num_batches_tracked)} after {step + 1} training steps, "
                  f"expected {int(ref.num_batches_tracked)}.")
    mine.eval(), ref.eval()
    x = _rand(2, C, 5, 5, seed=seed + 99, scale=2, shift=1)
    compare(call_student(mine, x, what="BatchNorm2d forward (eval)"), ref(x), "BatchNorm2d output in eval mode", **TOL,
            hint="In eval mode (self.training is False) use the running statistics.")
    back = nn.BatchNorm2d(C).double()
    back.load_state_dict(mine.state_dict())
    back.eval()
    compare(back(x), ref(x), "nn.BatchNorm2d loaded from your state_dict", **TOL)
    if verbose:
        _ok(f"BatchNorm2d matches nn.BatchNorm2d over {steps} training steps and in eval mode; state_dicts "
            "load both ways.")


# ----------------------------------------------------------------------------- other norms

def check_layer_norm(layer_norm, *, seed: int = 0, verbose: bool = True) -> None:
    __tracebackhide__ = True
    forbid_calls(layer_norm, ["F.layer_norm", "torch.layer_norm"], "layer_norm")
    x = _rand(4, 3, 5, seed=seed, scale=2, shift=1)
    for shape in [(5,), (3, 5)]:
        w, b = _rand(*shape, seed=seed + 1, shift=1), _rand(*shape, seed=seed + 2)
        for args in ((w, b), (None, None)):
            what = f"layer_norm(x of shape {tuple(x.shape)}, normalized_shape={shape}" + \
                   (", weight, bias)" if args[0] is not None else ")")
            got = call_student(layer_norm, x, shape, *args, 1e-5, what=what)
            compare(got, F.layer_norm(x, shape, *args, 1e-5), what, **TOL,
                    hint="Statistics over the last len(normalized_shape) dims of each sample, biased variance.")
    if verbose:
        _ok("layer_norm matches F.layer_norm.")


def check_instance_norm(instance_norm, *, seed: int = 0, verbose: bool = True) -> None:
    __tracebackhide__ = True
    forbid_calls(instance_norm, ["F.instance_norm", "torch.instance_norm"], "instance_norm")
    x = _rand(3, 4, 5, 5, seed=seed, scale=2, shift=1)
    w, b = _rand(4, seed=seed + 1, shift=1), _rand(4, seed=seed + 2)
    for args in ((w, b), (None, None)):
        got = call_student(instance_norm, x, *args, 1e-5, what="instance_norm")
        compare(got, F.instance_norm(x, weight=args[0], bias=args[1], eps=1e-5), "instance_norm", **TOL,
                hint="Statistics over (H, W) separately for every sample and channel; γ and β are per channel.")
    if verbose:
        _ok("instance_norm matches F.instance_norm.")


def check_group_norm(group_norm, *, seed: int = 0, verbose: bool = True) -> None:
    __tracebackhide__ = True
    forbid_calls(group_norm, ["F.group_norm", "torch.group_norm"], "group_norm")
    x = _rand(2, 6, 4, 4, seed=seed, scale=2, shift=1)
    x[:, ::2] *= 4  # even channels larger, so the channel-to-group assignment matters
    w, b = _rand(6, seed=seed + 1, shift=1), _rand(6, seed=seed + 2)
    for G in (1, 2, 3, 6):
        got = call_student(group_norm, x, G, w, b, 1e-5, what=f"group_norm(x, num_groups={G})")
        compare(got, F.group_norm(x, G, w, b, 1e-5), f"group_norm(x of shape (2, 6, 4, 4), num_groups={G})", **TOL,
                hint="Groups are consecutive channels: reshape to (N, G, C // G, H, W) and take statistics over "
                     "the last three dims; γ and β stay per channel.")
    if verbose:
        _ok("group_norm matches F.group_norm for 1, 2, 3 and 6 groups.")


# ----------------------------------------------------------------------------- dropout

def check_dropout(dropout, *, seed: int = 0, verbose: bool = True) -> None:
    """Statistical checks with 50,000 draws and bounds at 10 standard errors (a correct dropout fails with
    probability ~1e-23; dropping with probability 1 − p instead misses by over 300 standard errors at p = 0.2)."""
    __tracebackhide__ = True
    N = 50_000
    x = _rand(7, 9, seed=seed)
    for training, p in ((False, 0.5), (True, 0.0)):
        got = call_student(dropout, x, p, training, torch.Generator().manual_seed(seed), what="dropout")
        if not (torch.is_tensor(got) and torch.equal(got, x)):
            _fail(f"dropout(x, p={p}, training={training}) must return x unchanged.")
    for p in (0.2, 0.5, 0.8):
        ones = torch.ones(N, dtype=torch.float64)
        y = call_student(dropout, ones, p, True, torch.Generator().manual_seed(seed), what=f"dropout(x, p={p})")
        if not torch.is_tensor(y) or y.shape != ones.shape or y.dtype != ones.dtype:
            _fail(f"dropout(x, p={p}, training=True) must return a tensor shaped and typed like x.")
        zero_frac = (y == 0).double().mean().item()
        se = math.sqrt(p * (1 - p) / N)
        if abs(zero_frac - p) > 10 * se:
            extra = " You drop with probability 1 − p; p is the probability of dropping." \
                if abs(zero_frac - (1 - p)) < 10 * se else ""
            _fail(f"dropout(p={p}) zeroed {zero_frac:.4f} of the entries, expected {p} ± {10 * se:.4f}.{extra}")
        kept = y[y != 0]
        if not torch.allclose(kept, torch.full_like(kept, 1 / (1 - p))):
            _fail(f"dropout(p={p}): surviving entries of a tensor of ones are {kept[0].item():.4g}, expected "
                  f"1/(1 − p) = {1 / (1 - p):.4g}. Inverted dropout scales the survivors so E[y] = x.")
        mean_se = math.sqrt(p / (1 - p) / N)
        if abs(y.mean().item() - 1) > 10 * mean_se:
            _fail(f"dropout(p={p}) changed the mean of a tensor of ones to {y.mean().item():.4f}.")
    y1 = dropout(x, 0.5, True, torch.Generator().manual_seed(seed))
    torch.manual_seed(seed + 1)
    y2 = dropout(x, 0.5, True, torch.Generator().manual_seed(seed))
    if not torch.equal(y1, y2):
        _fail("dropout with two generators seeded alike gave different masks: draw the mask with "
              "torch.rand(x.shape, generator=generator).")
    if torch.equal(y1, dropout(x, 0.5, True, torch.Generator().manual_seed(seed + 1))):
        _fail("dropout gave the same mask for different generator seeds.")
    rows = dropout(torch.ones(100, 50, dtype=torch.float64), 0.5, True, torch.Generator().manual_seed(seed))
    if torch.equal(rows[0], rows[1]):
        _fail("dropout used the same mask for every row: draw one random number per entry of x.")
    if verbose:
        _ok("dropout: identity in eval mode, drops a fraction p, scales survivors by 1/(1−p), follows its generator.")


# ----------------------------------------------------------------------------- penalties

def _penalty_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(12, 4)).double()


def check_penalties(l1_penalty, l2_penalty, *, seed: int = 0, lam: float = 0.1, verbose: bool = True) -> None:
    """Values against the formulas, and λ·l2_penalty against SGD's weight_decay=λ (weights only)."""
    __tracebackhide__ = True
    model = _penalty_model(seed)
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    l1 = call_student(l1_penalty, model, what="l1_penalty(model)")
    l2 = call_student(l2_penalty, model, what="l2_penalty(model)")
    want1 = sum(w.abs().sum() for w in weights)
    want2 = 0.5 * sum((w ** 2).sum() for w in weights)
    for name, got, want, alt in (("l1_penalty", l1, want1, sum(p.abs().sum() for p in model.parameters())),
                                 ("l2_penalty", l2, want2, 0.5 * sum((p ** 2).sum() for p in model.parameters()))):
        if not torch.is_tensor(got) or got.dim() != 0 or not got.requires_grad:
            _fail(f"{name}(model) must return a 0-dim tensor connected to the parameters (so it can be "
                  "backpropagated); sum tensors, do not call .item().")
        if not torch.allclose(got, want):
            hint = ""
            if torch.allclose(got, alt):
                hint = " You included the biases; penalise only parameters named *.weight."
            elif name == "l2_penalty" and torch.allclose(got, 2 * want):
                hint = " Use ½·Σw², so that the gradient of λ·l2_penalty is λw, which is what weight_decay adds."
            _fail(f"{name}(model) = {got.item():.6g}, expected {want.item():.6g}.{hint}")
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    x, target = _rand(5, 2, 4, 4, seed=seed + 1), torch.randint(0, 4, (5,), generator=torch.Generator().manual_seed(seed))
    (F.cross_entropy(a(x), target) + lam * l2_penalty(a)).backward()
    torch.optim.SGD(a.parameters(), lr=0.5).step()
    wb = [p for n, p in b.named_parameters() if n.endswith("weight")]
    bb = [p for n, p in b.named_parameters() if n.endswith("bias")]
    opt = torch.optim.SGD([{"params": wb, "weight_decay": lam}, {"params": bb, "weight_decay": 0.0}], lr=0.5)
    F.cross_entropy(b(x), target).backward()
    opt.step()
    for (n, pa), pb in zip(a.named_parameters(), b.parameters()):
        compare(pa.detach(), pb.detach(), f"parameter {n} after one SGD step with loss + {lam}·l2_penalty "
                f"(expected: SGD with weight_decay={lam} on weights)", **TOL)
    if verbose:
        _ok(f"l1_penalty and l2_penalty match their formulas; {lam}·l2_penalty trains like weight_decay={lam}.")
