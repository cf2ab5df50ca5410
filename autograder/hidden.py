"""Helpers shared by the hidden tests of every DAY."""
from __future__ import annotations

import contextlib
import secrets
import warnings

from autograder.guard import check_own_code


def fresh_seed() -> int:
    """A new random seed at every grading, so hard-coded outputs cannot pass."""
    return secrets.randbelow(2**31)


@contextlib.contextmanager
def hidden_case(description: str, seed: int):
    """Run one hidden case: warnings are silenced, a failure names the case and its seed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        except AssertionError as e:
            raise AssertionError(f"hidden test '{description}' (seed {seed}) failed: {e}") from None


def run_hidden(description: str, check, *args, repeats: int = 2, **kwargs) -> None:
    """Run a visible check ``repeats`` times on fresh seeds, silently; print one line when all pass.

    ``args`` are the student's objects: under `course grade` they must be the student's own code
    (autograder/guard.py)."""
    check_own_code(*args)
    for _ in range(repeats):
        seed = fresh_seed()
        with hidden_case(description, seed):
            check(*args, seed=seed, verbose=False, **kwargs)
    print(f"\u2713 hidden tests passed for {description}")
