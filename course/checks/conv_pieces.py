"""DAY 3 visible checks, judged part: convolution arithmetic, conv2d, pooling, residual and dense
blocks. Each is a ``_run`` half (calls the student's code on inputs made from ``seed``, returns what it
observed, a module's state_dict included where the check loads it into the stated layers) and a
``_verdict`` half (makes the same inputs again and compares), so that their hidden tests are judged
outside the student's process (autograder/judge.py); a visible check is the one after the other. The
DAY's own module in this folder re-exports them.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from course.checks.common import (TOL, _fail, _ok, absent, call_student, compare, forbid_calls_in, observed,
                                  observed_grads, rand64, source_of, type_name)

__all__ = ["check_conv_output_size", "check_conv2d", "check_pooling", "check_residual_block", "check_dense_block",
           "CONV_FORBIDDEN"]

_rand = rand64


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ----------------------------------------------------------------------------- output size

def _size_cases(seed):
    g = torch.Generator().manual_seed(seed)
    cases = [(5, 3, 1, 0, 1), (5, 3, 1, 1, 1), (28, 5, 1, 2, 1), (7, 3, 2, 1, 1), (8, 3, 2, 1, 1), (10, 3, 1, 0, 2)]
    while len(cases) < 60:
        size, k, s, p, d = (int(torch.randint(lo, hi, (1,), generator=g)) for lo, hi in
                            ((1, 40), (1, 8), (1, 5), (0, 4), (1, 4)))
        if size + 2 * p >= d * (k - 1) + 1:
            cases.append((size, k, s, p, d))
    return cases


def _size_what(c) -> str:
    return "conv_output_size(size={}, kernel_size={}, stride={}, padding={}, dilation={})".format(*c)


def conv_output_size_run(conv_output_size, *, seed: int) -> list:
    return [observed(call_student(conv_output_size, *c, what=_size_what(c))) for c in _size_cases(seed)]


def conv_output_size_verdict(runs: list, *, seed: int) -> None:
    __tracebackhide__ = True
    cases = _size_cases(seed)
    got = dict(zip(cases, runs, strict=True))
    for c in cases:
        if not isinstance(got[c], int) or isinstance(got[c], bool):
            _fail(f"{_size_what(c)} returned {got[c]!r} ({type_name(got[c])}); return an int (use // for the floor).")
    # a wrong formula that explains every answer names the mistake
    wrong = {
        "You forgot the + 1: the first window sits at position 0, then (I + 2P − span) // S more fit.":
            lambda i, k, s, p, d: (i + 2 * p - d * (k - 1) - 1) // s,
        "Padding is added on both sides: use 2P.": lambda i, k, s, p, d: (i + p - d * (k - 1) - 1) // s + 1,
        "A dilated kernel spans D(K − 1) + 1 pixels, not K.": lambda i, k, s, p, d: (i + 2 * p - k) // s + 1,
        "Round down (floor): a window that would stick out past the padding is dropped.":
            lambda i, k, s, p, d: -(-(i + 2 * p - d * (k - 1) - 1) // s) + 1,
    }
    hint = next((h for h, f in wrong.items() if all(f(*c) == got[c] for c in cases)), "")
    for c in cases:
        size, k, s, p, d = c
        want = F.conv1d(torch.zeros(1, 1, size), torch.zeros(1, 1, k), stride=s, padding=p, dilation=d).shape[-1]
        if got[c] != want:
            _fail(f"conv_output_size(size={size}, kernel_size={k}, stride={s}, padding={p}, dilation={d}) returned "
                  f"{got[c]}; torch produces {want}. {hint}".strip())


def check_conv_output_size(conv_output_size, *, seed: int = 0, verbose: bool = True) -> None:
    """Against the length torch's conv1d produces, for many sizes, kernels, strides, paddings, dilations."""
    __tracebackhide__ = True
    conv_output_size_verdict(conv_output_size_run(conv_output_size, seed=seed), seed=seed)
    if verbose:
        _ok(f"conv_output_size agrees with torch on {len(_size_cases(seed))} settings.")


# ----------------------------------------------------------------------------- conv2d

CONV_FORBIDDEN = ["F.conv2d", "torch.conv2d", "nn.functional.conv2d", "torch.nn.functional.conv2d", "nn.Conv2d",
                  "torch.convolution", "F.conv1d", "F.conv3d", ".conv2d", "torch._C"]
CONV_CASES = [  # N, C, H, W, M, kh, kw, stride, padding, bias
    (2, 1, 5, 5, 1, 3, 3, 1, 0, False),       # the lecture's 5×5 image and 3×3 filter
    (2, 3, 8, 7, 4, 3, 3, 1, 1, True),
    (1, 2, 9, 9, 3, 5, 5, 2, 2, True),
    (2, 3, 7, 10, 2, 2, 3, (2, 1), (1, 0), True),
    (3, 4, 6, 6, 5, 1, 1, 1, 0, True),        # 1×1 convolution
]


def _conv_case(i, seed):
    N, C, H, W, M, kh, kw, stride, padding, has_bias = CONV_CASES[i]
    x = _rand(N, C, H, W, seed=seed + 10 * i)
    w = _rand(M, C, kh, kw, seed=seed + 10 * i + 1)
    b = _rand(M, seed=seed + 10 * i + 2) if has_bias else None
    what = (f"conv2d(x {tuple(x.shape)}, weight {tuple(w.shape)}, bias={'(M,)' if has_bias else None}, "
            f"stride={stride}, padding={padding})")
    up = _rand(*F.conv2d(x, w, b, stride, padding).shape, seed=seed + 10 * i + 3)
    return x, w, b, stride, padding, what, up


def _conv_hint(x, w, b, stride, padding, got) -> str:
    same = lambda t: torch.is_tensor(t) and t.shape == got.shape and torch.allclose(got, t)  # noqa: E731
    if same(F.conv2d(x, w.flip(-1, -2), b, stride, padding)):
        return ("Your result is a true convolution (kernel flipped). CNN layers compute cross-correlation: "
                "slide the kernel as it is, without flipping.")
    if b is not None and same(F.conv2d(x, w, None, stride, padding)):
        return "The bias is missing: add bias[m] to every position of output channel m."
    if b is not None and same(F.conv2d(x, w, None, stride, padding) + b.sum()):
        return "Add one bias per output channel (reshape it to (1, M, 1, 1) or (1, M, 1)), not all of them."
    return ""


def conv2d_run(conv2d, *, seed: int, gradcheck: bool = True) -> dict:
    """Per case: the output, and from a second call on inputs that require grad, whether it does too and
    the gradients of x, weight and bias; ``gradcheck``: torch.autograd.gradcheck's word (the visible
    check only; a judged test relies on the gradients compared in the grader)."""
    run = {"source": source_of(conv2d), "cases": []}
    for i in range(len(CONV_CASES)):
        x, w, b, stride, padding, what, up = _conv_case(i, seed)
        hint = "" if padding == 0 else ("The unpadded cases passed, so look at the padding: P zeros on both sides, "
                                        "F.pad(x, (P_w, P_w, P_h, P_h)), then H_out = ⌊(H + 2P − K) / S⌋ + 1.")
        got = call_student(conv2d, x, w, b, stride, padding, what=what, hint=hint)
        inputs = [t.clone().requires_grad_() for t in (x, w) + ((b,) if b is not None else ())]
        out = call_student(conv2d, *inputs[:2], inputs[2] if b is not None else None, stride, padding, what=what)
        run["cases"].append({"y": observed(got), "requires_grad": bool(torch.is_tensor(out) and out.requires_grad),
                             "grads": observed_grads(out, inputs, up)})
    if gradcheck:
        x = _rand(1, 2, 4, 4, seed=seed + 99).requires_grad_()
        w = _rand(2, 2, 2, 2, seed=seed + 98).requires_grad_()
        b = _rand(2, seed=seed + 97).requires_grad_()
        run["gradcheck"] = bool(call_student(torch.autograd.gradcheck, lambda *a: conv2d(*a, 1, 1), (x, w, b),
                                             fast_mode=True, raise_exception=False, what="gradcheck of conv2d"))
    return run


def conv2d_verdict(run: dict, *, seed: int, gradcheck: bool = True) -> None:
    __tracebackhide__ = True
    forbid_calls_in(run["source"], CONV_FORBIDDEN, "conv2d")
    for i, obs in enumerate(run["cases"]):
        N, C, H, W, M, kh, kw, _, _, has_bias = CONV_CASES[i]
        x, w, b, stride, padding, what, up = _conv_case(i, seed)
        want, got = F.conv2d(x, w, b, stride, padding), obs["y"]
        if torch.is_tensor(got) and got.shape != want.shape:
            (sh, _), (ph, pw) = _pair(stride), _pair(padding)
            one_side = F.conv2d(F.pad(x, (pw, 0, ph, 0)), w, b, stride).shape
            hint = "All the padding went on one side: pad P zeros left and right, top and bottom." \
                if got.shape == one_side and (ph or pw) else "Pad both sides by P and step the windows by the stride."
            _fail(f"{what} has shape {tuple(got.shape)}, expected {tuple(want.shape)}: H_out = "
                  f"⌊(H + 2P − K) / S⌋ + 1 = ⌊({H} + {2 * ph} − {kh}) / {sh}⌋ + 1 = {want.shape[2]}. {hint}")
        compare(got, want, what, **TOL, hint=_conv_hint(x, w, b, stride, padding, got) if torch.is_tensor(got) and
                got.dtype == want.dtype else "")
        if obs["requires_grad"] is not True or obs["grads"] is None:
            _fail(f"{what}: the output does not require grad, so no gradient can reach x or weight. Build it from "
                  "x and weight with torch operations (no .detach(), .data, .numpy() or torch.tensor(...)).")
        refs = [t.clone().requires_grad_() for t in (x, w) + ((b,) if has_bias else ())]
        want_grads = torch.autograd.grad((F.conv2d(*refs[:2], refs[2] if has_bias else None, stride, padding)
                                          * up).sum(), refs)
        if len(obs["grads"]) != len(want_grads):
            _fail(f"{what}: expected {len(want_grads)} gradients.")
        for name, gm, gw in zip(("x", "weight", "bias"), obs["grads"], want_grads):
            if gm is None:
                _fail(f"{what}: no gradient reaches {name}. Use it through torch operations, not .detach() or .data.")
            compare(gm, gw, f"the gradient of {what} with respect to {name}", **TOL)
    if len(run["cases"]) != len(CONV_CASES):
        _fail(f"expected {len(CONV_CASES)} conv2d cases, got {len(run['cases'])}.")
    if gradcheck and run.get("gradcheck") is not True:
        _fail("torch.autograd.gradcheck failed for conv2d (stride 1, padding 1): autograd's gradient disagrees "
              "with finite differences. Avoid in-place edits of tensors that autograd needs.")


def check_conv2d(conv2d, *, seed: int = 0, verbose: bool = True) -> None:
    """Forward against F.conv2d for several shapes, strides and paddings; gradients of x, weight
    and bias against F.conv2d's; and torch.autograd.gradcheck in float64."""
    __tracebackhide__ = True
    conv2d_verdict(conv2d_run(conv2d, seed=seed), seed=seed)
    if verbose:
        _ok(f"conv2d matches F.conv2d on {len(CONV_CASES)} settings, forward and gradients (and passes gradcheck).")


# ----------------------------------------------------------------------------- pooling

POOL_FORBIDDEN = ["F.max_pool2d", "F.avg_pool2d", "nn.MaxPool2d", "nn.AvgPool2d", "torch.max_pool2d",
                  "torch.avg_pool2d", "F.adaptive_max_pool2d", "F.adaptive_avg_pool2d", ".max_pool2d",
                  ".avg_pool2d", "F.conv2d", "F.lp_pool2d"]
POOL_CASES = [((2, 3, 8, 8), 2, None), ((1, 2, 7, 9), 3, 2), ((2, 1, 6, 8), (2, 3), (1, 2)), ((1, 2, 5, 5), 2, 1)]
POOLS = (("max_pool2d", F.max_pool2d), ("avg_pool2d", F.avg_pool2d))


def _pool_what(name, shape, k, s) -> str:
    return f"{name}(x {shape}, kernel_size={k}" + (f", stride={s})" if s is not None else ")")


def pooling_run(max_pool2d, avg_pool2d, *, seed: int) -> dict:
    fns = {"max_pool2d": max_pool2d, "avg_pool2d": avg_pool2d}
    run = {"sources": {name: source_of(fn) for name, fn in fns.items()}, "cases": []}
    for i, (shape, k, s) in enumerate(POOL_CASES):
        x = _rand(*shape, seed=seed + i)  # continuous values: no ties inside a window
        for name, ref in POOLS:
            xs = x.clone().requires_grad_()
            got = call_student(fns[name], *((xs, k) if s is None else (xs, k, s)), what=_pool_what(name, shape, k, s))
            up = _rand(*ref(x, k, s).shape, seed=seed + 50 + i)
            grads = observed_grads(got, [xs], up)
            run["cases"].append({"y": observed(got), "requires_grad": bool(torch.is_tensor(got) and got.requires_grad),
                                 "grad": grads[0] if grads else None})
    return run


def pooling_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    for name, src in run["sources"].items():
        forbid_calls_in(src, POOL_FORBIDDEN, name)
    cases = [(i, shape, k, s, name, ref) for i, (shape, k, s) in enumerate(POOL_CASES) for name, ref in POOLS]
    for (i, shape, k, s, name, ref), obs in zip(cases, run["cases"], strict=True):
        x = _rand(*shape, seed=seed + i)
        what, want, got = _pool_what(name, shape, k, s), ref(x, k, s), obs["y"]
        if torch.is_tensor(got) and got.shape != want.shape:
            hint = "With stride=None the stride equals kernel_size (windows do not overlap)." if s is None else \
                "H_out = ⌊(H − K) / S⌋ + 1."
            _fail(f"{what} has shape {tuple(got.shape)}, expected {tuple(want.shape)}. {hint}")
        hint = ""
        if name == "avg_pool2d" and torch.is_tensor(got) and got.shape == want.shape and got.dtype == want.dtype:
            kk = _pair(k)[0] * _pair(k)[1]
            for wrong in {_pair(k)[0], _pair(k)[1], 1}:
                if wrong != kk and torch.allclose(got, want * kk / wrong):
                    hint = f"Divide each window's sum by all K_h·K_w = {kk} entries."
        compare(got, want, what, **TOL, hint=hint)
        if obs["requires_grad"] is not True or obs["grad"] is None:
            _fail(f"{what}: the output does not require grad; build it from x with torch operations.")
        xr = x.clone().requires_grad_()
        (want_gx,) = torch.autograd.grad((ref(xr, k, s) * _rand(*want.shape, seed=seed + 50 + i)).sum(), xr)
        gx, hint = obs["grad"], ""
        if name == "max_pool2d" and torch.is_tensor(gx) and int((gx != 0).sum()) > int((want_gx != 0).sum()):
            hint = ("Your gradient reaches more entries than the maxima: in max pooling only the largest entry "
                    "of each window (the 'switch') gets the gradient; the others did not affect the output.")
        compare(gx, want_gx, f"the gradient of {what} with respect to x", **TOL, hint=hint)


def check_pooling(max_pool2d, avg_pool2d, *, seed: int = 0, verbose: bool = True) -> None:
    """Both pools against torch, forward and backward, with the default stride and with
    overlapping windows; the max pool's gradient must go to each window's maximum only."""
    __tracebackhide__ = True
    pooling_verdict(pooling_run(max_pool2d, avg_pool2d, seed=seed), seed=seed)
    if verbose:
        _ok("max_pool2d and avg_pool2d match torch, forward and backward (max pool routes each gradient to its max).")


# ----------------------------------------------------------------------------- residual and dense blocks

def _shapes(state: dict) -> dict:
    return {k: tuple(v.shape) if torch.is_tensor(v) else type_name(v) for k, v in state.items()}


def _load_state(spec: nn.Module, state, what: str) -> None:
    """Load the student's module's state_dict (as observed) into the stated layers ``spec``."""
    __tracebackhide__ = True
    if not isinstance(state, dict) or _shapes(state) != _shapes(spec.state_dict()):
        got, want = _shapes(state) if isinstance(state, dict) else {}, _shapes(spec.state_dict())
        diff = [f"{k}: yours {got.get(k)}, expected {want.get(k)}" for k in sorted(set(got) | set(want))
                if got.get(k) != want.get(k)]
        _fail(f"{what} is not built as the docstring says; state_dict differs at " + "; ".join(diff[:4]) + ".")
    spec.load_state_dict(state)


def _randomise(m: nn.Module, seed: int) -> None:
    """Random BatchNorm affine parameters and running statistics, so that no layer is a no-op."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.copy_(1 + 0.3 * torch.randn(mod.weight.shape, generator=g))
                mod.bias.copy_(0.3 * torch.randn(mod.bias.shape, generator=g))
                mod.running_mean.copy_(0.2 * torch.randn(mod.running_mean.shape, generator=g))
                mod.running_var.copy_(1 + torch.rand(mod.running_var.shape, generator=g))


def _state(m: nn.Module) -> dict:
    return {k: observed(v) for k, v in m.state_dict().items()}


RESIDUAL_C = 6


def _branch_spec(C: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(C, C, 3, padding=1, bias=False), nn.BatchNorm2d(C), nn.ReLU(),
                         nn.Conv2d(C, C, 3, padding=1, bias=False), nn.BatchNorm2d(C)).double()


def residual_block_run(ResidualBlock, *, seed: int) -> dict:
    """The branch's state_dict (BatchNorm randomised) before each mode and the output in train and eval
    mode; then, with the branch zeroed, the output and the gradient of x."""
    C = RESIDUAL_C
    torch.manual_seed(seed)
    mine = call_student(ResidualBlock, C, what=f"ResidualBlock({C})").double()
    if not isinstance(getattr(mine, "branch", None), nn.Module):
        _fail("ResidualBlock needs the attribute `branch` (the nn.Sequential conv → BN → ReLU → conv → BN).")
    _randomise(mine, seed)
    x = _rand(3, C, 6, 5, seed=seed + 1)
    run = {"modes": []}
    for mode in ("train", "eval"):
        mine.train(mode == "train")
        state = _state(mine.branch)
        got = call_student(mine, x, what=f"ResidualBlock forward ({mode} mode)",
                           hint="The branch must keep the shape (N, C, H, W), 3×3 convs with padding=1, so that x "
                                "can be added to it.")
        run["modes"].append({"state": state, "y": observed(got)})
    zeroed = copy.deepcopy(mine).train()
    with torch.no_grad():
        for p in zeroed.branch.parameters():
            p.zero_()
    xs = x.clone().requires_grad_()
    y = call_student(zeroed, xs, what="ResidualBlock forward with the branch zeroed")
    grads = observed_grads(y, [xs], _rand(*x.shape, seed=seed + 2))
    run["zeroed"] = {"y": observed(y), "grad": grads[0] if grads else None}
    return run


def residual_block_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    C = RESIDUAL_C
    spec = _branch_spec(C)
    x = _rand(3, C, 6, 5, seed=seed + 1)
    for mode, obs in zip(("train", "eval"), run["modes"], strict=True):
        _load_state(spec, obs["state"], "ResidualBlock.branch")
        spec.train(mode == "train")
        with torch.no_grad():
            fx = spec(x)
        want, got = F.relu(fx + x), obs["y"]
        hint = ""
        if torch.is_tensor(got) and got.shape == want.shape and got.dtype == want.dtype:
            if torch.allclose(got, F.relu(fx)):
                hint = "The shortcut is missing: add the input x to the branch's output before the ReLU."
            elif torch.allclose(got, F.relu(fx) + x):
                hint = "Apply the ReLU after adding x: y = ReLU(F(x) + x)."
            elif torch.allclose(got, fx + x):
                hint = "A ReLU follows the addition: y = ReLU(F(x) + x)."
        compare(got, want, f"ResidualBlock output ({mode} mode)", **TOL, hint=hint)
    compare(run["zeroed"]["y"], F.relu(x), "ResidualBlock output with every branch parameter zeroed (should be "
            "ReLU(x))", **TOL, hint="With F(x) = 0 the block is ReLU(0 + x): the shortcut must carry x through.")
    up = _rand(*x.shape, seed=seed + 2)
    gx = run["zeroed"]["grad"]
    compare(gx if gx is not None else absent("no gradient"), up * (x > 0),
            "the gradient through the shortcut (branch zeroed)", **TOL,
            hint="The gradient must flow through '+ x' unchanged (apart from the ReLU).")


def check_residual_block(ResidualBlock, *, seed: int = 0, verbose: bool = True) -> None:
    """The stated branch; output ReLU(F(x) + x) in train and eval mode; with the branch zeroed the
    block is ReLU(x) and the gradient still flows through the shortcut."""
    __tracebackhide__ = True
    residual_block_verdict(residual_block_run(ResidualBlock, seed=seed), seed=seed)
    if verbose:
        _ok("ResidualBlock computes ReLU(F(x) + x); with the branch zeroed the gradient flows through the shortcut.")


DENSE_CASES = ((4, 3, 3), (5, 2, 1), (2, 4, 4))  # (in channels, growth rate, layers)


def _dense_spec(C, k, L) -> nn.ModuleList:
    return nn.ModuleList(nn.Sequential(nn.BatchNorm2d(C + i * k), nn.ReLU(), nn.Conv2d(C + i * k, k, 3, padding=1,
                                                                                       bias=False))
                         for i in range(L)).double()


def dense_block_run(DenseBlock, *, seed: int) -> list:
    """Per block: the first output; then (BatchNorm randomised) the layers' state_dict before each mode
    and the output in train and eval mode."""
    torch.manual_seed(seed)
    runs = []
    for C, k, L in DENSE_CASES:
        what = f"DenseBlock({C}, growth_rate={k}, num_layers={L})"
        mine = call_student(DenseBlock, C, k, L, what=what).double()
        x = _rand(2, C, 5, 6, seed=seed + C)
        mine.train()
        run = {"first": observed(call_student(mine, x, what=f"{what} forward")), "modes": []}
        runs.append(run)
        first = run["first"]
        if not torch.is_tensor(first) or tuple(first.shape) != (2, C + L * k, 5, 6):
            break  # the verdict stops at the shape
        if not isinstance(getattr(mine, "layers", None), nn.Module):
            _fail(f"{what} needs the attribute `layers` (an nn.ModuleList of BN → ReLU → conv3×3).")
        _randomise(mine, seed)
        for mode in ("train", "eval"):
            mine.train(mode == "train")
            state = _state(mine.layers)
            run["modes"].append({"state": state, "y": observed(call_student(mine, x, what=f"{what} forward"))})
    return runs


def dense_block_verdict(runs: list, *, seed: int) -> None:
    __tracebackhide__ = True
    if not runs:
        _fail("DenseBlock: no output observed.")
    for (C, k, L), run in zip(DENSE_CASES, runs):
        what = f"DenseBlock({C}, growth_rate={k}, num_layers={L})"
        x, out = _rand(2, C, 5, 6, seed=seed + C), run["first"]
        if not torch.is_tensor(out) or out.dim() != 4 or tuple(out.shape[2:]) != (5, 6) or out.shape[0] != 2:
            _fail(f"{what} returned {getattr(out, 'shape', type_name(out))}; expected a tensor (2, {C + L * k}, 5, 6).")
        if out.shape[1] != C + L * k:
            hint = ""
            if out.shape[1] in (C, k):
                hint = (" Concatenate (torch.cat along dim 1), do not add: every layer's k new channels are kept "
                        "next to the input's.")
            _fail(f"{what} returned {out.shape[1]} channels, expected in_ch + num_layers·growth_rate = "
                  f"{C} + {L}·{k} = {C + L * k}.{hint}")
        compare(out[:, :C], x, f"the first {C} channels of {what}'s output (the input itself)", **TOL,
                hint="Put the input first in the concatenation: the output is cat([x, h1, h2, ...]).")
        spec = _dense_spec(C, k, L)
        if len(run["modes"]) != 2:
            _fail(f"{what}: expected outputs in train and eval mode.")
        for mode, obs in zip(("train", "eval"), run["modes"]):
            _load_state(spec, obs["state"], f"{what}.layers")
            spec.train(mode == "train")
            feats = [x]
            with torch.no_grad():
                for layer in spec:
                    feats.append(layer(torch.cat(feats, 1)))
            compare(obs["y"], torch.cat(feats, 1), f"{what} output ({mode})", **TOL,
                    hint="Layer i gets torch.cat([x, h1, ..., h_{i-1}], dim=1), all earlier outputs.")
    if len(runs) != len(DENSE_CASES):
        _fail(f"expected {len(DENSE_CASES)} DenseBlocks, got {len(runs)}.")


def check_dense_block(DenseBlock, *, seed: int = 0, verbose: bool = True) -> None:
    """Channel count in_ch + L·k, the input kept as the first channels, and the output of the
    stated layers fed with the concatenation of everything before them."""
    __tracebackhide__ = True
    dense_block_verdict(dense_block_run(DenseBlock, seed=seed), seed=seed)
    if verbose:
        _ok("DenseBlock concatenates the input and every layer's output, with the right channel counts.")
