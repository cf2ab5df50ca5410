"""Visible checks of DAY 5 (GANs and the VAE).

Models are compared with the layers their docstrings describe, built here from torch.nn,
after copying one set of random weights into both. The losses are compared with
F.binary_cross_entropy_with_logits, and one training step with a step written here with
torch's optimisers. Everything runs in float64 (tolerance 1e-10 + 1e-8·|expected|).
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from course.checks.common import _fail, _ok, call_student, compare, copy_by_shape, rand64

TOL = dict(atol=1e-10, rtol=1e-8)


_rand = rand64  # seeded float64 normals (course.checks.common)


def generator_spec(z_dim: int) -> nn.Sequential:
    """The Generator of the notebook's docstring, built from torch.nn."""
    return nn.Sequential(
        nn.Linear(z_dim, 64 * 7 * 7, bias=False), nn.Unflatten(1, (64, 7, 7)), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1), nn.Tanh())


def discriminator_spec(in_channels: int = 1) -> nn.Sequential:
    """The Discriminator of the notebook's docstring (without the final squeeze), built from torch.nn."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(32, 64, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 1))


def _randomise(m: nn.Module, seed: int) -> None:
    """Random weights everywhere, and random BatchNorm statistics, so no layer is a no-op."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in m.state_dict().items():
            if t.is_floating_point():
                if "running_var" in name:
                    t.copy_(0.5 + torch.rand(t.shape, generator=g, dtype=t.dtype))
                elif "weight" in name and t.dim() == 1:  # BatchNorm γ
                    t.copy_(1 + 0.2 * torch.randn(t.shape, generator=g, dtype=t.dtype))
                else:
                    fan_in = t[0].numel() if t.dim() > 1 else 4
                    t.copy_(torch.randn(t.shape, generator=g, dtype=t.dtype) / math.sqrt(fan_in))


def _same_as_spec(mine: nn.Module, spec: nn.Module, inputs: tuple, what: str, *, seed: int, post=None,
                  hints=None) -> None:
    __tracebackhide__ = True
    _randomise(spec, seed)
    copy_by_shape(spec, mine, what)
    for mode in ("train", "eval"):
        mine.train(mode == "train"), spec.train(mode == "train")
        got = call_student(mine, *inputs, what=f"{what} forward ({mode} mode)")
        want = spec(*inputs) if post is None else post(spec, *inputs)
        hint = hints(got, want) if hints and torch.is_tensor(got) and got.shape == want.shape else ""
        compare(got, want, f"{what} output ({mode} mode, same weights as the stated layers)", **TOL, hint=hint)


def check_generator(Generator, *, seed: int = 0, verbose: bool = True) -> None:
    """Shape (N, 1, 28, 28), values in [-1, 1], and the output of the stated DCGAN layers."""
    __tracebackhide__ = True
    torch.manual_seed(seed)
    for z_dim in (64, 10):
        G = call_student(Generator, z_dim, what=f"Generator({z_dim})").double()
        z = _rand(3, z_dim, seed=seed + z_dim, scale=3.0)
        out = call_student(G, z, what=f"Generator({z_dim}) forward on z of shape (3, {z_dim})")
        if not torch.is_tensor(out) or tuple(out.shape) != (3, 1, 28, 28):
            _fail(f"Generator({z_dim}) returned {getattr(out, 'shape', type(out).__name__)}; expected (3, 1, 28, 28). "
                  "7 → 14 → 28 needs ConvTranspose2d(kernel 4, stride 2, padding 1) twice, and the 3×3 Conv2d "
                  "between them keeps 14 × 14 only with padding=1.")

        def hints(got, want):
            if got.min() >= 0 and want.min() < 0:
                return "Your images are never negative: the last layer should be tanh (range [-1, 1]), not sigmoid or ReLU."
            if got.abs().max() > 1:
                return "Values outside [-1, 1]: finish with tanh."
            return ("Check the order: Linear → reshape → BatchNorm2d → ReLU → ConvT → BatchNorm2d → ReLU "
                    "→ Conv2d 3×3 → BatchNorm2d → ReLU → ConvT → tanh.")

        _same_as_spec(G, generator_spec(z_dim).double(), (z,), f"Generator({z_dim})", seed=seed + 1, hints=hints)
    if verbose:
        _ok("Generator: (N, z_dim) → (N, 1, 28, 28) in [-1, 1], equal to the stated DCGAN layers in train and eval mode.")


def check_discriminator(Discriminator, *, seed: int = 0, verbose: bool = True) -> None:
    """Logits of shape (N,) (also for N = 1), equal to the stated layers; no sigmoid."""
    __tracebackhide__ = True
    torch.manual_seed(seed)
    D = call_student(Discriminator, what="Discriminator()").double()
    for N in (4, 1):
        x = _rand(N, 1, 28, 28, seed=seed + N).tanh()
        D.eval()
        out = call_student(D, x, what=f"Discriminator forward on a batch of {N}")
        if not torch.is_tensor(out) or tuple(out.shape) != (N,):
            _fail(f"Discriminator returned {getattr(out, 'shape', type(out).__name__)} for {N} image(s); expected ({N},), "
                  "one logit per image." + (" Use .squeeze(1) (or .flatten()), not .squeeze(): with N = 1 "
                                             ".squeeze() also removes the batch dimension." if N == 1 else ""))

    def hints(got, want):
        if torch.allclose(got, torch.sigmoid(want)):
            return "You return probabilities: return the logit (no sigmoid); the losses apply it in a stable way."
        return "Check the stated order: conv → LeakyReLU(0.2) → conv → BatchNorm2d → LeakyReLU(0.2) → flatten → Linear."

    _same_as_spec(D, discriminator_spec().double(), (_rand(6, 1, 28, 28, seed=seed + 7).tanh(),), "Discriminator",
                  seed=seed + 1, post=lambda spec, x: spec(x).squeeze(1), hints=hints)
    if verbose:
        _ok("Discriminator: (N, 1, 28, 28) → logits (N,), equal to the stated layers in train and eval mode.")


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def check_gan_losses(discriminator_loss, generator_loss, *, seed: int = 0, verbose: bool = True) -> None:
    """Values and gradients equal to BCE-with-logits (real → 1, fake → 0; G: fake → 1), finite for
    logits of ±200 where log(sigmoid(·)) overflows."""
    __tracebackhide__ = True
    cases = [(_rand(7, seed=seed + 1, scale=2.0), _rand(5, seed=seed + 2, scale=2.0), "random logits"),
             (torch.tensor([200.0, -200.0, 30.0], dtype=torch.float64),
              torch.tensor([-200.0, 200.0, -40.0, 0.5], dtype=torch.float64), "extreme logits ±200")]
    for real, fake, label in cases:
        real, fake = real.clone().requires_grad_(), fake.clone().requires_grad_()
        d = call_student(discriminator_loss, real, fake, what=f"discriminator_loss ({label})")
        g = call_student(generator_loss, fake, what=f"generator_loss ({label})")
        want_d = _bce(real, 1.0) + _bce(fake, 0.0)
        want_g = _bce(fake, 1.0)
        stable = ("Use the logit form (F.softplus or F.binary_cross_entropy_with_logits): log(sigmoid(s)) "
                  "becomes log(0) = -inf for large |s|.")
        for got, want, what in ((d, want_d, "discriminator_loss"), (g, want_g, "generator_loss")):
            if torch.is_tensor(got) and got.dim() > 0 and got.numel() == 1:
                got = got.reshape(())
            if torch.is_tensor(got) and not torch.isfinite(got).all():
                _fail(f"{what} is {got.item()} for {label}. {stable}")
        hint_d = ""
        if torch.is_tensor(d) and d.shape == ():
            both = F.binary_cross_entropy_with_logits(torch.cat([real, fake]), torch.cat(
                [torch.ones_like(real), torch.zeros_like(fake)]))
            if torch.allclose(d, both):
                hint_d = "You average over real and fake together; average each batch on its own and add the two means."
            elif torch.allclose(d, _bce(real, 0.0) + _bce(fake, 1.0)):
                hint_d = "The targets are swapped: real images get label 1, fakes label 0."
        hint_g = ""
        if torch.is_tensor(g) and g.shape == ():
            if torch.allclose(g, -_bce(fake, 0.0)):
                hint_g = ("This is the saturating minimax loss mean log(1 − D(G(z))); use the non-saturating "
                          "−mean log D(G(z)), whose gradient does not vanish when D rejects the fakes.")
            elif torch.allclose(g, _bce(fake, 0.0)):
                hint_g = "G wants D to call its fakes real: target 1, i.e. mean softplus(−fake_logits)."
        compare(d, want_d, f"discriminator_loss ({label})", **TOL, hint=hint_d)
        compare(g, want_g, f"generator_loss ({label})", **TOL, hint=hint_g)
        grads = torch.autograd.grad(d + 2 * g, (real, fake))
        wants = torch.autograd.grad(want_d + 2 * want_g, (real, fake))
        for got, want, name in zip(grads, wants, ("real_logits", "fake_logits")):
            compare(got, want, f"gradient of the losses w.r.t. {name} ({label})", **TOL, hint=stable)
    if verbose:
        _ok("discriminator_loss and generator_loss equal BCE-with-logits (values and gradients), finite at ±200.")


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
        discriminator_loss, generator_loss = (lambda r, f: _bce(r, 1.0) + _bce(f, 0.0)), (lambda f: _bce(f, 1.0))
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


# ----------------------------------------------------------------------------- conditional GAN


class _CondGSpec(nn.Module):
    def __init__(self, z_dim):
        super().__init__()
        self.embed, self.body = nn.Embedding(10, 16), generator_spec(z_dim + 16)

    def forward(self, z, labels):
        return self.body(torch.cat([z, self.embed(labels)], dim=1))


class _CondDSpec(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.body = nn.Embedding(10, 28 * 28), discriminator_spec(2)

    def forward(self, x, labels):
        return self.body(torch.cat([x, self.embed(labels).view(-1, 1, 28, 28)], dim=1)).squeeze(1)


def _label_matters(model, inputs, labels, what):
    """Changing the label of sample 0 changes output 0 and nothing else (eval mode)."""
    __tracebackhide__ = True
    model.eval()
    with torch.no_grad():
        a = call_student(model, *inputs, labels, what=what)
        other = labels.clone()
        other[0] = (other[0] + 3) % 10
        b = call_student(model, *inputs, other, what=what)
    if torch.allclose(a[0], b[0]):
        _fail(f"{what}: changing the label of sample 0 does not change its output; the model ignores the label.")
    if not torch.allclose(a[1:], b[1:]):
        _fail(f"{what}: changing the label of sample 0 changed the outputs of other samples; each sample must use "
              "its own label (embed the whole labels tensor, shape (N,)).")


def check_conditional(CondGenerator, CondDiscriminator, *, seed: int = 0, verbose: bool = True) -> None:
    """Each sample's output depends on its own label; equal to the stated embed-and-concatenate models."""
    __tracebackhide__ = True
    torch.manual_seed(seed)
    labels = torch.tensor([3, 0, 9])
    G = call_student(CondGenerator, 64, 10, what="CondGenerator(64, 10)").double()
    z = _rand(3, 64, seed=seed + 1)
    _label_matters(G, (z,), labels, "CondGenerator")
    _same_as_spec(G, _CondGSpec(64).double(), (z, labels), "CondGenerator", seed=seed + 2)
    D = call_student(CondDiscriminator, 10, what="CondDiscriminator(10)").double()
    x = _rand(3, 1, 28, 28, seed=seed + 3).tanh()
    _label_matters(D, (x,), labels, "CondDiscriminator")
    _same_as_spec(D, _CondDSpec().double(), (x, labels), "CondDiscriminator", seed=seed + 4)
    if verbose:
        _ok("CondGenerator and CondDiscriminator use each sample's label and match the stated layers.")


# ----------------------------------------------------------------------------- VAE


def check_vae(reparameterize, vae_loss, *, seed: int = 0, verbose: bool = True) -> None:
    """z = μ + exp(logvar/2)·ε with ε from the given generator (values and gradients), and the
    negative ELBO against its formula."""
    __tracebackhide__ = True
    mu = _rand(6, 4, seed=seed + 1).requires_grad_()
    logvar = _rand(6, 4, seed=seed + 2, scale=0.7).requires_grad_()
    got = call_student(reparameterize, mu, logvar, torch.Generator().manual_seed(seed + 3), what="reparameterize")
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed + 3), dtype=mu.dtype)
    want = mu + torch.exp(0.5 * logvar) * eps
    hint = ""
    if torch.is_tensor(got) and got.shape == want.shape:
        if torch.allclose(got, mu + torch.exp(logvar) * eps):
            hint = "σ = exp(logvar / 2): logvar is log σ², so exp(logvar) is the variance, not the std."
        elif not torch.allclose(got, want):
            hint = "Draw ε with torch.randn(mu.shape, generator=generator, dtype=mu.dtype) so that runs repeat."
    compare(got, want, "reparameterize", **TOL, hint=hint)
    up = _rand(6, 4, seed=seed + 4)
    g_mu, g_lv = torch.autograd.grad((got * up).sum(), (mu, logvar))
    compare(g_mu, up, "gradient of reparameterize w.r.t. mu", **TOL,
            hint="z = μ + σ·ε: the noise must not cut the gradient path to μ.")
    compare(g_lv, up * 0.5 * torch.exp(0.5 * logvar) * eps, "gradient of reparameterize w.r.t. logvar", **TOL)
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(seed + 5), dtype=torch.float64)
    logits = _rand(3, 1, 28, 28, seed=seed + 6, scale=2.0)
    mu, logvar = _rand(3, 5, seed=seed + 7), _rand(3, 5, seed=seed + 8, scale=0.5)
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)
    got = call_student(vae_loss, logits, x, mu, logvar, what="vae_loss")
    want = (recon + kl).mean()
    hint = ""
    if torch.is_tensor(got) and got.numel() == 1:
        got = got.reshape(())
        if torch.allclose(got, (recon - kl).mean()):
            hint = "The KL term is added: −ELBO = reconstruction + KL, with KL = −½ Σ (1 + logvar − μ² − e^logvar) ≥ 0."
        elif torch.allclose(got, F.binary_cross_entropy_with_logits(logits, x) + kl.mean()):
            hint = "Sum the reconstruction term over the pixels of each image (a log-likelihood), then average over the batch."
        elif torch.allclose(got, (recon + 2 * kl).mean()):
            hint = "The KL term has a factor ½."
    compare(got, want, "vae_loss (negative ELBO)", **TOL, hint=hint)
    if verbose:
        _ok("reparameterize is μ + σ·ε with gradients to μ and logvar; vae_loss equals reconstruction + KL.")
