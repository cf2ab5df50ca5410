"""Hidden tests of DAY 1, judged outside the student's process (autograder/judge.py).

Each test is a challenge (fresh seeds, and hyper-parameters where the placement of eps or per-group
options matter), a scenario that runs the student's code in the kernel (the first half of a visible
check: ``optimizer_run``, ``schedule_run``, ...), and a verdict that the grader computes from what the
scenario observed (the second half, the same comparison the visible check makes: ``optimizer_verdict``,
...). The verdicts compare with torch, or with the stated formula where torch has no equivalent (the
schedules). Nothing here imports the reference: the kernel cannot see it (autograder/kernel_sandbox.py).
"""
from __future__ import annotations

import torch

from autograder.hidden import fresh_seed
from autograder.judge import Judged, cell_function, warm_up_optimizers
from course.checks.day1_optimization import (_diagnose, _hparams, init_run, init_verdict, minibatch_run,
                                             minibatch_verdict, optimizer_kind, optimizer_run, optimizer_verdict,
                                             schedule_run, schedule_verdict)
from course.checks.common import _fail
from course.device import get_device, strict_numerics

# The bug planted in the bundled "buggy" sample submission (see `course build`):
# Adam without bias correction.
SAMPLE_BUG = {
    "cell": "adam",
    "replace": [("m_hat = m / (1 - beta1 ** t)", "m_hat = m"), ("v_hat = v / (1 - beta2 ** t)", "v_hat = v")],
}

OPTIMIZER_STEPS = 10
DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _optimizer_test(name: str, torch_cls, cases: list, torch_extra: dict | None = None) -> Judged:
    """A judged test of optimizer class ``name`` against ``torch_cls``: for each (description,
    hyper-parameters, second group's overrides or None for half the lr), both dtypes."""
    torch_extra = torch_extra or {}

    def challenge():
        return {"seed": [fresh_seed() for _ in cases], "device": str(get_device()),
                "cases": [{"desc": d, "hparams": h, "overrides": {"lr": h["lr"] * 0.5} if o is None else o}
                          for d, h, o in cases]}

    def scenario(ch, student_cls):
        strict_numerics()
        runs = []
        for seed, case in zip(ch["seed"], ch["cases"]):
            hparams, overrides = _hparams(case["hparams"]), _hparams(case["overrides"])
            dtypes = {d: optimizer_run(student_cls, hparams, overrides, seed=seed, dtype=dtype, steps=OPTIMIZER_STEPS,
                                       device=ch["device"], stop_unlike=(torch_cls, torch_extra))
                      for d, dtype in DTYPES.items()}
            hint = _diagnose(optimizer_kind(torch_cls, hparams, torch_extra), student_cls, torch_cls, hparams,
                             torch_extra)  # the likely mistake, shown only if the verdict is a failure
            runs.append({"dtypes": dtypes, "hint": hint})
        return runs

    def verdict(runs, ch):
        strict_numerics()
        if len(runs) != len(ch["cases"]):
            _fail(f"expected {len(ch['cases'])} settings, got {len(runs)}.")
        for seed, case, run in zip(ch["seed"], ch["cases"], runs):
            for d, dtype in DTYPES.items():
                try:
                    optimizer_verdict(run["dtypes"][d], torch_cls, _hparams(case["hparams"]),
                                      _hparams(case["overrides"]), seed=seed, dtype=dtype, steps=OPTIMIZER_STEPS,
                                      device=ch["device"], torch_extra=torch_extra, hint=str(run["hint"]))
                except AssertionError as e:
                    raise AssertionError(f"{case['desc']} (seed {seed}): {e}") from None

    return Judged(f"{name} ({len(cases)} settings)", challenge, scenario, verdict)


def _schedules_challenge():
    seed = fresh_seed()
    g = torch.Generator().manual_seed(seed)
    return {"seed": seed, "lr0": float(torch.rand((), generator=g)) + 0.05,
            "deltas": [float(d) for d in torch.rand(3, generator=g) * 0.5 + 0.5],
            "ts": [0, 1] + [int(t) for t in torch.randint(2, 10_000, (10,), generator=g)]}


SCHEDULES = {"inverse_time_decay": lambda a, d, t: a / (1.0 + d * t), "power_decay": lambda a, d, t: a / max(t, 1) ** d}


def _schedules_scenario(ch, *schedules):
    return {name: schedule_run(make, name=name, lr0=ch["lr0"], deltas=ch["deltas"], ts=ch["ts"])
            for name, make in zip(SCHEDULES, schedules)}


def _schedules_verdict(runs, ch):
    for name, formula in SCHEDULES.items():
        schedule_verdict(runs[name], formula, name=name, lr0=ch["lr0"], deltas=ch["deltas"], ts=ch["ts"])


MINIBATCH_CASES = [(100, 10), (25, 32), (1000, 64), (64, 64)]  # (N, batch size)


def _minibatches_scenario(ch, minibatches):
    return [minibatch_run(minibatches, n=n, batch_size=bs, seed=seed) for seed, (n, bs) in zip(ch["seed"], MINIBATCH_CASES)]


def _minibatches_verdict(runs, ch):
    for seed, (n, bs), run in zip(ch["seed"], MINIBATCH_CASES, runs, strict=True):
        try:
            minibatch_verdict(run, n=n, batch_size=bs)
        except AssertionError as e:
            raise AssertionError(f"N={n} batch_size={bs} (seed {seed}): {e}") from None


# Keyed by the test cell's grade_id.
JUDGED = {
    "test_sgd": _optimizer_test("SGD", torch.optim.SGD, [
        ("lr=0.1", dict(lr=0.1), {"lr": 0.01}),
        ("lr=0.01", dict(lr=0.01), None)]),
    "test_momentum": _optimizer_test("Momentum", torch.optim.SGD, [
        ("momentum=0.5", dict(lr=0.05, momentum=0.5), None),
        ("per-group momentum", dict(lr=0.01, momentum=0.9), {"momentum": 0.3})]),
    "test_nesterov": _optimizer_test("Nesterov", torch.optim.SGD, [
        ("momentum=0.5", dict(lr=0.05, momentum=0.5), None),
        ("per-group momentum", dict(lr=0.01, momentum=0.95), {"momentum": 0.3, "lr": 0.02})],
        torch_extra=dict(nesterov=True)),
    "test_adagrad": _optimizer_test("AdaGrad", torch.optim.Adagrad, [
        ("large eps", dict(lr=0.1, eps=1e-2), None),
        ("per-group eps", dict(lr=0.3, eps=1e-10), {"eps": 0.5})]),
    "test_rmsprop": _optimizer_test("RMSProp", torch.optim.RMSprop, [
        ("alpha=0.9, large eps", dict(lr=0.01, alpha=0.9, eps=1e-2), None),
        ("per-group alpha", dict(lr=0.003, alpha=0.99, eps=1e-8), {"alpha": 0.5})]),
    "test_adam": _optimizer_test("Adam", torch.optim.Adam, [
        ("betas=(0.8, 0.99), large eps", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-3), None),
        ("per-group betas, β2 < 0.5", dict(lr=0.005, betas=(0.9, 0.999), eps=1e-8), {"betas": (0.5, 0.4)})]),
    "test_lr_schedules": Judged("the learning-rate schedules", _schedules_challenge, _schedules_scenario,
                                _schedules_verdict),
    "test_minibatches": Judged("minibatches", lambda: {"seed": [fresh_seed() for _ in MINIBATCH_CASES]},
                               _minibatches_scenario, _minibatches_verdict),
    "test_init_weights": Judged("init_weights", lambda: {"seed": fresh_seed()},
                                lambda ch, init_weights: init_run(init_weights, seed=ch["seed"]),
                                lambda run, ch: init_verdict(run)),
}


warm_up = warm_up_optimizers  # run by the grader while the kernel starts (judge.judged_tests)


hidden_sgd, hidden_momentum, hidden_nesterov, hidden_adagrad, hidden_rmsprop, hidden_adam = (
    cell_function(JUDGED, f"test_{name}") for name in ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"))
hidden_lr_schedules = cell_function(JUDGED, "test_lr_schedules")  # (inverse_time_decay, power_decay)
hidden_minibatches = cell_function(JUDGED, "test_minibatches")
hidden_init_weights = cell_function(JUDGED, "test_init_weights")
