"""DAY 5 visible checks, judged part: the generator, the discriminator, the GAN losses, the conditional
models and the VAE. Each is a ``_run`` half (calls the student's code on inputs made from ``seed`` and
returns what it observed) and a ``_verdict`` half (builds the stated layers with the same random
weights, or the formula, and compares), so that their hidden tests are judged outside the student's
process (autograder/judge.py); a visible check is the one after the other. The DAY's own module in
this folder re-exports them.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from course.checks.common import (TOL, _fail, _ok, absent, call_student, compare, copy_by_use, observed,
                                  observed_grads, rand64, same, type_name)

__all__ = ["check_generator", "check_discriminator", "check_gan_losses", "check_conditional", "check_vae",
           "generator_spec", "discriminator_spec"]

_rand = rand64


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


class _CondGSpec(nn.Module):
    def __init__(self, z_dim, n_classes=10):
        super().__init__()
        self.embed, self.body = nn.Embedding(n_classes, 16), generator_spec(z_dim + 16)

    def forward(self, z, labels):
        return self.body(torch.cat([z, self.embed(labels)], dim=1))


class _CondDSpec(nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()
        self.embed, self.body = nn.Embedding(n_classes, 28 * 28), discriminator_spec(2)

    def forward(self, x, labels):
        return self.body(torch.cat([x, self.embed(labels).view(-1, 1, 28, 28)], dim=1)).squeeze(1)


@functools.lru_cache(maxsize=8)
def _random_state(signature: tuple, seed: int) -> tuple[torch.Tensor, ...]:
    """The random values :func:`_randomise` gives the floating entries ``signature`` (name, shape, dtype) of a
    state_dict; kept for a few calls, as a scenario and its verdict ask for the same ones."""
    g = torch.Generator().manual_seed(seed)
    values = []
    for name, shape, dtype in signature:
        if "running_var" in name:
            values.append(0.5 + torch.rand(shape, generator=g, dtype=dtype))
        elif "weight" in name and len(shape) == 1:  # BatchNorm γ
            values.append(1 + 0.2 * torch.randn(shape, generator=g, dtype=dtype))
        else:
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else 4
            values.append(torch.randn(shape, generator=g, dtype=dtype) / math.sqrt(fan_in))
    return tuple(values)


def _randomise(m: nn.Module, seed: int) -> nn.Module:
    """Random weights everywhere, and random BatchNorm statistics, so no layer is a no-op; ``m`` itself."""
    state = [(name, t) for name, t in m.state_dict().items() if t.is_floating_point()]
    values = _random_state(tuple((name, tuple(t.shape), t.dtype) for name, t in state), seed)
    with torch.no_grad():
        for (_, t), value in zip(state, values):
            t.copy_(value)
    return m


def _spec_run(mine: nn.Module, spec: nn.Module, inputs: tuple, what: str, *, seed: int) -> list:
    """The student's outputs in train then eval mode, with the stated layers' random weights copied in."""
    copy_by_use(_randomise(spec, seed), mine, inputs, what)
    outs = []
    for mode in ("train", "eval"):
        mine.train(mode == "train")
        outs.append(observed(call_student(mine, *inputs, what=f"{what} forward ({mode} mode)")))
    return outs


def _spec_verdict(outs: list, spec: nn.Module, inputs: tuple, what: str, *, seed: int, post=None, hints=None) -> None:
    __tracebackhide__ = True
    _randomise(spec, seed)
    for mode, got in zip(("train", "eval"), outs, strict=True):
        spec.train(mode == "train")
        with torch.no_grad():
            want = spec(*inputs) if post is None else post(spec, *inputs)
        hint = hints(got, want) if hints and torch.is_tensor(got) and got.shape == want.shape and \
            got.dtype == want.dtype else ""
        compare(got, want, f"{what} output ({mode} mode, same weights as the stated layers)", **TOL, hint=hint)


# ----------------------------------------------------------------------------- generator and discriminator

def generator_run(Generator, *, seed: int) -> list:
    """Per z_dim: the output on a batch of 3, then (if its shape is right) train and eval outputs with the
    stated layers' weights."""
    torch.manual_seed(seed)
    runs = []
    for z_dim in (64, 10):
        G = call_student(Generator, z_dim, what=f"Generator({z_dim})").double()
        z = _rand(3, z_dim, seed=seed + z_dim, scale=3.0)
        out = call_student(G, z, what=f"Generator({z_dim}) forward on z of shape (3, {z_dim})")
        runs.append({"shape": observed(list(out.shape)) if torch.is_tensor(out) else type_name(out)})
        if runs[-1]["shape"] != [3, 1, 28, 28]:
            break
        runs[-1]["outs"] = _spec_run(G, generator_spec(z_dim).double(), (z,), f"Generator({z_dim})", seed=seed + 1)
    return runs


def _generator_hints(got, want):
    if got.min() >= 0 and want.min() < 0:
        return "Your images are never negative: the last layer should be tanh (range [-1, 1]), not sigmoid or ReLU."
    if got.abs().max() > 1:
        return "Values outside [-1, 1]: finish with tanh."
    return ("Check the order: Linear → reshape → BatchNorm2d → ReLU → ConvT → BatchNorm2d → ReLU "
            "→ Conv2d 3×3 → BatchNorm2d → ReLU → ConvT → tanh.")


def generator_verdict(runs: list, *, seed: int) -> None:
    __tracebackhide__ = True
    for z_dim, run in zip((64, 10), runs):
        if run["shape"] != [3, 1, 28, 28]:
            _fail(f"Generator({z_dim}) returned {run['shape']}; expected (3, 1, 28, 28). 7 → 14 → 28 needs "
                  "ConvTranspose2d(kernel 4, stride 2, padding 1) twice, and the 3×3 Conv2d between them keeps "
                  "14 × 14 only with padding=1.")
        z = _rand(3, z_dim, seed=seed + z_dim, scale=3.0)
        _spec_verdict(run["outs"], generator_spec(z_dim).double(), (z,), f"Generator({z_dim})", seed=seed + 1,
                      hints=_generator_hints)
    if len(runs) != 2:
        _fail(f"expected two Generators, got {len(runs)}.")


def check_generator(Generator, *, seed: int = 0, verbose: bool = True) -> None:
    """Shape (N, 1, 28, 28), values in [-1, 1], and the output of the stated DCGAN layers."""
    __tracebackhide__ = True
    generator_verdict(generator_run(Generator, seed=seed), seed=seed)
    if verbose:
        _ok("Generator: (N, z_dim) → (N, 1, 28, 28) in [-1, 1], equal to the stated DCGAN layers in train and eval mode.")


def discriminator_run(Discriminator, *, seed: int) -> dict:
    torch.manual_seed(seed)
    D = call_student(Discriminator, what="Discriminator()").double()
    run = {"shapes": []}
    for N in (4, 1):
        D.eval()
        out = call_student(D, _rand(N, 1, 28, 28, seed=seed + N).tanh(), what=f"Discriminator forward on a batch of {N}")
        run["shapes"].append(observed(list(out.shape)) if torch.is_tensor(out) else type_name(out))
    if run["shapes"] == [[4], [1]]:
        run["outs"] = _spec_run(D, discriminator_spec().double(), (_rand(6, 1, 28, 28, seed=seed + 7).tanh(),),
                                "Discriminator", seed=seed + 1)
    return run


def _discriminator_hints(got, want):
    if torch.allclose(got, torch.sigmoid(want)):
        return "You return probabilities: return the logit (no sigmoid); the losses apply it in a stable way."
    return "Check the stated order: conv → LeakyReLU(0.2) → conv → BatchNorm2d → LeakyReLU(0.2) → flatten → Linear."


def discriminator_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    for N, shape in zip((4, 1), run["shapes"], strict=True):
        if shape != [N]:
            _fail(f"Discriminator returned {shape} for {N} image(s); expected ({N},), one logit per image."
                  + (" Use .squeeze(1) (or .flatten()), not .squeeze(): with N = 1 .squeeze() also removes the batch "
                     "dimension." if N == 1 else ""))
    _spec_verdict(run["outs"], discriminator_spec().double(), (_rand(6, 1, 28, 28, seed=seed + 7).tanh(),),
                  "Discriminator", seed=seed + 1, post=lambda spec, x: spec(x).squeeze(1), hints=_discriminator_hints)


def check_discriminator(Discriminator, *, seed: int = 0, verbose: bool = True) -> None:
    """Logits of shape (N,) (also for N = 1), equal to the stated layers; no sigmoid."""
    __tracebackhide__ = True
    discriminator_verdict(discriminator_run(Discriminator, seed=seed), seed=seed)
    if verbose:
        _ok("Discriminator: (N, 1, 28, 28) → logits (N,), equal to the stated layers in train and eval mode.")


# ----------------------------------------------------------------------------- losses

def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Binary cross-entropy of ``logits`` against the constant ``target`` (1 for real, 0 for fake)."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _loss_cases(seed):
    return [(_rand(7, seed=seed + 1, scale=2.0), _rand(5, seed=seed + 2, scale=2.0), "random logits"),
            (torch.tensor([1000.0, -1000.0, 30.0], dtype=torch.float64),
             torch.tensor([-1000.0, 1000.0, -40.0, 0.5], dtype=torch.float64), "extreme logits ±1000")]


def gan_losses_run(discriminator_loss, generator_loss, *, seed: int) -> list:
    """Per case: both losses, and the gradients of d + 2·g w.r.t. the real and fake logits (None when the
    losses cannot give any)."""
    runs = []
    for real, fake, label in _loss_cases(seed):
        real, fake = real.clone().requires_grad_(), fake.clone().requires_grad_()
        d = call_student(discriminator_loss, real, fake, what=f"discriminator_loss ({label})")
        g = call_student(generator_loss, fake, what=f"generator_loss ({label})")
        both = d + 2 * g if all(torch.is_tensor(v) and v.numel() == 1 for v in (d, g)) else None
        grads = observed_grads(both, [real, fake])
        runs.append({"d": observed(d), "g": observed(g), "grads": grads})
    return runs


def gan_losses_verdict(runs: list, *, seed: int) -> None:
    __tracebackhide__ = True
    stable = ("Use the logit form (F.softplus or F.binary_cross_entropy_with_logits): log(sigmoid(s)) "
              "becomes log(0) = -inf for large |s|.")
    for (real, fake, label), run in zip(_loss_cases(seed), runs, strict=True):
        real, fake = real.clone().requires_grad_(), fake.clone().requires_grad_()
        want_d, want_g = bce(real, 1.0) + bce(fake, 0.0), bce(fake, 1.0)
        d, g = run["d"], run["g"]
        for got, what in ((d, "discriminator_loss"), (g, "generator_loss")):
            if torch.is_tensor(got) and got.numel() == 1 and not torch.isfinite(got).all():
                _fail(f"{what} is {got.item()} for {label}. {stable}")
        d = d.reshape(()) if torch.is_tensor(d) and d.numel() == 1 else d
        g = g.reshape(()) if torch.is_tensor(g) and g.numel() == 1 else g
        hint_d = hint_g = ""
        with torch.no_grad():
            if torch.is_tensor(d) and d.shape == () and d.dtype == want_d.dtype:
                both = F.binary_cross_entropy_with_logits(torch.cat([real, fake]), torch.cat(
                    [torch.ones_like(real), torch.zeros_like(fake)]))
                if torch.allclose(d, both):
                    hint_d = "You average over real and fake together; average each batch on its own and add the two means."
                elif torch.allclose(d, bce(real, 0.0) + bce(fake, 1.0)):
                    hint_d = "The targets are swapped: real images get label 1, fakes label 0."
            if torch.is_tensor(g) and g.shape == () and g.dtype == want_g.dtype:
                if torch.allclose(g, -bce(fake, 0.0)):
                    hint_g = ("This is the saturating minimax loss mean log(1 − D(G(z))); use the non-saturating "
                              "−mean log D(G(z)), whose gradient does not vanish when D rejects the fakes.")
                elif torch.allclose(g, bce(fake, 0.0)):
                    hint_g = "G wants D to call its fakes real: target 1, i.e. mean softplus(−fake_logits)."
        compare(d, want_d, f"discriminator_loss ({label})", **TOL, hint=hint_d)
        compare(g, want_g, f"generator_loss ({label})", **TOL, hint=hint_g)
        wants = torch.autograd.grad(want_d + 2 * want_g, (real, fake))
        grads = run["grads"] if isinstance(run["grads"], list) else [absent("no gradient")] * 2
        for got, want, name in zip(grads, wants, ("real_logits", "fake_logits"), strict=True):
            compare(got if got is not None else absent("no gradient"), want,
                    f"gradient of the losses w.r.t. {name} ({label})", **TOL, hint=stable)


def check_gan_losses(discriminator_loss, generator_loss, *, seed: int = 0, verbose: bool = True) -> None:
    """Values and gradients equal to BCE-with-logits (real → 1, fake → 0; G: fake → 1), finite for
    logits of ±200 where log(sigmoid(·)) overflows."""
    __tracebackhide__ = True
    gan_losses_verdict(gan_losses_run(discriminator_loss, generator_loss, seed=seed), seed=seed)
    if verbose:
        _ok("discriminator_loss and generator_loss equal BCE-with-logits (values and gradients), finite at ±200.")


# ----------------------------------------------------------------------------- conditional GAN

LABELS = [3, 0, 9]


def _label_run(model, inputs, what) -> list:
    """Outputs (eval mode) with the labels, and with sample 0's label changed."""
    model.eval()
    labels = torch.tensor(LABELS)
    other = labels.clone()
    other[0] = (other[0] + 3) % 10
    with torch.no_grad():
        return [observed(call_student(model, *inputs, lab, what=what)) for lab in (labels, other)]


def _label_verdict(outs, what) -> None:
    __tracebackhide__ = True
    a, b = outs
    if not (torch.is_tensor(a) and torch.is_tensor(b) and a.shape == b.shape and a.dim() >= 1 and len(a) == 3):
        _fail(f"{what} should return one output per sample (3 here); it returned {type_name(a)}.")
    if torch.allclose(a[0], b[0]):
        _fail(f"{what}: changing the label of sample 0 does not change its output; the model ignores the label.")
    if not torch.allclose(a[1:], b[1:]):
        _fail(f"{what}: changing the label of sample 0 changed the outputs of other samples; each sample must use "
              "its own label (embed the whole labels tensor, shape (N,)).")


def conditional_run(CondGenerator, CondDiscriminator, *, seed: int) -> dict:
    torch.manual_seed(seed)
    labels = torch.tensor(LABELS)
    G = call_student(CondGenerator, 64, 10, what="CondGenerator(64, 10)").double()
    z = _rand(3, 64, seed=seed + 1)
    run = {"G_labels": _label_run(G, (z,), "CondGenerator")}
    run["G"] = _spec_run(G, _CondGSpec(64).double(), (z, labels), "CondGenerator", seed=seed + 2)
    D = call_student(CondDiscriminator, 10, what="CondDiscriminator(10)").double()
    x = _rand(3, 1, 28, 28, seed=seed + 3).tanh()
    run["D_labels"] = _label_run(D, (x,), "CondDiscriminator")
    run["D"] = _spec_run(D, _CondDSpec().double(), (x, labels), "CondDiscriminator", seed=seed + 4)
    # CondGenerator(20, 4) and CondDiscriminator(4): z_dim and n_classes are used (20 and 16 share a bit, so
    # z_dim ^ 16 is not z_dim + 16); the shapes of their tensors only, the layers were compared above
    run["G4"] = _shapes(call_student(CondGenerator, 20, 4, what="CondGenerator(20, 4)"))
    run["D4"] = _shapes(call_student(CondDiscriminator, 4, what="CondDiscriminator(4)"))
    return run


def _shapes(model) -> list:
    """The sorted shapes of a model's parameters and buffers (what :func:`conditional_verdict` compares)."""
    return sorted(list(t.shape) for t in model.state_dict().values()) if isinstance(model, nn.Module) else []


def conditional_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    labels = torch.tensor(LABELS)
    _label_verdict(run["G_labels"], "CondGenerator")
    _spec_verdict(run["G"], _CondGSpec(64).double(), (_rand(3, 64, seed=seed + 1), labels), "CondGenerator",
                  seed=seed + 2)
    _label_verdict(run["D_labels"], "CondDiscriminator")
    _spec_verdict(run["D"], _CondDSpec().double(), (_rand(3, 1, 28, 28, seed=seed + 3).tanh(), labels),
                  "CondDiscriminator", seed=seed + 4)
    for got, spec, what in ((run["G4"], _CondGSpec(20, 4), "CondGenerator(20, 4)"),
                            (run["D4"], _CondDSpec(4), "CondDiscriminator(4)")):
        want = _shapes(spec)
        if got != want:
            extra = [s for s in got if s not in want or got.count(s) > want.count(s)]
            _fail(f"{what} has tensors of shapes the stated model does not ({extra[:3]}): build the layers from the "
                  "arguments (nn.Embedding(n_classes, ...), the body's input z_dim + 16), not from fixed numbers.")


def check_conditional(CondGenerator, CondDiscriminator, *, seed: int = 0, verbose: bool = True) -> None:
    """Each sample's output depends on its own label; equal to the stated embed-and-concatenate models."""
    __tracebackhide__ = True
    conditional_verdict(conditional_run(CondGenerator, CondDiscriminator, seed=seed), seed=seed)
    if verbose:
        _ok("CondGenerator and CondDiscriminator use each sample's label and match the stated layers.")


# ----------------------------------------------------------------------------- VAE

def _vae_inputs(seed):
    mu, logvar = _rand(6, 4, seed=seed + 1), _rand(6, 4, seed=seed + 2, scale=0.7)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed + 3), dtype=mu.dtype)
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(seed + 5), dtype=torch.float64)
    logits = _rand(3, 1, 28, 28, seed=seed + 6, scale=2.0)
    logits[0, 0, 0, :4] = torch.tensor([1000.0, -1000.0, 60.0, -60.0])  # log(sigmoid(s)) is -inf at ±1000
    mu2, logvar2 = _rand(3, 5, seed=seed + 7), _rand(3, 5, seed=seed + 8, scale=0.5)
    return mu, logvar, eps, _rand(6, 4, seed=seed + 4), (logits, x, mu2, logvar2)


def vae_run(reparameterize, vae_loss, *, seed: int) -> dict:
    mu, logvar, _, up, loss_inputs = _vae_inputs(seed)
    mu, logvar = mu.clone().requires_grad_(), logvar.clone().requires_grad_()
    z = call_student(reparameterize, mu, logvar, torch.Generator().manual_seed(seed + 3), what="reparameterize")
    grads = observed_grads(z, [mu, logvar], up)
    return {"z": observed(z), "grads": grads,
            "loss": observed(call_student(vae_loss, *loss_inputs, what="vae_loss"))}


def vae_verdict(run: dict, *, seed: int) -> None:
    __tracebackhide__ = True
    mu, logvar, eps, up, (logits, x, mu2, logvar2) = _vae_inputs(seed)
    got, want = run["z"], mu + torch.exp(0.5 * logvar) * eps
    # ε drawn as the docstring words it, torch.randn(mu.shape, generator=...), is float32 (then promoted),
    # and torch draws other numbers in float32 than in float64: both are right.
    eps32 = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed + 3)).to(mu.dtype)
    if same(got, mu + torch.exp(0.5 * logvar) * eps32):
        eps, want = eps32, mu + torch.exp(0.5 * logvar) * eps32
    hint = ""
    if torch.is_tensor(got) and got.shape == want.shape and got.dtype == want.dtype:
        if torch.allclose(got, mu + torch.exp(logvar) * eps):
            hint = "σ = exp(logvar / 2): logvar is log σ², so exp(logvar) is the variance, not the std."
        elif not torch.allclose(got, want):
            hint = "Draw ε with torch.randn(mu.shape, generator=generator, dtype=mu.dtype) so that runs repeat."
    compare(got, want, "reparameterize", **TOL, hint=hint)
    grads = run["grads"] if isinstance(run["grads"], list) and len(run["grads"]) == 2 else [None, None]
    nothing = absent("no gradient")
    compare(grads[0] if grads[0] is not None else nothing, up, "gradient of reparameterize w.r.t. mu", **TOL,
            hint="z = μ + σ·ε: the noise must not cut the gradient path to μ.")
    compare(grads[1] if grads[1] is not None else nothing, up * 0.5 * torch.exp(0.5 * logvar) * eps,
            "gradient of reparameterize w.r.t. logvar", **TOL)
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    kl = -0.5 * (1 + logvar2 - mu2 ** 2 - logvar2.exp()).sum(1)
    got, want, hint = run["loss"], (recon + kl).mean(), ""
    if torch.is_tensor(got) and got.numel() == 1:
        got = got.reshape(())
        if got.dtype == want.dtype:
            if torch.allclose(got, (recon - kl).mean()):
                hint = "The KL term is added: −ELBO = reconstruction + KL, with KL = −½ Σ (1 + logvar − μ² − e^logvar) ≥ 0."
            elif torch.allclose(got, F.binary_cross_entropy_with_logits(logits, x) + kl.mean()):
                hint = "Sum the reconstruction term over the pixels of each image (a log-likelihood), then average over the batch."
            elif torch.allclose(got, (recon + 2 * kl).mean()):
                hint = "The KL term has a factor ½."
    compare(got, want, "vae_loss (negative ELBO)", **TOL, hint=hint)


def check_vae(reparameterize, vae_loss, *, seed: int = 0, verbose: bool = True) -> None:
    """z = μ + exp(logvar/2)·ε with ε from the given generator (values and gradients), and the
    negative ELBO against its formula."""
    __tracebackhide__ = True
    vae_verdict(vae_run(reparameterize, vae_loss, seed=seed), seed=seed)
    if verbose:
        _ok("reparameterize is μ + σ·ε with gradients to μ and logvar; vae_loss equals reconstruction + KL.")
