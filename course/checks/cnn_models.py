"""DAY 3 visible checks, judged part 2: the Conv2d module, the depthwise-separable conv, SimpleCNN and
transfer. As in conv_pieces.py each is a ``_run`` half, which calls the student's code in the kernel and
returns what it observed, and a ``_verdict`` half, which decides in the grader (autograder/judge.py).

What a module check needs from the student's objects travels as data: state_dict shapes and values,
outputs, gradients, and for transfer the facts only the kernel can see (whether a layer is the same
object as before). The verdict rebuilds torch's layers from the seed (``seeded_module``) and compares.
Where a structural problem would make the next step crash (a wrong state_dict, a missing attribute),
the run stops there, so that the verdict's first message is the one that teaches.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from course.checks.common import (TOL, _fail, _ok, absent, call_student, compare, observed, rand64, seeded_module,
                                  type_name)

__all__ = ["count_mult_adds", "check_conv2d_module", "check_depthwise_separable"]

_rand = rand64


def count_mult_adds(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of every nn.Conv2d in ``model`` for one sample of ``x``, counted from a
    real forward pass: output elements × (in_channels / groups) × K_h × K_w, bias excluded."""
    total = 0

    def hook(m, _inp, out):
        nonlocal total
        total += out[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    return total


def _shapes(m: nn.Module) -> dict:
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}


# ----------------------------------------------------------------------------- Conv2d module

CONV_CASES = (((3, 5, 3), dict(stride=2, padding=1)), ((2, 4, (3, 2)), dict(padding=(1, 0))),
              ((4, 6, 1), dict(bias=False)))
INIT_CASE = (16, 32, (3, 5))  # C, M, K of the initialisation check (a non-square kernel: fan-in C·3·5)


def _conv_what(args, kw) -> str:
    return f"Conv2d{args + tuple(f'{k}={v}' for k, v in kw.items())}".replace("'", "")


def _torch_conv(i: int, seed: int) -> nn.Conv2d:
    args, kw = CONV_CASES[i]
    return seeded_module(lambda: nn.Conv2d(*args, **kw), seed + 10 + i)


def conv2d_module_run(Conv2d, *, seed: int) -> dict:
    """Per case: the state_dict's shapes and the parameters' names; then the output with torch's
    weights loaded, the output and parameter gradients of sum(output) with random weights; last, the
    initial weight and bias of Conv2d(16, 32, 3)."""
    torch.manual_seed(seed)
    run = {"cases": []}
    for i, (args, kw) in enumerate(CONV_CASES):
        what = _conv_what(args, kw)
        mine = call_student(Conv2d, *args, **kw, what=what)
        case = {"shapes": {k: list(s) for k, s in _shapes(mine).items()},
                "params": sorted(n for n, _ in mine.named_parameters())}
        run["cases"].append(case)
        ref = _torch_conv(i, seed)
        if _shapes(mine) != _shapes(ref) or set(case["params"]) != {n for n, _ in ref.named_parameters()}:
            return run  # the verdict says what is wrong with the layout
        mine = mine.double()
        mine.load_state_dict(ref.state_dict())
        x = _rand(2, args[0], 7, 6, seed=seed + 1)
        case["y"] = observed(call_student(mine, x, what=f"{what} forward"))
        with torch.no_grad():
            for p in mine.parameters():
                p.copy_(_rand(*p.shape, seed=seed + 2))
        mine.zero_grad()
        y = call_student(mine, x, what=f"{what} forward")
        case["random"] = {"state": {k: observed(v) for k, v in mine.state_dict().items()}, "y": observed(y)}
        if torch.is_tensor(y) and y.requires_grad:
            y.sum().backward()
        case["grads"] = {n: observed(p.grad) for n, p in mine.named_parameters()}
    C, M, K = INIT_CASE
    m = call_student(Conv2d, C, M, K, what=f"Conv2d({C}, {M}, {K})")
    run["init"] = {name: observed(p.detach().double()) if torch.is_tensor(p) else absent(type_name(p))
                   for name in ("weight", "bias") for p in [getattr(m, name, None)]}
    return run


def conv2d_module_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    cases = run["cases"]
    for i, (args, kw) in enumerate(CONV_CASES):
        what, ref = _conv_what(args, kw), _torch_conv(i, seed)
        if i >= len(cases):
            _fail(f"{what} was not observed.")
        case, want_shapes = cases[i], _shapes(ref)
        shapes = {k: tuple(s) for k, s in case["shapes"].items()}
        if shapes != want_shapes:
            hint = ""
            w = shapes.get("weight")
            if w is not None and tuple(w[:2]) == (args[0], args[1]) and args[0] != args[1]:
                hint = " The weight is (out_channels, in_channels, K_h, K_w): output channels first."
            elif not case["params"]:
                hint = " Wrap weight and bias in nn.Parameter so that the module registers them."
            elif "bias" in want_shapes and "bias" not in shapes:
                hint = " bias=True (the default) needs a bias parameter of shape (out_channels,)."
            elif "bias" not in want_shapes and "bias" in shapes:
                hint = " With bias=False set self.bias = None (as nn.Conv2d does)."
            _fail(f"{what}: your state_dict has {shapes}, nn.Conv2d's has {want_shapes}.{hint}")
        want_params = sorted(n for n, _ in ref.named_parameters())
        if sorted(case["params"]) != want_params:
            _fail(f"{what}: parameters {sorted(case['params'])}, expected {want_params}. Wrap them in nn.Parameter.")
        x = _rand(2, args[0], 7, 6, seed=seed + 1)
        compare(case["y"], ref(x), f"{what} output, with nn.Conv2d's weights loaded", **TOL,
                hint="forward must pass the module's own stride and padding to conv2d.")
        random = {k: _rand(*s, seed=seed + 2) for k, s in want_shapes.items()}
        state = case["random"]["state"]
        for k, v in random.items():
            compare(state.get(k, absent("nothing")), v, f"{what}.state_dict()['{k}'] after setting it", **TOL)
        ref.load_state_dict(state)
        out = ref(x)
        compare(case["random"]["y"], out, f"your {what} against nn.Conv2d with your state_dict loaded", **TOL)
        grads = torch.autograd.grad(out.sum(), list(ref.parameters()))
        for (n, _), want in zip(ref.named_parameters(), grads):
            got = case["grads"].get(n)
            if not torch.is_tensor(got) or not got.abs().sum() > 0:
                _fail(f"{what}: no gradient reached {n}; forward must use the parameter itself.")
            compare(got, want, f"{what}: the gradient of sum(output) w.r.t. {n}", **TOL)
    C, M, K = INIT_CASE
    bound = (C * K[0] * K[1]) ** -0.5
    for name, shape in (("weight", (M, C, *K)), ("bias", (M,))):
        p = run["init"][name]
        if not torch.is_tensor(p) or tuple(p.shape) != shape:
            _fail(f"Conv2d({C}, {M}, {K}).{name} is {type_name(p) if not torch.is_tensor(p) else tuple(p.shape)}; "
                  f"expected a parameter of shape {shape}.")
        if not torch.isfinite(p).all() or p.abs().max() > bound * (1 + 1e-6) or p.std() == 0:
            _fail(f"Conv2d({C}, {M}, {K}).{name} has values in [{p.min():.3g}, {p.max():.3g}]; initialise it like "
                  f"torch: uniform in ±1/√(C·K_h·K_w) = ±{bound:.4f}.")
        if p.min() >= 0 or p.max() <= 0:  # all M·C·K_h·K_w (or M) draws of one sign: chance 2^(1 − M) at most
            _fail(f"Conv2d({C}, {M}, {K}).{name} has values in [{p.min():.3g}, {p.max():.3g}], all of one sign; "
                  f"uniform in ±{bound:.4f} takes both signs.")
    std = run["init"]["weight"].std().item()
    if abs(std / (bound / 3 ** 0.5) - 1) > 0.1:  # ≥ 10 standard errors for 7,680 uniform draws
        _fail(f"Conv2d({C}, {M}, {K}).weight has std {std:.4f}; uniform in ±{bound:.4f} has std "
              f"{bound / 3 ** 0.5:.4f}. Initialise it uniformly over the whole range ±1/√(C·K_h·K_w), with the "
              "fan-in of both kernel sides.")


def check_conv2d_module(Conv2d, *, seed: int = 0, verbose: bool = True) -> None:
    """state_dict names and shapes, torch's initialisation range, output equal to nn.Conv2d's
    after loading its state_dict (and back), bias=False, gradients reaching the parameters."""
    __tracebackhide__ = True
    conv2d_module_verdict(conv2d_module_run(Conv2d, seed=seed), seed=seed)
    if verbose:
        _ok("Conv2d loads nn.Conv2d's state_dict (and back), produces the same output, and initialises like torch.")


# ----------------------------------------------------------------------------- depthwise-separable

DSC_CASES = ((8, 16, 3, 1, 1), (6, 4, 5, 2, 2), (3, 12, 3, 1, 0))  # C, M, K, stride, padding
COST_CASES = ((8, 16, 3, 14, 14), (32, 64, 3, 7, 9), (3, 5, 5, 28, 28), (64, 64, 1, 4, 4))  # C, M, K, H, W


def _dsc_what(C, M, K, s, p) -> str:
    return f"DepthwiseSeparableConv({C}, {M}, {K}, stride={s}, padding={p})"


def _conv_facts(conv) -> dict | None:
    if not isinstance(conv, nn.Conv2d):
        return None
    return {"groups": conv.groups, "weight": observed(conv.weight.detach().double()), "bias": conv.bias is not None}


def _dsc_problem(case, C, M, K, s, p) -> str | None:
    """What is wrong with the layers of one DepthwiseSeparableConv (as observed), or None."""
    what, dw, pw = _dsc_what(C, M, K, s, p), case["depthwise"], case["pointwise"]
    if dw is None or pw is None:
        return f"{what} needs nn.Conv2d attributes `depthwise` and `pointwise`."
    if dw["groups"] != C or tuple(dw["weight"].shape) != (C, 1, K, K):
        return (f"{what}.depthwise has groups={dw['groups']} and weight {tuple(dw['weight'].shape)}; a depthwise "
                f"conv has one {K}×{K} filter per input channel: nn.Conv2d({C}, {C}, {K}, groups={C}), weight "
                f"({C}, 1, {K}, {K}).")
    if tuple(pw["weight"].shape) != (M, C, 1, 1):
        return (f"{what}.pointwise has weight {tuple(pw['weight'].shape)}; the pointwise conv is 1×1: "
                f"nn.Conv2d({C}, {M}, 1), weight ({M}, {C}, 1, 1).")
    if dw["bias"] or pw["bias"]:
        return f"{what}: create both convs with bias=False (MobileNet puts a BatchNorm after each)."
    if case["n_params"] != K * K * C + C * M:
        return f"{what} has {case['n_params']} parameters, expected K·K·C + C·M = {K * K * C + C * M}."
    return None


def depthwise_separable_run(DepthwiseSeparableConv, conv_cost, *, seed: int) -> dict:
    """Per layer case: both convs' groups, weights and biases, the parameter count and the output; then
    what conv_cost returned for each cost case."""
    run = {"layers": [], "costs": []}
    for C, M, K, s, p in DSC_CASES:
        m = call_student(DepthwiseSeparableConv, C, M, K, s, p, what=_dsc_what(C, M, K, s, p))
        if isinstance(m, nn.Module):
            m = m.double()
        dw, pw = getattr(m, "depthwise", None), getattr(m, "pointwise", None)
        case = {"depthwise": _conv_facts(dw), "pointwise": _conv_facts(pw),
                "n_params": sum(q.numel() for q in m.parameters()) if isinstance(m, nn.Module) else 0}
        run["layers"].append(case)
        if _dsc_problem(case, C, M, K, s, p):
            return run
        case["y"] = observed(call_student(m, _rand(2, C, 9, 9, seed=seed), what=f"{_dsc_what(C, M, K, s, p)} forward"))
    for C, M, K, H, W in COST_CASES:
        run["costs"].append([observed(call_student(conv_cost, C, M, K, H, W, sep, what=f"conv_cost({C}, {M}, {K}, {H}, "
                                                                                       f"{W}, depthwise_separable={sep})"))
                             for sep in (False, True)])
    return run


@functools.cache
def _counted_cost(C, M, K, H, W, sep) -> tuple[int, int]:
    """(multiply-adds, parameters) counted by running torch's layers (count_mult_adds)."""
    layer = nn.Sequential(nn.Conv2d(C, C, K, padding=K // 2, groups=C, bias=False), nn.Conv2d(C, M, 1, bias=False)) \
        if sep else nn.Conv2d(C, M, K, padding=K // 2, bias=False)
    return count_mult_adds(layer, torch.zeros(1, C, H, W)), sum(q.numel() for q in layer.parameters())


def depthwise_separable_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    if len(run["layers"]) != len(DSC_CASES):
        problem = _dsc_problem(run["layers"][-1], *DSC_CASES[len(run["layers"]) - 1]) if run["layers"] else None
        _fail(problem or "DepthwiseSeparableConv was not observed for every case.")
    for (C, M, K, s, p), case in zip(DSC_CASES, run["layers"]):
        problem = _dsc_problem(case, C, M, K, s, p)
        if problem:
            _fail(problem)
        x = _rand(2, C, 9, 9, seed=seed)
        want = F.conv2d(F.conv2d(x, case["depthwise"]["weight"], None, s, p, groups=C), case["pointwise"]["weight"])
        compare(case.get("y", absent("nothing")), want, f"{_dsc_what(C, M, K, s, p)} output", **TOL,
                hint="Apply depthwise first (with the stride and padding), then pointwise.")
    if len(run["costs"]) != len(COST_CASES):
        _fail("conv_cost was not observed for every case.")
    for (C, M, K, H, W), results in zip(COST_CASES, run["costs"]):
        for sep, got in zip((False, True), results, strict=True):
            what = f"conv_cost({C}, {M}, {K}, {H}, {W}, depthwise_separable={sep})"
            per = K * K * C + C * M if sep else K * K * C * M
            want = (per * H * W, per)
            assert _counted_cost(C, M, K, H, W, sep) == want  # the formula and the measurement agree
            if not isinstance(got, list) or len(got) != 2:
                _fail(f"{what} returned {type_name(got)}; return a pair (multiply_adds, parameters).")
            if tuple(got) != want:
                hint = ""
                if tuple(got) == want[::-1]:
                    hint = "The order is (multiply_adds, parameters)."
                elif got[0] == want[1]:
                    hint = f"Multiply-adds are per output position × the {H}×{W} positions."
                elif sep and per != got[1] and got[1] == K * K * C * M + C * M:
                    hint = "The depthwise conv has one K×K filter per channel: K·K·C, not K·K·C·M."
                _fail(f"{what} returned {tuple(got)}, expected {want} (counted by running the layers). {hint}".strip())


def check_depthwise_separable(DepthwiseSeparableConv, conv_cost, *, seed: int = 0, verbose: bool = True) -> None:
    """Layer structure (groups = in_ch, 1 × 1 pointwise, no bias), output against two F.conv2d
    calls, and conv_cost against the formulas and against a count from running real layers."""
    __tracebackhide__ = True
    depthwise_separable_verdict(depthwise_separable_run(DepthwiseSeparableConv, conv_cost, seed=seed), seed=seed)
    if verbose:
        _ok("DepthwiseSeparableConv matches depthwise + pointwise convs; conv_cost agrees with a count from "
            "running the layers.")
