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

from course.checks.common import TOL, _fail, _ok, call_student, rand64
from course.checks.gan_pieces import (bce, check_conditional, check_discriminator, check_gan_losses, check_generator,
                                      check_vae, discriminator_spec, generator_spec)

__all__ = ["TOL", "check_generator", "check_discriminator", "check_gan_losses", "check_train_step",
           "check_conditional", "check_vae", "generator_spec", "discriminator_spec"]
# The generator, discriminator, losses, conditional models and VAE are in gan_pieces.py, split into a
# _run half (the kernel) and a _verdict half (the grader); one training step is still checked in one
# piece here (see solutions/<day>/hidden.py).



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


def check_train_step(gan_train_step, discriminator_loss, generator_loss, *, seed: int = 0,
                     verbose: bool = True) -> None:
    """Two calls of gan_train_step on tiny G and D (Adam) give the same parameters and losses as
    the stated step: D update on real + detached fake, then G update. Uses your loss functions
    when they run, so a wrong loss is reported by its own check, not here."""
    __tracebackhide__ = True
    if not _losses_usable(discriminator_loss, generator_loss):
        discriminator_loss, generator_loss = (lambda r, f: bce(r, 1.0) + bce(f, 0.0)), (lambda f: bce(f, 1.0))
    for conditional in (False, True):
        torch.manual_seed(seed + conditional)
        G, D = _TinyG(conditional).double(), _TinyD(conditional).double()
        models = {"yours": (G, D), "expected": (copy.deepcopy(G), copy.deepcopy(D))}
        opts = {k: (torch.optim.Adam(g.parameters(), lr=0.05, betas=(0.5, 0.999)),
                    torch.optim.Adam(d.parameters(), lr=0.05, betas=(0.5, 0.999))) for k, (g, d) in models.items()}
        label = "conditional (labels given)" if conditional else "unconditional"
        for step in (1, 2):
            real = _rand(5, 6, seed=seed + 10 * step).tanh()
            z = _rand(5, 3, seed=seed + 10 * step + 1)
            labels = torch.tensor([0, 1, 1, 0, 1]) if conditional else None
            (eG, eD), (eoG, eoD) = models["expected"], opts["expected"]
            want = _expected_step(eG, eD, eoG, eoD, real, z, labels, discriminator_loss, generator_loss)
            args = (G, D, *opts["yours"], real, z) + ((labels,) if conditional else ())
            got = call_student(gan_train_step, *args, what=f"gan_train_step ({label}, call {step})",
                               hint="'backward through the graph a second time' means D's loss used the fake "
                                    "without .detach(), so its backward freed G's graph before G's own backward.")
            try:
                got = tuple(float(v.detach()) if torch.is_tensor(v) else float(v) for v in got)
                assert len(got) == 2
            except Exception:  # noqa: BLE001
                _fail(f"gan_train_step should return (d_loss, g_loss) as two floats, got {got!r}.")
            d_ok = all(torch.allclose(a, b, atol=1e-10, rtol=1e-8) for a, b in zip(D.parameters(), eD.parameters()))
            g_ok = all(torch.allclose(a, b, atol=1e-10, rtol=1e-8) for a, b in zip(G.parameters(), eG.parameters()))
            if not d_ok:
                if step == 2:
                    hint = ("D was right after the first call but not after the second: clear D's gradients "
                            "(opt_D.zero_grad()) right before its backward, since the G step leaves gradients in D.")
                else:
                    hint = ("D must take exactly one step, on discriminator_loss(D(real), D(fake.detach())), and "
                            "no other: opt_D.step() only after D's backward, never after G's.")
                _fail(f"gan_train_step ({label}, call {step}): D's parameters differ from the expected step. {hint}")
            if not g_ok:
                _fail(f"gan_train_step ({label}, call {step}): G's parameters differ from the expected step (D's are "
                      "right). G's gradient must come from generator_loss(D(fake)) alone: detach the fake in D's loss "
                      "(else D's loss leaks into G), call opt_G.zero_grad() before G's backward, and step G once.")
            if abs(got[0] - want[0]) > 1e-8 * (1 + abs(want[0])) or abs(got[1] - want[1]) > 1e-8 * (1 + abs(want[1])):
                _fail(f"gan_train_step ({label}, call {step}) returned {got}, expected {want} (d_loss, g_loss): "
                      "return the two losses computed in this step, D's first.")
    if verbose:
        _ok("gan_train_step: one D step on real + detached fake, then one G step; parameters match after two calls.")
