"""DAY 3 visible checks: convolution arithmetic, im2col convolution, pooling, CNN building blocks.

Functions are compared with torch.nn.functional in float64 (tolerance 1e-10 + 1e-8·|expected|),
gradients included; modules are compared with a module built from the structure their
docstring states, after loading the student's state_dict into it.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from course.checks.common import TOL, _fail, _ok, call_student, compare, rand64
from course.checks.conv_pieces import (CONV_FORBIDDEN, check_conv2d, check_conv_output_size, check_dense_block,
                                       check_pooling, check_residual_block)
from course.device import grading_mode

__all__ = ["TOL", "CONV_FORBIDDEN", "count_mult_adds", "check_conv_output_size", "check_conv2d", "check_pooling",
           "check_conv2d_module", "check_depthwise_separable", "check_residual_block", "check_dense_block",
           "check_simple_cnn", "check_transfer"]
# Convolution arithmetic, conv2d, pooling and the residual and dense blocks are in conv_pieces.py, split
# into a _run half (the kernel) and a _verdict half (the grader); the Conv2d module, depthwise-separable
# conv, SimpleCNN and transfer are still checked in one piece here (see solutions/<day>/hidden.py).



_rand = rand64  # seeded float64 normals (course.checks.common)


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
