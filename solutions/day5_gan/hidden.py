"""Hidden tests of DAY 5, all judged outside the student's process (autograder/judge.py): the ``_run``
half of the visible check in the kernel with fresh seeds (new weights, noise and labels), its
``_verdict`` half in the grader. The training step's expected step uses the student's own loss
functions, so that a mistake there is not charged twice: the kernel sends what they returned, and
their gradients, at the logits the expected step called them on, and the grader replays that step
itself (course/checks/day5_gan.py). Nothing here imports the reference: the kernel cannot see it
(autograder/kernel_sandbox.py)."""
from __future__ import annotations

from autograder.judge import cell_function, per_seed, warm_up_optimizers
from course.checks import day5_gan
from course.checks import gan_pieces as gan

# The bug planted in the bundled "buggy" sample: the saturating minimax generator loss.
SAMPLE_BUG = {
    "cell": "gan_losses",
    "replace": [("    return F.softplus(-fake_logits).mean()\n", "    return -F.softplus(fake_logits).mean()\n")],
}


# Keyed by the test cell's grade_id.
JUDGED = {
    "test_generator": per_seed("Generator", gan.generator_run, gan.generator_verdict),
    "test_discriminator": per_seed("Discriminator", gan.discriminator_run, gan.discriminator_verdict),
    "test_gan_losses": per_seed("discriminator_loss and generator_loss", gan.gan_losses_run, gan.gan_losses_verdict),
    "test_conditional": per_seed("CondGenerator and CondDiscriminator", gan.conditional_run, gan.conditional_verdict),
    "test_vae": per_seed("reparameterize and vae_loss", gan.vae_run, gan.vae_verdict),
    "test_train_step": per_seed("gan_train_step", day5_gan.train_step_run, day5_gan.train_step_verdict),
}

hidden_generator = cell_function(JUDGED, "test_generator")
hidden_discriminator = cell_function(JUDGED, "test_discriminator")
hidden_gan_losses = cell_function(JUDGED, "test_gan_losses")  # (discriminator_loss, generator_loss)
hidden_conditional = cell_function(JUDGED, "test_conditional")  # (CondGenerator, CondDiscriminator)
hidden_vae = cell_function(JUDGED, "test_vae")  # (reparameterize, vae_loss)

hidden_train_step = cell_function(JUDGED, "test_train_step")  # (gan_train_step, discriminator_loss, generator_loss)

warm_up = warm_up_optimizers  # run by the grader while the kernel starts (judge.judged_tests): the step uses Adam
