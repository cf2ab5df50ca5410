"""Hidden tests of DAY 5: the visible checks again with fresh seeds (new weights, noise and labels)."""
from __future__ import annotations

from autograder.hidden import run_hidden as _run
from course.checks.day5_gan import (check_conditional, check_discriminator, check_gan_losses, check_generator,
                                check_train_step, check_vae)

# The bug planted in the bundled "buggy" sample: the saturating minimax generator loss.
SAMPLE_BUG = {
    "cell": "gan_losses",
    "replace": [("    return F.softplus(-fake_logits).mean()\n", "    return -F.softplus(fake_logits).mean()\n")],
}


def hidden_generator(Generator):
    _run("Generator", check_generator, Generator)


def hidden_discriminator(Discriminator):
    _run("Discriminator", check_discriminator, Discriminator)


def hidden_gan_losses(discriminator_loss, generator_loss):
    _run("discriminator_loss and generator_loss", check_gan_losses, discriminator_loss, generator_loss)


def hidden_train_step(gan_train_step, discriminator_loss, generator_loss):
    _run("gan_train_step", check_train_step, gan_train_step, discriminator_loss, generator_loss)


def hidden_conditional(CondGenerator, CondDiscriminator):
    _run("CondGenerator and CondDiscriminator", check_conditional, CondGenerator, CondDiscriminator)


def hidden_vae(reparameterize, vae_loss):
    _run("reparameterize and vae_loss", check_vae, reparameterize, vae_loss)
