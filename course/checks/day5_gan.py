"""Visible checks of DAY 5 (GANs and the VAE).

Models are compared with the layers their docstrings describe, built here from torch.nn,
after copying one set of random weights into both. The losses are compared with
F.binary_cross_entropy_with_logits, and one training step with a step written here with
torch's optimisers. Everything runs in float64 (tolerance 1e-10 + 1e-8·|expected|).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from course.checks.common import TOL, _fail, _ok, call_student, compare, observed, rand64, stand_in, type_name
from course.checks.gan_pieces import (bce, check_conditional, check_discriminator, check_gan_losses, check_generator,
                                      check_vae, discriminator_spec, generator_spec)

__all__ = ["TOL", "check_generator", "check_discriminator", "check_gan_losses", "check_train_step",
           "check_conditional", "check_vae", "generator_spec", "discriminator_spec"]
# The generator, discriminator, losses, conditional models and VAE are in gan_pieces.py; one training
# step is here. Each is split into a _run half (the kernel) and a _verdict half (the grader): see
# solutions/<day>/hidden.py.



_rand = rand64  # seeded float64 normals (course.checks.common)


# ----------------------------------------------------------------------------- one training step


class _TinyG(nn.Module):
    def __init__(self, conditional: bool):
        super().__init__()
        self.conditional = conditional
        self.net = nn.Sequential(nn.Linear(3 + 2 * conditional, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 6),
                                 nn.Tanh())

    def forward(self, z, labels=None):
        if self.conditional:
            z = torch.cat([z, F.one_hot(labels, 2).to(z.dtype)], dim=1)
        return self.net(z)


class _TinyD(nn.Module):
    def __init__(self, conditional: bool):
        super().__init__()
        self.conditional = conditional
        self.net = nn.Sequential(nn.Linear(6 + 2 * conditional, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))

    def forward(self, x, labels=None):
        if self.conditional:
            x = torch.cat([x, F.one_hot(labels, 2).to(x.dtype)], dim=1)
        return self.net(x).squeeze(1)


def _expected_step(G, D, opt_G, opt_D, real, z, labels, d_loss_fn, g_loss_fn):
    cond = () if labels is None else (labels,)
    fake = G(z, *cond)
    d_loss = d_loss_fn(D(real, *cond), D(fake.detach(), *cond))
    opt_D.zero_grad()
    d_loss.backward()
    opt_D.step()
    g_loss = g_loss_fn(D(fake, *cond))
    opt_G.zero_grad()
    g_loss.backward()
    opt_G.step()
    return d_loss.item(), g_loss.item()


def _losses_usable(discriminator_loss, generator_loss) -> bool:
    try:
        a = torch.randn(3, dtype=torch.float64, requires_grad=True)
        return all(torch.is_tensor(v) and v.numel() == 1 and v.requires_grad
                   for v in (discriminator_loss(a, a), generator_loss(a)))
    except Exception:  # noqa: BLE001 - the losses are checked on their own
        return False


def _bce_losses():
    return (lambda r, f: bce(r, 1.0) + bce(f, 0.0)), (lambda f: bce(f, 1.0))


def _recording(loss_fn, calls: list):
    """``loss_fn`` that also appends what it saw and returned (the logits, the value, its gradients)."""
    def loss(*logits):
        leaves = [v.detach().requires_grad_() for v in logits]
        value = loss_fn(*leaves)
        grads = torch.autograd.grad(value, leaves, allow_unused=True)
        calls.append({"logits": observed([v.detach() for v in logits]), "value": observed(value), "grads": observed(grads)})
        return stand_in(value.detach().reshape(()), logits, grads)
    return loss


def _replaying(calls: list, where: str):
    """The grader's side of :func:`_recording`: each call must see the logits recorded (the same step,
    computed here), and returns the recorded value with the recorded gradients."""
    calls = iter(calls)

    def loss(*logits):
        __tracebackhide__ = True
        call = next(calls, None)
        if call is None or len(call["logits"]) != len(logits) or not torch.is_tensor(call["value"]):
            _fail(f"{where}: the observations of your loss functions along the expected step are missing.")
        for got, want in zip(call["logits"], logits):
            compare(got, want.detach(), f"{where}: the logits your loss was called on in the expected step", **TOL)
        grads = [g if torch.is_tensor(g) else None for g in call["grads"]]
        return stand_in(call["value"].reshape(()), logits, grads)
    return loss


def _tiny_models(conditional: bool, seed: int):
    """The tiny G and D of one case, in float64, from the seed alone (the same in the kernel and the grader)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + conditional)
        return _TinyG(conditional).double(), _TinyD(conditional).double()


def _adam(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=0.05, betas=(0.5, 0.999))


def _step_inputs(conditional: bool, step: int, seed: int):
    real = _rand(5, 6, seed=seed + 10 * step).tanh()
    z = _rand(5, 3, seed=seed + 10 * step + 1)
    return real, z, torch.tensor([0, 1, 1, 0, 1]) if conditional else None


def _label(conditional: bool) -> str:
    return "conditional (labels given)" if conditional else "unconditional"


def train_step_run(gan_train_step, discriminator_loss, generator_loss, *, seed: int) -> dict:
    """Two calls of the student's step per case: what each returned and G's and D's parameters after it.
    Alongside, the expected step with the student's own losses, recording what they returned and their
    gradients at the logits they were called on (the grader replays that step itself)."""
    usable = _losses_usable(discriminator_loss, generator_loss)
    run = {"usable": usable, "cases": []}
    for conditional in (False, True):
        G, D = _tiny_models(conditional, seed)
        eG, eD = copy.deepcopy(G), copy.deepcopy(D)
        opt_G, opt_D, eopt_G, eopt_D = _adam(G), _adam(D), _adam(eG), _adam(eD)
        case = []
        run["cases"].append(case)
        for step in (1, 2):
            real, z, labels = _step_inputs(conditional, step, seed)
            calls: list = []
            losses = (_recording(discriminator_loss, calls), _recording(generator_loss, calls)) if usable \
                else _bce_losses()
            _expected_step(eG, eD, eopt_G, eopt_D, real, z, labels, *losses)
            args = (G, D, opt_G, opt_D, real, z) + ((labels,) if conditional else ())
            got = call_student(gan_train_step, *args, what=f"gan_train_step ({_label(conditional)}, call {step})",
                               hint="'backward through the graph a second time' means D's loss used the fake "
                                    "without .detach(), so its backward freed G's graph before G's own backward.")
            try:
                got = [float(v.detach()) if torch.is_tensor(v) else float(v) for v in got]
            except Exception:  # noqa: BLE001 - the verdict names what came back
                got = observed(got)
            case.append({"returned": got, "loss_calls": calls, "D": observed(list(D.parameters())),
                         "G": observed(list(G.parameters()))})
    return run


def train_step_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    if len(run["cases"]) != 2:
        _fail("gan_train_step was not observed in both cases.")
    for conditional, case in zip((False, True), run["cases"]):
        label = _label(conditional)
        eG, eD = _tiny_models(conditional, seed)
        eopt_G, eopt_D = _adam(eG), _adam(eD)
        if len(case) != 2:
            _fail(f"gan_train_step ({label}) was not observed for both calls.")
        for step, obs in zip((1, 2), case):
            real, z, labels = _step_inputs(conditional, step, seed)
            where = f"gan_train_step ({label}, call {step})"
            losses = (_replaying(obs["loss_calls"][:1], where), _replaying(obs["loss_calls"][1:], where)) \
                if run["usable"] else _bce_losses()
            want = _expected_step(eG, eD, eopt_G, eopt_D, real, z, labels, *losses)
            got = obs["returned"]
            if not isinstance(got, list) or len(got) != 2 or not all(isinstance(v, float) for v in got):
                _fail(f"gan_train_step should return (d_loss, g_loss) as two floats, got {type_name(got)}.")
            d_ok, g_ok = (isinstance(obs[k], list) and len(obs[k]) == len(list(m.parameters())) and
                          all(torch.is_tensor(a) and a.shape == b.shape and torch.allclose(a, b.detach(), **TOL)
                              for a, b in zip(obs[k], m.parameters())) for k, m in (("D", eD), ("G", eG)))
            if not d_ok:
                if step == 2:
                    hint = ("D was right after the first call but not after the second: clear D's gradients "
                            "(opt_D.zero_grad()) right before its backward, since the G step leaves gradients in D.")
                else:
                    hint = ("D must take exactly one step, on discriminator_loss(D(real), D(fake.detach())), and "
                            "no other: opt_D.step() only after D's backward, never after G's.")
                _fail(f"{where}: D's parameters differ from the expected step. {hint}")
            if not g_ok:
                _fail(f"{where}: G's parameters differ from the expected step (D's are "
                      "right). G's gradient must come from generator_loss(D(fake)) alone: detach the fake in D's loss "
                      "(else D's loss leaks into G), call opt_G.zero_grad() before G's backward, and step G once.")
            if abs(got[0] - want[0]) > 1e-8 * (1 + abs(want[0])) or abs(got[1] - want[1]) > 1e-8 * (1 + abs(want[1])):
                _fail(f"{where} returned {tuple(got)}, expected {want} (d_loss, g_loss): "
                      "return the two losses computed in this step, D's first.")


def check_train_step(gan_train_step, discriminator_loss, generator_loss, *, seed: int = 0,
                     verbose: bool = True) -> None:
    """Two calls of gan_train_step on tiny G and D (Adam) give the same parameters and losses as
    the stated step: D update on real + detached fake, then G update. Uses your loss functions
    when they run, so a wrong loss is reported by its own check, not here."""
    __tracebackhide__ = True
    train_step_verdict(train_step_run(gan_train_step, discriminator_loss, generator_loss, seed=seed), seed=seed)
    if verbose:
        _ok("gan_train_step: one D step on real + detached fake, then one G step; parameters match after two calls.")
