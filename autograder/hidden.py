"""Helpers shared by the hidden tests of every DAY (``solutions/<day>/hidden.py``)."""
from __future__ import annotations

import contextlib
import secrets
import warnings


# How many fresh seeds a judged hidden test tries at grading time (judge.per_seed).
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
    :func:`fresh_seeds` gives one, so a hidden test can be run on chosen seeds one at a time."""
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
