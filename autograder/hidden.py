"""Helpers shared by the hidden tests of every DAY (``solutions/<day>/hidden.py``)."""
from __future__ import annotations

import contextlib
import secrets
import warnings

from autograder.guard import check_own_code

# How many fresh seeds run_hidden tries per hidden test at grading time.
REPEATS = 2
_fixed_seed: int | None = None


def fresh_seed() -> int:
    """A new random seed at every grading, so hard-coded outputs cannot pass (see :func:`seeded`)."""
    return secrets.randbelow(2**31) if _fixed_seed is None else _fixed_seed


def fresh_seeds(n: int = REPEATS) -> list[int]:
    """``n`` fresh seeds for one hidden test; inside :func:`seeded`, the one chosen seed."""
    return [fresh_seed() for _ in range(n if _fixed_seed is None else 1)]


@contextlib.contextmanager
def seeded(seed: int):
    """For the test suite: inside the block every :func:`fresh_seed` returns ``seed``, and each
    :func:`run_hidden` and :func:`fresh_seeds` runs or gives one, so a hidden test can be run on chosen seeds one at a time."""
    global _fixed_seed
    before, _fixed_seed = _fixed_seed, seed
    try:
        yield
    finally:
        _fixed_seed = before


@contextlib.contextmanager
def hidden_case(description: str, seed: int):
    """Run one hidden case: warnings are silenced, a failure names the case and its seed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        except AssertionError as e:
            raise AssertionError(f"hidden test '{description}' (seed {seed}) failed: {e}") from None


def run_hidden(description: str, check, *args, repeats: int | None = None, seed: int | None = None,
               **kwargs) -> None:
    """Run a visible check ``repeats`` times on fresh seeds, silently; print one line when all pass.

    ``seed`` fixes the seed instead (run once), for a check whose verdict must not depend on one: a
    training run whose accuracy varies from seed to seed. ``args`` are the student's objects: under
    `course grade` they must be the student's own code (autograder/guard.py)."""
    check_own_code(*args)
    fixed = seed
    for _ in range(1 if _fixed_seed is not None or fixed is not None else repeats or REPEATS):
        seed = fresh_seed() if fixed is None else fixed
        with hidden_case(description, seed):
            check(*args, seed=seed, verbose=False, **kwargs)
    print(f"\u2713 hidden tests passed for {description}")
