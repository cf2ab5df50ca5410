"""DAY 5, generative adversarial networks (敵対的生成ネットワーク, GAN): reference solutions.

Single source of truth for the DAY 5 notebook (see solutions/day1_optimization/reference.py
for how `course build` uses it).

References:
    - Goodfellow et al. 2014, "Generative Adversarial Nets" (the minimax game and the
      non-saturating generator loss).
    - Radford et al. 2016, "Unsupervised Representation Learning with Deep Convolutional GANs"
      (DCGAN: transposed convolutions, BatchNorm, ReLU/LeakyReLU, Adam lr 2e-4, β1 = 0.5).
    - Mirza & Osindero 2014, "Conditional Generative Adversarial Nets".
    - Liu et al. 2020, "Diverse Image Generation via Self-Conditioned GANs" (condition on
      k-means clusters of the data instead of labels).
    - Kingma & Welling 2014, "Auto-Encoding Variational Bayes" (VAE, reparameterisation trick).
    - Heusel et al. 2017 (the Fréchet distance, computed here on a digit classifier's features).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


# ----------------------------------------------------------------------------- models


class Generator(nn.Module):
    """DCGAN generator (生成器): noise z (N, z_dim) → image (N, 1, 28, 28) in [-1, 1].

    Layers, in this order (``bias=False`` where a BatchNorm follows):
        Linear(z_dim, 64·7·7, bias=False) → reshape to (N, 64, 7, 7) → BatchNorm2d(64) → ReLU
        → ConvTranspose2d(64, 32, 4, stride=2, padding=1, bias=False) → BatchNorm2d(32) → ReLU   # (N, 32, 14, 14)
        → Conv2d(32, 32, 3, padding=1, bias=False) → BatchNorm2d(32) → ReLU                      # (N, 32, 14, 14)
        → ConvTranspose2d(32, 1, 4, stride=2, padding=1) → tanh                                  # (N, 1, 28, 28)
    The 3×3 convolution at 14×14 adds no size, only depth: with it the 3,000-step CPU run's
    Fréchet distance falls from 56-69 to 38-47 (3 seeds) at about the same time per step.
    """

    def __init__(self, z_dim: int = 64):
        super().__init__()
        self.z_dim = z_dim
        ### BEGIN SOLUTION
        self.net = nn.Sequential(
            nn.Linear(z_dim, 64 * 7 * 7, bias=False), nn.Unflatten(1, (64, 7, 7)),
            nn.BatchNorm2d(64), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1), nn.Tanh(),
        )
        ### END SOLUTION

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.net(z)
        ### END SOLUTION


class Discriminator(nn.Module):
    """DCGAN discriminator (識別器): image (N, 1, 28, 28) → one logit per image, shape (N,).

    Layers, in this order:
        Conv2d(1, 32, 4, stride=2, padding=1) → LeakyReLU(0.2)                                # (N, 32, 14, 14)
        → Conv2d(32, 64, 4, stride=2, padding=1, bias=False) → BatchNorm2d(64) → LeakyReLU(0.2)  # (N, 64, 7, 7)
        → flatten → Linear(64·7·7, 1)
    It returns the logit (no sigmoid): the losses use the numerically stable logit form.
    """

    def __init__(self):
        super().__init__()
        ### BEGIN SOLUTION
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 1),
        )
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.net(x).squeeze(1)
        ### END SOLUTION


# ----------------------------------------------------------------------------- losses


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D's loss: binary cross-entropy with label 1 for real and 0 for fake, each averaged over its batch:

        L_D = −mean log σ(D(x)) − mean log(1 − σ(D(G(z))))
            = mean softplus(−real_logits) + mean softplus(fake_logits)

    using log σ(s) = −softplus(−s) and log(1 − σ(s)) = −softplus(s), which stay finite for any s.
    Shape: real_logits (N,), fake_logits (M,) → scalar.
    """
    ### BEGIN SOLUTION
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    ### END SOLUTION


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """G's non-saturating loss: L_G = −mean log σ(D(G(z))) = mean softplus(−fake_logits).

    (The minimax form would minimise mean log(1 − σ(D(G(z)))), whose gradient vanishes exactly
    when D confidently rejects the fakes, i.e. early in training.) Shape: (M,) → scalar.
    """
    ### BEGIN SOLUTION
    return F.softplus(-fake_logits).mean()
    ### END SOLUTION


# ----------------------------------------------------------------------------- one training step


def gan_train_step(G: nn.Module, D: nn.Module, opt_G: torch.optim.Optimizer, opt_D: torch.optim.Optimizer,
                   real: torch.Tensor, z: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[float, float]:
    """One round of the game: first one D update, then one G update.

    1. fake = G(z); L_D = discriminator_loss(D(real), D(fake.detach())); D takes a step.
       ``.detach()``: D's loss must not send gradients into G.
    2. L_G = generator_loss(D(fake)); G takes a step. D's parameters get gradients here too,
       but only opt_G steps; D's gradients are cleared before its next update.
    D is called on the real and the fake batch separately (BatchNorm statistics per batch).
    With ``labels`` (N,), the models are conditional: call G(z, labels), D(x, labels).
    Returns (L_D, L_G) as Python floats.
    """
    cond = () if labels is None else (labels,)
    ### BEGIN SOLUTION
    fake = G(z, *cond)
    d_loss = discriminator_loss(D(real, *cond), D(fake.detach(), *cond))
    opt_D.zero_grad()
    d_loss.backward()
    opt_D.step()
    g_loss = generator_loss(D(fake, *cond))
    opt_G.zero_grad()
    g_loss.backward()
    opt_G.step()
    ### END SOLUTION
    return d_loss.item(), g_loss.item()


# ----------------------------------------------------------------------------- conditional GAN


class CondGenerator(nn.Module):
    """Conditional generator: G(z, y). The label y (N,) is embedded by nn.Embedding(n_classes, 16)
    and concatenated to z; the rest is the Generator with input size z_dim + 16.
    Shape: z (N, z_dim), labels (N,) int64 → (N, 1, 28, 28) in [-1, 1]."""

    def __init__(self, z_dim: int = 64, n_classes: int = 10):
        super().__init__()
        self.z_dim = z_dim
        ### BEGIN SOLUTION
        self.embed = nn.Embedding(n_classes, 16)
        self.body = Generator(z_dim + 16)
        ### END SOLUTION

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.body(torch.cat([z, self.embed(labels)], dim=1))
        ### END SOLUTION


class CondDiscriminator(nn.Module):
    """Conditional discriminator: D(x, y). The label is embedded by nn.Embedding(n_classes, 28·28),
    reshaped to an image (N, 1, 28, 28) and stacked with x as a second channel; the rest is the
    Discriminator with 2 input channels (first conv: Conv2d(2, 32, 4, stride=2, padding=1)). Shape: x (N, 1, 28, 28), labels (N,) → logits (N,)."""

    def __init__(self, n_classes: int = 10):
        super().__init__()
        ### BEGIN SOLUTION
        self.embed = nn.Embedding(n_classes, 28 * 28)
        self.body = Discriminator()
        self.body.net[0] = nn.Conv2d(2, 32, 4, stride=2, padding=1)
        ### END SOLUTION

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        y_map = self.embed(labels).view(-1, 1, 28, 28)  # (N, 1, 28, 28)
        return self.body(torch.cat([x, y_map], dim=1))
        ### END SOLUTION


# ----------------------------------------------------------------------------- VAE (the other generative family)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The reparameterisation trick (再パラメータ化): z = μ + σ ⊙ ε with σ = exp(logvar / 2), ε ~ N(0, I)
    drawn from ``generator`` with torch.randn(mu.shape, generator=...), in mu's dtype or float32 (both
    accepted): the randomness sits in ε, so gradients reach μ and logvar. Shape: (N, D) → (N, D)."""
    ### BEGIN SOLUTION
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + torch.exp(0.5 * logvar) * eps
    ### END SOLUTION


def vae_loss(x_logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Negative ELBO per sample, averaged over the batch:

        −ELBO = −E_q[log p(x|z)] + KL(q(z|x) ‖ N(0, I))
              = BCE_with_logits(x_logits, x) summed over pixels − ½ Σ_j (1 + logvar_j − μ_j² − exp(logvar_j))

    Shape: x_logits and x (N, 1, 28, 28) with x in [0, 1]; mu, logvar (N, D) → scalar.
    """
    ### BEGIN SOLUTION
    recon = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").flatten(1).sum(1)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
    return (recon + kl).mean()
    ### END SOLUTION


class VAE(nn.Module):
    """A small fully connected VAE (オートエンコーダ with a Gaussian latent z ~ N(0, I)); provided."""

    def __init__(self, z_dim: int = 16, hidden: int = 400):
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, 2 * z_dim))
        self.decoder = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, 28 * 28),
                                     nn.Unflatten(1, (1, 28, 28)))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return self.decoder(reparameterize(mu, logvar, generator)), mu, logvar
