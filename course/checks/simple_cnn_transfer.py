"""DAY 3 visible checks, judged part 3: SimpleCNN (shapes, and a short training run) and transfer
(freeze, replace_head). ``_run`` halves in the kernel, ``_verdict`` halves in the grader, as in
conv_pieces.py.

SimpleCNN trains in the kernel, on the student's own model; what the grader judges is that model's
predicted classes for the 1,000 bundled test digits, scored against the labels it loads itself.
transfer's facts are about object identity (is the new head a new object, is every other layer the
same one), which only the kernel can see: its run sends them as booleans and the verdict decides.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from course.checks.common import _fail, _ok, call_student, observed, rand64, type_name
from course.device import grading_mode

__all__ = ["check_simple_cnn", "check_transfer"]

_rand = rand64
CLASSES = (10, 3)  # SimpleCNN(num_classes=...) of the shape checks
MAX_PARAMETERS = 1_000_000


# ----------------------------------------------------------------------------- SimpleCNN

def _wants_training(train: bool | None) -> bool:
    return not grading_mode() if train is None else train


def simple_cnn_run(SimpleCNN, *, seed: int, steps: int = 150, train: bool | None = None) -> dict:
    """Per number of classes: the logits of 5 blank digits and of 8 random ones, and the last Linear's
    outputs; the parameter count; with ``train``, the classes the trained model predicts for the test
    digits."""
    from course.data import load_mnist
    from course.train import train_classifier

    torch.manual_seed(seed)
    run = {"models": []}
    for classes in CLASSES:
        what = f"SimpleCNN(num_classes={classes})"
        m = call_student(SimpleCNN, num_classes=classes, what=what)
        m.eval()
        with torch.no_grad():
            out = call_student(m, torch.zeros(5, 1, 28, 28), what=f"{what} on a batch of 5 digits (5, 1, 28, 28)")
        case = {"out": observed(out)}
        run["models"].append(case)
        if not torch.is_tensor(out) or tuple(out.shape) != (5, classes):
            return run
        with torch.no_grad():
            case["logits"] = observed(m(torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(seed))))
        last = [mod for mod in m.modules() if isinstance(mod, nn.Linear)]
        case["last_linear"] = last[-1].out_features if last else None
    run["n_params"] = sum(p.numel() for p in m.parameters())
    narrow = call_student(SimpleCNN, num_classes=CLASSES[-1], width=8, what="SimpleCNN(width=8)")
    run["n_params_width_8"] = sum(p.numel() for p in narrow.parameters())
    if not _wants_training(train) or run["n_params"] > MAX_PARAMETERS:
        return run
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    X, y = load_mnist("train", full=False)
    Xte, _ = load_mnist("test", full=False)
    model = call_student(SimpleCNN, what="SimpleCNN()")
    idx = torch.randperm(len(X), generator=gen)[:steps * 64 // 3]
    call_student(train_classifier, model, X[idx], y[idx], epochs=3, generator=gen, progress=False,
                 what="training SimpleCNN")
    model.eval()
    with torch.no_grad():
        logits = call_student(model, Xte, what="the trained SimpleCNN on the test digits")
    run["predictions"] = observed(logits.argmax(1) if torch.is_tensor(logits) else logits)
    return run


def simple_cnn_verdict(run: dict, *, seed: int, steps: int = 150, min_accuracy: float = 0.93,
                       train: bool | None = None) -> tuple[int, float | None]:
    """Fails with the first problem; else (parameters, test accuracy or None without training)."""
    __tracebackhide__ = True
    for classes, case in zip(CLASSES, run["models"]):
        what, out = f"SimpleCNN(num_classes={classes})", case["out"]
        if not torch.is_tensor(out) or tuple(out.shape) != (5, classes):
            _fail(f"{what} returned {tuple(out.shape) if torch.is_tensor(out) else type_name(out)} for 5 digits; "
                  f"expected logits of shape (5, {classes}).")
        logits = case["logits"]
        if not torch.is_tensor(logits) or tuple(logits.shape) != (8, classes):
            _fail(f"{what} returned {type_name(logits)} for 8 digits; expected logits of shape (8, {classes}).")
        # float32 rows of a softmax sum to 1 (and rows of a log-softmax log-sum-exp to 0) within ~1e-6;
        # atol 1e-4 catches both for every seed, and raw logits of an untrained net miss it by far.
        if torch.allclose(logits.sum(1), torch.ones(8, dtype=logits.dtype), atol=1e-4) and (logits >= 0).all() or \
                torch.allclose(logits.logsumexp(1), torch.zeros(8, dtype=logits.dtype), atol=1e-4):
            _fail(f"{what} returns probabilities (its rows are a softmax). forward should return raw logits: "
                  "F.cross_entropy applies the (log-)softmax itself, and a second one slows learning.")
        if case["last_linear"] != classes:
            _fail(f"{what}: the last layer should be an nn.Linear with num_classes outputs (replace_head swaps it).")
    if len(run["models"]) != len(CLASSES):
        _fail("SimpleCNN was not observed for every number of classes.")
    n = run["n_params"]
    if n > MAX_PARAMETERS:
        _fail(f"SimpleCNN has {n:,} parameters; keep it under 1,000,000 so that it trains in the CPU budget.")
    if run.get("n_params_width_8") == n:
        _fail(f"SimpleCNN(width=8) has as many parameters as SimpleCNN() ({n:,}): use `width` for the number of "
              "channels of the convolutions (width, width, 2·width), not a fixed number.")
    if not _wants_training(train):
        return n, None
    labels = _test_labels()
    predictions = run.get("predictions")
    if not torch.is_tensor(predictions) or tuple(predictions.shape) != tuple(labels.shape):
        _fail(f"the trained SimpleCNN gave {type_name(predictions)} for the {len(labels)} test digits; expected "
              f"logits of shape ({len(labels)}, 10).")
    acc = (predictions == labels).double().mean().item()
    if acc < min_accuracy:
        _fail(f"SimpleCNN reached {acc:.3f} test accuracy after {steps} training steps; a working CNN reaches "
              f"{min_accuracy}. Check that every conv is followed by a non-linearity, that forward returns raw "
              "logits (cross_entropy applies the softmax), and that pooling reduces 28 → 7 before the Linear layers.")
    return n, acc


@functools.cache
def _test_labels() -> torch.Tensor:
    from course.data import load_mnist

    return load_mnist("test", full=False)[1]


def check_simple_cnn(SimpleCNN, *, seed: int = 0, steps: int = 150, min_accuracy: float = 0.93,
                     train: bool | None = None, verbose: bool = True) -> None:
    """Shapes, a parameter budget, and (``train``) training: ``steps`` Adam steps (batch 64) on the
    bundled training digits must reach ``min_accuracy`` on the 1,000 bundled test digits.

    ``train`` defaults to True, except while the notebook is graded: the hidden test then runs the same
    training (same seed), so the visible check leaves it to that test instead of training twice."""
    __tracebackhide__ = True
    n, acc = simple_cnn_verdict(simple_cnn_run(SimpleCNN, seed=seed, steps=steps, train=train), seed=seed,
                                steps=steps, min_accuracy=min_accuracy, train=train)
    if not verbose:
        return
    if acc is None:
        _ok(f"SimpleCNN: shapes right, raw logits, {n:,} parameters."
            + (" Training is checked by the hidden test." if grading_mode() else ""))
    else:
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


RESNET_FEATURES = 512  # in_features of torchvision's resnet18.fc
HEAD = "1.2"  # the name of _nested_model's last Linear


def _linear_facts(m) -> dict:
    return {"repr": str(m)[:200], "features": [m.in_features, m.out_features] if isinstance(m, nn.Linear) else None}


def _replace_head_case(replace_head, frozen: bool, seed: int) -> dict:
    """replace_head(model, 3) on the nested model (frozen or not, float64): what it returned, the new
    head, and for every other layer whether it is still the same object with the same values."""
    model = _nested_model().double()
    if frozen:
        for p in model.parameters():
            p.requires_grad_(False)
    before = {n: (mod, [p.clone() for p in mod.parameters()]) for n, mod in model.named_modules()}
    got = call_student(replace_head, model, 3, what="replace_head(model, 3)")
    case = {"returned_model": got is model}
    try:
        head, first = model.get_submodule(HEAD), model.get_submodule("1.0")
    except (AttributeError, TypeError, IndexError):
        head = first = None
    case["head"], case["first_out"] = _linear_facts(head), getattr(first, "out_features", None)
    if case["head"]["features"] != [8, 3]:
        return case
    case["head_is_old"] = head is before[HEAD][0]
    case["dtype"] = str(head.weight.dtype)
    case["bias"] = isinstance(getattr(head, "bias", None), torch.Tensor)
    case["trainable"] = all(p.requires_grad for p in head.parameters())
    case["layers"] = {}
    for n, (mod, params) in before.items():
        if n in ("", "1", HEAD):
            continue
        try:
            same = model.get_submodule(n) is mod
        except AttributeError:
            same = False
        case["layers"][n] = {"same": same and all(torch.equal(a, b) for a, b in zip(mod.parameters(), params)),
                             "frozen": not any(p.requires_grad for p in mod.parameters())}
    case["extra_top"] = hasattr(model, "2") or len(model) != 2
    case["out"] = observed(call_student(model, _rand(2, 1, 6, 6, seed=seed), what="the model after replace_head"))
    return case


def transfer_run(freeze, replace_head, *, seed: int) -> dict:
    torch.manual_seed(seed)
    model = _nested_model()
    got = call_student(freeze, model, what="freeze(model)")
    run = {"freeze": {"returned_model": got is model,
                      "still": [n for n, p in model.named_parameters() if p.requires_grad]}, "replace": []}
    for frozen in (True, False):
        run["replace"].append(_replace_head_case(replace_head, frozen, seed))
        if run["replace"][-1]["head"]["features"] != [8, 3]:
            return run
    resnet, fc = _resnet18()
    resnet.fc = fc  # as built, whatever an earlier call did to it
    call_student(replace_head, resnet, 4, what="replace_head(torchvision resnet18, 4)")
    run["resnet"] = dict(_linear_facts(resnet.fc), replaced=resnet.fc is not fc)
    return run


def transfer_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    if not run["freeze"]["returned_model"]:
        _fail("freeze(model) should return the model it was given.")
    if run["freeze"]["still"]:
        _fail(f"After freeze(model) these parameters still require grad: {run['freeze']['still']}. Loop over "
              "model.parameters(), which includes the parameters of nested modules.")
    for frozen, case in zip((True, False), run["replace"]):
        if not case["returned_model"]:
            _fail("replace_head(model, num_classes) should return the model it was given (changed in place).")
        if case["head"]["features"] != [8, 3]:
            hint = " You replaced the first Linear; the head is the last one." if case["first_out"] == 3 else ""
            _fail(f"After replace_head(model, 3) the last layer is {case['head']['repr']}; expected "
                  f"Linear(in_features=8, out_features=3).{hint}")
        if case["head_is_old"]:
            _fail("replace_head must put a new nn.Linear in place of the old head.")
        if case["dtype"] != str(torch.float64):
            _fail(f"The new head has dtype {case['dtype']}, the model float64: create it with the old head's "
                  "device and dtype (nn.Linear(..., device=old.weight.device, dtype=old.weight.dtype)).")
        if not case["bias"]:
            _fail("The new head has no bias; the old one had one, and nn.Linear(in_features, num_classes) has one.")
        if not case["trainable"]:
            _fail("The new head must be trainable (requires_grad=True) even when the rest of the model is frozen.")
        want_layers = {n for n, _ in _nested_model().named_modules()} - {"", "1", HEAD}
        if set(case["layers"]) != want_layers:
            _fail(f"replace_head: expected the layers {sorted(want_layers)} to be observed.")
        for n, layer in case["layers"].items():
            if not layer["same"]:
                _fail(f"replace_head changed the layer '{n}'; only the last Linear may change.")
            if frozen and not layer["frozen"]:
                _fail(f"replace_head un-froze the layer '{n}'; leave the other layers as they were.")
        if case["extra_top"]:
            _fail("replace_head added a layer at the top of the model instead of replacing the nested head.")
        out = case["out"]
        if not torch.is_tensor(out) or tuple(out.shape) != (2, 3):
            _fail(f"After replace_head(model, 3) the model returns {tuple(out.shape) if torch.is_tensor(out) else type_name(out)}, "
                  "expected (2, 3).")
    if len(run["replace"]) != 2 or "resnet" not in run:
        _fail("replace_head was not observed on every model.")
    resnet = run["resnet"]
    if not resnet["replaced"] or resnet["features"] != [RESNET_FEATURES, 4]:
        _fail(f"replace_head(resnet18, 4) left resnet.fc = {resnet['repr']}; expected Linear({RESNET_FEATURES}, 4).")


def check_transfer(freeze, replace_head, *, seed: int = 0, verbose: bool = True) -> None:
    """freeze stops every (nested) parameter; replace_head swaps exactly the last nn.Linear,
    wherever it sits, for a trainable one of the right size, device and dtype."""
    __tracebackhide__ = True
    transfer_verdict(transfer_run(freeze, replace_head, seed=seed), seed=seed)
    if verbose:
        _ok("freeze stops every parameter; replace_head swaps the last Linear (nested, frozen, float64, ResNet's fc).")
