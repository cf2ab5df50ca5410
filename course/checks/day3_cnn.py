"""DAY 3 visible checks: convolution arithmetic, im2col convolution, pooling, CNN building blocks.

Functions are compared with torch.nn.functional in float64 (tolerance 1e-10 + 1e-8·|expected|),
gradients included; modules are compared with a module built from the structure their
docstring states, after loading the student's state_dict into it.
"""
from __future__ import annotations

import copy
import functools

import torch
import torch.nn.functional as F
from torch import nn

from course.checks.common import _fail, _ok, call_student, compare, forbid_calls, rand64
from course.device import grading_mode

TOL = dict(atol=1e-10, rtol=1e-8)


_rand = rand64  # seeded float64 normals (course.checks.common)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


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


# ----------------------------------------------------------------------------- output size

def check_conv_output_size(conv_output_size, *, seed: int = 0, verbose: bool = True) -> None:
    """Against the length torch's conv1d produces, for many sizes, kernels, strides, paddings, dilations."""
    __tracebackhide__ = True
    g = torch.Generator().manual_seed(seed)
    cases = [(5, 3, 1, 0, 1), (5, 3, 1, 1, 1), (28, 5, 1, 2, 1), (7, 3, 2, 1, 1), (8, 3, 2, 1, 1), (10, 3, 1, 0, 2)]
    while len(cases) < 60:
        size, k, s, p, d = (int(torch.randint(lo, hi, (1,), generator=g)) for lo, hi in
                            ((1, 40), (1, 8), (1, 5), (0, 4), (1, 4)))
        if size + 2 * p >= d * (k - 1) + 1:
            cases.append((size, k, s, p, d))
    got = {}
    for c in cases:
        what = "conv_output_size(size={}, kernel_size={}, stride={}, padding={}, dilation={})".format(*c)
        got[c] = call_student(conv_output_size, *c, what=what)
        if not isinstance(got[c], int) or isinstance(got[c], bool):
            _fail(f"{what} returned {got[c]!r} ({type(got[c]).__name__}); return an int (use // for the floor).")
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
    if verbose:
        _ok(f"conv_output_size agrees with torch on {len(cases)} settings.")


# ----------------------------------------------------------------------------- conv2d

CONV_FORBIDDEN = ["F.conv2d", "torch.conv2d", "nn.functional.conv2d", "torch.nn.functional.conv2d", "nn.Conv2d",
                  "torch.convolution", "F.conv1d", "F.conv3d", ".conv2d", "torch._C"]


def _conv_hint(conv2d, x, w, b, stride, padding, got) -> str:
    same = lambda t: torch.is_tensor(t) and t.shape == got.shape and torch.allclose(got.detach(), t)  # noqa: E731
    if same(F.conv2d(x, w.flip(-1, -2), b, stride, padding)):
        return ("Your result is a true convolution (kernel flipped). CNN layers compute cross-correlation: "
                "slide the kernel as it is, without flipping.")
    if b is not None and same(F.conv2d(x, w, None, stride, padding)):
        return "The bias is missing: add bias[m] to every position of output channel m."
    if b is not None and same(F.conv2d(x, w, None, stride, padding) + b.sum()):
        return "Add one bias per output channel (reshape it to (1, M, 1, 1) or (1, M, 1)), not all of them."
    return ""


def check_conv2d(conv2d, *, seed: int = 0, verbose: bool = True) -> None:
    """Forward against F.conv2d for several shapes, strides and paddings; gradients of x, weight
    and bias against F.conv2d's; and torch.autograd.gradcheck in float64."""
    __tracebackhide__ = True
    forbid_calls(conv2d, CONV_FORBIDDEN, "conv2d")
    cases = [  # N, C, H, W, M, kh, kw, stride, padding, bias
        (2, 1, 5, 5, 1, 3, 3, 1, 0, False),       # the lecture's 5×5 image and 3×3 filter
        (2, 3, 8, 7, 4, 3, 3, 1, 1, True),
        (1, 2, 9, 9, 3, 5, 5, 2, 2, True),
        (2, 3, 7, 10, 2, 2, 3, (2, 1), (1, 0), True),
        (3, 4, 6, 6, 5, 1, 1, 1, 0, True),        # 1×1 convolution
    ]
    for i, (N, C, H, W, M, kh, kw, stride, padding, has_bias) in enumerate(cases):
        x = _rand(N, C, H, W, seed=seed + 10 * i)
        w = _rand(M, C, kh, kw, seed=seed + 10 * i + 1)
        b = _rand(M, seed=seed + 10 * i + 2) if has_bias else None
        what = (f"conv2d(x {tuple(x.shape)}, weight {tuple(w.shape)}, bias={'(M,)' if has_bias else None}, "
                f"stride={stride}, padding={padding})")
        want = F.conv2d(x, w, b, stride, padding)
        hint = "" if padding == 0 else ("The unpadded cases passed, so look at the padding: P zeros on both sides, "
                                        "F.pad(x, (P_w, P_w, P_h, P_h)), then H_out = ⌊(H + 2P − K) / S⌋ + 1.")
        got = call_student(conv2d, x, w, b, stride, padding, what=what, hint=hint)
        if torch.is_tensor(got) and got.shape != want.shape:
            (sh, _), (ph, pw) = _pair(stride), _pair(padding)
            one_side = F.conv2d(F.pad(x, (pw, 0, ph, 0)), w, b, stride).shape
            hint = "All the padding went on one side: pad P zeros left and right, top and bottom." \
                if got.shape == one_side and (ph or pw) else "Pad both sides by P and step the windows by the stride."
            _fail(f"{what} has shape {tuple(got.shape)}, expected {tuple(want.shape)}: H_out = "
                  f"⌊(H + 2P − K) / S⌋ + 1 = ⌊({H} + {2 * ph} − {kh}) / {sh}⌋ + 1 = {want.shape[2]}. {hint}")
        compare(got, want, what, **TOL, hint=_conv_hint(conv2d, x, w, b, stride, padding, got))
        # gradients through autograd, against torch's
        xs, ws = x.clone().requires_grad_(), w.clone().requires_grad_()
        bs = b.clone().requires_grad_() if has_bias else None
        up = _rand(*want.shape, seed=seed + 10 * i + 3)
        out = call_student(conv2d, xs, ws, bs, stride, padding, what=what)
        if not out.requires_grad:
            _fail(f"{what}: the output does not require grad, so no gradient can reach x or weight. Build it from "
                  "x and weight with torch operations (no .detach(), .data, .numpy() or torch.tensor(...)).")
        inputs = [xs, ws] + ([bs] if has_bias else [])
        grads = torch.autograd.grad((out * up).sum(), inputs, allow_unused=True)
        xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
        br = b.clone().requires_grad_() if has_bias else None
        want_grads = torch.autograd.grad((F.conv2d(xr, wr, br, stride, padding) * up).sum(),
                                         [xr, wr] + ([br] if has_bias else []))
        for name, gm, gw in zip(("x", "weight", "bias"), grads, want_grads):
            if gm is None:
                _fail(f"{what}: no gradient reaches {name}. Use it through torch operations, not .detach() or .data.")
            compare(gm, gw, f"the gradient of {what} with respect to {name}", **TOL)
    x = _rand(1, 2, 4, 4, seed=seed + 99).requires_grad_()
    w = _rand(2, 2, 2, 2, seed=seed + 98).requires_grad_()
    b = _rand(2, seed=seed + 97).requires_grad_()
    ok = torch.autograd.gradcheck(lambda *a: conv2d(*a, 1, 1), (x, w, b), fast_mode=True, raise_exception=False)
    if not ok:
        _fail("torch.autograd.gradcheck failed for conv2d (stride 1, padding 1): autograd's gradient disagrees "
              "with finite differences. Avoid in-place edits of tensors that autograd needs.")
    if verbose:
        _ok(f"conv2d matches F.conv2d on {len(cases)} settings, forward and gradients (and passes gradcheck).")


# ----------------------------------------------------------------------------- pooling

def check_pooling(max_pool2d, avg_pool2d, *, seed: int = 0, verbose: bool = True) -> None:
    """Both pools against torch, forward and backward, with the default stride and with
    overlapping windows; the max pool's gradient must go to each window's maximum only."""
    __tracebackhide__ = True
    for fn in (max_pool2d, avg_pool2d):
        forbid_calls(fn, ["F.max_pool2d", "F.avg_pool2d", "nn.MaxPool2d", "nn.AvgPool2d", "torch.max_pool2d",
                          "torch.avg_pool2d", "F.adaptive_max_pool2d", "F.adaptive_avg_pool2d", ".max_pool2d",
                          ".avg_pool2d", "F.conv2d", "F.lp_pool2d"], fn.__name__)
    cases = [((2, 3, 8, 8), 2, None), ((1, 2, 7, 9), 3, 2), ((2, 1, 6, 8), (2, 3), (1, 2)), ((1, 2, 5, 5), 2, 1)]
    for i, (shape, k, s) in enumerate(cases):
        x = _rand(*shape, seed=seed + i)  # continuous values: no ties inside a window
        for fn, ref, name in ((max_pool2d, F.max_pool2d, "max_pool2d"), (avg_pool2d, F.avg_pool2d, "avg_pool2d")):
            what = f"{name}(x {shape}, kernel_size={k}" + (f", stride={s})" if s is not None else ")")
            want = ref(x, k, s)
            xs = x.clone().requires_grad_()
            got = call_student(fn, *((xs, k) if s is None else (xs, k, s)), what=what)
            if torch.is_tensor(got) and got.shape != want.shape:
                hint = "With stride=None the stride equals kernel_size (windows do not overlap)." if s is None else \
                    "H_out = ⌊(H − K) / S⌋ + 1."
                _fail(f"{what} has shape {tuple(got.shape)}, expected {tuple(want.shape)}. {hint}")
            hint = ""
            if name == "avg_pool2d" and torch.is_tensor(got) and got.shape == want.shape:
                kk = _pair(k)[0] * _pair(k)[1]
                for wrong in {_pair(k)[0], _pair(k)[1], 1}:
                    if wrong != kk and torch.allclose(got.detach(), want * kk / wrong):
                        hint = f"Divide each window's sum by all K_h·K_w = {kk} entries."
            compare(got, want, what, **TOL, hint=hint)
            if not got.requires_grad:
                _fail(f"{what}: the output does not require grad; build it from x with torch operations.")
            up = _rand(*want.shape, seed=seed + 50 + i)
            (gx,) = torch.autograd.grad((got * up).sum(), xs)
            xr = x.clone().requires_grad_()
            (want_gx,) = torch.autograd.grad((ref(xr, k, s) * up).sum(), xr)
            hint = ""
            if name == "max_pool2d" and int((gx != 0).sum()) > int((want_gx != 0).sum()):
                hint = ("Your gradient reaches more entries than the maxima: in max pooling only the largest entry "
                        "of each window (the 'switch') gets the gradient; the others did not affect the output.")
            compare(gx, want_gx, f"the gradient of {what} with respect to x", **TOL, hint=hint)
    if verbose:
        _ok("max_pool2d and avg_pool2d match torch, forward and backward (max pool routes each gradient to its max).")


# ----------------------------------------------------------------------------- Conv2d module

def check_conv2d_module(Conv2d, *, seed: int = 0, verbose: bool = True) -> None:
    """state_dict names and shapes, torch's initialisation range, output equal to nn.Conv2d's
    after loading its state_dict (and back), bias=False, gradients reaching the parameters."""
    __tracebackhide__ = True
    torch.manual_seed(seed)
    for args, kw in (((3, 5, 3), dict(stride=2, padding=1)), ((2, 4, (3, 2)), dict(padding=(1, 0))),
                     ((4, 6, 1), dict(bias=False))):
        what = f"Conv2d{args + tuple(f'{k}={v}' for k, v in kw.items())}".replace("'", "")
        mine = call_student(Conv2d, *args, **kw, what=what)
        ref = nn.Conv2d(*args, **kw)
        shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
        if shapes(mine) != shapes(ref):
            hint = ""
            w = mine.state_dict().get("weight")
            if w is not None and tuple(w.shape[:2]) == (args[0], args[1]) and args[0] != args[1]:
                hint = " The weight is (out_channels, in_channels, K_h, K_w): output channels first."
            elif not dict(mine.named_parameters()):
                hint = " Wrap weight and bias in nn.Parameter so that the module registers them."
            elif "bias" in shapes(ref) and "bias" not in shapes(mine):
                hint = " bias=True (the default) needs a bias parameter of shape (out_channels,)."
            elif "bias" not in shapes(ref) and "bias" in shapes(mine):
                hint = " With bias=False set self.bias = None (as nn.Conv2d does)."
            _fail(f"{what}: your state_dict has {shapes(mine)}, nn.Conv2d's has {shapes(ref)}.{hint}")
        if set(n for n, _ in mine.named_parameters()) != set(n for n, _ in ref.named_parameters()):
            _fail(f"{what}: parameters {sorted(n for n, _ in mine.named_parameters())}, expected "
                  f"{sorted(n for n, _ in ref.named_parameters())}. Wrap them in nn.Parameter.")
        mine, ref = mine.double(), ref.double()
        mine.load_state_dict(ref.state_dict())
        x = _rand(2, args[0], 7, 6, seed=seed + 1)
        got = call_student(mine, x, what=f"{what} forward")
        compare(got, ref(x), f"{what} output, with nn.Conv2d's weights loaded", **TOL,
                hint="forward must pass the module's own stride and padding to conv2d.")
        with torch.no_grad():
            for p in mine.parameters():
                p.copy_(_rand(*p.shape, seed=seed + 2))
        ref.load_state_dict(mine.state_dict())
        compare(ref(x), mine(x), f"nn.Conv2d with your {what}'s state_dict loaded", **TOL)
        mine.zero_grad()
        mine(x).sum().backward()
        for n, p in mine.named_parameters():
            if p.grad is None or not p.grad.abs().sum() > 0:
                _fail(f"{what}: no gradient reached {n}; forward must use the parameter itself.")
    # initialisation: torch draws weight and bias uniform in ±1/√fan_in
    C, M, K = 16, 32, 3
    m = call_student(Conv2d, C, M, K, what=f"Conv2d({C}, {M}, {K})")
    bound = (C * K * K) ** -0.5
    for name, p, n in (("weight", m.weight, M * C * K * K), ("bias", m.bias, M)):
        p = p.detach().double()
        if not torch.isfinite(p).all() or p.abs().max() > bound * (1 + 1e-6) or p.std() == 0:
            _fail(f"Conv2d({C}, {M}, {K}).{name} has values in [{p.min():.3g}, {p.max():.3g}]; initialise it like "
                  f"torch: uniform in ±1/√(C·K·K) = ±{bound:.4f}.")
    std = m.weight.detach().double().std().item()
    if abs(std / (bound / 3 ** 0.5) - 1) > 0.1:  # ≥ 10 standard errors for 4,608 uniform draws
        _fail(f"Conv2d({C}, {M}, {K}).weight has std {std:.4f}; uniform in ±{bound:.4f} has std "
              f"{bound / 3 ** 0.5:.4f}. Initialise it uniformly over the whole range.")
    if verbose:
        _ok("Conv2d loads nn.Conv2d's state_dict (and back), produces the same output, and initialises like torch.")


# ----------------------------------------------------------------------------- depthwise-separable

def check_depthwise_separable(DepthwiseSeparableConv, conv_cost, *, seed: int = 0, verbose: bool = True) -> None:
    """Layer structure (groups = in_ch, 1 × 1 pointwise, no bias), output against two F.conv2d
    calls, and conv_cost against the formulas and against a count from running real layers."""
    __tracebackhide__ = True
    for C, M, K, s, p in ((8, 16, 3, 1, 1), (6, 4, 5, 2, 2), (3, 12, 3, 1, 0)):
        what = f"DepthwiseSeparableConv({C}, {M}, {K}, stride={s}, padding={p})"
        m = call_student(DepthwiseSeparableConv, C, M, K, s, p, what=what)
        dw, pw = getattr(m, "depthwise", None), getattr(m, "pointwise", None)
        if not isinstance(dw, nn.Conv2d) or not isinstance(pw, nn.Conv2d):
            _fail(f"{what} needs nn.Conv2d attributes `depthwise` and `pointwise`.")
        if dw.groups != C or tuple(dw.weight.shape) != (C, 1, K, K):
            _fail(f"{what}.depthwise has groups={dw.groups} and weight {tuple(dw.weight.shape)}; a depthwise conv "
                  f"has one {K}×{K} filter per input channel: nn.Conv2d({C}, {C}, {K}, groups={C}), weight "
                  f"({C}, 1, {K}, {K}).")
        if tuple(pw.weight.shape) != (M, C, 1, 1):
            _fail(f"{what}.pointwise has weight {tuple(pw.weight.shape)}; the pointwise conv is 1×1: "
                  f"nn.Conv2d({C}, {M}, 1), weight ({M}, {C}, 1, 1).")
        if dw.bias is not None or pw.bias is not None:
            _fail(f"{what}: create both convs with bias=False (MobileNet puts a BatchNorm after each).")
        n_params = sum(q.numel() for q in m.parameters())
        if n_params != K * K * C + C * M:
            _fail(f"{what} has {n_params} parameters, expected K·K·C + C·M = {K * K * C + C * M}.")
        m = m.double()
        x = _rand(2, C, 9, 9, seed=seed)
        want = F.conv2d(F.conv2d(x, dw.weight, None, s, p, groups=C), pw.weight)
        compare(call_student(m, x, what=f"{what} forward"), want, f"{what} output", **TOL,
                hint="Apply depthwise first (with the stride and padding), then pointwise.")
    for C, M, K, H, W in ((8, 16, 3, 14, 14), (32, 64, 3, 7, 9), (3, 5, 5, 28, 28), (64, 64, 1, 4, 4)):
        for sep in (False, True):
            what = f"conv_cost({C}, {M}, {K}, {H}, {W}, depthwise_separable={sep})"
            got = call_student(conv_cost, C, M, K, H, W, sep, what=what)
            per = K * K * C + C * M if sep else K * K * C * M
            want = (per * H * W, per)
            # the same numbers counted from running real layers
            layer = nn.Sequential(nn.Conv2d(C, C, K, padding=K // 2, groups=C, bias=False),
                                  nn.Conv2d(C, M, 1, bias=False)) if sep else nn.Conv2d(C, M, K, padding=K // 2,
                                                                                          bias=False)
            counted = (count_mult_adds(layer, torch.zeros(1, C, H, W)), sum(q.numel() for q in layer.parameters()))
            assert counted == want, (counted, want)  # the formula and the measurement agree
            if not isinstance(got, tuple) or len(got) != 2:
                _fail(f"{what} returned {got!r}; return a pair (multiply_adds, parameters).")
            if tuple(got) != want:
                hint = ""
                if tuple(got) == want[::-1]:
                    hint = "The order is (multiply_adds, parameters)."
                elif got[0] == want[1]:
                    hint = f"Multiply-adds are per output position × the {H}×{W} positions."
                elif sep and per != got[1] and got[1] == K * K * C * M + C * M:
                    hint = "The depthwise conv has one K×K filter per channel: K·K·C, not K·K·C·M."
                _fail(f"{what} returned {tuple(got)}, expected {want} (counted by running the layers). {hint}".strip())
    if verbose:
        _ok("DepthwiseSeparableConv matches depthwise + pointwise convs; conv_cost agrees with a count from "
            "running the layers.")


# ----------------------------------------------------------------------------- residual and dense blocks

def _load_into(spec: nn.Module, mine: nn.Module, what: str) -> None:
    __tracebackhide__ = True
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    if shapes(spec) != shapes(mine):
        got, want = shapes(mine), shapes(spec)
        diff = [f"{k}: yours {got.get(k)}, expected {want.get(k)}" for k in sorted(set(got) | set(want))
                if got.get(k) != want.get(k)]
        _fail(f"{what} is not built as the docstring says; state_dict differs at " + "; ".join(diff[:4]) + ".")
    spec.load_state_dict(mine.state_dict())


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


def check_residual_block(ResidualBlock, *, seed: int = 0, verbose: bool = True) -> None:
    """The stated branch; output ReLU(F(x) + x) in train and eval mode; with the branch zeroed the
    block is ReLU(x) and the gradient still flows through the shortcut."""
    __tracebackhide__ = True
    torch.manual_seed(seed)
    C = 6
    mine = call_student(ResidualBlock, C, what=f"ResidualBlock({C})").double()
    spec = nn.Sequential(nn.Conv2d(C, C, 3, padding=1, bias=False), nn.BatchNorm2d(C), nn.ReLU(),
                         nn.Conv2d(C, C, 3, padding=1, bias=False), nn.BatchNorm2d(C)).double()
    if not isinstance(getattr(mine, "branch", None), nn.Module):
        _fail("ResidualBlock needs the attribute `branch` (the nn.Sequential conv → BN → ReLU → conv → BN).")
    _randomise(mine, seed)
    _load_into(spec, mine.branch, "ResidualBlock.branch")
    x = _rand(3, C, 6, 5, seed=seed + 1)
    for mode in ("train", "eval"):
        mine.train(mode == "train"), spec.train(mode == "train")
        spec.load_state_dict(mine.branch.state_dict())
        got = call_student(mine, x, what=f"ResidualBlock forward ({mode} mode)",
                           hint="The branch must keep the shape (N, C, H, W), 3×3 convs with padding=1, so that x "
                                "can be added to it.")
        fx = spec(x)  # one forward each, so running statistics stay in step
        want = F.relu(fx + x)
        hint = ""
        if torch.is_tensor(got) and got.shape == want.shape:
            if torch.allclose(got, F.relu(fx)):
                hint = "The shortcut is missing: add the input x to the branch's output before the ReLU."
            elif torch.allclose(got, F.relu(fx) + x):
                hint = "Apply the ReLU after adding x: y = ReLU(F(x) + x)."
            elif torch.allclose(got, fx + x):
                hint = "A ReLU follows the addition: y = ReLU(F(x) + x)."
        compare(got, want, f"ResidualBlock output ({mode} mode)", **TOL, hint=hint)
    # zero the branch: only the shortcut is left
    zeroed = copy.deepcopy(mine).train()
    with torch.no_grad():
        for p in zeroed.branch.parameters():
            p.zero_()
    xs = x.clone().requires_grad_()
    y = call_student(zeroed, xs, what="ResidualBlock forward with the branch zeroed")
    compare(y, F.relu(x), "ResidualBlock output with every branch parameter zeroed (should be ReLU(x))", **TOL,
            hint="With F(x) = 0 the block is ReLU(0 + x): the shortcut must carry x through.")
    up = _rand(*x.shape, seed=seed + 2)
    (gx,) = torch.autograd.grad((y * up).sum(), xs)
    compare(gx, up * (x > 0), "the gradient through the shortcut (branch zeroed)", **TOL,
            hint="The gradient must flow through '+ x' unchanged (apart from the ReLU).")
    if verbose:
        _ok("ResidualBlock computes ReLU(F(x) + x); with the branch zeroed the gradient flows through the shortcut.")


def check_dense_block(DenseBlock, *, seed: int = 0, verbose: bool = True) -> None:
    """Channel count in_ch + L·k, the input kept as the first channels, and the output of the
    stated layers fed with the concatenation of everything before them."""
    __tracebackhide__ = True
    torch.manual_seed(seed)
    for C, k, L in ((4, 3, 3), (5, 2, 1), (2, 4, 4)):
        what = f"DenseBlock({C}, growth_rate={k}, num_layers={L})"
        mine = call_student(DenseBlock, C, k, L, what=what).double()
        x = _rand(2, C, 5, 6, seed=seed + C)
        mine.train()
        out = call_student(mine, x, what=f"{what} forward")
        if not torch.is_tensor(out) or out.dim() != 4 or tuple(out.shape[2:]) != (5, 6) or out.shape[0] != 2:
            _fail(f"{what} returned {getattr(out, 'shape', out)}; expected a tensor (2, {C + L * k}, 5, 6).")
        if out.shape[1] != C + L * k:
            hint = ""
            if out.shape[1] in (C, k):
                hint = (" Concatenate (torch.cat along dim 1), do not add: every layer's k new channels are kept "
                        "next to the input's.")
            _fail(f"{what} returned {out.shape[1]} channels, expected in_ch + num_layers·growth_rate = "
                  f"{C} + {L}·{k} = {C + L * k}.{hint}")
        compare(out[:, :C], x, f"the first {C} channels of {what}'s output (the input itself)", **TOL,
                hint="Put the input first in the concatenation: the output is cat([x, h1, h2, ...]).")
        spec = nn.ModuleList(nn.Sequential(nn.BatchNorm2d(C + i * k), nn.ReLU(),
                                           nn.Conv2d(C + i * k, k, 3, padding=1, bias=False))
                             for i in range(L)).double()
        if not isinstance(getattr(mine, "layers", None), nn.Module):
            _fail(f"{what} needs the attribute `layers` (an nn.ModuleList of BN → ReLU → conv3×3).")
        _randomise(mine, seed)
        _load_into(spec, mine.layers, f"{what}.layers")
        for mode in ("train", "eval"):
            mine.train(mode == "train"), spec.train(mode == "train")
            spec.load_state_dict(mine.layers.state_dict())
            feats = [x]
            for layer in spec:
                feats.append(layer(torch.cat(feats, 1)))
            compare(call_student(mine, x, what=f"{what} forward"), torch.cat(feats, 1), f"{what} output ({mode})",
                    **TOL, hint="Layer i gets torch.cat([x, h1, ..., h_{i-1}], dim=1), all earlier outputs.")
    if verbose:
        _ok("DenseBlock concatenates the input and every layer's output, with the right channel counts.")


# ----------------------------------------------------------------------------- SimpleCNN

def check_simple_cnn(SimpleCNN, *, seed: int = 0, steps: int = 150, min_accuracy: float = 0.93,
                     train: bool | None = None, verbose: bool = True) -> None:
    """Shapes, a parameter budget, and (``train``) training: ``steps`` Adam steps (batch 64) on the
    bundled training digits must reach ``min_accuracy`` on the 1,000 bundled test digits.

    ``train`` defaults to True, except while the notebook is graded: the hidden test then runs the same
    training (same seed), so the visible check leaves it to that test instead of training twice."""
    __tracebackhide__ = True
    if train is None:
        train = not grading_mode()
    from course.data import load_mnist
    from course.train import accuracy, train_classifier

    torch.manual_seed(seed)
    for classes in (10, 3):
        what = f"SimpleCNN(num_classes={classes})"
        m = call_student(SimpleCNN, num_classes=classes, what=what)
        m.eval()
        with torch.no_grad():
            out = call_student(m, torch.zeros(5, 1, 28, 28), what=f"{what} on a batch of 5 digits (5, 1, 28, 28)")
        if not torch.is_tensor(out) or tuple(out.shape) != (5, classes):
            _fail(f"{what} returned {getattr(out, 'shape', out)} for 5 digits; expected logits of shape (5, {classes}).")
        with torch.no_grad():
            logits = m(torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(seed)))
        # float32 rows of a softmax sum to 1 (and rows of a log-softmax log-sum-exp to 0) within ~1e-6;
        # atol 1e-4 catches both for every seed, and raw logits of an untrained net miss it by far.
        if torch.allclose(logits.sum(1), torch.ones(8, dtype=logits.dtype), atol=1e-4) and (logits >= 0).all() or \
                torch.allclose(logits.logsumexp(1), torch.zeros(8, dtype=logits.dtype), atol=1e-4):
            _fail(f"{what} returns probabilities (its rows are a softmax). forward should return raw logits: "
                  "F.cross_entropy applies the (log-)softmax itself, and a second one slows learning.")
        last = [mod for mod in m.modules() if isinstance(mod, nn.Linear)]
        if not last or last[-1].out_features != classes:
            _fail(f"{what}: the last layer should be an nn.Linear with num_classes outputs (replace_head swaps it).")
    n = sum(p.numel() for p in m.parameters())
    if n > 1_000_000:
        _fail(f"SimpleCNN has {n:,} parameters; keep it under 1,000,000 so that it trains in the CPU budget.")
    if not train:
        if verbose:
            _ok(f"SimpleCNN: shapes right, raw logits, {n:,} parameters."
                + (" Training is checked by the hidden test." if grading_mode() else ""))
        return
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    X, y = load_mnist("train", full=False)
    Xte, yte = load_mnist("test", full=False)
    model = call_student(SimpleCNN, what="SimpleCNN()")
    idx = torch.randperm(len(X), generator=gen)[:steps * 64 // 3]
    call_student(train_classifier, model, X[idx], y[idx], epochs=3, generator=gen, progress=False,
                 what="training SimpleCNN")
    acc = accuracy(model, Xte, yte)
    if acc < min_accuracy:
        _fail(f"SimpleCNN reached {acc:.3f} test accuracy after {steps} training steps; a working CNN reaches "
              f"{min_accuracy}. Check that every conv is followed by a non-linearity, that forward returns raw "
              "logits (cross_entropy applies the softmax), and that pooling reduces 28 → 7 before the Linear layers.")
    if verbose:
        _ok(f"SimpleCNN: shapes right, {n:,} parameters, {acc:.3f} test accuracy after {steps} steps.")


# ----------------------------------------------------------------------------- transfer

def _nested_model() -> nn.Module:
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                      nn.Flatten()),
        nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 5)))


@functools.cache
def _resnet18() -> tuple[nn.Module, nn.Linear]:
    """A torchvision resnet18 (10 classes) and its head, built once: initialising 11M parameters takes
    longer than the whole check, which only looks at .fc."""
    import torchvision  # slow to import; only this check needs it

    model = torchvision.models.resnet18(num_classes=10)
    return model, model.fc


def check_transfer(freeze, replace_head, *, seed: int = 0, verbose: bool = True) -> None:
    """freeze stops every (nested) parameter; replace_head swaps exactly the last nn.Linear,
    wherever it sits, for a trainable one of the right size, device and dtype."""
    __tracebackhide__ = True
    torch.manual_seed(seed)
    model = _nested_model()
    got = call_student(freeze, model, what="freeze(model)")
    if got is not model:
        _fail("freeze(model) should return the model it was given.")
    still = [n for n, p in model.named_parameters() if p.requires_grad]
    if still:
        _fail(f"After freeze(model) these parameters still require grad: {still}. Loop over model.parameters(), "
              "which includes the parameters of nested modules.")
    for frozen in (True, False):
        model = _nested_model().double()
        if frozen:
            for p in model.parameters():
                p.requires_grad_(False)
        before = {n: (mod, [p.clone() for p in mod.parameters()]) for n, mod in model.named_modules()}
        got = call_student(replace_head, model, 3, what="replace_head(model, 3)")
        if got is not model:
            _fail("replace_head(model, num_classes) should return the model it was given (changed in place).")
        head = model[1][2]
        if not isinstance(head, nn.Linear) or (head.in_features, head.out_features) != (8, 3):
            first = model[1][0]
            hint = " You replaced the first Linear; the head is the last one." if isinstance(first, nn.Linear) and \
                first.out_features == 3 else ""
            _fail(f"After replace_head(model, 3) the last layer is {head}; expected Linear(in_features=8, "
                  f"out_features=3).{hint}")
        if head is before["1.2"][0]:
            _fail("replace_head must put a new nn.Linear in place of the old head.")
        if head.weight.dtype != torch.float64:
            _fail(f"The new head has dtype {head.weight.dtype}, the model float64: create it with the old head's "
                  "device and dtype (nn.Linear(..., device=old.weight.device, dtype=old.weight.dtype)).")
        if not all(p.requires_grad for p in head.parameters()):
            _fail("The new head must be trainable (requires_grad=True) even when the rest of the model is frozen.")
        for n, (mod, params) in before.items():
            if n in ("", "1", "1.2"):
                continue
            if model.get_submodule(n) is not mod or any(not torch.equal(a, b) for a, b in zip(mod.parameters(), params)):
                _fail(f"replace_head changed the layer '{n}'; only the last Linear may change.")
            if frozen and any(p.requires_grad for p in mod.parameters()):
                _fail(f"replace_head un-froze the layer '{n}'; leave the other layers as they were.")
        if hasattr(model, "2") or len(model) != 2:
            _fail("replace_head added a layer at the top of the model instead of replacing the nested head.")
        out = model(_rand(2, 1, 6, 6, seed=seed))
        if tuple(out.shape) != (2, 3):
            _fail(f"After replace_head(model, 3) the model returns {tuple(out.shape)}, expected (2, 3).")
    # a torchvision ResNet keeps its head in .fc
    resnet, fc = _resnet18()
    resnet.fc = fc  # as built, whatever an earlier call did to it
    call_student(replace_head, resnet, 4, what="replace_head(torchvision resnet18, 4)")
    if resnet.fc is fc or (resnet.fc.in_features, resnet.fc.out_features) != (fc.in_features, 4):
        _fail(f"replace_head(resnet18, 4) left resnet.fc = {resnet.fc}; expected Linear({fc.in_features}, 4).")
    if verbose:
        _ok("freeze stops every parameter; replace_head swaps the last Linear (nested, frozen, float64, ResNet's fc).")
