"""DAY 5: checks pass the reference and correct variants, and catch realistic mutants; the judge's metrics."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from solutions.day5_gan import hidden
from course.checks import gan_pieces as gan
from course.checks import day5_gan
from course.checks.day5_gan import (check_conditional, check_discriminator, check_gan_losses, check_generator,
                                check_train_step, check_vae)
from course.judge import frechet_distance, judge_samples, load_judge
from solutions.day5_gan import experiment as exp
from solutions.day5_gan import reference as ref
from tests.mutation import doctored_observations_fail, exercise, exercise_tests, mutate, seed_sweep_tests


def _ex(check, hidden_test, names):
    return exercise(check, hidden_test, names, ref)


EXERCISES = {
    "generator": _ex(check_generator, hidden.hidden_generator, ["Generator"]),
    "discriminator": _ex(check_discriminator, hidden.hidden_discriminator, ["Discriminator"]),
    "gan_losses": _ex(check_gan_losses, hidden.hidden_gan_losses, ["discriminator_loss", "generator_loss"]),
    "train_step": _ex(check_train_step, hidden.hidden_train_step,
                      ["gan_train_step", "discriminator_loss", "generator_loss"]),
    "conditional": _ex(check_conditional, hidden.hidden_conditional, ["CondGenerator", "CondDiscriminator"]),
    "vae": _ex(check_vae, hidden.hidden_vae, ["reparameterize", "vae_loss"]),
}

MUTANTS = [
    ("generator", "sigmoid output", "Generator", [("nn.Tanh()", "nn.Sigmoid()")], "never negative"),
    ("generator", "no BatchNorm after the Linear", "Generator", [("nn.BatchNorm2d(64), nn.ReLU(),\n", "nn.ReLU(),\n")],
     "not built as its docstring says|does not describe"),
    ("generator", "kernel 3 in the first transposed conv", "Generator",
     [("nn.ConvTranspose2d(64, 32, 4,", "nn.ConvTranspose2d(64, 32, 3,")], "expected \\(3, 1, 28, 28\\)"),
    ("generator", "ReLU before BatchNorm", "Generator", [("nn.BatchNorm2d(32), nn.ReLU()", "nn.ReLU(), nn.BatchNorm2d(32)")],
     "Check the order"),
    ("generator", "3x3 conv without padding (14 -> 12)", "Generator",
     [("nn.Conv2d(32, 32, 3, padding=1, bias=False)", "nn.Conv2d(32, 32, 3, bias=False)")], "padding=1"),
    ("generator", "the 3x3 conv at 14 x 14 left out", "Generator",
     [("            nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),\n", "")],
     "not built as its docstring says"),
    ("discriminator", "returns probabilities", "Discriminator",
     [("return self.net(x).squeeze(1)", "return torch.sigmoid(self.net(x).squeeze(1))")], "probabilities"),
    ("discriminator", ".squeeze() drops the batch dim for N = 1", "Discriminator", [(".squeeze(1)", ".squeeze()")],
     "squeeze\\(\\)"),
    ("discriminator", "ReLU instead of LeakyReLU", "Discriminator",
     [("nn.LeakyReLU(0.2),\n            nn.Conv2d", "nn.ReLU(),\n            nn.Conv2d")], "LeakyReLU"),
    ("gan_losses", "saturating minimax G loss", "generator_loss",
     [("return F.softplus(-fake_logits).mean()", "return -F.softplus(fake_logits).mean()")], "saturating"),
    ("gan_losses", "log of sigmoid probabilities", "discriminator_loss",
     [("return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()",
       "return -torch.log(torch.sigmoid(real_logits)).mean() - torch.log(1 - torch.sigmoid(fake_logits)).mean()")],
     "logit form"),
    ("gan_losses", "one mean over real and fake together", "discriminator_loss",
     [("return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()",
       "return torch.cat([F.softplus(-real_logits), F.softplus(fake_logits)]).mean()")], "together"),
    ("gan_losses", "G's target 0", "generator_loss",
     [("return F.softplus(-fake_logits).mean()", "return F.softplus(fake_logits).mean()")], "target 1"),
    ("train_step", "fake not detached in D's loss", "gan_train_step", [("D(fake.detach(), *cond)", "D(fake, *cond)")],
     "detach"),
    ("train_step", "D's loss leaks into G (no detach, grads zeroed once)", "gan_train_step",
     [("    fake = G(z, *cond)\n", "    opt_D.zero_grad()\n    opt_G.zero_grad()\n    fake = G(z, *cond)\n"),
      ("D(fake.detach(), *cond)", "D(fake, *cond)"),
      ("    g_loss = generator_loss(D(fake, *cond))\n    opt_G.zero_grad()\n",
       "    g_loss = generator_loss(D(G(z, *cond), *cond))\n")], "G's parameters differ"),
    ("train_step", "D also steps during the G update", "gan_train_step",
     [("    opt_G.step()\n", "    opt_G.step()\n    opt_D.step()\n")], "D must take exactly one step"),
    ("train_step", "D's gradients never cleared", "gan_train_step", [("    opt_D.zero_grad()\n", "")], "clear D's gradients"),
    ("conditional", "G uses the first label for the whole batch", "CondGenerator",
     [("self.embed(labels)", "self.embed(labels[:1]).expand(len(z), -1)")], "other samples"),
    ("conditional", "D ignores the label", "CondDiscriminator",
     [("torch.cat([x, y_map], dim=1)", "torch.cat([x, torch.zeros_like(x)], dim=1)")], "ignores the label"),
    # The escape classes of issue 32: unstable formulas at logits ±1000 (a hand-written softplus, a
    # torch.where whose other branch overflows in the gradient, log(sigmoid)), a gradient cut, a class
    # count hard-coded where the constructor takes it.
    ("gan_losses", "hand-written softplus log(1 + e^s)", "generator_loss",
     [("return F.softplus(-fake_logits).mean()", "return torch.log(1 + torch.exp(-fake_logits)).mean()")], "inf for extreme"),
    ("gan_losses", "softplus by torch.where (NaN gradient)", "discriminator_loss",
     [("return F.softplus(-real_logits).mean()", "return torch.where(-real_logits > 0, -real_logits + torch.log1p("
       "torch.exp(real_logits)), torch.log1p(torch.exp(-real_logits))).mean()")], "NaN"),
    ("gan_losses", "fake logits detached in D's loss", "discriminator_loss",
     [("F.softplus(fake_logits).mean()", "F.softplus(fake_logits.detach()).mean()")], "gradient of the losses"),
    ("conditional", "n_classes ignored in G", "CondGenerator",
     [("self.embed = nn.Embedding(n_classes, 16)", "self.embed = nn.Embedding(10, 16)")], "nn.Embedding\\(n_classes"),
    ("conditional", "n_classes ignored in D", "CondDiscriminator",
     [("self.embed = nn.Embedding(n_classes, 28 * 28)", "self.embed = nn.Embedding(10, 28 * 28)")], "nn.Embedding\\(n_classes"),
    ("conditional", "body input z_dim ^ 16 (equals z_dim + 16 for z_dim = 64)", "CondGenerator",
     [("self.body = Generator(z_dim + 16)", "self.body = Generator(z_dim ^ 16)")], "CondGenerator\\(20, 4\\)"),
    ("vae", "logvar detached in reparameterize", "reparameterize", [("torch.exp(0.5 * logvar)", "torch.exp(0.5 * logvar.detach())")],
     "w.r.t. logvar"),
    ("vae", "reconstruction by log(sigmoid)", "vae_loss",
     [('F.binary_cross_entropy_with_logits(x_logits, x, reduction="none")',
       '-(x * torch.log(torch.sigmoid(x_logits)) + (1 - x) * torch.log(1 - torch.sigmoid(x_logits)))')], "inf"),
    ("vae", "σ = exp(logvar)", "reparameterize", [("torch.exp(0.5 * logvar)", "torch.exp(logvar)")], "variance"),
    ("vae", "ε drawn without the generator", "reparameterize", [("generator=generator, ", "")], "generator=generator"),
    ("vae", "KL subtracted", "vae_loss", [("kl = -0.5 *", "kl = 0.5 *")], "KL term is added"),
    ("vae", "reconstruction averaged over pixels", "vae_loss", [(".flatten(1).sum(1)", ".flatten(1).mean(1)")],
     "Sum the reconstruction"),
]




def test_sample_bug_is_one_of_the_mutants():
    """The planted bug of the 'buggy' sample is caught by the gan_losses check."""
    (old, new), = hidden.SAMPLE_BUG["replace"]
    buggy = mutate(ref.generator_loss, [(old.strip(), new.strip())])
    with pytest.raises(AssertionError, match="saturating"):
        check_gan_losses(ref.discriminator_loss, buggy)


# ---------------------------------------------------------------- correct, differently written versions

class _GeneratorVariant(nn.Module):
    """Named layers and an explicit view instead of one nn.Sequential."""

    def __init__(self, z_dim=64):
        super().__init__()
        self.z_dim = z_dim
        self.fc = nn.Linear(z_dim, 3136, bias=False)
        self.bn0 = nn.BatchNorm2d(64)
        self.up1 = nn.ConvTranspose2d(64, 32, kernel_size=4, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.mid = nn.Conv2d(32, 32, kernel_size=3, padding="same", bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.up2 = nn.ConvTranspose2d(32, 1, kernel_size=4, stride=2, padding=1)

    def forward(self, z):
        h = F.relu(self.bn0(self.fc(z).view(-1, 64, 7, 7)))
        h = F.relu(self.bn1(self.up1(h)))
        return torch.tanh(self.up2(F.relu(self.bn2(self.mid(h)))))


class _DiscriminatorVariant(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 32, 4, 2, 1), nn.Conv2d(32, 64, 4, 2, 1, bias=False)
        self.bn, self.fc = nn.BatchNorm2d(64), nn.Linear(3136, 1)

    def forward(self, x):
        h = F.leaky_relu(self.bn(self.c2(F.leaky_relu(self.c1(x), 0.2))), 0.2)
        return self.fc(h.flatten(1)).flatten()


def _d_loss_variant(real_logits, fake_logits):
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def _g_loss_variant(fake_logits):
    return -F.logsigmoid(fake_logits).mean()


def _train_step_variant(G, D, opt_G, opt_D, real, z, labels=None):
    """Zero both optimisers up front, set_to_none=False, and run G again for its own update."""
    extra = () if labels is None else (labels,)
    opt_D.zero_grad(set_to_none=False)
    d_loss = ref.discriminator_loss(D(real, *extra), D(G(z, *extra).detach(), *extra))
    d_loss.backward()
    opt_D.step()
    opt_G.zero_grad(set_to_none=False)
    g_loss = ref.generator_loss(D(G(z, *extra), *extra))
    g_loss.backward()
    opt_G.step()
    return d_loss.detach(), g_loss.detach()  # 0-dim tensors are accepted too


class _CondGeneratorVariant(nn.Module):
    """Body defined before the embedding (another parameter order), own layers."""

    def __init__(self, z_dim=64, n_classes=10):
        super().__init__()
        self.z_dim = z_dim
        self.body = _GeneratorVariant(z_dim + 16)
        self.label_embedding = nn.Embedding(n_classes, 16)

    def forward(self, z, labels):
        return self.body(torch.cat((z, self.label_embedding(labels)), 1))


class _CondDiscriminatorVariant(nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()
        self.label_map = nn.Embedding(n_classes, 784)
        self.net = nn.Sequential(nn.Conv2d(2, 32, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(32, 64, 4, 2, 1, bias=False),
                                 nn.BatchNorm2d(64), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(3136, 1))

    def forward(self, x, labels):
        maps = self.label_map(labels).reshape(x.shape[0], 1, 28, 28)
        return self.net(torch.cat([x, maps], 1))[:, 0]


def _reparameterize_variant(mu, logvar, generator=None):
    return mu + logvar.mul(0.5).exp() * torch.randn(mu.size(), generator=generator, dtype=mu.dtype)


def _vae_loss_variant(x_logits, x, mu, logvar):
    N = x.shape[0]
    recon = F.binary_cross_entropy_with_logits(x_logits, x, reduction="sum")
    kl = 0.5 * torch.sum(mu ** 2 + logvar.exp() - 1 - logvar)
    return (recon + kl) / N


class _GeneratorDeclaredOutOfOrder(nn.Module):
    """Every BatchNorm declared first, the later one of the two BatchNorm2d(32) before the earlier: the
    checks copy weights in the order of use, so this gets the stated weights."""

    def __init__(self, z_dim=64):
        super().__init__()
        self.norm_last, self.norm_mid, self.norm_first = nn.BatchNorm2d(32), nn.BatchNorm2d(32), nn.BatchNorm2d(64)
        self.to_image = nn.ConvTranspose2d(32, 1, 4, 2, 1)
        self.refine = nn.Conv2d(32, 32, 3, 1, 1, bias=False)
        self.grow = nn.ConvTranspose2d(64, 32, 4, 2, 1, bias=False)
        self.project = nn.Linear(z_dim, 64 * 49, bias=False)

    def forward(self, z):
        h = torch.relu(self.norm_first(self.project(z).reshape(len(z), 64, 7, 7)))
        h = torch.relu(self.norm_mid(self.grow(h)))
        h = torch.relu(self.norm_last(self.refine(h)))
        return self.to_image(h).tanh()


class _GeneratorNestedBlocks(nn.Module):
    """nn.Sequential blocks inside nn.Sequential, ReLU(inplace=True)."""

    def __init__(self, z_dim=64):
        super().__init__()
        block = lambda conv, c: nn.Sequential(conv, nn.BatchNorm2d(c), nn.ReLU(inplace=True))  # noqa: E731
        self.model = nn.Sequential(
            nn.Sequential(nn.Linear(z_dim, 3136, bias=False), nn.Unflatten(1, (64, 7, 7)), nn.BatchNorm2d(64),
                          nn.ReLU(inplace=True)),
            block(nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1, bias=False), 32),
            block(nn.Conv2d(32, 32, 3, padding=1, bias=False), 32),
            nn.Sequential(nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1), nn.Tanh()))

    def forward(self, z):
        return self.model(z)


class _DiscriminatorReversed(nn.Module):
    """Layers declared from the output back, view() and [:, 0]."""

    def __init__(self):
        super().__init__()
        self.out = nn.Linear(3136, 1)
        self.norm = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=4, stride=2, padding=1, bias=False)
        self.conv1 = nn.Conv2d(1, 32, kernel_size=4, stride=2, padding=1)
        self.act = nn.LeakyReLU(negative_slope=0.2)

    def forward(self, x):
        h = self.act(self.norm(self.conv2(self.act(self.conv1(x)))))
        return self.out(h.view(h.shape[0], -1))[:, 0]


class _DiscriminatorSequential(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(32, 64, 4, 2, 1, bias=False),
                                      nn.BatchNorm2d(64), nn.LeakyReLU(0.2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 1), nn.Flatten(0))

    def forward(self, x):
        return self.classifier(self.features(x))


def _train_step_freezing_d(G, D, opt_G, opt_D, real, z, labels=None):
    """Freezes D (requires_grad_(False)) during G's update: D's gradients stay cleared, as allowed."""
    c = {} if labels is None else {"labels": labels}
    fake = G(z, **c) if c else G(z)
    opt_D.zero_grad(set_to_none=True)
    d_loss = ref.discriminator_loss(D(real, *c.values()), D(fake.detach(), *c.values()))
    d_loss.backward()
    opt_D.step()
    for p in D.parameters():
        p.requires_grad_(False)
    opt_G.zero_grad(set_to_none=True)
    g_loss = ref.generator_loss(D(fake, *c.values()))
    g_loss.backward()
    opt_G.step()
    for p in D.parameters():
        p.requires_grad_(True)
    return float(d_loss.detach()), float(g_loss.detach())


def _train_step_generator_params(G, D, opt_G, opt_D, real, z, labels=None):
    """Clears gradients after each step instead of before; lists the conditioning explicitly."""
    args = [] if labels is None else [labels]
    for p in list(G.parameters()) + list(D.parameters()):
        p.grad = None
    fake = G(z, *args)
    d_loss = ref.discriminator_loss(D(real, *args), D(fake.detach(), *args))
    d_loss.backward()
    opt_D.step()
    opt_D.zero_grad()
    g_loss = ref.generator_loss(D(fake, *args))
    g_loss.backward()
    opt_G.step()
    opt_G.zero_grad()
    return d_loss.item(), g_loss.item()


class _CondGeneratorSequential(nn.Module):
    def __init__(self, z_dim=64, n_classes=10):
        super().__init__()
        self.labels = nn.Embedding(num_embeddings=n_classes, embedding_dim=16)
        self.net = _GeneratorNestedBlocks(z_dim + 16)

    def forward(self, z, labels):
        return self.net(torch.hstack([z, self.labels(labels)]))


class _CondDiscriminatorReversed(nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()
        self.body = _DiscriminatorReversed()
        self.body.conv1 = nn.Conv2d(2, 32, kernel_size=4, stride=2, padding=1)
        self.embedding = nn.Embedding(n_classes, 28 * 28)

    def forward(self, x, labels):
        return self.body(torch.cat([x, self.embedding(labels).unflatten(1, (1, 28, 28))], 1))


def _reparameterize_as_worded(mu, logvar, generator=None):
    """ε drawn exactly as the docstring words it: torch.randn(mu.shape, generator=...), float32."""
    return mu + torch.exp(logvar / 2) * torch.randn(mu.shape, generator=generator)


def _reparameterize_normal_(mu, logvar, generator=None):
    return torch.empty_like(mu).normal_(generator=generator).mul(logvar.mul(0.5).exp()).add(mu)


def _vae_loss_distributions(x_logits, x, mu, logvar):
    recon = -torch.distributions.Bernoulli(logits=x_logits, validate_args=False).log_prob(x).flatten(1).sum(1)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return (recon + torch.distributions.kl_divergence(q, p).sum(1)).mean()


def _vae_loss_loop(x_logits, x, mu, logvar):
    total = 0
    for i in range(len(x)):
        recon = F.binary_cross_entropy_with_logits(x_logits[i], x[i], reduction="sum")
        total = total + recon - 0.5 * torch.sum(1 + logvar[i] - mu[i] ** 2 - torch.exp(logvar[i]))
    return total / len(x)


VARIANTS = [
    ("generator", {"Generator": _GeneratorVariant}),
    ("generator", {"Generator": _GeneratorDeclaredOutOfOrder}),
    ("generator", {"Generator": _GeneratorNestedBlocks}),
    ("discriminator", {"Discriminator": _DiscriminatorReversed}),
    ("discriminator", {"Discriminator": _DiscriminatorSequential}),
    ("gan_losses", {"discriminator_loss": lambda r, f: -(F.logsigmoid(r).mean() + F.logsigmoid(-f).mean()),
                    "generator_loss": lambda f: F.binary_cross_entropy_with_logits(f, torch.ones_like(f))}),
    ("gan_losses", {"discriminator_loss": lambda r, f: -torch.distributions.Bernoulli(logits=r).log_prob(
        torch.ones_like(r)).mean() - torch.distributions.Bernoulli(logits=f).log_prob(torch.zeros_like(f)).mean(),
                    "generator_loss": lambda f: -torch.distributions.Bernoulli(logits=f).log_prob(
                        torch.ones_like(f)).mean()}),
    ("train_step", {"gan_train_step": _train_step_freezing_d, "discriminator_loss": ref.discriminator_loss,
                    "generator_loss": ref.generator_loss}),
    ("train_step", {"gan_train_step": _train_step_generator_params, "discriminator_loss": ref.discriminator_loss,
                    "generator_loss": ref.generator_loss}),
    ("conditional", {"CondGenerator": _CondGeneratorSequential, "CondDiscriminator": _CondDiscriminatorReversed}),
    ("conditional", {"CondGenerator": _CondGeneratorSequential, "CondDiscriminator": _CondDiscriminatorVariant}),
    ("vae", {"reparameterize": _reparameterize_as_worded, "vae_loss": _vae_loss_distributions}),
    ("vae", {"reparameterize": _reparameterize_normal_, "vae_loss": _vae_loss_loop}),
    ("discriminator", {"Discriminator": _DiscriminatorVariant}),
    ("gan_losses", {"discriminator_loss": _d_loss_variant, "generator_loss": _g_loss_variant}),
    ("train_step", {"gan_train_step": _train_step_variant, "discriminator_loss": ref.discriminator_loss,
                    "generator_loss": ref.generator_loss}),
    ("conditional", {"CondGenerator": _CondGeneratorVariant, "CondDiscriminator": _CondDiscriminatorVariant}),
    ("vae", {"reparameterize": _reparameterize_variant, "vae_loss": _vae_loss_variant}),
]


# reference passes, mutants caught (≥ 2 per exercise), variants pass: see tests/mutation.py
globals().update(exercise_tests(ref, EXERCISES, MUTANTS, VARIANTS))
globals().update(seed_sweep_tests(ref, EXERCISES, MUTANTS, VARIANTS))


def test_train_step_is_not_blamed_for_a_wrong_loss():
    """check_train_step uses the student's own losses, so a saturating G loss costs only gan_losses; so
    does the judged hidden test, whose verdict replays the step with that loss as the kernel saw it."""
    saturating = mutate(ref.generator_loss, [("return F.softplus(-fake_logits).mean()",
                                              "return -F.softplus(fake_logits).mean()")])
    step = mutate(ref.gan_train_step, [("generator_loss(D(fake, *cond))", "saturating(D(fake, *cond))")])
    step.__globals__["saturating"] = saturating
    check_train_step(step, ref.discriminator_loss, saturating)
    hidden.hidden_train_step(step, ref.discriminator_loss, saturating)
    with pytest.raises(AssertionError, match="G's parameters differ"):  # a step with the right loss differs
        hidden.hidden_train_step(ref.gan_train_step, ref.discriminator_loss, saturating)


# ---------------------------------------------------------------- the judge and its metrics

def test_frechet_distance_matches_closed_forms():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    # same covariance, shifted mean: FD = |shift|²
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift.pow(2).sum()), rel=1e-6)
    # diagonal covariances: FD = Σ (σ_a − σ_b)² (+ the mean term, ≈ 0 here)
    scale = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    b = torch.randn(20000, 3, generator=g, dtype=torch.float64) * scale
    assert frechet_distance(a, b) == pytest.approx(float((1 - scale).pow(2).sum()), abs=0.1)


def test_judge_reads_real_digits_and_spots_mode_collapse():
    from course.data import load_mnist

    judge = load_judge()
    X, y = load_mnist("test", full=False)
    real = judge_samples(X * 2 - 1, judge, labels=y, real=X)
    assert real["label_accuracy"] >= 0.97  # measured 0.973 when the shipped weights were trained
    assert real["confident"] >= 0.9 and real["class_entropy"] > 2.29 and real["fcd"] == pytest.approx(0, abs=1e-3)
    ones = X[y == 1][:100].repeat(10, 1, 1, 1) * 2 - 1  # a "generator" that only draws ones
    collapsed = judge_samples(ones, judge, real=X)
    assert collapsed["class_entropy"] < 0.3 and collapsed["fcd"] > 10 * judge_samples(X[:500] * 2 - 1, judge, real=X[500:])["fcd"]
    noise = judge_samples(torch.rand(1000, 1, 28, 28) * 2 - 1, judge, real=X)
    assert noise["confident"] < real["confident"] and noise["fcd"] > collapsed["fcd"] / 10


def test_train_gan_runs_and_records_history():
    from course.data import load_mnist

    X, y = load_mnist("train", full=False)
    G, D, hist = exp.train_gan(X[:256], y[:256], exp.GANConfig(steps=6, batch_size=32), conditional=True,
                               snapshot_every=3, progress=False)
    assert len(hist["d_loss"]) == 6 and all(torch.isfinite(torch.tensor(hist["d_loss"] + hist["g_loss"])))
    assert [s for s, _ in hist["snapshots"]] == [3, 6] and hist["snapshots"][0][1].shape == (64, 1, 28, 28)
    assert not G.training and not D.training


def test_kmeans_finds_separated_groups_and_draw_clusters_follows_their_shares():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    truth = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    points = centres[truth] + 0.5 * torch.randn(100, 2, generator=g)
    found = exp.kmeans(points, 3, seed=1)
    # the same partition up to the clusters' numbering: each true group maps to one found cluster
    assert all(len(found[truth == t].unique()) == 1 for t in range(3)) and len(found.unique()) == 3
    drawn = exp.draw_clusters(truth, 20000, 3, generator=g)
    share = torch.bincount(drawn, minlength=3).float() / 20000
    assert torch.allclose(share, torch.tensor([0.6, 0.3, 0.1]), atol=0.02)


def test_self_conditioned_gan_trains_on_more_clusters_than_digits():
    from course.data import load_mnist

    X, _ = load_mnist("train", full=False)
    clusters = exp.kmeans(X[:256].flatten(1), 20, iters=5)
    G, D, hist = exp.train_gan(X[:256], clusters, exp.GANConfig(steps=3, batch_size=32), conditional=True,
                               n_classes=20, progress=False)
    assert G.embed.num_embeddings == 20 and D.embed.num_embeddings == 20
    assert exp.sample(G, torch.randn(5, 64), torch.tensor([0, 5, 10, 15, 19])).shape == (5, 1, 28, 28)


def test_verdicts_decide_on_doctored_observations():
    """The judge's verdicts check everything a pass rests on: the reference's honest observations pass,
    and each one doctored as a hostile kernel could fails (a generator of the wrong shape, an eval-mode
    output off by 1e-6, a discriminator that squeezed its batch away, an infinite loss, a missing
    gradient, a label that changes nothing, a VAE loss of the wrong sign; for the training step, D or G
    off by 1e-6 after a call, the losses returned in the wrong order, the student's loss seen at other
    logits than the expected step's, or with a doubled gradient, or not at all)."""
    honest = {
        gan.generator_verdict: gan.generator_run(ref.Generator, seed=6),
        gan.discriminator_verdict: gan.discriminator_run(ref.Discriminator, seed=6),
        gan.gan_losses_verdict: gan.gan_losses_run(ref.discriminator_loss, ref.generator_loss, seed=6),
        gan.conditional_verdict: gan.conditional_run(ref.CondGenerator, ref.CondDiscriminator, seed=6),
        gan.vae_verdict: gan.vae_run(ref.reparameterize, ref.vae_loss, seed=6),
        day5_gan.train_step_verdict: day5_gan.train_step_run(ref.gan_train_step, ref.discriminator_loss,
                                                             ref.generator_loss, seed=6),
    }
    doctored = [  # (verdict, doctor, what the message says)
        (gan.generator_verdict, lambda o: o[1].__setitem__("shape", [3, 1, 14, 14]), "expected \\(3, 1, 28, 28\\)"),
        (gan.generator_verdict, lambda o: o[0]["outs"][1].add_(1e-6), "eval mode"),
        (gan.discriminator_verdict, lambda o: o["shapes"].__setitem__(1, []), "squeeze"),
        (gan.gan_losses_verdict, lambda o: o[1].__setitem__("g", torch.tensor(float("inf"), dtype=torch.float64)),
         "logit form"),
        (gan.gan_losses_verdict, lambda o: o[0].__setitem__("grads", None), "gradient of the losses"),
        (gan.conditional_verdict, lambda o: o["D_labels"].__setitem__(1, o["D_labels"][0].clone()), "ignores the label"),
        (gan.vae_verdict, lambda o: o.__setitem__("loss", -o["loss"]), "negative ELBO"),
        (day5_gan.train_step_verdict, lambda o: o["cases"][0][1]["D"][0].add_(1e-6), "D's parameters differ"),
        (day5_gan.train_step_verdict, lambda o: o["cases"][1][0]["G"][2].add_(1e-6), "G's parameters differ"),
        (day5_gan.train_step_verdict, lambda o: o["cases"][0][0]["returned"].reverse(), "D's first"),
        (day5_gan.train_step_verdict, lambda o: o["cases"][1][1]["loss_calls"][0]["logits"][0].add_(1e-3),
         "logits your loss was called on"),
        (day5_gan.train_step_verdict, lambda o: o["cases"][0][0]["loss_calls"][1]["grads"][0].mul_(2),
         "G's parameters differ"),
        (day5_gan.train_step_verdict, lambda o: o["cases"][0][1]["loss_calls"].pop(), "missing"),
    ]
    doctored_observations_fail(honest, doctored, seed=6)
