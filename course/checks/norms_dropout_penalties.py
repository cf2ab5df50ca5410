"""DAY 2 visible checks, continued: layer, instance and group norm, dropout, weight penalties. The
DAY's own module in this folder has the first half, re-exports these, and says how each check is split
into a ``_run`` and a ``_verdict`` half.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from course.checks.common import (TOL, _fail, _ok, absent, call_student, compare, compare_with_grads, forbid_calls_in,
                                  observed, rand64, run_with_grads, source_of)

__all__ = ["check_layer_norm", "check_instance_norm", "check_group_norm", "check_dropout", "check_penalties"]

_rand = rand64


# ----------------------------------------------------------------------------- other norms

LAYER_NORM_SHAPES = [(5,), (3, 5)]
BIG_EPS = 0.5  # one case of each norm uses it: an eps hard-coded to 1e-5 changes the output by ~10%
NORM_HINT = "Statistics over the last len(normalized_shape) dims of each sample, biased variance, the eps you are given."


def _layer_norm_cases(seed):
    """(x, normalized_shape, weight, bias, eps, description) for each case; x is (4, 3, 5)."""
    x = _rand(4, 3, 5, seed=seed, scale=2, shift=1)
    for shape in LAYER_NORM_SHAPES:
        w, b = _rand(*shape, seed=seed + 1, shift=1), _rand(*shape, seed=seed + 2)
        for args, eps in (((w, b), 1e-5), ((None, None), 1e-5), ((w, None), BIG_EPS)):
            yield x, shape, *args, eps, (f"layer_norm(x of shape {tuple(x.shape)}, normalized_shape={shape}"
                                         + (", weight" if args[0] is not None else "")
                                         + (", bias" if args[1] is not None else "") + f", eps={eps:g})")


def _up(x: torch.Tensor, seed: int) -> torch.Tensor:
    """The upstream gradient the norms' outputs are weighted by: (y·up).sum() is backpropagated."""
    return _rand(*x.shape, seed=seed + 7)


def layer_norm_run(layer_norm, *, seed: int) -> dict:
    return {"source": source_of(layer_norm),
            "y": [run_with_grads(layer_norm, x, shape, w, b, eps, up=_up(x, seed), what=what)
                  for x, shape, w, b, eps, what in _layer_norm_cases(seed)]}


def layer_norm_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    forbid_calls_in(run["source"], ["F.layer_norm", "torch.layer_norm"], "layer_norm")
    for (x, shape, w, b, eps, what), got in zip(_layer_norm_cases(seed), run["y"], strict=True):
        compare_with_grads(got, F.layer_norm, x, shape, w, b, eps, up=_up(x, seed), what=what,
                           names=["x", "weight", "bias"][:1 + (w is not None) + (b is not None)], hint=NORM_HINT, **TOL)


def check_layer_norm(layer_norm, *, seed: int = 0, verbose: bool = True) -> None:
    __tracebackhide__ = True
    layer_norm_verdict(layer_norm_run(layer_norm, seed=seed), seed=seed)
    if verbose:
        _ok("layer_norm matches F.layer_norm, values and gradients, with and without weight and bias, any eps.")


def _instance_norm_cases(seed):
    """(x, weight, bias, eps): x is (3, 4, 5, 6)."""
    x, w, b = _rand(3, 4, 5, 6, seed=seed, scale=2, shift=1), _rand(4, seed=seed + 1, shift=1), _rand(4, seed=seed + 2)
    return [(x, w, b, 1e-5), (x, None, None, 1e-5), (x, None, b, BIG_EPS)]


def instance_norm_run(instance_norm, *, seed: int) -> dict:
    return {"source": source_of(instance_norm),
            "y": [run_with_grads(instance_norm, x, w, b, eps, up=_up(x, seed), what=f"instance_norm (eps={eps:g})")
                  for x, w, b, eps in _instance_norm_cases(seed)]}


def instance_norm_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    forbid_calls_in(run["source"], ["F.instance_norm", "torch.instance_norm"], "instance_norm")
    for (x, w, b, eps), got in zip(_instance_norm_cases(seed), run["y"], strict=True):
        compare_with_grads(got, lambda x, w, b, eps: F.instance_norm(x, weight=w, bias=b, eps=eps), x, w, b, eps,
                           up=_up(x, seed), what=f"instance_norm (eps={eps:g})",
                           names=["x"] + ["weight"] * (w is not None) + ["bias"] * (b is not None),
                           hint="Statistics over (H, W) separately for every sample and channel; γ and β are per "
                                "channel; use the eps you are given.", **TOL)


def check_instance_norm(instance_norm, *, seed: int = 0, verbose: bool = True) -> None:
    __tracebackhide__ = True
    instance_norm_verdict(instance_norm_run(instance_norm, seed=seed), seed=seed)
    if verbose:
        _ok("instance_norm matches F.instance_norm, values and gradients.")


GROUPS = (1, 2, 3, 6)


def _group_norm_inputs(seed):
    x = _rand(2, 6, 4, 5, seed=seed, scale=2, shift=1)
    x[:, ::2] *= 4  # even channels larger, so the channel-to-group assignment matters
    return x, _rand(6, seed=seed + 1, shift=1), _rand(6, seed=seed + 2)


def _group_norm_cases(seed):
    """(num_groups, weight, bias, eps) for each case."""
    x, w, b = _group_norm_inputs(seed)
    return x, [(G, w, b, 1e-5) for G in GROUPS] + [(3, None, None, BIG_EPS)]


def group_norm_run(group_norm, *, seed: int) -> dict:
    x, cases = _group_norm_cases(seed)
    return {"source": source_of(group_norm),
            "y": [run_with_grads(group_norm, x, G, w, b, eps, up=_up(x, seed),
                                 what=f"group_norm(x, num_groups={G}, eps={eps:g})") for G, w, b, eps in cases]}


def group_norm_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    forbid_calls_in(run["source"], ["F.group_norm", "torch.group_norm"], "group_norm")
    x, cases = _group_norm_cases(seed)
    for (G, w, b, eps), got in zip(cases, run["y"], strict=True):
        compare_with_grads(got, F.group_norm, x, G, w, b, eps, up=_up(x, seed),
                           what=f"group_norm(x of shape (2, 6, 4, 5), num_groups={G}, eps={eps:g})",
                           names=["x"] + ["weight", "bias"] * (w is not None), **TOL,
                           hint="Groups are consecutive channels: reshape to (N, G, C // G, H, W) and take "
                                "statistics over the last three dims; γ and β stay per channel.")


def check_group_norm(group_norm, *, seed: int = 0, verbose: bool = True) -> None:
    __tracebackhide__ = True
    group_norm_verdict(group_norm_run(group_norm, seed=seed), seed=seed)
    if verbose:
        _ok("group_norm matches F.group_norm for 1, 2, 3 and 6 groups, values and gradients.")


# ----------------------------------------------------------------------------- dropout

DROPOUT_DRAWS, DROPOUT_PS = 50_000, (0.2, 0.5, 0.8)


def dropout_run(dropout, *, seed: int) -> dict:
    """Eval mode and p = 0 on x; p = 0.2, 0.5, 0.8 on 50,000 ones; masks from generators seeded alike
    (with the global seed changed in between), seeded differently, and on a (100, 50) tensor of ones."""
    x = _rand(7, 9, seed=seed)
    gen = lambda s=seed: torch.Generator().manual_seed(s)  # noqa: E731
    call = lambda *args, what="dropout": observed(call_student(dropout, *args, what=what))  # noqa: E731
    run = {"identity": [call(x, p, training, gen()) for training, p in ((False, 0.5), (True, 0.0))],
           "ones": [call(torch.ones(DROPOUT_DRAWS, dtype=torch.float64), p, True, gen(), what=f"dropout(x, p={p})")
                    for p in DROPOUT_PS],
           "same_seed": call(x, 0.5, True, gen())}
    torch.manual_seed(seed + 1)
    run["same_seed_again"] = call(x, 0.5, True, gen())
    run["other_seed"] = call(x, 0.5, True, gen(seed + 1))
    run["rows"] = call(torch.ones(100, 50, dtype=torch.float64), 0.5, True, gen())
    return run


def dropout_verdict(run: dict, *, seed: int) -> None:
    """Statistical checks with 50,000 draws and bounds at 10 standard errors (a correct dropout fails with
    probability ~1e-23; dropping with probability 1 − p instead misses by over 300 standard errors at p = 0.2)."""
    __tracebackhide__ = True
    x = _rand(7, 9, seed=seed)
    for (training, p), got in zip(((False, 0.5), (True, 0.0)), run["identity"], strict=True):
        if not (torch.is_tensor(got) and torch.equal(got, x)):
            _fail(f"dropout(x, p={p}, training={training}) must return x unchanged.")
    N = DROPOUT_DRAWS
    for p, y in zip(DROPOUT_PS, run["ones"], strict=True):
        if not torch.is_tensor(y) or y.shape != (N,) or y.dtype != torch.float64:
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
    masks = {k: run[k] for k in ("same_seed", "same_seed_again", "other_seed", "rows")}
    if not all(torch.is_tensor(m) for m in masks.values()) or masks["rows"].shape != (100, 50):
        _fail("dropout must return a tensor shaped like x.")
    if not torch.equal(masks["same_seed"], masks["same_seed_again"]):
        _fail("dropout with two generators seeded alike gave different masks: draw the mask with "
              "torch.rand(x.shape, generator=generator).")
    if torch.equal(masks["same_seed"], masks["other_seed"]):
        _fail("dropout gave the same mask for different generator seeds.")
    if torch.equal(masks["rows"][0], masks["rows"][1]):
        _fail("dropout used the same mask for every row: draw one random number per entry of x.")


def check_dropout(dropout, *, seed: int = 0, verbose: bool = True) -> None:
    __tracebackhide__ = True
    dropout_verdict(dropout_run(dropout, seed=seed), seed=seed)
    if verbose:
        _ok("dropout: identity in eval mode, drops a fraction p, scales survivors by 1/(1−p), follows its generator.")


# ----------------------------------------------------------------------------- penalties

def _penalty_model(seed: int) -> nn.Module:
    """A conv, a norm layer (its weight is a *.weight too) and a linear layer, every parameter random."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.GroupNorm(1, 3), nn.Flatten(), nn.Linear(12, 4)).double()
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 1.5)
        model[1].bias.uniform_(-0.5, 0.5)
    return model


def _penalty_batch(seed: int):
    return _rand(5, 2, 4, 4, seed=seed + 1), torch.randint(0, 4, (5,), generator=torch.Generator().manual_seed(seed))


def _usable_penalty(value) -> bool:
    return torch.is_tensor(value) and value.dim() == 0 and value.requires_grad


def penalties_run(l1_penalty, l2_penalty, *, seed: int, lam: float) -> dict:
    """Both penalties of a fresh model (and whether each can be backpropagated), then the parameters
    after one SGD step on cross-entropy + λ·l2_penalty."""
    model = _penalty_model(seed)
    run = {}
    for name, fn in (("l1_penalty", l1_penalty), ("l2_penalty", l2_penalty)):
        value = call_student(fn, model, what=f"{name}(model)")
        run[name] = {"value": observed(value), "usable": _usable_penalty(value)}
    run["after_step"] = None
    a = copy.deepcopy(model)
    penalty = call_student(l2_penalty, a, what="l2_penalty(model)")
    if _usable_penalty(penalty):
        x, target = _penalty_batch(seed)
        (F.cross_entropy(a(x), target) + lam * penalty).backward()
        torch.optim.SGD(a.parameters(), lr=0.5).step()
        run["after_step"] = {n: observed(p) for n, p in a.named_parameters()}
    return run


def penalties_verdict(run: dict, *, seed: int, lam: float) -> None:
    """Values against the formulas, and λ·l2_penalty against SGD's weight_decay=λ (weights only)."""
    __tracebackhide__ = True
    model = _penalty_model(seed)
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    with torch.no_grad():
        want1, want2 = sum(w.abs().sum() for w in weights), 0.5 * sum((w ** 2).sum() for w in weights)
        alt1, alt2 = sum(p.abs().sum() for p in model.parameters()), 0.5 * sum((p ** 2).sum() for p in model.parameters())
    for name, want, alt in (("l1_penalty", want1, alt1), ("l2_penalty", want2, alt2)):
        got = run[name]["value"]
        if run[name]["usable"] is not True or not torch.is_tensor(got) or got.dim() != 0:
            _fail(f"{name}(model) must return a 0-dim tensor connected to the parameters (so it can be "
                  "backpropagated); sum tensors, do not call .item().")
        if got.dtype != want.dtype or not torch.allclose(got, want):
            hint = ""
            matrices = [w for w in weights if w.dim() > 1]
            no_norms = sum(w.abs().sum() for w in matrices) if name == "l1_penalty" else \
                0.5 * sum((w ** 2).sum() for w in matrices)
            if got.dtype == want.dtype and torch.allclose(got, alt):
                hint = " You included the biases; penalise only parameters named *.weight."
            elif got.dtype == want.dtype and torch.allclose(got, no_norms.detach()):
                hint = (" You left out the norm layer's weight; the spec penalises every parameter named *.weight, "
                        "whatever its layer.")
            elif name == "l2_penalty" and got.dtype == want.dtype and torch.allclose(got, 2 * want):
                hint = " Use ½·Σw², so that the gradient of λ·l2_penalty is λw, which is what weight_decay adds."
            _fail(f"{name}(model) = {got.double().item():.6g}, expected {want.item():.6g}.{hint}")
    b = copy.deepcopy(model)
    x, target = _penalty_batch(seed)
    wb = [p for n, p in b.named_parameters() if n.endswith("weight")]
    bb = [p for n, p in b.named_parameters() if n.endswith("bias")]
    opt = torch.optim.SGD([{"params": wb, "weight_decay": lam}, {"params": bb, "weight_decay": 0.0}], lr=0.5)
    F.cross_entropy(b(x), target).backward()
    opt.step()
    after = run["after_step"] or {}
    for n, pb in b.named_parameters():
        got = after.get(n, absent("nothing"))
        compare(got, pb.detach(), f"parameter {n} after one SGD step with loss + {lam}·l2_penalty "
                f"(expected: SGD with weight_decay={lam} on weights)", **TOL)


def check_penalties(l1_penalty, l2_penalty, *, seed: int = 0, lam: float = 0.1, verbose: bool = True) -> None:
    __tracebackhide__ = True
    penalties_verdict(penalties_run(l1_penalty, l2_penalty, seed=seed, lam=lam), seed=seed, lam=lam)
    if verbose:
        _ok(f"l1_penalty and l2_penalty match their formulas; {lam}·l2_penalty trains like weight_decay={lam}.")
