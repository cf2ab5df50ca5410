# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # DAY 5 — Generative adversarial networks (敵対的生成ネットワーク, GAN)
#
# A GAN makes data that does not exist yet, here handwritten digits, from random noise. Two
# networks play a game:
#
# - the **Generator** $G$ (生成器) turns noise $z \sim \mathcal N(0, I)$ into an image;
# - the **Discriminator** $D$ (識別器) tells real images from $G$'s fakes. $D$ updates its
#   parameters to make its classification error as small as possible, and $G$ to make it as
#   large as possible:
#
# $$\min_G \max_D \; \mathbb E_{x}[\log D(x)] + \mathbb E_{z}[\log(1 - D(G(z)))]$$
#
# Today: a DCGAN generator and discriminator, the two losses in their numerically stable
# form, one step of the game, a conditional GAN that draws the digit you ask for, and, as
# the other generative family, a variational autoencoder (VAE). A small MNIST classifier
# (the *judge*, shipped with the course) scores the samples. GANs are known to be hard
# to train and unstable (学習が不安定), and the loss curves below show it.
#
# Fill in every `# YOUR CODE HERE`; each check compares your code with torch in float64.

# %% tags=["locked:setup"]
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from course import get_device, grading_mode, quick_mode
from course.checks.day5_gan import (check_conditional, check_discriminator, check_gan_losses, check_generator,
                                check_train_step, check_vae)
from course.data import load_mnist
from course.judge import judge_samples, load_judge

device = get_device("auto")
QUICK = quick_mode()
GAN_STEPS = 30 if grading_mode() else (1000 if QUICK else 3000)
print(f"device={device}, quick experiments={QUICK}, GAN steps={GAN_STEPS}")

# %% [markdown]
# ## 1. The generator (生成器)
#
# DCGAN's recipe (Radford et al. 2016): no pooling; **transposed convolutions** with stride 2
# double the size ($7 \to 14 \to 28$); BatchNorm and ReLU in between; **tanh** at the end, so
# pixels lie in $[-1, 1]$ like the real images after $x \mapsto 2x - 1$. A transposed
# convolution with kernel 4, stride 2 and padding 1 maps size $n$ to $(n - 1) \cdot 2 - 2 + 4 = 2n$.
# Between the two upsamplings sits one ordinary $3 \times 3$ convolution (padding 1, so the size
# stays $14 \times 14$): it costs little and gives the generator room to shape strokes before the
# last layer. In 3,000-step CPU runs it lowered the Fréchet distance of the samples (defined
# after section 4) from about 60 to about 43, the mean over three seeds.

# %% tags=["solution:generator"]
# include: Generator

# %% tags=["test:test_generator:2"]
"""Generator has the stated layers, output (N, 1, 28, 28) in [-1, 1] (2 points)."""
check_generator(Generator)
### BEGIN HIDDEN TESTS
from solutions.day5_gan.hidden import hidden_generator
hidden_generator(Generator)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. The discriminator (識別器)
#
# A small CNN with strided convolutions instead of pooling and **LeakyReLU(0.2)**, so that
# some gradient flows back to $G$ even for negative pre-activations. It returns a **logit**
# $s$ per image, with $D(x) = \sigma(s)$; the sigmoid is left to the loss.

# %% tags=["solution:discriminator"]
# include: Discriminator

# %% tags=["test:test_discriminator:2"]
"""Discriminator returns one logit per image, shape (N,) (2 points)."""
check_discriminator(Discriminator)
### BEGIN HIDDEN TESTS
from solutions.day5_gan.hidden import hidden_discriminator
hidden_discriminator(Discriminator)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. The losses
#
# $D$ minimises binary cross-entropy with label 1 for real and 0 for fake. With logits $s$,
# $\log \sigma(s) = -\mathrm{softplus}(-s)$ and $\log(1 - \sigma(s)) = -\mathrm{softplus}(s)$,
# which never compute $\log 0$:
#
# $$L_D = \mathrm{mean}\,\mathrm{softplus}(-s_{\text{real}}) + \mathrm{mean}\,\mathrm{softplus}(s_{\text{fake}})$$
#
# For $G$, the minimax loss $\log(1 - D(G(z)))$ **saturates**: early on $D$ rejects every fake,
# $D(G(z)) \approx 0$, and that loss is flat there. Goodfellow et al. instead let $G$ maximise
# $\log D(G(z))$, which has the same fixed point and strong gradients when $G$ is bad:
#
# $$L_G = -\mathrm{mean} \log \sigma(s_{\text{fake}}) = \mathrm{mean}\,\mathrm{softplus}(-s_{\text{fake}})$$

# %% tags=["solution:gan_losses"]
# include: discriminator_loss, generator_loss

# %% tags=["test:test_gan_losses:2"]
"""The D and non-saturating G losses equal BCE with logits and stay finite (2 points)."""
check_gan_losses(discriminator_loss, generator_loss)
### BEGIN HIDDEN TESTS
from solutions.day5_gan.hidden import hidden_gan_losses
hidden_gan_losses(discriminator_loss, generator_loss)
### END HIDDEN TESTS

# %% [markdown]
# ### Why "non-saturating"?
#
# The gradient of each G loss with respect to the fake's logit $s$: the minimax one is
# $-\sigma(s)$, nearly 0 where $D$ is sure the image is fake ($s \ll 0$); yours is
# $\sigma(s) - 1$, nearly $-1$ there.

# %%
s = torch.linspace(-8, 4, 200, requires_grad=True)
(grad_ns,) = torch.autograd.grad(generator_loss(s) * len(s), s)
(grad_mm,) = torch.autograd.grad(-F.softplus(s).sum(), s)
plt.figure(figsize=(6, 3.5))
plt.plot(s.detach(), grad_mm, label="minimax: log(1 − D(G(z)))")
plt.plot(s.detach(), grad_ns, label="non-saturating: −log D(G(z))")
plt.axvspan(-8, -3, alpha=0.1, color="gray")
plt.xlabel("fake logit s (D is sure it is fake on the left)"); plt.ylabel("∂L_G/∂s"); plt.legend()
plt.show()

# %% [markdown]
# ## 4. One step of the game
#
# Each round: update $D$ once on a real batch and a fake batch, then update $G$ once through
# $D$. Two details matter:
#
# - `fake.detach()` in $D$'s loss: $D$'s update must not touch $G$ (and $G$'s graph is
#   still needed for $G$'s own backward);
# - $G$'s backward also fills $D$'s `.grad`; only `opt_G` steps, and $D$'s gradients are
#   cleared before $D$'s next backward.

# %% tags=["solution:train_step"]
# include: gan_train_step

# %% tags=["test:test_train_step:3"]
"""gan_train_step makes one D step then one G step, exactly (3 points)."""
check_train_step(gan_train_step, discriminator_loss, generator_loss)
### BEGIN HIDDEN TESTS
from solutions.day5_gan.hidden import hidden_train_step
hidden_train_step(gan_train_step, discriminator_loss, generator_loss)
### END HIDDEN TESTS

# %% [markdown]
# ### Experiment: training a DCGAN
#
# Adam with $\beta_1 = 0.5$ for both players, DCGAN's weight initialisation, batches of 64 from
# the 4,000 bundled training digits. DCGAN's paper used lr $2 \cdot 10^{-4}$; with our few
# thousand steps $2 \cdot 10^{-3}$ gives clearly better digits (Fréchet distance about half), so
# that is the default here. The grid shows the same 64 noise vectors as training goes on. The
# losses do not go down the way a classifier's do: each player's loss is the other one's gain.
# Graded runs train only 60 steps (blobs); run the notebook yourself for 3,000.

# %%
# include: GANConfig, dcgan_init, train_gan, sample, show_grid

# %%
X_train, y_train = load_mnist("train")
X_test, _ = load_mnist("test")
G, D, hist = train_gan(X_train, y_train, GANConfig(steps=GAN_STEPS), device=device, snapshot_every=GAN_STEPS // 3)
fig, axes = plt.subplots(1, len(hist["snapshots"]) + 1, figsize=(4 * (len(hist["snapshots"]) + 1), 4))
for ax, (step, snap) in zip(axes, hist["snapshots"]):
    show_grid(ax, snap, title=f"step {step}")
axes[-1].plot(hist["d_loss"], label="L_D", alpha=0.7); axes[-1].plot(hist["g_loss"], label="L_G", alpha=0.7)
axes[-1].set(xlabel="step", title="losses"); axes[-1].legend()
plt.show()

# %% [markdown]
# ### How good are the samples?
#
# The judge, a CNN trained on the same bundled digits (97% test accuracy), reads 1,000 samples:
#
# - **confident**: the fraction it classifies with probability at least 0.9 (real test
#   digits: 0.95);
# - **class entropy** of its predicted classes: $\ln 10 \approx 2.30$ when all digits appear
#   equally often, near 0 when the generator produces one digit only (**mode collapse**);
# - **FCD**, the Fréchet distance between its features of the samples and of real digits
#   (FID's formula with a digit classifier; 0 for identical distributions).

# %%
judge = load_judge(device)
z = torch.randn(1000, G.z_dim, generator=torch.Generator().manual_seed(1)).to(device)
scores = judge_samples(sample(G, z), judge, real=X_test.to(device))
print(", ".join(f"{k} {v:.3f}" for k, v in scores.items()))

# %% [markdown]
# ## 5. Conditional GAN
#
# A **conditional GAN** (Mirza & Osindero) gives both players the label $y$: $G(z, y)$ must
# draw digit $y$, and $D(x, y)$ judges whether $x$ is a real image *of digit $y$*. Here $G$
# concatenates a learned label embedding to $z$, and $D$ turns the label into a learned
# $28 \times 28$ map stacked onto the image as a second channel.

# %% tags=["solution:conditional"]
# include: CondGenerator, CondDiscriminator

# %% tags=["test:test_conditional:2"]
"""CondGenerator and CondDiscriminator use each sample's own label (2 points)."""
check_conditional(CondGenerator, CondDiscriminator)
### BEGIN HIDDEN TESTS
from solutions.day5_gan.hidden import hidden_conditional
hidden_conditional(CondGenerator, CondDiscriminator)
### END HIDDEN TESTS

# %% [markdown]
# ### Experiment: ask for a digit
#
# Each row below asks for one digit; the judge checks that you got the one you asked for.

# %%
CG, CD, chist = train_gan(X_train, y_train, GANConfig(steps=GAN_STEPS), conditional=True, device=device)
wanted = torch.arange(1000).remainder(10).to(device)
imgs = sample(CG, z, wanted)
scores = judge_samples(imgs, judge, labels=wanted, real=X_test.to(device))
print(", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
order = torch.cat([torch.nonzero(wanted[:100] == d).flatten()[:8] for d in range(10)])
fig, ax = plt.subplots(figsize=(5, 6)); show_grid(ax, imgs[order].cpu(), title="rows: digits 0–9"); plt.show()

# %% [markdown]
# ### Experiment: no labels? Condition on clusters (self-conditioned GAN)
#
# The conditional GAN's digits are clearer than the plain DCGAN's: being told *which* digit to
# draw makes $G$'s job easier, and $D$ can no longer be fooled by a shape halfway between two
# digits. Without labels we can still split the data: **k-means** (k平均法) groups the training
# images by their pixels alone into $k = 20$ clusters. On the bundled digits most clusters hold
# one digit (the 0s fall into three clusters of different shapes), while three clusters mix 4s,
# 7s and 9s, which look alike in pixel space. Training $G(z, c)$ and $D(x, c)$ on the
# cluster $c$ instead of the label is a **self-conditioned GAN** (Liu et al. 2020). It is still an
# unconditional model of the images: to sample, draw $c$ with its share of the data, then $z$,
# so $p(x) = \sum_c p(c)\, p(x \mid c)$. No label is used anywhere.
#
# Measured on the bundled digits (2-core CPU, 1,000 samples judged, seeds 0–2): the plain DCGAN
# above is 61–67% confident after 3,000 steps; the self-conditioned GAN 78–82% after 2,000, with
# the same class entropy (2.28–2.30 nats: all ten digits still appear) and a Fréchet distance in
# the same range (27–46 against 38–43): the digits are clearer without becoming less varied. `course run day5_gan` trains it for 2,000 steps.

# %%
# include: kmeans, draw_clusters

# %%
clusters = kmeans(X_train.flatten(1), 20, iters=5 if grading_mode() else 50)  # graded runs: 5 rounds only
SG, SD, _ = train_gan(X_train, clusters, GANConfig(steps=GAN_STEPS), conditional=True, n_classes=20, device=device)
drawn = draw_clusters(clusters, 1000, 20, generator=torch.Generator().manual_seed(3)).to(device)
scores = judge_samples(sample(SG, z, drawn), judge, real=X_test.to(device))
print(", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
per_cluster = sample(SG, z[:160], torch.arange(160).div(8, rounding_mode="floor").to(device))
fig, ax = plt.subplots(figsize=(5, 12)); show_grid(ax, per_cluster.cpu(), title="rows: clusters 0–19"); plt.show()

# %% [markdown]
# ## 6. The other family: a variational autoencoder (VAE)
#
# An autoencoder (オートエンコーダ) squeezes $x$ into a code $z$ and rebuilds it, but says
# nothing about where codes lie. A VAE assumes $z \sim \mathcal N(0, I)$: the encoder outputs
# a Gaussian $q(z \mid x) = \mathcal N(\mu, \sigma^2)$, and training maximises the ELBO
#
# $$\log p(x) \ge \mathbb E_{q}[\log p(x \mid z)] - \mathrm{KL}(q(z \mid x) \,\|\, \mathcal N(0, I)),
# \qquad \mathrm{KL} = -\tfrac12 \sum_j (1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2)$$
#
# Sampling $z$ would cut the gradient, so the **reparameterisation trick** writes
# $z = \mu + \sigma \odot \varepsilon$ with $\varepsilon \sim \mathcal N(0, I)$: the randomness moves
# into $\varepsilon$ and gradients reach $\mu$ and $\sigma$. Then new digits are just
# `decoder(randn)`.

# %% tags=["solution:vae"]
# include: reparameterize, vae_loss

# %% tags=["test:test_vae:2"]
"""reparameterize and vae_loss follow the formulas (2 points)."""
check_vae(reparameterize, vae_loss)
### BEGIN HIDDEN TESTS
from solutions.day5_gan.hidden import hidden_vae
hidden_vae(reparameterize, vae_loss)
### END HIDDEN TESTS

# %%
# include: VAE, train_vae

# %%
vae, vae_losses = train_vae(X_train, steps=100 if grading_mode() else 2000, device=device)
with torch.no_grad():
    vae_imgs = torch.sigmoid(vae.decoder(torch.randn(1000, 16, generator=torch.Generator().manual_seed(2)).to(device)))
print(", ".join(f"{k} {v:.3f}" for k, v in judge_samples(vae_imgs * 2 - 1, judge, real=X_test.to(device)).items()))
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
show_grid(axes[0], (vae_imgs[:64] * 2 - 1).cpu(), title="VAE samples")
axes[1].plot(vae_losses); axes[1].set(xlabel="step", ylabel="−ELBO per image", title="VAE training")
plt.show()

# %% [markdown]
# ## Summary
#
# - GAN: two networks, one game; $D$ learns the loss that $G$ is trained with, so no
#   hand-written loss on images is needed, at the price of unstable training.
# - Write the losses with logits; use the non-saturating $G$ loss; detach the fake in $D$'s step.
# - Conditioning on the label gives control over what is drawn; conditioning on k-means
#   clusters helps even when there are no labels.
# - VAE samples are smoother (blurrier) and its training is a plain minimisation; GAN
#   samples are sharper.
# - Beyond this notebook: SRGAN (super-resolution), pix2pix and CycleGAN (image-to-image
#   translation) build on the same game.
