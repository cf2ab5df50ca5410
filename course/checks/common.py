"""Shared pieces of the visible checks: the failure type and how results are reported."""
from __future__ import annotations

import copy
import inspect
import re

import torch
from torch import nn


# The tolerance of float64 comparisons with torch: 1e-10 + 1e-8·|expected|.
TOL = dict(atol=1e-10, rtol=1e-8)


class CheckFailed(AssertionError):
    """A check found a difference. The message explains it in plain words."""


def _ok(msg: str) -> None:
    print(f"\u2713 {msg}")


def _fail(msg: str) -> None:
    __tracebackhide__ = True  # IPython and pytest hide this frame
    raise CheckFailed(msg)


def rand64(*shape, seed: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    """Seeded float64 normal samples: ``randn(*shape) * scale + shift``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64) * scale + shift


def call_student(fn, *args, what: str, hint: str = "", **kwargs):
    """Call the student's ``fn``; turn an exception into one plain sentence naming ``what``
    (followed by ``hint``, the likely cause, when the caller knows one)."""
    __tracebackhide__ = True
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        _fail(f"{what} raised NotImplementedError: fill in the `# YOUR CODE HERE` part first.")
    except CheckFailed:
        raise
    except Exception as e:  # a student's bug: say what it was, without a wall of traceback
        _fail(f"{what} raised {type(e).__name__}: {e}. {hint}".strip())


def compare(got, want: torch.Tensor, what: str, *, atol, rtol: float, hint: str = "", tol_text: str = "") -> float:
    """Fail unless tensor ``got`` equals ``want`` within ``atol + rtol·|want|``; return the max error.
    ``atol`` may be a tensor (one bound per entry); ``tol_text`` then says in words what it is."""
    __tracebackhide__ = True
    if not torch.is_tensor(got):
        _fail(f"{what} returned {type_name(got)}, expected a tensor of shape {tuple(want.shape)}.")
    if tuple(got.shape) != tuple(want.shape):
        _fail(f"{what} has shape {tuple(got.shape)}, expected {tuple(want.shape)}.")
    if got.dtype != want.dtype:
        _fail(f"{what} has dtype {got.dtype}, expected {want.dtype} (keep the input's dtype).")
    got, want = got.detach(), want.detach()
    if torch.isnan(got).any() and not torch.isnan(want).any():
        _fail(f"{what} contains NaN where torch gives finite values. {hint}".strip())
    err = (got - want).abs().nan_to_num(0.0)
    bound = atol + rtol * want.abs()
    if (err > bound).any():
        idx = tuple(int(i) for i in torch.nonzero(err > bound)[0])
        _fail(f"{what}: max abs err {err.max().item():.2e}; first bad entry at index {idx}: "
              f"yours {got[idx].item():.6g}, expected {want[idx].item():.6g} "
              f"(tolerance {tol_text or f'{atol:g} + {rtol:g}·|expected|'}). {hint}".strip())
    return err.max().item() if err.numel() else 0.0


def same(a, b: torch.Tensor) -> bool:
    """Whether ``a`` is a tensor like ``b`` and close to it (for hints, which only guess; not a verdict)."""
    return torch.is_tensor(a) and a.shape == b.shape and a.dtype == b.dtype and \
        torch.allclose(a.detach(), b.detach(), rtol=1e-6, atol=1e-9)


def seeded_module(factory, seed: int) -> nn.Module:
    """``factory()`` in float64 with torch's global generator seeded to ``seed`` just for it (restored
    after): the same weights in the kernel and in the grader, whatever the student's code drew before."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory().double()


def observed(value):
    """A value returned by the student's code as a judged scenario sends it (autograder/judge.py): a
    tensor detached, on the CPU, as a plain torch.Tensor; a number, string, bool or None as it is; a
    list or tuple item by item (as a list), a dict with string keys entry by entry; anything else as
    ``{"__type__": its type name}`` (see :func:`type_name`)."""
    if torch.is_tensor(value):
        return value.detach().cpu().clone().as_subclass(torch.Tensor)
    if value is None or type(value) in (bool, int, float, str):
        return value
    for kind in (bool, int, float, str):  # numpy's float64 is a float, and is sent as one
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, (list, tuple)):
        return [observed(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value) and OPAQUE not in value:
        return {k: observed(v) for k, v in value.items()}
    return {OPAQUE: type(value).__name__}


OPAQUE = "__type__"  # the key of what observed() sends for a value it does not send as it is


def observed_grads(out, inputs, up=None) -> list | None:
    """What a scenario sends for the gradients of the student's output ``out`` w.r.t. ``inputs``: of
    ``out`` itself when it is a single number (``up`` None), else of (out·up).sum(); None in a list
    for an input it does not reach, and None in all when ``out`` cannot give gradients (not a tensor,
    no graph, the wrong shape): the verdict then says so."""
    if not torch.is_tensor(out) or not out.requires_grad:
        return None
    if up is None:
        if out.numel() != 1:
            return None
        target = out.reshape(())
    elif out.shape != up.shape:
        return None
    else:
        target = (out * up).sum()
    return observed(list(torch.autograd.grad(target, inputs, allow_unused=True)))


GRADIENT_HINT = ("The values are right but the gradient is not: compute the output from the inputs with "
                 "differentiable torch operations (no .detach(), no torch.no_grad(), no .item() or numpy on the way).")


def _leaves(args) -> tuple[list, list[torch.Tensor]]:
    """``args`` with each floating-point tensor replaced by a copy that requires grad, and those copies."""
    leaves = [a.clone().requires_grad_() if torch.is_tensor(a) and a.is_floating_point() else a for a in args]
    return leaves, [a for a in leaves if torch.is_tensor(a) and a.requires_grad]


def run_with_grads(fn, *args, up: torch.Tensor, what: str) -> dict:
    """Call the student's ``fn`` on ``args``, each floating-point tensor among them a copy that requires
    grad; send the output and its gradients w.r.t. those copies (:func:`observed_grads`, weighted by ``up``)."""
    __tracebackhide__ = True
    leaves, inputs = _leaves(args)
    out = call_student(fn, *leaves, what=what)
    return {"y": observed(out), "grads": observed_grads(out, inputs, up)}


def compare_with_grads(obs: dict, fn, *args, up: torch.Tensor, what: str, names: list[str], hint: str = "",
                       **tol) -> None:
    """The other half of :func:`run_with_grads`: the output against ``fn(*args)`` (torch's), then the
    gradient w.r.t. each floating-point tensor in ``args`` (named by ``names``, in order) against autograd."""
    __tracebackhide__ = True
    leaves, inputs = _leaves(args)
    want = fn(*leaves)
    compare(obs["y"], want, what, hint=hint, **tol)
    wants = torch.autograd.grad((want * up).sum(), inputs, allow_unused=True)
    grads = obs["grads"]
    if not isinstance(grads, list) or len(grads) != len(inputs):
        _fail(f"{what}: no gradient reaches the inputs. {GRADIENT_HINT}")
    for name, got, w in zip(names, grads, wants, strict=True):
        if w is None:
            continue
        compare(absent("no gradient") if got is None else got, w, f"{what}: gradient w.r.t. {name}",
                hint=GRADIENT_HINT, **tol)


def stand_in(value: torch.Tensor, inputs, grads) -> torch.Tensor:
    """A number equal to ``value`` whose gradient w.r.t. each of ``inputs`` is the matching ``grads``
    entry (None: no gradient): how a verdict uses a student's loss function that only the kernel can
    call, known as observed there (its value and gradient at the inputs it was called on)."""
    return value + sum(((x - x.detach()) * g).sum() for x, g in zip(inputs, grads) if g is not None)


def absent(what: str) -> dict:
    """Stands for a value that was never returned (``what``: "no gradient"), as :func:`observed` sends an
    unknown type, so that :func:`compare` names it."""
    return {OPAQUE: what}


def pair(got, what: str, expected: str) -> list:
    """``got`` (an observed tuple, so a list) as its two items, or a failure that says what was expected."""
    __tracebackhide__ = True
    if not isinstance(got, list) or len(got) != 2:
        _fail(f"{what} should return {expected}; it returned {type_name(got)}.")
    return got


def type_name(value) -> str:
    """The type of a returned value, also when it arrived through :func:`observed` as ``{"__type__": ...}``
    (a tuple arrives as a list and is named so)."""
    if isinstance(value, dict) and set(value) == {OPAQUE}:
        return str(value[OPAQUE])
    return "tuple or list" if isinstance(value, list) else type(value).__name__


def source_of(fn) -> str | None:
    """The source text of ``fn``, or None where it is unavailable (defined in exec, a builtin)."""
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return None


def forbid_calls(fn, names: list[str], exercise: str) -> None:
    """Fail if the source of ``fn`` calls any of ``names`` (the exercise is to write it by hand)."""
    __tracebackhide__ = True
    forbid_calls_in(source_of(fn), names, exercise)


def forbid_calls_in(src: str | None, names: list[str], exercise: str) -> None:
    """:func:`forbid_calls` on source text (what a judged scenario sends): no source, nothing to inspect."""
    __tracebackhide__ = True
    if not isinstance(src, str):
        return
    code = "\n".join(line.split("#")[0] for line in src.splitlines())  # ignore comments
    for name in names:
        prefix = "" if name.startswith(".") else r"(?<!def )(?<![\w.])"  # ".softmax" means the tensor method
        if re.search(prefix + re.escape(name) + r"\s*\(", code):
            _fail(f"{exercise}: please write this one yourself without calling {name}(); "
                  "the check compares your version with it.")


def _layout(m: nn.Module) -> str:
    return ", ".join(f"{k} {tuple(v.shape)}" for k, v in m.state_dict().items() if v.dim() > 0)


def copy_by_shape(src: nn.Module, dst: nn.Module, what: str) -> None:
    """Copy every tensor of ``src``'s state_dict into ``dst``'s, pairing them in order by shape,
    so that any attribute names work as long as the layers are the stated ones."""
    __tracebackhide__ = True
    theirs = [(k, v) for k, v in dst.state_dict().items() if v.dim() > 0]
    ours = [(k, v) for k, v in src.state_dict().items() if v.dim() > 0]
    used: set[int] = set()
    pairs = []
    for k, v in ours:
        j = next((j for j, (_, w) in enumerate(theirs) if j not in used and w.shape == v.shape), None)
        if j is None:
            _fail(f"{what} is not built as its docstring says: no parameter or buffer of shape {tuple(v.shape)} "
                  f"(the stated model's {k}). Yours has: {_layout(dst) or 'no parameters'}.")
        used.add(j)
        pairs.append((theirs[j][0], v))
    if len(used) != len(theirs):
        extra = [f"{theirs[j][0]} {tuple(theirs[j][1].shape)}" for j in range(len(theirs)) if j not in used]
        _fail(f"{what} has parameters or buffers the docstring does not describe: {', '.join(extra[:4])}.")
    state = dst.state_dict()
    state.update({k: v.clone() for k, v in pairs})
    dst.load_state_dict(state)


def _owners_in_use(model: nn.Module, inputs: tuple, what: str) -> list[nn.Module] | None:
    """The submodules of ``model`` that hold tensors of their own (parameters, buffers), in the order a
    forward pass on ``inputs`` first calls them; None when that order does not cover every one of them
    (one is never called, or is called through .forward). The pass changes nothing: state and RNG restored."""
    __tracebackhide__ = True
    owners = [m for m in model.modules() if any(t.dim() > 0 for t in [*m.parameters(recurse=False),
                                                                        *m.buffers(recurse=False)])]
    order: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda m, args, out: order.append(m) if all(m is not o for o in order)
                                     else None) for m in owners]
    state = copy.deepcopy(model.state_dict())
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            call_student(model, *inputs, what=f"{what} forward")
    finally:
        for h in hooks:
            h.remove()
        model.load_state_dict(state)
    return order if len(order) == len(owners) else None


_SPEC_ORDER: dict[tuple, list[int] | None] = {}  # a stated model's structure and input shapes -> its owners' order


def _spec_owners_in_use(spec: nn.Module, inputs: tuple, what: str) -> list[nn.Module] | None:
    """:func:`_owners_in_use` for a stated (torch-built) model, remembered by its structure and the
    input shapes: the checks build the same stated models again and again."""
    key = (repr(spec), tuple(tuple(t.shape) if torch.is_tensor(t) else t for t in inputs))
    modules = list(spec.modules())
    if key not in _SPEC_ORDER:
        order = _owners_in_use(spec, inputs, what)
        _SPEC_ORDER[key] = None if order is None else [next(i for i, m in enumerate(modules) if m is o) for o in order]
    return None if _SPEC_ORDER[key] is None else [modules[i] for i in _SPEC_ORDER[key]]


def _own_tensors(m: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [(k, v) for k, v in m.state_dict().items() if "." not in k and v.dim() > 0]


def copy_by_use(src: nn.Module, dst: nn.Module, inputs: tuple, what: str) -> None:
    """Copy ``src``'s weights into ``dst`` layer by layer in the order each model's forward pass uses
    its layers, so that neither the attribute names nor the order in which they were declared matter
    (two BatchNorm2d(32) declared in either order get the right weights). Where the layers in use do
    not line up one to one (the same shapes, layer by layer), :func:`copy_by_shape` pairs them instead
    and names what is missing."""
    __tracebackhide__ = True
    theirs, ours = _owners_in_use(dst, inputs, what), _spec_owners_in_use(src, inputs, what)
    shapes = lambda m: sorted(tuple(v.shape) for _, v in _own_tensors(m))  # noqa: E731
    if theirs is None or ours is None or len(theirs) != len(ours) or \
            any(shapes(a) != shapes(b) for a, b in zip(ours, theirs)):
        copy_by_shape(src, dst, what)
        return
    with torch.no_grad():
        for a, b in zip(ours, theirs):
            free = _own_tensors(b)
            for _, v in _own_tensors(a):  # within a layer, pair by shape (torch's layers name them alike)
                j = next(j for j, (_, w) in enumerate(free) if w.shape == v.shape)
                free.pop(j)[1].copy_(v)

