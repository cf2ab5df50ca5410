"""Hidden tests of DAY 1. Each function takes the student's object(s) and raises
AssertionError with a teaching message when something is wrong.

They reuse the visible checks with fresh seeds and other hyper-parameters (including
settings where the placement of eps or per-group options matter), and compare with torch,
or with the stated formula where torch has no equivalent (the schedules). They never import the
reference: the kernel that runs them cannot see it (autograder/kernel_sandbox.py).
"""
from __future__ import annotations

import torch

from autograder.guard import check_own_code
from autograder.hidden import fresh_seed, hidden_case
from course.checks import check_init, check_minibatches, check_optimizer, check_schedule

# The bug planted in the bundled "buggy" sample submission (see `course build`):
# Adam without bias correction.
SAMPLE_BUG = {
    "cell": "adam",
    "replace": [("m_hat = m / (1 - beta1 ** t)", "m_hat = m"), ("v_hat = v / (1 - beta2 ** t)", "v_hat = v")],
}


def _optimizer_cases(student_cls, torch_cls, cases, torch_extra=None):
    check_own_code(student_cls)
    for desc, hparams, overrides in cases:
        seed = fresh_seed()
        with hidden_case(f"{student_cls.__name__} {desc}", seed):
            check_optimizer(student_cls, torch_cls, seed=seed, steps=10, torch_extra=torch_extra,
                            group_overrides=overrides, verbose=False,
                            **hparams)
    print(f"\u2713 hidden tests passed for {student_cls.__name__} ({len(cases)} settings)")


def hidden_sgd(SGD):
    _optimizer_cases(SGD, torch.optim.SGD, [
        ("lr=0.1", dict(lr=0.1), {"lr": 0.01}),
        ("lr=0.01", dict(lr=0.01), None),
    ])


def hidden_momentum(Momentum):
    _optimizer_cases(Momentum, torch.optim.SGD, [
        ("momentum=0.5", dict(lr=0.05, momentum=0.5), None),
        ("per-group momentum", dict(lr=0.01, momentum=0.9), {"momentum": 0.3}),
    ])


def hidden_nesterov(Nesterov):
    _optimizer_cases(Nesterov, torch.optim.SGD, [
        ("momentum=0.5", dict(lr=0.05, momentum=0.5), None),
        ("per-group momentum", dict(lr=0.01, momentum=0.95), {"momentum": 0.3, "lr": 0.02}),
    ], torch_extra=dict(nesterov=True))


def hidden_adagrad(AdaGrad):
    _optimizer_cases(AdaGrad, torch.optim.Adagrad, [
        ("large eps", dict(lr=0.1, eps=1e-2), None),
        ("per-group eps", dict(lr=0.3, eps=1e-10), {"eps": 0.5}),
    ])


def hidden_rmsprop(RMSProp):
    _optimizer_cases(RMSProp, torch.optim.RMSprop, [
        ("alpha=0.9, large eps", dict(lr=0.01, alpha=0.9, eps=1e-2), None),
        ("per-group alpha", dict(lr=0.003, alpha=0.99, eps=1e-8), {"alpha": 0.5}),
    ])


def hidden_adam(Adam):
    _optimizer_cases(Adam, torch.optim.Adam, [
        ("betas=(0.8, 0.99), large eps", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-3), None),
        ("per-group betas", dict(lr=0.005, betas=(0.9, 0.999), eps=1e-8), {"betas": (0.5, 0.9)}),
    ])


def hidden_lr_schedules(inverse_time_decay, power_decay):
    check_own_code(inverse_time_decay, power_decay)
    seed = fresh_seed()
    g = torch.Generator().manual_seed(seed)
    lr0 = float(torch.rand((), generator=g)) + 0.05
    deltas = tuple(float(d) for d in torch.rand(3, generator=g) * 0.5 + 0.5)
    ts = (0, 1) + tuple(int(t) for t in torch.randint(2, 10_000, (10,), generator=g))
    with hidden_case("lr schedules against their formulas", seed):
        check_schedule(inverse_time_decay, lambda a, d, t: a / (1.0 + d * t),
                       name="inverse_time_decay", lr0=lr0, deltas=deltas, ts=ts, verbose=False)
        check_schedule(power_decay, lambda a, d, t: a / max(t, 1) ** d,
                       name="power_decay", lr0=lr0, deltas=deltas, ts=ts, verbose=False)
    print("\u2713 hidden tests passed for the learning-rate schedules")


def hidden_minibatches(minibatches):
    check_own_code(minibatches)
    for n, bs in [(100, 10), (25, 32), (1000, 64), (64, 64)]:
        seed = fresh_seed()
        with hidden_case(f"minibatches N={n} batch_size={bs}", seed):
            check_minibatches(minibatches, n=n, batch_size=bs, seed=seed, verbose=False)
    print("\u2713 hidden tests passed for minibatches")


def hidden_init_weights(init_weights):
    check_own_code(init_weights)
    seed = fresh_seed()
    with hidden_case("init_weights", seed):
        check_init(init_weights, seed=seed, verbose=False)
    print("\u2713 hidden tests passed for init_weights")
